//! Request and response headers.
//!
//! Sluice speaks only non-flexible versions, so requests carry header v1 (`api_key int16,
//! api_version int16, correlation_id int32, client_id nullable string`) and responses header v0
//! (`correlation_id int32`). The one exception, a flexible ApiVersions v3+ request (header v2), is
//! answered from its first 8 bytes alone (see [`RequestIds`]).

use super::error::WireError;
use super::primitives::{Codec, Reader, WireWrite};

/// The header of every request Sluice accepts (Kafka request header v1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestHeader {
    /// The API key (kept numeric so an unknown key can be reported).
    pub api_key: i16,
    /// The API version.
    pub api_version: i16,
    /// Echoed in the response so the client can match it to the request.
    pub correlation_id: i32,
    /// The client's self-declared id, for logs and quotas.
    pub client_id: Option<String>,
}

/// The first 8 bytes of every request header, in every header version: enough to answer a
/// request whose body (or rest of the header) Sluice does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestIds {
    /// The API key.
    pub api_key: i16,
    /// The API version.
    pub api_version: i16,
    /// The correlation id.
    pub correlation_id: i32,
}

impl RequestIds {
    /// The ids at the start of a request frame, if it has 8 bytes: for logging a request whose
    /// body failed to decode.
    pub fn peek(frame: &[u8]) -> Option<RequestIds> {
        let b = frame.first_chunk::<8>()?;
        Some(RequestIds {
            api_key: i16::from_be_bytes([b[0], b[1]]),
            api_version: i16::from_be_bytes([b[2], b[3]]),
            correlation_id: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }

    /// Reads the ids from the start of a request frame (after the size prefix).
    pub fn decode(r: &mut Reader) -> Result<RequestIds, WireError> {
        Ok(RequestIds {
            api_key: r.i16().map_err(|e| e.at("RequestHeader.request_api_key"))?,
            api_version: r
                .i16()
                .map_err(|e| e.at("RequestHeader.request_api_version"))?,
            correlation_id: r.i32().map_err(|e| e.at("RequestHeader.correlation_id"))?,
        })
    }
}

impl RequestHeader {
    /// Writes the header (v1).
    pub fn encode<W: WireWrite>(&self, w: &mut W) -> Result<(), WireError> {
        w.put(&self.api_key.to_be_bytes());
        w.put(&self.api_version.to_be_bytes());
        w.put(&self.correlation_id.to_be_bytes());
        self.client_id
            .encode(w, 0)
            .map_err(|e| e.at("RequestHeader.client_id"))
    }

    /// Completes a header whose ids were read with [`RequestIds::decode`] by reading the client id.
    pub fn decode_rest(ids: RequestIds, r: &mut Reader) -> Result<RequestHeader, WireError> {
        let client_id = r
            .nullable_string()
            .map_err(|e| e.at("RequestHeader.client_id"))?;
        Ok(RequestHeader {
            api_key: ids.api_key,
            api_version: ids.api_version,
            correlation_id: ids.correlation_id,
            client_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_reads_the_first_eight_bytes() {
        assert_eq!(
            RequestIds::peek(&[0, 18, 0, 3, 0, 0, 0, 7, 0xff]),
            Some(RequestIds {
                api_key: 18,
                api_version: 3,
                correlation_id: 7
            })
        );
        assert_eq!(RequestIds::peek(&[0, 18, 0, 3]), None);
    }
}
