//! Panic-free fixed-width field readers and text helpers for untrusted buffers.
//!
//! Every reader returns zero for bytes that are not present, so a parser can
//! never index out of bounds; parsers check buffer lengths before trusting a
//! field and report truncation themselves.

/// `N` bytes at `off`, zero-filled where the buffer is too short.
pub(crate) fn field<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(end) = off.checked_add(N)
        && let Some(s) = b.get(off..end)
    {
        out.copy_from_slice(s);
    }
    out
}

/// `be16(b, off)` … `le64(b, off)`: the integer at `off` of `b` in that byte order.
macro_rules! int_readers {
    ($($name:ident: $t:ty = $from:ident;)*) => {
        $(pub(crate) fn $name(b: &[u8], off: usize) -> $t {
            <$t>::$from(field(b, off))
        })*
    };
}

int_readers! {
    be16: u16 = from_be_bytes;
    be32: u32 = from_be_bytes;
    be64: u64 = from_be_bytes;
    le16: u16 = from_le_bytes;
    le32: u32 = from_le_bytes;
    le64: u64 = from_le_bytes;
}

/// `true` when `b` at `off` starts with `magic` (and is long enough).
pub(crate) fn has_at(b: &[u8], off: usize, magic: &[u8]) -> bool {
    off.checked_add(magic.len())
        .and_then(|end| b.get(off..end))
        .is_some_and(|s| s == magic)
}

/// A short, printable rendering of untrusted bytes for error messages:
/// non-printable bytes are escaped and the result is cut at `max` characters.
pub(crate) fn printable(b: &[u8], max: usize) -> String {
    let mut out = String::new();
    for &c in b {
        if out.len() >= max {
            out.push('…');
            break;
        }
        if (0x20..0x7f).contains(&c) && c != b'\\' {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("\\x{c:02x}"));
        }
    }
    out
}

/// Ceiling division without overflow (`d` must be non-zero).
pub(crate) fn div_ceil(n: u64, d: u64) -> u64 {
    n / d + u64::from(!n.is_multiple_of(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_never_panic() {
        let b = [1u8, 2, 3];
        assert_eq!(be32(&b, 0), 0);
        assert_eq!(be16(&b, 1), 0x0203);
        assert_eq!(le64(&b, usize::MAX), 0);
        assert_eq!(le16(&b, 0), 0x0201);
        assert!(has_at(&b, 1, &[2, 3]));
        assert!(!has_at(&b, usize::MAX, &[2]));
    }

    #[test]
    fn printable_escapes_and_truncates() {
        assert_eq!(printable(b"a\0b", 10), "a\\x00b");
        assert_eq!(printable(b"abcdef", 3), "abc…");
    }

    #[test]
    fn div_ceil_edges() {
        assert_eq!(div_ceil(u64::MAX, 1 << 29), (1 << 35));
        assert_eq!(div_ceil(0, 7), 0);
        assert_eq!(div_ceil(7, 7), 1);
        assert_eq!(div_ceil(8, 7), 2);
    }
}
