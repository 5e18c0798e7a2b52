//! Framing: every Kafka message is a big-endian int32 size followed by that many bytes.
//!
//! - [`check_frame`] / [`split_frame`] find complete frames in an input buffer without
//!   allocating: "need N more bytes" ([`WireError::Incomplete`]) is distinct from a size over the
//!   limit or negative (close the connection).
//! - [`ResponseFrame`] is an outgoing frame: small fields in one buffer, large byte fields (record
//!   batches) kept by reference, handed to the socket as [`ResponseFrame::parts`] /
//!   [`ResponseFrame::io_slices`] for one vectored write, size prefix included.

use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

use super::error::WireError;
use super::limits::{FRAME_PREFIX_BYTES, INLINE_CHUNK_BYTES_MAX};
use super::primitives::WireWrite;

/// Looks at the start of `buf`: the frame's body length (after the 4-byte prefix) when the whole
/// frame is present, [`WireError::Incomplete`] when more bytes are needed, or an error when the
/// size prefix is negative or over `max_bytes` (checked as soon as the prefix is in).
pub fn check_frame(buf: &[u8], max_bytes: usize) -> Result<usize, WireError> {
    let Some(prefix) = buf.first_chunk::<FRAME_PREFIX_BYTES>() else {
        return Err(WireError::Incomplete {
            needed: FRAME_PREFIX_BYTES - buf.len(),
        });
    };
    let size = i32::from_be_bytes(*prefix);
    let body = usize::try_from(size).map_err(|_| WireError::InvalidFrameSize { size })?;
    if body > max_bytes {
        return Err(WireError::FrameTooLarge {
            size: body,
            max: max_bytes,
        });
    }
    let have = buf.len() - FRAME_PREFIX_BYTES;
    if have < body {
        return Err(WireError::Incomplete {
            needed: body - have,
        });
    }
    Ok(body)
}

