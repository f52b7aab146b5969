//! Fitting every enabled model on the training part and assembling the bundle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde_json::json;
use sprs::CsMat;

use super::prepare::{data_fingerprint, Prepared};
use crate::bundle::{Bundle, DataSummary, Manifest, FORMAT_VERSION};
use crate::config::{Config, ModelsConfig};
use crate::data::{interaction_matrix, ItemInfo, TrainSet};
use crate::models::als::AlsTrainer;
use crate::models::factors::dot;
use crate::models::{Als, AlsConfig, History, Popular};
use crate::progress;
use crate::rank::two_stage::{fit_reranker, training_table, SourceConfigs, TwoStage};

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

/// What fitting records beyond the models themselves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FitOptions {
    /// Record the ALS objective after every iteration (`loss_curve` in the
    /// `als` facts, for experiment tracking). Off unless asked for (`train`
    /// asks when a tracking server is set): each value costs two Gram matrices
    /// and a pass over the interactions ([`als_loss`]), about a third of an
    /// iteration at full RetailRocket size (the reference
    /// [`AlsTrainer::loss`] costs more than a whole iteration); its time is
    /// reported apart (`loss_seconds`) and left out of the model's `seconds`.
    pub record_als_loss: bool,
}

/// Fit the single-stage models that `wanted` names on `train`; `label`
/// prefixes the progress bar (`als`, `two_stage: als for label window 1`, …).
pub fn fit_single_stage(
    train: &TrainSet,
    models: &ModelsConfig,
    wanted: impl Fn(&str) -> bool,
    label: &str,
) -> Result<SingleStage> {
    fit_single_stage_with(train, models, wanted, label, FitOptions::default())
}

/// [`fit_single_stage`] recording what `options` ask for.
pub fn fit_single_stage_with(
    train: &TrainSet,
    models: &ModelsConfig,
    wanted: impl Fn(&str) -> bool,
    label: &str,
    options: FitOptions,
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
        let mut losses = Vec::new();
        let mut loss_time = Duration::ZERO;
        let user_items = (options.record_als_loss && !matrix.is_csr()).then(|| matrix.to_csr());
        let model = Als::fit(&matrix, &models.als, |_, trainer| {
            if options.record_als_loss {
                let t = Instant::now();
                losses.push(als_loss(
                    trainer,
                    user_items.as_ref().unwrap_or(&matrix),
                    &models.als,
                ));
                loss_time += t.elapsed();
            }
            bar.inc(1)
        })
        .with_context(|| format!("training {label}"));
        bar.finish_and_clear();
        out.als = Some(model?);
        let mut facts = json!({
            "seconds": t.elapsed().saturating_sub(loss_time).as_secs_f64(),
            "nnz": matrix.nnz(),
            "factors": models.als.factors,
        });
        if options.record_als_loss {
            facts["loss_curve"] = json!(losses);
            facts["loss_seconds"] = json!(loss_time.as_secs_f64());
        }
        out.facts.insert("als".into(), facts);
    }
    Ok(out)
}

