//! The connection layer against a real in-process broker: many requests in flight on one
//! connection come back in order, acks=0 produces no response, a newer ApiVersions is downgraded
//! (KIP-511), a second broker on a locked data dir refuses to start.

mod server_support;

use server_support::*;
use sluice_broker::config::BrokerConfig;
use sluice_broker::server::{Server, ServerError};
use sluice_protocol::wire::messages::api_versions::ApiVersionsRequest;
use sluice_protocol::wire::messages::metadata::MetadataRequest;
use sluice_protocol::wire::{ApiKey, Request, Response};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "pipe", 1, &[]).await;
    let mut sent = Vec::new();
    for i in 0..200 {
        let (version, request) = match i % 3 {
            0 => (2, Request::ApiVersions(ApiVersionsRequest {})),
            1 => (
                8,
                Request::Metadata(MetadataRequest {
                    topics: None,
                    ..Default::default()
                }),
            ),
            // Mixed acks: durable replies are deferred, yet everything stays in order.
            _ => {
                let acks = if i % 2 == 0 { -1 } else { 1 };
                (
                    7,
                    produce_request("pipe", 0, acks, batch(3, Default::default(), 10)),
                )
            }
        };
        let api_key = request.api_key();
        sent.push((conn.send(version, &request).await, api_key, version));
    }
    let mut next_offset = 0;
    for (correlation_id, api_key, version) in sent {
        let (got, response) = conn.recv(api_key, version).await;
        assert_eq!(got, correlation_id);
        if let Response::Produce(produce) = response {
            let p = &produce.responses[0].partition_responses[0];
            assert_eq!(p.error_code, 0);
            // Requests took effect in the order sent.
            assert_eq!(p.base_offset, next_offset);
            next_offset += 3;
        }
    }
    broker.stop().await;
}

#[tokio::test]
async fn acks_zero_gets_no_response() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "quiet", 1, &[]).await;
    conn.send(
        7,
        &produce_request("quiet", 0, 0, batch(5, Default::default(), 0)),
    )
    .await;
    let probe = conn
        .send(2, &Request::ApiVersions(ApiVersionsRequest {}))
        .await;
    let (got, _) = conn.recv(ApiKey::ApiVersions, 2).await;
    assert_eq!(
        got, probe,
        "the first response is the probe's: acks=0 was silent"
    );
    let (code, offset) = produce(&mut conn, "quiet", 0, 1, batch(1, Default::default(), 0)).await;
    assert_eq!((code, offset), (0, 5), "the acks=0 batch was appended");
    broker.stop().await;
}

#[tokio::test]
async fn a_locked_data_dir_refuses_a_second_broker() {
    let broker = TestBroker::start().await;
    let err = Server::open(BrokerConfig::for_data_dir(&broker.data_dir))
        .await
        .expect_err("second broker");
    assert!(matches!(err, ServerError::DataDir(_)), "{err}");
    assert!(
        err.to_string()
            .contains("in use by another sluiced process"),
        "{err}"
    );
    broker.stop().await;
}

#[tokio::test]
async fn invalid_topic_defaults_refuse_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::for_data_dir(dir.path());
    config
        .topic_defaults
        .insert("retention.ms".to_string(), "soon".to_string());
    let err = Server::open(config).await.expect_err("invalid default");
    assert!(err.to_string().contains("retention.ms"), "{err}");
}

#[tokio::test]
async fn shutdown_answers_requests_in_flight_before_closing() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "drain", 1, &[]).await;
    // A long-poll that would wait 30 s, and a request pipelined behind it.
    let fetch = conn
        .send(11, &fetch_request("drain", 0, 0, 30_000, 1))
        .await;
    let probe = conn
        .send(2, &Request::ApiVersions(ApiVersionsRequest {}))
        .await;
    // Requests the broker has not read yet are not in flight: wait until it has read both.
    let context = broker.broker.clone();
    let end = tokio::time::Instant::now() + DEADLINE;
    while context.requests_received() < 3 {
        assert!(tokio::time::Instant::now() < end, "requests never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let stopping = tokio::spawn(broker.stop());
    // Both are answered, in order, well before the long-poll's own deadline.
    let (got, _) = conn.recv(ApiKey::Fetch, 11).await;
    assert_eq!(got, fetch);
    let (got, _) = conn.recv(ApiKey::ApiVersions, 2).await;
    assert_eq!(got, probe);
    stopping.await.expect("stopped cleanly");
    // Then the connection is closed.
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(DEADLINE, conn.stream.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
}
