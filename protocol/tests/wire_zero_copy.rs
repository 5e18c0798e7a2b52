//! Record bytes are never copied by the codec: produce request records are slices of the request
//! frame, and fetch response record chunks are referenced by the outgoing frame's parts.

use bytes::{Bytes, BytesMut};
use sluice_protocol::wire::messages::fetch::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use sluice_protocol::wire::messages::produce::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use sluice_protocol::wire::{
    decode_request, decode_response, decode_response_frame, encode_request, encode_request_frame,
    encode_response, limits::FRAME_BYTES_MAX, split_frame, ApiKey, Records, Request, RequestHeader,
    Response, ResponseFrame, WireError,
};

fn produce(records: Bytes) -> Request {
    Request::Produce(ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "events".into(),
            partition_data: vec![PartitionProduceData {
                index: 3,
                records: Some(records),
            }],
        }],
    })
}

fn header(api_key: ApiKey, api_version: i16) -> RequestHeader {
    RequestHeader {
        api_key: api_key.as_i16(),
        api_version,
        correlation_id: 42,
        client_id: Some("sluice".into()),
    }
}

fn within(inner: &[u8], outer: &[u8]) -> bool {
    let (i, o) = (inner.as_ptr() as usize, outer.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

#[test]
fn produce_records_are_slices_of_the_request_frame() {
    let batch = Bytes::from(vec![0xab; 10_000]);
    let mut buf = BytesMut::new();
    encode_request(
        &header(ApiKey::Produce, 7),
        &produce(batch.clone()),
        &mut buf,
    )
    .unwrap();
    let frame = split_frame(&mut buf, FRAME_BYTES_MAX).unwrap().unwrap();
    let (h, request) = decode_request(frame.clone()).unwrap();
    assert_eq!(h.correlation_id, 42);
    let Request::Produce(p) = request else {
        panic!("not a produce request")
    };
    let records = p.topic_data[0].partition_data[0].records.as_ref().unwrap();
    assert_eq!(records, &batch);
    assert!(
        within(records, &frame),
        "records were copied out of the frame"
    );
}

#[test]
fn produce_request_frames_reference_the_batches() {
    let batch = Bytes::from(vec![1u8; 4096]);
    let mut frame = ResponseFrame::new();
    encode_request_frame(
        &header(ApiKey::Produce, 3),
        &produce(batch.clone()),
        &mut frame,
    )
    .unwrap();
    assert!(frame.parts().iter().any(|p| p.as_ptr() == batch.as_ptr()));
    // Same bytes as the contiguous encoder.
    let mut flat = BytesMut::new();
    encode_request(&header(ApiKey::Produce, 3), &produce(batch), &mut flat).unwrap();
    assert_eq!(frame.to_bytes(), flat.freeze());
}

#[test]
fn fetch_response_chunks_are_written_by_reference() {
    let chunks = vec![Bytes::from(vec![7u8; 3000]), Bytes::from(vec![9u8; 5000])];
    let response = Response::Fetch(FetchResponse {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 0,
        responses: vec![FetchableTopicResponse {
            topic: "events".into(),
            partitions: vec![PartitionData {
                partition_index: 0,
                high_watermark: 100,
                last_stable_offset: 100,
                log_start_offset: 0,
                aborted_transactions: None,
                records: Records::from_chunks(chunks.clone()),
                ..PartitionData::default()
            }],
        }],
    });
    let mut frame = ResponseFrame::new();
    encode_response(5, 11, &response, &mut frame).unwrap();
    for chunk in &chunks {
        assert!(
            frame
                .parts()
                .iter()
                .any(|p| p.as_ptr() == chunk.as_ptr() && p.len() == chunk.len()),
            "a record chunk was copied"
        );
    }
    assert_eq!(frame.io_slices().len(), frame.parts().len());
    // A client reads it back as one chunk sliced from its receive buffer.
    let mut buf = BytesMut::from(&frame.to_bytes()[..]);
    let body = split_frame(&mut buf, FRAME_BYTES_MAX).unwrap().unwrap();
    let (correlation_id, body) = decode_response_frame(body).unwrap();
    assert_eq!(correlation_id, 5);
    let decoded = decode_response(ApiKey::Fetch, 11, body.clone()).unwrap();
    assert_eq!(decoded, response);
    let Response::Fetch(f) = decoded else {
        panic!("not a fetch response")
    };
    let records = &f.responses[0].partitions[0].records;
    assert_eq!(records.chunks().len(), 1);
    assert!(within(&records.chunks()[0], &body));
}

#[test]
fn encoders_refuse_mismatched_or_unsupported_messages() {
    let mut buf = BytesMut::new();
    let request = produce(Bytes::new());
    assert_eq!(
        encode_request(&header(ApiKey::Fetch, 4), &request, &mut buf),
        Err(WireError::ApiKeyMismatch {
            header: ApiKey::Fetch,
            body: ApiKey::Produce
        })
    );
    assert!(matches!(
        encode_request(&header(ApiKey::Produce, 8), &request, &mut buf),
        Err(WireError::UnsupportedVersion { api_version: 8, .. })
    ));
    assert!(buf.is_empty(), "a failed encode left bytes behind");
    let mut frame = ResponseFrame::new();
    let response = Response::Fetch(FetchResponse::default());
    assert!(matches!(
        encode_response(1, 3, &response, &mut frame),
        Err(WireError::UnsupportedVersion { .. })
    ));
}

#[test]
fn an_overlong_string_fails_to_encode_and_leaves_the_buffer_unchanged() {
    let mut buf = BytesMut::from(&b"earlier"[..]);
    let mut h = header(ApiKey::Produce, 7);
    h.client_id = Some("x".repeat(40_000));
    let err = encode_request(&h, &produce(Bytes::new()), &mut buf).unwrap_err();
    assert!(matches!(
        err,
        WireError::TooLongToEncode {
            field: "RequestHeader.client_id",
            len: 40_000
        }
    ));
    assert_eq!(&buf[..], b"earlier");
}
