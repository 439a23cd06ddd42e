//! Where an archive's environment is (at the top, or in `NAME/`), what its `bin/` holds, and which
//! prefix its files hold when they record none: the one their scripts' shebangs name, by majority.
//! Found from the index and the heads of a few scripts, so a mount at the prefix its files hold
//! (the usual case) costs next to nothing.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{REWRITE_MAX, SCRIPT_MAX, SYMLINK_MAX, same_place};
use crate::archive::Kind;
use crate::archive::{Archive, EntryError};
use crate::conda::relocate::{self, Mode, PrefixFile};

/// How many scripts' shebangs decide which prefix an archive's files hold.
const VOTERS: usize = 64;
/// What of a script is read to see its shebang.
const HEAD: u64 = 4096;

/// The prefix the files of the environment directory `env` (absolute) were written for: the one its
/// scripts name when that is `env` under another name (conda bakes the path it was given, symlinks
/// and all: `/home/u/env` where `/home` leads to `/gpfs/home`), else `env` as given.
pub fn written_for_dir(env: &Path) -> PathBuf {
    use std::io::Read;
    let bin = env.join("bin");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&bin)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    scripts.sort();
    let heads: Vec<Vec<u8>> = scripts
        .iter()
        .filter_map(|p| {
            let mut head = Vec::new();
            let file = std::fs::File::open(p).ok()?;
            file.take(HEAD).read_to_end(&mut head).ok()?;
            head.starts_with(b"#!").then_some(head)
        })
        .take(VOTERS)
        .collect();
    let in_env = |program: &[u8]| bin.join(OsStr::from_bytes(program)).exists();
    let name = env.file_name().map_or(&b""[..], |n| n.as_bytes());
    written_for(heads.iter().map(Vec::as_slice), in_env, name)
        .map(|p| PathBuf::from(OsStr::from_bytes(&p)))
        .filter(|p| p == env || same_place(p, env))
        .unwrap_or_else(|| env.to_owned())
}

/// The prefix most of `scripts` name in their shebang (`#!PREFIX/bin/INTERPRETER`), counting only
/// interpreters the environment has (`in_env`: a name in its `bin/`) outside the system's own
/// directories: `#!/usr/bin/env python` or `#!/bin/sh` name no prefix. A prefix named like the
/// environment's directory in the archive (`name`: conda-fuse keeps env NAME at `NAME/NAME`) goes
/// first: scripts copied from elsewhere (a Python install the env was copied from) may outnumber
/// the env's own.
pub fn written_for<'a>(
    scripts: impl Iterator<Item = &'a [u8]>,
    in_env: impl Fn(&[u8]) -> bool,
    name: &[u8],
) -> Option<Vec<u8>> {
    const SYSTEM: [&[u8]; 3] = [b"/usr", b"/usr/local", b"/opt/local"];
    let mut votes: HashMap<Vec<u8>, usize> = HashMap::new();
    for data in scripts {
        let Some(line) = data.strip_prefix(b"#!") else {
            continue;
        };
        let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
        let interpreter = line
            .split(|b| b.is_ascii_whitespace())
            .next()
            .unwrap_or(b"");
        let at = interpreter.windows(5).rposition(|w| w == b"/bin/");
        let Some(at) = at.filter(|&at| at > 0 && interpreter.starts_with(b"/")) else {
            continue;
        };
        let (prefix, program) = (&interpreter[..at], &interpreter[at + 5..]);
        if in_env(program) && !SYSTEM.contains(&prefix) {
            *votes.entry(prefix.to_vec()).or_default() += 1;
        }
    }
    let named = |p: &[u8]| {
        !name.is_empty() && p.ends_with(name) && p[..p.len() - name.len()].ends_with(b"/")
    };
    votes
        .into_iter()
        .max_by(|a, b| {
            (named(&a.0), a.1)
                .cmp(&(named(&b.0), b.1))
                .then_with(|| b.0.cmp(&a.0))
        })
        .map(|(prefix, _)| prefix)
}

