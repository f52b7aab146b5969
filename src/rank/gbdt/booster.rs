//! [`Booster`]: the boosting loop, prediction and feature importance.
//!
//! Each round computes the objective's gradients at the current training
//! scores, grows one tree on them ([`learner`](super::learner)), and adds the
//! tree to the training scores (by leaf ranges, no tree walk) and to the
//! validation scores (by walking the tree on the raw validation rows, which is
//! exactly how a deployed model scores). The validation metric drives early
//! stopping; the trees after the best round are dropped, so the returned model
//! is the best one seen.
//!
//! Randomness (binning sample, bagged rows, sampled features) comes from one
//! generator stream per round derived from the seed, and every parallel step
//! is order-independent, so a seed fixes the model bit for bit.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bins::BinnedData;
use super::config::{GbdtConfig, Objective};
use super::dataset::Dataset;
use super::error::FitError;
use super::hist::{GradPair, SplitRules};
use super::learner::{Learner, TreeParams};
use super::model::ModelFile;
use super::objective::{self, LambdaRank, RankTable};
use super::quickscorer::QuickScorer;
use super::tree::{Tree, BLOCK};
use crate::rng::Rng;

/// What happened in one boosting round, passed to the `on_round` callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundInfo {
    /// The round, from 0 (the model then has `round + 1` trees).
    pub round: usize,
    /// The training metric after this round, if `eval_train` is set: NDCG@k
    /// for LambdaRank, log-loss for Binary.
    pub train_metric: Option<f64>,
    /// The validation metric after this round, if there is a validation set.
    pub valid_metric: Option<f64>,
}

/// A fitted ensemble of trees.
///
/// The score of a row is `base_score + Σ tree(row)`. For LambdaRank only the
/// order of scores within a group means anything; for Binary it is the
/// log-odds of a positive label.
///
/// It serialises (serde) as the readable model file described in
/// `model.rs`; deserialising checks the file is a consistent model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ModelFile", into = "ModelFile")]
pub struct Booster {
    pub(super) objective: Objective,
    pub(super) feature_names: Vec<String>,
    pub(super) base_score: f32,
    pub(super) trees: Vec<Tree>,
    pub(super) best_iteration: Option<usize>,
    pub(super) best_valid_metric: Option<f32>,
    pub(super) config: GbdtConfig,
    /// The trees compiled for [`Booster::predict`]; `None` when a tree has
    /// more than 64 leaves, and the trees are walked.
    pub(super) scorer: Option<QuickScorer>,
}

/// Rows scored per task of [`Booster::predict`]: enough to amortise a task and
/// keep one tree's nodes hot while it is applied to all of them.
const PREDICT_CHUNK: usize = 256;

