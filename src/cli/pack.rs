//! `pack DIR`: a directory (an environment) into a zip archive, as an environment by name or to any
//! output file. Files are packed as they are: the archive records which prefix the files conda
//! bakes it into hold, and each mount serves them rewritten for its own (`conda::relocation`).

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::report::error_with_hint;

use super::{PackArgs, default_threads, progress};
use crate::archive::build::Source;
use crate::archive::pack::PackPlan;
use crate::archive::{BuildOptions, BuildStats, Compression, build_archive, pack};
use crate::conda::relocate;
use crate::envs::Paths;

/// Where the archive goes and what it becomes.
struct Target {
    output: PathBuf,
    prefix_dir: Option<String>,
    /// The prefix the environment's files were written for (DIR, or where it was installed).
    held: PathBuf,
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
    let held = match &a.from_prefix {
        Some(p) => std::path::absolute(p)?,
        None => crate::conda::relocation::written_for_dir(&std::path::absolute(&a.dir)?),
    };
    let Some(name) = name else {
        return Ok(Target {
            output: a.output.clone().expect("checked"),
            prefix_dir: a.prefix_dir.clone(),
            held,
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
    Ok(Target {
        output: a.output.clone().unwrap_or(env.archive),
        prefix_dir: Some(name),
        held,
    })
}

/// Records `held` as the prefix of the files that hold it: those conda-meta records with a prefix
/// placeholder, `bin/` scripts, and symlinks into it. Returns how many files and symlinks.
fn record_prefix(
    plan: &mut PackPlan,
    dir: &Path,
    prefix_dir: Option<&str>,
    held: &Path,
) -> anyhow::Result<(usize, usize)> {
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
    let held = held.as_os_str().as_bytes();
    let mut recorded = (0, 0);
    for f in &files {
        if let Some(&i) = by_name.get(&name_of(&f.rel))
            && matches!(plan.entries[i].source, Source::File { .. })
        {
            plan.entries[i].prefix = Some(held.to_vec());
            recorded.0 += 1;
        }
    }
    for e in &mut plan.entries {
        if let Source::Symlink(t) = &e.source
            && t.strip_prefix(held)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"))
        {
            e.prefix = Some(held.to_vec());
            recorded.1 += 1;
        }
    }
    Ok(recorded)
}

pub(super) fn run(a: PackArgs) -> anyhow::Result<()> {
    let compression =
        Compression::new(a.compression.into(), a.level).map_err(anyhow::Error::msg)?;
    let t = target(&a)?;
    let out_dir = output_dir(&t.output, a.force)?;
    // Never pack the archive into itself when it is written inside the directory being packed.
    let exclude: Vec<_> = t.output.canonicalize().into_iter().collect();
    let mut plan = pack::plan_directory(&a.dir, t.prefix_dir.as_deref(), &exclude)?;
    let recorded = record_prefix(&mut plan, &a.dir, t.prefix_dir.as_deref(), &t.held)?;
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
    report(&stats, &t, recorded);
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

/// The summary of a pack, and which prefix its files hold.
fn report(stats: &BuildStats, t: &Target, (files, symlinks): (usize, usize)) {
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
    if files + symlinks > 0 {
        println!(
            "{files} files and {symlinks} symlinks hold the prefix {}: a mount anywhere serves them \
             rewritten for its own",
            t.held.display()
        );
    }
}
