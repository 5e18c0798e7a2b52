//! Feeds arbitrary bytes to the batch reader twice: as they are (the CRC rejects most), and with the
//! CRC rewritten over them so corruption reaches the record decoder and the decompressors. Nothing
//! may panic; errors are fine.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_protocol::record::header::rewrite_crc;
use sluice_protocol::record::{BatchHeader, BatchIter, RecordBatch};

fn walk(batch: &RecordBatch) {
    let _ = batch.validate_records();
    if let Ok(records) = batch.records() {
        for record in records {
            let Ok(record) = record else { break };
            for header in record.headers() {
                let _ = header.key_str();
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = BatchHeader::parse(data);
    for batch in BatchIter::new(Bytes::copy_from_slice(data)) {
        match batch {
            Ok(batch) => walk(&batch),
            Err(_) => break,
        }
    }
    let mut forged = data.to_vec();
    if rewrite_crc(&mut forged).is_ok() {
        for batch in BatchIter::new(Bytes::from(forged)) {
            match batch {
                Ok(batch) => walk(&batch),
                Err(_) => break,
            }
        }
    }
});
