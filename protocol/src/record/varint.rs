//! Kafka's zig-zag varints: `varint` (32-bit, at most 5 bytes) and `varlong` (64-bit, at most 10).
//!
//! The value is zig-zag mapped (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) then written 7 bits at a time,
//! least significant group first, with the high bit set on every byte but the last. Decoding rejects
//! encodings longer than [`VARINT_BYTES_MAX`] / [`VARLONG_BYTES_MAX`] and final groups carrying bits
//! beyond the type's width (Java silently drops those bits; we call them corruption).

use bytes::BufMut;

use super::limits::{VARINT_BYTES_MAX, VARLONG_BYTES_MAX};

/// Why a varint could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    /// The input ends inside the varint.
    #[error("varint truncated")]
    Truncated,
    /// More bytes than the type allows, or bits beyond its width.
    #[error("varint overflows its type")]
    Overflow,
}

#[inline]
fn read_unsigned(
    buf: &[u8],
    pos: &mut usize,
    max_bytes: usize,
    bits: u32,
) -> Result<u64, VarintError> {
    let start = *pos;
    // Fast path: one byte.
    match buf.get(start) {
        None => return Err(VarintError::Truncated),
        Some(&b) if b & 0x80 == 0 => {
            *pos = start + 1;
            return Ok(u64::from(b));
        }
        Some(_) => {}
    }
    let mut value: u64 = 0;
    for i in 0..max_bytes {
        let b = *buf.get(start + i).ok_or(VarintError::Truncated)?;
        let group = u64::from(b & 0x7f);
        let shift = 7 * i as u32;
        if shift + 7 > bits && (group >> (bits - shift)) != 0 {
            return Err(VarintError::Overflow);
        }
        value |= group << shift;
        if b & 0x80 == 0 {
            *pos = start + i + 1;
            return Ok(value);
        }
    }
    Err(VarintError::Overflow)
}

/// Decodes a zig-zag varint (i32) at `*pos`, advancing `pos` past it.
#[inline]
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32, VarintError> {
    let n = read_unsigned(buf, pos, VARINT_BYTES_MAX, 32)? as u32;
    Ok(((n >> 1) as i32) ^ -((n & 1) as i32))
}

/// Decodes a zig-zag varlong (i64) at `*pos`, advancing `pos` past it.
#[inline]
pub fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, VarintError> {
    let n = read_unsigned(buf, pos, VARLONG_BYTES_MAX, 64)?;
    Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
}

#[inline]
fn zigzag32(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

#[inline]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unsigned_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

#[inline]
fn write_unsigned(out: &mut impl BufMut, mut n: u64) {
    while n >= 0x80 {
        out.put_u8((n as u8) | 0x80);
        n >>= 7;
    }
    out.put_u8(n as u8);
}

/// Bytes `write_varint(v)` takes.
#[inline]
pub fn varint_len(v: i32) -> usize {
    unsigned_len(zigzag32(v))
}

/// Bytes `write_varlong(v)` takes.
#[inline]
pub fn varlong_len(v: i64) -> usize {
    unsigned_len(zigzag64(v))
}

/// Appends `v` as a zig-zag varint.
#[inline]
pub fn write_varint(out: &mut impl BufMut, v: i32) {
    write_unsigned(out, zigzag32(v));
}

/// Appends `v` as a zig-zag varlong.
#[inline]
pub fn write_varlong(out: &mut impl BufMut, v: i64) {
    write_unsigned(out, zigzag64(v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        // Values from Kafka's ByteUtilsTest.
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (-65, &[0x81, 0x01]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for &(v, enc) in cases {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(out, enc, "encoding {v}");
            assert_eq!(varint_len(v), enc.len());
            let mut pos = 0;
            assert_eq!(read_varint(enc, &mut pos), Ok(v));
            assert_eq!(pos, enc.len());
        }
    }

    #[test]
    fn too_long_or_too_wide_is_overflow() {
        let mut pos = 0;
        assert_eq!(
            read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], &mut pos),
            Err(VarintError::Overflow)
        );
        // Fifth byte carries bits beyond 32.
        assert_eq!(
            read_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f], &mut pos),
            Err(VarintError::Overflow)
        );
        let eleven = [0x80u8; 10];
        assert_eq!(read_varlong(&eleven, &mut pos), Err(VarintError::Overflow));
        // Tenth byte may only carry bit 63.
        let mut wide = [0xffu8; 10];
        wide[9] = 0x02;
        assert_eq!(read_varlong(&wide, &mut pos), Err(VarintError::Overflow));
        wide[9] = 0x01;
        let mut p = 0;
        assert_eq!(read_varlong(&wide, &mut p), Ok(i64::MIN));
        assert_eq!(pos, 0, "a failed read does not move the position");
    }

    #[test]
    fn truncated() {
        let mut pos = 0;
        assert_eq!(read_varint(&[], &mut pos), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[0x80], &mut pos), Err(VarintError::Truncated));
        assert_eq!(
            read_varlong(&[0xff, 0xff], &mut pos),
            Err(VarintError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn varint_roundtrip(v in any::<i32>()) {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            prop_assert_eq!(out.len(), varint_len(v));
            let mut pos = 0;
            prop_assert_eq!(read_varint(&out, &mut pos), Ok(v));
            prop_assert_eq!(pos, out.len());
        }

        #[test]
        fn varlong_roundtrip(v in any::<i64>()) {
            let mut out = Vec::new();
            write_varlong(&mut out, v);
            prop_assert_eq!(out.len(), varlong_len(v));
            let mut pos = 0;
            prop_assert_eq!(read_varlong(&out, &mut pos), Ok(v));
            prop_assert_eq!(pos, out.len());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let mut pos = 0;
            let _ = read_varint(&bytes, &mut pos);
            prop_assert!(pos <= bytes.len());
            let mut pos = 0;
            let _ = read_varlong(&bytes, &mut pos);
            prop_assert!(pos <= bytes.len());
        }
    }
}
