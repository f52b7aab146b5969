//! What every handler shares: the serving engines, the event store, metrics,
//! and the feedback loop from what was shown to what was carted.
//!
//! The engines sit behind one [`ArcSwap`]: a request takes a cheap snapshot
//! of the current set and keeps it for its whole life, while a reload builds
//! the next set on a blocking thread and swaps it in with one pointer store.
//! With an experiment the set holds one engine per variant, and a reload
//! replaces all of them or none: a reload that fails for any variant never
//! touches the pointer, so the old models keep serving.
//!
//! The feedback loop lives here so that the HTTP handlers and the in-process
//! simulation ([`super::simulate`]) share it: [`AppState::record_answer`]
//! remembers what a shopper was shown, [`AppState::record_event`] credits
//! their add-to-carts and purchases of those items.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use arc_swap::ArcSwap;

use crate::data::EventKind;
use crate::engine::{Answer, Engine, EngineSettings};
use crate::experiment::{Experiment, Report};

use super::metrics::{Metrics, SOURCES};
use super::store::{EventStore, RedisStoreError, ServiceEvent};

/// The variant name of answers when no experiment runs.
pub const DEFAULT_VARIANT: &str = "default";

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
    /// A bundle, or a directory of bundles whose newest is served (without an experiment).
    pub bundle_root: PathBuf,
    /// The A/B test, its variants' bundles already resolved to paths.
    pub experiment: Option<Experiment>,
    /// Attribution window, ms; 0 turns feedback tracking off.
    pub feedback_window_ms: i64,
}

impl Settings {
    /// The bundle root of every variant, in order (one without an experiment).
    pub fn bundle_roots(&self) -> Vec<PathBuf> {
        match &self.experiment {
            Some(e) => e.variants.iter().map(|v| v.bundle.clone()).collect(),
            None => vec![self.bundle_root.clone()],
        }
    }

    /// The variant names, in order (`default` without an experiment).
    pub fn variant_names(&self) -> Vec<Arc<str>> {
        match &self.experiment {
            Some(e) => e.variants.iter().map(|v| v.name.as_str().into()).collect(),
            None => vec![DEFAULT_VARIANT.into()],
        }
    }

    /// Load the newest bundle of every variant. Variants on the same bundle
    /// (an A/A test) share one engine: one copy in memory, and the same
    /// caches warm for both.
    pub fn load_engines(&self) -> Result<Vec<Arc<Engine>>> {
        let mut loaded: Vec<(PathBuf, Arc<Engine>)> = Vec::new();
        self.bundle_roots()
            .iter()
            .zip(self.variant_names())
            .map(|(root, name)| {
                let engine = crate::bundle::resolve(root).and_then(|dir| {
                    let same = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
                    if let Some((_, engine)) = loaded.iter().find(|(d, _)| *d == same) {
                        return Ok(engine.clone());
                    }
                    let engine = Arc::new(Engine::load(&dir, &self.engine)?);
                    loaded.push((same, engine.clone()));
                    Ok(engine)
                });
                match &self.experiment {
                    Some(_) => engine.with_context(|| format!("loading variant {name}")),
                    None => engine,
                }
            })
            .collect()
    }
}

/// The engines serving now: one per variant.
#[derive(Debug)]
pub struct Serving {
    /// Variant names and their engines, the control first.
    pub variants: Vec<(Arc<str>, Arc<Engine>)>,
}

/// Handler state: cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// The shared parts of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    serving: ArcSwap<Serving>,
    /// Recent events and shown items per user.
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

/// The models serving after a reload attempt, and the error if it failed.
#[derive(Debug)]
pub struct ReloadOutcome {
    /// Versions serving now (one per variant, joined by commas).
    pub version: String,
    /// Versions serving before.
    pub previous: String,
    /// Why the new bundles were refused, if they were.
    pub error: Option<String>,
}

