//! `two_stage` in the registry: the re-ranker fitted on label windows of the
//! training period, stored as readable JSON trees beside its gain importance;
//! its candidate sources are the bundle's popular, history and als.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;

use super::{inconsistent, FitInput, ModelSpec, Prefitted};
use crate::bundle::Bundle;
use crate::fsio::write_bytes_atomically;
use crate::rank::features::feature_names;
use crate::rank::gbdt::Booster;
use crate::rank::two_stage::{fit_reranker, training_table, SourceConfigs, TrainingTable};
use crate::rank::TwoStage;

pub(super) const SPEC: ModelSpec = ModelSpec {
    name: "two_stage",
    prefit: Some(prefit),
    fit,
    save,
    load,
    present: |b| b.two_stage.is_some(),
};

const RERANKER: &str = "two_stage_reranker.json";
const IMPORTANCE: &str = "two_stage_importance.json";

/// The model around a fitted re-ranker, from the bundle's single-stage models
/// (config validation makes sure they are enabled).
fn assemble(bundle: &Bundle, booster: Booster) -> Result<TwoStage> {
    let (Some(popular), Some(history), Some(als)) = (
        bundle.popular.clone(),
        bundle.history.clone(),
        bundle.als.clone(),
    ) else {
        anyhow::bail!("two_stage needs the popular, history and als models beside it");
    };
    Ok(TwoStage::new(
        bundle.manifest.config.models.two_stage.clone(),
        booster,
        (popular, history, als),
        bundle.train.clone(),
        bundle.item_info.clone(),
    ))
}

/// The re-ranker's training rows and the seconds they took.
struct Rows(TrainingTable, f64);

/// Build the training rows before any model of the bundle is fitted (see
/// [`ModelSpec::prefit`]).
fn prefit(input: &FitInput) -> Result<Prefitted> {
    let t = Instant::now();
    let models = &input.config.models;
    let sources = SourceConfigs {
        popular: &models.popular,
        history: &models.history,
        als: &models.als,
    };
    let table = training_table(
        &input.split.train,
        input.split.cutoff_ms,
        input.split.protocol,
        input.item_features,
        sources,
        &input.config.rules,
        &models.two_stage,
    )?;
    Ok(Box::new(Rows(table, t.elapsed().as_secs_f64())))
}

fn fit(
    input: &FitInput,
    prefitted: Option<Prefitted>,
    bundle: &mut Bundle,
) -> Result<serde_json::Value> {
    let t = Instant::now();
    let Some(Ok(rows)) = prefitted.map(|p| p.downcast::<Rows>()) else {
        anyhow::bail!("two_stage is fitted from the training rows its prefit builds");
    };
    let Rows(table, table_seconds) = *rows;
    let (booster, mut facts) = fit_reranker(table, &input.config.models.two_stage)?;
    let model = assemble(bundle, booster)?;
    facts["seconds"] = json!(table_seconds + t.elapsed().as_secs_f64());
    facts["importance"] = model.importance_json();
    bundle.two_stage = Some(model);
    Ok(facts)
}

fn save(bundle: &Bundle, dir: &Path) -> Result<()> {
    let Some(t) = &bundle.two_stage else {
        return Ok(());
    };
    write_bytes_atomically(&dir.join(RERANKER), t.booster.to_json().as_bytes())?;
    let importance =
        serde_json::to_vec_pretty(&t.importance_json()).context("serialising importance")?;
    write_bytes_atomically(&dir.join(IMPORTANCE), &importance)
}

fn load(bundle: &mut Bundle, dir: &Path) -> Result<()> {
    let path = dir.join(RERANKER);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let booster =
        Booster::from_json(&text).with_context(|| format!("reading {}", path.display()))?;
    if booster.feature_names() != feature_names() {
        return Err(inconsistent(
            dir,
            format!(
                "{} was trained on other features than this recsys computes; retrain it",
                path.display()
            ),
        ));
    }
    let model = assemble(bundle, booster).map_err(|e| inconsistent(dir, e))?;
    bundle.two_stage = Some(model);
    Ok(())
}
