//! Every `CONDA_FUSE_*` setting, read from the environment once per process into typed values.
//! A value that cannot be used is an error naming the variable, what it holds and what it takes,
//! never silently the default (an empty value is the same as none). The CLI loads them before a
//! command runs (`load`), so a daemon it forks has them too; the layers below read them with
//! `get`.
//!
//! Not settings: `CONDA_FUSE_LOG` (a log filter, read by `logging` before anything else),
//! `CONDA_FUSE_FAULT` (the tests' fault injection) and `CONDA_FUSE_ACTIVE_ENV` (what the shell
//! hook has activated).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `CONDA_FUSE_ARCHIVE_PATH`: directories of archives, in order (empty: the default).
    pub archive_path: Vec<PathBuf>,
    /// `CONDA_FUSE_MOUNT_ROOT`.
    pub mount_root: Option<PathBuf>,
    /// `CONDA_FUSE_STATE_DIR`.
    pub state_dir: Option<PathBuf>,
    /// `CONDA_FUSE_UPPER_DIR`.
    pub upper_dir: Option<PathBuf>,
    /// `CONDA_FUSE_RUNTIME_DIR`.
    pub runtime_dir: Option<PathBuf>,
    /// `CONDA_FUSE_CONDA`: the conda command line to use.
    pub conda: Option<String>,
    /// `CONDA_FUSE_HEARTBEAT`: how often a writable daemon refreshes its lock record.
    pub heartbeat: Duration,
    /// `CONDA_FUSE_FLOCK`: whether the writer lock uses flock at all.
    pub flock: bool,
    /// `CONDA_FUSE_SNAPSHOTS`: earlier versions each save keeps.
    pub snapshots: u32,
    /// `CONDA_FUSE_PREFETCH`: record and prefetch start-up profiles.
    pub prefetch: bool,
    /// `CONDA_FUSE_STARTUP_WINDOW`: how long after a mount its start-up is recorded.
    pub startup_window: Duration,
    /// `CONDA_FUSE_RUN_LINGER`: how long a mount runs made stays after the last run (None: the
    /// default, which depends on whether this is a batch job).
    pub run_linger: Option<Duration>,
    /// `CONDA_FUSE_RUN_WAIT`: how long a run waits for another run's mounting or unmounting.
    pub run_wait: Duration,
    /// The batch job this process belongs to: `CONDA_FUSE_JOB_ID` (`none`: no job), else the
    /// scheduler's (`SLURM_JOB_ID`, `PBS_JOBID`, `LSB_JOBID`, `FLUX_JOB_ID`).
    pub job: Option<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            archive_path: Vec::new(),
            mount_root: None,
            state_dir: None,
            upper_dir: None,
            runtime_dir: None,
            conda: None,
            heartbeat: Duration::from_secs(5),
            flock: true,
            snapshots: 1,
            prefetch: true,
            startup_window: Duration::from_secs(10),
            run_linger: None,
            run_wait: Duration::from_secs(600),
            job: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var} is {value:?}, which conda-fuse cannot use: it takes {takes}")]
pub struct SettingsError {
    pub var: &'static str,
    pub value: String,
    pub takes: &'static str,
}

impl crate::hint::Hint for SettingsError {
    fn hint(&self) -> Option<String> {
        Some(format!(
            "set {} to {}, or unset it for the default",
            self.var, self.takes
        ))
    }
}

/// Parses each setting from `var` (the environment, or a table in tests).
fn parse(var: &dyn Fn(&str) -> Option<OsString>) -> Result<Settings, SettingsError> {
    let text = |name: &'static str| -> Result<Option<String>, SettingsError> {
        match var(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.into_string().map(Some).map_err(|v| SettingsError {
                var: name,
                value: v.to_string_lossy().into_owned(),
                takes: "valid UTF-8",
            }),
        }
    };
    let bad = |var, value: &str, takes| SettingsError {
        var,
        value: value.to_string(),
        takes,
    };
    let dir = |name: &'static str| -> Result<Option<PathBuf>, SettingsError> {
        match text(name)? {
            Some(v) if !v.starts_with('/') || v.contains('\n') => {
                Err(bad(name, &v, "an absolute path without newlines"))
            }
            other => Ok(other.map(PathBuf::from)),
        }
    };
    let seconds = |name: &'static str, min: f64, max: f64, takes| {
        text(name)?
            .map(|v| match v.trim().parse::<f64>() {
                Ok(s) if s.is_finite() && s >= min && s <= max => Ok(Duration::from_secs_f64(s)),
                _ => Err(bad(name, &v, takes)),
            })
            .transpose()
    };
    let switch = |name: &'static str| {
        text(name)?
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "on" | "1" | "yes" | "true" => Ok(true),
                "off" | "0" | "no" | "false" => Ok(false),
                _ => Err(bad(name, &v, "on or off")),
            })
            .transpose()
    };
    let d = Settings::default();
    let archive_path = match var("CONDA_FUSE_ARCHIVE_PATH") {
        Some(list) => std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => Vec::new(),
    };
    Ok(Settings {
        archive_path,
        mount_root: text("CONDA_FUSE_MOUNT_ROOT")?.map(PathBuf::from),
        state_dir: dir("CONDA_FUSE_STATE_DIR")?,
        upper_dir: dir("CONDA_FUSE_UPPER_DIR")?,
        runtime_dir: dir("CONDA_FUSE_RUNTIME_DIR")?,
        conda: text("CONDA_FUSE_CONDA")?.filter(|c| !c.trim().is_empty()),
        heartbeat: seconds(
            "CONDA_FUSE_HEARTBEAT",
            0.05,
            600.0,
            "seconds between 0.05 and 600",
        )?
        .unwrap_or(d.heartbeat),
        flock: switch("CONDA_FUSE_FLOCK")?.unwrap_or(d.flock),
        snapshots: text("CONDA_FUSE_SNAPSHOTS")?
            .map(|v| {
                v.trim().parse().map_err(|_| {
                    bad(
                        "CONDA_FUSE_SNAPSHOTS",
                        &v,
                        "a number of versions, 0 or more",
                    )
                })
            })
            .transpose()?
            .unwrap_or(d.snapshots),
        prefetch: switch("CONDA_FUSE_PREFETCH")?.unwrap_or(d.prefetch),
        startup_window: seconds(
            "CONDA_FUSE_STARTUP_WINDOW",
            0.0,
            3600.0,
            "seconds between 0 and 3600",
        )?
        .unwrap_or(d.startup_window),
        run_linger: seconds(
            "CONDA_FUSE_RUN_LINGER",
            0.0,
            86400.0,
            "seconds between 0 and 86400",
        )?,
        run_wait: seconds(
            "CONDA_FUSE_RUN_WAIT",
            0.0,
            86400.0,
            "seconds between 0 and 86400",
        )?
        .unwrap_or(d.run_wait),
        job: match text("CONDA_FUSE_JOB_ID")? {
            Some(v) if v.trim() == "none" => None,
            Some(v) => Some(v),
            None => ["SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "FLUX_JOB_ID"]
                .into_iter()
                .find_map(|v| var(v).and_then(|s| s.into_string().ok()))
                .filter(|s| !s.trim().is_empty()),
        },
    })
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Reads the settings from the environment (once per process), or says which is unusable.
pub fn load() -> Result<&'static Settings, SettingsError> {
    if let Some(s) = SETTINGS.get() {
        return Ok(s);
    }
    let parsed = parse(&|name| std::env::var_os(name))?;
    Ok(SETTINGS.get_or_init(|| parsed))
}

