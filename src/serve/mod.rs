//! `recsys serve`: the trained bundle behind an HTTP API.
//!
//! One process does what the Python design needed four services for: it
//! answers precomputed personal lists (from the bundle), online lists (from
//! the events it receives), similar items and the popular fallback, and it
//! exports Prometheus metrics.
//!
//! * [`routes`] — every route in one place, with [`routes::app`] building the
//!   router (testable without a socket); the OpenAPI document lives beside it;
//! * [`engine`] — a loaded bundle, indexed for fast answers;
//! * [`blend`] — how online, personal and popular lists make one answer;
//! * [`store`] — recent events per user, in memory or in Redis;
//! * [`state`] — what the handlers share, and the atomic model swap;
//! * [`metrics`] — the Prometheus series;
//! * [`server`] — the socket, signals (SIGHUP reloads, SIGTERM drains) and start-up.

pub mod blend;
pub mod engine;
pub mod metrics;
pub mod routes;
pub mod server;
pub mod state;
pub mod store;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

/// `[serve]` of config.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on.
    pub port: u16,
    /// Largest `k` a client may ask for.
    pub max_k: usize,
    /// `"memory"` or a `redis://` URL.
    pub event_store: String,
    /// Recent events kept per user.
    pub events_per_user: usize,
    /// Users the memory store keeps (least recently active evicted first).
    pub max_users: usize,
    /// Redis keys start with this.
    pub redis_prefix: String,
    /// Seconds a user's Redis list lives without new events.
    pub redis_ttl_seconds: u64,
    /// Longest a request waits for Redis, ms.
    pub redis_timeout_ms: u64,
    /// How many of the user's latest items seed online recommendations.
    pub online_seeds: usize,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Token `POST /admin/reload` requires (`Authorization: Bearer …`); also
    /// from `RECSYS_ADMIN_TOKEN`. None: no token needed.
    #[serde(skip_serializing)]
    pub admin_token: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            host: "127.0.0.1".into(),
            port: 8000,
            max_k: 100,
            event_store: "memory".into(),
            events_per_user: 20,
            max_users: 500_000,
            redis_prefix: "recsys".into(),
            redis_ttl_seconds: 7 * 24 * 3600,
            redis_timeout_ms: 200,
            online_seeds: 3,
            max_body_bytes: 16 * 1024,
            admin_token: None,
        }
    }
}

impl ServeConfig {
    /// Reject settings that cannot work, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            ("max_k", self.max_k),
            ("events_per_user", self.events_per_user),
            ("max_users", self.max_users),
            ("max_body_bytes", self.max_body_bytes),
        ];
        for (key, value) in positive {
            if value == 0 {
                anyhow::bail!("[serve] {key} must be at least 1");
            }
        }
        if self.event_store != "memory"
            && !self.event_store.starts_with("redis://")
            && !self.event_store.starts_with("rediss://")
        {
            anyhow::bail!(
                "[serve] event_store must be \"memory\" or a redis:// URL, not {:?}",
                self.event_store
            );
        }
        Ok(())
    }
}
