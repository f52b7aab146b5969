//! `covisit`: the items other shoppers used together with the shopper's recent items.
//!
//! Co-visitation is what the winners of the OTTO 2023 Kaggle competition built
//! their candidates from: when many shoppers who looked at `a` looked at `b`
//! soon after, a shopper looking at `a` now is likely to want `b`. It needs no
//! factors and no training loop, only counting, and it answers a brand-new
//! shopper from their first view.
//!
//! # What is counted
//!
//! A shopper's events (oldest first) are collapsed into *steps*: consecutive
//! events on the same item are one step spanning `[first, last]`, so that
//! reloading a page, or viewing an item and then carting it, is one visit and
//! not a dozen votes. Only the shopper's latest `max_events_per_user` steps
//! are paired: pairing costs O(m²) per shopper, and a bot with 50,000 views
//! then costs what any busy shopper costs. Two steps `s` before `s'` on
//! different items `a`, `b` make a pair of three matrices:
//!
//! | matrix            | pair                                   | window  | weight           |
//! |-------------------|----------------------------------------|---------|------------------|
//! | `any`             | `first(s') − last(s) ≤ W`, both ways   | `window_hours` | `tw(first(s'))` |
//! | `view_cart`       | `a` viewed, then `b` carted: `first_cart(s') − last_view(s) ≤ W`, `a → b` only | `window_hours` | 1 |
//! | `bought_together` | both add-to-carts or purchases, both ways | `cart_window_days` | 1 |
//!
//! ```text
//! tw(t) = 1 + 3 · (t − t_min) / (t_max − t_min)      (t_min, t_max: the first and last training event)
//! ```
//!
//! `first(s') − last(s)` is the distance between the closest events of the
//! two steps, and `first_cart(s') − last_view(s)` the shortest time from a view
//! of `a` to a later cart of `b`, so collapsing loses no pair. The time weight
//! is OTTO's "clicks" matrix: the catalogue drifts, so a pair from the end of
//! the log says up to four times as much about next week as one from its start.
//! `bought_together` pairs the shopper's add-to-carts and purchases only (their
//! own steps and their own latest `max_events_per_user`), over a longer window:
//! baskets are assembled over days, and views would drown them.
//!
//! Each `(matrix, a, b)` counts once per shopper, with the largest weight it
//! has there (its latest occurrence), and the matrices sum over shoppers:
//!
//! ```text
//! C_k(a, b) = Σ_shoppers max_{pairs (a, b) of kind k} w
//! ```
//!
//! Each row is then pruned to its `neighbours` largest entries, ties to the
//! lower item index, and stored CSR-style per matrix.
//!
//! # Answering
//!
//! The sources are the shopper's latest `recent_items` distinct items, training
//! events and events since training alike, newest first (`r = 0, 1, …`):
//!
//! ```text
//! score(b) = Σ_r 2^(−r/h) · v(s_r) · Σ_k λ_k · C_k(s_r, b) / Σ_k' Σ_b' λ_k' · C_k'(s_r, b')
//! ```
//!
//! with `h` = `half_life_items`, `v` the largest of `source_weights` over the
//! kinds of the shopper's events on `s_r`, and `λ_k` = `matrix_weights`.
//! Dividing by the source's total (over its kept neighbours in all matrices)
//! turns its counts into shares, so a best-seller with 10,000 co-visits does
//! not drown the shopper's latest, rarer item, while the matrices keep their
//! own amounts of evidence: normalising each matrix apart would give a
//! `view_cart` row holding one vote the say of an `any` row holding hundreds
//! (on the full-size synthetic data that cost a twentieth of recall@10).
//! Recency is by position rather than by age, since a shopper's latest item is
//! their current interest however long they were away. Items the [`Filter`]
//! refuses are skipped; a shopper with no events, or whose items have no
//! neighbours, gets an empty list.
//!
//! # Building at scale
//!
//! Shoppers are paired in parallel (rayon), each into a small reused buffer.
//! A first pass only counts each row's raw entries; then the rows are cut
//! into consecutive ranges of at most [`PASS_ENTRIES`] entries (512 MiB), and
//! each range is one more pass that regenerates the pairs, scatters its rows'
//! entries into place, sums and prunes them. A row is always whole within its
//! pass, so pruning is exact, never "top N of a chunk", and memory beyond the
//! training events is bounded: 16 bytes per row while counting and
//! scattering (48 per item), one pass's entries, and the pruned matrices
//! (at most 3 · `neighbours` · 8 bytes per item).
//!
//! On the full-size synthetic RetailRocket (1.23M training shoppers, 2.43M
//! training events, 203k items) the three matrices hold 3.05M raw entries, one
//! pass, built in 0.3 s on 2 cores without raising the process's peak memory
//! (loading the events sets it). At ten times that (12.3M shoppers, 2.0M
//! items) they hold 30.4M raw entries (243 MB, still one pass), built in 6 s,
//! peak memory 0.3 GB above training `popular` alone; the training events
//! themselves dominate. Data with ten times as many raw
//! entries again would take more passes instead of more memory.

