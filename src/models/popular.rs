//! `popular`: the items most added to cart lately — the fallback for cold users.
//!
//! Popularity drifts (RetailRocket's catalogue turns over within weeks), so only
//! the last `window_days` before the training cutoff count. Items are ranked by
//! add-to-carts in the window; views in the window break ties, so the list is
//! full even for items nobody carted yet.

use serde::{Deserialize, Serialize};

use super::{Context, Filter, Recommender, Scored};
use crate::data::time::DAY_MS;
use crate::data::{EventKind, TrainSet};

/// Settings of the `popular` model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PopularConfig {
    /// How many days before the cutoff count towards popularity.
    pub window_days: u32,
}

impl Default for PopularConfig {
    fn default() -> Self {
        PopularConfig { window_days: 30 }
    }
}

/// Items ranked by recent add-to-carts, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Popular {
    /// `(item, score)` for every item with any event in the window, best first.
    pub ranked: Vec<Scored>,
}

impl Popular {
    /// Count the window's events of `train`.
    pub fn fit(train: &TrainSet, config: &PopularConfig) -> Popular {
        let since = train.cutoff_ms - i64::from(config.window_days) * DAY_MS;
        let n_items = train.items.len();
        let mut carts = vec![0u32; n_items];
        let mut views = vec![0u32; n_items];
        for e in 0..train.len() {
            if train.timestamp_ms[e] < since {
                continue;
            }
            let item = train.item[e] as usize;
            match train.kind[e] {
                EventKind::AddToCart => carts[item] += 1,
                EventKind::View => views[item] += 1,
                EventKind::Transaction => {}
            }
        }
        let max_views = views.iter().copied().max().unwrap_or(0) as f32;
        let mut ranked: Vec<Scored> = (0..n_items)
            .filter(|&i| carts[i] + views[i] > 0)
            // Views only order items with equal carts: they add less than one cart.
            .map(|i| {
                (
                    i as u32,
                    carts[i] as f32 + views[i] as f32 / (max_views + 1.0),
                )
            })
            .collect();
        super::topk::sort_best_first(&mut ranked);
        Popular { ranked }
    }
}

impl Recommender for Popular {
    fn name(&self) -> &'static str {
        "popular"
    }

    fn recommend(&self, _ctx: &Context, n: usize, filter: &Filter) -> Vec<Scored> {
        self.ranked
            .iter()
            .filter(|r| filter.allows(r.0))
            .take(n)
            .copied()
            .collect()
    }
}
