//! The journal: every change to names and metadata since the last save, appended (one write(2) per
//! change, before the change is acknowledged) to a file in the upper layer. File contents live in
//! the upper layer's data files; the journal says which path each belongs to. Replaying the journal
//! over the archive's tree rebuilds the state after a crash of the daemon.
//!
//! Records name nodes by path, not by inode number, so a journal stays meaningful whatever inode
//! numbers a later mount assigns. Each record is `len u32, crc32 u32, body`; a torn or damaged tail
//! (the daemon died mid-write) ends the journal there and is cut off.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::tree::Time;

/// Which archive a journal applies to: its size, the CRC-32 of its central directory, and its
/// entry count. Saving an archive changes all three in practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub size: u64,
    pub cd_crc: u32,
    pub entries: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// First record: the archive this journal's changes apply to.
    Base(Identity),
    Mkdir {
        path: Vec<u8>,
        perm: u32,
        uid: u32,
        gid: u32,
    },
    /// A new regular file whose content is upper data file `id`.
    Create {
        path: Vec<u8>,
        id: u64,
        perm: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        path: Vec<u8>,
        target: Vec<u8>,
        uid: u32,
        gid: u32,
    },
    Link {
        from: Vec<u8>,
        to: Vec<u8>,
    },
    Unlink {
        path: Vec<u8>,
    },
    Rmdir {
        path: Vec<u8>,
    },
    Rename {
        from: Vec<u8>,
        to: Vec<u8>,
        flags: u32,
    },
    SetAttr {
        path: Vec<u8>,
        perm: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        mtime: Option<Time>,
    },
    /// The archive file at `path` now has its content in upper data file `id`.
    CopyUp {
        path: Vec<u8>,
        id: u64,
    },
    /// A save of these changes wrote the archive `Identity` and is about to rename it into place.
    Committing(Identity),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub t: Time,
    pub op: Op,
}

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
    fn opt_u32(&mut self, v: Option<u32>) {
        self.u8(u8::from(v.is_some()));
        self.u32(v.unwrap_or(0));
    }
    fn identity(&mut self, i: &Identity) {
        self.u64(i.size);
        self.u32(i.cd_crc);
        self.u64(i.entries);
    }
}

struct Dec<'a>(crate::archive::format::Bytes<'a>);

impl Dec<'_> {
    fn u8(&mut self) -> Option<u8> {
        self.0.u8()
    }
    fn u32(&mut self) -> Option<u32> {
        self.0.u32()
    }
    fn u64(&mut self) -> Option<u64> {
        self.0.u64()
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        self.0.take(n).map(<[u8]>::to_vec)
    }
    fn opt_u32(&mut self) -> Option<Option<u32>> {
        let some = self.u8()? != 0;
        let v = self.u32()?;
        Some(some.then_some(v))
    }
    fn identity(&mut self) -> Option<Identity> {
        Some(Identity {
            size: self.u64()?,
            cd_crc: self.u32()?,
            entries: self.u64()?,
        })
    }
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc(Vec::with_capacity(64));
        e.u64(self.t.0 as u64);
        e.u32(self.t.1);
        match &self.op {
            Op::Base(i) => {
                e.u8(0);
                e.identity(i);
            }
            Op::Mkdir {
                path,
                perm,
                uid,
                gid,
            } => {
                e.u8(1);
                e.bytes(path);
                e.u32(*perm);
                e.u32(*uid);
                e.u32(*gid);
            }
            Op::Create {
                path,
                id,
                perm,
                uid,
                gid,
            } => {
                e.u8(2);
                e.bytes(path);
                e.u64(*id);
                e.u32(*perm);
                e.u32(*uid);
                e.u32(*gid);
            }
            Op::Symlink {
                path,
                target,
                uid,
                gid,
            } => {
                e.u8(3);
                e.bytes(path);
                e.bytes(target);
                e.u32(*uid);
                e.u32(*gid);
            }
            Op::Link { from, to } => {
                e.u8(4);
                e.bytes(from);
                e.bytes(to);
            }
            Op::Unlink { path } => {
                e.u8(5);
                e.bytes(path);
            }
            Op::Rmdir { path } => {
                e.u8(6);
                e.bytes(path);
            }
            Op::Rename { from, to, flags } => {
                e.u8(7);
                e.bytes(from);
                e.bytes(to);
                e.u32(*flags);
            }
            Op::SetAttr {
                path,
                perm,
                uid,
                gid,
                mtime,
            } => {
                e.u8(8);
                e.bytes(path);
                e.opt_u32(*perm);
                e.opt_u32(*uid);
                e.opt_u32(*gid);
                e.u8(u8::from(mtime.is_some()));
                let (s, ns) = mtime.unwrap_or((0, 0));
                e.u64(s as u64);
                e.u32(ns);
            }
            Op::CopyUp { path, id } => {
                e.u8(9);
                e.bytes(path);
                e.u64(*id);
            }
            Op::Committing(i) => {
                e.u8(10);
                e.identity(i);
            }
        }
        let body = e.0;
        let mut out = Vec::with_capacity(body.len() + 8);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn decode(body: &[u8]) -> Option<Record> {
        let mut d = Dec(crate::archive::format::Bytes::new(body));
        let t = (d.u64()? as i64, d.u32()?);
        let op = match d.u8()? {
            0 => Op::Base(d.identity()?),
            1 => Op::Mkdir {
                path: d.bytes()?,
                perm: d.u32()?,
                uid: d.u32()?,
                gid: d.u32()?,
            },
            2 => Op::Create {
                path: d.bytes()?,
                id: d.u64()?,
                perm: d.u32()?,
                uid: d.u32()?,
                gid: d.u32()?,
            },
            3 => Op::Symlink {
                path: d.bytes()?,
                target: d.bytes()?,
                uid: d.u32()?,
                gid: d.u32()?,
            },
            4 => Op::Link {
                from: d.bytes()?,
                to: d.bytes()?,
            },
            5 => Op::Unlink { path: d.bytes()? },
            6 => Op::Rmdir { path: d.bytes()? },
            7 => Op::Rename {
                from: d.bytes()?,
                to: d.bytes()?,
                flags: d.u32()?,
            },
            8 => {
                let (path, perm, uid, gid) = (d.bytes()?, d.opt_u32()?, d.opt_u32()?, d.opt_u32()?);
                let has = d.u8()? != 0;
                let m = (d.u64()? as i64, d.u32()?);
                Op::SetAttr {
                    path,
                    perm,
                    uid,
                    gid,
                    mtime: has.then_some(m),
                }
            }
            9 => Op::CopyUp {
                path: d.bytes()?,
                id: d.u64()?,
            },
            10 => Op::Committing(d.identity()?),
            _ => return None,
        };
        Some(Record { t, op })
    }
}

pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Starts a new journal for `base`, replacing any old one atomically.
    pub fn create(path: &Path, base: Identity, t: Time) -> io::Result<Journal> {
        let tmp = path.with_extension("new");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(
                &Record {
                    t,
                    op: Op::Base(base),
                }
                .encode(),
            )?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Self::open(path)
    }

    /// Opens an existing journal for appending.
    pub fn open(path: &Path) -> io::Result<Journal> {
        let file = OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)?;
        Ok(Journal {
            file,
            path: path.to_owned(),
        })
    }

    /// Appends one record with a single write, so a reader never sees half of it unless the
    /// machine itself fails (then the CRC tells).
    pub fn append(&mut self, rec: &Record) -> io::Result<()> {
        self.file.write_all(&rec.encode())
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every intact record; a torn or damaged tail is cut off the file.
    pub fn read(path: &Path) -> io::Result<Vec<Record>> {
        let mut data = Vec::new();
        File::open(path)?.read_to_end(&mut data)?;
        let (records, pos) = parse(&data);
        if pos < data.len() {
            tracing::warn!(journal = %path.display(), "cutting off {} bytes of a torn record at the end", data.len() - pos);
            OpenOptions::new()
                .write(true)
                .open(path)?
                .set_len(pos as u64)?;
        }
        Ok(records)
    }

    /// Changes recorded after the base, read without touching the file (for listings while
    /// nothing is mounted). 0 when there is no journal.
    pub fn pending_changes(path: &Path) -> io::Result<usize> {
        let mut data = Vec::new();
        match File::open(path) {
            Ok(mut f) => f.read_to_end(&mut data)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let (records, _) = parse(&data);
        Ok(records
            .iter()
            .filter(|r| !matches!(r.op, Op::Base(_) | Op::Committing(_)))
            .count())
    }
}

/// The intact records at the start of `data`, and where they end.
fn parse(data: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().expect("4 bytes"));
        let Some(body) = data.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        let Some(rec) = Record::decode(body) else {
            break;
        };
        records.push(rec);
        pos += 8 + len;
    }
    (records, pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_ops() -> Vec<Op> {
        let id = Identity {
            size: 9,
            cd_crc: 7,
            entries: 3,
        };
        vec![
            Op::Base(id),
            Op::Mkdir {
                path: b"a\xff".to_vec(),
                perm: 0o755,
                uid: 1,
                gid: 2,
            },
            Op::Create {
                path: b"a/f".to_vec(),
                id: 42,
                perm: 0o644,
                uid: 1,
                gid: 2,
            },
            Op::Symlink {
                path: b"l".to_vec(),
                target: b"../x".to_vec(),
                uid: 3,
                gid: 4,
            },
            Op::Link {
                from: b"a/f".to_vec(),
                to: b"g".to_vec(),
            },
            Op::Unlink {
                path: b"g".to_vec(),
            },
            Op::Rmdir {
                path: b"d".to_vec(),
            },
            Op::Rename {
                from: b"x".to_vec(),
                to: b"y".to_vec(),
                flags: 2,
            },
            Op::SetAttr {
                path: b"y".to_vec(),
                perm: Some(0o600),
                uid: None,
                gid: Some(5),
                mtime: Some((-5, 7)),
            },
            Op::CopyUp {
                path: b"z".to_vec(),
                id: 43,
            },
            Op::Committing(id),
        ]
    }

    #[test]
    fn records_round_trip_and_torn_tails_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let ops = all_ops();
        let Op::Base(base) = ops[0].clone() else {
            unreachable!()
        };
        let mut j = Journal::create(&path, base, (1, 2)).unwrap();
        for op in &ops[1..] {
            j.append(&Record {
                t: (100, 5),
                op: op.clone(),
            })
            .unwrap();
        }
        let read = Journal::read(&path).unwrap();
        assert_eq!(read.iter().map(|r| r.op.clone()).collect::<Vec<_>>(), ops);
        // A half-written record at the end is dropped, and appending continues after the good part.
        let good_len = std::fs::metadata(&path).unwrap().len();
        let rec = Record {
            t: (1, 1),
            op: Op::Unlink {
                path: b"q".to_vec(),
            },
        }
        .encode();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&rec[..rec.len() - 3])
            .unwrap();
        assert_eq!(Journal::read(&path).unwrap().len(), ops.len());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
        // A damaged byte in the middle ends the journal there.
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        assert!(Journal::read(&path).unwrap().len() < ops.len());
    }
}
