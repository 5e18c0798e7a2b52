//! Kafka's consumer protocol: the subscription a member sends in JoinGroup and the assignment the
//! leader hands out in SyncGroup, as opaque bytes the broker relays without reading.
//!
//! ```text
//! Subscription = version:int16 topics:[string] user_data:nullable_bytes
//!                (v1+) owned_partitions:[topic:string partitions:[int32]] (later versions append more)
//! Assignment   = version:int16 assigned:[topic:string partitions:[int32]] user_data:nullable_bytes
//! ```
//! Arrays carry an int32 count, strings an int16 length, bytes an int32 length (-1 = null); all
//! big-endian. Decoding reads the fields it knows and ignores what a newer version appends, as
//! Kafka's clients do, and bounds every count by the bytes left before allocating.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};

/// Why subscription or assignment bytes could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// The bytes end inside a field.
    #[error("consumer protocol bytes truncated in {0}")]
    Truncated(&'static str),
    /// A negative length or count, or one larger than the bytes left.
    #[error("invalid length in {0}")]
    InvalidLength(&'static str),
    /// A string that is not UTF-8.
    #[error("invalid UTF-8 in {0}")]
    InvalidString(&'static str),
    /// A negative version.
    #[error("invalid consumer protocol version {0}")]
    InvalidVersion(i16),
}

/// What a member subscribes to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// Topic names.
    pub topics: Vec<String>,
    /// Opaque data for the assignor.
    pub user_data: Option<Bytes>,
    /// Partitions the member owns now (v1+, used by cooperative assignors).
    pub owned_partitions: BTreeMap<String, Vec<i32>>,
}

/// What a member is assigned: partitions by topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// Partitions by topic, sorted.
    pub partitions: BTreeMap<String, Vec<i32>>,
    /// Opaque data from the assignor.
    pub user_data: Option<Bytes>,
}

impl Assignment {
    /// Number of partitions assigned.
    pub fn len(&self) -> usize {
        self.partitions.values().map(Vec::len).sum()
    }

    /// Whether nothing is assigned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every (topic, partition), sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i32)> + '_ {
        self.partitions
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.as_str(), *p)))
    }
}

impl Subscription {
    /// Encodes as version 1 (with owned partitions).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(1);
        put_i32_len(&mut out, self.topics.len());
        for t in &self.topics {
            put_string(&mut out, t);
        }
        put_bytes(&mut out, self.user_data.as_ref());
        put_partitions(&mut out, &self.owned_partitions);
        out.freeze()
    }

    /// Decodes any version.
    pub fn decode(bytes: &[u8]) -> Result<Subscription, ProtocolError> {
        let mut r = Reader { bytes, pos: 0 };
        let version = r.i16("subscription version")?;
        if version < 0 {
            return Err(ProtocolError::InvalidVersion(version));
        }
        let n = r.count("subscription topics", 2)?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(r.string("subscription topic")?);
        }
        let user_data = r.nullable_bytes("subscription user data")?;
        let owned_partitions = if version >= 1 {
            r.partitions("owned partitions")?
        } else {
            BTreeMap::new()
        };
        Ok(Subscription {
            topics,
            user_data,
            owned_partitions,
        })
    }
}

impl Assignment {
    /// Encodes as version 0 (what every assignor reads).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(0);
        put_partitions(&mut out, &self.partitions);
        put_bytes(&mut out, self.user_data.as_ref());
        out.freeze()
    }

    /// Decodes any version; empty bytes (a member the leader left out) are an empty assignment.
    pub fn decode(bytes: &[u8]) -> Result<Assignment, ProtocolError> {
        if bytes.is_empty() {
            return Ok(Assignment::default());
        }
        let mut r = Reader { bytes, pos: 0 };
        let version = r.i16("assignment version")?;
        if version < 0 {
            return Err(ProtocolError::InvalidVersion(version));
        }
        let partitions = r.partitions("assigned partitions")?;
        let user_data = r.nullable_bytes("assignment user data")?;
        Ok(Assignment {
            partitions,
            user_data,
        })
    }
}

fn put_i32_len(out: &mut BytesMut, n: usize) {
    out.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
}

fn put_string(out: &mut BytesMut, s: &str) {
    // Topic names are at most 249 bytes; anything longer is cut at the int16 bound.
    let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    out.put_i16(bytes.len() as i16);
    out.put_slice(bytes);
}

fn put_bytes(out: &mut BytesMut, b: Option<&Bytes>) {
    match b {
        Some(b) => {
            put_i32_len(out, b.len());
            out.put_slice(b);
        }
        None => out.put_i32(-1),
    }
}

