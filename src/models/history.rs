//! `history`: the user's own recent items, by recency and frequency.
//!
//! Shoppers come back: on RetailRocket most add-to-carts are of items the shopper
//! looked at before. Each past event adds its kind's weight, halved every
//! `half_life_days` of age at the cutoff, to its item's score. Already-seen items
//! are the whole point here, so nothing is filtered.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::topk::sort_best_first;
use super::{Recommender, Scored};
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
            offsets,
            items,
            scores,
        }
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

    fn recommend(&self, user: Option<u32>, n: usize) -> Vec<Scored> {
        let Some(u) = user.map(|u| u as usize).filter(|&u| u < self.users()) else {
            return Vec::new();
        };
        let range = self.offsets[u] as usize..self.offsets[u + 1] as usize;
        self.items[range.clone()]
            .iter()
            .zip(&self.scores[range])
            .take(n)
            .map(|(&i, &s)| (i, s))
            .collect()
    }
}
