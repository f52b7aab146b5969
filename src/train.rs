//! The training side: from a config to a bundle.
//!
//! [`prepare`] loads and validates the events, resolves the cutoff and splits;
//! [`fit`] trains every enabled model on the training part and assembles the
//! [`Bundle`]. The CLI adds printing around these; tests and benchmarks call
//! them directly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;

use crate::bundle::offline::{active_users, pick_model, OfflineLists};
use crate::bundle::{fingerprint, Bundle, DataSummary, Manifest, FORMAT_VERSION};
use crate::config::{Config, ModelsConfig};
use crate::data::{
    interaction_matrix, load_events, load_item_features, split, Cutoff, ItemFeatures, ItemInfo,
    LoadedEvents, Protocol, Split, TrainSet,
};
use crate::models::{Als, History, Popular, Recommender};
use crate::progress;
use crate::rank::two_stage::{fit_reranker, training_table, TwoStage};

/// Loaded, validated and split data, ready to train on.
pub struct Prepared {
    /// The event file.
    pub events_path: PathBuf,
    /// The events as loaded, with what loading did.
    pub loaded: LoadedEvents,
    /// Item features, if configured.
    pub item_features: Option<ItemFeatures>,
    /// The hold-out.
    pub split: Split,
    /// The training part, indexed.
    pub train: TrainSet,
}

/// Load `config`'s data (or `events` instead) and split it at `cutoff` under `protocol`.
pub fn prepare(
    config: &Config,
    events: Option<PathBuf>,
    cutoff: &Cutoff,
    protocol: Protocol,
) -> Result<Prepared> {
    let events_path = events.unwrap_or_else(|| config.data.events.clone());
    let spin = progress::spinner(&format!("loading {}", events_path.display()));
    let loaded = load_events(&events_path, config.data.bad_rows)
        .with_context(|| format!("loading events from {}", events_path.display()));
    spin.finish_and_clear();
    let loaded = loaded?;
    let item_features = match &config.data.item_features {
        Some(path) => Some(
            load_item_features(path)
                .with_context(|| format!("loading item features from {}", path.display()))?,
        ),
        None => None,
    };
    let cutoff_ms = cutoff
        .resolve(&loaded.log)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("splitting {}", events_path.display()))?;
    let split = split(&loaded.log, cutoff_ms, protocol);
    let train = TrainSet::new(&split.train, cutoff_ms);
    Ok(Prepared {
        events_path,
        loaded,
        item_features,
        split,
        train,
    })
}

/// A fingerprint of every loaded event, to recognise the data a bundle came from.
pub fn data_fingerprint(loaded: &LoadedEvents) -> String {
    let log = &loaded.log;
    fingerprint((0..log.len()).flat_map(|i| {
        [
            log.timestamp_ms[i] as u64,
            log.visitor[i] as u64,
            log.item[i] as u64,
            log.kind[i] as u64,
        ]
    }))
}

/// The single-stage models fitted on one period, with what fitting found.
#[derive(Default)]
pub struct SingleStage {
    /// `popular`, if wanted.
    pub popular: Option<Popular>,
    /// `history`, if wanted.
    pub history: Option<History>,
    /// `als`, if wanted.
    pub als: Option<Als>,
    /// Per-model facts (seconds, sizes) for the manifest.
    pub facts: serde_json::Map<String, serde_json::Value>,
}

/// Fit the single-stage models that `wanted` names on `train`; `label`
/// prefixes the progress bar (`als`, `two_stage: als for label window 1`, …).
pub fn fit_single_stage(
    train: &TrainSet,
    models: &ModelsConfig,
    wanted: impl Fn(&str) -> bool,
    label: &str,
) -> Result<SingleStage> {
    let mut out = SingleStage::default();
    if wanted("popular") {
        let t = Instant::now();
        let m = Popular::fit(train, &models.popular);
        out.facts.insert(
            "popular".into(),
            json!({"seconds": t.elapsed().as_secs_f64(), "items": m.ranked.len()}),
        );
        out.popular = Some(m);
    }
    if wanted("history") {
        let t = Instant::now();
        let m = History::fit(train, &models.history);
        out.facts.insert(
            "history".into(),
            json!({"seconds": t.elapsed().as_secs_f64(), "entries": m.items.len()}),
        );
        out.history = Some(m);
    }
    if wanted("als") {
        let t = Instant::now();
        let matrix = interaction_matrix(train, &models.als.weights);
        let bar = progress::bar(models.als.iterations as u64, label);
        let model = Als::fit(&matrix, &models.als, |_, _| bar.inc(1))
            .with_context(|| format!("training {label}"));
        bar.finish_and_clear();
        out.als = Some(model?);
        out.facts.insert(
            "als".into(),
            json!({"seconds": t.elapsed().as_secs_f64(), "nnz": matrix.nnz(), "factors": models.als.factors}),
        );
    }
    Ok(out)
}

