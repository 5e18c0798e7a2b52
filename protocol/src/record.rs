//! RecordBatch v2: the stored, served and replicated unit (see the crate docs).