mod build;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use super::topk::top_k;
use super::{Context, Filter, Recommender, Scored};
use crate::data::{EventWeights, TrainSet};

pub use build::{BuildStats, PASS_ENTRIES};

/// Settings of the `covisit` model (`[models.covisit]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CovisitConfig {
    /// Window of the `any` and `view_cart` pairs, hours (a pair exactly this far apart counts).
    pub window_hours: f32,
    /// Window of the `bought_together` pairs, days.
    pub cart_window_days: f32,
    /// Neighbours kept per item in each matrix.
    pub neighbours: usize,
    /// Latest steps (runs of events on one item) paired per shopper.
    pub max_events_per_user: usize,
    /// Latest distinct items of the shopper whose neighbours are aggregated.
    pub recent_items: usize,
    /// Position (0 = latest) at which a source item counts half.
    pub half_life_items: f32,
    /// Weight of a source item by the kinds of the shopper's events on it (the largest applies).
    pub source_weights: EventWeights,
    /// Weight of each matrix.
    pub matrix_weights: MatrixWeights,
}

impl Default for CovisitConfig {
    fn default() -> Self {
        CovisitConfig {
            window_hours: 24.0,
            cart_window_days: 14.0,
            neighbours: 20,
            max_events_per_user: 30,
            recent_items: 20,
            half_life_items: 5.0,
            source_weights: EventWeights {
                view: 1.0,
                addtocart: 3.0,
                transaction: 3.0,
            },
            matrix_weights: MatrixWeights::default(),
        }
    }
}

/// How much each matrix adds to a shopper's scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixWeights {
    /// Weight of `any` (any two events within `window_hours`, time-weighted).
    pub any: f32,
    /// Weight of `view_cart` (viewed, then another item carted within `window_hours`).
    pub view_cart: f32,
    /// Weight of `bought_together` (carted or bought within `cart_window_days`).
    pub bought_together: f32,
}

impl Default for MatrixWeights {
    fn default() -> Self {
        MatrixWeights {
            any: 1.0,
            view_cart: 1.0,
            bought_together: 1.0,
        }
    }
}

impl MatrixWeights {
    /// The weight of matrix `m`.
    pub fn of(&self, m: Matrix) -> f32 {
        match m {
            Matrix::Any => self.any,
            Matrix::ViewCart => self.view_cart,
            Matrix::BoughtTogether => self.bought_together,
        }
    }
}

/// A setting of `[models.covisit]` that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("[models.covisit] {key} = {value}: expected {expected}")]
pub struct ConfigError {
    /// The key.
    pub key: &'static str,
    /// Its value.
    pub value: String,
    /// What would be accepted.
    pub expected: &'static str,
}

