//! Property tests: building then parsing a batch is the identity, for any records (null or present
//! keys and values, headers, timestamps in any order), every codec Sluice writes, any producer fields;
//! stamping offsets and epochs keeps the CRC; concatenated batches split back apart.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_protocol::record::{
    set_base_offset, set_log_append_time, set_partition_leader_epoch, verify_crc, BatchIter,
    BatchOptions, Compression, RecordBatch, RecordBatchBuilder, TimestampType,
};

#[derive(Debug, Clone)]
struct TestRecord {
    timestamp_ms: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn bytes_field(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::weighted(0.8, prop::collection::vec(any::<u8>(), 0..max))
}

fn record() -> impl Strategy<Value = TestRecord> {
    (
        // Any timestamps whose differences fit in i64.
        -(1i64 << 61)..(1i64 << 61),
        bytes_field(40),
        // Repetitive values give the codecs something to compress.
        prop_oneof![
            bytes_field(300),
            (0usize..2000).prop_map(|n| Some(b"abc".repeat(n)))
        ],
        prop::collection::vec(("[a-z\u{e9}\u{4e2d}]{0,8}", bytes_field(16)), 0..4),
    )
        .prop_map(|(timestamp_ms, key, value, headers)| TestRecord {
            timestamp_ms,
            key,
            value,
            headers,
        })
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Lz4),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Zstd),
    ]
}

fn options() -> impl Strategy<Value = BatchOptions> {
    (
        compression(),
        any::<i64>(),
        any::<i16>(),
        any::<i32>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                compression,
                producer_id,
                producer_epoch,
                base_sequence,
                is_transactional,
                log_append,
            )| BatchOptions {
                compression,
                producer_id,
                producer_epoch,
                base_sequence,
                is_transactional,
                timestamp_type: if log_append {
                    TimestampType::LogAppendTime
                } else {
                    TimestampType::CreateTime
                },
                ..Default::default()
            },
        )
}

