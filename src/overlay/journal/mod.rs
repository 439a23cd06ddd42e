//! The journal: every change to names and metadata since the last save, appended (one positioned
//! write per change, before the change is acknowledged) to a file in the upper layer. File contents
//! live in the upper layer's data files; the journal says which path each belongs to. Replaying the
//! journal over the archive's tree rebuilds the state after a crash of the daemon.
//!
//! Version 1 layout (all integers little-endian):
//! - header: magic `CFJOURNL`, version u32, header length u32, CRC-32 u32 of the header body, and
//!   the body: the archive's canonical path (u32 length + bytes), the identity of the archive
//!   version the changes apply to, and the creation time;
//! - records: magic `CFr1`, sequence number u64 (1, 2, ...), body length u32, CRC-32 u32 (of the
//!   sequence number, length and body), body (`record.rs`).
//!
//! An append that fails (a full disk, a quota) is rolled back to the last good length before the
//! change is refused, so nothing acknowledged ever follows torn bytes. A torn tail (the machine
//! failed mid-write) holds no acknowledged change and is cut off; a damaged record followed by
//! intact ones is either skipped (when no record is missing, by sequence number) or makes the
//! journal refuse to load, kept as it is for recovery. A journal of an unknown version, or with a
//! record of an unknown kind, is refused, never cut: a shared `$HOME` may be used by an older and a
//! newer conda-fuse.

pub mod legacy;
mod record;

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub use record::{BodyError, Identity, Op, Record};
use record::{Dec, Enc};

use crate::archive::format::Bytes;
use crate::overlay::tree::Time;
use crate::private_dir::PrivateDir;

/// The journal's file name in an upper directory.
pub const FILE: &str = "journal";
const MAGIC: &[u8; 8] = b"CFJOURNL";
pub const VERSION: u32 = 1;
const RECORD_MAGIC: &[u8; 4] = b"CFr1";
/// magic, version, header length, header CRC.
const FIXED_HEADER: usize = 8 + 4 + 4 + 4;
/// magic, sequence number, body length, CRC.
const RECORD_HEADER: usize = 4 + 8 + 4 + 4;
/// No record body is this long (paths are at most a few KiB); a length beyond it is damage.
const MAX_BODY: usize = 1 << 20;

/// What a journal says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The canonical path of the archive whose changes these are.
    pub archive: PathBuf,
    /// The archive version the changes apply to.
    pub base: Identity,
    pub created: Time,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot {what} the journal {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "the journal {path} was written by a newer conda-fuse (journal version {version}; this one \
         reads version {VERSION}); it is left as it is"
    )]
    UnknownVersion { path: PathBuf, version: u32 },
    #[error(
        "the journal {path} holds a change of a kind this conda-fuse does not know (kind {kind}, \
         record {seq}), written by a newer version; it is left as it is"
    )]
    UnknownRecord { path: PathBuf, seq: u64, kind: u8 },
    #[error("{path} is not a conda-fuse journal (or its header is damaged); it is left as it is")]
    NotAJournal { path: PathBuf },
    #[error(
        "the journal {path} is damaged at byte {offset}: intact changes follow, but {lost} before \
         them cannot be read; it is kept as it is for recovery"
    )]
    Damaged {
        path: PathBuf,
        offset: u64,
        lost: u64,
    },
}

impl crate::hint::Hint for JournalError {
    fn hint(&self) -> Option<String> {
        match self {
            JournalError::Io { .. } => None,
            JournalError::UnknownVersion { .. } => Some(
                "use that version to mount the archive writable or save it; this version can mount \
                 it --read-only"
                    .into(),
            ),
            JournalError::UnknownRecord { .. } => {
                Some("use that version to mount the archive writable or save it".into())
            }
            JournalError::NotAJournal { .. } => Some(
                "move its directory aside to mount the archive writable without what it holds"
                    .into(),
            ),
            JournalError::Damaged { .. } => Some(
                "mount the archive --read-only, or move the journal's directory aside to mount it \
                 writable without those changes"
                    .into(),
            ),
        }
    }
}

/// A journal read from disk.
#[derive(Debug)]
pub struct Loaded {
    pub header: Header,
    pub records: Vec<Record>,
    /// Where the intact records end (a torn tail after it is cut off when appending resumes).
    end: u64,
    file_len: u64,
    /// Damaged bytes between intact records that were skipped (no record was lost).
    skipped: bool,
}

impl Loaded {
    /// Changes recorded (saves' commit marks not counted).
    pub fn changes(&self) -> usize {
        self.records
            .iter()
            .filter(|r| !matches!(r.op, Op::Committing(_)))
            .count()
    }
}