/// Train every enabled model on `prepared` and assemble the bundle (not yet saved).
pub fn fit(config: &Config, prepared: &Prepared) -> Result<Bundle> {
    let train = &prepared.train;
    anyhow::ensure!(
        !train.is_empty(),
        "no training events before the cutoff; choose a later cutoff"
    );
    let models = &config.models;
    let single = fit_single_stage(train, models, |name| models.is_enabled(name), "als")?;
    let mut facts = single.facts;
    let popular = single.popular.map(Arc::new);
    let history = single.history.map(Arc::new);
    let als = single.als.map(Arc::new);

    // Config validation guarantees two_stage's sources are enabled too.
    let two_stage = if models.is_enabled("two_stage") {
        let t = Instant::now();
        let ts = &models.two_stage;
        let table = training_table(
            &prepared.split.train,
            prepared.split.cutoff_ms,
            prepared.split.protocol,
            prepared.item_features.as_ref(),
            models,
            ts,
        )?;
        let (booster, mut fit_facts) = fit_reranker(table, ts)?;
        let items = match &prepared.item_features {
            Some(f) => f.dense(&train.items),
            None => vec![ItemInfo::default(); train.items.len()],
        };
        let fitted = "fitted for two_stage";
        let model = TwoStage::new(
            ts.clone(),
            booster,
            (
                popular.clone().expect(fitted),
                history.clone().expect(fitted),
                als.clone().expect(fitted),
            ),
            Arc::new(train.clone()),
            items,
        );
        fit_facts["seconds"] = json!(t.elapsed().as_secs_f64());
        fit_facts["importance"] = model.importance_json();
        facts.insert("two_stage".into(), fit_facts);
        Some(model)
    } else {
        None
    };

    let offline = {
        let models: Vec<&dyn Recommender> = [
            popular.as_deref().map(|m| m as &dyn Recommender),
            history.as_deref().map(|m| m as &dyn Recommender),
            als.as_deref().map(|m| m as &dyn Recommender),
            two_stage.as_ref().map(|m| m as &dyn Recommender),
        ]
        .into_iter()
        .flatten()
        .collect();
        let names: Vec<&str> = models.iter().map(|m| m.name()).collect();
        let wanted = config.offline.model.as_deref();
        let name = pick_model(wanted, &names).context("no model for the offline lists")?;
        let model = models[names.iter().position(|&n| n == name).expect("picked from names")];
        let t = Instant::now();
        let users = active_users(train, config.offline.active_days);
        let lists = OfflineLists::compute(model, &users, config.offline.top);
        facts.insert(
            "offline".into(),
            json!({"model": name, "users": users.len(), "top": config.offline.top,
                   "seconds": t.elapsed().as_secs_f64()}),
        );
        lists
    };

    let now = chrono::Utc::now();
    let data_fp = data_fingerprint(&prepared.loaded);
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        run_id: format!("{}-{}", now.format("%Y%m%dT%H%M%S%.3fZ"), &data_fp[..8]).replace('.', ""),
        created_at: now.to_rfc3339(),
        recsys_version: env!("CARGO_PKG_VERSION").to_string(),
        cutoff_ms: prepared.split.cutoff_ms,
        protocol: prepared.split.protocol,
        data: DataSummary {
            events_path: prepared.events_path.display().to_string(),
            fingerprint: data_fp,
            events: prepared.loaded.log.len(),
            train_events: train.len(),
            users: train.users.len(),
            items: train.items.len(),
        },
        models: [
            popular.as_ref().map(|_| "popular"),
            history.as_ref().map(|_| "history"),
            als.as_ref().map(|_| "als"),
            two_stage.as_ref().map(|_| "two_stage"),
        ]
        .into_iter()
        .flatten()
        .map(String::from)
        .collect(),
        training: serde_json::Value::Object(facts),
        config: config.clone(),
    };
    Ok(Bundle {
        manifest,
        users: train.users.clone(),
        items: train.items.clone(),
        popular,
        history,
        als,
        two_stage,
        offline: Some(offline),
    })
}
