//! Fuzzing the batch reader in CI: truncations, byte flips, structural corruption behind a valid CRC,
//! and plain garbage must give typed errors, never a panic, through `RecordBatch::parse`,
//! `BatchIter` and `records()`. Longer runs: raise `PROPTEST_CASES`, or use the cargo-fuzz target in
//! `protocol/fuzz/`.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_protocol::record::header::{offset, rewrite_crc};
use sluice_protocol::record::{
    BatchError, BatchHeader, BatchIter, BatchOptions, Compression, RecordBatch, RecordBatchBuilder,
    BATCH_HEADER_BYTES,
};

fn valid_batch(compression: Compression, n: usize, seed: u8) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(BatchOptions {
        compression,
        ..Default::default()
    });
    for i in 0..n {
        let v = vec![seed.wrapping_add(i as u8); i * 7 % 50];
        let key = format!("key-{i}");
        let headers: &[(&str, Option<&[u8]>)] = if i % 2 == 0 {
            &[("h", Some(b"x")), ("n", None)]
        } else {
            &[]
        };
        let key = if i % 3 == 0 {
            None
        } else {
            Some(key.as_bytes())
        };
        b.append(1_000 + i as i64, key, Some(&v), headers)
            .expect("append");
    }
    b.finish().expect("finish").to_vec()
}

/// Cases per property: 2000 in CI (a few seconds), more with `PROPTEST_CASES` for longer runs.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn codec() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Lz4),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Zstd),
    ]
}

/// Parses and walks everything; returns how far it got. Must never panic.
fn exercise(bytes: &[u8]) -> usize {
    let mut records = 0;
    let _ = BatchHeader::parse(bytes);
    for batch in BatchIter::new(Bytes::copy_from_slice(bytes)) {
        let Ok(batch) = batch else { break };
        let _ = batch.validate_records();
        if let Ok(iter) = batch.records() {
            for r in iter {
                let Ok(r) = r else { break };
                records += 1;
                let _ = r.headers().count();
            }
        }
    }
    if let Ok(batch) = RecordBatch::parse_without_crc(Bytes::copy_from_slice(bytes)) {
        if let Ok(iter) = batch.records() {
            records += iter.take_while(|r| r.is_ok()).count();
        }
    }
    records
}

#[test]
fn every_truncation_is_incomplete() {
    for codec in [
        Compression::None,
        Compression::Lz4,
        Compression::Gzip,
        Compression::Snappy,
    ] {
        let full = valid_batch(codec, 9, 1);
        for len in 0..full.len() {
            let cut = Bytes::copy_from_slice(&full[..len]);
            match RecordBatch::parse(cut.clone()) {
                Err(BatchError::Incomplete { needed, available }) => {
                    assert_eq!(available, len);
                    assert!(
                        needed > len && needed <= full.len(),
                        "{codec:?} len {len}: needed {needed}"
                    );
                }
                other => panic!("{codec:?} truncated to {len}: {other:?}"),
            }
            let mut it = BatchIter::new(cut);
            if len == 0 {
                assert!(it.next().is_none());
            } else {
                assert!(
                    matches!(it.next(), Some(Err(BatchError::Incomplete { .. }))),
                    "{codec:?} len {len}"
                );
            }
        }
    }
}

#[test]
fn every_single_byte_change_in_crc_covered_bytes_is_caught() {
    for codec in [Compression::None, Compression::Lz4] {
        let full = valid_batch(codec, 5, 2);
        for at in offset::CRC..full.len() {
            for delta in [0x01u8, 0x80, 0xff] {
                let mut bad = full.clone();
                bad[at] ^= delta;
                let got = RecordBatch::parse(Bytes::from(bad));
                assert!(
                    matches!(got, Err(BatchError::CrcMismatch { .. })),
                    "{codec:?} byte {at} ^ {delta:#x}: {got:?}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Random flips anywhere: a typed error, or (flips in baseOffset / partitionLeaderEpoch, which the
    /// CRC does not cover) a batch that still reads in full.
    #[test]
    fn random_flips_are_typed_errors(
        codec in codec(),
        n in 1usize..12,
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let mut bytes = valid_batch(codec, n, 3);
        for (at, x) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        if let Ok(batch) = RecordBatch::parse(Bytes::from(bytes.clone())) {
            let all: Result<Vec<_>, _> = batch.records().expect("records").collect();
            prop_assert_eq!(all.expect("uncovered fields only").len(), n);
        }
        exercise(&bytes);
    }

    /// Corruption behind a recomputed CRC reaches the record decoder and the decompressors.
    #[test]
    fn structural_corruption_behind_valid_crc(
        codec in codec(),
        n in 1usize..12,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        records_count in prop_oneof![Just(None), any::<i32>().prop_map(Some)],
    ) {
        let mut bytes = valid_batch(codec, n, 4);
        for (at, v) in &flips {
            let i = BATCH_HEADER_BYTES + at.index(bytes.len() - BATCH_HEADER_BYTES);
            bytes[i] = *v;
        }
        if let Some(c) = records_count {
            bytes[offset::RECORDS_COUNT..offset::RECORDS_COUNT + 4].copy_from_slice(&c.to_be_bytes());
        }
        rewrite_crc(&mut bytes).expect("crc");
        exercise(&bytes);
    }

    /// A valid header over a random records section, for every codec id including invalid ones.
    #[test]
    fn random_records_section(
        codec_id in 0i16..8,
        records_count in 0i32..64,
        section in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut bytes = valid_batch(Compression::None, 1, 5)[..BATCH_HEADER_BYTES].to_vec();
        bytes.extend_from_slice(&section);
        let batch_length = (bytes.len() - 12) as i32;
        bytes[offset::BATCH_LENGTH..offset::BATCH_LENGTH + 4].copy_from_slice(&batch_length.to_be_bytes());
        bytes[offset::ATTRIBUTES..offset::ATTRIBUTES + 2].copy_from_slice(&codec_id.to_be_bytes());
        bytes[offset::RECORDS_COUNT..offset::RECORDS_COUNT + 4].copy_from_slice(&records_count.to_be_bytes());
        rewrite_crc(&mut bytes).expect("crc");
        let batch = RecordBatch::parse(Bytes::from(bytes.clone())).expect("header and CRC are valid");
        if codec_id > 4 {
            prop_assert!(matches!(batch.records(), Err(BatchError::UnsupportedCompression { .. })), "codec {}", codec_id);
        }
        exercise(&bytes);
    }

    /// Plain garbage, with and without a plausible header prefix.
    #[test]
    fn garbage_never_panics(
        mut bytes in prop::collection::vec(any::<u8>(), 0..600),
        plausible in any::<bool>(),
    ) {
        if plausible && bytes.len() >= BATCH_HEADER_BYTES {
            let batch_length = (bytes.len() - 12) as i32;
            bytes[offset::BATCH_LENGTH..offset::BATCH_LENGTH + 4].copy_from_slice(&batch_length.to_be_bytes());
            bytes[offset::MAGIC] = 2;
            rewrite_crc(&mut bytes).expect("crc");
        }
        exercise(&bytes);
    }
}
