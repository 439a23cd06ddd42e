//! `pack DIR`: a directory (an environment) into a zip archive, as an environment by name (prefix
//! rewritten to its mount's) or to any output file.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::report::{WithHint, error_with_hint};

use super::{PackArgs, default_threads, progress};
use crate::archive::build::Source;
use crate::archive::pack::PackPlan;
use crate::archive::{BuildOptions, BuildStats, Compression, build_archive, pack};
use crate::conda::relocate::{self, Rewrite};
use crate::envs::Paths;

/// Where the archive goes and what it becomes.
struct Target {
    output: PathBuf,
    prefix_dir: Option<String>,
    /// (old prefix, new prefix) when the prefix baked into files is rewritten.
    relocate: Option<(String, String)>,
}

fn target(a: &PackArgs) -> anyhow::Result<Target> {
    let name = match (&a.name, &a.output) {
        (Some(n), _) => Some(n.clone()),
        (None, Some(_)) => None,
        (None, None) => {
            let dir = a
                .dir
                .canonicalize()
                .with_context(|| format!("cannot open {}", a.dir.display()))?;
            let base = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Some(base)
        }
    };
    let Some(name) = name else {
        return Ok(Target {
            output: a.output.clone().expect("checked"),
            prefix_dir: a.prefix_dir.clone(),
            relocate: None,
        });
    };
    let paths = Paths::from_env()?;
    let env = paths
        .env(&name)
        .with_context(|| "choose a name with --name")?;
    super::envs::refuse_if_mounted(&env)?;
    std::fs::create_dir_all(paths.archives()).with_context(|| {
        format!(
            "cannot create {} (CONDA_FUSE_ARCHIVE_PATH)",
            paths.archives().display()
        )
    })?;
    let relocate = if a.no_relocate {
        None
    } else {
        let old = match &a.from_prefix {
            Some(p) => std::path::absolute(p)?,
            None => a
                .dir
                .canonicalize()
                .with_context(|| format!("cannot open {}", a.dir.display()))?,
        };
        let old = old
            .to_str()
            .context("the old prefix is not valid UTF-8")
            .hint("pass --no-relocate")?
            .to_string();
        let new = env
            .prefix
            .to_str()
            .expect("settled paths are UTF-8")
            .to_string();
        (old != new).then_some((old, new))
    };
    Ok(Target {
        output: a.output.clone().unwrap_or(env.archive),
        prefix_dir: Some(name),
        relocate,
    })
}

/// What relocation did, for the summary.
#[derive(Default)]
struct Relocated {
    rewritten: usize,
    /// Binary files that keep the old prefix: (path in the env, strings without room).
    no_room: Vec<(PathBuf, usize)>,
    symlinks: usize,
}

/// Rewrites the old prefix in the planned files (copies in `scratch`, which must outlive the
/// build) and in absolute symlink targets.
fn relocate_plan(
    plan: &mut PackPlan,
    dir: &Path,
    prefix_dir: Option<&str>,
    (old, new): (&str, &str),
    scratch: &Path,
) -> anyhow::Result<Relocated> {
    let files = relocate::prefix_files(dir)?;
    let name_of = |rel: &Path| {
        let mut n = prefix_dir
            .map(|p| format!("{p}/").into_bytes())
            .unwrap_or_default();
        n.extend_from_slice(rel.as_os_str().as_bytes());
        n
    };
    let by_name: HashMap<Vec<u8>, usize> = plan
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.clone(), i))
        .collect();
    let mut done = Relocated::default();
    for (n, f) in files.iter().enumerate() {
        let Some(&i) = by_name.get(&name_of(&f.rel)) else {
            continue;
        };
        let Source::File { path, size } = &plan.entries[i].source else {
            continue;
        };
        let data =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        match relocate::rewrite(&data, f, old.as_bytes(), new.as_bytes()) {
            Rewrite::Unchanged => {}
            Rewrite::TooLong { count } => done.no_room.push((f.rel.clone(), count)),
            Rewrite::Changed(out) => {
                let copy = scratch.join(n.to_string());
                std::fs::write(&copy, &out)
                    .with_context(|| format!("cannot write {}", copy.display()))?;
                plan.bytes = plan.bytes - size + out.len() as u64;
                plan.entries[i].source = Source::File {
                    path: copy,
                    size: out.len() as u64,
                };
                done.rewritten += 1;
            }
        }
    }
    let old_dir = format!("{old}/");
    for e in &mut plan.entries {
        if let Source::Symlink(t) = &mut e.source
            && (t.as_slice() == old.as_bytes() || t.starts_with(old_dir.as_bytes()))
        {
            let mut nt = new.as_bytes().to_vec();
            nt.extend_from_slice(&t[old.len()..]);
            *t = nt;
            done.symlinks += 1;
        }
    }
    Ok(done)
}

