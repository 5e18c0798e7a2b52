//! Compressing and inflating a batch's records section.
//!
//! - **lz4**: the LZ4 frame format as Kafka >= 0.10 / KIP-57 writes it: independent 64 KiB blocks,
//!   a correct frame-descriptor checksum, no content checksum. Java's `Lz4BlockInputStream` decodes
//!   each block on its own, so linked blocks must never be written; librdkafka writes the same shape.
//!   Reading accepts any standard frame (content size, checksums, linked blocks: kafka-python's
//!   `lz4.frame` output links blocks).
//! - **gzip**: RFC 1952 via `flate2`'s pure-Rust backend; concatenated members are read as one stream,
//!   like Java's `GZIPInputStream`.
//! - **snappy**: written in snappy-java's "xerial" framing (what the Java client and kafka-python
//!   write, and librdkafka reads); read in that framing or as one raw snappy block (librdkafka's
//!   producer output).
//! - **zstd**: via the pure-Rust `ruzstd` (its encoder compresses at about zstd level 1); frames
//!   with a window above [`ZSTD_WINDOW_BYTES_MAX`] are refused; concatenated frames are read in turn.
//!
//! Inflating stops with [`BatchError::DecompressedTooLarge`] past the caller's limit, before
//! allocating more.

use std::io::{Read, Write};

use super::attributes::Compression;
use super::error::{BatchError, BuildError};
use super::limits::ZSTD_WINDOW_BYTES_MAX;

/// snappy-java's stream header: magic, then version 1 and minimum compatible version 1 (int32 BE).
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_BYTES: usize = 16;
/// Uncompressed bytes per xerial block (snappy-java's and kafka-python's default).
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

/// Upper bound of the compressed size of `n` bytes for any codec written here (stored blocks plus
/// framing), used to keep a finished batch within its limit.
pub fn compressed_bytes_bound(n: usize) -> usize {
    n + n / 1024 + 64
}

/// Appends `input` compressed with `codec` to `out`.
pub fn compress(codec: Compression, input: &[u8], out: &mut Vec<u8>) -> Result<(), BuildError> {
    let fail = |e: &dyn std::fmt::Display| BuildError::Compression {
        codec,
        reason: e.to_string(),
    };
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
            enc.write_all(input).map_err(|e| fail(&e))?;
            enc.finish().map_err(|e| fail(&e))?;
        }
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            enc.write_all(input).map_err(|e| fail(&e))?;
            enc.finish().map_err(|e| fail(&e))?;
        }
        Compression::Snappy => {
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for block in input.chunks(XERIAL_BLOCK_BYTES) {
                let at = out.len();
                out.extend_from_slice(&[0; 4]);
                out.resize(at + 4 + snap::raw::max_compress_len(block.len()), 0);
                let n = enc
                    .compress(block, &mut out[at + 4..])
                    .map_err(|e| fail(&e))?;
                out.truncate(at + 4 + n);
                out[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
            }
        }
        Compression::Zstd => {
            ruzstd::encoding::compress(input, out, ruzstd::encoding::CompressionLevel::Fastest)
        }
    }
    Ok(())
}

/// Inflates `input` compressed with `codec`, failing past `limit` output bytes.
pub fn decompress(codec: Compression, input: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(BatchError::DecompressedTooLarge { limit });
            }
            Ok(input.to_vec())
        }
        Compression::Lz4 => read_bounded(
            codec,
            lz4_flex::frame::FrameDecoder::new(input),
            input.len(),
            limit,
        ),
        Compression::Gzip => read_bounded(
            codec,
            flate2::read::MultiGzDecoder::new(input),
            input.len(),
            limit,
        ),
        Compression::Snappy => decompress_snappy(input, limit),
        Compression::Zstd => decompress_zstd(input, limit),
    }
}

fn decompress_zstd(input: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    let fail = |reason: String| BatchError::Decompression {
        codec: Compression::Zstd,
        reason,
    };
    let mut out = Vec::with_capacity(input.len().saturating_mul(2).min(limit));
    let mut rest = input;
    while !rest.is_empty() {
        let decoder = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(
            &mut rest,
            ZSTD_WINDOW_BYTES_MAX as u64,
        )
        .map_err(|e| fail(e.to_string()))?;
        let room = u64::try_from(limit - out.len())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        decoder
            .take(room)
            .read_to_end(&mut out)
            .map_err(|e| fail(e.to_string()))?;
        if out.len() > limit {
            return Err(BatchError::DecompressedTooLarge { limit });
        }
    }
    Ok(out)
}

