//! Kafka's numbered error codes: [`ErrorCode`] with each code's name, retriable flag and message,
//! as one table ([`ERROR_CODES`]) mirroring Kafka's `Errors` enum. Codes are never reused, so an
//! unknown code from a newer peer is kept as a number and reported as such.

/// Facts about one error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The code on the wire.
    pub code: ErrorCode,
    /// Kafka's name for it, e.g. `UNKNOWN_TOPIC_OR_PARTITION`.
    pub name: &'static str,
    /// True when a client may retry the same request and expect it to succeed.
    pub retriable: bool,
    /// Kafka's one-line description.
    pub message: &'static str,
}

/// A Kafka error code (an int16 on the wire). `ErrorCode::NONE` (0) means success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ErrorCode(pub i16);

macro_rules! error_codes {
    ($( $name:ident = $code:literal, $retriable:literal, $message:literal; )*) => {
        #[allow(missing_docs)]
        impl ErrorCode {
            $( pub const $name: ErrorCode = ErrorCode($code); )*
        }

        /// Every known error code in numeric order.
        pub const ERROR_CODES: &[ErrorInfo] = &[
            $( ErrorInfo {
                code: ErrorCode($code),
                name: stringify!($name),
                retriable: $retriable,
                message: $message,
            }, )*
        ];
    };
}

