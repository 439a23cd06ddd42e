//! A mount at another prefix than the one its archive's files were written for (a lab member's
//! own mount root, `run NAME@N`, a renamed env, an env mounted by hand elsewhere): conda bakes the
//! prefix into files, so the daemon serves those files rewritten for the mount's prefix, by conda's
//! own rules (`relocate`), while the archive stays as written (`unzip` gives the files as they were).
//!
//! Which files: those the archive's own `conda-meta/*.json` records with a prefix placeholder
//! (text and binary), `bin/` scripts with a shebang (pip's entry points are not recorded), and
//! symlinks into the prefix. Which prefix each holds: the one the archive records with it (the
//! "CP" field: `pack` and saves write it), else the one the env's scripts name (`env`); an archive
//! whose files record none and whose scripts name none is served as written.
//!
//! Computed once per mount, read-only or writable (and again for each version a save puts in
//! place): rewritten text is kept whole (scripts and configs, small), binaries as the few byte
//! ranges that changed (conda's binary rule keeps the size, so offsets and `mmap` stay valid).
//! Reads of every other entry cost nothing more. A save records, with the entries it copies as
//! they are, the prefix this mount found they hold (`held`).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

mod env;

use env::{Files, read_entry};
pub use env::{written_for, written_for_dir};

use super::relocate::{self, Mode, PrefixFile, Rewrite};
use crate::archive::{Archive, EntryError};

/// Larger `bin/` files are programs, not scripts: their shebang is never looked for.
pub(super) const SCRIPT_MAX: u64 = 1 << 20;
/// Rewritten text kept in memory, at most; more is rewritten again at each read.
const KEPT_MAX: usize = 128 << 20;
/// Larger entries are served as written (a text file conda recorded that big is not a config).
pub(super) const REWRITE_MAX: u64 = 256 << 20;
/// Longer symlink targets are no paths (PATH_MAX).
pub(super) const SYMLINK_MAX: u32 = 4096;

#[derive(Debug)]
enum Served {
    /// The whole rewritten content (text files, scripts, symlink targets; their size may change).
    Whole(Vec<u8>),
    /// The same size, these byte ranges replaced (binaries).
    Patched(Vec<(u64, Vec<u8>)>),
    /// Rewritten again at each read: text beyond what is kept in memory (`KEPT_MAX`).
    Recomputed {
        file: PrefixFile,
        original_size: u64,
        size: u64,
    },
    /// A binary whose strings have no room for this mount's prefix: served as written.
    AsWritten,
}

/// An entry holding another prefix than the mount's, and what it is served as.
#[derive(Debug)]
struct Held {
    /// Which of `Relocation::prefixes` its content holds.
    prefix: usize,
    served: Served,
}

#[derive(Debug)]
pub struct Relocation {
    /// The prefix of this mount.
    pub to: PathBuf,
    /// The prefixes entries hold other than this mount's (`from` and any recorded by a save).
    prefixes: Vec<Vec<u8>>,
    held: HashMap<u32, Held>,
    /// Bytes of rewritten text kept in memory.
    kept: usize,
    /// Binaries whose strings have no room for the new prefix: served as written.
    pub too_long: Vec<String>,
}

impl Relocation {
    /// What a mount of `archive` at `mountpoint` serves rewritten; None when nothing needs it (its
    /// files hold this mount's prefix already, or it holds no conda environment).
    pub fn plan(archive: &Archive, mountpoint: &Path) -> Option<Relocation> {
        let place = elsewhere(archive, mountpoint)?;
        let mut relocation = Relocation {
            to: place.to.clone(),
            prefixes: place.others.clone(),
            held: HashMap::new(),
            kept: 0,
            too_long: Vec::new(),
        };
        let index = archive.index();
        // The prefix an entry holds, when it is one this mount rewrites.
        let other = |entry: u32| {
            let prefix = index.held_prefix(entry).or(place.default.as_deref())?;
            place.others.iter().position(|p| p == prefix)
        };
        // One at a time: only what is kept stays in memory.
        for (entry, file) in place.files.candidates(archive) {
            let Some(prefix) = other(entry) else { continue };
            let max = if file.mode == Mode::Shebang {
                SCRIPT_MAX
            } else {
                REWRITE_MAX
            };
            if let Some(data) = read_entry(archive, entry, max) {
                relocation.add(entry, prefix, &file, &data, archive);
            }
        }
        // A target naming a prefix is at least as long as the shortest one: relative targets
        // (`libz.so -> libz.so.1`, most of an env's) are not even read.
        let shortest = place.others.iter().map(Vec::len).min().unwrap_or(0) as u64;
        for entry in place.files.symlinks(archive, shortest) {
            let Some(prefix) = other(entry) else { continue };
            if let Some(target) = read_entry(archive, entry, u64::from(SYMLINK_MAX)) {
                relocation.add_symlink(entry, prefix, &target);
            }
        }
        tracing::info!(
            from = %relocation.from().display(),
            to = %relocation.to.display(),
            files = relocation.len(),
            too_long = relocation.too_long.len(),
            "serving files rewritten for this mount's prefix"
        );
        Some(relocation)
    }

