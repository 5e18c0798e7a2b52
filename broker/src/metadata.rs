//! Topic and partition metadata the broker serves: topics, partitions, configs, leaders.
//!
//! - [`registry`]: [`TopicRegistry`], the topics with their partition counts and Kafka configs,
//!   persisted atomically in `<data_dir>/topics.json` so they survive restarts. Deleting a topic is
//!   two-phase (marked `deleting`, files removed, entry dropped) so a crash in between is finished
//!   at the next start instead of leaving orphan files.
//! - [`producer_ids`]: [`ProducerIdAllocator`], persistent producer-id allocation for
//!   InitProducerId: ids are reserved on disk in blocks, never handed out twice, even after
//!   `kill -9`.
//! - [`store`]: the checksummed, atomically replaced small-file format both use.
//! - [`topic_name`]: Kafka's topic-name rules.
//!
//! Replication (issue 7) will move the registry's contents into its replicated metadata log; the
//! registry's methods are the seam.

pub mod producer_ids;
pub mod registry;
pub mod store;
pub mod topic_name;

pub use producer_ids::ProducerIdAllocator;
pub use registry::{MetadataError, TopicInfo, TopicRegistry, TopicState};
