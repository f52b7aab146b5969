//! `recsys serve`: the trained bundle behind an HTTP API.
//!
//! One process does what the Python design needed four services for: every
//! request is scored live by the bundle's best model through the
//! [`Engine`](crate::engine::Engine) — the shopper's training history plus the
//! events this service received — and the service answers similar items,
//! keeps the events, and exports Prometheus metrics.
//!
//! * [`routes`] — every route in one place, with [`routes::app`] building the
//!   router (testable without a socket); the OpenAPI document lives beside it;
//! * [`store`] — recent events per user, in memory or in Redis;
//! * [`state`] — what the handlers share, and the atomic model swap;
//! * [`metrics`] — the Prometheus series;
//! * [`server`] — the socket, signals (SIGHUP reloads, SIGTERM drains) and start-up;
//! * [`simulate`] — an A/B test replayed in-process over a real event log.

pub mod listen;
pub mod metrics;
pub mod routes;
pub mod server;
pub mod simulate;
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
    /// The model that answers `/recommendations` (default: two_stage, else als,
    /// else the first the bundle has).
    pub model: Option<String>,
    /// Largest request body, bytes; a larger `Content-Length` is refused
    /// with 413 before the body is read.
    pub max_body_bytes: usize,
    /// A connection whose request head has not arrived this many seconds
    /// after it opened (or after its previous response) is closed.
    pub header_read_timeout_seconds: u64,
    /// Most connections served at once; keep it below the process's
    /// open-file limit (`ulimit -n`). Further clients wait to be accepted.
    pub max_connections: usize,
    /// After SIGTERM, requests in flight get this many seconds to finish
    /// before the service stops anyway (a second signal stops it at once).
    pub drain_seconds: u64,
    /// Token `POST /admin/reload` requires (`Authorization: Bearer …`); also
    /// from `RECSYS_ADMIN_TOKEN`. None: no token needed.
    #[serde(skip_serializing)]
    pub admin_token: Option<String>,
    /// `[serve.feedback]`: attributing add-to-carts to what was shown.
    pub feedback: FeedbackConfig,
    /// `[serve.experiment]`: an A/B test between bundles, if one runs.
    pub experiment: Option<crate::experiment::Experiment>,
}

/// `[serve.feedback]` of config.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackConfig {
    /// An add-to-cart or purchase of an item recommended to the shopper this
    /// many minutes before (or less) is credited to the recommendation; 0
    /// turns feedback tracking off.
    pub attribution_minutes: u64,
    /// Most recommended items remembered per shopper (the oldest go first).
    pub items_per_user: usize,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        FeedbackConfig {
            attribution_minutes: 30,
            items_per_user: 50,
        }
    }
}

impl FeedbackConfig {
    /// The attribution window in ms; 0 when tracking is off.
    pub fn window_ms(&self) -> i64 {
        self.attribution_minutes
            .saturating_mul(60_000)
            .min(i64::MAX as u64) as i64
    }
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
            model: None,
            max_body_bytes: 16 * 1024,
            header_read_timeout_seconds: 10,
            max_connections: 4096,
            drain_seconds: 20,
            admin_token: None,
            feedback: FeedbackConfig::default(),
            experiment: None,
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
            ("max_connections", self.max_connections),
        ];
        for (key, value) in positive {
            if value == 0 {
                anyhow::bail!("[serve] {key} must be at least 1");
            }
        }
        for (key, value, max) in [
            (
                "header_read_timeout_seconds",
                self.header_read_timeout_seconds,
                3600,
            ),
            ("drain_seconds", self.drain_seconds, 3600),
        ] {
            if !(1..=max).contains(&value) {
                anyhow::bail!("[serve] {key} = {value} is out of range: must be in 1..={max}");
            }
        }
        if self.max_connections > 1_000_000 {
            anyhow::bail!(
                "[serve] max_connections = {} is out of range: must be in 1..=1000000",
                self.max_connections
            );
        }
        if self.feedback.attribution_minutes > 0 && self.feedback.items_per_user == 0 {
            anyhow::bail!(
                "[serve.feedback] items_per_user must be at least 1 (to turn feedback off, set attribution_minutes = 0)"
            );
        }
        if self.feedback.attribution_minutes > 7 * 24 * 60 {
            anyhow::bail!(
                "[serve.feedback] attribution_minutes is {}; at most a week (10080) is kept",
                self.feedback.attribution_minutes
            );
        }
        if let Some(experiment) = &self.experiment {
            experiment.validate()?;
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
