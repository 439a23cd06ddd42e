//! Moving an environment to a new prefix the way conda does when it installs a package: conda
//! bakes the prefix into files, and records in `conda-meta/*.json` (`paths_data.paths[*]`) which
//! files held a prefix placeholder and whether they are text or binary. Text files get every
//! occurrence replaced; binary files get each C string holding the prefix rewritten in place and
//! padded with NULs; scripts in `bin/` get their shebang line rewritten (pip's entry points are not
//! in conda-meta). conda itself only shortens binary strings; we may also lengthen one up to the
//! placeholder's length, because conda padded it with exactly that many NULs when it installed it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Text,
    Binary,
    /// Only the `#!` line (scripts conda-meta does not list).
    Shebang,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixFile {
    /// Path relative to the environment's root.
    pub rel: PathBuf,
    pub mode: Mode,
    /// Length of the placeholder conda replaced at install time (binary files may grow up to it).
    pub placeholder_len: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RelocateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a conda package record ({message})")]
    Record { path: PathBuf, message: String },
}

impl crate::hint::Hint for RelocateError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            RelocateError::Read { .. } => "is this a conda environment? Pack it without --name to \
                                           keep it as it is"
                .into(),
            RelocateError::Record { .. } => "repair or remove it, then pack again".into(),
        })
    }
}

/// Kernels before 5.1 and conda itself cut shebangs at 127 bytes; longer ones go through env.
const MAX_SHEBANG: usize = 127;

#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    paths_data: Option<PathsData>,
}

#[derive(Deserialize)]
struct PathsData {
    #[serde(default)]
    paths: Vec<PathEntry>,
}

#[derive(Deserialize)]
struct PathEntry {
    #[serde(rename = "_path")]
    path: String,
    #[serde(default)]
    prefix_placeholder: Option<String>,
    #[serde(default)]
    file_mode: Option<String>,
}

