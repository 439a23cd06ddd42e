//! What activating an environment changes, when conda's shell function is not there to do it:
//! PATH gets PREFIX/bin in front, CONDA_PREFIX and CONDA_DEFAULT_ENV name the prefix (their old
//! values are kept in CONDA_FUSE_PREV_*), and the env's `etc/conda/activate.d` scripts run.
//! Deactivating runs `deactivate.d`, takes PREFIX/bin out of PATH and restores the old values. The
//! same changes serve `conda-fuse run`, which applies them to a child process.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Set(String, String),
    Unset(String),
    /// Source a script (in `run`: through `sh`).
    Source(PathBuf),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub actions: Vec<Action>,
}

/// Variables activation replaces, and where their previous values are kept.
const KEPT: &[(&str, &str)] = &[
    ("CONDA_PREFIX", "CONDA_FUSE_PREV_CONDA_PREFIX"),
    ("CONDA_DEFAULT_ENV", "CONDA_FUSE_PREV_CONDA_DEFAULT_ENV"),
];

/// The scripts in `dir` ending in `.ext`, sorted as conda sorts them (by name).
fn scripts(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == ext) && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn set(name: &str, value: impl Into<String>) -> Action {
    Action::Set(name.to_string(), value.into())
}

/// Activation of `prefix`, given the current environment (`var`) and the script extension of
/// the shell (`sh` or `fish`).
pub fn activate(
    prefix: &str,
    script_ext: &str,
    var: &dyn Fn(&str) -> Option<String>,
    by: &str,
) -> Change {
    let mut actions = Vec::new();
    for (name, kept) in KEPT {
        actions.push(match var(name) {
            Some(v) => set(kept, v),
            None => Action::Unset(kept.to_string()),
        });
    }
    let bin = format!("{prefix}/bin");
    let path = match var("PATH").filter(|p| !p.is_empty()) {
        Some(p) => format!("{bin}:{p}"),
        None => bin,
    };
    actions.push(set("PATH", path));
    actions.push(set("CONDA_PREFIX", prefix));
    actions.push(set("CONDA_DEFAULT_ENV", prefix));
    actions.push(set("CONDA_FUSE_ACTIVATED_BY", by));
    let dir = Path::new(prefix).join("etc/conda/activate.d");
    actions.extend(scripts(&dir, script_ext).into_iter().map(Action::Source));
    Change { actions }
}

/// Undoes `activate` for the environment in CONDA_PREFIX; None when no environment is active.
pub fn deactivate(script_ext: &str, var: &dyn Fn(&str) -> Option<String>) -> Option<Change> {
    let prefix = var("CONDA_PREFIX")?;
    let dir = Path::new(&prefix).join("etc/conda/deactivate.d");
    let mut actions: Vec<Action> = scripts(&dir, script_ext)
        .into_iter()
        .map(Action::Source)
        .collect();
    let bin = format!("{prefix}/bin");
    let mut removed = false;
    let path: Vec<String> = var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|p| {
            let drop = !removed && *p == bin;
            removed |= drop;
            !drop
        })
        .map(str::to_string)
        .collect();
    actions.push(set("PATH", path.join(":")));
    for (name, kept) in KEPT {
        actions.push(match var(kept) {
            Some(v) => set(name, v),
            None => Action::Unset(name.to_string()),
        });
        actions.push(Action::Unset(kept.to_string()));
    }
    Some(Change { actions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    /// Applies a change to a map, as a shell would (scripts aside).
    fn apply(start: &[(&str, &str)], change: &Change) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = start
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for a in &change.actions {
            match a {
                Action::Set(k, v) => {
                    m.insert(k.clone(), v.clone());
                }
                Action::Unset(k) => {
                    m.remove(k);
                }
                Action::Source(_) => {}
            }
        }
        m
    }

    #[test]
    fn deactivate_restores_what_activate_changed() {
        let start = [("PATH", "/usr/bin:/bin"), ("CONDA_PREFIX", "/opt/base")];
        let on = activate("/e/ml/ml", "sh", &env(&start), "manual");
        let during = apply(&start, &on);
        assert_eq!(during["PATH"], "/e/ml/ml/bin:/usr/bin:/bin");
        assert_eq!(during["CONDA_PREFIX"], "/e/ml/ml");
        let pairs: Vec<(&str, &str)> = during
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let off = deactivate("sh", &env(&pairs)).unwrap();
        let after = apply(&pairs, &off);
        let mut after: Vec<_> = after
            .into_iter()
            .filter(|(k, _)| k != "CONDA_FUSE_ACTIVATED_BY")
            .collect();
        after.sort();
        let mut want: Vec<_> = start
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        want.sort();
        assert_eq!(after, want);
    }

    #[test]
    fn activate_d_scripts_run_in_name_order() {
        let prefix = tempfile::tempdir().unwrap();
        let dir = prefix.path().join("etc/conda/activate.d");
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["b.sh", "a.sh", "c.fish", "d.txt"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let p = prefix.path().to_str().unwrap();
        let sources: Vec<_> = activate(p, "sh", &env(&[]), "manual")
            .actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Source(s) => Some(s.file_name().unwrap().to_str().unwrap().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(sources, ["a.sh", "b.sh"]);
    }
}
