//! A mount's start-up: prefetch what the archive's profile says the first seconds read, and record
//! the profile when there is none for this archive version (see `archive::startup`). Profiles live
//! in the shared state directory (private, one file per archive path), so a job array's first node
//! records and every later mount on any node prefetches.
//!
//! `CONDA_FUSE_PREFETCH=off` disables both; `CONDA_FUSE_STARTUP_WINDOW` (seconds, default 10) is
//! how long after the mount the recording lasts.

use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::archive::ArchiveId;
use crate::archive::startup::{MAX_PROFILE_BYTES, Profile, prefetch};
use crate::overlay::base::Base;

const DIR: &str = "startup";

/// The recording in progress, if any: `finish` writes it (at unmount, if the window has not ended).
pub struct Startup {
    stop: Option<Sender<()>>,
    recorder: Option<JoinHandle<()>>,
}

impl Startup {
    /// Starts the prefetch and, when the profile is missing or of another version, the recording.
    pub fn begin(base: Arc<Base>) -> Startup {
        let idle = Startup {
            stop: None,
            recorder: None,
        };
        if !crate::settings::get().prefetch {
            return idle;
        }
        let name = file_name(base.archive().id());
        let profile = load(&name);
        let archive = base.archive().clone();
        let record = !profile.as_ref().is_some_and(|p| p.is_for(&archive));
        if let Some(profile) = profile {
            let parts = profile.resolve(&archive);
            tracing::info!(parts = parts.len(), "prefetching the start-up profile");
            let (a, cache) = (archive.clone(), base.cache().clone());
            let done = cache.prefetched().clone();
            let _ = std::thread::Builder::new()
                .name("prefetch".into())
                .spawn(move || {
                    let started = std::time::Instant::now();
                    prefetch(a, cache.clone(), parts, done.clone());
                    tracing::info!(
                        parts = done.parts.load(std::sync::atomic::Ordering::Relaxed),
                        decoded_bytes = done
                            .decoded_bytes
                            .load(std::sync::atomic::Ordering::Relaxed),
                        reads = done.reads.load(std::sync::atomic::Ordering::Relaxed),
                        read_bytes = done.read_bytes.load(std::sync::atomic::Ordering::Relaxed),
                        ms = started.elapsed().as_millis() as u64,
                        "start-up prefetch done"
                    );
                });
        }
        if !record {
            return idle;
        }
        let window = window();
        base.cache().recorder().start(window);
        let (stop, stopped) = channel();
        let recorder = std::thread::Builder::new()
            .name("startup-record".into())
            .spawn(move || record_after(&base, &name, window, &stopped))
            .ok();
        Startup {
            stop: Some(stop),
            recorder,
        }
    }

    /// Ends a recording still running and writes it.
    pub fn finish(mut self) {
        drop(self.stop.take());
        if let Some(h) = self.recorder.take() {
            let _ = h.join();
        }
    }
}

fn window() -> Duration {
    crate::settings::get().startup_window
}

fn record_after(base: &Base, name: &str, window: Duration, stopped: &Receiver<()>) {
    // Either the window ends or the mount does (the sender is dropped): both end the recording.
    let _ = stopped.recv_timeout(window);
    let parts = base.cache().recorder().take();
    if parts.is_empty() {
        return;
    }
    let profile = Profile::of(base.archive(), &parts);
    let written = super::state::state()
        .and_then(|s| s.subdir(DIR))
        .map_err(std::io::Error::other)
        .and_then(|d| d.write_atomic(name, &profile.to_bytes()));
    match written {
        Ok(()) => tracing::info!(parts = parts.len(), "recorded the start-up profile"),
        // A profile is an optimisation: a full disk costs the next mount its prefetch, nothing else.
        Err(e) => tracing::warn!("cannot write the start-up profile: {e}"),
    }
}

/// Where the start-up profile of `archive` is kept (for `rm`, which deletes it with the env).
pub fn profile_path(archive: &ArchiveId) -> std::path::PathBuf {
    super::state::state_dir().join(DIR).join(file_name(archive))
}

/// The profile's file name: a hash of the archive's path (it names no user data).
fn file_name(archive: &ArchiveId) -> String {
    use std::os::unix::ffi::OsStrExt;
    let digest = Sha256::digest(archive.path().as_os_str().as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.profile")
}

fn load(name: &str) -> Option<Profile> {
    let dir = super::state::state()
        .ok()?
        .open_subdir(DIR)
        .ok()
        .flatten()?;
    let file = dir.open_read(name).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() as u64 > MAX_PROFILE_BYTES {
        return None;
    }
    let profile = Profile::from_bytes(&bytes);
    if profile.is_none() {
        tracing::warn!("ignoring the start-up profile {name}: not one this version reads");
    }
    profile
}
