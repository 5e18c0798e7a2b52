//! The Yahoo Streaming Benchmark's data: ad events as JSON, 100 campaigns x 10 ads, and the static
//! ad -> campaign table (YSB keeps it in Redis; here it is derived from the ids, so `generate`,
//! `run` and `check` agree without a store).

use serde::Deserialize;
use sluice_stream::hash::FxHashMap;

/// Campaigns in the table.
pub const CAMPAIGNS: usize = 100;
/// Ads per campaign.
pub const ADS_PER_CAMPAIGN: usize = 10;
/// The benchmark's window: 10 s of event time.
pub const WINDOW_MS: i64 = 10_000;

/// Event types, as YSB: only views are counted.
pub const EVENT_TYPES: [&str; 3] = ["view", "click", "purchase"];

/// The ad id of ad `i` (0..1000): hex-looking like YSB's UUIDs, stable.
pub fn ad_id(i: usize) -> String {
    let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5bd1_e995;
    format!("{:08x}-ad-{i:04}", x >> 32)
}

/// The campaign id of campaign `c`.
pub fn campaign_id(c: usize) -> String {
    format!("campaign-{c:03}")
}

/// The static table: ad id -> campaign index (`campaign_id` names it). Keys of the job's
/// aggregation are the small index, so the per-record work allocates nothing.
pub fn ad_table() -> FxHashMap<String, u16> {
    (0..CAMPAIGNS * ADS_PER_CAMPAIGN)
        .map(|i| (ad_id(i), (i / ADS_PER_CAMPAIGN) as u16))
        .collect()
}

/// One event as JSON (the fields YSB generates).
pub fn event_json(seq: u64, ad: usize, event_type: &str, event_time_ms: i64) -> String {
    format!(
        r#"{{"user_id":"user-{:08x}","page_id":"page-{:06x}","ad_id":"{}","ad_type":"banner","event_type":"{}","event_time":{},"ip_address":"10.0.{}.{}"}}"#,
        seq.wrapping_mul(2_654_435_761) & 0xffff_ffff,
        seq % 100_000,
        ad_id(ad),
        event_type,
        event_time_ms,
        (seq >> 8) % 256,
        seq % 256
    )
}

/// The fields the job reads, borrowed from the record's bytes.
#[derive(Debug, Deserialize)]
pub struct Event<'a> {
    /// Ad id.
    #[serde(borrow)]
    pub ad_id: &'a str,
    /// view / click / purchase.
    #[serde(borrow)]
    pub event_type: &'a str,
    /// Event time, epoch ms.
    pub event_time: i64,
}

/// Parses an event; `None` for malformed input (counted by the caller, never a panic).
pub fn parse(bytes: &[u8]) -> Option<Event<'_>> {
    serde_json::from_slice(bytes).ok()
}

/// The start of the 10 s window holding `ts`.
pub fn window_start(ts: i64) -> i64 {
    ts - ts.rem_euclid(WINDOW_MS)
}
