//! Kafka's primitive wire types: a bounded [`Reader`], the [`WireWrite`] sink, and the [`Codec`]
//! trait implemented by every primitive, array and message struct.
//!
//! Layouts (all big-endian, non-flexible versions only):
//! - `int8/16/32/64`, `uint16`, `float64`: fixed width; `bool`: one byte, non-zero is true;
//! - `string`: int16 length then UTF-8 (`-1` = null, only for `Option<String>`);
//! - `bytes` / `records`: int32 length then raw bytes (`-1` = null);
//! - arrays: int32 count then the elements (`-1` = null, only for `Option<Vec<T>>`).
//!
//! **Invariant**: an array count is accepted only if `count * T::min_bytes(version)` bytes remain
//! and `count <= ARRAY_LEN_MAX`, so no allocation is ever sized by an unchecked number. Byte
//! fields are zero-copy slices of the frame ([`Bytes::split_to`]).

use bytes::{Buf, Bytes, BytesMut};

use super::error::WireError;
use super::limits::ARRAY_LEN_MAX;

/// A cursor over one message's bytes that never reads past the end and never panics.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    /// Reads from `buf`.
    pub fn new(buf: Bytes) -> Self {
        Reader { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails with [`WireError::TrailingBytes`] unless everything was read.
    pub fn finish(self) -> Result<(), WireError> {
        match self.buf.len() {
            0 => Ok(()),
            count => Err(WireError::TrailingBytes { count }),
        }
    }

    fn need(&self, n: usize) -> Result<(), WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated {
                field: "",
                needed: n - self.buf.len(),
            });
        }
        Ok(())
    }

    /// Reads an int8.
    pub fn i8(&mut self) -> Result<i8, WireError> {
        self.need(1)?;
        Ok(self.buf.get_i8())
    }

    /// Reads an int16.
    pub fn i16(&mut self) -> Result<i16, WireError> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }

    /// Reads an int32.
    pub fn i32(&mut self) -> Result<i32, WireError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    /// Reads an int64.
    pub fn i64(&mut self) -> Result<i64, WireError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    /// Reads a uint16.
    pub fn u16(&mut self) -> Result<u16, WireError> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    /// Reads a float64.
    pub fn f64(&mut self) -> Result<f64, WireError> {
        self.need(8)?;
        Ok(self.buf.get_f64())
    }

    /// Reads a bool (any non-zero byte is true, as Kafka reads it).
    pub fn bool(&mut self) -> Result<bool, WireError> {
        Ok(self.i8()? != 0)
    }

    /// Takes the next `n` bytes as a zero-copy slice.
    pub fn slice(&mut self, n: usize) -> Result<Bytes, WireError> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    /// Reads a string, or `None` for the null string (length -1).
    pub fn nullable_string(&mut self) -> Result<Option<String>, WireError> {
        let len = self.i16()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| WireError::Malformed {
            field: "",
            reason: "negative string length",
        })?;
        let raw = self.slice(len)?;
        match std::str::from_utf8(&raw) {
            Ok(s) => Ok(Some(s.to_owned())),
            Err(_) => Err(WireError::Malformed {
                field: "",
                reason: "string is not valid UTF-8",
            }),
        }
    }

    /// Reads a non-nullable string.
    pub fn string(&mut self) -> Result<String, WireError> {
        self.nullable_string()?.ok_or(WireError::Malformed {
            field: "",
            reason: "null where a string is required",
        })
    }

    /// Reads a byte field (int32 length), or `None` for null (length -1).
    pub fn nullable_bytes(&mut self) -> Result<Option<Bytes>, WireError> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| WireError::Malformed {
            field: "",
            reason: "negative bytes length",
        })?;
        self.slice(len).map(Some)
    }

    /// Reads a non-nullable byte field.
    pub fn bytes(&mut self) -> Result<Bytes, WireError> {
        self.nullable_bytes()?.ok_or(WireError::Malformed {
            field: "",
            reason: "null where bytes are required",
        })
    }

    /// Reads an array count, `None` for a null array. The count is checked against
    /// [`ARRAY_LEN_MAX`] and against the bytes left, given each element takes at least
    /// `min_element_bytes` (treated as at least 1).
    pub fn array_len(&mut self, min_element_bytes: usize) -> Result<Option<usize>, WireError> {
        let n = self.i32()?;
        if n == -1 {
            return Ok(None);
        }
        let n = usize::try_from(n).map_err(|_| WireError::Malformed {
            field: "",
            reason: "negative array length",
        })?;
        if n > ARRAY_LEN_MAX {
            return Err(WireError::OverLimit {
                field: "",
                count: n,
                max: ARRAY_LEN_MAX,
            });
        }
        // n <= 2^20 and min_element_bytes is a small schema constant: no overflow in practice,
        // saturate anyway.
        self.need(n.saturating_mul(min_element_bytes.max(1)))?;
        Ok(Some(n))
    }
}

