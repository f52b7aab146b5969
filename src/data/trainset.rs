//! The training events with dense ids, grouped by user.
//!
//! Models learn from a [`TrainSet`]: its [`IdMap`]s define which users and items
//! a model knows; anyone else is "cold". Events stay sorted by user then time,
//! with CSR-style offsets so a user's history is one slice.

use super::events::{EventKind, EventLog};
use super::ids::IdMap;

/// Training events indexed by dense user and item ids.
#[derive(Debug, Clone)]
pub struct TrainSet {
    /// Users seen in training.
    pub users: IdMap,
    /// Items seen in training.
    pub items: IdMap,
    /// Dense user of each event.
    pub user: Vec<u32>,
    /// Dense item of each event.
    pub item: Vec<u32>,
    /// Time of each event, UTC milliseconds.
    pub timestamp_ms: Vec<i64>,
    /// Kind of each event.
    pub kind: Vec<EventKind>,
    /// User `u`'s events are `user_offsets[u]..user_offsets[u + 1]`.
    pub user_offsets: Vec<usize>,
    /// Training covers events strictly before this time.
    pub cutoff_ms: i64,
}

impl TrainSet {
    /// Index `log` (sorted by visitor then time, as loaded) for training up to `cutoff_ms`.
    pub fn new(log: &EventLog, cutoff_ms: i64) -> TrainSet {
        debug_assert!(log.visitor.windows(2).all(|w| w[0] <= w[1]));
        let mut users = IdMap::new();
        let mut items = IdMap::new();
        let mut user_offsets = vec![0];
        let mut user = Vec::with_capacity(log.len());
        let mut item = Vec::with_capacity(log.len());
        for i in 0..log.len() {
            let u = users.insert(log.visitor[i]);
            if i > 0 && user[i - 1] != u {
                user_offsets.push(i);
            }
            user.push(u);
            item.push(items.insert(log.item[i]));
        }
        if !log.is_empty() {
            user_offsets.push(log.len());
        }
        TrainSet {
            users,
            items,
            user,
            item,
            timestamp_ms: log.timestamp_ms.clone(),
            kind: log.kind.clone(),
            user_offsets,
            cutoff_ms,
        }
    }

    /// Reassemble a training set from its stored columns (a bundle's copy),
    /// checking that they fit together.
    pub fn from_parts(
        users: IdMap,
        items: IdMap,
        user_offsets: Vec<usize>,
        item: Vec<u32>,
        timestamp_ms: Vec<i64>,
        kind: Vec<EventKind>,
        cutoff_ms: i64,
    ) -> Result<TrainSet, String> {
        let n = item.len();
        if timestamp_ms.len() != n || kind.len() != n {
            return Err("event columns differ in length".into());
        }
        let expected_offsets = if n == 0 { 1 } else { users.len() + 1 };
        if user_offsets.len() != expected_offsets
            || user_offsets.first() != Some(&0)
            || user_offsets.last() != Some(&n)
            || user_offsets.windows(2).any(|w| w[0] >= w[1])
        {
            return Err("user offsets do not match the users and events".into());
        }
        if item.iter().any(|&i| i as usize >= items.len()) {
            return Err("events refer to unknown items".into());
        }
        let mut user = Vec::with_capacity(n);
        for (u, w) in user_offsets.windows(2).enumerate() {
            user.extend(std::iter::repeat_n(u as u32, w[1] - w[0]));
        }
        Ok(TrainSet {
            users,
            items,
            user,
            item,
            timestamp_ms,
            kind,
            user_offsets,
            cutoff_ms,
        })
    }

    /// Number of training events.
    pub fn len(&self) -> usize {
        self.user.len()
    }

    /// True when there are no training events.
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    /// The event index range of dense user `u`.
    pub fn user_events(&self, u: u32) -> std::ops::Range<usize> {
        self.user_offsets[u as usize]..self.user_offsets[u as usize + 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_events_by_user_with_offsets() {
        let mut log = EventLog::default();
        log.push(3, 7, EventKind::View, 1);
        log.push(1, 5, EventKind::View, 2);
        log.push(2, 5, EventKind::AddToCart, 1);
        log.sort_dedup();
        let t = TrainSet::new(&log, 10);
        assert_eq!(t.users.raw_ids(), &[5, 7]);
        assert_eq!(t.user_events(0), 0..2);
        assert_eq!(t.user_events(1), 2..3);
        assert_eq!(t.items.len(), 2);
        assert_eq!(t.item[t.user_events(1).start], t.items.get(1).unwrap());
    }
}