    /// What `entry` (holding `data` written for `prefixes[prefix]`, of the kind `file` says) is
    /// served as.
    fn add(
        &mut self,
        entry: u32,
        prefix: usize,
        file: &PrefixFile,
        data: &[u8],
        archive: &Archive,
    ) {
        let served = match self.rewrite(prefix, data, file) {
            Rewrite::Unchanged => return,
            Rewrite::Changed(out) if file.mode == Mode::Binary && out.len() == data.len() => {
                Served::Patched(changed_ranges(data, &out))
            }
            Rewrite::Changed(out) if self.kept + out.len() <= KEPT_MAX => {
                self.kept += out.len();
                Served::Whole(out)
            }
            Rewrite::Changed(out) => Served::Recomputed {
                file: file.clone(),
                original_size: data.len() as u64,
                size: out.len() as u64,
            },
            Rewrite::TooLong { .. } => {
                let index = archive.index();
                let name = index.name(index.entry(entry));
                self.too_long.push(crate::display::escape(name));
                Served::AsWritten
            }
        };
        self.held.insert(entry, Held { prefix, served });
    }

    /// A symlink into the prefix it was written for points into this mount's instead.
    fn add_symlink(&mut self, entry: u32, prefix: usize, target: &[u8]) {
        let old = self.prefixes[prefix].as_slice();
        let Some(rest) = target.strip_prefix(old) else {
            return;
        };
        if rest.is_empty() || rest.starts_with(b"/") {
            let new = [self.to.as_os_str().as_bytes(), rest].concat();
            self.kept += new.len();
            let served = Served::Whole(new);
            self.held.insert(entry, Held { prefix, served });
        }
    }

    fn rewrite(&self, prefix: usize, data: &[u8], file: &PrefixFile) -> Rewrite {
        let old = self.prefixes[prefix].as_slice();
        relocate::rewrite(data, file, old, self.to.as_os_str().as_bytes())
    }

