//! The Kafka wire protocol: framing, request headers and the message types Sluice speaks.
//!
//! A hand-written, bounded, pure codec for the non-flexible versions of the APIs in
//! [`SUPPORTED_VERSIONS`] (so no tagged fields anywhere). Every count read from the wire is
//! checked against the bytes left and [`limits`] before anything is allocated, and no input
//! makes it panic.
//!
//! # Layout
//! Every frame is an int32 size (big-endian, like everything else) then that many bytes:
//! - request: header v1 `api_key int16, api_version int16, correlation_id int32,
//!   client_id nullable_string`, then the body;
//! - response: header v0 `correlation_id int32`, then the body (ApiVersions too, at every
//!   version).
//!
//! # API
//! - Input: [`frame::split_frame`] cuts frames (without their size prefix) off a read buffer.
//! - Broker: [`decode_request`]`(frame) -> (RequestHeader, Request)`, then
//!   [`encode_response`]`(correlation_id, api_version, &Response, &mut ResponseFrame)` and a
//!   vectored write of [`ResponseFrame::parts`]. A request for an unknown key or version fails
//!   with [`WireError::UnsupportedApiKey`] / [`WireError::UnsupportedVersion`], which carry the
//!   correlation id; an ApiVersions request of any version is answered (KIP-511) with
//!   [`api_versions_response`]`(ErrorCode::UNSUPPORTED_VERSION)` encoded at version 0. A decoded
//!   request the broker cannot serve gets `request.error_response(code)` (every partition, topic
//!   or group failed with that code, as Kafka's `getErrorResponse`).
//! - Client: [`encode_request`] into a `BytesMut` (or [`encode_request_frame`] to keep record
//!   batches by reference), then [`decode_response_frame`]`(frame) -> (correlation_id, body)` and
//!   [`decode_response`]`(api_key, api_version, body)`.
//! - Messages live in [`messages`], one module per API; [`Request`] and [`Response`] have one
//!   variant per API. Produce request records are `Option<Bytes>` slices of the frame; fetch
//!   response records are [`Records`], chunks written by reference.

#[macro_use]
mod macros;

pub mod api_key;
pub mod error;
pub mod error_code;
mod error_response;
pub mod frame;
pub mod header;
pub mod limits;
pub mod messages;
pub mod primitives;

use bytes::{BufMut, Bytes, BytesMut};

pub use api_key::{ApiKey, SUPPORTED_VERSIONS};
pub use error::WireError;
pub use error_code::ErrorCode;
pub use frame::{check_frame, split_frame, ResponseFrame};
pub use header::{RequestHeader, RequestIds};
pub use messages::api_versions::{ApiVersion, ApiVersionsResponse};
pub use messages::{Request, Response};
pub use primitives::{Codec, Reader, Records, WireWrite};

use limits::FRAME_PREFIX_BYTES;

/// Decodes a request frame (the bytes after the size prefix): header, then body, which must end
/// exactly at the end of the frame. Byte fields in the result are slices of `frame`.
pub fn decode_request(frame: Bytes) -> Result<(RequestHeader, Request), WireError> {
    let mut r = Reader::new(frame);
    let ids = RequestIds::decode(&mut r)?;
    let Some(api_key) = ApiKey::from_i16(ids.api_key) else {
        return Err(WireError::UnsupportedApiKey {
            api_key: ids.api_key,
            api_version: ids.api_version,
            correlation_id: ids.correlation_id,
        });
    };
    if !api_key.supports(ids.api_version) {
        return Err(WireError::UnsupportedVersion {
            api_key,
            api_version: ids.api_version,
            correlation_id: ids.correlation_id,
        });
    }
    let header = RequestHeader::decode_rest(ids, &mut r)?;
    let request = Request::decode_body(api_key, header.api_version, &mut r)?;
    r.finish()?;
    Ok((header, request))
}