error_codes! {
    UNKNOWN_SERVER_ERROR = -1, false, "The server experienced an unexpected error when processing the request.";
    NONE = 0, false, "No error.";
    OFFSET_OUT_OF_RANGE = 1, false, "The requested offset is not within the range of offsets maintained by the server.";
    CORRUPT_MESSAGE = 2, true, "The message contents does not match its CRC, or a record batch is otherwise invalid.";
    UNKNOWN_TOPIC_OR_PARTITION = 3, true, "This server does not host this topic-partition.";
    INVALID_FETCH_SIZE = 4, false, "The requested fetch size is invalid.";
    LEADER_NOT_AVAILABLE = 5, true, "There is no leader for this topic-partition as we are in the middle of a leadership election.";
    NOT_LEADER_OR_FOLLOWER = 6, true, "This server is not the leader or a follower for that topic-partition.";
    REQUEST_TIMED_OUT = 7, true, "The request timed out.";
    BROKER_NOT_AVAILABLE = 8, false, "The broker is not available.";
    REPLICA_NOT_AVAILABLE = 9, true, "The replica is not available for the requested topic-partition.";
    MESSAGE_TOO_LARGE = 10, false, "The request included a message larger than the max message size the server will accept.";
    STALE_CONTROLLER_EPOCH = 11, false, "The controller moved to another broker.";
    OFFSET_METADATA_TOO_LARGE = 12, false, "The metadata field of the offset request was too large.";
    NETWORK_EXCEPTION = 13, true, "The server disconnected before a response was received.";
    COORDINATOR_LOAD_IN_PROGRESS = 14, true, "The coordinator is loading and hence can't process requests.";
    COORDINATOR_NOT_AVAILABLE = 15, true, "The coordinator is not available.";
    NOT_COORDINATOR = 16, true, "This is not the correct coordinator.";
    INVALID_TOPIC_EXCEPTION = 17, false, "The request attempted to perform an operation on an invalid topic.";
    RECORD_LIST_TOO_LARGE = 18, false, "The request included message batch larger than the configured segment size on the server.";
    NOT_ENOUGH_REPLICAS = 19, true, "Messages are rejected since there are fewer in-sync replicas than required.";
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20, true, "Messages are written to the log, but to fewer in-sync replicas than required.";
    INVALID_REQUIRED_ACKS = 21, false, "Produce request specified an invalid value for required acks.";
    ILLEGAL_GENERATION = 22, false, "Specified group generation id is not valid.";
    INCONSISTENT_GROUP_PROTOCOL = 23, false, "The group member's supported protocols are incompatible with those of existing members or first group member tried to join with empty protocol type or empty protocol list.";
    INVALID_GROUP_ID = 24, false, "The configured groupId is invalid.";
    UNKNOWN_MEMBER_ID = 25, false, "The coordinator is not aware of this member.";
    INVALID_SESSION_TIMEOUT = 26, false, "The session timeout is not within the range allowed by the broker.";
    REBALANCE_IN_PROGRESS = 27, false, "The group is rebalancing, so a rejoin is needed.";
    INVALID_COMMIT_OFFSET_SIZE = 28, false, "The committing offset data size is not valid.";
    TOPIC_AUTHORIZATION_FAILED = 29, false, "Topic authorization failed.";
    GROUP_AUTHORIZATION_FAILED = 30, false, "Group authorization failed.";
    CLUSTER_AUTHORIZATION_FAILED = 31, false, "Cluster authorization failed.";
    INVALID_TIMESTAMP = 32, false, "The timestamp of the message is out of acceptable range.";
    UNSUPPORTED_SASL_MECHANISM = 33, false, "The broker does not support the requested SASL mechanism.";
    ILLEGAL_SASL_STATE = 34, false, "Request is not valid given the current SASL state.";
    UNSUPPORTED_VERSION = 35, false, "The version of API is not supported.";
    TOPIC_ALREADY_EXISTS = 36, false, "Topic with this name already exists.";
    INVALID_PARTITIONS = 37, false, "Number of partitions is below 1.";
    INVALID_REPLICATION_FACTOR = 38, false, "Replication factor is below 1 or larger than the number of available brokers.";
    INVALID_REPLICA_ASSIGNMENT = 39, false, "Replica assignment is invalid.";
    INVALID_CONFIG = 40, false, "Configuration is invalid.";
    NOT_CONTROLLER = 41, true, "This is not the correct controller for this cluster.";
    INVALID_REQUEST = 42, false, "This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker.";
    UNSUPPORTED_FOR_MESSAGE_FORMAT = 43, false, "The message format version on the broker does not support the request.";
    POLICY_VIOLATION = 44, false, "Request parameters do not satisfy the configured policy.";
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45, false, "The broker received an out of order sequence number.";
    DUPLICATE_SEQUENCE_NUMBER = 46, false, "The broker received a duplicate sequence number.";
    INVALID_PRODUCER_EPOCH = 47, false, "Producer attempted to produce with an old epoch.";
    INVALID_TXN_STATE = 48, false, "The producer attempted a transactional operation in an invalid state.";
    INVALID_PRODUCER_ID_MAPPING = 49, false, "The producer attempted to use a producer id which is not currently assigned to its transactional id.";
    INVALID_TRANSACTION_TIMEOUT = 50, false, "The transaction timeout is larger than the maximum value allowed by the broker.";
    CONCURRENT_TRANSACTIONS = 51, true, "The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing.";
    TRANSACTION_COORDINATOR_FENCED = 52, false, "Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator for a given producer.";
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53, false, "Transactional Id authorization failed.";
    SECURITY_DISABLED = 54, false, "Security features are disabled.";
    OPERATION_NOT_ATTEMPTED = 55, false, "The broker did not attempt to execute this operation.";
    KAFKA_STORAGE_ERROR = 56, true, "Disk error when trying to access log file on the disk.";
    LOG_DIR_NOT_FOUND = 57, false, "The user-specified log directory is not found in the broker config.";
    SASL_AUTHENTICATION_FAILED = 58, false, "SASL Authentication failed.";
    UNKNOWN_PRODUCER_ID = 59, false, "The broker could not locate the producer metadata associated with the producer id.";
    REASSIGNMENT_IN_PROGRESS = 60, false, "A partition reassignment is in progress.";
    DELEGATION_TOKEN_AUTH_DISABLED = 61, false, "Delegation Token feature is not enabled.";
    DELEGATION_TOKEN_NOT_FOUND = 62, false, "Delegation Token is not found on server.";
    DELEGATION_TOKEN_OWNER_MISMATCH = 63, false, "Specified Principal is not valid Owner/Renewer.";
    DELEGATION_TOKEN_REQUEST_NOT_ALLOWED = 64, false, "Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels and on delegation token authenticated channels.";
    DELEGATION_TOKEN_AUTHORIZATION_FAILED = 65, false, "Delegation Token authorization failed.";
    DELEGATION_TOKEN_EXPIRED = 66, false, "Delegation Token is expired.";
    INVALID_PRINCIPAL_TYPE = 67, false, "Supplied principalType is not supported.";
    NON_EMPTY_GROUP = 68, false, "The group is not empty.";
    GROUP_ID_NOT_FOUND = 69, false, "The group id does not exist.";
    FETCH_SESSION_ID_NOT_FOUND = 70, true, "The fetch session ID was not found.";
    INVALID_FETCH_SESSION_EPOCH = 71, true, "The fetch session epoch is invalid.";
    LISTENER_NOT_FOUND = 72, true, "There is no listener on the leader broker that matches the listener on which metadata request was processed.";
    TOPIC_DELETION_DISABLED = 73, false, "Topic deletion is disabled.";
    FENCED_LEADER_EPOCH = 74, true, "The leader epoch in the request is older than the epoch on the broker.";
    UNKNOWN_LEADER_EPOCH = 75, true, "The leader epoch in the request is newer than the epoch on the broker.";
    UNSUPPORTED_COMPRESSION_TYPE = 76, false, "The requesting client does not support the compression type of given partition.";
    STALE_BROKER_EPOCH = 77, false, "Broker epoch has changed.";
    OFFSET_NOT_AVAILABLE = 78, true, "The leader high watermark has not caught up from a recent leader election so the offsets cannot be guaranteed to be monotonically increasing.";
    MEMBER_ID_REQUIRED = 79, false, "The group member needs to have a valid member id before actually entering a consumer group.";
    PREFERRED_LEADER_NOT_AVAILABLE = 80, true, "The preferred leader was not available.";
    GROUP_MAX_SIZE_REACHED = 81, false, "The consumer group has reached its max size.";
    FENCED_INSTANCE_ID = 82, false, "The broker rejected this static consumer since another consumer with the same group.instance.id has registered with a different member.id.";
    ELIGIBLE_LEADERS_NOT_AVAILABLE = 83, true, "Eligible topic partition leaders are not available.";
    ELECTION_NOT_NEEDED = 84, true, "Leader election not needed for topic partition.";
    NO_REASSIGNMENT_IN_PROGRESS = 85, false, "No partition reassignment is in progress.";
    GROUP_SUBSCRIBED_TO_TOPIC = 86, false, "Deleting offsets of a topic is forbidden while the consumer group is actively subscribed to it.";
    INVALID_RECORD = 87, false, "This record has failed the validation on broker and hence will be rejected.";
    UNSTABLE_OFFSET_COMMIT = 88, true, "There are unstable offsets that need to be cleared.";
    THROTTLING_QUOTA_EXCEEDED = 89, true, "The throttling quota has been exceeded.";
    PRODUCER_FENCED = 90, false, "There is a newer producer with the same transactionalId which fences the current one.";
    RESOURCE_NOT_FOUND = 91, false, "A request illegally referred to a resource that does not exist.";
    DUPLICATE_RESOURCE = 92, false, "A request illegally referred to the same resource twice.";
    UNACCEPTABLE_CREDENTIAL = 93, false, "Requested credential would not meet criteria for acceptability.";
    INCONSISTENT_VOTER_SET = 94, false, "Indicates that the either the sender or recipient of a voter-only request is not one of the expected voters.";
    INVALID_UPDATE_VERSION = 95, false, "The given update version was invalid.";
    FEATURE_UPDATE_FAILED = 96, false, "Unable to update finalized features due to an unexpected server error.";
    PRINCIPAL_DESERIALIZATION_FAILURE = 97, false, "Request principal deserialization failed during forwarding.";
    SNAPSHOT_NOT_FOUND = 98, false, "Requested snapshot was not found.";
    POSITION_OUT_OF_RANGE = 99, false, "Requested position is not greater than or equal to zero, and less than the size of the snapshot.";
    UNKNOWN_TOPIC_ID = 100, true, "This server does not host this topic ID.";
    DUPLICATE_BROKER_REGISTRATION = 101, false, "This broker ID is already in use.";
    BROKER_ID_NOT_REGISTERED = 102, false, "The given broker ID was not registered.";
    INCONSISTENT_TOPIC_ID = 103, true, "The log's topic ID did not match the topic ID in the request.";
    INCONSISTENT_CLUSTER_ID = 104, false, "The clusterId in the request does not match that found on the server.";
    TRANSACTIONAL_ID_NOT_FOUND = 105, false, "The transactionalId could not be found.";
    FETCH_SESSION_TOPIC_ID_ERROR = 106, true, "The fetch session encountered inconsistent topic ID usage.";
    INELIGIBLE_REPLICA = 107, false, "The new ISR contains at least one ineligible replica.";
    NEW_LEADER_ELECTED = 108, false, "The AlterPartition request successfully updated the partition state but the leader has changed.";
}

