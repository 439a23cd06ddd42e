//! The holder record inside a lock file, and the judgement of whether its holder still lives.
//!
//! A holder is alive when this node can see its process (same host and boot: a pid check), or,
//! from another node, while its heartbeat goes on: the daemon rewrites the record every period, and
//! a record silent for `SILENT_PERIODS` periods of its own is stale. Clocks of two nodes may
//! disagree, so before a silent holder is taken over the record is watched for a while: a beat
//! counter that moves means alive, whatever the clocks say.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::node::Node;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    #[serde(flatten)]
    pub node: Node,
    pub pid: u32,
    pub user: String,
    /// Unix time the lock was taken.
    pub since: i64,
    pub mountpoint: PathBuf,
    /// Unix time in milliseconds of the last heartbeat; 0 from versions without one.
    #[serde(default)]
    pub heartbeat_ms: i64,
    /// How often the holder beats; 0 from versions without a heartbeat.
    #[serde(default)]
    pub period_ms: u64,
    /// Beats so far: a change shows life without comparing two nodes' clocks.
    #[serde(default)]
    pub beats: u64,
    /// The fencing token: one more than the holder it took the lock from had. A holder whose
    /// record shows another epoch (or process) has lost the lock.
    #[serde(default)]
    pub epoch: u64,
    /// Whether the holder has acknowledged changes it has not saved yet (set before the first one
    /// is acknowledged). Only its user can recover them (they are in that user's private state
    /// directory), so another user does not take such a lock over without --steal-lock.
    #[serde(default)]
    pub unsaved: bool,
}

/// How often a writable daemon refreshes its record: `CONDA_FUSE_HEARTBEAT` seconds (tests use
/// fractions), default 5 s.
pub fn period() -> Duration {
    crate::settings::get().heartbeat
}

/// A holder silent for this many of its own periods is stale (a loaded node can miss a few).
pub const SILENT_PERIODS: u64 = 6;

impl Holder {
    pub fn me(mountpoint: &Path) -> Holder {
        Holder {
            node: Node::this(),
            pid: std::process::id(),
            user: nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map_or_else(|| nix::unistd::getuid().to_string(), |u| u.name),
            since: crate::clock::now().0,
            mountpoint: mountpoint.to_owned(),
            heartbeat_ms: now_ms(),
            period_ms: period().as_millis() as u64,
            beats: 0,
            epoch: 0,
            unsaved: false,
        }
    }

    /// Whether `other` names the same process in the same holding (ignoring its heartbeat).
    pub fn same_process(&self, other: &Holder) -> bool {
        self.node == other.node && self.pid == other.pid && self.epoch == other.epoch
    }

    /// The record an observer may call stale after this long without a beat.
    pub fn silence_limit(&self) -> Duration {
        Duration::from_millis(self.period_ms * SILENT_PERIODS).max(Duration::from_secs(1))
    }

    /// "pid 4242 on login2 (user ana) since 2026-12-02 10:02:11 at /home/ana/miniconda_fuse/envs/ml"
    pub fn describe(&self) -> String {
        format!(
            "pid {} on {} (user {}) since {} at {}",
            self.pid,
            self.node.host,
            self.user,
            crate::clock::local(self.since),
            self.mountpoint.display()
        )
    }
}

pub fn now_ms() -> i64 {
    let (s, ns) = crate::clock::now();
    s * 1000 + i64::from(ns / 1_000_000)
}

/// What a lock file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Empty,
    Holder(Holder),
    /// Not a holder record: not conda-fuse's file, or one written by a newer version.
    Foreign,
}

/// Reads the record. A record another node is rewriting can be read half-new (writes are not
/// atomic across NFS clients), so an unreadable one is read again a few times before it counts.
pub fn read(file: &File) -> Read {
    // Another node's record may be longer than what this node's client cached of the file's size
    // (its record was empty when last looked at): ask the server first, or the read stops short.
    let _ = crate::hostfs::fresh_len(file);
    let mut last = Read::Foreign;
    for attempt in 0..4 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(25));
        }
        let mut buf = vec![0u8; 8192];
        let Ok(n) = read_at_start(file, &mut buf) else {
            continue;
        };
        let text = &buf[..n];
        if text.iter().all(u8::is_ascii_whitespace) {
            return Read::Empty;
        }
        match serde_json::from_slice::<Holder>(text) {
            Ok(h) => return Read::Holder(h),
            Err(_) => last = Read::Foreign,
        }
    }
    last
}