impl CovisitConfig {
    /// Checks every setting is usable, naming the first that is not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(key: &'static str, value: impl ToString, expected: &'static str) -> ConfigError {
            ConfigError {
                key,
                value: value.to_string(),
                expected,
            }
        }
        // Upper bounds keep a hostile value from costing unbounded time or
        // memory: pairs grow with the square of `max_events_per_user`, and
        // every answer allocates `recent_items` sources.
        let positive = |key, v: f32, max: f32, expected| {
            if v.is_finite() && v > 0.0 && v <= max {
                Ok(())
            } else {
                Err(bad(key, v, expected))
            }
        };
        let weight = |key, v: f32| {
            if (0.0..=1e4).contains(&v) {
                Ok(())
            } else {
                Err(bad(key, v, "a number in [0, 10000]"))
            }
        };
        positive(
            "window_hours",
            self.window_hours,
            8760.0,
            "a positive number of hours, at most 8760 (a year)",
        )?;
        positive(
            "cart_window_days",
            self.cart_window_days,
            3650.0,
            "a positive number of days, at most 3650",
        )?;
        positive(
            "half_life_items",
            self.half_life_items,
            1000.0,
            "a positive number, at most 1000",
        )?;
        if !(1..=1000).contains(&self.neighbours) {
            return Err(bad("neighbours", self.neighbours, "in 1..=1000"));
        }
        if !(2..=1000).contains(&self.max_events_per_user) {
            return Err(bad(
                "max_events_per_user",
                self.max_events_per_user,
                "in 2..=1000 (at least a pair)",
            ));
        }
        if !(1..=1000).contains(&self.recent_items) {
            return Err(bad("recent_items", self.recent_items, "in 1..=1000"));
        }
        let s = &self.source_weights;
        weight("source_weights.view", s.view)?;
        weight("source_weights.addtocart", s.addtocart)?;
        weight("source_weights.transaction", s.transaction)?;
        if s.view + s.addtocart + s.transaction <= 0.0 {
            return Err(bad("source_weights", "all 0", "some weight above 0"));
        }
        let m = &self.matrix_weights;
        weight("matrix_weights.any", m.any)?;
        weight("matrix_weights.view_cart", m.view_cart)?;
        weight("matrix_weights.bought_together", m.bought_together)?;
        if m.any + m.view_cart + m.bought_together <= 0.0 {
            return Err(bad("matrix_weights", "all 0", "some weight above 0"));
        }
        Ok(())
    }
}

/// One of the three co-visitation matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matrix {
    /// Any two events within `window_hours`, both ways, time-weighted.
    Any = 0,
    /// A view, then a cart of another item within `window_hours`: viewed → carted.
    ViewCart = 1,
    /// Two add-to-carts or purchases within `cart_window_days`, both ways.
    BoughtTogether = 2,
}

impl Matrix {
    /// Every matrix, in storage order.
    pub const ALL: [Matrix; 3] = [Matrix::Any, Matrix::ViewCart, Matrix::BoughtTogether];

    /// Its name in bundle files and training facts.
    pub fn name(self) -> &'static str {
        match self {
            Matrix::Any => "any",
            Matrix::ViewCart => "view_cart",
            Matrix::BoughtTogether => "bought_together",
        }
    }
}

/// One matrix's pruned rows, CSR-style: item `a`'s neighbours are
/// `items[offsets[a]..offsets[a + 1]]`, largest weight first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Neighbours {
    /// Row offsets, one more than there are items.
    pub offsets: Vec<u64>,
    /// Neighbour item indices.
    pub items: Vec<u32>,
    /// Summed pair weights `C_k(a, b)`, parallel to `items`.
    pub weights: Vec<f32>,
}

impl Neighbours {
    /// Rows with no entries yet, for `push`ing.
    fn empty() -> Neighbours {
        Neighbours {
            offsets: vec![0],
            ..Neighbours::default()
        }
    }

    /// Append the next item's row (best first).
    fn push(&mut self, row: &[Scored]) {
        for &(b, w) in row {
            self.items.push(b);
            self.weights.push(w);
        }
        self.offsets.push(self.items.len() as u64);
    }