/// Where encoders write. Small fields are copied; [`WireWrite::put_shared`] lets a sink keep
/// large byte fields (record batches) by reference instead.
pub trait WireWrite {
    /// Appends a copy of `bytes`.
    fn put(&mut self, bytes: &[u8]);

    /// Appends `bytes`, by reference when the sink can (the default copies).
    fn put_shared(&mut self, bytes: &Bytes) {
        self.put(bytes);
    }
}

impl WireWrite for BytesMut {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl WireWrite for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A value with a Kafka wire encoding that may depend on the message version.
pub trait Codec: Sized {
    /// The fewest bytes one value occupies at `version`; bounds array counts before allocating.
    fn min_bytes(version: i16) -> usize;

    /// Reads one value.
    fn decode(r: &mut Reader, version: i16) -> Result<Self, WireError>;

    /// Writes one value.
    fn encode<W: WireWrite>(&self, w: &mut W, version: i16) -> Result<(), WireError>;
}

macro_rules! fixed_codec {
    ($($ty:ty => $read:ident, $n:expr;)*) => {$(
        impl Codec for $ty {
            fn min_bytes(_version: i16) -> usize {
                $n
            }
            fn decode(r: &mut Reader, _version: i16) -> Result<Self, WireError> {
                r.$read()
            }
            fn encode<W: WireWrite>(&self, w: &mut W, _version: i16) -> Result<(), WireError> {
                w.put(&self.to_be_bytes());
                Ok(())
            }
        }
    )*};
}

fixed_codec! {
    i8 => i8, 1;
    i16 => i16, 2;
    i32 => i32, 4;
    i64 => i64, 8;
    u16 => u16, 2;
    f64 => f64, 8;
}

impl Codec for bool {
    fn min_bytes(_version: i16) -> usize {
        1
    }
    fn decode(r: &mut Reader, _version: i16) -> Result<Self, WireError> {
        r.bool()
    }
    fn encode<W: WireWrite>(&self, w: &mut W, _version: i16) -> Result<(), WireError> {
        w.put(&[u8::from(*self)]);
        Ok(())
    }
}

fn put_string<W: WireWrite>(w: &mut W, s: Option<&str>) -> Result<(), WireError> {
    match s {
        None => w.put(&(-1i16).to_be_bytes()),
        Some(s) => {
            let len = i16::try_from(s.len()).map_err(|_| WireError::TooLongToEncode {
                field: "",
                len: s.len(),
            })?;
            w.put(&len.to_be_bytes());
            w.put(s.as_bytes());
        }
    }
    Ok(())
}

fn put_bytes<W: WireWrite>(w: &mut W, b: Option<&Bytes>) -> Result<(), WireError> {
    match b {
        None => w.put(&(-1i32).to_be_bytes()),
        Some(b) => {
            w.put(&len_i32(b.len())?.to_be_bytes());
            w.put_shared(b);
        }
    }
    Ok(())
}

fn len_i32(len: usize) -> Result<i32, WireError> {
    i32::try_from(len).map_err(|_| WireError::TooLongToEncode { field: "", len })
}

impl Codec for String {
    fn min_bytes(_version: i16) -> usize {
        2
    }
    fn decode(r: &mut Reader, _version: i16) -> Result<Self, WireError> {
        r.string()
    }
    fn encode<W: WireWrite>(&self, w: &mut W, _version: i16) -> Result<(), WireError> {
        put_string(w, Some(self))
    }
}

impl Codec for Option<String> {
    fn min_bytes(_version: i16) -> usize {
        2
    }
    fn decode(r: &mut Reader, _version: i16) -> Result<Self, WireError> {
        r.nullable_string()
    }
    fn encode<W: WireWrite>(&self, w: &mut W, _version: i16) -> Result<(), WireError> {
        put_string(w, self.as_deref())
    }
}

impl Codec for Bytes {
    fn min_bytes(_version: i16) -> usize {
        4
    }
    fn decode(r: &mut Reader, _version: i16) -> Result<Self, WireError> {
        r.bytes()
    }
    fn encode<W: WireWrite>(&self, w: &mut W, _version: i16) -> Result<(), WireError> {
        put_bytes(w, Some(self))
    }
}

impl Codec for Option<Bytes> {
    fn min_bytes(_version: i16) -> usize {
        4
    }
    fn decode(r: &mut Reader, _version: i16) -> Result<Self, WireError> {
        r.nullable_bytes()
    }
    fn encode<W: WireWrite>(&self, w: &mut W, _version: i16) -> Result<(), WireError> {
        put_bytes(w, self.as_ref())
    }
}

fn decode_elements<T: Codec>(r: &mut Reader, version: i16, n: usize) -> Result<Vec<T>, WireError> {
    // `n` was bounded by `Reader::array_len` against the bytes left.
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(T::decode(r, version)?);
    }
    Ok(out)
}

