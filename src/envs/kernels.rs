//! Jupyter kernelspecs for environments: `KERNELS/conda-fuse-NAME/kernel.json` in Jupyter's data
//! directory (as `jupyter kernelspec install` puts them), whose argv starts the kernel through
//! `conda-fuse kernel launch NAME`, so the env is mounted (read-only, shared, as `run` does) when a
//! notebook starts and goes when the last user on the node is gone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Env;
use crate::archive::Index;

const PREFIX: &str = "conda-fuse-";

/// Jupyter's per-user data directory: $JUPYTER_DATA_DIR, else $XDG_DATA_HOME/jupyter, else
/// ~/.local/share/jupyter (what `jupyter --data-dir` says on Linux).
pub fn user_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("JUPYTER_DATA_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(d).join("jupyter");
    }
    crate::daemon::state::home_dir().join(".local/share/jupyter")
}

/// The kernels directory under a data directory (`--prefix DIR` means DIR/share/jupyter).
pub fn kernels_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("kernels")
}

pub fn spec_dir(kernels: &Path, env_name: &str) -> PathBuf {
    kernels.join(format!("{PREFIX}{env_name}"))
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{path} is a symlink; conda-fuse writes kernelspecs only into directories it made")]
    Symlink { path: PathBuf },
    #[error("{dir} belongs to uid {owner}, not to you: it is their kernel, not yours to replace")]
    NotYours { dir: PathBuf, owner: u32 },
    #[error("cannot write the kernelspec in {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
}

impl crate::hint::Hint for InstallError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            InstallError::Symlink { path } => {
                format!(
                    "look at {}, and remove it if nothing needs it",
                    path.display()
                )
            }
            InstallError::NotYours { .. } => {
                "install into your own Jupyter directory (--user), or ask its owner to remove it"
                    .into()
            }
            InstallError::Io { .. } => return None,
        })
    }
}

/// Writes `text` as `kernel.json` of the spec directory `dir` (made readable by all, as Jupyter's
/// are: a kernelspec under a JupyterHub prefix is there to be shared). Kernel directories may be
/// shared with other users, so nothing planted there is followed or overwritten: the spec
/// directory must be a real directory of ours, and the file is replaced by a rename (a symlink
/// named kernel.json is replaced, never written through).
pub fn write_spec(dir: &Path, text: &str) -> Result<(), InstallError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
    let io = |source| InstallError::Io {
        dir: dir.to_owned(),
        source,
    };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let md = std::fs::symlink_metadata(dir).map_err(io)?;
    if md.file_type().is_symlink() {
        return Err(InstallError::Symlink {
            path: dir.to_owned(),
        });
    }
    let me = nix::unistd::geteuid().as_raw();
    if md.uid() != me {
        return Err(InstallError::NotYours {
            dir: dir.to_owned(),
            owner: md.uid(),
        });
    }
    let tmp = dir.join(format!(".kernel.json.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(io)?;
    let written = f
        .write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, dir.join("kernel.json")));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

#[derive(Debug, Serialize, Deserialize)]
pub struct KernelSpec {
    pub argv: Vec<String>,
    pub display_name: String,
    pub language: String,
    /// Where to find environments when Jupyter starts without the user's shell variables.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub metadata: Metadata,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub conda_fuse: Option<Marker>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Marker {
    pub env: String,
}

impl KernelSpec {
    pub fn new(env: &Env, binary: &Path, display_name: Option<&str>) -> KernelSpec {
        let mut vars = std::collections::BTreeMap::new();
        for var in [
            "CONDA_FUSE_ARCHIVE_PATH",
            "CONDA_FUSE_MOUNT_ROOT",
            "CONDA_FUSE_STATE_DIR",
        ] {
            if let Ok(v) = std::env::var(var)
                && !v.is_empty()
            {
                vars.insert(var.to_string(), v);
            }
        }
        KernelSpec {
            argv: vec![
                binary.display().to_string(),
                "kernel".into(),
                "launch".into(),
                env.name.clone(),
                "{connection_file}".into(),
            ],
            display_name: display_name
                .map_or_else(|| default_display_name(&env.name), str::to_string),
            language: "python".into(),
            env: vars,
            metadata: Metadata {
                conda_fuse: Some(Marker {
                    env: env.name.clone(),
                }),
            },
        }
    }
}

/// Whether the environment's archive holds ipykernel (`NAME/lib/pythonX.Y/site-packages/ipykernel/`),
/// read from its index alone, without mounting.
pub fn has_ipykernel(env: &Env) -> Result<bool, String> {
    let file = crate::regular_file::open(&env.archive).map_err(|e| e.to_string())?;
    let index = Index::read(&file, &env.archive).map_err(|e| e.to_string())?;
    let lib = format!("{}/lib/", env.name);
    Ok(index.entries().iter().any(|e| {
        let name = index.name(e);
        name.strip_prefix(lib.as_bytes()).is_some_and(|rest| {
            let rest = String::from_utf8_lossy(rest);
            rest.starts_with("python")
                && rest
                    .split_once('/')
                    .is_some_and(|(_, r)| r.starts_with("site-packages/ipykernel/"))
        })
    }))
}

/// Moves the kernelspec in `dir` (of `kernels`, for `old`) to `new`'s: the same spec launching
/// `new` (a display name conda-fuse gave follows the name), written under the new name before
/// the old one goes. Returns the new spec directory.
pub fn rename_spec(dir: &Path, kernels: &Path, old: &Env, new: &Env) -> Result<PathBuf, String> {
    let text =
        crate::regular_file::read_to_string(&dir.join("kernel.json")).map_err(|e| e.to_string())?;
    let mut spec: KernelSpec = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let launch = spec.argv.iter().position(|a| a == "launch");
    if let Some(at) = launch
        .map(|l| l + 1)
        .filter(|&at| spec.argv.get(at) == Some(&old.name))
    {
        spec.argv[at] = new.name.clone();
    }
    if spec.display_name == default_display_name(&old.name) {
        spec.display_name = default_display_name(&new.name);
    }
    spec.metadata.conda_fuse = Some(Marker {
        env: new.name.clone(),
    });
    let new_dir = spec_dir(kernels, &new.name);
    let text = serde_json::to_string_pretty(&spec).map_err(|e| e.to_string())?;
    write_spec(&new_dir, &(text + "\n")).map_err(|e| crate::hint::messages(&e).join(": "))?;
    std::fs::remove_dir_all(dir).map_err(|e| e.to_string())?;
    Ok(new_dir)
}

fn default_display_name(env: &str) -> String {
    format!("Python ({env} via conda-fuse)")
}

/// The kernelspecs conda-fuse installed in `kernels`: (env name, spec directory).
pub fn list(kernels: &Path) -> Vec<(String, PathBuf)> {
    let Ok(dir) = std::fs::read_dir(kernels) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = dir
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(PREFIX))
        .filter_map(|e| {
            let text = crate::regular_file::read_to_string(&e.path().join("kernel.json")).ok()?;
            let spec: KernelSpec = serde_json::from_str(&text).ok()?;
            Some((spec.metadata.conda_fuse?.env, e.path()))
        })
        .collect();
    found.sort();
    found
}
