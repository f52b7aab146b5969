//! The request context: who is asking, and what they did.
//!
//! Every model answers from a [`Context`], never from a bare user index, so
//! one code path serves a shopper training knew, the same shopper after a few
//! new clicks, and a brand-new shopper with two views. The context holds the
//! shopper's dense index if training knew them, their training events (a slice
//! of the [`TrainSet`], no copy) and the events received since training
//! (from the service's event store, a replay, or `recommend --events`).
//! Batch evaluation builds one context per test user with no new events.

use crate::data::{EventKind, TrainSet};

/// One event as a model sees it: a dense item of the training period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Dense item index.
    pub item: u32,
    /// What the shopper did.
    pub kind: EventKind,
    /// When, UTC ms.
    pub timestamp_ms: i64,
}

/// What a model knows about one shopper at request time.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Dense training index, `None` for a shopper training never saw.
    pub user: Option<u32>,
    /// The shopper's training events (oldest first): parallel columns.
    past_items: &'a [u32],
    past_times: &'a [i64],
    past_kinds: &'a [EventKind],
    /// Events since training, oldest first.
    pub new: &'a [Event],
    /// End of the training period, UTC ms.
    pub cutoff_ms: i64,
}

impl<'a> Context<'a> {
    /// The context of `user` (dense index of `train`, or `None`) with `new`
    /// events since training (oldest first).
    pub fn new(train: &'a TrainSet, user: Option<u32>, new: &'a [Event]) -> Context<'a> {
        let user = user.filter(|&u| (u as usize) < train.users.len());
        let range = user.map_or(0..0, |u| train.user_events(u));
        Context {
            user,
            past_items: &train.item[range.clone()],
            past_times: &train.timestamp_ms[range.clone()],
            past_kinds: &train.kind[range],
            new,
            cutoff_ms: train.cutoff_ms,
        }
    }

    /// A shopper training knew, with nothing new.
    pub fn known(train: &'a TrainSet, user: u32) -> Context<'a> {
        Context::new(train, Some(user), &[])
    }

    /// Whether anything happened since training.
    pub fn has_new(&self) -> bool {
        !self.new.is_empty()
    }

    /// Whether there is nothing at all to go on (an unknown shopper with no events).
    pub fn is_empty(&self) -> bool {
        self.past_items.is_empty() && self.new.is_empty()
    }

    /// Every event, training ones first, then the new ones, oldest first.
    pub fn events(&self) -> impl DoubleEndedIterator<Item = Event> + '_ {
        let past = (0..self.past_items.len()).map(|e| Event {
            item: self.past_items[e],
            kind: self.past_kinds[e],
            timestamp_ms: self.past_times[e],
        });
        past.chain(self.new.iter().copied())
    }

    /// The time the context describes: the end of training, or the latest new
    /// event if later. Event times, not the wall clock, so the same events give
    /// the same answer whenever they are replayed.
    pub fn now_ms(&self) -> i64 {
        self.new
            .iter()
            .map(|e| e.timestamp_ms)
            .fold(self.cutoff_ms, i64::max)
    }

    /// The latest distinct items, most recent first, at most `n`.
    pub fn recent_items(&self, n: usize) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::with_capacity(n);
        for e in self.events().rev() {
            if out.len() == n {
                break;
            }
            if !out.contains(&e.item) {
                out.push(e.item);
            }
        }
        out
    }

    /// Distinct items of events of the given kinds, ascending.
    pub fn items_with(&self, kinds: &[EventKind]) -> Vec<u32> {
        let mut items: Vec<u32> = self
            .events()
            .filter(|e| kinds.contains(&e.kind))
            .map(|e| e.item)
            .collect();
        items.sort_unstable();
        items.dedup();
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::EventLog;

    #[test]
    fn past_then_new_events_and_recency() {
        let mut log = EventLog::default();
        log.push(1, 5, EventKind::View, 100);
        log.push(2, 5, EventKind::AddToCart, 101);
        log.push(3, 6, EventKind::View, 102);
        log.sort_dedup();
        let train = TrainSet::new(&log, 10);
        let (i100, i101, i102) = (
            train.items.get(100).unwrap(),
            train.items.get(101).unwrap(),
            train.items.get(102).unwrap(),
        );
        let new = [Event {
            item: i102,
            kind: EventKind::View,
            timestamp_ms: 20,
        }];
        let ctx = Context::new(&train, train.users.get(5), &new);
        assert_eq!(ctx.events().count(), 3);
        assert_eq!(ctx.recent_items(5), vec![i102, i101, i100]);
        assert_eq!(ctx.items_with(&[EventKind::AddToCart]), vec![i101]);
        assert_eq!(ctx.now_ms(), 20);
        let cold = Context::new(&train, None, &[]);
        assert!(cold.is_empty() && cold.now_ms() == 10);
        // An index training never had is a cold shopper, not a panic.
        assert!(Context::new(&train, Some(99), &[]).user.is_none());
    }
}
