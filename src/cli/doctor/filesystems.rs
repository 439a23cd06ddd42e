//! `doctor` on where things live: the filesystem of each place and what it implies (the facts of
//! `hostfs::traits`, and for the archive directory what a probe measures there), then the places
//! against what a cluster needs: archives and mount root alike on every node, runtime state
//! node-local, unsaved changes where another node can recover them.

use std::path::Path;

use super::{Level, Report};
use crate::envs::Paths;
use crate::hostfs::traits::{self, Need, Place};
use crate::hostfs::{self, HostFs};

pub(super) fn check(r: &mut Report, paths: &Paths) {
    let archives = hostfs::of(paths.archives());
    let transactions = crate::daemon::state::transaction_upper_root();
    let mut places: Vec<(&str, &Path, Option<Place>)> = vec![
        ("archives", paths.archives(), Some(Place::Archives)),
        ("mount root", &paths.mounts, None),
        ("upper layers", &paths.upper, Some(Place::State)),
        ("runtime directory", &paths.runtime, None),
        ("temporary files", &paths.tmp, Some(Place::Tmp)),
    ];
    // Where a create, install or remove keeps its changes until its save (made when first used).
    if let Some(t) = transactions.as_deref().and_then(Path::parent) {
        places.push(("transactions", t, None));
    }
    for (what, dir, place) in places {
        let Some(fs) = hostfs::of(dir) else { continue };
        let scope = if fs.fs.is_shared() {
            "shared with other nodes"
        } else {
            "this node's"
        };
        r.say(
            Level::Ok,
            format!("{what} {}: {} ({scope})", dir.display(), fs.describe()),
            None,
        );
        let Some(place) = place else { continue };
        let measured = if place == Place::Archives {
            measure(r, dir, &fs)
        } else {
            Vec::new()
        };
        for (need, level, text) in traits::implications(place, fs.fs) {
            if !measured.contains(&need) {
                say_implication(r, need, level, &fs, text);
            }
        }
        if place == Place::Archives && fs.local_flock_option {
            r.say(
                Level::Ok,
                format!(
                    "  archives are on {}: flock reaches only this node; the writer lock's \
                     heartbeat keeps writers on two nodes apart",
                    fs.describe()
                ),
                None,
            );
        }
    }
    let Some(archives) = archives else { return };
    check_prefix_paths(r, paths, &archives);
    check_node_state(r, paths, &archives);
}

fn say_implication(r: &mut Report, need: Need, level: traits::Level, fs: &HostFs, text: String) {
    let level = match level {
        traits::Level::Limited => Level::Warn,
        _ => Level::Ok,
    };
    let fix = (level == Level::Warn)
        .then(|| need.advice().map(str::to_string))
        .flatten();
    r.say(level, format!("  {}: {text}", fs.fs.name()), fix);
}

/// Probes the archive directory (when it can be written) and says what was measured; returns the
/// needs it measured, whose table entries are then not repeated.
fn measure(r: &mut Report, dir: &Path, fs: &HostFs) -> Vec<Need> {
    let writable = nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok();
    if !writable {
        return Vec::new();
    }
    let p = match hostfs::probe::probe(dir) {
        Ok(p) => p,
        Err(e) => {
            r.say(
                Level::Warn,
                format!("  cannot probe {}: {e}", dir.display()),
                None,
            );
            return Vec::new();
        }
    };
    let name = fs.fs.name();
    match p.no_replace {
        None => r.say(
            Level::Ok,
            "  renames without replacing (create): renameat2 works here",
            None,
        ),
        Some(e) => r.say(
            Level::Ok,
            format!(
                "  renames without replacing (create): renameat2 answers {e:?} here, so creates \
                 use link + unlink, which {name} makes atomic"
            ),
            None,
        ),
    }
    match p.cross_dir_link {
        None => r.say(
            Level::Ok,
            "  snapshots: hard links into .snapshots/ work here",
            None,
        ),
        Some(e) => r.say(
            Level::Warn,
            format!("  snapshots: {name} refuses hard links into another directory here ({e:?}), so saves keep no snapshots"),
            Need::SnapshotLink.advice().map(str::to_string),
        ),
    }
    if !p.subsecond_mtime {
        r.say(
            Level::Ok,
            format!("  {name} keeps whole seconds of mtimes here (saves round them anyway)"),
            None,
        );
    }
    vec![Need::CreateRename, Need::SnapshotLink]
}

fn check_prefix_paths(r: &mut Report, paths: &Paths, archives: &HostFs) {
    let Some(mounts) = hostfs::of(&paths.mounts) else {
        return;
    };
    let name = |f: &HostFs| {
        if f.fs.is_shared() {
            f.fs.name()
        } else {
            "a node-local filesystem"
        }
    };
    match (archives.fs.is_shared(), mounts.fs.is_shared()) {
        (true, false) => r.say(
            Level::Warn,
            format!(
                "archives are on {} (other nodes see them) but the mount root {} is on {}: an \
                 env's prefix is baked into its files, so every node must mount it at this same path",
                name(archives),
                paths.mounts.display(),
                name(&mounts)
            ),
            Some(format!(
                "fine if {} exists alike on every node; else set CONDA_FUSE_MOUNT_ROOT to a path \
                 that does (under $HOME)",
                paths.mounts.display()
            )),
        ),
        (false, true) => r.say(
            Level::Warn,
            format!(
                "the mount root is on {} but the archives {} are on {}: other nodes see the mount \
                 points but cannot mount these envs",
                name(&mounts),
                paths.archives().display(),
                name(archives)
            ),
            Some("keep archives where every node sees them (CONDA_FUSE_ARCHIVE_PATH)".into()),
        ),
        _ => r.say(
            Level::Ok,
            format!(
                "archives and mount root are both on {} (prefixes are the same path wherever \
                 they are mounted)",
                name(archives)
            ),
            None,
        ),
    }
}

fn check_node_state(r: &mut Report, paths: &Paths, archives: &HostFs) {
    let shared = |p: &Path| hostfs::of(p).is_some_and(|f| f.fs.is_shared());
    if shared(&paths.runtime) {
        r.say(
            Level::Warn,
            format!(
                "the runtime directory {} is on a shared filesystem; it holds this node's mount \
                 records and sockets, which mean nothing on other nodes",
                paths.runtime.display(),
            ),
            Some(
                "set CONDA_FUSE_RUNTIME_DIR to a node-local directory (/tmp/conda-fuse-$UID)"
                    .into(),
            ),
        );
    }
    if archives.fs.is_shared() && !shared(&paths.upper) {
        r.say(
            Level::Warn,
            format!(
                "unsaved changes of writable mounts are kept on this node ({}): if it dies, no \
                 other node can recover them",
                paths.upper.display()
            ),
            Some(
                "keep CONDA_FUSE_STATE_DIR (or CONDA_FUSE_UPPER_DIR) on the shared filesystem"
                    .into(),
            ),
        );
    }
    if shared(&paths.tmp) {
        r.say(
            Level::Warn,
            format!(
                "temporary files ({}) are on {}: every large entry read at random is spilled \
                 across the network",
                paths.tmp.display(),
                hostfs::of(&paths.tmp).map_or("a shared filesystem", |f| f.fs.name())
            ),
            Some("set TMPDIR to a node-local directory (/tmp, or the job's scratch)".into()),
        );
    }
}
