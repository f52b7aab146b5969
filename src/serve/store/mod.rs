//! Where the service keeps the events it receives, for online recommendations,
//! and what it showed each shopper, for attributing their add-to-carts.
//!
//! Two backends behind one type, chosen by `[serve] event_store`: `"memory"`
//! (one process) or a `redis://` URL (replicas share what they receive, what
//! they showed and the experiment tallies).

mod feedback;
mod memory;
mod redis;

use std::time::Duration;

pub use self::feedback::MemoryFeedback;
pub use self::memory::MemoryStore;
pub use self::redis::{RedisStore, RedisStoreError};

/// One event received by the service (raw ids), as the engine reads it.
pub use crate::engine::ShopperEvent as ServiceEvent;

use crate::data::EventKind;
use crate::experiment::Tally;

/// The configured event store.
#[derive(Debug)]
pub enum EventStore {
    /// In this process.
    Memory(MemoryStore, MemoryFeedback),
    /// Shared through Redis.
    Redis(RedisStore),
}

/// An event credited to a recommendation: the variant that showed the item
/// and the source that proposed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributed {
    /// The answer's variant.
    pub variant: String,
    /// What proposed the item.
    pub source: String,
}

/// How the store is laid out, from `[serve]`.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `"memory"` or a `redis://` URL.
    pub url: String,
    /// Events kept per user.
    pub events_per_user: usize,
    /// Users kept by the memory store.
    pub max_users: usize,
    /// Redis key prefix.
    pub redis_prefix: String,
    /// Items remembered per shopper for attribution (memory store).
    pub shown_per_user: usize,
    /// Redis lists expire after this long without events.
    pub redis_ttl: Duration,
    /// Longest a request waits for Redis.
    pub redis_deadline: Duration,
}

impl EventStore {
    /// An in-process store laid out as `settings` say.
    pub fn memory(settings: &StoreSettings) -> EventStore {
        EventStore::Memory(
            MemoryStore::new(settings.max_users, settings.events_per_user),
            MemoryFeedback::new(settings.max_users, settings.shown_per_user),
        )
    }

    /// Open the store `settings` describe; a Redis store must answer now.
    pub async fn open(settings: &StoreSettings) -> anyhow::Result<EventStore> {
        if settings.url == "memory" {
            return Ok(EventStore::memory(settings));
        }
        if !(settings.url.starts_with("redis://") || settings.url.starts_with("rediss://")) {
            anyhow::bail!(
                "[serve] event_store must be \"memory\" or a redis:// URL, not {:?}",
                settings.url
            );
        }
        let store = RedisStore::connect(
            &settings.url,
            &settings.redis_prefix,
            settings.events_per_user,
            settings.redis_ttl,
            settings.redis_deadline,
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "the event store at {} does not answer ({e}); start Redis or set [serve] event_store = \"memory\"",
                settings.url
            )
        })?;
        Ok(EventStore::Redis(store))
    }

    /// Record `event` for `user`.
    pub async fn push(&self, user: i64, event: ServiceEvent) -> Result<(), RedisStoreError> {
        match self {
            EventStore::Memory(store, _) => {
                store.push(user, event);
                Ok(())
            }
            EventStore::Redis(store) => store.push(user, event).await,
        }
    }

    /// Up to `n` of `user`'s events, newest first.
    pub async fn recent(&self, user: i64, n: usize) -> Result<Vec<ServiceEvent>, RedisStoreError> {
        match self {
            EventStore::Memory(store, _) => Ok(store.recent(user, n)),
            EventStore::Redis(store) => store.recent(user, n).await,
        }
    }

    /// `(users, events)` held, for the memory store.
    pub fn size(&self) -> Option<(u64, u64)> {
        match self {
            EventStore::Memory(store, _) => Some((store.users(), store.events())),
            EventStore::Redis(_) => None,
        }
    }

    /// `"memory"` or `"redis"`.
    pub fn kind(&self) -> &'static str {
        match self {
            EventStore::Memory(..) => "memory",
            EventStore::Redis(_) => "redis",
        }
    }

    /// Remember that `items` (id, source) were shown to `user` at `at_ms` in `variant`.
    pub async fn remember_shown(
        &self,
        user: i64,
        variant: &std::sync::Arc<str>,
        items: &[(i64, &'static str)],
        at_ms: i64,
        window_ms: i64,
    ) -> Result<(), RedisStoreError> {
        match self {
            EventStore::Memory(_, f) => {
                f.remember(user, variant, items, at_ms, window_ms);
                Ok(())
            }
            EventStore::Redis(r) => {
                r.remember_shown(user, variant, items, at_ms, window_ms)
                    .await
            }
        }
    }

    /// The credit for `user`'s `kind` event on `item_id` at `at_ms`: the item
    /// was shown to them within the window, and no such event on it was
    /// credited before.
    pub async fn attribute(
        &self,
        user: i64,
        item_id: i64,
        kind: EventKind,
        at_ms: i64,
        window_ms: i64,
    ) -> Result<Option<Attributed>, RedisStoreError> {
        match self {
            EventStore::Memory(_, f) => Ok(f.attribute(user, item_id, kind, at_ms, window_ms)),
            EventStore::Redis(r) => r.attribute(user, item_id, kind, at_ms, window_ms).await,
        }
    }

    /// Count one answer of `items` items to `user` in `variant` of `experiment`.
    pub async fn tally_answer(
        &self,
        experiment: &str,
        variant: &str,
        user: i64,
        items: u64,
    ) -> Result<(), RedisStoreError> {
        match self {
            EventStore::Memory(_, f) => {
                f.tally_answer(experiment, variant, user, items);
                Ok(())
            }
            EventStore::Redis(r) => r.tally_answer(experiment, variant, user, items).await,
        }
    }

    /// Count an attributed `kind` event of `user` in `variant` of `experiment`.
    pub async fn tally_attributed(
        &self,
        experiment: &str,
        variant: &str,
        user: i64,
        kind: EventKind,
    ) -> Result<(), RedisStoreError> {
        match self {
            EventStore::Memory(_, f) => {
                f.tally_attributed(experiment, variant, user, kind);
                Ok(())
            }
            EventStore::Redis(r) => r.tally_attributed(experiment, variant, user, kind).await,
        }
    }

    /// The tallies of `variants` in `experiment`, in order.
    pub async fn tallies(
        &self,
        experiment: &str,
        variants: &[&str],
    ) -> Result<Vec<Tally>, RedisStoreError> {
        match self {
            EventStore::Memory(_, f) => Ok(f.tallies(experiment, variants)),
            EventStore::Redis(r) => r.tallies(experiment, variants).await,
        }
    }
}
