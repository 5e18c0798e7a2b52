//! The peer frame codec: round trips with records, partial input, and garbage.

use super::*;

fn fetch_response() -> (PeerFrame, Vec<Bytes>) {
    let frame = PeerFrame {
        correlation_id: 42,
        body: PeerBody::Response(PeerResponse::Fetch {
            fetch_id: 7,
            result: Ok(FetchHeader {
                high_watermark: 10,
                log_start_offset: 4,
                diverging: Some(EpochEndOffset {
                    epoch: 3,
                    end_offset: 9,
                }),
            }),
        }),
    };
    (
        frame,
        vec![
            Bytes::from_static(b"batch-one"),
            Bytes::from_static(b"batch-two"),
        ],
    )
}

#[test]
fn a_fetch_response_round_trips_with_its_records_untouched() {
    let (frame, tail) = fetch_response();
    let mut buf = BytesMut::new();
    encode_frame(&frame, &tail, &mut buf).unwrap();
    let whole = buf.clone();
    // Every strict prefix is "need more", never an error.
    for cut in 0..whole.len() {
        let mut partial = BytesMut::from(&whole[..cut]);
        assert!(
            decode_frame(&mut partial).unwrap().is_none(),
            "cut at {cut}"
        );
    }
    let (decoded, records) = decode_frame(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    assert_eq!(decoded.correlation_id, 42);
    assert_eq!(&records[..], b"batch-onebatch-two");
    match decoded.body {
        PeerBody::Response(PeerResponse::Fetch {
            fetch_id: 7,
            result: Ok(h),
        }) => assert_eq!(h.high_watermark, 10),
        other => panic!("wrong body {other:?}"),
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let mut huge = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 0, 0][..]);
    assert!(matches!(
        decode_frame(&mut huge),
        Err(PeerError::FrameTooLarge(_))
    ));
    let mut bad_header_len = BytesMut::new();
    bad_header_len.put_u32(8);
    bad_header_len.put_u32(1_000);
    bad_header_len.put_u32(0);
    assert!(matches!(
        decode_frame(&mut bad_header_len),
        Err(PeerError::BadHeaderLength { .. })
    ));
    let mut not_json = BytesMut::new();
    not_json.put_u32(4 + 3);
    not_json.put_u32(3);
    not_json.put_slice(b"{{{");
    assert!(matches!(
        decode_frame(&mut not_json),
        Err(PeerError::BadHeader(_))
    ));
    let mut tiny = BytesMut::from(&[0, 0, 0, 1, 0][..]);
    assert!(decode_frame(&mut tiny).is_err());
}

#[test]
fn oversized_fetches_are_refused_both_ways() {
    let frame = PeerFrame {
        correlation_id: 1,
        body: PeerBody::Request(PeerRequest::Fetch {
            tp: TopicPartition::new("t", 0),
            topic_id: 1,
            req: FetchRequest {
                replica: 2,
                leader_epoch: 0,
                fetch_offset: 0,
                last_fetched_epoch: -1,
                durable_offset: 0,
                log_start_offset: 0,
                fetch_id: 0,
            },
            max_bytes: PEER_FETCH_BYTES_MAX + 1,
        }),
    };
    let mut buf = BytesMut::new();
    assert!(matches!(
        encode_frame(&frame, &[], &mut buf),
        Err(PeerError::FetchTooLarge(_))
    ));
    // Hand-built, as a hostile peer would send it.
    let header = serde_json::to_vec(&frame).unwrap();
    buf.put_u32((4 + header.len()) as u32);
    buf.put_u32(header.len() as u32);
    buf.put_slice(&header);
    assert!(matches!(
        decode_frame(&mut buf),
        Err(PeerError::FetchTooLarge(_))
    ));
}

/// Answers heartbeats from broker 1 only once released; everyone else at once.
struct HoldingHandler {
    held: std::sync::Arc<tokio::sync::Notify>,
    release: std::sync::Arc<tokio::sync::Notify>,
}

impl transport::PeerHandler for HoldingHandler {
    fn handle(&self, req: PeerRequest) -> transport::BoxFuture<'_, (PeerResponse, Vec<Bytes>)> {
        Box::pin(async move {
            if let PeerRequest::Heartbeat { id: 1, .. } = req {
                self.held.notify_one();
                self.release.notified().await;
            }
            (PeerResponse::Heartbeat(true), Vec::new())
        })
    }
}