fn check_request(header: &RequestHeader, request: &Request) -> Result<(), WireError> {
    let api_key = request.api_key();
    if header.api_key != api_key.as_i16() {
        return Err(match ApiKey::from_i16(header.api_key) {
            Some(named) => WireError::ApiKeyMismatch {
                header: named,
                body: api_key,
            },
            None => WireError::UnsupportedApiKey {
                api_key: header.api_key,
                api_version: header.api_version,
                correlation_id: header.correlation_id,
            },
        });
    }
    if !api_key.supports(header.api_version) {
        return Err(WireError::UnsupportedVersion {
            api_key,
            api_version: header.api_version,
            correlation_id: header.correlation_id,
        });
    }
    Ok(())
}

/// Appends a whole request frame, size prefix included, to `out`. On error `out` is left as it
/// was.
pub fn encode_request(
    header: &RequestHeader,
    request: &Request,
    out: &mut BytesMut,
) -> Result<(), WireError> {
    check_request(header, request)?;
    let start = out.len();
    out.put_i32(0);
    let result = header
        .encode(out)
        .and_then(|()| request.encode_body(out, header.api_version))
        .and_then(|()| {
            let body = out.len() - start - FRAME_PREFIX_BYTES;
            i32::try_from(body).map_err(|_| WireError::TooLongToEncode {
                field: "frame",
                len: body,
            })
        });
    match result {
        Ok(size) => {
            out[start..start + FRAME_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// Encodes a request frame into `frame`, keeping large byte fields (produce records) by
/// reference for a vectored write.
pub fn encode_request_frame(
    header: &RequestHeader,
    request: &Request,
    frame: &mut ResponseFrame,
) -> Result<(), WireError> {
    check_request(header, request)?;
    frame.begin();
    header.encode(frame)?;
    request.encode_body(frame, header.api_version)?;
    frame.finish()
}

/// Encodes a response frame (size prefix, correlation id, body) into `frame`, replacing what it
/// held. The version must be a supported one, except that an ApiVersions response may always be
/// encoded at version 0 (the KIP-511 answer to a newer request).
pub fn encode_response(
    correlation_id: i32,
    api_version: i16,
    response: &Response,
    frame: &mut ResponseFrame,
) -> Result<(), WireError> {
    let api_key = response.api_key();
    if !api_key.supports(api_version) {
        return Err(WireError::UnsupportedVersion {
            api_key,
            api_version,
            correlation_id,
        });
    }
    frame.begin();
    frame.put(&correlation_id.to_be_bytes());
    response.encode_body(frame, api_version)?;
    frame.finish()
}

/// Splits a response frame (after the size prefix) into its correlation id and body.
pub fn decode_response_frame(mut frame: Bytes) -> Result<(i32, Bytes), WireError> {
    let mut r = Reader::new(frame.clone());
    let correlation_id = r.i32().map_err(|e| e.at("ResponseHeader.correlation_id"))?;
    let body = frame.split_off(FRAME_PREFIX_BYTES);
    Ok((correlation_id, body))
}

/// Decodes a response body (after the correlation id) for a request sent as `api_key` at
/// `api_version`. An ApiVersions response with a non-zero error code is read in the v0 layout,
/// as KIP-511 prescribes for a broker that does not support the requested version.
pub fn decode_response(
    api_key: ApiKey,
    api_version: i16,
    body: Bytes,
) -> Result<Response, WireError> {
    let mut version = api_version;
    if api_key == ApiKey::ApiVersions && body.get(..2).is_some_and(|code| code != [0, 0]) {
        version = 0;
    } else if !api_key.supports(api_version) {
        return Err(WireError::UnsupportedVersion {
            api_key,
            api_version,
            correlation_id: 0,
        });
    }
    let mut r = Reader::new(body);
    let response = Response::decode_body(api_key, version, &mut r)?;
    r.finish()?;
    Ok(response)
}

/// Sluice's ApiVersions answer listing [`SUPPORTED_VERSIONS`], with `error_code`: `NONE` normally,
/// `UNSUPPORTED_VERSION` for a request newer than version 2 (then encode it at version 0).
pub fn api_versions_response(error_code: ErrorCode) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: error_code.as_i16(),
        api_keys: SUPPORTED_VERSIONS
            .iter()
            .map(|&(key, min, max)| ApiVersion {
                api_key: key.as_i16(),
                min_version: min,
                max_version: max,
            })
            .collect(),
        throttle_time_ms: 0,
    }
}
