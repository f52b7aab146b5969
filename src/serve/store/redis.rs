//! The shared event store: one capped Redis list per user, with a TTL.
//!
//! With several `recsys serve` replicas behind a load balancer, the event a
//! shopper's browser posts to one replica must shape the next answer from any
//! other, so the events live in Redis. Each user's list is trimmed to the last
//! `events_per_user` events and expires after `ttl` without activity, so Redis
//! memory is bounded by the number of recently active users.
//!
//! Every call has a deadline: a Redis that is down or hanging costs a request
//! at most that long, and the caller answers without online recommendations.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use thiserror::Error;

use super::ServiceEvent;
use crate::data::EventKind;

/// A Redis operation that failed or ran past its deadline.
#[derive(Debug, Error)]
pub enum RedisStoreError {
    /// Redis answered with an error or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer within the deadline.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

/// Per-user capped lists in Redis.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    events_per_user: usize,
    ttl_seconds: u64,
    deadline: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("events_per_user", &self.events_per_user)
            .finish()
    }
}

impl RedisStore {
    /// Connect to `url` and check that it answers; keys start with `prefix`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        events_per_user: usize,
        ttl: Duration,
        deadline: Duration,
    ) -> Result<RedisStore, RedisStoreError> {
        let client = redis::Client::open(url)?;
        // Few, quick reconnection attempts: a request must not wait out a long
        // back-off while Redis is away; the next request tries again.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100))
            .set_connection_timeout(Some(deadline))
            .set_response_timeout(Some(deadline));
        let connection = client.get_connection_manager_lazy(config)?;
        let store = RedisStore {
            connection,
            prefix: prefix.to_string(),
            events_per_user: events_per_user.max(1),
            ttl_seconds: ttl.as_secs().max(1),
            deadline,
        };
        store.ping().await?;
        Ok(store)
    }

    fn key(&self, user: i64) -> String {
        format!("{}:events:{user}", self.prefix)
    }

    async fn within<T>(
        &self,
        work: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisStoreError> {
        match tokio::time::timeout(self.deadline, work).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(RedisStoreError::Timeout(self.deadline)),
        }
    }

    /// Check that Redis answers.
    pub async fn ping(&self) -> Result<(), RedisStoreError> {
        let mut connection = self.connection.clone();
        self.within(redis::cmd("PING").query_async::<String>(&mut connection))
            .await
            .map(|_| ())
    }

    /// Record `event` as `user`'s newest: push, trim and refresh the TTL atomically.
    pub async fn push(&self, user: i64, event: ServiceEvent) -> Result<(), RedisStoreError> {
        let key = self.key(user);
        let mut connection = self.connection.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .lpush(&key, encode(&event))
            .ignore()
            .ltrim(&key, 0, self.events_per_user as isize - 1)
            .ignore()
            .expire(&key, self.ttl_seconds as i64)
            .ignore();
        self.within(pipe.query_async::<()>(&mut connection)).await
    }

    /// Up to `n` of `user`'s events, newest first. Entries that do not decode
    /// (written by something else) are skipped.
    pub async fn recent(&self, user: i64, n: usize) -> Result<Vec<ServiceEvent>, RedisStoreError> {
        let mut connection = self.connection.clone();
        let stop = n.min(self.events_per_user) as isize - 1;
        let raw: Vec<String> = self
            .within(
                redis::cmd("LRANGE")
                    .arg(self.key(user))
                    .arg(0)
                    .arg(stop)
                    .query_async(&mut connection),
            )
            .await?;
        Ok(raw.iter().filter_map(|s| decode(s)).collect())
    }
}

/// `item:kind:timestamp`, compact and readable with `redis-cli`.
fn encode(event: &ServiceEvent) -> String {
    format!(
        "{}:{}:{}",
        event.item_id, event.kind as u8, event.timestamp_ms
    )
}

fn decode(text: &str) -> Option<ServiceEvent> {
    let mut parts = text.split(':');
    let item_id = parts.next()?.parse().ok()?;
    let kind = EventKind::from_index(parts.next()?.parse().ok()?)?;
    let timestamp_ms = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some(ServiceEvent {
        item_id,
        kind,
        timestamp_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_rejects_foreign_values() {
        let event = ServiceEvent {
            item_id: -5,
            kind: EventKind::AddToCart,
            timestamp_ms: 1_442_000_000_000,
        };
        assert_eq!(decode(&encode(&event)), Some(event));
        for bad in ["", "1:1", "1:9:5", "x:0:5", "1:0:5:extra"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
