//! The recommendation models, all behind one small trait.
//!
//! Every model answers the same question — "the best `n` items for the shopper
//! of this [`Context`], among those this [`Filter`] allows" — so evaluation,
//! the CLI and the service ask them alike, and what is evaluated is what a
//! shopper receives. The context carries the shopper's training index (if
//! training knew them) and their events since training, so a model scores a
//! returning shopper's new clicks and a brand-new shopper's first views at
//! request time. Items are dense indices of the
//! [`TrainSet`](crate::data::TrainSet) the model learnt from.

pub mod als;
pub mod context;
pub mod covisit;
pub mod factors;
pub mod filter;
pub mod history;
pub mod ivf;
pub mod mips;
pub mod popular;
pub mod topk;

pub use als::{Als, AlsConfig};
pub use context::{Context, Event};
pub use covisit::{Covisit, CovisitConfig};
pub use filter::{ExcludeFrom, Filter, RequestRules, Rules, RulesConfig};
pub use history::{History, HistoryConfig};
pub use popular::{Popular, PopularConfig};

use rayon::prelude::*;

/// An item index with its score; higher scores are better.
pub type Scored = (u32, f32);

/// One recommended item with the sources that proposed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// Dense item index.
    pub item: u32,
    /// The ranking model's score.
    pub score: f32,
    /// Names of what proposed the item (a model, or two_stage's candidate sources).
    pub sources: Vec<&'static str>,
}

/// A trained model that recommends items to shoppers.
pub trait Recommender: Send + Sync {
    /// The model's name in configs, reports and JSON (`popular`, `history`, `als`, `covisit`, `two_stage`).
    fn name(&self) -> &'static str;

    /// Up to `n` items for the shopper of `ctx`, best first, each allowed by
    /// `filter`. A model with nothing to go on returns fewer (or none) rather
    /// than guessing; [`complete`] fills the rest.
    fn recommend(&self, ctx: &Context, n: usize, filter: &Filter) -> Vec<Scored>;

    /// [`Recommender::recommend`] for many contexts (one filter each); models
    /// with a faster batched path (matrix products) override it.
    fn recommend_batch(&self, ctxs: &[Context], n: usize, filters: &[Filter]) -> Vec<Vec<Scored>> {
        assert_eq!(ctxs.len(), filters.len(), "one filter per context");
        ctxs.par_iter()
            .zip(filters)
            .map(|(ctx, filter)| self.recommend(ctx, n, filter))
            .collect()
    }

    /// [`Recommender::recommend`] with what proposed each item; by default the model itself.
    fn explain(&self, ctx: &Context, n: usize, filter: &Filter) -> Vec<Ranked> {
        self.recommend(ctx, n, filter)
            .into_iter()
            .map(|(item, score)| Ranked {
                item,
                score,
                sources: vec![self.name()],
            })
            .collect()
    }
}

/// Fill `list` up to `n` items from `fallback` (best first), skipping items it
/// already holds and those `filter` refuses; filled items score below every
/// listed one. Returns how many were added.
pub fn complete(list: &mut Vec<Scored>, fallback: &[Scored], filter: &Filter, n: usize) -> usize {
    let before = list.len();
    let mut floor = list.last().map_or(0.0, |l| l.1) - 1.0;
    for &(item, _) in fallback {
        if list.len() >= n {
            break;
        }
        if filter.allows(item) && !list.iter().any(|l| l.0 == item) {
            list.push((item, floor));
            floor -= 1e-3;
        }
    }
    list.len() - before
}

#[cfg(test)]
mod tests;
