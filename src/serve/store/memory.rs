//! The in-process event store: the last events of the most recently active users.
//!
//! Memory is bounded twice: each user keeps at most `events_per_user` events,
//! and at most `max_users` users are kept, the least recently active evicted
//! first. Users are spread over shards by id so that concurrent requests for
//! different users rarely wait on the same lock.

use std::collections::VecDeque;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use lru::LruCache;

use super::ServiceEvent;

const SHARDS: usize = 16;

/// A bounded, sharded LRU of per-user recent events.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Vec<Mutex<LruCache<i64, VecDeque<ServiceEvent>>>>,
    events_per_user: usize,
    users: AtomicU64,
    events: AtomicU64,
}

impl MemoryStore {
    /// A store keeping `events_per_user` events for each of at most `max_users` users.
    pub fn new(max_users: usize, events_per_user: usize) -> MemoryStore {
        let per_shard = max_users.div_ceil(SHARDS).max(1);
        let cap = NonZeroUsize::new(per_shard).expect("at least one user per shard");
        MemoryStore {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(cap)))
                .collect(),
            events_per_user: events_per_user.max(1),
            users: AtomicU64::new(0),
            events: AtomicU64::new(0),
        }
    }

    fn shard(&self, user: i64) -> &Mutex<LruCache<i64, VecDeque<ServiceEvent>>> {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(user);
        &self.shards[(hash as usize) % SHARDS]
    }

    /// Record `event` as `user`'s newest.
    pub fn push(&self, user: i64, event: ServiceEvent) {
        let mut shard = self.shard(user).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(events) = shard.get_mut(&user) {
            if events.len() == self.events_per_user {
                events.pop_back();
            } else {
                // Grow by doubling but never past the per-user cap, so a full
                // list holds no spare capacity.
                if events.len() == events.capacity() {
                    let target = (events.capacity() * 2).min(self.events_per_user);
                    events.reserve_exact(target - events.len());
                }
                self.events.fetch_add(1, Ordering::Relaxed);
            }
            events.push_front(event);
            return;
        }
        let mut events = VecDeque::with_capacity(self.events_per_user.min(4));
        events.push_front(event);
        self.users.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(1, Ordering::Relaxed);
        if let Some((_, evicted)) = shard.push(user, events) {
            self.users.fetch_sub(1, Ordering::Relaxed);
            self.events
                .fetch_sub(evicted.len() as u64, Ordering::Relaxed);
        }
    }

    /// Up to `n` of `user`'s events, newest first.
    pub fn recent(&self, user: i64, n: usize) -> Vec<ServiceEvent> {
        let mut shard = self.shard(user).lock().unwrap_or_else(|e| e.into_inner());
        shard
            .get(&user)
            .map(|events| events.iter().take(n).copied().collect())
            .unwrap_or_default()
    }

    /// Users currently held.
    pub fn users(&self) -> u64 {
        self.users.load(Ordering::Relaxed)
    }

    /// Events currently held.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// The most events the store can ever hold.
    pub fn capacity(&self) -> u64 {
        let per_shard = self.shards[0]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cap()
            .get();
        (per_shard * SHARDS * self.events_per_user) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::EventKind;

    fn view(item: i64, timestamp_ms: i64) -> ServiceEvent {
        ServiceEvent {
            item_id: item,
            kind: EventKind::View,
            timestamp_ms,
        }
    }

    #[test]
    fn newest_first_and_capped_per_user() {
        let store = MemoryStore::new(100, 3);
        for t in 0..5 {
            store.push(7, view(100 + t, t));
        }
        let items: Vec<i64> = store.recent(7, 10).iter().map(|e| e.item_id).collect();
        assert_eq!(items, vec![104, 103, 102]);
        assert_eq!(store.recent(7, 2).len(), 2);
        assert_eq!((store.users(), store.events()), (1, 3));
        assert!(store.recent(8, 10).is_empty());
    }

    #[test]
    fn least_recently_active_user_is_evicted_and_counts_stay_exact() {
        // One user per shard: the 17th user in a shard evicts the oldest there.
        let store = MemoryStore::new(SHARDS, 4);
        for user in 0..10_000i64 {
            store.push(user, view(user, user));
            store.push(user, view(user + 1, user));
        }
        assert!(store.users() <= SHARDS as u64);
        assert_eq!(store.events(), store.users() * 2);
        assert!(store.events() <= store.capacity());
        // The newest user survives; the first one is long gone.
        assert_eq!(store.recent(9_999, 5).len(), 2);
        assert!(store.recent(0, 5).is_empty());
    }
}
