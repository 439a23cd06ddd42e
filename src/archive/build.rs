//! Writing a whole archive from a planned list of entries, crash-safely: the archive is written to
//! `NAME.zip.tmp-*` beside the destination, fsynced, renamed over the destination, and the directory
//! fsynced. Until the rename the destination is untouched; after it, the new archive is complete.
//! New data is compressed on all cores; entries copied from an existing archive are copied raw.

use std::fs::File;
use std::io::{self, BufWriter};
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::compress::{self, Compressed, Compression, Payload};
use super::compress_file::{self, SourceChanged};
use super::format::{self, HeaderFields, SeekTable};
use super::meta::{self, Kind, Meta};
use super::pipeline::{self, Limits};
use super::read::Archive;
use super::write::ZipWriter;

pub enum Source {
    Dir,
    Symlink(Vec<u8>),
    /// A file on disk; `size` is what lstat said when the plan was made (for progress).
    File {
        path: PathBuf,
        size: u64,
    },
    /// A file opened only when its turn comes (an upper data file, reached through its private
    /// directory rather than a path: a plan may name more files than a process may hold open);
    /// `shown` names it in messages.
    Open {
        open: Opener,
        size: u64,
        shown: PathBuf,
    },
    Bytes(Vec<u8>),
    /// Entry `entry` of an open archive, copied as it is stored (no recompression).
    Raw {
        archive: Arc<Archive>,
        entry: u32,
    },
}

/// Opens one file for reading.
pub type Opener = Arc<dyn Fn() -> io::Result<std::fs::File> + Send + Sync>;

pub struct Planned {
    /// Full name inside the archive; directories end with '/'.
    pub name: Vec<u8>,
    pub meta: Meta,
    pub source: Source,
    /// Its link group (see `format::link_group`).
    pub link_group: Option<u64>,
    /// The install prefix its content was written for, where the archive records one (see
    /// `format::link_group` and `conda::relocation`).
    pub prefix: Option<Vec<u8>>,
}

