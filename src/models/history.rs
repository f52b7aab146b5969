//! `history`: the user's own recent items, by recency and frequency.
//!
//! Shoppers come back: on RetailRocket most add-to-carts are of items the shopper
//! looked at before. Each past event adds its kind's weight, halved every
//! `half_life_days` of age at the cutoff, to its item's score. Already-seen items
//! are the whole point here; only the request's [`Filter`] removes any.
//!
//! Training stores each user's scores as of the cutoff `C`. Events received
//! since then are merged at request time, as of `T` = the latest of them:
//!
//! ```text
//! score_i(T) = score_i(C) · 2^(−(T − C)/h) + Σ_{new e on i} w_e · 2^(−(T − t_e)/h)
//! ```
//!
//! computed in log space (f64), so that a shopper returning years later still
//! gets their items in the right order instead of a list of underflowed zeros.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::topk::sort_best_first;
use super::{Context, Filter, Recommender, Scored};
use crate::data::matrix::sum_by_item;
use crate::data::time::DAY_MS;
use crate::data::{EventWeights, TrainSet};

/// Settings of the `history` model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Age in days at which an event counts half.
    pub half_life_days: f32,
    /// Items kept per user.
    pub max_items: usize,
    /// Weight of each event kind.
    pub weights: EventWeights,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            half_life_days: 7.0,
            max_items: 100,
            weights: EventWeights {
                view: 1.0,
                addtocart: 3.0,
                transaction: 1.0,
            },
        }
    }
}

/// Each user's scored items, CSR-style.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Settings it was fitted with (new events are weighted alike).
    pub config: HistoryConfig,
    /// The time the scores describe (the training cutoff), UTC ms.
    pub cutoff_ms: i64,
    /// User `u`'s items are `items[offsets[u]..offsets[u + 1]]`, best first.
    pub offsets: Vec<u64>,
    /// Item indices.
    pub items: Vec<u32>,
    /// Scores, parallel to `items`.
    pub scores: Vec<f32>,
}

impl History {
    /// Score every user's past items in `train`.
    pub fn fit(train: &TrainSet, config: &HistoryConfig) -> History {
        let decay = std::f32::consts::LN_2 / (config.half_life_days.max(1e-3) * DAY_MS as f32);
        let per_user: Vec<Vec<Scored>> = (0..train.users.len() as u32)
            .into_par_iter()
            .map(|u| {
                let mut merged = sum_by_item(
                    train
                        .user_events(u)
                        .map(|e| {
                            let age = (train.cutoff_ms - train.timestamp_ms[e]) as f32;
                            let w = config.weights.of(train.kind[e]) * (-decay * age).exp();
                            (train.item[e], w)
                        })
                        .collect(),
                );
                sort_best_first(&mut merged);
                merged.truncate(config.max_items);
                merged
            })
            .collect();
        let mut offsets = Vec::with_capacity(per_user.len() + 1);
        offsets.push(0u64);
        let mut items = Vec::new();
        let mut scores = Vec::new();
        for list in per_user {
            for (i, s) in list {
                items.push(i);
                scores.push(s);
            }
            offsets.push(items.len() as u64);
        }
        History {
            config: config.clone(),
            cutoff_ms: train.cutoff_ms,
            offsets,
            items,
            scores,
        }
    }

    /// Dense user `u`'s stored list, best first.
    fn stored(&self, u: u32) -> impl Iterator<Item = Scored> + '_ {
        let u = u as usize;
        let range = if u < self.users() {
            self.offsets[u] as usize..self.offsets[u + 1] as usize
        } else {
            0..0
        };
        self.items[range.clone()]
            .iter()
            .copied()
            .zip(self.scores[range].iter().copied())
    }

    /// The shopper's items merged with their new events, as of `ctx.now_ms()`,
    /// best first (every item, unfiltered).
    fn merged(&self, ctx: &Context) -> Vec<Scored> {
        let decay = std::f64::consts::LN_2
            / (f64::from(self.config.half_life_days.max(1e-3)) * DAY_MS as f64);
        let now = ctx.now_ms();
        // Natural-log scores: ln(s · e^(−decay·age)) = ln s − decay·age.
        let mut log_scores: std::collections::HashMap<u32, f64> = std::collections::HashMap::new();
        let mut add = |item: u32, log_score: f64| {
            let e = log_scores.entry(item).or_insert(f64::NEG_INFINITY);
            let (hi, lo) = if *e > log_score {
                (*e, log_score)
            } else {
                (log_score, *e)
            };
            *e = hi + (lo - hi).exp().ln_1p();
        };
        if let Some(u) = ctx.user {
            let shift = decay * (now - self.cutoff_ms) as f64;
            for (item, score) in self.stored(u) {
                if score > 0.0 {
                    add(item, f64::from(score).ln() - shift);
                }
            }
        }
        for e in ctx.new {
            let w = self.config.weights.of(e.kind);
            if w > 0.0 {
                add(
                    e.item,
                    f64::from(w).ln() - decay * (now - e.timestamp_ms).max(0) as f64,
                );
            }
        }
        let mut ranked: Vec<(u32, f64)> = log_scores.into_iter().collect();
        ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
            .into_iter()
            .map(|(item, log_score)| (item, log_score.exp() as f32))
            .collect()
    }

    /// Number of users covered.
    pub fn users(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
}

impl Recommender for History {
    fn name(&self) -> &'static str {
        "history"
    }

    fn recommend(&self, ctx: &Context, n: usize, filter: &Filter) -> Vec<Scored> {
        if ctx.has_new() {
            return self
                .merged(ctx)
                .into_iter()
                .filter(|r| filter.allows(r.0))
                .take(n)
                .collect();
        }
        match ctx.user {
            Some(u) => self
                .stored(u)
                .filter(|r| filter.allows(r.0))
                .take(n)
                .collect(),
            None => Vec::new(),
        }
    }
}