/// The environment inside an archive: where it is (at the top, or in `NAME/`) and what its `bin/`
/// holds. Found from the index alone: a mount at the prefix its files hold looks no further.
pub(super) struct Files {
    /// The names' prefix as the archive has it (`NAME/`, `./NAME/` or empty).
    pub(super) root: Vec<u8>,
    /// The environment's directory in the archive (`NAME`, or empty).
    pub(super) dir: Vec<u8>,
    /// `bin/`'s entries by name, in name order, and whether each is a regular file (programs
    /// are often symlinks: `python3 -> python3.11`).
    bin: Vec<(Vec<u8>, u32, bool)>,
}

impl Files {
    pub(super) fn of(archive: &Archive) -> Option<Files> {
        let index = archive.index();
        // The environment is where conda-meta is: at the top, or in one directory (`NAME/NAME`).
        let root = index
            .entries()
            .iter()
            .filter_map(|e| {
                let n = index.name(e);
                let at = n.windows(11).position(|w| w == b"conda-meta/")?;
                let dir = n[..at].strip_prefix(b"./").unwrap_or(&n[..at]);
                let depth = dir.iter().filter(|&&b| b == b'/').count();
                (dir.is_empty() || (depth == 1 && dir.ends_with(b"/"))).then(|| n[..at].to_vec())
            })
            .min_by_key(|r| r.len())?;
        let dir = root.strip_prefix(b"./").unwrap_or(&root);
        let dir = dir.strip_suffix(b"/").unwrap_or(dir).to_vec();
        let mut bin: Vec<(Vec<u8>, u32, bool)> = index
            .entries()
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let name = index.name(e).strip_prefix(root.as_slice())?;
                let program = name.strip_prefix(b"bin/").filter(|p| !p.contains(&b'/'))?;
                Some((program.to_vec(), i as u32, e.meta.kind == Kind::File))
            })
            .collect();
        bin.sort();
        Some(Files { root, dir, bin })
    }

    pub(super) fn has_program(&self, program: &[u8]) -> bool {
        self.bin
            .binary_search_by(|(name, _, _)| name.as_slice().cmp(program))
            .is_ok()
    }

    /// `bin/`'s regular files, in name order.
    fn scripts(&self) -> impl Iterator<Item = (&[u8], u32)> {
        self.bin
            .iter()
            .filter(|(_, _, regular)| *regular)
            .map(|(name, i, _)| (name.as_slice(), *i))
    }

    /// The first line of up to `VOTERS` `bin/` scripts (in name order), for `written_for`.
    pub(super) fn script_heads(&self, archive: &Archive) -> Vec<Vec<u8>> {
        use std::io::Read;
        let mut heads = Vec::new();
        for (_, i) in self.scripts() {
            if heads.len() == VOTERS {
                break;
            }
            let index = archive.index();
            if index.entry(i).uncompressed_size > SCRIPT_MAX || index.held_prefix(i).is_some() {
                continue;
            }
            let mut head = Vec::new();
            let read = archive.decoder(i).and_then(|d| {
                d.take(HEAD)
                    .read_to_end(&mut head)
                    .map_err(EntryError::from)
            });
            if read.is_ok() && head.starts_with(b"#!") {
                heads.push(head);
            }
        }
        heads
    }

    /// The environment's symlinks whose target may be a path at least `min` bytes long.
    pub(super) fn symlinks<'a>(
        &'a self,
        archive: &'a Archive,
        min: u64,
    ) -> impl Iterator<Item = u32> + 'a {
        let index = archive.index();
        index
            .entries()
            .iter()
            .enumerate()
            .filter_map(move |(i, e)| {
                let path_sized = (min..=u64::from(SYMLINK_MAX)).contains(&e.uncompressed_size);
                (e.meta.kind == Kind::Symlink
                    && path_sized
                    && index.name(e).starts_with(&self.root))
                .then_some(i as u32)
            })
    }

    /// The files that may hold the prefix: those conda-meta records with a placeholder, then
    /// `bin/` scripts (a script without a shebang is left as it is).
    pub(super) fn candidates(&self, archive: &Archive) -> Vec<(u32, PrefixFile)> {
        let index = archive.index();
        let by_name = index.by_name();
        let regular = |i: u32| index.entry(i).meta.kind == Kind::File;
        let mut files: Vec<PrefixFile> = Vec::new();
        for (name, &i) in &by_name {
            let Some(rel) = name.strip_prefix(self.root.as_slice()) else {
                continue;
            };
            if rel.starts_with(b"conda-meta/") && rel.ends_with(b".json") && regular(i) {
                let path = Path::new(OsStr::from_bytes(rel));
                if let Some(text) = read_entry(archive, i, REWRITE_MAX) {
                    files.extend(relocate::recorded_prefix_files(&text, path).unwrap_or_default());
                }
            }
        }
        let recorded: std::collections::HashSet<PathBuf> =
            files.iter().map(|f| f.rel.clone()).collect();
        for (program, _) in self.scripts() {
            let rel = Path::new("bin").join(OsStr::from_bytes(program));
            if !recorded.contains(&rel) {
                files.push(PrefixFile {
                    rel,
                    mode: Mode::Shebang,
                    placeholder_len: 0,
                });
            }
        }
        let mut out: Vec<(u32, PrefixFile)> = files
            .into_iter()
            .filter_map(|f| {
                let name = [self.root.as_slice(), f.rel.as_os_str().as_bytes()].concat();
                let i = *by_name.get(name.as_slice())?;
                regular(i).then_some((i, f))
            })
            .collect();
        out.sort_by_key(|(i, _)| *i);
        out.dedup_by_key(|(i, _)| *i);
        out
    }
}