impl Planned {
    /// Uncompressed bytes this entry contributes (for progress and summaries).
    pub fn size_hint(&self) -> u64 {
        match &self.source {
            Source::Dir => 0,
            Source::Symlink(t) | Source::Bytes(t) => t.len() as u64,
            Source::File { size, .. } | Source::Open { size, .. } => *size,
            Source::Raw { archive, entry } => archive.index().entry(*entry).uncompressed_size,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub compression: Compression,
    pub threads: usize,
    /// Where large compressed payloads wait for their turn to be written.
    pub spill_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct BuildStats {
    pub entries: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Bytes of holes in sparse files that were never read.
    pub holes: u64,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{what} {path}: {source}")]
    Write {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("the archive just written does not read back ({0}); it was not put in place")]
    Verify(String),
    #[error(transparent)]
    Changed(#[from] SourceChanged),
}

impl crate::hint::Hint for BuildError {
    fn hint(&self) -> Option<String> {
        let source = match self {
            BuildError::Write { source, .. } => source,
            BuildError::Changed(_) => return Some("stop what writes to it and pack again".into()),
            BuildError::Read { .. } | BuildError::Verify(_) => return None,
        };
        match source.raw_os_error()? {
            libc::ENOSPC | libc::EDQUOT => {
                Some("free some space (or quota) there and try again".into())
            }
            libc::EACCES | libc::EPERM | libc::EROFS => {
                Some("the directory must be writable by you".into())
            }
            _ => None,
        }
    }
}

fn write_error(what: &'static str, path: &Path, source: io::Error) -> BuildError {
    BuildError::Write {
        what,
        path: path.to_owned(),
        source,
    }
}

/// What a worker hands to the writer for one entry.
enum Prepared {
    Data(Compressed),
    Raw {
        archive: Arc<Archive>,
        entry: u32,
        /// The entry's local header and data in `archive`, when they can be copied as they are.
        span: Option<Range<u64>>,
    },
}

/// Where entry `i` of `archive` can be copied whole (local header and data), which needs the old
/// local header to say what the new one would: same name and metadata.
fn reusable_span(archive: &Archive, i: u32, p: &Planned) -> Option<Range<u64>> {
    let e = archive.index().entry(i);
    let span = archive.span(i);
    let same = archive.index().name(e) == p.name.as_slice()
        && e.meta == p.meta
        && span.end - span.start >= e.compressed_size;
    same.then_some(span)
}

fn prepare(p: &Planned, opts: &BuildOptions) -> Result<Prepared, BuildError> {
    let read_err = |path: &Path, source: io::Error| match source.downcast::<SourceChanged>() {
        Ok(changed) => BuildError::Changed(changed),
        Err(source) => BuildError::Read {
            path: path.to_owned(),
            source,
        },
    };
    let no_path = Path::new("<memory>");
    Ok(Prepared::Data(match &p.source {
        Source::Dir => compress::compress_bytes(Vec::new(), Compression::Store)
            .map_err(|e| read_err(no_path, e))?,
        Source::Symlink(target) => compress::compress_bytes(target.clone(), opts.compression)
            .map_err(|e| read_err(no_path, e))?,
        Source::Bytes(data) => compress::compress_bytes(data.clone(), opts.compression)
            .map_err(|e| read_err(no_path, e))?,
        Source::File { path, .. } => {
            compress_file::compress_file(path, opts.compression, &opts.spill_dir)
                .map_err(|e| read_err(path, e))?
        }
        Source::Open { open, shown, .. } => open()
            .and_then(|file| {
                compress_file::compress_open(&file, shown, opts.compression, &opts.spill_dir)
            })
            .map_err(|e| read_err(shown, e))?,
        Source::Raw { archive, entry } => {
            return Ok(Prepared::Raw {
                archive: archive.clone(),
                entry: *entry,
                span: reusable_span(archive, *entry, p),
            });
        }
    }))
}

fn header<'a>(
    p: &'a Planned,
    method: u16,
    crc32: u32,
    csize: u64,
    usize_: u64,
    central_extra: &'a [u8],
) -> HeaderFields<'a> {
    let (uid, gid) = p.meta.owner.unwrap_or((0, 0));
    HeaderFields {
        name: &p.name,
        method,
        crc32,
        compressed_size: csize,
        uncompressed_size: usize_,
        mode: p.meta.mode(),
        mtime: p.meta.mtime,
        uid,
        gid,
        dos_datetime: meta::unix_to_dos(p.meta.mtime),
        central_extra,
        flags: None,
    }
}

/// Central-directory-only extra fields: the seek table, the hard-link group, a device's number,
/// the prefix held.
fn central_extra(seek: Option<&SeekTable>, p: &Planned) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(t) = seek {
        t.encode(&mut out);
    }
    if let Some(g) = p.link_group {
        format::encode_link_group(g, &mut out);
    }
    if p.meta.kind.is_device() {
        format::encode_device(p.meta.rdev, &mut out);
    }
    if let Some(prefix) = &p.prefix {
        format::encode_prefix(prefix, &mut out);
    }
    out
}

/// An archive written and flushed under a temporary name beside its destination, not yet in place.
pub struct PendingArchive {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
    dir: PathBuf,
    pub stats: BuildStats,
    /// The written archive as a reader sees it: read back and checked against the plan.
    pub written: Archive,
}

impl PendingArchive {
    /// Where the finished archive waits.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Renames the archive into place and flushes the directory: the destination holds either the
    /// old archive or this one, never a mix. Returns the installed archive, open (as read back).
    pub fn install(self) -> Result<(BuildStats, Archive), BuildError> {
        let PendingArchive {
            tmp,
            dest,
            dir,
            stats,
            written,
        } = self;
        tmp.persist(&dest)
            .map_err(|e| write_error("cannot move the new archive to", &dest, e.error))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| write_error("cannot flush directory", &dir, e))?;
        Ok((stats, written.renamed(&dest)))
    }
}

