//! `env-list` (every environment: archive size and entries, where and how it is mounted, unsaved
//! changes) and `paths` (where everything lives).

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::progress;
use crate::daemon::{self, Probe};
use crate::envs::{Paths, list};
use crate::overlay;

#[derive(Args)]
pub(super) struct EnvListArgs {
    /// Print only the names, one per line (for scripts and TAB completion)
    #[arg(long, conflicts_with = "json")]
    names: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    info: list::EnvInfo,
    mountpoint: PathBuf,
    /// null when not mounted here.
    mounted: Option<MountState>,
    pid: Option<u32>,
    /// Changes not yet saved into the archive (in the live mount, or waiting in the upper layer).
    unsaved_changes: u64,
    /// The writable mount on another node, if its heartbeat says it is alive.
    writer_elsewhere: Option<Elsewhere>,
    /// Whether this user can change it (its archive and directory writable for them).
    writable: bool,
    /// Archives of the same name in later CONDA_FUSE_ARCHIVE_PATH directories, hidden by this one.
    shadowed: Vec<PathBuf>,
}

/// How an environment is mounted on this node (JSON: "rw", "ro", "stale").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
enum MountState {
    #[serde(rename = "rw")]
    Writable,
    #[serde(rename = "ro")]
    ReadOnly,
    /// Its daemon died; `unmount` cleans up.
    #[serde(rename = "stale")]
    Stale,
}

impl MountState {
    fn as_str(self) -> &'static str {
        match self {
            MountState::Writable => "rw",
            MountState::ReadOnly => "ro",
            MountState::Stale => "stale",
        }
    }
}

#[derive(Serialize)]
struct Elsewhere {
    host: String,
    pid: u32,
    user: String,
    /// Unix time it took the writer lock.
    since: i64,
}

fn row(paths: &Paths, info: list::EnvInfo) -> Row {
    let env = paths.env(&info.name).expect("listed names are valid");
    let (mounted, pid, live_unsaved) = match daemon::probe(&env.mountpoint) {
        Probe::Live(r) if r.archive == env.id.path() => {
            let unsaved = if r.read_only {
                0
            } else {
                daemon::status(&env.mountpoint).map_or(0, |s| s.unsaved_changes)
            };
            (
                Some(if r.read_only {
                    MountState::ReadOnly
                } else {
                    MountState::Writable
                }),
                Some(r.pid),
                Some(unsaved),
            )
        }
        Probe::Stale => (Some(MountState::Stale), None, None),
        _ => (None, None, None),
    };
    let unsaved = live_unsaved
        .unwrap_or_else(|| overlay::unsaved_on_disk(&paths.upper, &env.id).unwrap_or(0) as u64);
    let writer_elsewhere = match env.writer() {
        Some((h, None)) if !h.node.is_this() => Some(Elsewhere {
            host: h.node.host,
            pid: h.pid,
            user: h.user,
            since: h.since,
        }),
        _ => None,
    };
    Row {
        info,
        writable: env.writable_by_me(),
        shadowed: paths.shadowed(&env),
        mountpoint: env.mountpoint,
        mounted,
        pid,
        unsaved_changes: unsaved,
        writer_elsewhere,
    }
}

pub(super) fn env_list(a: EnvListArgs) -> anyhow::Result<()> {
    let paths = Paths::from_env()?;
    if a.names {
        for n in paths.names() {
            println!("{n}");
        }
        return Ok(());
    }
    let rows: Vec<Row> = list::all(&paths)
        .into_iter()
        .map(|i| row(&paths, i))
        .collect();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "no environments in {} (create one with conda-fuse-create NAME, or pack one with \
             conda-fuse pack DIR --name NAME)",
            paths.archives().display()
        );
        return Ok(());
    }
    print!("{}", table(&rows, paths.archive_dirs.len() > 1));
    Ok(())
}

/// The table env-list prints: a header, then a line per environment with its notes.
fn table(rows: &[Row], several_dirs: bool) -> String {
    let mut out = format!(
        "{:<20} {:>10} {:>8}  {:<22} UNSAVED\n",
        "NAME", "SIZE", "ENTRIES", "MOUNTED"
    );
    for r in rows {
        let entries = match &r.info.entries {
            Ok(n) => n.to_string(),
            Err(_) => "broken".into(),
        };
        let mounted = match (r.mounted, r.pid) {
            (Some(m), Some(pid)) => format!("{} (pid {pid})", m.as_str()),
            (Some(m), None) => m.as_str().to_string(),
            _ => "-".into(),
        };
        let unsaved = if r.unsaved_changes > 0 {
            format!("{} changes", r.unsaved_changes)
        } else {
            "-".into()
        };
        let notes = notes(r, several_dirs);
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!("  ({})", notes.join("; "))
        };
        out.push_str(&format!(
            "{:<20} {:>10} {:>8}  {:<22} {unsaved}{notes}\n",
            r.info.name,
            progress::bytes(r.info.size),
            entries,
            mounted
        ));
    }
    out
}

