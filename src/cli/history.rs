//! `history`, `diff`, `rollback` and `prune`: an environment's earlier versions, kept by saves.

use anyhow::Context;
use clap::Args;

use super::envs::{existing, refuse_if_mounted, refuse_if_not_mine};
use super::progress;
use super::report::error_with_hint;
use crate::commit::snapshots;
use crate::envs::Paths;
use crate::envs::history::{Changes, Version, versions};
use crate::overlay::{self, lock::WriterLock};
use crate::shell::ENV_VALUE_NAME as ENV;

#[derive(Args)]
pub(super) struct HistoryArgs {
    /// Environment name
    #[arg(value_name = ENV)]
    name: String,
}

#[derive(Args)]
pub(super) struct DiffArgs {
    /// Environment name
    #[arg(value_name = ENV)]
    name: String,
    /// Snapshot to compare with the current version (1 = the newest)
    #[arg(default_value_t = 1)]
    snapshot: usize,
}

#[derive(Args)]
pub(super) struct RollbackArgs {
    /// Environment name
    #[arg(value_name = ENV)]
    name: String,
    /// Snapshot to make current (1 = the newest, the version before the last save)
    #[arg(long, default_value_t = 1)]
    to: usize,
}

#[derive(Args)]
pub(super) struct PruneArgs {
    /// Environment name
    #[arg(value_name = ENV)]
    name: String,
    /// Snapshots to keep (the newest)
    #[arg(long, default_value_t = 0)]
    keep: u32,
}

pub(super) fn history(a: HistoryArgs) -> anyhow::Result<()> {
    let env = existing(&a.name)?;
    let all = versions(&env);
    print!(
        "{}",
        history_table(&all, |t| crate::clock::local(t)
            .get(..16)
            .unwrap_or_default()
            .to_string())
    );
    Ok(())
}

/// The versions as `history` prints them, `when` showing a save's time.
fn history_table(all: &[Version], when: impl Fn(i64) -> String) -> String {
    let mut out = format!(
        "{:<4} {:<17} {:>10} {:>8}  CHANGES\n",
        "#", "SAVED", "SIZE", "ENTRIES"
    );
    for (k, v) in all.iter().enumerate() {
        let changes = match all.get(k + 1) {
            Some(older) => Changes::between(older, v).summary(),
            None => match v.packages.len() {
                1 => "1 package".to_string(),
                n => format!("{n} packages"),
            },
        };
        out.push_str(&format!(
            "{:<4} {:<17} {:>10} {:>8}  {changes}\n",
            if v.number == 0 {
                "now".to_string()
            } else {
                v.number.to_string()
            },
            when(v.saved),
            progress::bytes(v.size),
            v.entries
                .as_ref()
                .map_or_else(|_| "broken".into(), |n| n.to_string()),
        ));
    }
    if all.len() == 1 {
        out.push_str(
            "(no snapshots: each save keeps CONDA_FUSE_SNAPSHOTS earlier versions, default 1)\n",
        );
    }
    out
}

fn pick(all: &[Version], n: usize) -> anyhow::Result<&Version> {
    all.get(n).filter(|_| n > 0).with_context(|| {
        format!(
            "there is no snapshot {n}: there are {} (see conda-fuse history)",
            all.len().saturating_sub(1)
        )
    })
}

pub(super) fn diff(a: DiffArgs) -> anyhow::Result<()> {
    let env = existing(&a.name)?;
    let all = versions(&env);
    let older = pick(&all, a.snapshot)?;
    let c = Changes::between(older, &all[0]);
    if c.is_empty() {
        println!("no package changes between snapshot {} and now", a.snapshot);
    }
    for (n, v) in &c.added {
        println!("+ {n} {v}");
    }
    for (n, v) in &c.removed {
        println!("- {n} {v}");
    }
    for (n, o, v) in &c.updated {
        println!("~ {n} {o} -> {v}");
    }
    Ok(())
}