fn encode_elements<T: Codec, W: WireWrite>(
    items: Option<&[T]>,
    w: &mut W,
    version: i16,
) -> Result<(), WireError> {
    match items {
        None => w.put(&(-1i32).to_be_bytes()),
        Some(items) => {
            w.put(&len_i32(items.len())?.to_be_bytes());
            for item in items {
                item.encode(w, version)?;
            }
        }
    }
    Ok(())
}

impl<T: Codec> Codec for Vec<T> {
    fn min_bytes(_version: i16) -> usize {
        4
    }
    fn decode(r: &mut Reader, version: i16) -> Result<Self, WireError> {
        match r.array_len(T::min_bytes(version))? {
            Some(n) => decode_elements(r, version, n),
            None => Err(WireError::Malformed {
                field: "",
                reason: "null where an array is required",
            }),
        }
    }
    fn encode<W: WireWrite>(&self, w: &mut W, version: i16) -> Result<(), WireError> {
        encode_elements(Some(self), w, version)
    }
}

impl<T: Codec> Codec for Option<Vec<T>> {
    fn min_bytes(_version: i16) -> usize {
        4
    }
    fn decode(r: &mut Reader, version: i16) -> Result<Self, WireError> {
        match r.array_len(T::min_bytes(version))? {
            Some(n) => decode_elements(r, version, n).map(Some),
            None => Ok(None),
        }
    }
    fn encode<W: WireWrite>(&self, w: &mut W, version: i16) -> Result<(), WireError> {
        encode_elements(self.as_deref(), w, version)
    }
}

/// A fetch response's record data: stored batches as a list of chunks written back to back,
/// each by reference, so serving a fetch copies no record bytes.
///
/// Decoding yields a single chunk sliced from the frame (possibly ending in a partial batch, as
/// Kafka allows). A null field decodes as empty and empty encodes as length 0. Equality compares
/// the concatenated bytes, not how they are split into chunks.
#[derive(Debug, Clone, Default)]
pub struct Records {
    chunks: Vec<Bytes>,
    len: usize,
}

impl Records {
    /// No records.
    pub fn new() -> Self {
        Records::default()
    }

    /// Records made of these chunks, in order.
    pub fn from_chunks(chunks: Vec<Bytes>) -> Self {
        let len = chunks.iter().map(Bytes::len).sum();
        Records { chunks, len }
    }

    /// Appends a chunk.
    pub fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        self.chunks.push(chunk);
    }

    /// The chunks, in order.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// Total bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no record bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The records as one contiguous buffer (copies only when there are several chunks).
    pub fn to_bytes(&self) -> Bytes {
        match self.chunks.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => {
                let mut out = BytesMut::with_capacity(self.len);
                for chunk in many {
                    out.extend_from_slice(chunk);
                }
                out.freeze()
            }
        }
    }
}

