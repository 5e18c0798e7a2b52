//! Bad input harms nothing: garbage, truncated frames, oversized and negative length prefixes,
//! unknown API keys, unsupported versions, malformed bodies and slow-loris connections are thrown
//! at a running broker while a real client (confluent-kafka, acks=all) keeps producing. Each bad
//! connection is closed (or answered, for the KIP-511 ApiVersions downgrade); the broker keeps
//! serving, and afterwards every record the client had acknowledged is intact.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_protocol::wire::{self, ApiKey, ErrorCode, Response};
use sluice_tests::{kcat, run, wait_until, AckedProducer, Broker};

const TOPIC: &str = "steady";
const IDLE_MS: u64 = 1500;
const CLOSE_DEADLINE: Duration = Duration::from_secs(10);

fn connect(broker: &Broker) -> TcpStream {
    let stream = TcpStream::connect(broker.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    stream
}

/// A request frame with header v1 and the given body.
fn frame(api_key: i16, api_version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&api_key.to_be_bytes());
    payload.extend_from_slice(&api_version.to_be_bytes());
    payload.extend_from_slice(&correlation_id.to_be_bytes());
    payload.extend_from_slice(&4i16.to_be_bytes());
    payload.extend_from_slice(b"evil");
    payload.extend_from_slice(body);
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend(payload);
    out
}

/// Waits until the broker closes `stream` (EOF or reset), draining anything it sends first.
fn assert_closed(mut stream: TcpStream, what: &str) {
    let end = Instant::now() + CLOSE_DEADLINE;
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return, // reset
        }
        assert!(
            Instant::now() < end,
            "broker kept the {what} connection open"
        );
    }
}

/// Reads one response frame.
fn read_frame(stream: &mut TcpStream) -> Bytes {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("response size");
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).expect("response body");
    Bytes::from(body)
}

fn throw_bad_input(broker: &Broker) {
    // Garbage that is not even a frame (its first 4 bytes announce ~1.9 GB).
    let mut s = connect(broker);
    let garbage: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = s.write_all(&[0x71, 0x3a, 0x00, 0x01]);
    let _ = s.write_all(&garbage);
    assert_closed(s, "garbage");

    // Oversized and negative length prefixes are refused before any body arrives.
    for prefix in [i32::MAX, 200 * 1024 * 1024, -1, i32::MIN] {
        let mut s = connect(broker);
        s.write_all(&prefix.to_be_bytes()).expect("write prefix");
        assert_closed(s, &format!("length prefix {prefix}"));
    }

    // A truncated frame: the client goes away in the middle.
    let mut s = connect(broker);
    let whole = frame(ApiKey::Metadata.as_i16(), 1, 1, &(-1i32).to_be_bytes());
    s.write_all(&whole[..whole.len() - 3]).expect("write");
    s.shutdown(Shutdown::Write).expect("half close");
    assert_closed(s, "truncated frame");

    // Unknown API key; known key at unsupported versions (too new and too old).
    for (key, version) in [
        (999i16, 0i16),
        (ApiKey::Produce.as_i16(), 99),
        (ApiKey::Fetch.as_i16(), 0),
    ] {
        let mut s = connect(broker);
        s.write_all(&frame(key, version, 7, &[])).expect("write");
        assert_closed(s, &format!("api {key} v{version}"));
    }

    // A body that does not parse: Metadata v1 announcing a billion topics in 4 bytes.
    let mut s = connect(broker);
    s.write_all(&frame(
        ApiKey::Metadata.as_i16(),
        1,
        8,
        &1_000_000_000i32.to_be_bytes(),
    ))
    .expect("write");
    assert_closed(s, "malformed metadata");

    // Trailing junk after a valid body is malformed too.
    let mut s = connect(broker);
    let mut body = (-1i32).to_be_bytes().to_vec();
    body.extend_from_slice(b"junk");
    s.write_all(&frame(ApiKey::Metadata.as_i16(), 1, 9, &body))
        .expect("write");
    assert_closed(s, "trailing bytes");

    // ApiVersions newer than we speak is answered (KIP-511), in the v0 layout, and the
    // connection stays usable for the retry at v2.
    let mut s = connect(broker);
    s.write_all(&frame(ApiKey::ApiVersions.as_i16(), 3, 10, &[0, 0, 0]))
        .expect("write");
    let response = read_frame(&mut s);
    let (correlation_id, body) = wire::decode_response_frame(response).expect("frame");
    assert_eq!(correlation_id, 10);
    let Response::ApiVersions(versions) =
        wire::decode_response(ApiKey::ApiVersions, 3, body).expect("ApiVersions v0 layout")
    else {
        panic!("not an ApiVersions response");
    };
    assert_eq!(versions.error_code, ErrorCode::UNSUPPORTED_VERSION.as_i16());
    assert!(versions
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::ApiVersions.as_i16() && k.max_version == 2));
    s.write_all(&frame(ApiKey::ApiVersions.as_i16(), 2, 11, &[]))
        .expect("write");
    let (correlation_id, _) = wire::decode_response_frame(read_frame(&mut s)).expect("frame");
    assert_eq!(correlation_id, 11);
}

