//! Property test: any frame body, with a plausible header or none, goes through the dispatcher
//! without a panic, and a frame that does not decode is answered only where Kafka answers
//! (ApiVersions downgrade) and otherwise closes the connection.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_broker::config::BrokerConfig;
use sluice_broker::server::{Handlers, Reply, RequestHandler, Server};

fn frame_strategy() -> impl Strategy<Value = Vec<u8>> {
    let header = (
        prop_oneof![0i16..=50, any::<i16>()],
        prop_oneof![-1i16..=12, any::<i16>()],
        any::<i32>(),
    );
    (
        header,
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
    )
        .prop_map(|((key, version, correlation), body, with_header)| {
            let mut out = Vec::new();
            if with_header {
                out.extend_from_slice(&key.to_be_bytes());
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(&correlation.to_be_bytes());
            }
            out.extend(body);
            out
        })
}

#[test]
fn random_frames_never_panic_the_dispatcher() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = runtime
        .block_on(Server::open(BrokerConfig::for_data_dir(dir.path())))
        .expect("server");
    let handlers = Handlers::new(server.broker().clone());
    let peer = "127.0.0.1:1".parse().expect("addr");
    proptest!(ProptestConfig::with_cases(2000), |(frame in frame_strategy())| {
        let reply = runtime.block_on(handlers.handle(Bytes::from(frame.clone()), peer));
        match reply {
            // Bodies that happen to decode get an answer; ApiVersions is always answered.
            Reply::Ready(out) => prop_assert!(!out.is_empty()),
            Reply::Close(reason) => prop_assert!(!reason.is_empty()),
            Reply::Deferred(_) | Reply::None => {}
        }
    });
}
