//! Measuring what a directory's filesystem does, for `doctor`: the table in `traits.rs` says what
//! is known of each filesystem, a probe says what this mount does (an unknown FUSE filesystem, a
//! GPFS or BeeGFS version, a mount option). Everything happens in a private scratch directory that
//! is removed again.

use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// What a probe found: each call's failure (`None`: it worked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    /// `renameat2(RENAME_NOREPLACE)` to a free name.
    pub no_replace: Option<Errno>,
    /// `link` into another directory.
    pub cross_dir_link: Option<Errno>,
    /// A sub-second mtime set with `futimens` reads back as set.
    pub subsecond_mtime: bool,
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Probes the filesystem of `dir` (which must exist and be writable).
pub fn probe(dir: &Path) -> io::Result<Probed> {
    use std::os::unix::fs::DirBuilderExt;
    let scratch = Scratch(dir.join(format!(
        ".conda-fuse-probe-{}-{}",
        std::process::id(),
        crate::clock::now().1
    )));
    std::fs::DirBuilder::new().mode(0o700).create(&scratch.0)?;
    let sub = scratch.0.join("sub");
    std::fs::DirBuilder::new().mode(0o700).create(&sub)?;
    let a = scratch.0.join("a");
    let file = std::fs::File::create(&a)?;

    let b = scratch.0.join("b");
    let no_replace = super::rename::renameat2_noreplace(&a, &b).err();
    let name = if no_replace.is_none() { &b } else { &a };
    let cross_dir_link = nix::unistd::linkat(
        nix::fcntl::AT_FDCWD,
        name,
        nix::fcntl::AT_FDCWD,
        &sub.join("c"),
        nix::fcntl::AtFlags::empty(),
    )
    .err();

    let half = nix::sys::time::TimeSpec::new(1_000_000_000, 500_000_000);
    nix::sys::stat::futimens(&file, &half, &half)?;
    drop(file);
    let md = nix::sys::stat::stat(name)?;
    Ok(Probed {
        no_replace,
        cross_dir_link,
        subsecond_mtime: md.st_mtime_nsec == 500_000_000,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_disk_does_everything_and_the_probe_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = probe(dir.path()).unwrap();
        // tmpfs or ext4 under the test's TMPDIR: all of it works.
        assert_eq!(
            p,
            Probed {
                no_replace: None,
                cross_dir_link: None,
                subsecond_mtime: true,
            }
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
