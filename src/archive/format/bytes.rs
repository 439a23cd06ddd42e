//! Little-endian reading and writing of the integers zip records are made of (APPNOTE 4.4: "all
//! values are stored in little-endian byte order"), and `fixed_record!`, which defines a record's
//! fixed part once for both parsing and writing.

/// An integer field of a zip record.
pub trait LeInt: Copy {
    const LEN: usize;
    fn read(b: &mut Bytes<'_>) -> Option<Self>;
    fn put(self, out: &mut Vec<u8>);
}

macro_rules! le_int {
    ($($t:ty),*) => {$(
        impl LeInt for $t {
            const LEN: usize = size_of::<$t>();
            fn read(b: &mut Bytes<'_>) -> Option<Self> {
                b.take(Self::LEN).map(|s| <$t>::from_le_bytes(s.try_into().expect("length taken")))
            }
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
le_int!(u8, u16, u32, u64);

/// Little-endian cursor over a byte slice; every read is bounds-checked.
pub struct Bytes<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Bytes { buf, pos: 0 }
    }
    pub fn position(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
    pub fn int<T: LeInt>(&mut self) -> Option<T> {
        T::read(self)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.int()
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.int()
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.int()
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.int()
    }
    /// An unsigned little-endian integer of 1 to 8 bytes (Info-ZIP's variable-size uid/gid).
    pub fn uint(&mut self, size: usize) -> Option<u64> {
        if size == 0 || size > 8 {
            return None;
        }
        let b = self.take(size)?;
        Some(
            b.iter()
                .rev()
                .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
        )
    }
}

/// Declares the fixed-size part of a signed zip record: its fields in on-disk order, and from that
/// one list its length, its parser and its writer, so the two can never disagree.
macro_rules! fixed_record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = ($record:expr, $signature:expr) {
            $($(#[$field_meta:meta])* $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $name {
            pub const SIGNATURE: u32 = $signature;
            /// Bytes on disk, signature included.
            pub const LEN: usize = 4 $(+ <$ty as $crate::archive::format::bytes::LeInt>::LEN)*;

            /// Reads the record at the cursor: its signature, then its fields.
            pub fn parse(
                b: &mut $crate::archive::format::bytes::Bytes<'_>,
            ) -> Result<Self, $crate::archive::format::FormatError> {
                use $crate::archive::format::FormatError;
                match b.u32() {
                    Some(Self::SIGNATURE) => {}
                    Some(_) => return Err(FormatError::MissingSignature($record)),
                    None => return Err(FormatError::Truncated($record)),
                }
                Ok($name {
                    $($field: b.int().ok_or(FormatError::Truncated($record))?,)*
                })
            }

            pub fn write(&self, out: &mut Vec<u8>) {
                use $crate::archive::format::bytes::LeInt;
                Self::SIGNATURE.put(out);
                $(self.$field.put(out);)*
            }
        }
    };
}
pub(crate) use fixed_record;
