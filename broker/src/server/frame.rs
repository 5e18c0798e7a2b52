//! Splitting a byte stream into size-prefixed request frames (a `tokio_util` codec).
//!
//! A frame is a 4-byte big-endian signed length followed by that many bytes. The length is checked
//! against `socket.request.max.bytes` as soon as the 4 bytes are in, before anything is allocated
//! for the body, and the read buffer then grows at most [`FRAME_RESERVE_BYTES_MAX`] ahead of the
//! bytes that actually arrived: a peer that claims 100 MiB and sends nothing pins at most that. End of stream inside a frame is an error; end of
//! stream between frames is a clean close.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use super::limits::FRAME_RESERVE_BYTES_MAX;

/// Bytes of the size prefix.
pub const SIZE_PREFIX_BYTES: usize = 4;

/// Why a connection's byte stream cannot be split into frames; the connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The size prefix is negative.
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    /// The size prefix is over `socket.request.max.bytes`.
    #[error("frame of {length} bytes exceeds socket.request.max.bytes = {max}")]
    TooLarge {
        /// The announced length.
        length: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed inside a frame ({buffered} bytes of it received)")]
    Truncated {
        /// Bytes buffered when the stream ended.
        buffered: usize,
    },
    /// Reading from the socket failed.
    #[error("socket read: {0}")]
    Io(#[from] std::io::Error),
}

/// Splits request frames, handing out each body (without the size prefix) as `Bytes`.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_bytes: usize,
}

impl FrameDecoder {
    /// A decoder accepting bodies of at most `max_bytes`.
    pub fn new(max_bytes: usize) -> FrameDecoder {
        FrameDecoder { max_bytes }
    }

    /// The announced body length at the front of `src`, checked against the limit.
    fn peek_length(&self, src: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = src.get(..SIZE_PREFIX_BYTES) else {
            return Ok(None);
        };
        let length = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let length = usize::try_from(length).map_err(|_| FrameError::NegativeLength(length))?;
        if length > self.max_bytes {
            return Err(FrameError::TooLarge {
                length,
                max: self.max_bytes,
            });
        }
        Ok(Some(length))
    }
}

impl Decoder for FrameDecoder {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(length) = self.peek_length(src)? else {
            return Ok(None);
        };
        let needed = SIZE_PREFIX_BYTES + length;
        if src.len() < needed {
            // Room for the rest of the frame in one go (no regrowth copies for typical produce
            // requests), but never more than FRAME_RESERVE_BYTES_MAX ahead of the bytes that
            // actually arrived: see the module doc.
            src.reserve((needed - src.len()).min(FRAME_RESERVE_BYTES_MAX));
            return Ok(None);
        }
        src.advance(SIZE_PREFIX_BYTES);
        Ok(Some(src.split_to(length).freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated {
                buffered: src.len(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn splits_back_to_back_frames_in_any_chunking() {
        let mut stream = framed(b"hello");
        stream.extend(framed(b""));
        stream.extend(framed(&[7u8; 300]));
        for chunk in [1, 2, 3, 5, 64, 1000] {
            let mut decoder = FrameDecoder::new(1024);
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            for piece in stream.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(frame) = decoder.decode(&mut buf).expect("valid") {
                    frames.push(frame);
                }
            }
            assert_eq!(decoder.decode_eof(&mut buf).expect("clean end"), None);
            assert_eq!(frames.len(), 3, "chunk {chunk}");
            assert_eq!(&frames[0][..], b"hello");
            assert!(frames[1].is_empty());
            assert_eq!(frames[2].len(), 300);
        }
    }

    #[test]
    fn oversized_prefix_is_rejected_before_the_body_arrives() {
        let mut decoder = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&1025i32.to_be_bytes()[..]);
        let err = decoder.decode(&mut buf).expect_err("too large");
        assert!(matches!(
            err,
            FrameError::TooLarge {
                length: 1025,
                max: 1024
            }
        ));
        let mut buf = BytesMut::from(&i32::MIN.to_be_bytes()[..]);
        let err = decoder.decode(&mut buf).expect_err("negative");
        assert!(matches!(err, FrameError::NegativeLength(i32::MIN)));
    }

    #[test]
    fn end_of_stream_inside_a_frame_is_an_error() {
        let mut decoder = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&framed(b"hello")[..7]);
        assert_eq!(decoder.decode(&mut buf).expect("partial"), None);
        let err = decoder.decode_eof(&mut buf).expect_err("truncated");
        assert!(matches!(err, FrameError::Truncated { buffered: 7 }));
        let mut buf = BytesMut::from(&[0u8, 0][..]);
        assert!(decoder.decode_eof(&mut buf).is_err());
    }
}
