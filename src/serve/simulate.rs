//! An A/B test replayed in-process: would shoppers have carted more with the
//! other bundle?
//!
//! The service runs here without a socket, with an experiment between the
//! variants' bundles and a memory event store. The test window of a real
//! event log is replayed shopper by shopper in time order: before each of a
//! shopper's events they ask for recommendations (as a page view would), then
//! the event is recorded exactly as `POST /events` records it — so an
//! add-to-cart of an item the shopper's variant showed within the attribution
//! window is credited to it. Shoppers cart what the log says they carted,
//! whatever they were shown; a variant wins by showing what they were about
//! to cart. The report is the one `GET /experiment` gives.
//!
//! The clock is the log's: answers and events are stamped with the events'
//! times, so the attribution window means what it means in production.
//! Shoppers run in parallel, each one's events in order; every count is a
//! sum over shoppers, so the report does not depend on the interleaving.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::metrics::Metrics;
use super::state::{AppState, Settings};
use super::store::{EventStore, ServiceEvent, StoreSettings};
use super::ServeConfig;
use crate::data::time::format_date;
use crate::data::EventLog;
use crate::engine::{EngineSettings, Request};
use crate::experiment::{Experiment, Report};
use crate::progress;

/// Each shopper's events of `log` at or after `from_ms`, in time order
/// (stable: the log's order breaks ties), shoppers in order of first event.
pub fn shoppers(log: &EventLog, from_ms: i64) -> Vec<(i64, Vec<ServiceEvent>)> {
    let mut order: Vec<usize> = (0..log.len())
        .filter(|&i| log.timestamp_ms[i] >= from_ms)
        .collect();
    order.sort_by_key(|&i| log.timestamp_ms[i]);
    let mut index: HashMap<i64, usize> = HashMap::new();
    let mut out: Vec<(i64, Vec<ServiceEvent>)> = Vec::new();
    for i in order {
        let visitor = log.visitor[i];
        let slot = *index.entry(visitor).or_insert_with(|| {
            out.push((visitor, Vec::new()));
            out.len() - 1
        });
        out[slot].1.push(ServiceEvent {
            item_id: log.item[i],
            kind: log.kind[i],
            timestamp_ms: log.timestamp_ms[i],
        });
    }
    out
}

/// Replay `shoppers` against `state` (which must run an experiment), asking
/// for `k` items before every event, on `workers` tasks; `tick` is called
/// after each shopper. Returns the experiment's report.
pub async fn replay(
    state: &AppState,
    shoppers: Arc<Vec<(i64, Vec<ServiceEvent>)>>,
    k: usize,
    workers: usize,
    tick: impl Fn() + Send + Sync + 'static,
) -> Result<Report> {
    let next = Arc::new(AtomicUsize::new(0));
    let tick = Arc::new(tick);
    let tasks: Vec<_> = (0..workers.max(1))
        .map(|_| {
            let (state, shoppers, next, tick) =
                (state.clone(), shoppers.clone(), next.clone(), tick.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((user, events)) = shoppers.get(i) else {
                        return Ok::<(), anyhow::Error>(());
                    };
                    shopper(&state, *user, events, k).await?;
                    tick();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.context("a replay task failed")??;
    }
    state
        .experiment_report()
        .await
        .context("the state runs no experiment")?
        .context("reading the experiment's counts")
}

/// What [`simulate`] compares and how.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The experiment: its variants' bundles and shares.
    pub experiment: Experiment,
    /// The service settings used (`[serve]`: events per user, attribution window).
    pub serve: ServeConfig,
    /// Rules and served model.
    pub engine: EngineSettings,
    /// Items per answer.
    pub k: usize,
}

/// Load the variants' bundles and replay `log` from `from_ms` against them.
pub fn simulate(simulation: &Simulation, log: &EventLog, from_ms: i64) -> Result<Report> {
    let shoppers = shoppers(log, from_ms);
    if shoppers.is_empty() {
        anyhow::bail!("no events at or after the cutoff: nothing to replay");
    }
    let serve = &simulation.serve;
    let settings = Settings {
        max_k: simulation.k,
        max_exclude: simulation.engine.rules.max_exclude,
        engine: simulation.engine.clone(),
        events_per_user: serve.events_per_user,
        admin_token: None,
        bundle_root: PathBuf::new(),
        experiment: Some(simulation.experiment.clone()),
        feedback_window_ms: serve.feedback.window_ms(),
    };
    if settings.feedback_window_ms == 0 {
        anyhow::bail!("[serve.feedback] attribution_minutes is 0: nothing would be attributed; set it above 0");
    }
    let engines = settings.load_engines()?;
    for (v, engine) in simulation.experiment.variants.iter().zip(&engines) {
        let trained = engine.bundle().manifest.cutoff_ms;
        if from_ms < trained {
            anyhow::bail!(
                "the replay starts {} but variant {}'s bundle {} was trained up to {}: it would be shown events it learnt from; pass a later --cutoff",
                format_date(from_ms),
                v.name,
                engine.path.display(),
                format_date(trained)
            );
        }
    }
    let store = EventStore::memory(&StoreSettings {
        url: "memory".into(),
        events_per_user: serve.events_per_user,
        max_users: shoppers.len() + 1,
        redis_prefix: String::new(),
        shown_per_user: serve.feedback.items_per_user,
        redis_ttl: Duration::ZERO,
        redis_deadline: Duration::ZERO,
    });
    let state = AppState::new(engines, store, Metrics::new(), settings)?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .context("starting the async runtime")?;
    let bar = progress::bar(shoppers.len() as u64, "replaying shoppers");
    let ticker = bar.clone();
    let report = runtime.block_on(replay(
        &state,
        Arc::new(shoppers),
        simulation.k,
        workers,
        move || ticker.inc(1),
    ));
    bar.finish_and_clear();
    report
}

/// One shopper's visit: an answer before each event, then the event.
async fn shopper(state: &AppState, user: i64, events: &[ServiceEvent], k: usize) -> Result<()> {
    let per_user = state.settings.events_per_user;
    for &event in events {
        let (variant, engine) = state.variant(user);
        let recent = state.store.recent(user, per_user).await?;
        let answer = engine.answer(&Request::new(user, &recent, k))?;
        state
            .record_answer(user, &variant, &answer, event.timestamp_ms)
            .await;
        state.record_event(user, event, event.timestamp_ms).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::EventKind;

    #[test]
    fn shoppers_group_the_window_in_time_order() {
        let mut log = EventLog::default();
        log.push(5, 2, EventKind::View, 10);
        log.push(1, 1, EventKind::View, 11);
        log.push(7, 1, EventKind::AddToCart, 11);
        log.push(3, 2, EventKind::View, 12);
        log.push(0, 3, EventKind::View, 12);
        let s = shoppers(&log, 1);
        let ids: Vec<i64> = s.iter().map(|(u, _)| *u).collect();
        assert_eq!(ids, vec![1, 2], "shopper 3 acted before the window only");
        let times: Vec<i64> = s[1].1.iter().map(|e| e.timestamp_ms).collect();
        assert_eq!(times, vec![3, 5]);
        assert_eq!(s[0].1[1].kind, EventKind::AddToCart);
    }
}