fn build(options: BatchOptions, records: &[TestRecord]) -> Bytes {
    let mut b = RecordBatchBuilder::new(options);
    for r in records {
        let headers: Vec<(&str, Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        b.append(
            r.timestamp_ms,
            r.key.as_deref(),
            r.value.as_deref(),
            &headers,
        )
        .expect("append");
    }
    assert_eq!(b.records_count(), records.len());
    b.finish().expect("finish")
}

fn assert_same(
    batch: &RecordBatch,
    options: &BatchOptions,
    records: &[TestRecord],
) -> Result<(), TestCaseError> {
    let h = batch.header();
    prop_assert_eq!(h.records_count as usize, records.len());
    prop_assert_eq!(h.last_offset_delta as usize, records.len() - 1);
    prop_assert_eq!(h.base_timestamp, records[0].timestamp_ms);
    let max_ts = records
        .iter()
        .map(|r| r.timestamp_ms)
        .max()
        .expect("non-empty");
    prop_assert_eq!(h.max_timestamp, max_ts);
    prop_assert_eq!(h.producer_id, options.producer_id);
    prop_assert_eq!(h.producer_epoch, options.producer_epoch);
    prop_assert_eq!(h.base_sequence, options.base_sequence);
    prop_assert_eq!(h.attributes.compression(), Ok(options.compression));
    prop_assert_eq!(h.attributes.timestamp_type(), options.timestamp_type);
    prop_assert_eq!(h.attributes.is_transactional(), options.is_transactional);
    prop_assert!(!h.attributes.is_control());
    h.validate_produce()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    batch
        .validate_records()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;

    let mut n = 0;
    for (i, (got, want)) in batch.records().expect("records").zip(records).enumerate() {
        let got = got.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got.offset(), h.base_offset + i as i64);
        let want_ts = match options.timestamp_type {
            TimestampType::CreateTime => want.timestamp_ms,
            TimestampType::LogAppendTime => h.max_timestamp,
        };
        prop_assert_eq!(got.timestamp(), want_ts);
        prop_assert_eq!(got.key().map(|b| b.to_vec()), want.key.clone());
        prop_assert_eq!(got.value().map(|b| b.to_vec()), want.value.clone());
        let headers: Vec<(String, Option<Vec<u8>>)> = got
            .headers()
            .map(|h| {
                (
                    h.key_str().expect("utf-8").to_owned(),
                    h.value.map(|v| v.to_vec()),
                )
            })
            .collect();
        prop_assert_eq!(&headers, &want.headers);
        prop_assert_eq!(got.header_count(), want.headers.len());
        n += 1;
    }
    prop_assert_eq!(n, records.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn build_then_parse_is_identity(
        options in options(),
        records in prop::collection::vec(record(), 1..25),
    ) {
        let bytes = build(options, &records);
        let batch = RecordBatch::parse(bytes.clone()).expect("parse");
        prop_assert_eq!(batch.total_bytes(), bytes.len());
        assert_same(&batch, &options, &records)?;
    }

    #[test]
    fn stamping_keeps_crc_and_moves_offsets(
        options in options(),
        records in prop::collection::vec(record(), 1..8),
        base_offset in 0i64..(1 << 62),
        epoch in any::<i32>(),
        append_time in any::<i64>(),
    ) {
        let mut bytes = build(options, &records).to_vec();
        set_base_offset(&mut bytes, base_offset).expect("offset");
        set_partition_leader_epoch(&mut bytes, epoch).expect("epoch");
        prop_assert_eq!(verify_crc(&bytes), Ok(()));
        let batch = RecordBatch::parse(Bytes::from(bytes.clone())).expect("parse");
        prop_assert_eq!(batch.base_offset(), base_offset);
        prop_assert_eq!(batch.last_offset(), base_offset + records.len() as i64 - 1);
        prop_assert_eq!(batch.header().partition_leader_epoch, epoch);
        assert_same(&batch, &options, &records)?;

        set_log_append_time(&mut bytes, append_time).expect("log append time");
        let batch = RecordBatch::parse(Bytes::from(bytes)).expect("parse after LogAppendTime");
        prop_assert_eq!(batch.header().attributes.timestamp_type(), TimestampType::LogAppendTime);
        prop_assert_eq!(batch.header().max_timestamp, append_time);
        prop_assert_eq!(batch.compression(), Ok(options.compression));
        for r in batch.records().expect("records") {
            prop_assert_eq!(r.expect("record").timestamp(), append_time);
        }
    }

    #[test]
    fn concatenated_batches_split_back(
        batches in prop::collection::vec((options(), prop::collection::vec(record(), 1..5)), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let built: Vec<Bytes> = batches.iter().map(|(o, r)| build(*o, r)).collect();
        let all: Vec<u8> = built.iter().flat_map(|b| b.iter().copied()).collect();
        let got: Vec<Bytes> = BatchIter::new(Bytes::from(all.clone()))
            .map(|b| b.expect("batch").into_bytes())
            .collect();
        prop_assert_eq!(&got, &built);

        // Cut the concatenation anywhere inside the last batch: the whole batches before it come out,
        // then exactly one Incomplete, at the last batch's start.
        let last_start = all.len() - built.last().expect("one").len();
        let cut_at = last_start + cut.index(built.last().expect("one").len());
        let mut it = BatchIter::new(Bytes::from(all[..cut_at].to_vec()));
        for want in &built[..built.len() - 1] {
            let got = it.next().expect("batch").expect("whole batch").into_bytes();
            prop_assert_eq!(&got, want);
        }
        if cut_at > last_start {
            let incomplete = matches!(it.next(), Some(Err(sluice_protocol::record::BatchError::Incomplete { .. })));
            prop_assert!(incomplete);
            prop_assert_eq!(it.position(), last_start);
        }
        prop_assert!(it.next().is_none());
    }
}
