//! Unix metadata (file type, mode, owner, mtime) as zip stores it: mode in the high half of the
//! external attributes when the writer was a Unix host, mtime in the extended-timestamp field with
//! the DOS date/time (local time, two-second steps) as fallback, owner in Info-ZIP's Unix field.

use super::format::{self, CentralHeader};

/// What kind of node an entry becomes. FIFOs, sockets and devices are kept as entries with their
/// type in the mode bits (and a device's number in conda-fuse's device field); their data is empty.
/// Other zip tools extract them as empty regular files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl Kind {
    pub fn from_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFCHR => Kind::CharDevice,
            libc::S_IFBLK => Kind::BlockDevice,
            _ => Kind::File,
        }
    }

    pub fn type_bits(self) -> u32 {
        match self {
            Kind::File => libc::S_IFREG,
            Kind::Dir => libc::S_IFDIR,
            Kind::Symlink => libc::S_IFLNK,
            Kind::Fifo => libc::S_IFIFO,
            Kind::Socket => libc::S_IFSOCK,
            Kind::CharDevice => libc::S_IFCHR,
            Kind::BlockDevice => libc::S_IFBLK,
        }
    }

    /// FIFOs, sockets and devices: nodes without data of their own.
    pub fn is_special(self) -> bool {
        matches!(
            self,
            Kind::Fifo | Kind::Socket | Kind::CharDevice | Kind::BlockDevice
        )
    }

    pub fn is_device(self) -> bool {
        matches!(self, Kind::CharDevice | Kind::BlockDevice)
    }
}

/// Unix metadata of one entry. `owner` is None when the archive does not record it; the mount
/// then shows the mounting user, as `unzip` without `-X` would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    pub perm: u32,
    pub owner: Option<(u32, u32)>,
    pub mtime: i64,
    /// A device's number (0 for every other kind).
    pub rdev: u64,
}

impl Meta {
    pub fn mode(&self) -> u32 {
        self.kind.type_bits() | self.perm
    }

    pub fn from_central(h: &CentralHeader<'_>) -> Meta {
        let dir_name = h.name.last() == Some(&b'/');
        let attr_mode = h.external_attr >> 16;
        let unix_host = matches!(h.host_system(), format::HOST_UNIX | format::HOST_MACOS);
        let (kind, perm) = if unix_host && attr_mode != 0 {
            let kind = if dir_name || attr_mode & libc::S_IFMT == 0 && h.external_attr & 0x10 != 0 {
                Kind::Dir
            } else {
                Kind::from_mode(attr_mode)
            };
            (kind, attr_mode & 0o7777)
        } else if dir_name || h.external_attr & 0x10 != 0 {
            (Kind::Dir, 0o755)
        } else if h.external_attr & 0x01 != 0 {
            (Kind::File, 0o444)
        } else {
            (Kind::File, 0o644)
        };
        let mtime =
            format::extra::mtime(h.extra).unwrap_or_else(|| dos_to_unix(h.dos_date, h.dos_time));
        let rdev = if kind.is_device() {
            format::decode_device(h.extra).unwrap_or(0)
        } else {
            0
        };
        Meta {
            kind,
            perm,
            owner: format::extra::unix_owner(h.extra),
            mtime,
            rdev,
        }
    }
}

/// DOS date/time fields are local time, as Info-ZIP and most writers record them.
pub fn dos_to_unix(date: u16, time: u16) -> i64 {
    // SAFETY: an all-zero `tm` is a valid value; mktime only reads and normalises it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = i32::from(date >> 9) + 80;
    tm.tm_mon = (i32::from((date >> 5) & 0xf) - 1).max(0);
    tm.tm_mday = i32::from(date & 0x1f).max(1);
    tm.tm_hour = i32::from(time >> 11);
    tm.tm_min = i32::from((time >> 5) & 0x3f);
    tm.tm_sec = i32::from(time & 0x1f) * 2;
    tm.tm_isdst = -1;
    // SAFETY: `tm` is a valid, exclusively borrowed struct.
    let t = unsafe { libc::mktime(&mut tm) };
    if t == -1 { 315_532_800 } else { t }
}