    /// The prefix the archive's files hold (the default, else the first another save recorded):
    /// what `status` names.
    pub fn from(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.prefixes[0]))
    }

    /// How many entries are served rewritten.
    pub fn len(&self) -> usize {
        self.held.len() - self.too_long.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The prefix `entry`'s content holds, when it is another than this mount's (a save records
    /// it with the entry, which it copies as it is).
    pub fn held(&self, entry: u32) -> Option<&[u8]> {
        let held = self.held.get(&entry)?;
        Some(&self.prefixes[held.prefix])
    }

    /// The size `entry` is served with, if it is rewritten and its size changed.
    pub fn size(&self, entry: u32) -> Option<u64> {
        match &self.held.get(&entry)?.served {
            Served::Whole(data) => Some(data.len() as u64),
            Served::Recomputed { size, .. } => Some(*size),
            Served::Patched(_) | Served::AsWritten => None,
        }
    }

    /// Whether `entry` is served otherwise than the archive holds it.
    pub fn rewrites(&self, entry: u32) -> bool {
        self.held
            .get(&entry)
            .is_some_and(|h| !matches!(h.served, Served::AsWritten))
    }

    /// Up to `len` bytes of `entry` at `offset` as served, if it is rewritten (`original` reads
    /// the archive's bytes); None for an entry served as written.
    pub fn read_at(
        &self,
        entry: u32,
        offset: u64,
        len: usize,
        original: impl FnOnce(u64, usize) -> Result<Vec<u8>, EntryError>,
    ) -> Option<Result<Vec<u8>, EntryError>> {
        let held = self.held.get(&entry)?;
        Some(match &held.served {
            Served::AsWritten => return None,
            Served::Whole(data) => Ok(slice(data, offset, len)),
            Served::Recomputed {
                file,
                original_size,
                ..
            } => original(0, *original_size as usize).map(|data| {
                match self.rewrite(held.prefix, &data, file) {
                    Rewrite::Changed(out) => slice(&out, offset, len),
                    _ => slice(&data, offset, len),
                }
            }),
            Served::Patched(patches) => original(offset, len).map(|mut bytes| {
                patch(&mut bytes, offset, patches);
                bytes
            }),
        })
    }
}

/// The prefix `archive`'s files were written for, when a mount at `mountpoint` has another.
pub fn written_elsewhere(archive: &Archive, mountpoint: &Path) -> Option<PathBuf> {
    elsewhere(archive, mountpoint).map(|p| PathBuf::from(OsStr::from_bytes(&p.others[0])))
}

/// An archive's environment seen from a mount at another prefix than some of its files hold.
struct Elsewhere {
    files: Files,
    /// The prefix of entries that record none (what the scripts among them name), if known.
    default: Option<Vec<u8>>,
    /// The prefixes entries hold other than the mount's, the default first (never empty).
    others: Vec<Vec<u8>>,
    to: PathBuf,
}

/// The archive's environment, the prefixes its files hold and a mount at `mountpoint`'s prefix,
/// when some differ. Only the heads of a few scripts are read, and the prefixes a save recorded:
/// a mount at the prefix its files hold (the usual case) costs next to nothing.
fn elsewhere(archive: &Archive, mountpoint: &Path) -> Option<Elsewhere> {
    let files = Files::of(archive)?;
    let to = if files.dir.is_empty() {
        mountpoint.to_path_buf()
    } else {
        mountpoint.join(OsStr::from_bytes(&files.dir))
    };
    let index = archive.index();
    // Scripts that record their prefix do not vote: they may hold another.
    let heads = files.script_heads(archive);
    let in_env = |program: &[u8]| files.has_program(program);
    let default = written_for(heads.iter().map(Vec::as_slice), in_env, &files.dir);
    let recorded = index
        .held_prefixes()
        .filter(|&(i, _)| index.name(index.entry(i)).starts_with(&files.root))
        .map(|(_, p)| p);
    let to_bytes = to.as_os_str().as_bytes();
    let elsewhere = |p: &[u8]| p != to_bytes && !same_place(Path::new(OsStr::from_bytes(p)), &to);
    let others = rewritten_prefixes(default.as_deref(), recorded, elsewhere);
    if others.is_empty() {
        return None;
    }
    Some(Elsewhere {
        files,
        default,
        others,
        to,
    })
}

/// The prefixes a mount rewrites, each once, the default first: of the default (what entries that
/// record none hold) and the prefixes entries record, those `elsewhere` (not this mount's).
fn rewritten_prefixes<'a>(
    default: Option<&'a [u8]>,
    recorded: impl Iterator<Item = &'a [u8]>,
    elsewhere: impl Fn(&[u8]) -> bool,
) -> Vec<Vec<u8>> {
    let mut seen: Vec<&[u8]> = Vec::new();
    for prefix in default.into_iter().chain(recorded) {
        if !seen.contains(&prefix) {
            seen.push(prefix);
        }
    }
    // Asked once per distinct prefix: it may look at the filesystem.
    seen.into_iter()
        .filter(|p| elsewhere(p))
        .map(<[u8]>::to_vec)
        .collect()
}

