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

use std::collections::HashMap;

use super::{Attributed, ServiceEvent};
use crate::data::EventKind;
use crate::experiment::Tally;

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

impl RedisStore {
    fn shown_key(&self, user: i64) -> String {
        format!("{}:shown:{user}", self.prefix)
    }

    fn tally_key(&self, experiment: &str, variant: &str) -> String {
        format!("{}:experiment:{experiment}:{variant}", self.prefix)
    }

    /// Remember that `items` (id, source) were shown to `user` at `at_ms` in
    /// `variant`: one hash per shopper (`item → variant|source|ms`) that
    /// expires one window after the last answer, so replicas share it and
    /// Redis holds only shoppers answered within the window.
    pub async fn remember_shown(
        &self,
        user: i64,
        variant: &str,
        items: &[(i64, &'static str)],
        at_ms: i64,
        window_ms: i64,
    ) -> Result<(), RedisStoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let key = self.shown_key(user);
        let fields: Vec<(i64, String)> = items
            .iter()
            .map(|&(item, source)| (item, format!("{variant}|{source}|{at_ms}")))
            .collect();
        let mut connection = self.connection.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_multiple(&key, &fields)
            .ignore()
            .pexpire(&key, window_ms.max(1))
            .ignore();
        self.within(pipe.query_async::<()>(&mut connection)).await
    }

    /// The credit for `user`'s `kind` event on `item_id` at `at_ms`, if the
    /// item was shown within the window and this kind of event on it was not
    /// credited before by any replica (`HSETNX` decides atomically).
    pub async fn attribute(
        &self,
        user: i64,
        item_id: i64,
        kind: EventKind,
        at_ms: i64,
        window_ms: i64,
    ) -> Result<Option<Attributed>, RedisStoreError> {
        let mut connection = self.connection.clone();
        let shown: Option<String> = self
            .within(
                redis::cmd("HGET")
                    .arg(self.shown_key(user))
                    .arg(item_id)
                    .query_async(&mut connection),
            )
            .await?;
        let Some((variant, source, shown_ms)) = shown.as_deref().and_then(decode_shown) else {
            return Ok(None);
        };
        if !(0..=window_ms).contains(&(at_ms - shown_ms)) {
            return Ok(None);
        }
        let credited = format!("{}:credited:{user}", self.prefix);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_nx(&credited, format!("{item_id}:{}", kind as u8), 1)
            .pexpire(&credited, window_ms.max(1))
            .ignore();
        let (first,): (bool,) = self.within(pipe.query_async(&mut connection)).await?;
        Ok(first.then(|| Attributed {
            variant: variant.to_string(),
            source: source.to_string(),
        }))
    }

    /// Count one answer of `items` items to `user` in `variant` of `experiment`.
    pub async fn tally_answer(
        &self,
        experiment: &str,
        variant: &str,
        user: i64,
        items: u64,
    ) -> Result<(), RedisStoreError> {
        let key = self.tally_key(experiment, variant);
        let mut connection = self.connection.clone();
        let mut pipe = redis::pipe();
        pipe.hincr(&key, "answers", 1)
            .ignore()
            .hincr(&key, "items_shown", items)
            .ignore()
            .sadd(format!("{key}:shoppers"), user)
            .ignore();
        self.within(pipe.query_async::<()>(&mut connection)).await
    }

    /// Count an attributed `kind` event of `user` in `variant` of `experiment`.
    pub async fn tally_attributed(
        &self,
        experiment: &str,
        variant: &str,
        user: i64,
        kind: EventKind,
    ) -> Result<(), RedisStoreError> {
        let key = self.tally_key(experiment, variant);
        let mut connection = self.connection.clone();
        let mut pipe = redis::pipe();
        match kind {
            EventKind::AddToCart => pipe
                .hincr(&key, "attributed_add_to_carts", 1)
                .ignore()
                .sadd(format!("{key}:converted"), user)
                .ignore(),
            EventKind::Transaction => pipe.hincr(&key, "attributed_transactions", 1).ignore(),
            EventKind::View => return Ok(()),
        };
        self.within(pipe.query_async::<()>(&mut connection)).await
    }

    /// The tallies of `variants` in `experiment`, in order, summed over every replica.
    pub async fn tallies(
        &self,
        experiment: &str,
        variants: &[&str],
    ) -> Result<Vec<Tally>, RedisStoreError> {
        let mut out = Vec::with_capacity(variants.len());
        for variant in variants {
            let key = self.tally_key(experiment, variant);
            let mut connection = self.connection.clone();
            let mut pipe = redis::pipe();
            pipe.hgetall(&key)
                .scard(format!("{key}:shoppers"))
                .scard(format!("{key}:converted"));
            let (counts, shoppers, converted): (HashMap<String, u64>, u64, u64) =
                self.within(pipe.query_async(&mut connection)).await?;
            let get = |name: &str| counts.get(name).copied().unwrap_or(0);
            out.push(Tally {
                shoppers,
                answers: get("answers"),
                items_shown: get("items_shown"),
                attributed_add_to_carts: get("attributed_add_to_carts"),
                attributed_transactions: get("attributed_transactions"),
                converted_shoppers: converted,
            });
        }
        Ok(out)
    }
}

/// `variant|source|ms` as written by [`RedisStore::remember_shown`].
fn decode_shown(text: &str) -> Option<(&str, &str, i64)> {
    let mut parts = text.split('|');
    let variant = parts.next()?;
    let source = parts.next()?;
    let ms = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((variant, source, ms))
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
        assert_eq!(decode_shown("b|als|17"), Some(("b", "als", 17)));
        assert_eq!(decode_shown("b|als"), None);
        for bad in ["", "1:1", "1:9:5", "x:0:5", "1:0:5:extra"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
