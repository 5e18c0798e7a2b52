//! [`Handlers`]: decodes each request frame, routes it to its handler, encodes the response.
//!
//! A frame that does not decode is answered where Kafka answers (an ApiVersions request of a
//! newer version gets UNSUPPORTED_VERSION in the v0 layout, KIP-511) and otherwise closes that one
//! connection with the reason logged: an unknown API key, an unsupported version, a malformed or
//! truncated body. Nothing a client sends reaches a panic.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use sluice_protocol::wire::{
    self, api_versions_response, ApiKey, ErrorCode, Request, RequestHeader, Response,
    ResponseFrame, WireError,
};

use super::broker::Broker;
use super::connection::{FileParts, OutFrame, Reply, RequestHandler};
use super::group_service::is_group_request;

/// What a handler produced for one request.
pub(crate) enum Outcome {
    /// Respond with this now.
    Respond(Response),
    /// Send no response (`acks=0` produce).
    Silent,
    /// Respond with what this resolves to, in this request's place (fetch long-poll).
    Later(Pin<Box<dyn Future<Output = Response> + Send>>),
    /// Respond with this; its record data is partly placeholders for segment file ranges, sent
    /// with `sendfile` (fetch; see `connection/file_parts.rs`).
    RespondFiles(Response, FileParts),
    /// [`Outcome::Later`] for a response with file ranges.
    LaterFiles(Pin<Box<dyn Future<Output = (Response, FileParts)> + Send>>),
}

/// The request side of the broker: one per broker, shared by every connection.
#[derive(Debug, Clone)]
pub struct Handlers {
    pub(crate) broker: Arc<Broker>,
}

impl Handlers {
    /// Handlers over `broker`.
    pub fn new(broker: Arc<Broker>) -> Handlers {
        Handlers { broker }
    }

    /// The broker these handlers serve.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    async fn route(&self, header: &RequestHeader, request: Request) -> Outcome {
        if let (Some(cluster), Request::FindCoordinator(req)) = (self.broker.cluster(), &request) {
            // In a cluster every node names the same group coordinator.
            if req.key_type == 0 {
                return Outcome::Respond(Response::FindCoordinator(
                    super::handlers::find_group_coordinator(cluster),
                ));
            }
        }
        if is_group_request(&request) {
            let groups = self.broker.group_service();
            return Outcome::Respond(groups.handle(header, request).await);
        }
        let version = header.api_version;
        match request {
            Request::ApiVersions(_) => Outcome::Respond(Response::ApiVersions(
                api_versions_response(ErrorCode::NONE),
            )),
            Request::Metadata(req) => {
                Outcome::Respond(Response::Metadata(self.metadata(req).await))
            }
            Request::Produce(req) => self.produce(req).await,
            Request::Fetch(req) => self.fetch(req),
            Request::ListOffsets(req) => {
                Outcome::Respond(Response::ListOffsets(self.list_offsets(version, req)))
            }
            Request::CreateTopics(req) => {
                Outcome::Respond(Response::CreateTopics(self.create_topics(req).await))
            }
            Request::DeleteTopics(req) => {
                Outcome::Respond(Response::DeleteTopics(self.delete_topics(req).await))
            }
            Request::InitProducerId(req) => {
                Outcome::Respond(Response::InitProducerId(self.init_producer_id(req).await))
            }
            Request::DescribeConfigs(req) => {
                Outcome::Respond(Response::DescribeConfigs(self.describe_configs(req)))
            }
            Request::AlterConfigs(req) => {
                Outcome::Respond(Response::AlterConfigs(self.alter_configs(req).await))
            }
            Request::DeleteRecords(req) => {
                Outcome::Respond(Response::DeleteRecords(self.delete_records(req).await))
            }
            // Group APIs were routed above; the match must still be total.
            other => Outcome::Respond(super::group_service::unavailable_response(other)),
        }
    }

    /// Answers a frame that did not decode, or closes the connection (see the module doc).
    fn reject(&self, err: WireError, peer: SocketAddr) -> Reply {
        match err {
            WireError::UnsupportedVersion {
                api_key: ApiKey::ApiVersions,
                api_version,
                correlation_id,
            } => {
                tracing::debug!(%peer, api_version, "ApiVersions downgrade (KIP-511)");
                let response =
                    Response::ApiVersions(api_versions_response(ErrorCode::UNSUPPORTED_VERSION));
                match encode(correlation_id, 0, &response) {
                    Ok(frame) => Reply::Ready(frame),
                    Err(err) => Reply::Close(format!("cannot encode ApiVersions: {err}")),
                }
            }
            WireError::UnsupportedVersion {
                api_key,
                api_version,
                ..
            } => {
                let (min, max) = api_key.versions();
                Reply::Close(format!(
                    "{} version {api_version} is not supported (supported: {min}-{max})",
                    api_key.name()
                ))
            }
            WireError::UnsupportedApiKey { api_key, .. } => {
                Reply::Close(format!("unknown API key {api_key}"))
            }
            other => Reply::Close(format!("malformed request: {other}")),
        }
    }
}

