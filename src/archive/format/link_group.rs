//! conda-fuse's own central-directory extra fields (other readers skip unknown ids, APPNOTE 4.5.2):
//! the hard-link group ("CL") and the device number ("CD"). Layouts live in `extra::ExtraField`;
//! this file says what they mean.
//!
//! A link group: entries with the same group number are names of one file (hard links). Each still
//! holds the full content, so other readers see copies and nothing is lost to them.
//! A device: the major and minor number (u32 each) of a character or block device entry.
//! A prefix ("CP"): the install prefix the entry's content was written for, where it may differ
//! from the one the archive's scripts name (a file saved through a mount at another prefix; see
//! `conda::relocation`). Its bytes are the prefix as conda wrote it, not necessarily UTF-8.

use super::extra::{self, ExtraField};

/// Appends the link-group field for `group`.
pub fn encode_link_group(group: u64, out: &mut Vec<u8>) {
    ExtraField::LinkGroup(group).write(out);
}

pub fn decode_link_group(extra_block: &[u8]) -> Option<u64> {
    extra::fields(extra_block).find_map(|f| match f {
        ExtraField::LinkGroup(g) => Some(g),
        _ => None,
    })
}

/// Appends the device field for `rdev`.
pub fn encode_device(rdev: u64, out: &mut Vec<u8>) {
    ExtraField::Device(rdev).write(out);
}

pub fn decode_device(extra_block: &[u8]) -> Option<u64> {
    extra::fields(extra_block).find_map(|f| match f {
        ExtraField::Device(d) => Some(d),
        _ => None,
    })
}

/// Appends the prefix field for `prefix`.
pub fn encode_prefix(prefix: &[u8], out: &mut Vec<u8>) {
    ExtraField::Prefix(prefix).write(out);
}

pub fn decode_prefix(extra_block: &[u8]) -> Option<&[u8]> {
    extra::fields(extra_block).find_map(|f| match f {
        ExtraField::Prefix(p) => Some(p),
        _ => None,
    })
}