fn read_at_start(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Records are padded to a fixed length and written in one positioned write, so a rewrite never
/// truncates the file (a reader on another node sees the old record or the new one, not nothing).
const RECORD_LEN: usize = 1024;

pub fn write(file: &File, holder: &Holder) -> io::Result<()> {
    let mut data = serde_json::to_vec(holder).map_err(io::Error::other)?;
    let current = file.metadata()?.len() as usize;
    let len = data.len().div_ceil(RECORD_LEN).max(1) * RECORD_LEN;
    data.resize(len.max(current), b' ');
    *data.last_mut().expect("not empty") = b'\n';
    file.write_all_at(&data, 0)?;
    file.sync_data()
}

/// Why a holder no longer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staleness {
    /// Its process is gone from this node.
    Dead,
    /// Its node has rebooted since (same host, another boot).
    Rebooted,
    /// No heartbeat from its node for this long.
    Silent(Duration),
    /// A version without a heartbeat, on another node, whose flock this node could take.
    Unlocked,
    /// Taken by --steal-lock.
    Stolen,
    /// Its node's clock runs this far ahead of ours, so the times in its record say nothing here;
    /// its record stopped changing for as long as the silence limit, by this node's clock.
    ClockAhead(Duration),
}

impl std::fmt::Display for Staleness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Staleness::Dead => write!(f, "that process is gone"),
            Staleness::Rebooted => write!(f, "that node has rebooted since"),
            Staleness::Silent(d) => write!(f, "its heartbeat stopped {}s ago", d.as_secs()),
            Staleness::Unlocked => write!(f, "it no longer held the file lock"),
            Staleness::Stolen => write!(f, "--steal-lock"),
            Staleness::ClockAhead(d) => write!(
                f,
                "its node's clock runs {}s ahead of this one's, and its record stopped changing",
                d.as_secs()
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Free,
    Held(Holder),
    Stale(Holder, Staleness),
}

