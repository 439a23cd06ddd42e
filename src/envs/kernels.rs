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
            display_name: display_name.map_or_else(
                || format!("Python ({} via conda-fuse)", env.name),
                str::to_string,
            ),
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
    let file = std::fs::File::open(&env.archive).map_err(|e| e.to_string())?;
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

/// The kernelspecs conda-fuse installed in `kernels`: (env name, spec directory).
pub fn list(kernels: &Path) -> Vec<(String, PathBuf)> {
    let Ok(dir) = std::fs::read_dir(kernels) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = dir
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(PREFIX))
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path().join("kernel.json")).ok()?;
            let spec: KernelSpec = serde_json::from_str(&text).ok()?;
            Some((spec.metadata.conda_fuse?.env, e.path()))
        })
        .collect();
    found.sort();
    found
}