impl PendingArchive {
    /// The written file (to give it the mode of the archive it stands for).
    pub fn written_file(&self) -> &File {
        self.tmp.as_file()
    }

    /// Renames the archive into place where nothing is (AlreadyExists if something is), and
    /// flushes the directory.
    pub fn install_new(self) -> std::io::Result<()> {
        let PendingArchive { tmp, dest, dir, .. } = self;
        let path = tmp.into_temp_path();
        crate::hostfs::rename_noreplace(&path, &dest)?;
        // Renamed: nothing is left at the temporary name to delete.
        std::mem::forget(path);
        File::open(&dir)?.sync_all()
    }

    /// Keeps the archive at its temporary name beside its destination, for the caller to move.
    pub fn keep(self) -> std::io::Result<PathBuf> {
        self.tmp.into_temp_path().keep().map_err(|e| e.error)
    }
}

/// Writes `plan` as a zip archive at `dest`, atomically. `on_entry(bytes_in)` runs after each entry.
pub fn build_archive(
    dest: &Path,
    plan: &[Planned],
    opts: &BuildOptions,
    on_entry: &mut dyn FnMut(u64),
) -> Result<BuildStats, BuildError> {
    write_pending(dest, plan, opts, on_entry)?
        .install()
        .map(|(stats, _)| stats)
}

/// Writes `plan` as a zip archive beside `dest` (`NAME.zip.tmp-*`), flushed to disk, and returns it
/// not yet renamed into place. Dropping the result removes the temporary file.
pub fn write_pending(
    dest: &Path,
    plan: &[Planned],
    opts: &BuildOptions,
    on_entry: &mut dyn FnMut(u64),
) -> Result<PendingArchive, BuildError> {
    let started = Instant::now();
    let (tmp, dir) = temporary_beside(dest)?;
    let tmp_path = tmp.path().to_owned();
    let mut writer = ZipWriter::new(BufWriter::with_capacity(1 << 20, tmp.as_file()));
    let mut bytes_in = 0u64;
    let mut holes = 0u64;
    let limits = Limits {
        threads: opts.threads.max(1),
        max_ahead: 4096,
        max_bytes: 128 << 20,
    };
    pipeline::ordered_parallel(
        plan.len(),
        &limits,
        |i| prepare(&plan[i], opts),
        |prep| match prep {
            Prepared::Data(c) => match &c.payload {
                Payload::Memory(v) => v.len() as u64,
                Payload::Spill { .. } => 0,
            },
            Prepared::Raw { .. } => 0,
        },
        |i, prep| {
            let (wrote, skipped) = write_entry(&mut writer, &plan[i], prep, &tmp_path)?;
            bytes_in += wrote;
            holes += skipped;
            on_entry(wrote);
            Ok(())
        },
    )?;
    let entries_written = started.elapsed();
    let bytes_out = finish_file(writer, &tmp_path, dest)?;
    tracing::debug!(entries = ?entries_written, finish = ?(started.elapsed() - entries_written), "archive written");
    let written = verify(&tmp_path, plan)?;
    Ok(PendingArchive {
        tmp,
        dest: dest.to_owned(),
        dir,
        written,
        stats: BuildStats {
            entries: plan.len() as u64,
            bytes_in,
            bytes_out,
            holes,
            elapsed: started.elapsed(),
        },
    })
}

/// A new temporary file beside `dest` (same directory, so the final rename stays on one
/// filesystem), and that directory.
fn temporary_beside(dest: &Path) -> Result<(tempfile::NamedTempFile, PathBuf), BuildError> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{file_name}.tmp-"))
        .tempfile_in(&dir)
        .map_err(|e| write_error("cannot create a temporary archive in", &dir, e))?;
    Ok((tmp, dir))
}

