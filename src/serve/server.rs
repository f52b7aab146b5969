//! Start-up, the socket and signals.
//!
//! SIGHUP reloads the newest bundle (as `POST /admin/reload` does); SIGTERM
//! or Ctrl-C stops accepting connections and lets in-flight requests finish
//! within `[serve] drain_seconds` ([`super::listen`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};

use super::listen::{self, watch_stop_signals, Limits, Stopped};
use super::metrics::Metrics;
use super::routes::app;
use super::state::{AppState, Settings};
use super::store::{EventStore, StoreSettings};
use super::ServeConfig;
use crate::engine::EngineSettings;

/// Everything `recsys serve` needs to start.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The `[serve]` settings (flags already applied).
    pub config: ServeConfig,
    /// A bundle, or a directory of bundles whose newest is served.
    pub bundle_root: PathBuf,
    /// Business rules and the served model.
    pub engine: EngineSettings,
}

/// Load the model, open the event store, listen, and serve until SIGTERM.
pub fn run(options: ServeOptions) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve(options));
    // Connections cut at the drain deadline may leave blocking work behind:
    // do not wait for it.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn serve(options: ServeOptions) -> Result<()> {
    let config = options.config;
    let store = EventStore::open(&StoreSettings {
        url: config.event_store.clone(),
        events_per_user: config.events_per_user,
        max_users: config.max_users,
        redis_prefix: config.redis_prefix.clone(),
        shown_per_user: config.feedback.items_per_user,
        redis_ttl: Duration::from_secs(config.redis_ttl_seconds),
        redis_deadline: Duration::from_millis(config.redis_timeout_ms),
    })
    .await?;
    let admin_token = config
        .admin_token
        .clone()
        .or_else(|| std::env::var("RECSYS_ADMIN_TOKEN").ok())
        .filter(|t| !t.is_empty());
    let settings = Settings {
        max_k: config.max_k,
        max_exclude: options.engine.rules.max_exclude,
        engine: options.engine.clone(),
        events_per_user: config.events_per_user,
        admin_token,
        bundle_root: options.bundle_root.clone(),
        experiment: config.experiment.clone(),
        feedback_window_ms: config.feedback.window_ms(),
    };
    let loading = settings.clone();
    let engines = tokio::task::spawn_blocking(move || loading.load_engines())
        .await
        .context("loading the model")??;
    for (variant, engine) in settings.variant_names().iter().zip(&engines) {
        let variant: &str = variant;
        let version = engine.version.as_str();
        tracing::info!(
            model = engine.model,
            model_version = version,
            variant,
            "{} answers every request, scored live",
            engine.model
        );
        if let Some(recall) = engine.similar_recall {
            tracing::info!(
                model_version = version,
                variant,
                similar_recall = recall,
                "similar-items index finds {:.1}% of the exact 10 nearest neighbours (sampled)",
                100.0 * recall
            );
        }
        if let Some(recall) = engine.mips_recall {
            tracing::info!(
                model_version = version,
                variant,
                candidate_recall = recall,
                "ALS candidate index finds {:.1}% of the exact top 50 by inner product (sampled)",
                100.0 * recall
            );
        }
    }
    let version = engines
        .iter()
        .map(|e| e.version.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let state = AppState::new(engines, store, Metrics::new(), settings)?;

    let address = format!("{}:{}", config.host, config.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| {
            format!("listening on {address} (is another server using the port? pass --port)")
        })?;
    let bound: SocketAddr = listener.local_addr().context("reading the bound address")?;
    // Signals are watched before the line that announces the service, so a
    // client that acts on that line cannot signal too early.
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let reloader = state.clone();
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            reloader.reload().await;
        }
    });

    let stop = watch_stop_signals()?;
    // The one line scripts wait for: the address actually bound (port 0 picks a free one).
    tracing::info!(
        model_version = version.as_str(),
        event_store = state.store.kind(),
        "listening on http://{bound} with model {version}, event store {}",
        state.store.kind()
    );

    let limits = Limits {
        header_read_timeout: Duration::from_secs(config.header_read_timeout_seconds),
        max_connections: config.max_connections,
        drain: Duration::from_secs(config.drain_seconds),
    };
    match listen::serve(listener, app(state, config.max_body_bytes), limits, stop).await {
        Stopped::Drained => {
            tracing::info!("stopped");
            Ok(())
        }
        Stopped::DeadlinePassed(open) => anyhow::bail!(
            "stopped with {open} connection(s) cut: their requests did not finish within [serve] drain_seconds = {}",
            config.drain_seconds
        ),
        Stopped::Forced(open) => anyhow::bail!(
            "stopped at the second signal with {open} connection(s) cut"
        ),
    }
}