/// Whether two prefixes name one directory through symlinks (`/home/u` and `/gpfs/home/u`): the
/// files' prefix then reaches this mount as written. Compared through their mount points, which
/// exist whether or not something is mounted on them.
pub(super) fn same_place(a: &Path, b: &Path) -> bool {
    let (Some(a_point), Some(b_point)) = (a.parent(), b.parent()) else {
        return false;
    };
    a.file_name() == b.file_name()
        && matches!((a_point.canonicalize(), b_point.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// Up to `len` bytes of `data` at `offset`.
fn slice(data: &[u8], offset: u64, len: usize) -> Vec<u8> {
    let start = offset.min(data.len() as u64) as usize;
    let end = start.saturating_add(len).min(data.len());
    data[start..end].to_vec()
}

/// The byte ranges where `new` differs from `old` (same length), with their new bytes.
fn changed_ranges(old: &[u8], new: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < old.len() {
        if old[i] == new[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < old.len() && old[i] != new[i] {
            i += 1;
        }
        ranges.push((start as u64, new[start..i].to_vec()));
    }
    ranges
}

/// Writes the parts of `patches` that fall into `bytes` (read at `offset`).
fn patch(bytes: &mut [u8], offset: u64, patches: &[(u64, Vec<u8>)]) {
    let end = offset + bytes.len() as u64;
    for (at, new) in patches {
        let (at, stop) = (*at, *at + new.len() as u64);
        if stop <= offset || at >= end {
            continue;
        }
        let from = at.max(offset);
        let to = stop.min(end);
        bytes[(from - offset) as usize..(to - offset) as usize]
            .copy_from_slice(&new[(from - at) as usize..(to - at) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_rewrites_the_prefixes_entries_hold_other_than_its_own() {
        let here: &[u8] = b"/home/b/envs/ml/ml";
        let (a, c): (&[u8], &[u8]) = (b"/home/a/envs/ml/ml", b"/scratch/job/ml/ml");
        type Case<'a> = (Option<&'a [u8]>, Vec<&'a [u8]>, Vec<&'a [u8]>);
        let table: Vec<Case> = vec![
            // (default, recorded by entries, rewritten)
            (None, vec![], vec![]),
            (Some(here), vec![], vec![]),
            (Some(a), vec![], vec![a]),
            // A save here recorded its files' prefix: only the old ones are rewritten.
            (Some(a), vec![here, here], vec![a]),
            // Saved at two other places: both, the default first, each once.
            (Some(a), vec![c, here, c, a], vec![a, c]),
            // Nothing votes (every script records its prefix, as after pack or rename).
            (None, vec![c, c], vec![c]),
            (None, vec![here], vec![]),
        ];
        for (default, recorded, want) in table {
            let asked = std::cell::Cell::new(0);
            let got = rewritten_prefixes(default, recorded.iter().copied(), |p| {
                asked.set(asked.get() + 1);
                p != here
            });
            let want: Vec<Vec<u8>> = want.iter().map(|p| p.to_vec()).collect();
            assert_eq!(got, want, "{default:?} {recorded:?}");
            let distinct: std::collections::HashSet<_> =
                default.into_iter().chain(recorded).collect();
            assert_eq!(asked.get(), distinct.len(), "each prefix is looked at once");
        }
    }

    #[test]
    fn text_kept_whole_and_text_rewritten_at_each_read_read_the_same() {
        let data = b"#!/old/env/bin/python3\nprefix=/old/env\nlib=/old/env/lib\n".to_vec();
        let file = PrefixFile {
            rel: PathBuf::from("etc/x.conf"),
            mode: Mode::Text,
            placeholder_len: 0,
        };
        let Rewrite::Changed(out) = relocate::rewrite(&data, &file, b"/old/env", b"/n/e") else {
            panic!("nothing rewritten")
        };
        let held = |served| Held { prefix: 0, served };
        let served = HashMap::from([
            (0, held(Served::Whole(out.clone()))),
            (
                1,
                held(Served::Recomputed {
                    file,
                    original_size: data.len() as u64,
                    size: out.len() as u64,
                }),
            ),
        ]);
        let r = Relocation {
            to: PathBuf::from("/n/e"),
            prefixes: vec![b"/old/env".to_vec()],
            held: served,
            kept: out.len(),
            too_long: Vec::new(),
        };
        assert_eq!(r.size(0), Some(out.len() as u64));
        assert_eq!(r.size(1), r.size(0));
        let original = |o: u64, l: usize| Ok(slice(&data, o, l));
        for offset in 0..=out.len() as u64 + 2 {
            for len in [0, 1, 7, out.len()] {
                let whole = r.read_at(0, offset, len, original).unwrap().unwrap();
                let again = r.read_at(1, offset, len, original).unwrap().unwrap();
                assert_eq!(whole, again, "{offset}+{len}");
                assert_eq!(whole, slice(&out, offset, len));
            }
        }
        assert!(
            r.read_at(2, 0, 4, original).is_none(),
            "not rewritten: as written"
        );
    }

    #[test]
    fn a_patched_read_gets_the_new_bytes_wherever_it_starts() {
        let old = b"..../old/prefix/lib\0\0\0\0....";
        let new = b"..../new/p/lib\0\0\0\0\0\0\0\0\0....";
        let patches = changed_ranges(old, new);
        for offset in 0..old.len() {
            for len in 0..old.len() - offset {
                let mut bytes = old[offset..offset + len].to_vec();
                patch(&mut bytes, offset as u64, &patches);
                assert_eq!(bytes, &new[offset..offset + len], "{offset}+{len}");
            }
        }
    }
}