/// The settings `load` read. Code that runs without the CLI (the library's own tests) gets them
/// read here, and the defaults where a value is unusable.
pub fn get() -> &'static Settings {
    SETTINGS.get_or_init(|| parse(&|name| std::env::var_os(name)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        parse(&|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn values_are_typed_and_bad_ones_name_their_variable() {
        assert_eq!(with(&[]).unwrap(), Settings::default());
        let s = with(&[
            ("CONDA_FUSE_HEARTBEAT", "0.5"),
            ("CONDA_FUSE_FLOCK", "off"),
            ("CONDA_FUSE_SNAPSHOTS", "3"),
            ("CONDA_FUSE_PREFETCH", "0"),
            ("CONDA_FUSE_RUN_LINGER", "0"),
            ("CONDA_FUSE_RUN_WAIT", "30"),
            ("CONDA_FUSE_STATE_DIR", "/s"),
            ("CONDA_FUSE_ARCHIVE_PATH", "/a::/b"),
            ("CONDA_FUSE_CONDA", "  "),
            ("CONDA_FUSE_MOUNT_ROOT", ""),
        ])
        .unwrap();
        assert_eq!(s.heartbeat, Duration::from_millis(500));
        assert!(!s.flock && !s.prefetch);
        assert_eq!(s.snapshots, 3);
        assert_eq!(s.run_linger, Some(Duration::ZERO));
        assert_eq!(s.run_wait, Duration::from_secs(30));
        assert_eq!(s.state_dir, Some(PathBuf::from("/s")));
        assert_eq!(s.archive_path, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!((s.conda, s.mount_root, s.job), (None, None, None));
        let job = |pairs: &[(&str, &str)]| with(pairs).unwrap().job;
        assert_eq!(job(&[("SLURM_JOB_ID", "42")]).as_deref(), Some("42"));
        assert_eq!(job(&[("PBS_JOBID", "7.pbs")]).as_deref(), Some("7.pbs"));
        assert_eq!(
            job(&[("SLURM_JOB_ID", "42"), ("CONDA_FUSE_JOB_ID", "mine")]).as_deref(),
            Some("mine")
        );
        assert_eq!(
            job(&[("SLURM_JOB_ID", "42"), ("CONDA_FUSE_JOB_ID", "none")]),
            None
        );

        let table: &[(&str, &str, &str)] = &[
            (
                "CONDA_FUSE_RUN_LINGER",
                "ten",
                "seconds between 0 and 86400",
            ),
            ("CONDA_FUSE_RUN_LINGER", "-1", "seconds between 0 and 86400"),
            ("CONDA_FUSE_RUN_WAIT", "1e9", "seconds between 0 and 86400"),
            ("CONDA_FUSE_HEARTBEAT", "0", "seconds between 0.05 and 600"),
            (
                "CONDA_FUSE_HEARTBEAT",
                "NaN",
                "seconds between 0.05 and 600",
            ),
            (
                "CONDA_FUSE_SNAPSHOTS",
                "-1",
                "a number of versions, 0 or more",
            ),
            ("CONDA_FUSE_FLOCK", "maybe", "on or off"),
            ("CONDA_FUSE_PREFETCH", "disabled", "on or off"),
            (
                "CONDA_FUSE_STATE_DIR",
                "relative/dir",
                "an absolute path without newlines",
            ),
            (
                "CONDA_FUSE_RUNTIME_DIR",
                "/a\nb",
                "an absolute path without newlines",
            ),
        ];
        for &(var, value, takes) in table {
            assert_eq!(
                with(&[(var, value)]),
                Err(SettingsError {
                    var,
                    value: value.into(),
                    takes
                }),
                "{var}={value:?}"
            );
        }
    }
}
