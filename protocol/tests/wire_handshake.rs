//! The KIP-511 downgrade against real clients' opening bytes. librdkafka 2.0.2 (Debian's kcat)
//! opens with ApiVersions v3 and kafka-python 3.0 with v4, both flexible versions Sluice does not
//! parse. Sluice answers UNSUPPORTED_VERSION in the v0 layout from the first 8 header bytes; the
//! captures (made by captures/wire_capture_handshake.py, which played that answer to the real client)
//! show each client retrying at a version Sluice supports and going on to Metadata.

use bytes::{Bytes, BytesMut};
use sluice_protocol::wire::{
    api_versions_response, decode_request, decode_response, decode_response_frame, encode_request,
    encode_response, limits::FRAME_BYTES_MAX, split_frame, ApiKey, ErrorCode, Request, Response,
    ResponseFrame, WireError, SUPPORTED_VERSIONS,
};

fn unhex(s: &str) -> Bytes {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect::<Vec<u8>>()
        .into()
}

fn frame(text: &str, label: &str) -> Bytes {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(label).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {label} frame"));
    unhex(line.trim())
}

fn body(frame: &Bytes) -> Bytes {
    let mut buf = BytesMut::from(&frame[..]);
    let body = split_frame(&mut buf, FRAME_BYTES_MAX)
        .expect("valid")
        .expect("complete");
    assert!(buf.is_empty());
    body
}

fn encode(correlation_id: i32, version: i16, response: Response) -> Bytes {
    let mut out = ResponseFrame::new();
    encode_response(correlation_id, version, &response, &mut out).expect("encode");
    out.to_bytes()
}

fn check_handshake(text: &str, first_version: i16, retry_version: i16, next_version: i16) {
    // 1. The flexible opening request is refused from its first 8 bytes, with the correlation id.
    let first = frame(text, "first");
    let err = decode_request(body(&first)).expect_err("flexible ApiVersions is not supported");
    assert_eq!(
        err,
        WireError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions,
            api_version: first_version,
            correlation_id: 1
        }
    );
    assert_eq!(err.answer_code(), Some(ErrorCode::UNSUPPORTED_VERSION));

    // 2. The answer: UNSUPPORTED_VERSION in the v0 layout listing every supported range.
    let answer = encode(
        1,
        0,
        Response::ApiVersions(api_versions_response(ErrorCode::UNSUPPORTED_VERSION)),
    );
    assert_eq!(answer, frame(text, "answer"));

    // 3. The client retried at a supported version; the normal answer matches the capture.
    let (header, request) = decode_request(body(&frame(text, "retry"))).expect("retry decodes");
    assert_eq!(request.api_key(), ApiKey::ApiVersions);
    assert_eq!(header.api_version, retry_version);
    let ok = encode(
        header.correlation_id,
        header.api_version,
        Response::ApiVersions(api_versions_response(ErrorCode::NONE)),
    );
    assert_eq!(ok, frame(text, "ok"));

    // 4. It went on to Metadata: decodes and re-encodes byte-exact.
    let next = frame(text, "next");
    let (header, request) = decode_request(body(&next)).expect("metadata decodes");
    assert_eq!(header.api_version, next_version);
    let Request::Metadata(metadata) = &request else {
        panic!("expected Metadata, got {request:?}");
    };
    assert_eq!(metadata.topics.as_deref().map(<[_]>::len), Some(0));
    let mut out = BytesMut::new();
    encode_request(&header, &request, &mut out).expect("encode");
    assert_eq!(&out[..], &next[..]);
}

#[test]
fn librdkafka_downgrades_from_apiversions_v3() {
    check_handshake(
        include_str!("captures/wire_librdkafka_handshake.hex"),
        3,
        0,
        4,
    );
}

#[test]
fn kafka_python_downgrades_from_apiversions_v4() {
    check_handshake(
        include_str!("captures/wire_kafka_python_handshake.hex"),
        4,
        2,
        8,
    );
}

#[test]
fn client_side_reads_a_downgrade_answer_in_the_v0_layout() {
    let text = include_str!("captures/wire_librdkafka_handshake.hex");
    let (correlation_id, body) = decode_response_frame(body(&frame(text, "answer"))).unwrap();
    assert_eq!(correlation_id, 1);
    // Asked at v2, answered in the v0 layout because of the error code.
    let Response::ApiVersions(resp) = decode_response(ApiKey::ApiVersions, 2, body).unwrap() else {
        panic!("expected ApiVersions");
    };
    assert_eq!(resp.error_code, ErrorCode::UNSUPPORTED_VERSION.as_i16());
    let table: Vec<(i16, i16, i16)> = resp
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    let ours: Vec<(i16, i16, i16)> = SUPPORTED_VERSIONS
        .iter()
        .map(|&(k, lo, hi)| (k.as_i16(), lo, hi))
        .collect();
    assert_eq!(table, ours);
}

#[test]
fn unknown_api_key_is_reported_with_its_correlation_id() {
    // api key 57 (UpdateFeatures) v0, correlation id 9, then junk Sluice never looks at.
    let frame = Bytes::from_static(&[0, 57, 0, 0, 0, 0, 0, 9, 0xde, 0xad]);
    assert_eq!(
        decode_request(frame),
        Err(WireError::UnsupportedApiKey {
            api_key: 57,
            api_version: 0,
            correlation_id: 9
        })
    );
}