/// What a row's line adds in parentheses: a writer elsewhere, where the archive is, snapshots,
/// what it hides, and what is wrong with it.
fn notes(r: &Row, several_dirs: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(w) = &r.writer_elsewhere {
        // "rw on login2, pid 4242, since 10:02" (the date too when it is not today's).
        let since = crate::clock::local(w.since);
        let today = crate::clock::local(crate::clock::now().0);
        let shown = match (since.get(..10), today.get(..10)) {
            (Some(day), Some(now)) if day == now => since.get(11..16),
            _ => since.get(..16),
        }
        .unwrap_or(&since);
        notes.push(format!("rw on {}, pid {}, since {shown}", w.host, w.pid));
    }
    let parent = |p: &PathBuf| p.parent().unwrap_or(p).display().to_string();
    if several_dirs || !r.writable {
        notes.push(format!(
            "in {}{}",
            parent(&r.info.archive),
            if r.writable {
                ""
            } else {
                ", read-only for you"
            }
        ));
    }
    if r.info.snapshots > 0 {
        notes.push(format!(
            "{} snapshot{}: +{}",
            r.info.snapshots,
            if r.info.snapshots == 1 { "" } else { "s" },
            progress::bytes(r.info.snapshot_bytes)
        ));
    }
    for hidden in &r.shadowed {
        notes.push(format!("hides the one in {}", parent(hidden)));
    }
    if !r.info.named_layout && r.info.entries.is_ok() {
        notes.push(format!(
            "no {}/ folder: mount it with conda-fuse mount",
            r.info.name
        ));
    }
    if r.mounted == Some(MountState::Stale) {
        notes.push(format!(
            "daemon died: conda-fuse-unmount {} cleans up",
            r.info.name
        ));
    }
    if let Err(e) = &r.info.entries {
        notes.push(e.clone());
    }
    notes
}

pub(super) fn paths() -> anyhow::Result<()> {
    let p = Paths::from_env()?;
    let conda = match crate::conda::find() {
        Ok(c) => format!("{} (from {})", c.program.display(), c.found_by),
        Err(e) => e.to_string(),
    };
    let exe = std::env::current_exe()
        .map(|e| e.display().to_string())
        .unwrap_or_default();
    let lines = [
        (
            "archives",
            if p.archive_dirs.len() == 1 {
                format!("{}  (CONDA_FUSE_ARCHIVE_PATH)", p.archives().display())
            } else {
                let dirs: Vec<String> = p
                    .archive_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                format!(
                    "{}  (CONDA_FUSE_ARCHIVE_PATH: looked up in this order; new envs go into the first)",
                    dirs.join(":")
                )
            },
        ),
        (
            "mounts",
            format!(
                "{}  (CONDA_FUSE_MOUNT_ROOT; env NAME at mounts/NAME/NAME)",
                p.mounts.display()
            ),
        ),
        (
            "state",
            format!(
                "{}  (CONDA_FUSE_STATE_DIR; shared by every node: logs, upper layers)",
                p.state.display()
            ),
        ),
        (
            "runtime",
            format!(
                "{}  (CONDA_FUSE_RUNTIME_DIR; this node's mount records, sockets, runs)",
                p.runtime.display()
            ),
        ),
        (
            "upper layers",
            format!(
                "{}  (CONDA_FUSE_UPPER_DIR; unsaved changes of activated envs and run --write)",
                p.upper.display()
            ),
        ),
        (
            "transactions",
            match crate::daemon::state::transaction_upper_root() {
                Some(t) => format!(
                    "{}  (this node's; a create, install or remove until its save)",
                    t.display()
                ),
                None => "in the upper layers' place (CONDA_FUSE_UPPER_DIR is set, or TMPDIR \
                         is not usable)"
                    .into(),
            },
        ),
        ("temporary", format!("{}  (TMPDIR)", p.tmp.display())),
        ("conda", conda),
        ("conda-fuse", exe),
    ];
    for (what, value) in lines {
        println!("{what:<13} {value}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, dir: &str) -> Row {
        Row {
            info: list::EnvInfo {
                name: name.into(),
                archive: PathBuf::from(format!("{dir}/{name}.zip")),
                size: 187 << 20,
                snapshots: 0,
                snapshot_bytes: 0,
                entries: Ok(67084),
                named_layout: true,
            },
            mountpoint: PathBuf::from(format!("/h/miniconda_fuse/envs/{name}")),
            mounted: None,
            pid: None,
            unsaved_changes: 0,
            writer_elsewhere: None,
            writable: true,
            shadowed: Vec::new(),
        }
    }

    /// The table as users see it, every kind of note included (the writer-elsewhere note shows
    /// local time, so it is left to tests/cluster.rs).
    #[test]
    fn env_list_table() {
        let dir = "/h/miniconda_fuse/archives";
        let mut rows = vec![row("ml", dir), row("data", dir), row("old", dir)];
        rows.push(row("lab-tools", "/proj/lab/envs"));
        rows.push(row("broken", dir));
        rows[0].mounted = Some(MountState::Writable);
        rows[0].pid = Some(4242);
        rows[0].unsaved_changes = 17;
        rows[0].info.snapshots = 2;
        rows[0].info.snapshot_bytes = 370 << 20;
        rows[0].shadowed = vec![PathBuf::from("/proj/lab/envs/ml.zip")];
        rows[1].mounted = Some(MountState::ReadOnly);
        rows[1].pid = Some(4343);
        rows[2].mounted = Some(MountState::Stale);
        rows[2].info.named_layout = false;
        rows[3].writable = false;
        rows[4].info.entries = Err("not a zip archive: no end of central directory".into());
        rows[4].info.size = 12;
        insta::assert_snapshot!(table(&rows, false));
        insta::assert_snapshot!("env_list_table_several_dirs", table(&rows[..1], true));
    }
}
