//! The control socket: one JSON request per connection; the daemon answers with progress lines
//! (while saving) and one final reply. Only the mounting user (or root) may talk to a daemon; the
//! socket lives in the user's state directory with mode 0600.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::hint::RemoteError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// Save the changes into the archive now and stay mounted.
    Save,
    /// Save (unless `discard`), then unmount.
    Unmount {
        lazy: bool,
        discard: bool,
    },
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
    /// Parts of entries the start-up prefetch decoded ahead of their readers, and their bytes.
    #[serde(default)]
    pub prefetched_parts: u64,
    #[serde(default)]
    pub prefetched_bytes: u64,
    pub resident_bytes: u64,
    /// Writable mounts: where changes live until saved, and how many there are.
    pub upper_dir: Option<String>,
    pub unsaved_changes: u64,
    pub unsaved_files: u64,
    pub unsaved_bytes: u64,
    /// The version of the archive served (its size and central directory CRC): another node may
    /// have saved a newer one since this mount was made.
    #[serde(default)]
    pub served_size: u64,
    #[serde(default)]
    pub served_cd_crc: u32,
    /// Read-only mounts at another prefix than the archive's files hold: that prefix, how many
    /// files are served rewritten for this one, and those whose binary strings had no room.
    #[serde(default)]
    pub written_for: Option<String>,
    #[serde(default)]
    pub relocated_files: u64,
    #[serde(default)]
    pub not_relocated: Vec<String>,
}

/// What a save did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SaveSummary {
    pub changed: bool,
    pub entries: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Bytes of holes in sparse files that were not read.
    #[serde(default)]
    pub holes: u64,
    pub seconds: f64,
    /// What the user should know about this save (a snapshot that could not be kept).
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    /// Not final: a save has written `done` of `total` bytes.
    Progress {
        done: u64,
        total: u64,
    },
    Status(Box<Status>),
    Saved(SaveSummary),
    Unmounted {
        saved: Option<SaveSummary>,
    },
    Busy {
        processes: Vec<(u32, String)>,
    },
    /// The request failed: what failed, why, and what to do.
    Error {
        error: RemoteError,
    },
}

/// Sends `req` to the daemon listening on `socket`; `progress` sees each progress line. Returns the
/// final reply and the open connection (which the daemon closes when it exits).
pub fn call(
    socket: &Path,
    req: &Request,
    progress: &mut dyn FnMut(u64, u64),
) -> io::Result<(Reply, UnixStream)> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(3600)))?;
    let mut line = serde_json::to_vec(req).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut reply = String::new();
        reader.read_line(&mut reply)?;
        if reply.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "daemon closed the connection",
            ));
        }
        match serde_json::from_str(&reply).map_err(io::Error::other)? {
            Reply::Progress { done, total } => progress(done, total),
            other => return Ok((other, stream)),
        }
    }
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

/// Answers one request: `send` delivers progress lines, the returned reply ends the exchange.
pub type Handler = dyn Fn(Request, &mut dyn FnMut(&Reply)) -> Reply + Send + Sync;

fn send_line(stream: &mut UnixStream, reply: &Reply) {
    if let Ok(mut bytes) = serde_json::to_vec(reply) {
        bytes.push(b'\n');
        let _ = stream.write_all(&bytes);
    }
}

fn answer(mut stream: UnixStream, handler: &Handler) {
    let me = nix::unistd::getuid();
    let peer = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials);
    let allowed = peer.is_ok_and(|c| c.uid() == me.as_raw() || c.uid() == 0);
    let reply = if !allowed {
        Reply::Error {
            error: RemoteError::plain(
                "only the user who mounted this archive (or root) may control it",
            ),
        }
    } else {
        let mut line = String::new();
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        match BufReader::new(&stream).read_line(&mut line) {
            Ok(_) => match serde_json::from_str::<Request>(&line) {
                Ok(req) => {
                    let mut progress_stream = stream.try_clone().ok();
                    handler(req, &mut |r| {
                        if let Some(s) = progress_stream.as_mut() {
                            send_line(s, r);
                        }
                    })
                }
                Err(e) => Reply::Error {
                    error: RemoteError::plain(format!("bad request: {e}")),
                },
            },
            Err(e) => Reply::Error {
                error: RemoteError::plain(format!("reading request: {e}")),
            },
        }
    };
    let unmounted = matches!(reply, Reply::Unmounted { .. });
    send_line(&mut stream, &reply);
    if unmounted {
        // Keep the connection open: the client sees it close when this process exits.
        std::mem::forget(stream);
    }
}

/// Serves requests, one thread per connection (a status answers while a save runs), until the
/// listener fails.
pub fn serve(listener: UnixListener, in_flight: Arc<InFlight>, handler: Arc<Handler>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        in_flight.enter();
        let (handler, in_flight) = (handler.clone(), in_flight.clone());
        let spawned = std::thread::Builder::new()
            .name("control-request".into())
            .spawn(move || {
                answer(stream, &*handler);
                in_flight.leave();
            });
        if spawned.is_err() {
            tracing::error!("cannot start a thread for a control request");
        }
    }
}
