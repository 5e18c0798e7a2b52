//! Turning fetched record data into [`ConsumerRecord`]s without copying.
//!
//! A fetch response's records are a list of `Bytes` chunks holding whole batches, possibly ending
//! with a partial batch (the broker cuts at `max.partition.fetch.bytes`), which is ignored: the next
//! fetch starts from it. Control batches (transaction markers) are skipped but advance the
//! position. Keys, values and header values are `Bytes` slices of the fetched buffer.

use std::sync::Arc;

use bytes::Bytes;
use sluice_protocol::record::{BatchError, BatchHeader, BatchIter};

use crate::message::{ConsumerRecord, Header};

/// What decoding one partition's chunks produced.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The next offset to fetch (the position), past every whole batch seen.
    pub next_offset: i64,
    /// Bytes of whole batches decoded.
    pub bytes: usize,
}

/// A batch that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Base offset of the bad batch (or the position, if unknown).
    pub offset: i64,
    /// What is wrong.
    pub reason: String,
}

/// The offset after the last whole batch in `chunks` (headers only, no CRC check or decoding), or
/// `position` if there is none past it.
pub fn next_offset(chunks: &[Bytes], position: i64) -> i64 {
    let mut next = position;
    for chunk in chunks {
        let mut at = 0;
        while let Some(rest) = chunk.get(at..) {
            let Ok(header) = BatchHeader::parse(rest) else {
                return next;
            };
            let total = header.total_bytes();
            if total > rest.len() {
                return next; // a trailing partial batch
            }
            next = next.max(header.last_offset() + 1);
            at += total;
        }
    }
    next
}

/// Appends to `out` every record of `chunks` with an offset in `[position, until)` (checking each
/// batch's CRC-32C when `check_crcs`); returns the new position.
pub fn decode_records(
    topic: &Arc<str>,
    partition: i32,
    chunks: &[Bytes],
    position: i64,
    until: i64,
    check_crcs: bool,
    out: &mut Vec<ConsumerRecord>,
) -> Result<Decoded, DecodeError> {
    let mut next = position;
    let mut bytes = 0;
    'chunks: for chunk in chunks {
        let batches = if check_crcs {
            BatchIter::new(chunk.clone())
        } else {
            BatchIter::without_crc(chunk.clone())
        };
        for batch in batches {
            let batch = match batch {
                Ok(b) => b,
                Err(BatchError::Incomplete { .. }) => break 'chunks,
                Err(e) => {
                    return Err(DecodeError {
                        offset: next,
                        reason: e.to_string(),
                    })
                }
            };
            let header = batch.header();
            let last = batch.last_offset();
            if last < next {
                continue; // a batch the position is already past (fetches return whole batches)
            }
            bytes += batch.total_bytes();
            if header.attributes.is_control() {
                next = last + 1;
                continue;
            }
            let records = batch.records().map_err(|e| DecodeError {
                offset: header.base_offset,
                reason: e.to_string(),
            })?;
            for record in records {
                let mut record = record.map_err(|e| DecodeError {
                    offset: header.base_offset,
                    reason: e.to_string(),
                })?;
                let offset = record.offset();
                if offset < next {
                    continue;
                }
                if offset >= until {
                    return Ok(Decoded {
                        next_offset: until,
                        bytes,
                    });
                }
                let headers = if record.header_count() == 0 {
                    Vec::new()
                } else {
                    record
                        .headers()
                        .map(|h| Header {
                            key: String::from_utf8_lossy(&h.key).into_owned(),
                            value: h.value,
                        })
                        .collect()
                };
                out.push(ConsumerRecord {
                    topic: topic.clone(),
                    partition,
                    offset,
                    timestamp: record.timestamp(),
                    key: record.take_key(),
                    value: record.take_value(),
                    headers,
                });
            }
            next = last + 1;
            if next >= until {
                return Ok(Decoded {
                    next_offset: until.min(next),
                    bytes,
                });
            }
        }
    }
    Ok(Decoded {
        next_offset: next,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use sluice_protocol::record::{
        set_base_offset, BatchOptions, Compression, RecordBatchBuilder, TimestampType,
    };

    fn batch(base: i64, n: usize, control: bool, compression: Compression) -> Bytes {
        let mut b = RecordBatchBuilder::new(BatchOptions {
            compression,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            timestamp_type: TimestampType::CreateTime,
            is_transactional: control,
            is_control: control,
            partition_leader_epoch: -1,
        });
        for i in 0..n {
            let v = format!("v{}", base + i as i64);
            let h = [("h", Some(&b"x"[..]))];
            b.append(1000 + i as i64, Some(b"k"), Some(v.as_bytes()), &h)
                .unwrap();
        }
        let mut bytes = BytesMut::from(&b.finish().unwrap()[..]);
        set_base_offset(&mut bytes, base).unwrap();
        bytes.freeze()
    }

    fn values(out: &[ConsumerRecord]) -> Vec<String> {
        out.iter()
            .map(|r| String::from_utf8(r.value.as_ref().unwrap().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn records_come_out_in_order_with_control_batches_skipped_and_partial_tails_ignored() {
        let topic: Arc<str> = "t".into();
        let mut chunk = BytesMut::new();
        chunk.extend_from_slice(&batch(0, 3, false, Compression::None));
        chunk.extend_from_slice(&batch(3, 1, true, Compression::None));
        chunk.extend_from_slice(&batch(4, 2, false, Compression::Lz4));
        let tail = batch(6, 2, false, Compression::None);
        chunk.extend_from_slice(&tail[..tail.len() - 5]);
        let mut out = Vec::new();
        let chunk = chunk.freeze();
        assert_eq!(next_offset(std::slice::from_ref(&chunk), 1), 6);
        let d = decode_records(&topic, 0, &[chunk], 1, i64::MAX, true, &mut out).unwrap();
        assert_eq!(values(&out), vec!["v1", "v2", "v4", "v5"]);
        assert_eq!(d.next_offset, 6, "the partial batch is fetched again");
        assert_eq!(out[0].offset, 1);
        assert_eq!(out[0].timestamp, 1001);
        assert_eq!(out[0].headers[0].key, "h");
        assert_eq!(out[0].key.as_deref(), Some(&b"k"[..]));
    }

    #[test]
    fn a_range_stops_at_until() {
        let topic: Arc<str> = "t".into();
        let chunks = [
            batch(10, 5, false, Compression::None),
            batch(15, 5, false, Compression::None),
        ];
        let mut out = Vec::new();
        let d = decode_records(&topic, 0, &chunks, 12, 17, true, &mut out).unwrap();
        assert_eq!(values(&out), vec!["v12", "v13", "v14", "v15", "v16"]);
        assert_eq!(d.next_offset, 17);
    }

    #[test]
    fn corruption_is_an_error() {
        let topic: Arc<str> = "t".into();
        let mut b = BytesMut::from(&batch(0, 2, false, Compression::None)[..]);
        let n = b.len();
        b[n - 1] ^= 0xff;
        let mut out = Vec::new();
        let e = decode_records(&topic, 0, &[b.freeze()], 0, i64::MAX, true, &mut out).unwrap_err();
        assert_eq!(e.offset, 0);
    }
}