#[tokio::test]
async fn a_held_call_does_not_delay_other_calls_to_the_same_peer() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let held = std::sync::Arc::new(tokio::sync::Notify::new());
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let handler = std::sync::Arc::new(HoldingHandler {
        held: held.clone(),
        release: release.clone(),
    });
    let server = tokio::spawn(transport::serve(listener, handler));
    let client = std::sync::Arc::new(transport::PeerClient::new(addr));
    // Warm the pool with one connection, which the held call then takes.
    let warm = client
        .call(PeerRequest::Heartbeat {
            id: 2,
            incarnation: 0,
        })
        .await;
    assert!(matches!(warm, Ok((PeerResponse::Heartbeat(true), _))));
    let slow = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call(PeerRequest::Heartbeat {
                    id: 1,
                    incarnation: 0,
                })
                .await
        }
    });
    held.notified().await;
    // Like a follower's other partitions while one partition's fetch is held by the leader.
    let fast = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        client.call(PeerRequest::Heartbeat {
            id: 2,
            incarnation: 0,
        }),
    )
    .await
    .expect("answered while the other call is held");
    assert!(matches!(fast, Ok((PeerResponse::Heartbeat(true), _))));
    release.notify_one();
    assert!(matches!(
        slow.await.unwrap(),
        Ok((PeerResponse::Heartbeat(true), _))
    ));
    server.abort();
}

/// Answers every heartbeat with a fixed value.
struct FixedHandler(bool);

impl transport::PeerHandler for FixedHandler {
    fn handle(&self, _req: PeerRequest) -> transport::BoxFuture<'_, (PeerResponse, Vec<Bytes>)> {
        Box::pin(async move { (PeerResponse::Heartbeat(self.0), Vec::new()) })
    }
}

#[tokio::test]
async fn a_stopped_server_closes_the_connections_it_accepted() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let old = tokio::spawn(transport::serve(
        listener,
        std::sync::Arc::new(FixedHandler(true)),
    ));
    let client = transport::PeerClient::new(addr.to_string());
    let heartbeat = || {
        client.call(PeerRequest::Heartbeat {
            id: 1,
            incarnation: 0,
        })
    };
    // The pool now holds a connection the old server accepted.
    assert!(matches!(
        heartbeat().await,
        Ok((PeerResponse::Heartbeat(true), _))
    ));
    old.abort();
    let _ = old.await;
    // A new server on the same port, as a node restarted in the same process.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let new = tokio::spawn(transport::serve(
        listener,
        std::sync::Arc::new(FixedHandler(false)),
    ));
    // The pooled connection is dead (the call fails and drops it) or already known closed; either
    // way no answer comes from the stopped server, and the next call reaches the new one.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match heartbeat().await {
            Ok((PeerResponse::Heartbeat(answer), _)) => {
                assert!(!answer, "answered by the stopped server");
                break;
            }
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "no answer from the new server: {other:?}"
            ),
        }
    }
    new.abort();
}

#[test]
fn fetch_headers_of_a_node_of_an_earlier_version_decode_with_the_new_fields_unknown() {
    // Fields added since (topic id, log start offsets) are left out by such a node.
    let frame = PeerFrame {
        correlation_id: 3,
        body: PeerBody::Request(PeerRequest::Fetch {
            tp: TopicPartition::new("t", 0),
            topic_id: 9,
            req: FetchRequest {
                replica: 2,
                leader_epoch: 1,
                fetch_offset: 10,
                last_fetched_epoch: 1,
                durable_offset: 10,
                log_start_offset: 5,
                fetch_id: 4,
            },
            max_bytes: 1024,
        }),
    };
    let mut json = serde_json::to_value(&frame).expect("to json");
    let fetch = &mut json["body"]["Request"]["Fetch"];
    fetch.as_object_mut().expect("fetch").remove("topic_id");
    fetch["req"]
        .as_object_mut()
        .expect("req")
        .remove("log_start_offset");
    let old: PeerFrame = serde_json::from_value(json).expect("an earlier node's fetch decodes");
    match old.body {
        PeerBody::Request(PeerRequest::Fetch { topic_id, req, .. }) => {
            assert_eq!(topic_id, 0, "not named: not checked");
            assert_eq!(req.log_start_offset, -1, "unknown");
        }
        other => panic!("decoded as {other:?}"),
    }
    let header: FetchHeader =
        serde_json::from_str(r#"{"high_watermark":4,"diverging":null}"#).expect("old header");
    assert_eq!(header.log_start_offset, -1, "not followed");
}
