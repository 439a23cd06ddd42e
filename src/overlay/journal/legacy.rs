//! Journals of conda-fuse before journal version 1: no header and no magic, records framed as
//! `len u32, crc32 u32, body`, the first one naming the base archive. Read once, to carry a
//! previous version's unsaved changes into a version 1 journal; never written.

use super::record::{Identity, Record};

/// The base and the intact records of a version 0 journal; None if `data` is not one.
pub fn parse(data: &[u8]) -> Option<(Identity, Vec<Record>)> {
    let mut base = None;
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
        let first = pos == 0;
        match Record::decode_body(body, first.then_some(&mut base)) {
            Ok(Some(r)) if !first => records.push(r),
            Ok(None) if first => {}
            _ => break,
        }
        pos += 8 + len;
    }
    base.map(|b| (b, records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::journal::record::{Enc, all_ops};

    /// A version 0 journal as conda-fuse wrote it before version 1.
    fn v0(base: Identity, records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut push = |body: Vec<u8>| {
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
            out.extend_from_slice(&body);
        };
        let mut b = Enc(Vec::new());
        b.time((1, 2));
        b.0.push(0);
        b.identity(&base);
        push(b.0);
        for r in records {
            push(r.encode_body());
        }
        out
    }

    #[test]
    fn version_0_journals_are_read() {
        let base = Identity {
            size: 5,
            cd_crc: 6,
            entries: 7,
        };
        let recs: Vec<Record> = all_ops()
            .into_iter()
            .map(|op| Record { t: (3, 4), op })
            .collect();
        let mut data = v0(base, &recs);
        assert_eq!(parse(&data), Some((base, recs.clone())));
        data.truncate(data.len() - 2);
        assert_eq!(parse(&data), Some((base, recs[..recs.len() - 1].to_vec())));
        assert_eq!(parse(b"CFJOURNL\x01\x00\x00\x00"), None);
    }
}