pub struct Journal {
    /// None once closed (`close`): the daemon is on its way out.
    file: Option<File>,
    path: PathBuf,
    /// Length of the intact records: the next one is written here.
    end: u64,
    next_seq: u64,
}

fn encode_header(h: &Header) -> Vec<u8> {
    let mut body = Enc(Vec::new());
    body.bytes(h.archive.as_os_str().as_bytes());
    body.identity(&h.base);
    body.time(h.created);
    let mut out = Vec::with_capacity(FIXED_HEADER + body.0.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(body.0.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body.0).to_le_bytes());
    out.extend_from_slice(&body.0);
    out
}

fn encode_record(seq: u64, rec: &Record) -> Vec<u8> {
    let body = rec.encode_body();
    let mut out = Vec::with_capacity(RECORD_HEADER + body.len());
    out.extend_from_slice(RECORD_MAGIC);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&out[4..16]);
    h.update(&body);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// The record at `pos`, if one is there whole and intact: (sequence number, body, its end).
fn record_at(data: &[u8], pos: usize) -> Option<(u64, &[u8], usize)> {
    let head = data.get(pos..pos + RECORD_HEADER)?;
    if &head[..4] != RECORD_MAGIC {
        return None;
    }
    let seq = u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(head[16..20].try_into().expect("4 bytes"));
    if len > MAX_BODY {
        return None;
    }
    let body = data.get(pos + RECORD_HEADER..pos + RECORD_HEADER + len)?;
    let mut h = crc32fast::Hasher::new();
    h.update(&head[4..16]);
    h.update(body);
    (h.finalize() == crc).then_some((seq, body, pos + RECORD_HEADER + len))
}

/// The next position after `from` where an intact record starts.
fn resync(data: &[u8], from: usize) -> Option<usize> {
    (from..data.len().saturating_sub(RECORD_HEADER - 1))
        .find(|&p| data[p..].starts_with(RECORD_MAGIC) && record_at(data, p).is_some())
}

fn parse_header(data: &[u8], path: &Path) -> Result<(Header, usize), JournalError> {
    let not_journal = || JournalError::NotAJournal {
        path: path.to_owned(),
    };
    if data.len() < FIXED_HEADER || &data[..8] != MAGIC {
        return Err(not_journal());
    }
    let version = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(JournalError::UnknownVersion {
            path: path.to_owned(),
            version,
        });
    }
    let len = u32::from_le_bytes(data[12..16].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(data[16..20].try_into().expect("4 bytes"));
    let body = data
        .get(FIXED_HEADER..FIXED_HEADER + len)
        .filter(|b| crc32fast::hash(b) == crc)
        .ok_or_else(not_journal)?;
    let mut d = Dec(Bytes::new(body));
    let header = (|| {
        Some(Header {
            archive: PathBuf::from(std::ffi::OsStr::from_bytes(&d.bytes()?)),
            base: d.identity()?,
            created: d.time()?,
        })
    })()
    .ok_or_else(not_journal)?;
    Ok((header, FIXED_HEADER + len))
}

/// Parses a whole journal file.
fn parse(data: &[u8], path: &Path) -> Result<Loaded, JournalError> {
    let (header, mut pos) = parse_header(data, path)?;
    let mut records = Vec::new();
    let mut skipped = false;
    let mut end = pos;
    loop {
        let expected = records.len() as u64 + 1;
        let (seq, body, next) = match record_at(data, pos) {
            Some(r) => r,
            None => match resync(data, pos) {
                // Nothing intact follows: a torn tail, which no acknowledged change is part of.
                None => break,
                Some(p) => {
                    let (seq, _, _) = record_at(data, p).expect("resync found it");
                    if seq != expected {
                        return Err(JournalError::Damaged {
                            path: path.to_owned(),
                            offset: pos as u64,
                            lost: seq.saturating_sub(expected),
                        });
                    }
                    skipped = true;
                    pos = p;
                    continue;
                }
            },
        };
        if seq != expected {
            return Err(JournalError::Damaged {
                path: path.to_owned(),
                offset: pos as u64,
                lost: seq.saturating_sub(expected),
            });
        }
        match Record::decode_body(body, None) {
            Ok(Some(r)) => records.push(r),
            Ok(None) | Err(BodyError::Malformed) => {
                // An intact frame around a body that does not parse: written by a bug, or a newer
                // version; never guess.
                return Err(JournalError::UnknownRecord {
                    path: path.to_owned(),
                    seq,
                    kind: body.get(12).copied().unwrap_or(0),
                });
            }
            Err(BodyError::UnknownOp(kind)) => {
                return Err(JournalError::UnknownRecord {
                    path: path.to_owned(),
                    seq,
                    kind,
                });
            }
        }
        pos = next;
        end = next;
    }
    Ok(Loaded {
        header,
        records,
        end: end as u64,
        file_len: data.len() as u64,
        skipped,
    })
}

