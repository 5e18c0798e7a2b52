//! Byte-exact agreement with a real client: every request and response frame kafka-python encodes
//! for every API and version Sluice supports (captures/wire_kafka_python.hex, made by
//! captures/wire_gen_kafka_python.py) decodes, re-encodes to exactly the same bytes, and every
//! truncation of it is a typed error. Also librdkafka 2.16's own requests for every API it uses
//! (captures/wire_librdkafka_requests.hex, recorded by captures/wire_record_librdkafka.py against a
//! stand-in broker advertising Sluice's versions): an encoder written independently of Kafka's
//! schemas.

use bytes::{Bytes, BytesMut};
use sluice_protocol::wire::{
    self, decode_request, decode_response, decode_response_frame, encode_request, encode_response,
    limits::FRAME_BYTES_MAX, split_frame, ApiKey, ResponseFrame, SUPPORTED_VERSIONS,
};

struct Capture {
    request: bool,
    api_key: ApiKey,
    version: i16,
    label: String,
    frame: Bytes,
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn captures() -> Vec<Capture> {
    parse(include_str!("captures/wire_kafka_python.hex"))
}

fn parse(text: &str) -> Vec<Capture> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let mut f: Vec<&str> = line.split_whitespace().collect();
            if f.len() == 4 {
                f.insert(3, "-"); // librdkafka lines have no sample column
            }
            assert_eq!(f.len(), 5, "bad capture line {line}");
            let key: i16 = f[1].parse().expect("api key");
            Capture {
                request: f[0] == "request",
                api_key: ApiKey::from_i16(key).expect("supported api key"),
                version: f[2].parse().expect("version"),
                label: format!("{} {} v{} sample {}", f[0], f[1], f[2], f[3]),
                frame: Bytes::from(unhex(f[4])),
            }
        })
        .collect()
}

/// The body after the size prefix, checking the prefix matches the frame length.
fn body(frame: &Bytes) -> Bytes {
    let mut buf = BytesMut::from(&frame[..]);
    let body = split_frame(&mut buf, FRAME_BYTES_MAX)
        .expect("valid frame")
        .expect("complete frame");
    assert!(buf.is_empty());
    body
}

#[test]
fn every_supported_version_is_captured() {
    let caps = captures();
    assert!(caps.len() >= 300, "only {} captures", caps.len());
    for &(key, min, max) in SUPPORTED_VERSIONS {
        for v in min..=max {
            if key == ApiKey::DescribeConfigs && v == 0 {
                continue; // kafka-python carries Kafka 4's schema, which dropped v0
            }
            for request in [true, false] {
                assert!(
                    caps.iter()
                        .any(|c| c.api_key == key && c.version == v && c.request == request),
                    "no capture for {key:?} v{v} request={request}"
                );
            }
        }
    }
}

#[test]
fn kafka_python_requests_decode_and_reencode_byte_exact() {
    for c in captures().iter().filter(|c| c.request) {
        let (header, request) =
            decode_request(body(&c.frame)).unwrap_or_else(|e| panic!("{}: {e}", c.label));
        assert_eq!(header.api_key, c.api_key.as_i16(), "{}", c.label);
        assert_eq!(header.api_version, c.version, "{}", c.label);
        assert_eq!(
            header.correlation_id,
            1000 + i32::from(c.version),
            "{}",
            c.label
        );
        assert_eq!(request.api_key(), c.api_key);
        let mut out = BytesMut::new();
        encode_request(&header, &request, &mut out).unwrap_or_else(|e| panic!("{}: {e}", c.label));
        assert_eq!(
            &out[..],
            &c.frame[..],
            "{}: re-encoded bytes differ",
            c.label
        );
    }
}

#[test]
fn kafka_python_responses_decode_and_reencode_byte_exact() {
    for c in captures().iter().filter(|c| !c.request) {
        let (correlation_id, body) = decode_response_frame(body(&c.frame)).expect("header");
        assert_eq!(correlation_id, 2000 + i32::from(c.version), "{}", c.label);
        let response = decode_response(c.api_key, c.version, body)
            .unwrap_or_else(|e| panic!("{}: {e}", c.label));
        let mut frame = ResponseFrame::new();
        encode_response(correlation_id, c.version, &response, &mut frame)
            .unwrap_or_else(|e| panic!("{}: {e}", c.label));
        assert_eq!(frame.len(), c.frame.len(), "{}", c.label);
        assert_eq!(
            &frame.to_bytes()[..],
            &c.frame[..],
            "{}: re-encoded bytes differ",
            c.label
        );
    }
}

#[test]
fn every_truncation_of_a_captured_frame_is_a_typed_error() {
    for c in captures() {
        let full = body(&c.frame);
        for len in 0..full.len() {
            let cut = full.slice(..len);
            if c.request {
                let err = decode_request(cut).expect_err(&c.label);
                assert!(
                    matches!(err, wire::WireError::Truncated { .. }),
                    "{} cut at {len}: {err}",
                    c.label
                );
            } else if len >= 4 {
                let (_, body) = decode_response_frame(cut).expect("header");
                let err = decode_response(c.api_key, c.version, body).expect_err(&c.label);
                assert!(
                    matches!(err, wire::WireError::Truncated { .. }),
                    "{} cut at {len}: {err}",
                    c.label
                );
            }
        }
    }
}

#[test]
fn librdkafka_requests_decode_and_reencode_byte_exact() {
    let caps = parse(include_str!("captures/wire_librdkafka_requests.hex"));
    // Everything librdkafka uses against Sluice: admin, idempotent producer, group consumer.
    for key in [
        0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21, 22, 32, 33, 42,
    ] {
        assert!(
            caps.iter().any(|c| c.api_key.as_i16() == key),
            "no librdkafka capture for api key {key}"
        );
    }
    let mut n_checked = 0;
    for c in &caps {
        let result = decode_request(body(&c.frame));
        if c.api_key == ApiKey::ApiVersions && c.version > 2 {
            assert!(matches!(
                result,
                Err(wire::WireError::UnsupportedVersion { .. })
            ));
            continue;
        }
        let (header, request) = result.unwrap_or_else(|e| panic!("{}: {e}", c.label));
        assert_eq!(header.client_id.as_deref(), Some("rdkafka"), "{}", c.label);
        if let wire::Request::Produce(p) = &request {
            // A real RecordBatch v2 arrived intact: magic byte 2 at offset 16.
            let records = p.topic_data[0].partition_data[0]
                .records
                .as_ref()
                .expect("records");
            assert_eq!(records.get(16), Some(&2), "{}", c.label);
            assert_eq!(p.acks, -1, "idempotent producers use acks=all");
        }
        let mut out = BytesMut::new();
        encode_request(&header, &request, &mut out).unwrap_or_else(|e| panic!("{}: {e}", c.label));
        assert_eq!(
            &out[..],
            &c.frame[..],
            "{}: re-encoded bytes differ",
            c.label
        );
        n_checked += 1;
    }
    assert!(
        n_checked >= 20,
        "only {n_checked} librdkafka frames checked"
    );
}