    /// Number of rows (items).
    pub fn rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Item `a`'s neighbours and their weights, best first (none for an unknown item).
    pub fn of(&self, a: u32) -> (&[u32], &[f32]) {
        let a = a as usize;
        if a >= self.rows() {
            return (&[], &[]);
        }
        let range = self.offsets[a] as usize..self.offsets[a + 1] as usize;
        (&self.items[range.clone()], &self.weights[range])
    }
}

/// The fitted co-visitation matrices.
#[derive(Debug, Clone, PartialEq)]
pub struct Covisit {
    /// Settings it was fitted with (answers aggregate with them too).
    pub config: CovisitConfig,
    /// The matrices, indexed by [`Matrix`].
    pub matrices: [Neighbours; 3],
}

impl Covisit {
    /// Count the co-visitations of `train`'s shoppers; refuses settings
    /// [`CovisitConfig::validate`] refuses.
    pub fn fit(
        train: &TrainSet,
        config: &CovisitConfig,
    ) -> Result<(Covisit, BuildStats), ConfigError> {
        config.validate()?;
        let (matrices, stats) = build::build(train, config, PASS_ENTRIES);
        Ok((
            Covisit {
                config: config.clone(),
                matrices,
            },
            stats,
        ))
    }

    /// Matrix `m`.
    pub fn matrix(&self, m: Matrix) -> &Neighbours {
        &self.matrices[m as usize]
    }

    /// The source items of the shopper of `ctx` with their weights
    /// `2^(−r/h) · v(s_r)`, newest first.
    fn sources(&self, ctx: &Context) -> Vec<Scored> {
        let c = &self.config;
        let mut items: Vec<u32> = Vec::with_capacity(c.recent_items);
        let mut kind_weights: Vec<f32> = Vec::with_capacity(c.recent_items);
        for e in ctx.events().rev() {
            let w = c.source_weights.of(e.kind);
            match items.iter().position(|&i| i == e.item) {
                Some(p) => kind_weights[p] = kind_weights[p].max(w),
                None if items.len() < c.recent_items => {
                    items.push(e.item);
                    kind_weights.push(w);
                }
                None => {}
            }
        }
        items
            .into_iter()
            .zip(kind_weights)
            .enumerate()
            .map(|(r, (item, v))| (item, v * (-(r as f32) / c.half_life_items).exp2()))
            .collect()
    }

    /// Every neighbour of the shopper's sources with its summed score, by item.
    fn scores(&self, ctx: &Context) -> Vec<Scored> {
        let mut parts: Vec<Scored> = Vec::new();
        for (source, weight) in self.sources(ctx) {
            if weight <= 0.0 {
                continue;
            }
            let start = parts.len();
            for m in Matrix::ALL {
                let lambda = self.config.matrix_weights.of(m);
                if lambda <= 0.0 {
                    continue;
                }
                let (items, weights) = self.matrix(m).of(source);
                parts.extend(items.iter().zip(weights).map(|(&b, &w)| (b, lambda * w)));
            }
            let total: f32 = parts[start..].iter().map(|p| p.1).sum();
            if total > 0.0 {
                for p in &mut parts[start..] {
                    p.1 *= weight / total;
                }
            }
        }
        // A stable sort keeps each item's parts in source order, so the sums
        // (and ties) are the same on every call.
        parts.sort_by_key(|p| p.0);
        let mut merged: Vec<Scored> = Vec::with_capacity(parts.len());
        for (item, score) in parts {
            match merged.last_mut() {
                Some(last) if last.0 == item => last.1 += score,
                _ => merged.push((item, score)),
            }
        }
        merged
    }
}

impl Recommender for Covisit {
    fn name(&self) -> &'static str {
        "covisit"
    }

    fn recommend(&self, ctx: &Context, n: usize, filter: &Filter) -> Vec<Scored> {
        if n == 0 || ctx.is_empty() {
            return Vec::new();
        }
        top_k(
            self.scores(ctx)
                .into_iter()
                .filter(|&(item, score)| score > 0.0 && filter.allows(item)),
            n,
        )
    }
}