/// Splits one complete frame's body (without its size prefix) off the front of `buf`.
/// `Ok(None)` means more bytes are needed; reserve capacity with [`check_frame`]'s `needed` if
/// wanted. Errors mean the stream is unusable.
pub fn split_frame(buf: &mut BytesMut, max_bytes: usize) -> Result<Option<Bytes>, WireError> {
    match check_frame(buf, max_bytes) {
        Ok(body) => {
            buf.advance(FRAME_PREFIX_BYTES);
            Ok(Some(buf.split_to(body).freeze()))
        }
        Err(WireError::Incomplete { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// An encoded outgoing frame, size prefix included, as a list of byte parts to write in order.
///
/// Small fields are copied into one buffer; byte fields longer than [`INLINE_CHUNK_BYTES_MAX`]
/// (fetched record batches) are kept by reference, so serving a fetch copies no record bytes.
/// Filled by [`super::encode_response`] (or [`super::encode_request_frame`]); reusable.
#[derive(Debug, Default)]
pub struct ResponseFrame {
    head: BytesMut,
    refs: Vec<(usize, Bytes)>,
    ref_bytes: usize,
    parts: Vec<Bytes>,
    len: usize,
}

impl ResponseFrame {
    /// An empty frame.
    pub fn new() -> Self {
        ResponseFrame::default()
    }

    /// Starts a new frame: clears everything and reserves the size prefix.
    pub(crate) fn begin(&mut self) {
        self.head.clear();
        self.refs.clear();
        self.parts.clear();
        self.ref_bytes = 0;
        self.len = 0;
        self.head.extend_from_slice(&[0; FRAME_PREFIX_BYTES]);
    }

    /// Patches the size prefix and lays out the parts.
    pub(crate) fn finish(&mut self) -> Result<(), WireError> {
        let total = self.head.len() + self.ref_bytes;
        let body = total.saturating_sub(FRAME_PREFIX_BYTES);
        let size = i32::try_from(body).map_err(|_| WireError::TooLongToEncode {
            field: "frame",
            len: body,
        })?;
        if let Some(prefix) = self.head.first_chunk_mut::<FRAME_PREFIX_BYTES>() {
            *prefix = size.to_be_bytes();
        }
        let head = self.head.split().freeze();
        let mut at = 0;
        for (offset, chunk) in self.refs.drain(..) {
            if offset > at {
                self.parts.push(head.slice(at..offset));
            }
            self.parts.push(chunk);
            at = offset;
        }
        if head.len() > at {
            self.parts.push(head.slice(at..));
        }
        self.len = total;
        Ok(())
    }

    /// The frame's bytes, in order, size prefix first.
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// The parts as `IoSlice`s for `write_vectored`.
    pub fn io_slices(&self) -> Vec<IoSlice<'_>> {
        self.parts.iter().map(|p| IoSlice::new(p)).collect()
    }

    /// Total bytes, size prefix included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before anything was encoded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole frame as one buffer (copies; for tests and simple writers).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len);
        for part in &self.parts {
            out.extend_from_slice(part);
        }
        out.freeze()
    }

    /// Takes the parts out, leaving the frame empty.
    pub fn take_parts(&mut self) -> Vec<Bytes> {
        self.len = 0;
        std::mem::take(&mut self.parts)
    }
}

impl WireWrite for ResponseFrame {
    fn put(&mut self, bytes: &[u8]) {
        self.head.extend_from_slice(bytes);
    }

    fn put_shared(&mut self, bytes: &Bytes) {
        if bytes.len() <= INLINE_CHUNK_BYTES_MAX {
            self.head.extend_from_slice(bytes);
        } else {
            self.ref_bytes += bytes.len();
            self.refs.push((self.head.len(), bytes.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_frame_reports_what_is_missing() {
        assert_eq!(
            check_frame(&[0, 0], 100),
            Err(WireError::Incomplete { needed: 2 })
        );
        assert_eq!(
            check_frame(&[0, 0, 0, 5, 1, 2], 100),
            Err(WireError::Incomplete { needed: 3 })
        );
        assert_eq!(check_frame(&[0, 0, 0, 2, 1, 2, 3], 100), Ok(2));
        assert_eq!(
            check_frame(&[0, 0, 1, 0], 100),
            Err(WireError::FrameTooLarge {
                size: 256,
                max: 100
            })
        );
        assert_eq!(
            check_frame(&[0xff, 0xff, 0xff, 0xff], 100),
            Err(WireError::InvalidFrameSize { size: -1 })
        );
    }

    #[test]
    fn split_frame_takes_one_frame_at_a_time() {
        let mut buf = BytesMut::from(&[0, 0, 0, 1, 9, 0, 0, 0, 0, 0, 0][..]);
        assert_eq!(split_frame(&mut buf, 10).unwrap().unwrap(), &[9][..]);
        assert_eq!(split_frame(&mut buf, 10).unwrap().unwrap(), &[][..]);
        assert_eq!(split_frame(&mut buf, 10).unwrap(), None);
        assert_eq!(buf.len(), 2);
    }

    #[test]
    fn large_chunks_are_referenced_and_small_ones_copied() {
        let big = Bytes::from(vec![7u8; INLINE_CHUNK_BYTES_MAX + 1]);
        let mut frame = ResponseFrame::new();
        frame.begin();
        frame.put(&[1, 2]);
        frame.put_shared(&big);
        frame.put_shared(&Bytes::from_static(b"small"));
        frame.put(&[3]);
        frame.finish().unwrap();
        let parts = frame.parts();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].as_ptr(), big.as_ptr());
        let body = 2 + big.len() + 5 + 1;
        assert_eq!(frame.len(), 4 + body);
        let all = frame.to_bytes();
        assert_eq!(&all[..4], &(body as i32).to_be_bytes());
        assert_eq!(check_frame(&all, usize::MAX), Ok(body));
        assert_eq!(frame.io_slices().len(), 3);
    }
}
