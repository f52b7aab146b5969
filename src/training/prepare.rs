//! Loading, validating and splitting the data a run trains on.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::bundle::fingerprint;
use crate::config::Config;
use crate::config::DataConfig;
use crate::data::{
    load_events, load_item_features, load_item_properties, split, Cutoff, ItemFeatures,
    LoadedEvents, Protocol, Split, TrainSet,
};
use crate::progress;

/// Loaded, validated and split data, ready to train on.
pub struct Prepared {
    /// The event file.
    pub events_path: PathBuf,
    /// The events as loaded, with what loading did.
    pub loaded: LoadedEvents,
    /// Item features, if configured.
    pub item_features: Option<ItemFeatures>,
    /// Seconds reading the item files took.
    pub items_seconds: f64,
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
    let items_started = std::time::Instant::now();
    let item_features = load_items(&config.data)?;
    let items_seconds = items_started.elapsed().as_secs_f64();
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
        items_seconds,
        split,
        train,
    })
}

impl Prepared {
    /// The split with its test window only: all an evaluation reads. The
    /// loaded log, the training part and its index are dropped (2.3 GB at
    /// ten times RetailRocket, beside the bundle and its indexes).
    pub fn into_test_window(self) -> Split {
        let mut split = self.split;
        split.train = Default::default();
        split
    }

    /// Split the loaded events again at `cutoff_ms` under `protocol`, the
    /// test window ending before `until_ms` (the end of the data when `None`).
    pub fn resplit(&mut self, cutoff_ms: i64, protocol: Protocol, until_ms: Option<i64>) {
        let mut split = split(&self.loaded.log, cutoff_ms, protocol);
        if let Some(until) = until_ms {
            let test = &split.test;
            split.test = test.filter(|i| test.timestamp_ms[i] < until);
        }
        self.train = TrainSet::new(&split.train, cutoff_ms);
        self.split = split;
    }
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

/// The item descriptions `data` names: a flat item-features file, the raw
/// properties files with their category tree, or none.
pub fn load_items(data: &DataConfig) -> Result<Option<ItemFeatures>> {
    if let Some(path) = &data.item_features {
        return load_item_features(path)
            .with_context(|| format!("loading item features from {}", path.display()))
            .map(Some);
    }
    if data.item_properties.is_empty() {
        return Ok(None);
    }
    let spin = progress::spinner("loading item properties");
    let loaded = load_item_properties(
        &data.item_properties,
        data.category_tree.as_deref(),
        data.bad_rows,
    );
    spin.finish_and_clear();
    let loaded = loaded.context("loading item properties")?;
    if loaded.skipped_rows > 0 {
        tracing::warn!(
            "item properties: skipped {} of {} rows ([data] bad_rows = \"skip\")",
            loaded.skipped_rows,
            loaded.rows
        );
    }
    Ok(Some(loaded.features))
}
