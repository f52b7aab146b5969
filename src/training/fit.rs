//! Fitting every enabled model on the training part and assembling the bundle.
//!
//! The models are fitted by the [`registry`](crate::registry), in its order,
//! so this module names none of them.

use std::sync::Arc;

use anyhow::Result;

use super::prepare::{data_fingerprint, Prepared};
use crate::bundle::{Bundle, DataSummary, Manifest, FORMAT_VERSION};
use crate::config::Config;
use crate::data::ItemInfo;
pub use crate::registry::FitOptions;
use crate::registry::{fit_enabled, FitInput};

/// Train every enabled model on `prepared` and assemble the bundle (not yet saved).
pub fn fit(config: &Config, prepared: &Prepared) -> Result<Bundle> {
    fit_with(config, prepared, FitOptions::default())
}

/// [`fit`] recording what `options` ask for in the manifest's training facts.
pub fn fit_with(config: &Config, prepared: &Prepared, options: FitOptions) -> Result<Bundle> {
    let train = &prepared.train;
    anyhow::ensure!(
        !train.is_empty(),
        "no training events before the cutoff; choose a later cutoff"
    );
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
        models: Vec::new(),
        training: serde_json::Value::Null,
        config: config.clone(),
    };
    let mut bundle = Bundle {
        manifest,
        users: train.users.clone(),
        items: train.items.clone(),
        train: Arc::new(train.clone()),
        item_info: Arc::new(match &prepared.item_features {
            Some(f) => f.dense(&train.items, train.cutoff_ms),
            None => vec![ItemInfo::default(); train.items.len()],
        }),
        popular: None,
        history: None,
        als: None,
        covisit: None,
        two_stage: None,
    };
    let input = FitInput {
        config,
        split: &prepared.split,
        item_features: prepared.item_features.as_ref(),
        options,
    };
    let facts = fit_enabled(&input, &mut bundle)?;
    bundle.manifest.models = bundle.model_names();
    bundle.manifest.training = serde_json::Value::Object(facts);
    Ok(bundle)
}
