//! `history`, `diff`, `rollback` and `prune`: an environment's earlier versions, kept by saves.

use clap::Args;

use super::envs::existing;
use super::progress;
use crate::envs::Paths;
use crate::envs::history::{self, Changes, Version, pick, versions};
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
    let paths = Paths::from_env()?;
    let env = paths.env(&a.name)?;
    let done = history::rollback(&paths, &env, a.to)?;
    let undo = match done.replaced {
        Some(n) => format!(
            "the version it replaced is snapshot {n} (conda-fuse rollback {} --to {n} undoes this)",
            env.name
        ),
        None => "the version it replaced was pruned (CONDA_FUSE_SNAPSHOTS)".into(),
    };
    println!(
        "rolled '{}' back to the version saved {} ({}); {undo}",
        env.name,
        crate::clock::local(done.restored.saved)
            .get(..16)
            .unwrap_or_default(),
        done.changes,
    );
    eprintln!(
        "conda-fuse: note: read-only mounts of '{}' elsewhere (other nodes, running jobs) keep the \
         version they mounted; new mounts, and runs that find a lingering one, get this one",
        env.name
    );
    Ok(())
}

pub(super) fn prune(a: PruneArgs) -> anyhow::Result<()> {
    let env = Paths::from_env()?.env(&a.name)?;
    let p = history::prune(&env, a.keep)?;
    println!(
        "pruned {} snapshots of '{}' ({} freed), {} kept",
        p.gone,
        env.name,
        progress::bytes(p.freed),
        p.kept
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