fn encode(
    correlation_id: i32,
    api_version: i16,
    response: &Response,
) -> Result<OutFrame, WireError> {
    let mut frame = ResponseFrame::new();
    wire::encode_response(correlation_id, api_version, response, &mut frame)?;
    Ok(OutFrame::from_bytes(frame.take_parts()))
}

/// [`respond`] for a response whose record data holds placeholders for `files`.
fn respond_files(
    header: &RequestHeader,
    api_key: ApiKey,
    response: &Response,
    files: FileParts,
) -> Result<OutFrame, String> {
    let frame = respond(header, api_key, response)?;
    if files.is_empty() {
        return Ok(frame);
    }
    let mut parts = Vec::with_capacity(frame.chunks.len());
    for chunk in frame.chunks {
        match chunk {
            super::connection::OutChunk::Bytes(bytes) => parts.push(bytes),
            super::connection::OutChunk::File(_) => {
                return Err("internal error: file range in an encoded frame".into())
            }
        }
    }
    let chunks = files
        .splice(parts)
        .map_err(|err| format!("internal error: {} response: {err}", api_key.name()))?;
    Ok(OutFrame { chunks })
}

/// Encodes `response` for the request `header`, or explains why the connection must close.
fn respond(
    header: &RequestHeader,
    api_key: ApiKey,
    response: &Response,
) -> Result<OutFrame, String> {
    if response.api_key() != api_key {
        return Err(format!(
            "internal error: {} answered with a {} response",
            api_key.name(),
            response.api_key().name()
        ));
    }
    encode(header.correlation_id, header.api_version, response)
        .map_err(|err| format!("cannot encode {} response: {err}", api_key.name()))
}

impl RequestHandler for Handlers {
    async fn handle(&self, frame: Bytes, peer: SocketAddr) -> Reply {
        self.broker.count_request();
        let (header, request) = match wire::decode_request(frame) {
            Ok(decoded) => decoded,
            Err(err) => return self.reject(err, peer),
        };
        let api_key = request.api_key();
        tracing::trace!(
            %peer,
            api = api_key.name(),
            version = header.api_version,
            correlation_id = header.correlation_id,
            "request"
        );
        match self.route(&header, request).await {
            Outcome::Respond(response) => match respond(&header, api_key, &response) {
                Ok(frame) => Reply::Ready(frame),
                Err(reason) => Reply::Close(reason),
            },
            Outcome::RespondFiles(response, files) => {
                match respond_files(&header, api_key, &response, files) {
                    Ok(frame) => Reply::Ready(frame),
                    Err(reason) => Reply::Close(reason),
                }
            }
            Outcome::LaterFiles(future) => Reply::Deferred(Box::pin(async move {
                let (response, files) = future.await;
                match respond_files(&header, api_key, &response, files) {
                    Ok(frame) => Some(frame),
                    Err(reason) => {
                        tracing::error!(%peer, "{reason}");
                        None
                    }
                }
            })),
            Outcome::Silent => Reply::None,
            Outcome::Later(future) => Reply::Deferred(Box::pin(async move {
                let response = future.await;
                match respond(&header, api_key, &response) {
                    Ok(frame) => Some(frame),
                    Err(reason) => {
                        tracing::error!(%peer, "{reason}");
                        None
                    }
                }
            })),
        }
    }
}