/// The ALS objective per matrix cell, the same value as [`AlsTrainer::loss`]
/// (the obviously-correct reference, one f×f quadratic form per user) in a
/// fraction of its time, for recording the loss after every iteration.
///
/// ```text
/// Σ_u,i (x_u·y_i)² = tr((XᵀX)(YᵀY))                  two Gram matrices, one sgemm each
/// loss = [tr(XᵀX·YᵀY) + Σ_observed (c (1 − s)² − s²) + λ (tr XᵀX + tr YᵀY)] / (users · items)
/// ```
///
/// where `s = x_u·y_i` and `c = 1 + alpha·w`: every cell counted as if its
/// preference were 0, then the observed cells corrected. `user_items` is the
/// users × items weight matrix in CSR form.
pub fn als_loss(trainer: &AlsTrainer, user_items: &CsMat<f32>, config: &AlsConfig) -> f64 {
    let (users, items) = (trainer.user_factors(), trainer.item_factors());
    let (gx, gy) = (users.gram(), items.gram());
    let f = users.dim;
    let all_cells: f64 = gx
        .iter()
        .zip(&gy)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum();
    let trace = |g: &[f32]| (0..f).map(|a| f64::from(g[a * f + a])).sum::<f64>();
    let alpha = f64::from(config.alpha);
    let observed: f64 = (0..users.rows)
        .into_par_iter()
        .map(|u| {
            let x = users.row(u);
            let row = user_items.outer_view(u).expect("row in range");
            row.iter()
                .map(|(i, &w)| {
                    let s = f64::from(dot(x, items.row(i)));
                    let c = 1.0 + alpha * f64::from(w);
                    c * (1.0 - s) * (1.0 - s) - s * s
                })
                .sum::<f64>()
        })
        .sum();
    let penalty = f64::from(config.regularization) * (trace(&gx) + trace(&gy));
    let cells = (users.rows as f64 * items.rows as f64).max(1.0);
    (all_cells + observed + penalty) / cells
}

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
    let models = &config.models;
    let single = fit_single_stage_with(
        train,
        models,
        |name| models.is_enabled(name),
        "als",
        options,
    )?;
    let mut facts = single.facts;
    let popular = single.popular.map(Arc::new);
    let history = single.history.map(Arc::new);
    let als = single.als.map(Arc::new);
    let train_arc = Arc::new(train.clone());
    let item_info = Arc::new(match &prepared.item_features {
        Some(f) => f.dense(&train.items),
        None => vec![ItemInfo::default(); train.items.len()],
    });

    // Config validation guarantees two_stage's sources are enabled too.
    let two_stage = if models.is_enabled("two_stage") {
        let t = Instant::now();
        let ts = &models.two_stage;
        let sources = SourceConfigs {
            popular: &models.popular,
            history: &models.history,
            als: &models.als,
        };
        let table = training_table(
            &prepared.split.train,
            prepared.split.cutoff_ms,
            prepared.split.protocol,
            prepared.item_features.as_ref(),
            sources,
            &config.rules,
            ts,
        )?;
        let (booster, mut fit_facts) = fit_reranker(table, ts)?;
        let fitted = "fitted for two_stage";
        let model = TwoStage::new(
            ts.clone(),
            booster,
            (
                popular.clone().expect(fitted),
                history.clone().expect(fitted),
                als.clone().expect(fitted),
            ),
            train_arc.clone(),
            item_info.clone(),
        );
        fit_facts["seconds"] = json!(t.elapsed().as_secs_f64());
        fit_facts["importance"] = model.importance_json();
        facts.insert("two_stage".into(), fit_facts);
        Some(model)
    } else {
        None
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
        train: train_arc,
        item_info,
        popular,
        history,
        als,
        two_stage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_als_loss_agrees_with_the_reference() {
        // A small random users × items matrix with a few interactions per row.
        let (users, items) = (60, 40);
        let mut rng = crate::rng::Rng::new(7);
        let mut cells = sprs::TriMat::new((users, items));
        for u in 0..users {
            for _ in 0..1 + u % 5 {
                let i = (rng.next_u64() % items as u64) as usize;
                cells.add_triplet(u, i, 1.0 + (rng.next_u64() % 5) as f32);
            }
        }
        let matrix: CsMat<f32> = cells.to_csr();
        let config = AlsConfig {
            factors: 8,
            alpha: 2.0,
            regularization: 0.1,
            ..AlsConfig::default()
        };
        let mut trainer = AlsTrainer::new(&matrix, &config).unwrap();
        for _ in 0..3 {
            let (fast, reference) = (als_loss(&trainer, &matrix, &config), trainer.loss());
            assert!(
                (fast - reference).abs() <= 1e-5 * reference.abs().max(1e-3),
                "fast {fast} vs reference {reference}"
            );
            trainer.iterate().unwrap();
        }
    }
}