fn put_partitions(out: &mut BytesMut, partitions: &BTreeMap<String, Vec<i32>>) {
    put_i32_len(out, partitions.len());
    for (topic, ps) in partitions {
        put_string(out, topic);
        put_i32_len(out, ps.len());
        for p in ps {
            out.put_i32(*p);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], ProtocolError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(ProtocolError::Truncated(what))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, ProtocolError> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, ProtocolError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An int32 count of elements at least `min_element_bytes` each, bounded by the bytes left.
    fn count(
        &mut self,
        what: &'static str,
        min_element_bytes: usize,
    ) -> Result<usize, ProtocolError> {
        let n = self.i32(what)?;
        let n = usize::try_from(n).map_err(|_| ProtocolError::InvalidLength(what))?;
        if n.saturating_mul(min_element_bytes) > self.bytes.len() - self.pos {
            return Err(ProtocolError::InvalidLength(what));
        }
        Ok(n)
    }

    fn string(&mut self, what: &'static str) -> Result<String, ProtocolError> {
        let len = self.i16(what)?;
        let len = usize::try_from(len).map_err(|_| ProtocolError::InvalidLength(what))?;
        let b = self.take(len, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| ProtocolError::InvalidString(what))
    }

    fn nullable_bytes(&mut self, what: &'static str) -> Result<Option<Bytes>, ProtocolError> {
        if self.pos == self.bytes.len() {
            // Some encoders omit trailing null user data.
            return Ok(None);
        }
        let len = self.i32(what)?;
        if len < 0 {
            return Ok(None);
        }
        let b = self.take(len as usize, what)?;
        Ok(Some(Bytes::copy_from_slice(b)))
    }

    fn partitions(
        &mut self,
        what: &'static str,
    ) -> Result<BTreeMap<String, Vec<i32>>, ProtocolError> {
        let mut out = BTreeMap::new();
        if self.pos == self.bytes.len() {
            return Ok(out);
        }
        let n = self.count(what, 6)?;
        for _ in 0..n {
            let topic = self.string(what)?;
            let m = self.count(what, 4)?;
            let mut ps = Vec::with_capacity(m);
            for _ in 0..m {
                ps.push(self.i32(what)?);
            }
            ps.sort_unstable();
            out.entry(topic).or_insert_with(Vec::new).extend(ps);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let sub = Subscription {
            topics: vec!["a".into(), "b".into()],
            user_data: Some(Bytes::from_static(b"u")),
            owned_partitions: BTreeMap::from([("a".to_string(), vec![0, 2])]),
        };
        assert_eq!(Subscription::decode(&sub.encode()).unwrap(), sub);
        let asg = Assignment {
            partitions: BTreeMap::from([("a".to_string(), vec![1, 3])]),
            user_data: None,
        };
        assert_eq!(Assignment::decode(&asg.encode()).unwrap(), asg);
        assert_eq!(Assignment::decode(&[]).unwrap(), Assignment::default());
    }

    #[test]
    fn decodes_a_v0_subscription_from_kafkas_layout() {
        // version 0, topics ["t"], user_data null
        let bytes = [0, 0, 0, 0, 0, 1, 0, 1, b't', 255, 255, 255, 255];
        let sub = Subscription::decode(&bytes).unwrap();
        assert_eq!(sub.topics, vec!["t".to_string()]);
        assert_eq!(sub.user_data, None);
    }

    #[test]
    fn hostile_counts_are_errors_not_allocations() {
        let cases: &[&[u8]] = &[
            &[0, 0, 0x7f, 0xff, 0xff, 0xff],
            &[0, 0, 0xff, 0xff, 0xff, 0xff],
            &[0, 0, 0, 0, 0, 1, 0, 9, b'x'],
            &[0xff, 0xff],
        ];
        for bytes in cases {
            assert!(Subscription::decode(bytes).is_err(), "{bytes:?}");
        }
        assert!(Assignment::decode(&[0, 0, 0x7f, 0, 0, 0]).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever another member sends, decoding never panics nor over-allocates.
        #[test]
        fn arbitrary_bytes_are_decoded_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = Subscription::decode(&bytes);
            let _ = Assignment::decode(&bytes);
        }

        #[test]
        fn assignment_round_trips(parts in proptest::collection::btree_map("[a-z]{1,10}", proptest::collection::vec(0i32..1000, 0..10), 0..5)) {
            let mut partitions = parts;
            for ps in partitions.values_mut() {
                ps.sort_unstable();
            }
            let a = Assignment { partitions, user_data: None };
            prop_assert_eq!(Assignment::decode(&a.encode()).unwrap(), a);
        }
    }
}
