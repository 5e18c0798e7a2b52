//! The broker-to-broker protocol (`--peer-listen`): metadata Raft RPCs and follower fetches on one
//! TCP connection per peer pair.
//!
//! Frame layout, big-endian: u32 length of the rest (<= [`PEER_FRAME_BYTES_MAX`]), u32 length of
//! the header, the header as JSON ([`PeerFrame`]: correlation id and a request or response), then
//! raw bytes: the record batches of a fetch response exactly as stored (no re-encoding), empty
//! otherwise. Decoding is pure ([`decode_frame`]) and distinguishes "need more bytes" (`Ok(None)`)
//! from garbage (`Err`, which closes the connection). [`transport`] has the TCP client and server
//! and the openraft network over them.

pub mod transport;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use super::controller::{CommandOutcome, MetadataCommand, MetadataError};
use super::epoch::EpochEndOffset;
use super::limits::{PEER_FETCH_BYTES_MAX, PEER_FRAME_BYTES_MAX};
use super::message::{FetchRequest, ReplicaError, TopicPartition};
use super::raft::TypeConfig;

const LEN_BYTES: usize = 4;

/// A request from one broker to another.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
pub enum PeerRequest {
    /// Raft AppendEntries for the metadata log.
    RaftAppend(AppendEntriesRequest<TypeConfig>),
    /// Raft RequestVote.
    RaftVote(VoteRequest<u64>),
    /// Raft InstallSnapshot (one chunk).
    RaftInstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Propose a metadata command (sent to the metadata leader, the active controller).
    Propose(MetadataCommand),
    /// A broker's liveness heartbeat to the active controller.
    Heartbeat {
        /// Broker id.
        id: i32,
        /// Its incarnation.
        incarnation: u64,
    },
    /// A follower's fetch of one partition.
    Fetch {
        /// The partition.
        tp: TopicPartition,
        /// The id of the topic incarnation the follower replicates (Kafka's topic ids in Fetch):
        /// a replica of a deleted topic must not fetch from one created again under its name.
        /// 0 (from a node of an earlier version, during a rolling upgrade): not checked.
        #[serde(default)]
        topic_id: u64,
        /// The fetch.
        req: FetchRequest,
        /// Most record bytes wanted (capped at [`PEER_FETCH_BYTES_MAX`]).
        max_bytes: u32,
    },
}

/// The answer to a [`PeerRequest`].
#[derive(Debug, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
pub enum PeerResponse {
    /// AppendEntries answer.
    RaftAppend(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    /// RequestVote answer.
    RaftVote(Result<VoteResponse<u64>, RaftError<u64>>),
    /// InstallSnapshot answer.
    RaftInstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    /// Fetch answer; the records follow the header in the frame.
    Fetch {
        /// Echo of the fetch id.
        fetch_id: u64,
        /// High watermark and divergence, or the refusal.
        result: Result<FetchHeader, ReplicaError>,
    },
    /// A proposal's outcome once applied, or why it was not proposed (not the leader, ...).
    Proposed(Result<Result<CommandOutcome, MetadataError>, String>),
    /// Heartbeat answer: false if this peer is not the active controller.
    Heartbeat(bool),
    /// The peer could not serve the request (not a controller node, unknown partition, ...).
    Unavailable(String),
}

/// A fetch answer without its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchHeader {
    /// The leader's high watermark.
    pub high_watermark: i64,
    /// The leader's log start offset (-1 from a node of an earlier version: not followed).
    #[serde(default = "super::message::unknown_offset")]
    pub log_start_offset: i64,
    /// Set when the follower must truncate.
    pub diverging: Option<EpochEndOffset>,
}

/// Either side of a call.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerBody {
    /// A request.
    Request(PeerRequest),
    /// A response.
    Response(PeerResponse),
}

/// A frame's header.
#[derive(Debug, Serialize, Deserialize)]
pub struct PeerFrame {
    /// Matches a response to its request.
    pub correlation_id: u64,
    /// The message.
    pub body: PeerBody,
}

