//! The user's conda: found as `$CONDA_FUSE_CONDA` (a command line, split like a shell would),
//! `$CONDA_EXE`, `$MAMBA_EXE`, or `conda`, `mamba`, `micromamba` on PATH, and run with `--prefix`.
//! conda-fuse stays a plain client of it: arguments pass through exactly as the user gave them.

pub mod relocate;
pub mod relocation;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Conda,
    Mamba,
    Micromamba,
}

#[derive(Debug, Clone)]
pub struct Conda {
    pub program: PathBuf,
    /// Words of `$CONDA_FUSE_CONDA` after the program (a wrapper script's interpreter arguments).
    pub leading: Vec<String>,
    pub flavor: Flavor,
    /// Where it was found, for `paths` and `doctor`.
    pub found_by: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum CondaError {
    #[error(
        "no conda found (looked for $CONDA_FUSE_CONDA, $CONDA_EXE, $MAMBA_EXE, and conda, mamba and micromamba on PATH)"
    )]
    NotFound,
    #[error("CONDA_FUSE_CONDA is not a usable command line ({0})")]
    BadCommandLine(String),
}

impl crate::hint::Hint for CondaError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            CondaError::NotFound => {
                "install conda, mamba or micromamba, or point CONDA_FUSE_CONDA \
                                     at one (export CONDA_FUSE_CONDA=/path/to/conda)"
                    .into()
            }
            CondaError::BadCommandLine(_) => "quote it as a shell would".into(),
        })
    }
}

fn flavor_of(program: &Path) -> Flavor {
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.contains("micromamba") {
        Flavor::Micromamba
    } else if name.contains("mamba") {
        Flavor::Mamba
    } else {
        Flavor::Conda
    }
}

fn found(program: PathBuf, leading: Vec<String>, found_by: &'static str) -> Conda {
    let flavor = flavor_of(&program);
    Conda {
        program,
        leading,
        flavor,
        found_by,
    }
}

/// A command line as a shell would split it: the program and its leading arguments.
fn split_command_line(line: &str) -> Result<(String, Vec<String>), CondaError> {
    let mut words =
        shell_words::split(line).map_err(|e| CondaError::BadCommandLine(e.to_string()))?;
    if words.is_empty() {
        return Err(CondaError::BadCommandLine(format!(
            "{line:?} names no program"
        )));
    }
    let program = words.remove(0);
    Ok((program, words))
}

/// Finds the conda to use, in the order documented above.
pub fn find() -> Result<Conda, CondaError> {
    if let Some(line) = crate::settings::get().conda.clone() {
        let (program, words) = split_command_line(&line)?;
        let program = which::which(&program).unwrap_or_else(|_| PathBuf::from(&program));
        return Ok(found(program, words, "CONDA_FUSE_CONDA"));
    }
    for var in ["CONDA_EXE", "MAMBA_EXE"] {
        if let Some(p) = std::env::var_os(var)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            && p.is_file()
        {
            return Ok(found(
                p,
                Vec::new(),
                if var == "CONDA_EXE" {
                    "CONDA_EXE"
                } else {
                    "MAMBA_EXE"
                },
            ));
        }
    }
    for name in ["conda", "mamba", "micromamba"] {
        if let Ok(p) = which::which(name) {
            return Ok(found(p, Vec::new(), "PATH"));
        }
    }
    Err(CondaError::NotFound)
}

impl Conda {
    /// `conda SUB --prefix PREFIX ARGS...`.
    pub fn command(&self, sub: &str, prefix: &Path, args: &[OsString]) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.leading)
            .arg(sub)
            .arg("--prefix")
            .arg(prefix)
            .args(args);
        c
    }

    /// Shows the command line as it will run, for messages.
    pub fn describe(&self, sub: &str, prefix: &Path, args: &[OsString]) -> String {
        let mut words: Vec<String> = vec![self.program.display().to_string()];
        words.extend(self.leading.iter().cloned());
        words.push(sub.into());
        words.push("--prefix".into());
        words.push(prefix.display().to_string());
        words.extend(args.iter().map(|a| a.to_string_lossy().into_owned()));
        shell_words::join(words)
    }

    /// The shell code conda itself prints to activate (`deactivate` when `prefix` is None) in
    /// `shell`, or None when this conda cannot (or fails to) produce it.
    pub fn shell_code(&self, shell: &str, prefix: Option<&Path>) -> Option<String> {
        let mut c = Command::new(&self.program);
        c.args(&self.leading);
        match (self.flavor, prefix) {
            (Flavor::Micromamba, Some(p)) => {
                c.args(["shell", "activate", "-s", shell, "-p"]).arg(p)
            }
            (Flavor::Micromamba, None) => c.args(["shell", "deactivate", "-s", shell]),
            (_, Some(p)) => c.arg(format!("shell.{shell}")).arg("activate").arg(p),
            (_, None) => c.arg(format!("shell.{shell}")).arg("deactivate"),
        };
        let out = c.stderr(std::process::Stdio::null()).output().ok()?;
        (out.status.success() && !out.stdout.is_empty())
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Whether `args` already say "yes" to conda's question.
pub fn has_yes(args: &[OsString]) -> bool {
    args.iter()
        .any(|a| a == OsStr::new("-y") || a == OsStr::new("--yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_that_name_no_program_are_refused() {
        for line in ["#x", "   # only a comment"] {
            assert!(
                matches!(split_command_line(line), Err(CondaError::BadCommandLine(_))),
                "{line:?}"
            );
        }
        assert!(matches!(
            split_command_line("'unterminated"),
            Err(CondaError::BadCommandLine(_))
        ));
        assert_eq!(
            split_command_line("python3 '/opt/my conda.py' --x").unwrap(),
            (
                "python3".into(),
                vec!["/opt/my conda.py".into(), "--x".into()]
            )
        );
    }
}
