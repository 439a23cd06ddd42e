//! The control socket: one JSON request per connection, one JSON reply. Only the mounting user (or
//! root) may talk to a daemon; the socket lives in the user's state directory with mode 0600.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Status,
    Unmount { lazy: bool },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub archive: String,
    pub mountpoint: String,
    pub read_only: bool,
    pub since: u64,
    pub entries: u64,
    pub cache_memory_bytes: u64,
    pub cache_spill_bytes: u64,
    pub read_errors: u64,
    pub decompressed_bytes: u64,
    pub resident_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    Status(Status),
    Unmounted,
    Busy { processes: Vec<(u32, String)> },
    Error { message: String },
}

/// Sends `req` to the daemon listening on `socket` and returns its reply and the open connection
/// (which the daemon closes when it exits).
pub fn call(socket: &Path, req: &Request) -> io::Result<(Reply, UnixStream)> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(600)))?;
    let mut line = serde_json::to_vec(req).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply)?;
    if reply.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "daemon closed the connection",
        ));
    }
    let reply = serde_json::from_str(&reply).map_err(io::Error::other)?;
    Ok((reply, stream))
}

pub fn bind(socket: &Path) -> io::Result<UnixListener> {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Counts requests being answered, so the daemon can let a reply reach its client before exiting
/// (an unmount ends the session while its reply is still being written).
#[derive(Default)]
pub struct InFlight {
    count: Mutex<u32>,
    idle: Condvar,
}

impl InFlight {
    fn enter(&self) {
        *self.count.lock().expect("in-flight lock") += 1;
    }
    fn leave(&self) {
        let mut n = self.count.lock().expect("in-flight lock");
        *n -= 1;
        if *n == 0 {
            self.idle.notify_all();
        }
    }
    /// Waits until no request is being answered, at most `timeout`.
    pub fn wait_idle(&self, timeout: Duration) {
        let n = self.count.lock().expect("in-flight lock");
        let _ = self.idle.wait_timeout_while(n, timeout, |n| *n > 0);
    }
}

/// Serves requests until the listener fails; `handle` answers each request.
pub fn serve(
    listener: UnixListener,
    in_flight: Arc<InFlight>,
    handle: impl Fn(Request) -> Reply + Send + Sync + 'static,
) {
    let me = nix::unistd::getuid();
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        in_flight.enter();
        let peer =
            nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials);
        let allowed = peer.is_ok_and(|c| c.uid() == me.as_raw() || c.uid() == 0);
        let reply = if !allowed {
            Reply::Error {
                message: "only the user who mounted this archive (or root) may control it".into(),
            }
        } else {
            let mut line = String::new();
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            match BufReader::new(&stream).read_line(&mut line) {
                Ok(_) => match serde_json::from_str::<Request>(&line) {
                    Ok(req) => handle(req),
                    Err(e) => Reply::Error {
                        message: format!("bad request: {e}"),
                    },
                },
                Err(e) => Reply::Error {
                    message: format!("reading request: {e}"),
                },
            }
        };
        let unmounted = matches!(reply, Reply::Unmounted);
        if let Ok(mut bytes) = serde_json::to_vec(&reply) {
            bytes.push(b'\n');
            let _ = stream.write_all(&bytes);
        }
        if unmounted {
            // Keep the connection open: the client sees it close when this process exits.
            std::mem::forget(stream);
        }
        in_flight.leave();
    }
}
