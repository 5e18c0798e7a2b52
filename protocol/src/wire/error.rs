//! [`WireError`]: everything that can go wrong while framing, decoding or encoding a message.
//!
//! The variants split into three families, because a server reacts to each differently:
//! - [`WireError::Incomplete`]: not an error yet, read more bytes from the socket;
//! - [`WireError::UnsupportedApiKey`] / [`WireError::UnsupportedVersion`]: the header was fine, so the
//!   request can be answered (with `UNSUPPORTED_VERSION`, see [`WireError::answer_code`]);
//! - everything else: the peer sent something invalid; log the reason and close the connection.

use super::api_key::ApiKey;
use super::error_code::ErrorCode;

/// A framing, decoding or encoding failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer holds only part of a frame: read at least `needed` more bytes.
    #[error("incomplete frame: {needed} more bytes needed")]
    Incomplete {
        /// Bytes still missing (a lower bound while the size prefix itself is incomplete).
        needed: usize,
    },
    /// A size prefix announces a frame larger than the limit.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The announced size.
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// A size prefix is negative.
    #[error("invalid frame size {size}")]
    InvalidFrameSize {
        /// The announced size.
        size: i32,
    },
    /// The request header names an API key Sluice does not implement.
    #[error("unsupported api key {api_key} (version {api_version})")]
    UnsupportedApiKey {
        /// The key from the header.
        api_key: i16,
        /// The version from the header.
        api_version: i16,
        /// The correlation id to answer with.
        correlation_id: i32,
    },
    /// The request header names a known API at a version outside Sluice's supported range.
    #[error("{api_key:?} version {api_version} is not supported")]
    UnsupportedVersion {
        /// The API.
        api_key: ApiKey,
        /// The requested version.
        api_version: i16,
        /// The correlation id to answer with.
        correlation_id: i32,
    },
    /// The message ended inside a field.
    #[error("message truncated in {field}: {needed} more bytes needed")]
    Truncated {
        /// The innermost field being read (`Struct.field`), or the primitive.
        field: &'static str,
        /// Bytes missing for that field (for an array, the minimum its count implies).
        needed: usize,
    },
    /// A field holds a value that is not valid in its position.
    #[error("malformed {field}: {reason}")]
    Malformed {
        /// The innermost field being read.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A count exceeds one of the named limits in [`super::limits`].
    #[error("{field}: {count} exceeds the limit of {max}")]
    OverLimit {
        /// The field holding the count.
        field: &'static str,
        /// The count read.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Bytes were left over after the last field of a message.
    #[error("{count} unexpected bytes after the end of the message")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// A value is too long for its length prefix (encoding only).
    #[error("{field} is too long to encode ({len})")]
    TooLongToEncode {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The message passed to an encoder is for a different API than the header or caller names.
    #[error("message is {body:?} but {header:?} was requested")]
    ApiKeyMismatch {
        /// The API named by the header or the caller.
        header: ApiKey,
        /// The API of the message.
        body: ApiKey,
    },
}

impl WireError {
    /// Names the field an error occurred in, unless a more specific (inner) field is already named.
    pub fn at(mut self, name: &'static str) -> Self {
        match &mut self {
            WireError::Truncated { field, .. }
            | WireError::Malformed { field, .. }
            | WireError::OverLimit { field, .. }
            | WireError::TooLongToEncode { field, .. }
                if field.is_empty() =>
            {
                *field = name;
            }
            _ => {}
        }
        self
    }

    /// True when the bytes so far are a valid prefix and more should be read.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, WireError::Incomplete { .. })
    }

    /// The error code to answer a request with, when the error allows an answer (the header was
    /// read, so the correlation id is known). `None` means: close the connection.
    pub fn answer_code(&self) -> Option<ErrorCode> {
        match self {
            WireError::UnsupportedVersion { .. } => Some(ErrorCode::UNSUPPORTED_VERSION),
            _ => None,
        }
    }

    /// The correlation id of the request this error belongs to, when the header was read.
    pub fn correlation_id(&self) -> Option<i32> {
        match self {
            WireError::UnsupportedApiKey { correlation_id, .. }
            | WireError::UnsupportedVersion { correlation_id, .. } => Some(*correlation_id),
            _ => None,
        }
    }
}