impl ErrorCode {
    /// The table entry for this code, if it is a known one.
    pub fn info(self) -> Option<&'static ErrorInfo> {
        // The table is sorted by code: -1 then 0, 1, 2, ...
        ERROR_CODES
            .binary_search_by_key(&self.0, |e| e.code.0)
            .ok()
            .and_then(|i| ERROR_CODES.get(i))
    }

    /// Kafka's name, or `UNKNOWN_ERROR_CODE` for a code not in the table.
    pub fn name(self) -> &'static str {
        self.info().map_or("UNKNOWN_ERROR_CODE", |e| e.name)
    }

    /// True when a client may retry.
    pub fn is_retriable(self) -> bool {
        self.info().is_some_and(|e| e.retriable)
    }

    /// Kafka's description, or a generic one for an unknown code.
    pub fn message(self) -> &'static str {
        self.info()
            .map_or("An error code this version of Sluice does not know.", |e| {
                e.message
            })
    }

    /// True for `NONE`.
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// The code as sent on the wire.
    pub fn as_i16(self) -> i16 {
        self.0
    }
}

impl From<i16> for ErrorCode {
    fn from(code: i16) -> Self {
        ErrorCode(code)
    }
}

impl From<ErrorCode> for i16 {
    fn from(code: ErrorCode) -> Self {
        code.0
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_dense() {
        for (i, e) in ERROR_CODES.iter().enumerate() {
            assert_eq!(i64::from(e.code.0), i as i64 - 1, "{}", e.name);
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(ErrorCode::UNSUPPORTED_VERSION.0, 35);
        assert_eq!(ErrorCode(35).name(), "UNSUPPORTED_VERSION");
        assert!(ErrorCode::NOT_LEADER_OR_FOLLOWER.is_retriable());
        assert!(!ErrorCode::MESSAGE_TOO_LARGE.is_retriable());
        assert_eq!(ErrorCode(-1).name(), "UNKNOWN_SERVER_ERROR");
        assert_eq!(ErrorCode(30000).name(), "UNKNOWN_ERROR_CODE");
        assert_eq!(ErrorCode::MEMBER_ID_REQUIRED.0, 79);
        assert_eq!(ErrorCode::NONE.to_string(), "NONE (0)");
    }
}