/// Judges a record as this node sees it at `now_ms`. `alive` says whether a pid of this node is a
/// running conda-fuse; `flocked` whether this process holds a working flock on the file.
pub fn judge(
    record: Read,
    here: &Node,
    now_ms: i64,
    alive: impl Fn(u32) -> bool,
    flocked: bool,
) -> Verdict {
    let h = match record {
        Read::Empty | Read::Foreign => return Verdict::Free,
        Read::Holder(h) => h,
    };
    if h.node == *here {
        if h.pid != std::process::id() && !alive(h.pid) {
            return Verdict::Stale(h, Staleness::Dead);
        }
        return Verdict::Held(h);
    }
    if h.node.host == here.host && !h.node.boot_id.is_empty() && !here.boot_id.is_empty() {
        return Verdict::Stale(h, Staleness::Rebooted);
    }
    if h.period_ms == 0 {
        // An older conda-fuse, which trusted flock alone: it holds the lock while its flock holds.
        return if flocked {
            Verdict::Stale(h, Staleness::Unlocked)
        } else {
            Verdict::Held(h)
        };
    }
    let ahead = h.heartbeat_ms.saturating_sub(now_ms);
    if ahead > h.silence_limit().as_millis() as i64 {
        // Its clock is ahead of ours by more than the limit: trusting its times would keep a dead
        // holder until our clock catches up (hours, days). Only watching its record tells.
        return Verdict::Stale(
            h,
            Staleness::ClockAhead(Duration::from_millis(ahead as u64)),
        );
    }
    let silent = Duration::from_millis(now_ms.saturating_sub(h.heartbeat_ms).max(0) as u64);
    if silent > h.silence_limit() {
        Verdict::Stale(h, Staleness::Silent(silent))
    } else {
        Verdict::Held(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, boot: &str) -> Node {
        Node {
            host: host.into(),
            boot_id: boot.into(),
        }
    }

    fn holder(n: Node, pid: u32, heartbeat_ms: i64, period_ms: u64) -> Holder {
        Holder {
            node: n,
            pid,
            user: "u".into(),
            since: 0,
            mountpoint: "/m".into(),
            heartbeat_ms,
            period_ms,
            beats: 1,
            epoch: 0,
            unsaved: false,
        }
    }

    #[test]
    fn holders_are_judged_by_their_pid_here_and_by_their_heartbeat_elsewhere() {
        let here = node("login1", "b1");
        let live = |_| true;
        let dead = |_| false;
        let judge_now = |h: &Holder, alive: &dyn Fn(u32) -> bool, flocked| {
            judge(Read::Holder(h.clone()), &here, 100_000, alive, flocked)
        };
        assert_eq!(judge(Read::Empty, &here, 0, live, false), Verdict::Free);
        // This node: the pid decides, the heartbeat does not matter.
        let ours = holder(here.clone(), 4242, 0, 5000);
        assert!(matches!(judge_now(&ours, &live, true), Verdict::Held(_)));
        assert!(matches!(
            judge_now(&ours, &dead, true),
            Verdict::Stale(_, Staleness::Dead)
        ));
        // Another node: a pid there means nothing here; a recent beat holds, even with our flock
        // (flock may be node-local).
        let fresh = holder(node("node7", "b2"), 4242, 100_000 - 20_000, 5000);
        assert!(matches!(judge_now(&fresh, &dead, true), Verdict::Held(_)));
        let silent = holder(node("node7", "b2"), 4242, 100_000 - 31_000, 5000);
        assert!(matches!(
            judge_now(&silent, &live, false),
            Verdict::Stale(_, Staleness::Silent(d)) if d.as_secs() == 31
        ));
        // A beat a little in the future (clocks disagree by less than the limit) is a recent one;
        // one further ahead says nothing here: only watching the record (for the whole limit, by
        // this node's clock) tells whether its holder lives, so a dead holder whose clock ran
        // ahead does not keep the lock until that time.
        let ahead = holder(node("node7", "b2"), 4242, 100_000 + 20_000, 5000);
        assert!(matches!(judge_now(&ahead, &dead, false), Verdict::Held(_)));
        let far_ahead = holder(node("node7", "b2"), 4242, 100_000 + 3_600_000, 5000);
        assert!(matches!(
            judge_now(&far_ahead, &dead, false),
            Verdict::Stale(_, Staleness::ClockAhead(d)) if d.as_secs() == 3600
        ));
        // Same host, another boot: the node rebooted.
        let before_reboot = holder(node("login1", "b0"), 4242, 100_000, 5000);
        assert!(matches!(
            judge_now(&before_reboot, &live, false),
            Verdict::Stale(_, Staleness::Rebooted)
        ));
        // Older versions never beat: their flock is all that tells.
        let old = holder(node("node7", ""), 4242, 0, 0);
        assert!(matches!(judge_now(&old, &dead, false), Verdict::Held(_)));
        assert!(matches!(
            judge_now(&old, &dead, true),
            Verdict::Stale(_, Staleness::Unlocked)
        ));
    }

    #[test]
    fn records_are_rewritten_in_place_and_older_ones_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("l"))
            .unwrap();
        assert_eq!(read(&file), Read::Empty);
        let mut h = Holder::me(Path::new("/mnt/a"));
        write(&file, &h).unwrap();
        let len = file.metadata().unwrap().len();
        h.beats = 7;
        write(&file, &h).unwrap();
        assert_eq!(file.metadata().unwrap().len(), len);
        assert_eq!(read(&file), Read::Holder(h));
        // A record of a version without node ids or a heartbeat.
        file.set_len(0).unwrap();
        file.write_all_at(
            br#"{"host":"h","pid":1,"user":"u","since":0,"mountpoint":"/x"}"#,
            0,
        )
        .unwrap();
        assert!(matches!(read(&file), Read::Holder(h) if h.node.host == "h" && h.period_ms == 0));
        file.write_all_at(b"my notes, not a record at all....................", 0)
            .unwrap();
        assert_eq!(read(&file), Read::Foreign);
    }
}