/// The files of `env` that need the new prefix: those conda-meta records with a placeholder, then
/// `bin/` scripts whose shebang is not covered by them. Sorted by path.
pub fn prefix_files(env: &Path) -> Result<Vec<PrefixFile>, RelocateError> {
    let meta = env.join("conda-meta");
    let mut files = Vec::new();
    let read_dir = |dir: &Path| {
        std::fs::read_dir(dir).map_err(|source| RelocateError::Read {
            path: dir.to_owned(),
            source,
        })
    };
    if meta.is_dir() {
        for item in read_dir(&meta)? {
            let path = item
                .map_err(|source| RelocateError::Read {
                    path: meta.clone(),
                    source,
                })?
                .path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = std::fs::read(&path).map_err(|source| RelocateError::Read {
                path: path.clone(),
                source,
            })?;
            files.extend(recorded_prefix_files(&text, &path)?);
        }
    }
    let bin = env.join("bin");
    if bin.is_dir() {
        for item in read_dir(&bin)? {
            let item = item.map_err(|source| RelocateError::Read {
                path: bin.clone(),
                source,
            })?;
            if !item.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let rel = Path::new("bin").join(item.file_name());
            if !files.iter().any(|f| f.rel == rel) && starts_with_shebang(&item.path()) {
                files.push(PrefixFile {
                    rel,
                    mode: Mode::Shebang,
                    placeholder_len: 0,
                });
            }
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    files.dedup_by(|a, b| a.rel == b.rel);
    Ok(files)
}

/// The files one `conda-meta/*.json` record (`text`, read from `path`) lists with a prefix
/// placeholder, relative to the environment's root.
pub fn recorded_prefix_files(text: &[u8], path: &Path) -> Result<Vec<PrefixFile>, RelocateError> {
    let record: Record = serde_json::from_slice(text).map_err(|e| RelocateError::Record {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let mut files = Vec::new();
    for p in record.paths_data.map(|d| d.paths).unwrap_or_default() {
        let Some(placeholder) = p.prefix_placeholder.filter(|_| is_safe_relative(&p.path)) else {
            continue;
        };
        let mode = match p.file_mode.as_deref() {
            Some("binary") => Mode::Binary,
            _ => Mode::Text,
        };
        files.push(PrefixFile {
            rel: PathBuf::from(p.path),
            mode,
            placeholder_len: placeholder.len(),
        });
    }
    Ok(files)
}

/// conda-meta comes from the environment being packed: never follow a recorded path out of it.
fn is_safe_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && Path::new(p)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

fn starts_with_shebang(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"#!"
}

/// What rewriting one file gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Rewrite {
    Unchanged,
    Changed(Vec<u8>),
    /// A binary file holds the prefix in `count` strings that have no room for the new prefix.
    TooLong {
        count: usize,
    },
}

pub fn rewrite(data: &[u8], file: &PrefixFile, old: &[u8], new: &[u8]) -> Rewrite {
    let out = match file.mode {
        Mode::Text => replace_all(data, old, new),
        Mode::Shebang => rewrite_shebang_line(data, old, new),
        Mode::Binary => return rewrite_binary(data, old, new, file.placeholder_len),
    };
    match out {
        Some(v) => Rewrite::Changed(shorten_shebang(v)),
        None => Rewrite::Unchanged,
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from >= haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

fn replace_all(data: &[u8], old: &[u8], new: &[u8]) -> Option<Vec<u8>> {
    let mut at = find(data, old, 0)?;
    let mut out = Vec::with_capacity(data.len() + new.len().saturating_sub(old.len()) * 4);
    let mut copied = 0;
    loop {
        out.extend_from_slice(&data[copied..at]);
        out.extend_from_slice(new);
        copied = at + old.len();
        match find(data, old, copied) {
            Some(next) => at = next,
            None => break,
        }
    }
    out.extend_from_slice(&data[copied..]);
    Some(out)
}

fn rewrite_shebang_line(data: &[u8], old: &[u8], new: &[u8]) -> Option<Vec<u8>> {
    if !data.starts_with(b"#!") {
        return None;
    }
    let end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let line = replace_all(&data[..end], old, new)?;
    let mut out = line;
    out.extend_from_slice(&data[end..]);
    Some(out)
}

/// A shebang longer than the kernel reads runs the interpreter by name through `/usr/bin/env`
/// (what conda does); the environment's `bin/` is on PATH once it is activated.
fn shorten_shebang(data: Vec<u8>) -> Vec<u8> {
    if !data.starts_with(b"#!") {
        return data;
    }
    let end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    if end <= MAX_SHEBANG {
        return data;
    }
    let line = String::from_utf8_lossy(&data[2..end]).into_owned();
    let mut words = line.split_whitespace();
    let Some(interpreter) = words.next() else {
        return data;
    };
    let name = interpreter.rsplit('/').next().unwrap_or(interpreter);
    let mut out = format!("#!/usr/bin/env {name}").into_bytes();
    for w in words {
        out.push(b' ');
        out.extend_from_slice(w.as_bytes());
    }
    out.extend_from_slice(&data[end..]);
    out
}

/// conda's binary replacement: each NUL-terminated string holding `old` gets every `old` in it
/// replaced and is padded with NULs back to its length, so offsets in the binary stay valid. A
/// string may grow into the NULs that follow it, as far as conda's padding went: each occurrence
/// was `placeholder_len` long before conda installed it.
fn rewrite_binary(data: &[u8], old: &[u8], new: &[u8], placeholder_len: usize) -> Rewrite {
    let Some(first) = find(data, old, 0) else {
        return Rewrite::Unchanged;
    };
    let mut out = data.to_vec();
    let mut no_room = 0;
    let mut at = Some(first);
    while let Some(start) = at {
        let end = data[start..]
            .iter()
            .position(|&b| b == 0)
            .map_or(data.len(), |n| start + n);
        let string = &data[start..end];
        let replaced = replace_all(string, old, new).expect("the string starts with old");
        let occurrences =
            std::iter::successors(find(string, old, 0), |&i| find(string, old, i + old.len()))
                .count();
        let room = string.len() + occurrences * placeholder_len.saturating_sub(old.len());
        // The new string and its terminating NUL must land on NULs of the old padding.
        let fits = replaced.len() <= string.len()
            || (replaced.len() <= room
                && data
                    .get(end..start + replaced.len() + 1)
                    .is_some_and(|pad| pad.iter().all(|&b| b == 0)));
        if fits {
            let span = string.len().max(replaced.len());
            let mut padded = replaced;
            padded.resize(span, 0);
            out[start..start + span].copy_from_slice(&padded);
        } else {
            no_room += 1;
        }
        at = find(data, old, end);
    }
    if no_room > 0 {
        return Rewrite::TooLong { count: no_room };
    }
    Rewrite::Changed(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &[u8] = b"/opt/envs/old-prefix";

    fn file(mode: Mode, placeholder_len: usize) -> PrefixFile {
        PrefixFile {
            rel: PathBuf::from("f"),
            mode,
            placeholder_len,
        }
    }

    #[test]
    fn text_replaces_every_occurrence() {
        let data = b"prefix=/opt/envs/old-prefix\nlib=/opt/envs/old-prefix/lib\n";
        let Rewrite::Changed(out) = rewrite(data, &file(Mode::Text, 0), OLD, b"/home/u/envs/x/x")
        else {
            panic!()
        };
        assert_eq!(out, b"prefix=/home/u/envs/x/x\nlib=/home/u/envs/x/x/lib\n");
        assert_eq!(
            rewrite(b"nothing here", &file(Mode::Text, 0), OLD, b"/x"),
            Rewrite::Unchanged
        );
    }

    #[test]
    fn binary_pads_each_c_string() {
        let data = b"\x7fELF\0/opt/envs/old-prefix/lib:/opt/envs/old-prefix/x\0tail\0";
        let Rewrite::Changed(out) = rewrite(data, &file(Mode::Binary, OLD.len()), OLD, b"/n/e")
        else {
            panic!()
        };
        assert_eq!(out.len(), data.len());
        let mut want = b"\x7fELF\0/n/e/lib:/n/e/x".to_vec();
        want.resize(data.len() - 6, 0);
        want.extend_from_slice(b"\0tail\0");
        assert_eq!(out, want);
    }

    #[test]
    fn binary_with_longer_prefix_is_reported() {
        let data = b"a/opt/envs/old-prefix\0b/opt/envs/old-prefix/lib\0";
        let longer = b"/a/much/longer/prefix/than/before";
        assert_eq!(
            rewrite(data, &file(Mode::Binary, OLD.len()), OLD, longer),
            Rewrite::TooLong { count: 2 }
        );
    }

    #[test]
    fn binary_grows_into_condas_padding() {
        // Installed from a 40-byte placeholder: conda left 20 NULs after the 20-byte prefix.
        let mut data = b"x\0/opt/envs/old-prefix/lib".to_vec();
        data.extend_from_slice(&[0; 21]);
        data.extend_from_slice(b"next\0");
        let new = b"/home/user/envs/ml/ml";
        let Rewrite::Changed(out) = rewrite(&data, &file(Mode::Binary, 40), OLD, new) else {
            panic!()
        };
        assert_eq!(out.len(), data.len());
        assert!(out.starts_with(b"x\0/home/user/envs/ml/ml/lib\0"));
        assert!(out.ends_with(b"\0next\0"));
        // Without that padding (placeholder as long as the old prefix) it does not fit.
        assert_eq!(
            rewrite(&data, &file(Mode::Binary, OLD.len()), OLD, new),
            Rewrite::TooLong { count: 1 }
        );
    }

    #[test]
    fn shebang_only_touches_the_first_line() {
        let data = b"#!/opt/envs/old-prefix/bin/python3.11\nprint('/opt/envs/old-prefix')\n";
        let Rewrite::Changed(out) = rewrite(data, &file(Mode::Shebang, 0), OLD, b"/n") else {
            panic!()
        };
        assert_eq!(out, b"#!/n/bin/python3.11\nprint('/opt/envs/old-prefix')\n");
    }

    #[test]
    fn long_shebangs_go_through_env() {
        let new = format!("/{}", "d".repeat(130));
        let data = b"#!/opt/envs/old-prefix/bin/python3.11 -E\nimport x\n";
        let Rewrite::Changed(out) = rewrite(data, &file(Mode::Shebang, 0), OLD, new.as_bytes())
        else {
            panic!()
        };
        assert_eq!(out, b"#!/usr/bin/env python3.11 -E\nimport x\n");
    }

    #[test]
    fn prefix_files_come_from_conda_meta_and_bin_scripts() {
        let env = tempfile::tempdir().unwrap();
        let root = env.path();
        std::fs::create_dir_all(root.join("conda-meta")).unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(
            root.join("conda-meta/pkg-1.0-0.json"),
            r#"{"name":"pkg","paths_data":{"paths_version":1,"paths":[
                {"_path":"lib/libx.so","path_type":"hardlink","prefix_placeholder":"/p","file_mode":"binary"},
                {"_path":"etc/x.conf","path_type":"hardlink","prefix_placeholder":"/p","file_mode":"text"},
                {"_path":"../../etc/passwd","path_type":"hardlink","prefix_placeholder":"/p","file_mode":"text"},
                {"_path":"share/plain.txt","path_type":"hardlink"}]}}"#,
        )
        .unwrap();
        std::fs::write(root.join("bin/tool"), "#!/opt/x/bin/python\n").unwrap();
        std::fs::write(root.join("bin/binary"), "\x7fELF").unwrap();
        let files = prefix_files(root).unwrap();
        let got: Vec<_> = files
            .iter()
            .map(|f| (f.rel.to_str().unwrap(), f.mode))
            .collect();
        assert_eq!(
            got,
            [
                ("bin/tool", Mode::Shebang),
                ("etc/x.conf", Mode::Text),
                ("lib/libx.so", Mode::Binary)
            ]
        );
    }
}