/// Writes one prepared entry: compressed data, or an unchanged entry's raw bytes (as a span of
/// the old archive where it can). Returns the bytes of data it stands for, and the bytes of
/// holes not read.
fn write_entry(
    writer: &mut ZipWriter<BufWriter<&File>>,
    p: &Planned,
    prep: Prepared,
    tmp_path: &Path,
) -> Result<(u64, u64), BuildError> {
    let write_failed = |e| write_error("cannot write", tmp_path, e);
    match prep {
        Prepared::Data(mut c) => {
            let extra = central_extra(c.seek.as_ref(), p);
            let h = header(
                p,
                c.method,
                c.crc32,
                c.payload.len(),
                c.uncompressed_size,
                &extra,
            );
            let mut r = c
                .payload
                .reader()
                .map_err(|e| write_error("cannot reread spill for", tmp_path, e))?;
            writer.add(&h, &mut r).map_err(write_failed)?;
            Ok((c.uncompressed_size, c.holes))
        }
        Prepared::Raw {
            archive,
            entry,
            span,
        } => {
            let e = archive.index().entry(entry).clone();
            let extra = central_extra(e.seek.as_deref(), p);
            let h = header(
                p,
                e.method,
                e.crc32,
                e.compressed_size,
                e.uncompressed_size,
                &extra,
            );
            if let Some(span) = span {
                let h = HeaderFields {
                    flags: Some(e.flags),
                    ..h
                };
                writer
                    .add_span(&h, archive.file_arc(), span)
                    .map_err(write_failed)?;
            } else {
                let mut r = archive.raw_reader(entry).map_err(|err| BuildError::Read {
                    path: archive.path().to_owned(),
                    source: io::Error::other(format!(
                        "entry {}: {err}",
                        crate::display::escape(&p.name)
                    )),
                })?;
                writer.add(&h, &mut r).map_err(write_failed)?;
            }
            Ok((e.uncompressed_size, 0))
        }
    }
}

/// Ends the archive (central directory, end records), gives it its final mode and makes it
/// durable. Returns its size.
fn finish_file(
    writer: ZipWriter<BufWriter<&File>>,
    tmp_path: &Path,
    dest: &Path,
) -> Result<u64, BuildError> {
    let write_failed = |e| write_error("cannot write", tmp_path, e);
    let (buf, bytes_out) = writer.finish().map_err(write_failed)?;
    let file: &File = buf.into_inner().map_err(|e| write_failed(e.into_error()))?;
    // Temporary files are created 0600 in the creator's group; the archive gets the mode and
    // group of the one it replaces (who may read it is decided there), or the usual 0666 minus
    // umask.
    match std::fs::metadata(dest) {
        Ok(replaced) => take_access(file, &replaced),
        Err(_) => file.set_permissions(std::fs::Permissions::from_mode(new_mode())),
    }
    .map_err(|e| write_error("cannot set permissions of", tmp_path, e))?;
    file.sync_all()
        .map_err(|e| write_error("cannot flush", tmp_path, e))?;
    Ok(bytes_out)
}

/// Reads a written archive back as any reader would (its central directory, every header) and
/// checks that it holds the plan's entries, so that nothing unreadable is ever put in place.
fn verify(path: &Path, plan: &[Planned]) -> Result<Archive, BuildError> {
    let archive = Archive::open(path).map_err(|e| BuildError::Verify(e.to_string()))?;
    let index = archive.index();
    let same = index.len() == plan.len()
        && index
            .entries()
            .iter()
            .zip(plan)
            .all(|(e, p)| index.name(e) == p.name.as_slice());
    if !same {
        return Err(BuildError::Verify(format!(
            "{} holds {} entries, not the {} written",
            path.display(),
            index.len(),
            plan.len()
        )));
    }
    Ok(archive)
}