/// Entry `i` decompressed, if it is at most `max` bytes and reads (else it is served as written).
pub(super) fn read_entry(archive: &Archive, i: u32, max: u64) -> Option<Vec<u8>> {
    if archive.index().entry(i).uncompressed_size > max {
        return None;
    }
    archive
        .read_all(i)
        .inspect_err(|e| tracing::warn!(entry = i, "not relocated: {e}"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_what_most_shebangs_name() {
        let in_env = |p: &[u8]| [&b"python3.11"[..], b"perl", b"env", b"sh"].contains(&p);
        let scripts: [&[u8]; 6] = [
            b"#!/home/a/envs/ml/ml/bin/python3.11\nimport x\n",
            b"#!/home/a/envs/ml/ml/bin/python3.11 -E\n",
            b"#!/usr/bin/env python\n",
            b"#!/opt/other/bin/perl\n",
            b"#!/opt/other/bin/ruby\n",
            b"not a script",
        ];
        assert_eq!(
            written_for(scripts.into_iter(), in_env, b"").as_deref(),
            Some(&b"/home/a/envs/ml/ml"[..])
        );
        // Copied scripts outnumber the env's own: the one named like the env's directory wins.
        let copied: [&[u8]; 3] = [
            b"#!/opt/python/3.11/bin/python3.11\n",
            b"#!/opt/python/3.11/bin/python3.11\n",
            b"#!/home/a/envs/ml/ml/bin/python3.11\n",
        ];
        assert_eq!(
            written_for(copied.into_iter(), in_env, b"ml").as_deref(),
            Some(&b"/home/a/envs/ml/ml"[..])
        );
        assert_eq!(
            written_for(copied.into_iter(), in_env, b"l").as_deref(),
            Some(&b"/opt/python/3.11"[..])
        );
        let none: [&[u8]; 4] = [
            b"#!/usr/bin/env python\n",
            b"#!python\n",
            b"#!/bin/sh\n",
            b"#!/opt/other/bin/ruby\n",
        ];
        assert_eq!(written_for(none.into_iter(), in_env, b""), None);
    }
}