/// Connections that trickle a frame and never finish it are closed by the idle timeout.
fn slow_loris(broker: &Broker) {
    let mut sockets: Vec<TcpStream> = (0..20)
        .map(|_| {
            let socket = connect(broker);
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .expect("read timeout");
            socket
        })
        .collect();
    let start = Instant::now();
    let header = frame(ApiKey::Metadata.as_i16(), 1, 1, &(-1i32).to_be_bytes());
    let mut sent = 0;
    let mut closed = vec![false; sockets.len()];
    while closed.iter().any(|c| !c) {
        assert!(
            start.elapsed() < Duration::from_millis(IDLE_MS) + CLOSE_DEADLINE,
            "slow-loris connections were not closed"
        );
        for (socket, closed) in sockets.iter_mut().zip(closed.iter_mut()) {
            if *closed {
                continue;
            }
            // One byte at a time, never the last one.
            if sent + 1 < header.len() && socket.write_all(&header[sent..sent + 1]).is_err() {
                *closed = true;
                continue;
            }
            let mut buf = [0u8; 64];
            match socket.read(&mut buf) {
                Ok(0) => *closed = true,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => *closed = true,
                Ok(_) => panic!("a response to an unfinished frame"),
            }
        }
        sent = (sent + 1).min(header.len() - 2);
    }
}

#[test]
fn bad_input_closes_one_connection_and_harms_no_data() {
    let broker = Broker::builder()
        .env("RUST_LOG", "info") // the reasons are checked in the log below
        .arg("--auto-create-topics")
        .arg("--num-partitions")
        .arg("2")
        .arg("--connections-max-idle-ms")
        .arg(IDLE_MS.to_string())
        .arg("--socket-request-max-bytes")
        .arg((8 * 1024 * 1024).to_string())
        .start();
    let producer = AckedProducer::start(&broker.bootstrap(), TOPIC);
    wait_until(Duration::from_secs(60), "the producer to get going", || {
        producer.acks().acked.len() >= 200
    });

    throw_bad_input(&broker);
    slow_loris(&broker);
    let during = producer.acks().acked.len();
    // Each bad connection was closed with its reason in the broker's log.
    let log = broker.log();
    for reason in [
        "exceeds socket.request.max.bytes",
        "negative frame length",
        "connection closed inside a frame",
        "unknown API key 999",
        "Produce version 99 is not supported",
        "malformed request",
        "closing idle connection",
    ] {
        assert!(log.contains(reason), "broker log lacks {reason:?}:\n{log}");
    }

    wait_until(
        Duration::from_secs(60),
        "the producer to keep going",
        || producer.acks().acked.len() >= during + 200,
    );
    // Checks that the producer succeeded and that no record failed for good.
    let acks = producer.finish();

    let out = run(
        Command::new(kcat())
            .args([
                "-b",
                &broker.bootstrap(),
                "-C",
                "-t",
                TOPIC,
                "-o",
                "beginning",
                "-e",
            ])
            .args(["-X", "check.crcs=true", "-f", "%p %o %s\\n"]),
        b"",
        Duration::from_secs(60),
    );
    out.assert_success("kcat -C");
    let mut stored = std::collections::HashMap::new();
    for line in out.stdout_text().lines() {
        let f: Vec<&str> = line.splitn(3, ' ').collect();
        stored.insert(
            (
                f[0].parse::<i32>().expect("p"),
                f[1].parse::<i64>().expect("o"),
            ),
            f[2].to_string(),
        );
    }
    assert!(acks.acked.len() >= 400);
    for (i, (p, o)) in &acks.acked {
        let value = format!("r{i}");
        assert_eq!(
            stored.get(&(*p, *o)),
            Some(&value),
            "record {value} at {p}/{o}"
        );
    }
}

#[test]
fn connections_beyond_max_connections_are_refused_and_others_keep_working() {
    let broker = Broker::builder().arg("--max-connections").arg("3").start();
    let held: Vec<TcpStream> = (0..3).map(|_| connect(&broker)).collect();
    // The fourth is accepted by the kernel, then closed by the broker at once.
    assert_closed(connect(&broker), "fourth");
    drop(held);
    // With the slots free again, a real client works.
    wait_until(Duration::from_secs(10), "kcat -L to succeed", || {
        run(
            Command::new(kcat()).args(["-b", &broker.bootstrap(), "-L"]),
            b"",
            Duration::from_secs(30),
        )
        .code
            == Some(0)
    });
}