pub(super) fn rollback(a: RollbackArgs) -> anyhow::Result<()> {
    let env = existing(&a.name)?;
    refuse_if_not_mine(&env, "roll back")?;
    refuse_if_mounted(&env)?;
    // The writer lock keeps every writable mount out while the archive changes under it.
    let acquired = WriterLock::acquire(&env.id, &env.mountpoint, false)
        .map_err(|e| anyhow::anyhow!("cannot roll back '{}': {e}", env.name))?;
    let paths = Paths::from_env()?;
    // A journal this version cannot read may hold changes: never taken for none.
    let unsaved = overlay::unsaved_on_disk(&paths.upper, &env.id).map_err(|e| {
        error_with_hint(
            format!(
                "cannot tell whether '{}' has unsaved changes: {e}",
                env.name
            ),
            "mount it with a conda-fuse that reads that journal, and save or discard them",
        )
    })?;
    if unsaved > 0 {
        return Err(error_with_hint(
            format!(
                "'{}' has {unsaved} unsaved changes (from a mount that ended without saving)",
                env.name
            ),
            format!(
                "mount it and save or discard them first (conda-fuse-activate {}, then \
                 conda-fuse-unmount {} or conda-fuse unmount --discard)",
                env.name, env.name
            ),
        ));
    }
    let all = versions(&env);
    let chosen = pick(&all, a.to)?.clone();
    let (restored, replaced) = snapshots::restore(&env.id, a.to, snapshots::keep_from_env())
        .with_context(|| format!("cannot roll back {}", env.archive.display()))?;
    drop(acquired);
    let undo = match replaced {
        Some(n) => format!(
            "the version it replaced is snapshot {n} (conda-fuse rollback {} --to {n} undoes this)",
            env.name
        ),
        None => "the version it replaced was pruned (CONDA_FUSE_SNAPSHOTS)".into(),
    };
    println!(
        "rolled '{}' back to the version saved {} ({}); {undo}",
        env.name,
        crate::clock::local(restored.saved)
            .get(..16)
            .unwrap_or_default(),
        Changes::between(&all[0], &chosen).summary(),
    );
    Ok(())
}

pub(super) fn prune(a: PruneArgs) -> anyhow::Result<()> {
    let env = existing(&a.name)?;
    let before: u64 = snapshots::list(&env.id).iter().map(|s| s.size).sum();
    let gone = snapshots::prune(&env.id, a.keep)
        .with_context(|| format!("cannot prune {}", snapshots::dir_of(&env.id).display()))?;
    let after: u64 = snapshots::list(&env.id).iter().map(|s| s.size).sum();
    println!(
        "pruned {gone} snapshots of '{}' ({} freed), {} kept",
        env.name,
        progress::bytes(before - after),
        snapshots::list(&env.id).len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(
        number: usize,
        packages: &[(&str, &str)],
        entries: Result<usize, String>,
    ) -> Version {
        Version {
            number,
            path: format!("/h/archives/ml.zip.{number}").into(),
            saved: 1_764_000_000 - number as i64 * 86_400,
            size: (180 + number as u64) << 20,
            entries,
            packages: packages
                .iter()
                .map(|(n, v)| (n.to_string(), (v.to_string(), "0".to_string())))
                .collect(),
        }
    }

    #[test]
    fn history_lists_versions_with_their_package_changes() {
        let all = vec![
            version(
                0,
                &[("numpy", "2.1"), ("python", "3.11"), ("scipy", "1.14")],
                Ok(67084),
            ),
            version(1, &[("numpy", "2.0"), ("python", "3.11")], Ok(60210)),
            version(2, &[("python", "3.11")], Err("damaged".into())),
        ];
        let when = |t: i64| format!("day {}", t / 86_400);
        insta::assert_snapshot!(format!(
            "{}\n{}",
            history_table(&all, when),
            history_table(&all[..1], when)
        ));
    }
}