/// (time, date) in DOS format for a Unix time, clamped to the range DOS can express (1980-2107).
pub fn unix_to_dos(t: i64) -> (u16, u16) {
    // localtime_r takes a lock and checks the time zone on every call; files written together
    // share their minute, so remember the last minute converted (offsets are whole minutes).
    thread_local! {
        static LAST: std::cell::Cell<Option<(i64, (u16, u16))>> = const { std::cell::Cell::new(None) };
    }
    let t = t.clamp(315_532_800, 4_354_819_199);
    let minute = t.div_euclid(60);
    let secs = (t.rem_euclid(60) / 2) as u16;
    if let Some((m, (time, date))) = LAST.with(|l| l.get())
        && m == minute
    {
        return ((time & !0x1f) | secs, date);
    }
    let dos = localtime_dos(t);
    LAST.with(|l| l.set(Some((minute, dos))));
    dos
}

fn localtime_dos(t: i64) -> (u16, u16) {
    let t = t as libc::time_t;
    // SAFETY: an all-zero `tm` is valid; localtime_r fills it from `t`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return (0, (1 << 5) | 1);
    }
    let year = (tm.tm_year - 80).clamp(0, 127) as u16;
    let date = (year << 9) | (((tm.tm_mon + 1) as u16) << 5) | tm.tm_mday as u16;
    let time = ((tm.tm_hour as u16) << 11) | ((tm.tm_min as u16) << 5) | (tm.tm_sec as u16 / 2);
    (time, date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(made_by_host: u8, attr: u32, name: &[u8]) -> CentralHeader<'_> {
        CentralHeader {
            version_made_by: u16::from(made_by_host) << 8 | 30,
            flags: 0,
            method: 0,
            dos_time: 0,
            dos_date: (1 << 5) | 1,
            crc32: 0,
            compressed_size: 0,
            uncompressed_size: 0,
            external_attr: attr,
            local_header_offset: 0,
            name,
            extra: &[],
        }
    }

    #[test]
    fn unix_modes_keep_type_and_special_bits() {
        let m = Meta::from_central(&header(3, (libc::S_IFREG | 0o6755) << 16, b"x"));
        assert_eq!((m.kind, m.perm), (Kind::File, 0o6755));
        let m = Meta::from_central(&header(3, (libc::S_IFLNK | 0o777) << 16, b"l"));
        assert_eq!(m.kind, Kind::Symlink);
        let m = Meta::from_central(&header(3, (libc::S_IFDIR | 0o1777) << 16, b"tmp/"));
        assert_eq!((m.kind, m.perm), (Kind::Dir, 0o1777));
    }

    #[test]
    fn entries_without_unix_metadata_get_defaults() {
        let m = Meta::from_central(&header(0, 0x20, b"a.txt"));
        assert_eq!((m.kind, m.perm, m.owner), (Kind::File, 0o644, None));
        let m = Meta::from_central(&header(0, 0x10, b"d"));
        assert_eq!((m.kind, m.perm), (Kind::Dir, 0o755));
        let m = Meta::from_central(&header(3, 0, b"d/"));
        assert_eq!((m.kind, m.perm), (Kind::Dir, 0o755));
    }

    #[test]
    fn dos_time_round_trips_at_two_second_resolution() {
        for t in [
            315_532_800i64,
            1_000_000_000,
            1_700_000_001,
            1_700_000_003,
            1_700_000_059,
            1_700_000_060,
        ] {
            let (time, date) = unix_to_dos(t);
            assert_eq!(dos_to_unix(date, time), t - t % 2, "{t}");
            assert_eq!(
                (time, date),
                localtime_dos(t),
                "{t}: the minute cache agrees"
            );
        }
    }
}