/// Gives `file` the group and permission bits of `replaced` (the archive it takes the place of):
/// the group first, since a change of group clears set-group-ID bits. A group this user is not in
/// cannot be given; the mode still is.
pub fn take_access(file: &File, replaced: &std::fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mine = file.metadata()?;
    if mine.gid() != replaced.gid() {
        match nix::unistd::fchown(file, None, Some(nix::unistd::Gid::from_raw(replaced.gid()))) {
            Ok(()) | Err(nix::errno::Errno::EPERM) => {}
            Err(e) => return Err(e.into()),
        }
    }
    file.set_permissions(std::fs::Permissions::from_mode(replaced.mode() & 0o7777))
}

/// The mode of a new archive: 0666 minus the umask.
fn new_mode() -> u32 {
    let mask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(mask);
    0o666 & !mask.bits()
}

/// A directory entry name: `name` plus a trailing slash.
pub fn dir_name(mut name: Vec<u8>) -> Vec<u8> {
    if name.last() != Some(&b'/') {
        name.push(b'/');
    }
    name
}

/// Metadata for a node from its `lstat`.
pub fn meta_from_fs(md: &std::fs::Metadata) -> Meta {
    use std::os::unix::fs::MetadataExt;
    let kind = Kind::from_mode(md.mode());
    Meta {
        kind,
        perm: md.mode() & 0o7777,
        owner: Some((md.uid(), md.gid())),
        mtime: md.mtime(),
        rdev: if kind.is_device() { md.rdev() } else { 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prefix an entry holds is written with it and read back by the index, whose table of
    /// prefixes holds each once; a copy as stored keeps it only if the plan says so.
    #[test]
    fn prefixes_held_are_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, prefix: Option<&[u8]>| Planned {
            name: name.as_bytes().to_vec(),
            meta: Meta {
                kind: Kind::File,
                perm: 0o644,
                owner: None,
                mtime: 1_700_000_000,
                rdev: 0,
            },
            source: Source::Bytes(b"#!/a/env/bin/python\n".to_vec()),
            link_group: None,
            prefix: prefix.map(<[u8]>::to_vec),
        };
        let plan = [
            file("env/bin/a", Some(b"/a/env")),
            file("env/bin/b", None),
            file("env/bin/c", Some(b"/b/other env")),
            file("env/bin/d", Some(b"/a/env")),
        ];
        let opts = BuildOptions {
            compression: Compression::Deflate(6),
            threads: 1,
            spill_dir: dir.path().to_owned(),
        };
        let first = dir.path().join("first.zip");
        build_archive(&first, &plan, &opts, &mut |_| {}).unwrap();
        let archive = Arc::new(Archive::open(&first).unwrap());
        let index = archive.index();
        let held: Vec<Option<&[u8]>> = (0..4).map(|i| index.held_prefix(i)).collect();
        let want: [Option<&[u8]>; 4] = [
            Some(b"/a/env"),
            None,
            Some(b"/b/other env"),
            Some(b"/a/env"),
        ];
        assert_eq!(held, want);
        assert_eq!(index.held_prefixes().count(), 3);
        // Copied as stored: what the plan says, not what the source entry had.
        let copied: Vec<Planned> = (0..4u32)
            .map(|i| Planned {
                source: Source::Raw {
                    archive: archive.clone(),
                    entry: i,
                },
                prefix: (i != 0)
                    .then(|| index.held_prefix(i).map(<[u8]>::to_vec))
                    .flatten(),
                ..file(&format!("env/bin/{i}"), None)
            })
            .collect();
        let second = dir.path().join("second.zip");
        build_archive(&second, &copied, &opts, &mut |_| {}).unwrap();
        let again = Archive::open(&second).unwrap();
        let held: Vec<Option<&[u8]>> = (0..4).map(|i| again.index().held_prefix(i)).collect();
        assert_eq!(
            held,
            [None, None, Some(&b"/b/other env"[..]), Some(&b"/a/env"[..])]
        );
        assert_eq!(again.read_all(0).unwrap(), b"#!/a/env/bin/python\n");
    }
}