impl AppState {
    /// State serving `engines`, one per variant of the settings' experiment
    /// (one without an experiment).
    pub fn new(
        engines: Vec<Arc<Engine>>,
        store: EventStore,
        metrics: Metrics,
        settings: Settings,
    ) -> Result<AppState> {
        let serving = Self::serving(&settings, engines)?;
        let names = settings.variant_names();
        let state = AppState(Arc::new(Shared {
            serving: ArcSwap::new(serving.clone()),
            store,
            metrics,
            settings,
            reloading: tokio::sync::Mutex::new(()),
        }));
        state.metrics.start_variants(&names, &SOURCES);
        state.publish_models(&serving);
        Ok(state)
    }

    fn serving(settings: &Settings, engines: Vec<Arc<Engine>>) -> Result<Arc<Serving>> {
        let names = settings.variant_names();
        if names.len() != engines.len() {
            anyhow::bail!(
                "{} engines for {} variants: every variant needs its bundle",
                engines.len(),
                names.len()
            );
        }
        Ok(Arc::new(Serving {
            variants: names.into_iter().zip(engines).collect(),
        }))
    }

    /// The engine serving now (the control's, with an experiment).
    pub fn engine(&self) -> Arc<Engine> {
        self.serving.load().variants[0].1.clone()
    }

    /// Every variant's engine serving now.
    pub fn serving_now(&self) -> Arc<Serving> {
        self.serving.load_full()
    }

    /// The variant shopper `user_id` is in and its engine: stable across
    /// requests, replicas and restarts.
    pub fn variant(&self, user_id: i64) -> (Arc<str>, Arc<Engine>) {
        let serving = self.serving.load();
        let i = self
            .settings
            .experiment
            .as_ref()
            .map_or(0, |e| e.assign(user_id));
        let (name, engine) = &serving.variants[i];
        (name.clone(), engine.clone())
    }

    /// The versions serving, comma-joined.
    fn versions(serving: &Serving) -> String {
        serving
            .variants
            .iter()
            .map(|(_, e)| e.version.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    fn publish_models(&self, serving: &Serving) {
        let m = &self.metrics;
        m.model_info.reset();
        for (variant, engine) in &serving.variants {
            m.model_info
                .with_label_values(&[engine.version.as_str(), engine.model, variant])
                .set(1.0);
        }
        let control = &serving.variants[0].1;
        m.model_loaded.set(control.loaded_unix);
        m.model_created.set(control.created_unix);
        m.model_load_seconds.set(control.load_seconds);
        m.similar_recall
            .set(control.similar_recall.unwrap_or(f64::NAN));
        m.candidate_recall
            .set(control.mips_recall.unwrap_or(f64::NAN));
    }

    /// Load the newest bundle of every variant and swap them in together; on
    /// any failure keep serving the current ones. Concurrent reloads run one
    /// at a time.
    pub async fn reload(&self) -> ReloadOutcome {
        let _one_at_a_time = self.reloading.lock().await;
        let previous = Self::versions(&self.serving.load());
        let settings = self.settings.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let engines = settings.load_engines()?;
            Self::serving(&settings, engines)
        })
        .await
        .map_err(|e| anyhow::anyhow!("the loading task failed: {e}"))
        .and_then(|r| r);
        match loaded {
            Ok(serving) => {
                let old = self.serving.swap(serving.clone());
                tokio::task::spawn_blocking(move || release(old));
                self.publish_models(&serving);
                self.metrics.reloads.with_label_values(&["success"]).inc();
                let version = Self::versions(&serving);
                tracing::info!(
                    model_version = version.as_str(),
                    previous = previous.as_str(),
                    "now serving {version}"
                );
                ReloadOutcome {
                    version,
                    previous,
                    error: None,
                }
            }
            Err(err) => {
                self.metrics.reloads.with_label_values(&["failure"]).inc();
                let error = format!("{err:#}");
                tracing::error!(
                    model_version = previous.as_str(),
                    "reload failed, still serving {previous}: {error}"
                );
                ReloadOutcome {
                    version: previous.clone(),
                    previous,
                    error: Some(error),
                }
            }
        }
    }

