//! One journal record's body: the time of the change and the operation, by path (a journal stays
//! meaningful whatever inode numbers a later mount assigns). The same body encoding serves both
//! journal versions; version 0 also had the base archive as a record (tag 0), version 1 keeps it in
//! the file header.

use crate::archive::format::Bytes;
use crate::overlay::tree::{RenameMode, Time};

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
        mode: RenameMode,
    },
    SetAttr {
        path: Vec<u8>,
        perm: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        mtime: Option<Time>,
    },
    /// A FIFO, socket or device (`kind` as the file type bits of a mode).
    Mknod {
        path: Vec<u8>,
        kind: u32,
        perm: u32,
        uid: u32,
        gid: u32,
        rdev: u64,
    },
    /// The archive file at `path` now has its content in upper data file `id`.
    CopyUp {
        path: Vec<u8>,
        id: u64,
    },
    /// A save of the changes before this record wrote the archive `Identity` and is about to
    /// rename it into place: once that archive is in place, they are in it.
    Committing(Identity),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub t: Time,
    pub op: Op,
}

/// Why a record body does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// The body ends early or has bytes left over.
    Malformed,
    /// An operation this version does not know (a newer conda-fuse wrote it).
    UnknownOp(u8),
}

/// The tags of version 0 and 1 bodies.
mod tag {
    pub const BASE_V0: u8 = 0;
    pub const MKDIR: u8 = 1;
    pub const CREATE: u8 = 2;
    pub const SYMLINK: u8 = 3;
    pub const LINK: u8 = 4;
    pub const UNLINK: u8 = 5;
    pub const RMDIR: u8 = 6;
    pub const RENAME: u8 = 7;
    pub const SETATTR: u8 = 8;
    pub const COPYUP: u8 = 9;
    pub const COMMITTING: u8 = 10;
    pub const MKNOD: u8 = 11;
}

pub(super) struct Enc(pub Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
    fn opt_u32(&mut self, v: Option<u32>) {
        self.u8(u8::from(v.is_some()));
        self.u32(v.unwrap_or(0));
    }
    pub(super) fn time(&mut self, t: Time) {
        self.u64(t.0 as u64);
        self.u32(t.1);
    }
    pub(super) fn identity(&mut self, i: &Identity) {
        self.u64(i.size);
        self.u32(i.cd_crc);
        self.u64(i.entries);
    }
}

pub(super) struct Dec<'a>(pub Bytes<'a>);

impl<'a> Dec<'a> {
    fn u8(&mut self) -> Option<u8> {
        self.0.u8()
    }
    pub(super) fn u32(&mut self) -> Option<u32> {
        self.0.u32()
    }
    pub(super) fn u64(&mut self) -> Option<u64> {
        self.0.u64()
    }
    pub(super) fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        self.0.take(n).map(<[u8]>::to_vec)
    }
    fn opt_u32(&mut self) -> Option<Option<u32>> {
        let some = self.u8()? != 0;
        let v = self.u32()?;
        Some(some.then_some(v))
    }
    pub(super) fn time(&mut self) -> Option<Time> {
        Some((self.u64()? as i64, self.u32()?))
    }
    pub(super) fn identity(&mut self) -> Option<Identity> {
        Some(Identity {
            size: self.u64()?,
            cd_crc: self.u32()?,
            entries: self.u64()?,
        })
    }
}

impl Record {
    pub fn encode_body(&self) -> Vec<u8> {
        let mut e = Enc(Vec::with_capacity(64));
        e.time(self.t);
        match &self.op {
            Op::Mkdir {
                path,
                perm,
                uid,
                gid,
            } => {
                e.u8(tag::MKDIR);
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
                e.u8(tag::CREATE);
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
                e.u8(tag::SYMLINK);
                e.bytes(path);
                e.bytes(target);
                e.u32(*uid);
                e.u32(*gid);
            }
            Op::Link { from, to } => {
                e.u8(tag::LINK);
                e.bytes(from);
                e.bytes(to);
            }
            Op::Unlink { path } => {
                e.u8(tag::UNLINK);
                e.bytes(path);
            }
            Op::Rmdir { path } => {
                e.u8(tag::RMDIR);
                e.bytes(path);
            }
            Op::Rename { from, to, mode } => {
                e.u8(tag::RENAME);
                e.bytes(from);
                e.bytes(to);
                e.u32(mode.flags());
            }
            Op::SetAttr {
                path,
                perm,
                uid,
                gid,
                mtime,
            } => {
                e.u8(tag::SETATTR);
                e.bytes(path);
                e.opt_u32(*perm);
                e.opt_u32(*uid);
                e.opt_u32(*gid);
                e.u8(u8::from(mtime.is_some()));
                e.time(mtime.unwrap_or((0, 0)));
            }
            Op::Mknod {
                path,
                kind,
                perm,
                uid,
                gid,
                rdev,
            } => {
                e.u8(tag::MKNOD);
                e.bytes(path);
                e.u32(*kind);
                e.u32(*perm);
                e.u32(*uid);
                e.u32(*gid);
                e.u64(*rdev);
            }
            Op::CopyUp { path, id } => {
                e.u8(tag::COPYUP);
                e.bytes(path);
                e.u64(*id);
            }
            Op::Committing(i) => {
                e.u8(tag::COMMITTING);
                e.identity(i);
            }
        }
        e.0
    }