impl Booster {
    /// Fits a model on `train`, watching `valid` (same features) for early
    /// stopping, and calls `on_round` after every round.
    pub fn fit(
        train: &Dataset,
        valid: Option<&Dataset>,
        config: &GbdtConfig,
        mut on_round: impl FnMut(RoundInfo),
    ) -> Result<Booster, FitError> {
        config.validate()?;
        check_inputs(train, valid, config)?;

        let data = BinnedData::build(train, config.max_bins, config.bin_sample_rows, config.seed);
        let labels = train.labels();
        let n_rows = train.n_rows();
        let base_score = match config.objective {
            Objective::LambdaRank { .. } => 0.0,
            Objective::Binary => {
                let mean = labels.iter().map(|&l| l as f64).sum::<f64>() / n_rows as f64;
                let p = mean.clamp(1e-15, 1.0 - 1e-15);
                (p / (1.0 - p)).ln() as f32
            }
        };
        let table = |d: &Dataset| match config.objective {
            Objective::LambdaRank { ndcg_at } => {
                Some(RankTable::new(d.labels(), d.group_offsets(), ndcg_at))
            }
            Objective::Binary => None,
        };
        let mut ranking = table(train).map(|table| Ranking {
            cfg: LambdaRank {
                k: table.k,
                sigma: config.lambdarank_sigmoid,
                norm: config.lambdarank_norm,
            },
            order: table.initial_order(),
            table,
        });
        let valid_table = valid.and_then(table);

        let params = TreeParams {
            num_leaves: config.num_leaves,
            max_depth: config.depth_limit(),
            rules: SplitRules {
                lambda_l2: config.lambda_l2,
                min_data_in_leaf: config.min_data_in_leaf.max(1) as u64,
                min_sum_hessian: config.min_sum_hessian_in_leaf,
                min_gain_to_split: config.min_gain_to_split,
            },
            learning_rate: config.learning_rate,
        };
        let mut learner = Learner::new(&data, params);
        let mut scores = vec![base_score as f64; n_rows];
        let mut valid_scores = valid.map(|v| vec![base_score as f64; v.n_rows()]);
        let mut grads = vec![GradPair::default(); n_rows];
        let mut trees: Vec<Tree> = Vec::new();
        let mut best: Option<(usize, f64)> = None;
        let n_bag = ((config.bagging_fraction * n_rows as f64).round() as usize).clamp(1, n_rows);
        let n_feat = ((config.feature_fraction * data.usable.len() as f64).round() as usize)
            .clamp(1.min(data.usable.len()), data.usable.len());

        for round in 0..config.num_trees {
            match ranking.as_mut() {
                Some(rk) => objective::lambdarank_gradients(
                    &rk.cfg,
                    &rk.table,
                    &mut rk.order,
                    labels,
                    &scores,
                    &mut grads,
                ),
                None => objective::binary_gradients(labels, &scores, &mut grads),
            }
            let mut rng = Rng::for_stream(config.seed, round as u64);
            let bag: Option<Vec<u32>> = (n_bag < n_rows).then(|| {
                rng.sample_sorted(n_rows, n_bag)
                    .into_iter()
                    .map(|r| r as u32)
                    .collect()
            });
            let features: Vec<usize> = if n_feat < data.usable.len() {
                rng.sample_sorted(data.usable.len(), n_feat)
                    .into_iter()
                    .map(|i| data.usable[i])
                    .collect()
            } else {
                data.usable.clone()
            };

            let tree = learner.grow(&grads, bag.as_deref(), &features);
            if let Some(&value) = tree.leaf_values.iter().find(|v| !v.is_finite()) {
                return Err(FitError::Diverged {
                    round,
                    value: value as f64,
                });
            }
            if bag.is_some() {
                // Out-of-bag rows were not partitioned: walk the tree for all.
                add_tree_scores(&tree, train.features(), train.n_features(), &mut scores);
            } else {
                learner.add_to_scores(&tree, &mut scores);
            }
            let valid_metric = match (valid, valid_scores.as_mut()) {
                (Some(v), Some(vs)) => {
                    add_tree_scores(&tree, v.features(), v.n_features(), vs);
                    metric(valid_table.as_ref(), v, vs)
                }
                _ => None,
            };
            let train_metric = config
                .eval_train
                .then(|| metric(ranking.as_ref().map(|r| &r.table), train, &scores))
                .flatten();
            trees.push(tree);
            on_round(RoundInfo {
                round,
                train_metric,
                valid_metric,
            });
            if let Some(m) = valid_metric {
                let improved = match best {
                    None => true,
                    Some((_, b)) => match config.objective {
                        Objective::LambdaRank { .. } => m > b,
                        Objective::Binary => m < b,
                    },
                };
                if improved {
                    best = Some((round, m));
                }
                if let (Some(patience), Some((best_round, _))) =
                    (config.early_stopping_rounds, best)
                {
                    if round - best_round >= patience {
                        break;
                    }
                }
            }
        }
        if config.early_stopping_rounds.is_some() {
            if let Some((best_round, _)) = best {
                trees.truncate(best_round + 1);
            }
        }
        Ok(Booster {
            objective: config.objective,
            feature_names: train.feature_names().to_vec(),
            base_score,
            scorer: QuickScorer::new(&trees, train.n_features()),
            trees,
            best_iteration: best.map(|b| b.0),
            best_valid_metric: best.map(|b| b.1 as f32),
            config: config.clone(),
        })
    }

    /// The score of one row (`n_features` values, `NaN` for missing).
    ///
    /// # Panics
    ///
    /// If `row` does not have exactly `n_features` values.
    #[inline]
    pub fn predict_row(&self, row: &[f32]) -> f32 {
        assert_eq!(
            row.len(),
            self.feature_names.len(),
            "row length must equal n_features"
        );
        let mut s = self.base_score as f64;
        for t in &self.trees {
            s += t.predict(row);
        }
        s as f32
    }

    /// The scores of a row-major table, in parallel over chunks of rows.
    /// Equal to [`Booster::predict_row`] on each row, bit for bit.
    ///
    /// # Panics
    ///
    /// If `n_features` differs from the model's or does not divide the buffer.
    pub fn predict(&self, features_row_major: &[f32], n_features: usize) -> Vec<f32> {
        assert_eq!(
            n_features,
            self.feature_names.len(),
            "n_features must equal the model's"
        );
        assert_eq!(
            features_row_major.len() % n_features,
            0,
            "buffer length must be a multiple of n_features"
        );
        let n_rows = features_row_major.len() / n_features;
        let mut out = vec![0f32; n_rows];
        let chunk = |(out, rows): (&mut [f32], &[f32])| {
            let mut acc = [self.base_score as f64; PREDICT_CHUNK];
            let acc = &mut acc[..out.len()];
            if let Some(scorer) = &self.scorer {
                scorer.add_rows(rows, n_features, acc);
            } else {
                // Tree-major within the chunk: one tree's nodes stay in L1
                // while it scores every row; per row the trees are still
                // added in model order, so the sum equals `predict_row`'s.
                for tree in &self.trees {
                    for (a, rows) in acc.chunks_mut(BLOCK).zip(rows.chunks(BLOCK * n_features)) {
                        tree.add_block(rows, n_features, a);
                    }
                }
            }
            for (o, a) in out.iter_mut().zip(acc.iter()) {
                *o = *a as f32;
            }
        };
        if n_rows <= PREDICT_CHUNK {
            // One request's candidates: on the calling thread, no hand-off to the pool.
            chunk((&mut out, features_row_major));
        } else {
            out.par_chunks_mut(PREDICT_CHUNK)
                .zip(features_row_major.par_chunks(PREDICT_CHUNK * n_features))
                .for_each(chunk);
        }
        out
    }