    /// Count `answer`, given to `user_id` in `variant` at `now_ms`, and
    /// remember its items for attribution. A store failure is counted, never
    /// passed to the shopper: the answer has already been given.
    pub async fn record_answer(
        &self,
        user_id: i64,
        variant: &Arc<str>,
        answer: &Answer,
        now_ms: i64,
    ) {
        let m = &self.metrics;
        m.answered(answer.model);
        m.served(variant, answer.recommendations.iter().map(|p| p.source));
        let window = self.settings.feedback_window_ms;
        let mut failed = false;
        if window > 0 && !answer.recommendations.is_empty() {
            let items: Vec<(i64, &'static str)> = answer
                .recommendations
                .iter()
                .map(|p| (p.item_id, p.source))
                .collect();
            failed |= self
                .store
                .remember_shown(user_id, variant, &items, now_ms, window)
                .await
                .is_err();
        }
        if let Some(e) = &self.settings.experiment {
            failed |= self
                .store
                .tally_answer(
                    &e.name,
                    variant,
                    user_id,
                    answer.recommendations.len() as u64,
                )
                .await
                .is_err();
        }
        if failed {
            m.store_errors.with_label_values(&["feedback"]).inc();
        }
    }

    /// Record `event` of `user_id`, received at `now_ms`, and credit it to a
    /// recommendation if it carts or buys an item shown within the window.
    /// Only a failure to record the event itself is an error.
    pub async fn record_event(
        &self,
        user_id: i64,
        event: ServiceEvent,
        now_ms: i64,
    ) -> Result<(), RedisStoreError> {
        let m = &self.metrics;
        m.events.with_label_values(&[event.kind.as_str()]).inc();
        if let Err(err) = self.store.push(user_id, event).await {
            m.store_errors.with_label_values(&["push"]).inc();
            return Err(err);
        }
        let window = self.settings.feedback_window_ms;
        if window == 0 || event.kind == EventKind::View {
            return Ok(());
        }
        let credit = match self
            .store
            .attribute(user_id, event.item_id, event.kind, now_ms, window)
            .await
        {
            Ok(Some(credit)) => credit,
            Ok(None) => return Ok(()),
            Err(_) => {
                m.store_errors.with_label_values(&["feedback"]).inc();
                return Ok(());
            }
        };
        m.attributed(&credit.variant, event.kind.as_str(), &credit.source);
        if let Some(e) = &self.settings.experiment {
            if e.variants.iter().any(|v| v.name == credit.variant)
                && self
                    .store
                    .tally_attributed(&e.name, &credit.variant, user_id, event.kind)
                    .await
                    .is_err()
            {
                m.store_errors.with_label_values(&["feedback"]).inc();
            }
        }
        Ok(())
    }

    /// The experiment's report from the store's tallies; `None` without an experiment.
    pub async fn experiment_report(&self) -> Option<Result<Report, RedisStoreError>> {
        let e = self.settings.experiment.as_ref()?;
        let names: Vec<&str> = e.variants.iter().map(|v| v.name.as_str()).collect();
        Some(
            self.store
                .tallies(&e.name, &names)
                .await
                .map(|t| e.report(&t)),
        )
    }
}

/// Drop a swapped-out `serving` once the requests still holding it are done
/// (waiting at most [`RELEASE_WAIT`]), then give its pages back to the system.
fn release(old: Arc<Serving>) {
    let started = std::time::Instant::now();
    while Arc::strong_count(&old) > 1 && started.elapsed() < RELEASE_WAIT {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(old);
    crate::memory::release_freed();
}

/// How long a swapped-out model waits for its last requests before it is
/// dropped anyway (then the last request frees it, and the pages come back
/// with mimalloc's next purge).
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