    /// Decodes a body. A version 0 base record comes back as `Ok(None)` with its identity in
    /// `base` (only the legacy reader asks for it).
    pub(super) fn decode_body(
        body: &[u8],
        base: Option<&mut Option<Identity>>,
    ) -> Result<Option<Record>, BodyError> {
        let mut d = Dec(Bytes::new(body));
        let malformed = BodyError::Malformed;
        let t = d.time().ok_or(malformed)?;
        let op = (|| {
            let tag = d.u8().ok_or(malformed)?;
            let op = match tag {
                tag::BASE_V0 if base.is_some() => {
                    let id = d.identity().ok_or(malformed)?;
                    *base.expect("checked") = Some(id);
                    return Ok(None);
                }
                tag::MKDIR => (|| {
                    Some(Op::Mkdir {
                        path: d.bytes()?,
                        perm: d.u32()?,
                        uid: d.u32()?,
                        gid: d.u32()?,
                    })
                })(),
                tag::CREATE => (|| {
                    Some(Op::Create {
                        path: d.bytes()?,
                        id: d.u64()?,
                        perm: d.u32()?,
                        uid: d.u32()?,
                        gid: d.u32()?,
                    })
                })(),
                tag::SYMLINK => (|| {
                    Some(Op::Symlink {
                        path: d.bytes()?,
                        target: d.bytes()?,
                        uid: d.u32()?,
                        gid: d.u32()?,
                    })
                })(),
                tag::LINK => (|| {
                    Some(Op::Link {
                        from: d.bytes()?,
                        to: d.bytes()?,
                    })
                })(),
                tag::UNLINK => d.bytes().map(|path| Op::Unlink { path }),
                tag::RMDIR => d.bytes().map(|path| Op::Rmdir { path }),
                tag::RENAME => (|| {
                    Some(Op::Rename {
                        from: d.bytes()?,
                        to: d.bytes()?,
                        mode: RenameMode::from_flags(d.u32()?).ok()?,
                    })
                })(),
                tag::SETATTR => (|| {
                    let (path, perm, uid, gid) =
                        (d.bytes()?, d.opt_u32()?, d.opt_u32()?, d.opt_u32()?);
                    let has = d.u8()? != 0;
                    let m = d.time()?;
                    Some(Op::SetAttr {
                        path,
                        perm,
                        uid,
                        gid,
                        mtime: has.then_some(m),
                    })
                })(),
                tag::COPYUP => (|| {
                    Some(Op::CopyUp {
                        path: d.bytes()?,
                        id: d.u64()?,
                    })
                })(),
                tag::COMMITTING => d.identity().map(Op::Committing),
                tag::MKNOD => (|| {
                    Some(Op::Mknod {
                        path: d.bytes()?,
                        kind: d.u32()?,
                        perm: d.u32()?,
                        uid: d.u32()?,
                        gid: d.u32()?,
                        rdev: d.u64()?,
                    })
                })(),
                other => return Err(BodyError::UnknownOp(other)),
            };
            op.map(Some).ok_or(malformed)
        })()?;
        if d.0.remaining() != 0 {
            return Err(malformed);
        }
        Ok(op.map(|op| Record { t, op }))
    }
}

#[cfg(test)]
pub(super) fn all_ops() -> Vec<Op> {
    let id = Identity {
        size: 9,
        cd_crc: 7,
        entries: 3,
    };
    vec![
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
            mode: RenameMode::Exchange,
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
        Op::Mknod {
            path: b"dev/fifo".to_vec(),
            kind: libc::S_IFIFO,
            perm: 0o644,
            uid: 1,
            gid: 2,
            rdev: 0,
        },
    ]
}