fn read_bounded(
    codec: Compression,
    reader: impl Read,
    input_len: usize,
    limit: usize,
) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::with_capacity(input_len.saturating_mul(2).min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| BatchError::Decompression {
            codec,
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(BatchError::DecompressedTooLarge { limit });
    }
    Ok(out)
}

fn snappy_error(reason: impl ToString) -> BatchError {
    BatchError::Decompression {
        codec: Compression::Snappy,
        reason: reason.to_string(),
    }
}

fn snappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), BatchError> {
    let n = snap::raw::decompress_len(block).map_err(snappy_error)?;
    if out.len().saturating_add(n) > limit {
        return Err(BatchError::DecompressedTooLarge { limit });
    }
    let at = out.len();
    out.resize(at + n, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[at..])
        .map_err(snappy_error)?;
    out.truncate(at + written);
    Ok(())
}

fn decompress_snappy(input: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    if input.len() < XERIAL_HEADER_BYTES || input[..XERIAL_MAGIC.len()] != XERIAL_MAGIC {
        snappy_block(input, &mut out, limit)?;
        return Ok(out);
    }
    let mut pos = XERIAL_HEADER_BYTES;
    while pos < input.len() {
        let len_bytes = input
            .get(pos..pos + 4)
            .ok_or_else(|| snappy_error("truncated xerial block length"))?;
        let len =
            u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        pos += 4;
        let block = pos
            .checked_add(len)
            .and_then(|end| input.get(pos..end))
            .ok_or_else(|| snappy_error("xerial block runs past the records"))?;
        snappy_block(block, &mut out, limit)?;
        pos += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let data = sample();
        for codec in [
            Compression::None,
            Compression::Lz4,
            Compression::Gzip,
            Compression::Snappy,
        ] {
            let mut out = Vec::new();
            compress(codec, &data, &mut out).expect("compress");
            assert!(out.len() <= compressed_bytes_bound(data.len()), "{codec:?}");
            assert_eq!(
                decompress(codec, &out, usize::MAX).expect("decompress"),
                data,
                "{codec:?}"
            );
            assert_eq!(
                decompress(codec, &out, data.len() - 1),
                Err(BatchError::DecompressedTooLarge {
                    limit: data.len() - 1
                }),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn lz4_frame_is_what_java_reads() {
        let mut out = Vec::new();
        compress(Compression::Lz4, b"hello hello hello", &mut out).expect("compress");
        assert_eq!(
            &out[..4],
            &[0x04, 0x22, 0x4d, 0x18],
            "LZ4 frame magic (little-endian 0x184D2204)"
        );
        let flg = out[4];
        assert_eq!(flg >> 6, 1, "frame version 01");
        assert_ne!(
            flg & 0x20,
            0,
            "independent blocks: Java decodes each block alone"
        );
        assert_eq!(flg & 0x04, 0, "no content checksum");
        assert_eq!(out[5] >> 4 & 0x7, 4, "64 KiB maximum block size");
    }

    #[test]
    fn raw_snappy_is_read() {
        let data = sample();
        let raw = snap::raw::Encoder::new()
            .compress_vec(&data)
            .expect("snappy");
        assert_eq!(
            decompress(Compression::Snappy, &raw, usize::MAX).expect("raw"),
            data
        );
    }

    #[test]
    fn zstd_concatenated_frames_are_read_in_turn() {
        let mut out = Vec::new();
        compress(Compression::Zstd, b"first frame ", &mut out).expect("compress");
        compress(Compression::Zstd, b"second frame", &mut out).expect("compress");
        assert_eq!(
            decompress(Compression::Zstd, &out, 1 << 20).expect("decompress"),
            b"first frame second frame"
        );
    }

    #[test]
    fn zstd_window_above_the_limit_is_refused() {
        // Frame header: magic, descriptor 0x00 (window descriptor present, no content size), window
        // descriptor 0xa8 = exponent 21 + 10 = 31: a 2 GiB window.
        let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8, 0x01, 0x00, 0x00];
        assert!(matches!(
            decompress(Compression::Zstd, &frame, 1 << 20),
            Err(BatchError::Decompression {
                codec: Compression::Zstd,
                ..
            })
        ));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for codec in [
            Compression::Lz4,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Zstd,
        ] {
            assert!(
                decompress(codec, &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3], 1 << 20).is_err(),
                "{codec:?}"
            );
        }
    }
}