impl From<Bytes> for Records {
    fn from(chunk: Bytes) -> Self {
        Records::from_chunks(vec![chunk])
    }
}

impl PartialEq for Records {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self
                .chunks
                .iter()
                .flat_map(|c| c.iter())
                .eq(other.chunks.iter().flat_map(|c| c.iter()))
    }
}

impl Eq for Records {}

impl Codec for Records {
    fn min_bytes(_version: i16) -> usize {
        4
    }
    fn decode(r: &mut Reader, _version: i16) -> Result<Self, WireError> {
        match r.nullable_bytes()? {
            Some(b) if !b.is_empty() => Ok(Records::from(b)),
            _ => Ok(Records::new()),
        }
    }
    fn encode<W: WireWrite>(&self, w: &mut W, _version: i16) -> Result<(), WireError> {
        w.put(&len_i32(self.len)?.to_be_bytes());
        for chunk in &self.chunks {
            w.put_shared(chunk);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> Reader {
        Reader::new(Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn array_count_is_bounded_by_remaining_bytes() {
        // Claims 1,000,000 int32s with 8 bytes left: rejected before allocating.
        let mut r = reader(&[0, 0x0f, 0x42, 0x40, 0, 0, 0, 1, 0, 0, 0, 2]);
        let err = Vec::<i32>::decode(&mut r, 0).unwrap_err();
        assert_eq!(
            err,
            WireError::Truncated {
                field: "",
                needed: 4_000_000 - 8
            }
        );
    }

    #[test]
    fn array_count_over_limit_is_rejected() {
        let mut r = reader(&[0x7f, 0xff, 0xff, 0xff]);
        assert!(matches!(
            Vec::<i8>::decode(&mut r, 0),
            Err(WireError::OverLimit { .. })
        ));
    }

    #[test]
    fn negative_lengths_are_malformed() {
        assert!(matches!(
            reader(&[0xff, 0xfe]).nullable_string(),
            Err(WireError::Malformed { .. })
        ));
        assert!(matches!(
            reader(&[0xff, 0xff, 0xff, 0xfe]).nullable_bytes(),
            Err(WireError::Malformed { .. })
        ));
        assert!(matches!(
            reader(&[0xff, 0xff, 0xff, 0xfe]).array_len(1),
            Err(WireError::Malformed { .. })
        ));
    }

    #[test]
    fn null_is_distinct_from_empty() {
        assert_eq!(reader(&[0xff, 0xff]).nullable_string(), Ok(None));
        assert_eq!(reader(&[0, 0]).nullable_string(), Ok(Some(String::new())));
        assert!(reader(&[0xff, 0xff]).string().is_err());
        assert_eq!(reader(&[0xff, 0xff, 0xff, 0xff]).array_len(4), Ok(None));
    }

    #[test]
    fn bytes_are_sliced_without_copying() {
        let frame = Bytes::from_static(&[0, 0, 0, 3, b'a', b'b', b'c']);
        let mut r = Reader::new(frame.clone());
        let b = r.bytes().unwrap();
        assert_eq!(&b[..], b"abc");
        assert_eq!(b.as_ptr(), frame[4..].as_ptr());
    }

    #[test]
    fn invalid_utf8_is_malformed() {
        assert!(matches!(
            reader(&[0, 1, 0xff]).string(),
            Err(WireError::Malformed { .. })
        ));
    }

    #[test]
    fn records_equality_ignores_chunking() {
        let a = Records::from_chunks(vec![Bytes::from_static(b"ab"), Bytes::from_static(b"c")]);
        let b = Records::from(Bytes::from_static(b"abc"));
        assert_eq!(a, b);
        assert_eq!(a.to_bytes(), Bytes::from_static(b"abc"));
        let mut out = Vec::new();
        a.encode(&mut out, 0).unwrap();
        assert_eq!(out, [0, 0, 0, 3, b'a', b'b', b'c']);
    }

    #[test]
    fn overlong_string_is_an_encode_error() {
        let s = "x".repeat(40_000);
        let mut out = Vec::new();
        assert!(matches!(
            s.encode(&mut out, 0),
            Err(WireError::TooLongToEncode { len: 40_000, .. })
        ));
    }
}
