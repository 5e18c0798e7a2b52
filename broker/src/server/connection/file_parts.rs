//! Fetch responses whose record data stays in segment files until the socket write.
//!
//! The wire encoder (`sluice_protocol::wire`) takes a partition's record data as `Bytes` chunks and
//! keeps every chunk longer than `INLINE_CHUNK_BYTES_MAX` by reference, in order, in the frame's
//! parts. A fetch gives it placeholder chunks instead of the data: slices of one shared zero
//! buffer (never read, so it costs address space, not memory) as long as the file ranges they
//! stand for. After encoding, [`FileParts::splice`] replaces the placeholders, in order, by the
//! file ranges, which the writer sends with `sendfile`. This keeps the protocol crate free of file
//! I/O; if the encoder ever copied or merged chunks, the placeholders would not come back exactly
//! and `splice` fails (the connection closes): zeros are never sent in place of records.

use std::sync::OnceLock;

use bytes::Bytes;
use sluice_protocol::wire::limits::INLINE_CHUNK_BYTES_MAX;
use sluice_protocol::wire::Records;

use super::OutChunk;
use crate::log::limits::SEND_FILE_BYTES_MIN;
use crate::log::FileRange;
use crate::server::limits::PLACEHOLDER_BYTES;

// Every placeholder piece must be kept by reference by the encoder.
const _: () = assert!(SEND_FILE_BYTES_MIN > INLINE_CHUNK_BYTES_MAX);
const _: () = assert!(PLACEHOLDER_BYTES / 2 > INLINE_CHUNK_BYTES_MAX);

/// The shared zero buffer placeholders are sliced from (allocated zeroed, never written or read).
fn zeros() -> &'static Bytes {
    static ZEROS: OnceLock<Bytes> = OnceLock::new();
    ZEROS.get_or_init(|| Bytes::from(vec![0u8; PLACEHOLDER_BYTES]))
}

fn is_placeholder(part: &Bytes) -> bool {
    let base = zeros().as_ptr() as usize;
    let at = part.as_ptr() as usize;
    !part.is_empty() && at >= base && at < base + PLACEHOLDER_BYTES
}

/// The file ranges of one response, in the order their placeholders were handed out.
#[derive(Debug, Default)]
pub(crate) struct FileParts {
    ranges: Vec<FileRange>,
}

impl FileParts {
    /// No file ranges yet.
    pub(crate) fn new() -> FileParts {
        FileParts::default()
    }

    /// True when no range was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Appends `range` to `records` as placeholders (pieces of at most [`PLACEHOLDER_BYTES`], each
    /// over half of it, so all are kept by reference). A range too short to be kept by reference is
    /// read into memory instead.
    pub(crate) fn push(&mut self, range: FileRange, records: &mut Records) -> std::io::Result<()> {
        if range.len <= INLINE_CHUNK_BYTES_MAX {
            records.push(range.file.read_bytes(range.position, range.len)?);
            return Ok(());
        }
        let pieces = range.len.div_ceil(PLACEHOLDER_BYTES);
        let (size, extra) = (range.len / pieces, range.len % pieces);
        for i in 0..pieces {
            let len = size + usize::from(i < extra);
            records.push(zeros().slice(..len));
        }
        self.ranges.push(range);
        Ok(())
    }

    /// Replaces the placeholders among an encoded frame's `parts` by the file ranges they stand
    /// for; fails if they do not come back exactly, in order.
    pub(crate) fn splice(self, parts: Vec<Bytes>) -> Result<Vec<OutChunk>, String> {
        let mut out = Vec::with_capacity(parts.len());
        let mut ranges = self.ranges.into_iter();
        let mut open: Option<(FileRange, usize)> = None;
        for part in parts {
            if !is_placeholder(&part) {
                if open.is_some() {
                    return Err("a file range's placeholders were split".into());
                }
                out.push(OutChunk::Bytes(part));
                continue;
            }
            let (range, seen) = match open.take() {
                Some(open) => open,
                None => (
                    ranges.next().ok_or("more placeholders than file ranges")?,
                    0,
                ),
            };
            let seen = seen + part.len();
            if seen > range.len {
                return Err("placeholders longer than their file range".into());
            }
            if seen == range.len {
                out.push(OutChunk::File(range));
            } else {
                open = Some((range, seen));
            }
        }
        if open.is_some() || ranges.next().is_some() {
            return Err("file ranges without their placeholders in the frame".into());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::io::IoSlice;
    use std::sync::Arc;

    use sluice_protocol::wire::messages::fetch::{
        FetchResponse, FetchableTopicResponse, PartitionData,
    };
    use sluice_protocol::wire::{self, Response, ResponseFrame};

    use super::*;
    use crate::log::storage::{Directory, FileDirectory};

    fn range(len: usize) -> FileRange {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = FileDirectory::create(dir.path()).expect("dir");
        let file = d.open("f", true).expect("open");
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        file.append(&[IoSlice::new(&bytes)]).expect("append");
        FileRange {
            file: Arc::clone(&file),
            position: 0,
            len,
        }
    }

    fn partition(index: i32, records: Records) -> PartitionData {
        PartitionData {
            partition_index: index,
            error_code: 0,
            high_watermark: 10,
            last_stable_offset: 10,
            log_start_offset: 0,
            aborted_transactions: None,
            preferred_read_replica: -1,
            records,
        }
    }

    /// Encodes a fetch response whose partitions hold `lens` bytes each from files, splices, and
    /// checks that the frame is the encoder's bytes with the placeholders become the ranges.
    #[test]
    fn placeholders_become_the_file_ranges_in_order() {
        let lens = [
            SEND_FILE_BYTES_MIN,
            PLACEHOLDER_BYTES + 1,
            3 * PLACEHOLDER_BYTES + 7,
            100,
        ];
        let mut parts = FileParts::new();
        let mut partitions = Vec::new();
        for (i, len) in lens.into_iter().enumerate() {
            let mut records = Records::new();
            parts.push(range(len), &mut records).expect("push");
            partitions.push(partition(i as i32, records));
        }
        let response = Response::Fetch(FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "t".into(),
                partitions,
            }],
            ..Default::default()
        });
        let mut frame = ResponseFrame::new();
        wire::encode_response(7, 4, &response, &mut frame).expect("encode");
        let expected_len = frame.len();
        let chunks = parts.splice(frame.take_parts()).expect("splice");
        let files: Vec<usize> = chunks
            .iter()
            .filter_map(|c| match c {
                OutChunk::File(r) => Some(r.len),
                OutChunk::Bytes(_) => None,
            })
            .collect();
        // The 100-byte range was read into memory (too short to be kept by reference).
        assert_eq!(files, lens[..3]);
        assert_eq!(
            chunks.iter().map(OutChunk::len).sum::<usize>(),
            expected_len
        );
        assert!(chunks.iter().all(|c| match c {
            OutChunk::Bytes(b) => !is_placeholder(b),
            OutChunk::File(_) => true,
        }));
    }

    #[test]
    fn placeholders_that_do_not_come_back_are_an_error() {
        let mut parts = FileParts::new();
        let mut records = Records::new();
        parts
            .push(range(2 * PLACEHOLDER_BYTES), &mut records)
            .expect("push");
        // Only the first placeholder piece reaches the frame.
        let first = records.chunks()[0].clone();
        assert!(parts
            .splice(vec![Bytes::from_static(b"head"), first])
            .is_err());
        let mut parts = FileParts::new();
        parts
            .push(range(SEND_FILE_BYTES_MIN), &mut Records::new())
            .expect("push");
        assert!(parts.splice(vec![Bytes::from_static(b"head")]).is_err());
    }
}