fn read_file(dir: &PrivateDir) -> Result<Option<Vec<u8>>, JournalError> {
    let path = dir.show(FILE);
    let mut f = match dir.open_read(FILE) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(JournalError::Io {
                what: "open",
                path,
                source,
            });
        }
    };
    // Another node (whose mount died) appended to it since this node's client last looked: the
    // read must not stop at a cached size.
    let _ = crate::hostfs::fresh_len(&f);
    let mut data = Vec::new();
    f.read_to_end(&mut data)
        .map_err(|source| JournalError::Io {
            what: "read",
            path,
            source,
        })?;
    Ok(Some(data))
}

impl Journal {
    /// Reads the journal in `dir`, if there is one, without changing it.
    pub fn load(dir: &PrivateDir) -> Result<Option<Loaded>, JournalError> {
        match read_file(dir)? {
            None => Ok(None),
            Some(data) => parse(&data, &dir.show(FILE)).map(Some),
        }
    }

    /// Starts a new journal in `dir` holding `records`, replacing any old one atomically (a
    /// temporary file, fsync, rename, fsync of the directory).
    pub fn create(dir: &PrivateDir, header: &Header, records: &[Record]) -> io::Result<Journal> {
        let mut data = encode_header(header);
        for (k, r) in records.iter().enumerate() {
            data.extend_from_slice(&encode_record(k as u64 + 1, r));
        }
        dir.write_atomic(FILE, &data)?;
        dir.sync()?;
        Ok(Journal {
            file: Some(dir.open_rw(FILE, false)?),
            path: dir.show(FILE),
            end: data.len() as u64,
            next_seq: records.len() as u64 + 1,
        })
    }

    /// Continues appending to the journal `loaded` came from: a torn tail is cut off first, and a
    /// journal with skipped damage is rewritten clean.
    pub fn resume(dir: &PrivateDir, loaded: &Loaded) -> io::Result<Journal> {
        if loaded.skipped {
            tracing::warn!(journal = %crate::display::path(&dir.show(FILE)), "rewriting the journal without damaged bytes (no change was lost)");
            return Self::create(dir, &loaded.header, &loaded.records);
        }
        let file = dir.open_rw(FILE, false)?;
        if loaded.file_len > loaded.end {
            tracing::warn!(
                journal = %crate::display::path(&dir.show(FILE)),
                "cutting off {} bytes of a torn record at the end",
                loaded.file_len - loaded.end
            );
            file.set_len(loaded.end)?;
            file.sync_data()?;
        }
        Ok(Journal {
            file: Some(file),
            path: dir.show(FILE),
            end: loaded.end,
            next_seq: loaded.records.len() as u64 + 1,
        })
    }

