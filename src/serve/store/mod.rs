//! Where the service keeps the events it receives, for online recommendations.
//!
//! Two backends behind one type, chosen by `[serve] event_store`: `"memory"`
//! (one process) or a `redis://` URL (replicas share what they receive).

mod memory;
mod redis;

use std::time::Duration;

pub use self::memory::MemoryStore;
pub use self::redis::{RedisStore, RedisStoreError};

/// One event received by the service (raw ids), as the engine reads it.
pub use crate::engine::ShopperEvent as ServiceEvent;

/// The configured event store.
#[derive(Debug)]
pub enum EventStore {
    /// In this process.
    Memory(MemoryStore),
    /// Shared through Redis.
    Redis(RedisStore),
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
    /// Redis lists expire after this long without events.
    pub redis_ttl: Duration,
    /// Longest a request waits for Redis.
    pub redis_deadline: Duration,
}

impl EventStore {
    /// Open the store `settings` describe; a Redis store must answer now.
    pub async fn open(settings: &StoreSettings) -> anyhow::Result<EventStore> {
        if settings.url == "memory" {
            return Ok(EventStore::Memory(MemoryStore::new(
                settings.max_users,
                settings.events_per_user,
            )));
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
            EventStore::Memory(store) => {
                store.push(user, event);
                Ok(())
            }
            EventStore::Redis(store) => store.push(user, event).await,
        }
    }

    /// Up to `n` of `user`'s events, newest first.
    pub async fn recent(&self, user: i64, n: usize) -> Result<Vec<ServiceEvent>, RedisStoreError> {
        match self {
            EventStore::Memory(store) => Ok(store.recent(user, n)),
            EventStore::Redis(store) => store.recent(user, n).await,
        }
    }

    /// `(users, events)` held, for the memory store.
    pub fn size(&self) -> Option<(u64, u64)> {
        match self {
            EventStore::Memory(store) => Some((store.users(), store.events())),
            EventStore::Redis(_) => None,
        }
    }

    /// `"memory"` or `"redis"`.
    pub fn kind(&self) -> &'static str {
        match self {
            EventStore::Memory(_) => "memory",
            EventStore::Redis(_) => "redis",
        }
    }
}
