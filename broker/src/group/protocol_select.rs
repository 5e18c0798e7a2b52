//! Picking the group's protocol: one every member supports, the most voted.
//!
//! Each member votes for the first protocol in its own preference list that every member supports;
//! the protocol with the most votes wins, ties going to the one the first member (in member-id
//! order) prefers, so the choice is deterministic.

use super::types::JoinProtocol;

/// The candidates every member supports, in the first member's preference order.
pub fn candidates<'a, I>(members: I) -> Vec<String>
where
    I: IntoIterator<Item = &'a [JoinProtocol]>,
{
    let mut iter = members.into_iter();
    let Some(first) = iter.next() else {
        return Vec::new();
    };
    let mut names: Vec<String> = first.iter().map(|p| p.name.clone()).collect();
    for protocols in iter {
        names.retain(|name| protocols.iter().any(|p| &p.name == name));
    }
    names
}

/// Whether a member offering `protocols` can join a group whose members currently offer
/// `members`: at least one protocol must be common to all.
pub fn supports<'a, I>(members: I, protocols: &[JoinProtocol]) -> bool
where
    I: IntoIterator<Item = &'a [JoinProtocol]>,
{
    let mut iter = members.into_iter().peekable();
    if iter.peek().is_none() {
        return !protocols.is_empty();
    }
    candidates(iter)
        .iter()
        .any(|name| protocols.iter().any(|p| &p.name == name))
}

/// The most voted common protocol, or `None` when the members share none.
pub fn select<'a, I>(members: I) -> Option<String>
where
    I: IntoIterator<Item = &'a [JoinProtocol]> + Clone,
{
    let candidates = candidates(members.clone());
    let mut votes = vec![0usize; candidates.len()];
    for protocols in members {
        if let Some(index) = protocols
            .iter()
            .find_map(|p| candidates.iter().position(|c| c == &p.name))
        {
            votes[index] += 1;
        }
    }
    let mut best: Option<usize> = None;
    for (index, &n) in votes.iter().enumerate() {
        if best.is_none_or(|b| n > votes[b]) {
            best = Some(index);
        }
    }
    best.map(|index| candidates[index].clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn protos(names: &[&str]) -> Vec<JoinProtocol> {
        names
            .iter()
            .map(|n| JoinProtocol {
                name: n.to_string(),
                metadata: Bytes::new(),
            })
            .collect()
    }

    #[test]
    fn selection_table() {
        // (members' preference lists, expected selection)
        let cases: &[(&[&[&str]], Option<&str>)] = &[
            (&[&["range"]], Some("range")),
            (
                &[
                    &["range", "roundrobin"],
                    &["roundrobin", "range"],
                    &["roundrobin"],
                ],
                Some("roundrobin"),
            ),
            (
                &[
                    &["range", "roundrobin"],
                    &["range", "roundrobin"],
                    &["roundrobin", "range"],
                ],
                Some("range"),
            ),
            (&[&["a", "b"], &["b", "a"]], Some("a")),
            (&[&["a"], &["b"]], None),
            (&[&["x", "range"], &["range", "y"]], Some("range")),
        ];
        for (members, expected) in cases {
            let lists: Vec<Vec<JoinProtocol>> = members.iter().map(|m| protos(m)).collect();
            let got = select(lists.iter().map(|v| v.as_slice()));
            assert_eq!(got.as_deref(), *expected, "members {members:?}");
        }
    }

    #[test]
    fn supports_requires_a_common_protocol() {
        let group = [protos(&["range", "roundrobin"]), protos(&["roundrobin"])];
        assert!(supports(
            group.iter().map(|v| v.as_slice()),
            &protos(&["roundrobin"])
        ));
        assert!(!supports(
            group.iter().map(|v| v.as_slice()),
            &protos(&["range"])
        ));
        assert!(supports(std::iter::empty(), &protos(&["range"])));
        assert!(!supports(std::iter::empty(), &[]));
    }
}
