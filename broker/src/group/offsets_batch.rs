//! Offsets records to and from RecordBatch v2, the unit the partition log stores.
//!
//! A commit becomes one uncompressed batch (one record per partition committed), so it is
//! appended, made durable and compacted like any other topic's data.

use bytes::Bytes;
use sluice_protocol::record::{
    BatchError, BatchIter, BatchOptions, BuildError, RecordBatchBuilder,
};

use super::offsets_log::OffsetsRecord;

/// Builds one batch holding `records`, all stamped with `timestamp_ms`.
pub fn to_batch(records: &[OffsetsRecord], timestamp_ms: i64) -> Result<Bytes, BuildError> {
    let mut builder = RecordBatchBuilder::new(BatchOptions::default());
    for record in records {
        builder.append(
            timestamp_ms,
            Some(&record.key),
            record.value.as_deref(),
            &[],
        )?;
    }
    builder.finish()
}

/// The records of concatenated batches (as a log read returns them), in offset order, with their
/// offsets; control batches are skipped and a trailing partial batch is ignored.
pub fn from_batches(bytes: Bytes) -> Result<Vec<(i64, OffsetsRecord)>, BatchError> {
    let mut out = Vec::new();
    for batch in BatchIter::new(bytes) {
        let batch = match batch {
            Ok(batch) => batch,
            Err(BatchError::Incomplete { .. }) => break,
            Err(e) => return Err(e),
        };
        if batch.header().attributes.is_control() {
            continue;
        }
        for record in batch.records()? {
            let mut record = record?;
            let offset = record.offset();
            // A record without a key cannot be an offsets record: skip it.
            let Some(key) = record.take_key() else {
                continue;
            };
            out.push((
                offset,
                OffsetsRecord {
                    key,
                    value: record.take_value(),
                },
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_tombstones() {
        let records = vec![
            OffsetsRecord {
                key: Bytes::from_static(b"k1"),
                value: Some(Bytes::from_static(b"v1")),
            },
            OffsetsRecord {
                key: Bytes::from_static(b"k2"),
                value: None,
            },
        ];
        let mut both = Vec::new();
        both.extend_from_slice(&to_batch(&records, 5).unwrap());
        let second = to_batch(&records[..1], 6).unwrap();
        both.extend_from_slice(&second);
        // A torn tail is ignored.
        both.extend_from_slice(&second[..10]);
        let got = from_batches(Bytes::from(both)).unwrap();
        let values: Vec<OffsetsRecord> = got.into_iter().map(|(_, r)| r).collect();
        assert_eq!(
            values,
            vec![records[0].clone(), records[1].clone(), records[0].clone()]
        );
    }

    #[test]
    fn corruption_is_an_error() {
        let records = vec![OffsetsRecord {
            key: Bytes::from_static(b"k"),
            value: None,
        }];
        let mut batch = to_batch(&records, 1).unwrap().to_vec();
        let last = batch.len() - 1;
        batch[last] ^= 0xff;
        assert!(from_batches(Bytes::from(batch)).is_err());
    }
}