    /// Appends one record with a single positioned write at the end of the intact records. If the
    /// write fails (disk full, quota), what it wrote is cut off again, so that later records never
    /// follow torn bytes; the change is then refused.
    pub fn append(&mut self, rec: &Record) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Err(io::Error::other("the journal is closed"));
        };
        let bytes = encode_record(self.next_seq, rec);
        if let Err(e) = file.write_all_at(&bytes, self.end) {
            if let Err(cut) = file.set_len(self.end) {
                // The next append overwrites from `end` anyway; what is left after it is a tail
                // that replay cuts off.
                tracing::warn!(journal = %crate::display::path(&self.path), "cannot cut a failed record off: {cut}");
            }
            return Err(e);
        }
        self.end += bytes.len() as u64;
        self.next_seq += 1;
        Ok(())
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.as_ref().map_or(Ok(()), File::sync_data)
    }

    /// Flushes and closes the file, so that it can be removed: on NFS (and FUSE filesystems) a
    /// file removed while open stays behind as `.nfsXXXX` and keeps its directory from going.
    pub fn close(&mut self) -> io::Result<()> {
        let synced = self.sync();
        self.file = None;
        synced
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            archive: PathBuf::from("/home/me/envs/ml.zip"),
            base: Identity {
                size: 1,
                cd_crc: 2,
                entries: 3,
            },
            created: (10, 20),
        }
    }

    fn records() -> Vec<Record> {
        record::all_ops()
            .into_iter()
            .enumerate()
            .map(|(k, op)| Record {
                t: (100 + k as i64, 5),
                op,
            })
            .collect()
    }

    fn fresh(t: &tempfile::TempDir) -> PrivateDir {
        PrivateDir::ensure(&t.path().join("upper")).unwrap()
    }

    #[test]
    fn records_round_trip_through_appends() {
        let t = tempfile::tempdir().unwrap();
        let dir = fresh(&t);
        let mut j = Journal::create(&dir, &header(), &[]).unwrap();
        for r in records() {
            j.append(&r).unwrap();
        }
        let loaded = Journal::load(&dir).unwrap().unwrap();
        assert_eq!(loaded.header, header());
        assert_eq!(loaded.records, records());
    }

    #[test]
    fn a_torn_tail_is_cut_and_appending_goes_on_after_the_good_part() {
        let t = tempfile::tempdir().unwrap();
        let dir = fresh(&t);
        let recs = records();
        Journal::create(&dir, &header(), &recs[..3]).unwrap();
        let good = std::fs::metadata(dir.show(FILE)).unwrap().len();
        let torn = encode_record(4, &recs[3]);
        let f = dir.open_rw(FILE, false).unwrap();
        f.write_all_at(&torn[..torn.len() - 3], good).unwrap();
        let loaded = Journal::load(&dir).unwrap().unwrap();
        assert_eq!(loaded.records, recs[..3]);
        let mut j = Journal::resume(&dir, &loaded).unwrap();
        assert_eq!(std::fs::metadata(dir.show(FILE)).unwrap().len(), good);
        j.append(&recs[3]).unwrap();
        assert_eq!(Journal::load(&dir).unwrap().unwrap().records, recs[..4]);
    }

    #[test]
    fn damage_with_nothing_lost_is_skipped_and_with_records_lost_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let dir = fresh(&t);
        let recs = records();
        Journal::create(&dir, &header(), &recs[..2]).unwrap();
        // Garbage between record 2 and record 3 (what an older version's torn append left).
        let mut data = std::fs::read(dir.show(FILE)).unwrap();
        data.extend_from_slice(b"CFr1 torn bytes of a failed append");
        data.extend_from_slice(&encode_record(3, &recs[2]));
        std::fs::write(dir.show(FILE), &data).unwrap();
        let loaded = Journal::load(&dir).unwrap().unwrap();
        assert_eq!(loaded.records, recs[..3]);
        Journal::resume(&dir, &loaded).unwrap();
        assert_eq!(Journal::load(&dir).unwrap().unwrap().records, recs[..3]);
        // A damaged record with intact ones after it: they cannot apply without it.
        let mut data = std::fs::read(dir.show(FILE)).unwrap();
        let second = data.len() - encode_record(3, &recs[2]).len() - 10;
        data[second] ^= 0xff;
        std::fs::write(dir.show(FILE), &data).unwrap();
        assert!(matches!(
            Journal::load(&dir),
            Err(JournalError::Damaged { lost: 1, .. })
        ));
        assert_eq!(
            std::fs::read(dir.show(FILE)).unwrap(),
            data,
            "kept as it was"
        );
    }

    #[test]
    fn unknown_versions_and_kinds_are_refused_and_kept() {
        let t = tempfile::tempdir().unwrap();
        let dir = fresh(&t);
        Journal::create(&dir, &header(), &records()[..1]).unwrap();
        let mut data = std::fs::read(dir.show(FILE)).unwrap();
        data[8..12].copy_from_slice(&2u32.to_le_bytes());
        std::fs::write(dir.show(FILE), &data).unwrap();
        assert!(matches!(
            Journal::load(&dir),
            Err(JournalError::UnknownVersion { version: 2, .. })
        ));
        assert_eq!(std::fs::read(dir.show(FILE)).unwrap(), data);
        // A record of a kind from the future, intact.
        Journal::create(&dir, &header(), &[]).unwrap();
        let mut data = std::fs::read(dir.show(FILE)).unwrap();
        let mut body = Enc(Vec::new());
        body.time((1, 1));
        body.0.push(200);
        let mut rec = Vec::new();
        rec.extend_from_slice(RECORD_MAGIC);
        rec.extend_from_slice(&1u64.to_le_bytes());
        rec.extend_from_slice(&(body.0.len() as u32).to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&rec[4..16]);
        h.update(&body.0);
        rec.extend_from_slice(&h.finalize().to_le_bytes());
        rec.extend_from_slice(&body.0);
        data.extend_from_slice(&rec);
        std::fs::write(dir.show(FILE), &data).unwrap();
        assert!(matches!(
            Journal::load(&dir),
            Err(JournalError::UnknownRecord { kind: 200, .. })
        ));
    }
}