/// Why a frame could not be encoded or decoded. Any of these closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The length prefix exceeds [`PEER_FRAME_BYTES_MAX`].
    #[error("peer frame of {0} bytes exceeds the limit")]
    FrameTooLarge(u64),
    /// The header length does not fit in the frame.
    #[error("peer frame header length {header} exceeds the frame's {frame} bytes")]
    BadHeaderLength {
        /// Header length claimed.
        header: u32,
        /// Frame length.
        frame: u32,
    },
    /// The header is not a valid message.
    #[error("undecodable peer frame header: {0}")]
    BadHeader(String),
    /// A fetch asked for more than [`PEER_FETCH_BYTES_MAX`].
    #[error("fetch of {0} bytes exceeds the limit")]
    FetchTooLarge(u32),
    /// The connection failed or closed mid-frame.
    #[error("peer connection: {0}")]
    Io(#[from] std::io::Error),
    /// No answer within the call timeout.
    #[error("peer call timed out")]
    Timeout,
    /// The answer was not the kind the request expects.
    #[error("unexpected peer answer: {0}")]
    Unexpected(String),
}

/// Appends one frame: `frame` as the header, then `tail` (record batches) as they are.
pub fn encode_frame(
    frame: &PeerFrame,
    tail: &[Bytes],
    out: &mut BytesMut,
) -> Result<(), PeerError> {
    if let PeerBody::Request(PeerRequest::Fetch { max_bytes, .. }) = &frame.body {
        if *max_bytes > PEER_FETCH_BYTES_MAX {
            return Err(PeerError::FetchTooLarge(*max_bytes));
        }
    }
    let header = serde_json::to_vec(frame).map_err(|e| PeerError::BadHeader(e.to_string()))?;
    let tail_len: usize = tail.iter().map(Bytes::len).sum();
    let total = (LEN_BYTES + header.len() + tail_len) as u64;
    if total > u64::from(PEER_FRAME_BYTES_MAX) {
        return Err(PeerError::FrameTooLarge(total));
    }
    out.reserve(LEN_BYTES + total as usize);
    out.put_u32(total as u32);
    out.put_u32(header.len() as u32);
    out.put_slice(&header);
    for chunk in tail {
        out.put_slice(chunk);
    }
    Ok(())
}

/// Takes one whole frame off the front of `buf`: `Ok(None)` until it has arrived; the tail bytes
/// come back as a slice of the buffer (no copy).
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<(PeerFrame, Bytes)>, PeerError> {
    if buf.len() < LEN_BYTES {
        return Ok(None);
    }
    let total = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if total > PEER_FRAME_BYTES_MAX {
        return Err(PeerError::FrameTooLarge(u64::from(total)));
    }
    if (total as usize) < LEN_BYTES {
        return Err(PeerError::BadHeaderLength {
            header: 0,
            frame: total,
        });
    }
    if buf.len() < LEN_BYTES + total as usize {
        // Reserve what the frame needs (bounded above) so the reader fills it in few reads.
        buf.reserve(LEN_BYTES + total as usize - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(LEN_BYTES + total as usize).freeze();
    frame.advance(LEN_BYTES);
    let header_len = frame.get_u32();
    if header_len as usize > frame.len() {
        return Err(PeerError::BadHeaderLength {
            header: header_len,
            frame: total,
        });
    }
    let header = frame.split_to(header_len as usize);
    let parsed: PeerFrame =
        serde_json::from_slice(&header).map_err(|e| PeerError::BadHeader(e.to_string()))?;
    if let PeerBody::Request(PeerRequest::Fetch { max_bytes, .. }) = &parsed.body {
        if *max_bytes > PEER_FETCH_BYTES_MAX {
            return Err(PeerError::FetchTooLarge(*max_bytes));
        }
    }
    Ok(Some((parsed, frame)))
}

#[cfg(test)]
mod tests;