    /// Total split gain per feature over all trees, largest first (ties in
    /// feature order); features never split on are listed with 0.
    pub fn feature_importance(&self) -> Vec<(String, f64)> {
        let mut gain = vec![0.0; self.feature_names.len()];
        for tree in &self.trees {
            for (node, g) in tree.nodes.iter().zip(&tree.gains) {
                gain[node.feature()] += *g as f64;
            }
        }
        let mut out: Vec<(String, f64)> = self.feature_names.iter().cloned().zip(gain).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    /// The objective the model was fitted for.
    pub fn objective(&self) -> Objective {
        self.objective
    }

    /// The feature columns a row must have, in order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Number of trees kept.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// The starting score every tree adds to.
    pub fn base_score(&self) -> f64 {
        self.base_score as f64
    }

    /// The round with the best validation metric, if there was a validation set.
    pub fn best_iteration(&self) -> Option<usize> {
        self.best_iteration
    }

    /// The validation metric at [`Booster::best_iteration`], to `f32`
    /// precision (as the model file keeps it).
    pub fn best_valid_metric(&self) -> Option<f64> {
        self.best_valid_metric.map(f64::from)
    }

    /// The settings the model was fitted with.
    pub fn config(&self) -> &GbdtConfig {
        &self.config
    }
}

/// The early-stopping metric of `scores` on `data`: mean NDCG@k over groups
/// with a positive label when there is a rank table (LambdaRank), else
/// log-loss.
/// What LambdaRank carries from round to round.
struct Ranking {
    cfg: LambdaRank,
    /// Gains and ideal DCGs of the training groups.
    table: RankTable,
    /// Each group's rows in last round's score order (see
    /// [`objective::lambdarank_gradients`]).
    order: Vec<u32>,
}

/// `None` when NDCG is undefined (no group with a positive label), which
/// `fit` rules out for a validation set but not for the training set.
fn metric(table: Option<&RankTable>, data: &Dataset, scores: &[f64]) -> Option<f64> {
    match table {
        Some(t) => t.mean_ndcg(scores),
        None => Some(objective::log_loss(data.labels(), scores)),
    }
}

/// Adds `tree`'s output on every row of a row-major table to `scores`.
fn add_tree_scores(tree: &Tree, features: &[f32], n_features: usize, scores: &mut [f64]) {
    const CHUNK: usize = 1 << 12;
    scores
        .par_chunks_mut(CHUNK)
        .zip(features.par_chunks(CHUNK * n_features))
        .for_each(|(scores, rows)| {
            for (s, rows) in scores
                .chunks_mut(BLOCK)
                .zip(rows.chunks(BLOCK * n_features))
            {
                tree.add_block(rows, n_features, s);
            }
        });
}

/// Checks that `train` and `valid` fit together and suit the objective.
fn check_inputs(
    train: &Dataset,
    valid: Option<&Dataset>,
    config: &GbdtConfig,
) -> Result<(), FitError> {
    if train.n_rows() == 0 {
        return Err(FitError::EmptyTrain);
    }
    if train.n_rows() > u32::MAX as usize {
        return Err(FitError::TooManyRows {
            n_rows: train.n_rows(),
        });
    }
    if config.early_stopping_rounds.is_some() && valid.is_none() {
        return Err(FitError::EarlyStoppingWithoutValid);
    }
    let (objective, max) = match config.objective {
        Objective::LambdaRank { .. } => ("lambdarank", 31.0),
        Objective::Binary => ("binary", 1.0),
    };
    let mut sets = vec![("training", train)];
    if let Some(v) = valid {
        let (t, w) = (train.feature_names(), v.feature_names());
        if let Some(index) = (0..t.len().max(w.len())).find(|&i| t.get(i) != w.get(i)) {
            return Err(FitError::ValidFeatures {
                index,
                train: t.get(index).map_or("(none)".into(), |n| format!("`{n}`")),
                valid: w.get(index).map_or("(none)".into(), |n| format!("`{n}`")),
            });
        }
        sets.push(("validation", v));
    }
    for (set, d) in sets {
        if let Some(row) = d.labels().iter().position(|&l| !(0.0..=max).contains(&l)) {
            return Err(FitError::BadLabel {
                objective,
                max,
                set,
                row,
                value: d.labels()[row],
            });
        }
    }
    if let (Objective::LambdaRank { .. }, Some(v)) = (config.objective, valid) {
        // Labels are ≥ 0 here, so a positive label makes its group rankable.
        if !v.labels().iter().any(|&l| l > 0.0) {
            return Err(FitError::NoRankableValidGroup);
        }
    }
    Ok(())
}
