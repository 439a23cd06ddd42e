use anyhow::{Context, bail};

use super::{PackArgs, default_threads, progress};
use crate::archive::{BuildOptions, Compression, build_archive, pack};

pub(super) fn run(a: PackArgs) -> anyhow::Result<()> {
    let compression =
        Compression::parse(a.compression.name(), a.level).map_err(anyhow::Error::msg)?;
    if a.output.exists() && !a.force {
        bail!(
            "{} already exists; pass --force to replace it, or choose another --output",
            a.output.display()
        );
    }
    let out_dir = match a.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    if !out_dir.is_dir() {
        bail!(
            "directory {} for the archive does not exist; create it first (mkdir -p {})",
            out_dir.display(),
            out_dir.display()
        );
    }
    // Never pack the archive into itself when it is written inside the directory being packed.
    let exclude: Vec<_> = a.output.canonicalize().into_iter().collect();
    let plan = pack::plan_directory(&a.dir, a.prefix_dir.as_deref(), &exclude)?;
    for skipped in &plan.skipped {
        eprintln!(
            "conda-fuse: warning: skipping {} (FIFOs, sockets and devices cannot be stored in a zip)",
            skipped.display()
        );
    }
    let opts = BuildOptions {
        compression,
        threads: a.threads.unwrap_or_else(default_threads),
        spill_dir: out_dir.clone(),
    };
    let bar = progress::bytes_bar("packing", plan.bytes);
    let total = plan.entries.len();
    let mut done = 0usize;
    let stats = build_archive(&a.output, &plan.entries, &opts, &mut |bytes| {
        done += 1;
        bar.inc(bytes);
        if done % 256 == 0 || done == total {
            bar.set_message(format!("{done}/{total} entries"));
        }
    })
    .with_context(|| format!("packing {} into {}", a.dir.display(), a.output.display()))?;
    bar.finish_and_clear();
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
        a.output.display()
    );
    Ok(())
}