pub(super) fn run(a: PackArgs) -> anyhow::Result<()> {
    let compression =
        Compression::new(a.compression.into(), a.level).map_err(anyhow::Error::msg)?;
    let t = target(&a)?;
    let out_dir = output_dir(&t.output, a.force)?;
    // Never pack the archive into itself when it is written inside the directory being packed.
    let exclude: Vec<_> = t.output.canonicalize().into_iter().collect();
    let mut plan = pack::plan_directory(&a.dir, t.prefix_dir.as_deref(), &exclude)?;
    let scratch = tempfile::Builder::new()
        .prefix(".conda-fuse-relocate-")
        .tempdir_in(&out_dir)
        .with_context(|| format!("cannot create a scratch directory in {}", out_dir.display()))?;
    let relocated = match &t.relocate {
        Some((old, new)) => Some(relocate_plan(
            &mut plan,
            &a.dir,
            t.prefix_dir.as_deref(),
            (old, new),
            scratch.path(),
        )?),
        None => None,
    };
    let opts = BuildOptions {
        compression,
        threads: a.threads.unwrap_or_else(default_threads),
        spill_dir: out_dir.clone(),
    };
    let bar = progress::bytes_bar("packing", plan.bytes);
    let total = plan.entries.len();
    let mut done = 0usize;
    let stats = build_archive(&t.output, &plan.entries, &opts, &mut |bytes| {
        done += 1;
        bar.inc(bytes);
        if done % 256 == 0 || done == total {
            bar.set_message(format!("{done}/{total} entries"));
        }
    })
    .with_context(|| format!("packing {} into {}", a.dir.display(), t.output.display()))?;
    bar.finish_and_clear();
    report(&stats, &t, relocated.as_ref());
    if let Some(name) = t
        .prefix_dir
        .as_deref()
        .filter(|_| a.name.is_some() || a.output.is_none())
    {
        println!("activate it with: conda-fuse-activate {name}");
    }
    Ok(())
}

/// The directory the archive goes into, which must exist; an archive already there is replaced
/// only with --force.
fn output_dir(output: &Path, force: bool) -> anyhow::Result<PathBuf> {
    if output.exists() && !force {
        return Err(error_with_hint(
            format!("{} already exists", output.display()),
            "pass --force to replace it, or choose another --output / --name",
        ));
    }
    let out_dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !out_dir.is_dir() {
        return Err(error_with_hint(
            format!(
                "directory {} for the archive does not exist",
                out_dir.display()
            ),
            format!("create it first (mkdir -p {})", out_dir.display()),
        ));
    }
    Ok(out_dir)
}

/// The summary of a pack, and what the relocation did and could not do.
fn report(stats: &BuildStats, t: &Target, relocated: Option<&Relocated>) {
    let ratio = if stats.bytes_in > 0 {
        stats.bytes_out as f64 / stats.bytes_in as f64
    } else {
        1.0
    };
    println!(
        "packed {} entries: {} in, {} out (ratio {:.2}) in {:.1}s -> {}",
        stats.entries,
        progress::bytes(stats.bytes_in),
        progress::bytes(stats.bytes_out),
        ratio,
        stats.elapsed.as_secs_f64(),
        t.output.display()
    );
    if let (Some(r), Some((old, new))) = (relocated, &t.relocate) {
        println!(
            "prefix {old} -> {new}: rewritten in {} files and {} symlinks",
            r.rewritten, r.symlinks
        );
        if !r.no_room.is_empty() {
            eprintln!(
                "conda-fuse: warning: {} binary files keep the old prefix {old}: the new prefix is longer \
                 than the room conda left in them. Programs reading those strings look in {old}; keep \
                 it in place, or use a shorter CONDA_FUSE_MOUNT_ROOT and pack again:",
                r.no_room.len()
            );
            for (f, n) in r.no_room.iter().take(20) {
                eprintln!("  {} ({n} strings)", f.display());
            }
            if r.no_room.len() > 20 {
                eprintln!("  ... and {} more", r.no_room.len() - 20);
            }
        }
    }
}
