//! The table of requests awaiting a response on one connection: correlation ids handed out in
//! order, each matched to the waiter that sent it. A synchronous core, shared by the sending side
//! and the reader task behind a mutex, so response matching is tested without sockets.

use std::collections::HashMap;

/// Requests in flight on one connection, keyed by correlation id.
#[derive(Debug)]
pub struct Pending<W> {
    next_id: i32,
    waiting: HashMap<i32, W>,
}

impl<W> Default for Pending<W> {
    fn default() -> Self {
        Pending {
            next_id: 0,
            waiting: HashMap::new(),
        }
    }
}

impl<W> Pending<W> {
    /// The next correlation id, for a request that expects no response (acks=0 produce).
    pub fn next_id(&mut self) -> i32 {
        let id = self.next_id;
        // Correlation ids are non-negative and wrap; collisions would need 2^31 requests in flight.
        self.next_id = if id == i32::MAX { 0 } else { id + 1 };
        id
    }

    /// Registers a waiter and returns the correlation id its request must carry.
    pub fn register(&mut self, waiter: W) -> i32 {
        let id = self.next_id();
        self.waiting.insert(id, waiter);
        id
    }

    /// The waiter for a response carrying `correlation_id`, removed; `None` if it gave up (timed
    /// out) or the id was never issued.
    pub fn complete(&mut self, correlation_id: i32) -> Option<W> {
        self.waiting.remove(&correlation_id)
    }

    /// Forgets a waiter that gave up.
    pub fn cancel(&mut self, correlation_id: i32) {
        self.waiting.remove(&correlation_id);
    }

    /// Every waiter, removed (the connection failed).
    pub fn drain(&mut self) -> Vec<W> {
        self.waiting.drain().map(|(_, w)| w).collect()
    }

    /// Number of requests awaiting a response.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// True if no request awaits a response.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_match_their_requests_in_any_order() {
        let mut p = Pending::default();
        let a = p.register("a");
        let b = p.register("b");
        let c = p.register("c");
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(p.complete(c), Some("c"));
        assert_eq!(p.complete(a), Some("a"));
        assert_eq!(p.complete(a), None, "a response is delivered once");
        assert_eq!(p.complete(99), None, "unknown ids are ignored");
        assert_eq!(p.len(), 1);
        p.cancel(b);
        assert!(p.is_empty());
    }

    #[test]
    fn ids_skip_unanswered_requests_and_wrap() {
        let mut p: Pending<()> = Pending::default();
        assert_eq!(p.next_id(), 0);
        assert_eq!(p.register(()), 1);
        p.next_id = i32::MAX;
        assert_eq!(p.register(()), i32::MAX);
        assert_eq!(p.register(()), 0);
        assert_eq!(p.drain().len(), 3);
        assert!(p.is_empty());
    }
}
