//! What every handler shares: the serving engine, the event store, metrics.
//!
//! The engine sits behind an [`ArcSwap`]: a request takes a cheap snapshot of
//! the current one and keeps it for its whole life, while a reload builds the
//! next engine on a blocking thread and swaps it in with one pointer store. A
//! reload that fails never touches the pointer, so the old model keeps serving.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::engine::{Engine, EngineSettings};

use super::metrics::Metrics;
use super::store::EventStore;

/// Request-independent settings the handlers need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest `k` a client may ask for.
    pub max_k: usize,
    /// Most ids a request's `exclude` may list.
    pub max_exclude: usize,
    /// Rules and served model every loaded engine gets.
    pub engine: EngineSettings,
    /// Events read from the store per request.
    pub events_per_user: usize,
    /// Token for `/admin/reload`, if one is required.
    pub admin_token: Option<String>,
    /// A bundle, or a directory of bundles whose newest is served.
    pub bundle_root: PathBuf,
}

/// Handler state: cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// The shared parts of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    engine: ArcSwap<Engine>,
    /// Recent events per user.
    pub store: EventStore,
    /// Prometheus series.
    pub metrics: Metrics,
    /// Settings.
    pub settings: Settings,
    reloading: tokio::sync::Mutex<()>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The model serving after a reload attempt, and the error if it failed.
#[derive(Debug)]
pub struct ReloadOutcome {
    /// Version serving now.
    pub version: String,
    /// Version serving before.
    pub previous: String,
    /// Why the new bundle was refused, if it was.
    pub error: Option<String>,
}

impl AppState {
    /// State serving `engine`.
    pub fn new(
        engine: Engine,
        store: EventStore,
        metrics: Metrics,
        settings: Settings,
    ) -> AppState {
        let engine = Arc::new(engine);
        let state = AppState(Arc::new(Shared {
            engine: ArcSwap::new(engine.clone()),
            store,
            metrics,
            settings,
            reloading: tokio::sync::Mutex::new(()),
        }));
        state.publish_model(&engine);
        state
    }

    /// The engine serving now.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    fn publish_model(&self, engine: &Engine) {
        let m = &self.metrics;
        m.model_info.reset();
        m.model_info
            .with_label_values(&[engine.version.as_str(), engine.model])
            .set(1.0);
        m.model_loaded.set(engine.loaded_unix);
        m.model_created.set(engine.created_unix);
        m.model_load_seconds.set(engine.load_seconds);
        m.similar_recall
            .set(engine.similar_recall.unwrap_or(f64::NAN));
        m.candidate_recall
            .set(engine.mips_recall.unwrap_or(f64::NAN));
    }

    /// Load the newest bundle under the bundle root and swap it in; on any
    /// failure keep serving the current one. Concurrent reloads run one at a time.
    pub async fn reload(&self) -> ReloadOutcome {
        let _one_at_a_time = self.reloading.lock().await;
        let previous = self.engine().version.clone();
        let root = self.settings.bundle_root.clone();
        let engine_settings = self.settings.engine.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let dir = crate::bundle::resolve(&root)?;
            Engine::load(&dir, &engine_settings)
        })
        .await
        .map_err(|e| anyhow::anyhow!("the loading task failed: {e}"))
        .and_then(|r| r);
        match loaded {
            Ok(engine) => {
                let engine = Arc::new(engine);
                self.engine.store(engine.clone());
                self.publish_model(&engine);
                self.metrics.reloads.with_label_values(&["success"]).inc();
                eprintln!("recsys serve: now serving {}", engine.version);
                ReloadOutcome {
                    version: engine.version.clone(),
                    previous,
                    error: None,
                }
            }
            Err(err) => {
                self.metrics.reloads.with_label_values(&["failure"]).inc();
                let error = format!("{err:#}");
                eprintln!("recsys serve: reload failed, still serving {previous}: {error}");
                ReloadOutcome {
                    version: previous.clone(),
                    previous,
                    error: Some(error),
                }
            }
        }
    }
}
