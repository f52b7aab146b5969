//! The recommendation models, all behind one small trait.
//!
//! Every model answers the same question — "the best `n` items for this user" —
//! so evaluation, the CLI and the service treat them alike. Users and items are
//! dense indices of the [`TrainSet`](crate::data::TrainSet) the model learnt from;
//! a user unknown to training is passed as `None` (a *cold* user), and a model
//! with nothing to say for them returns an empty list rather than guessing.

pub mod als;
pub mod factors;
pub mod history;
pub mod ivf;
pub mod popular;
pub mod topk;

pub use als::{Als, AlsConfig};
pub use history::{History, HistoryConfig};
pub use popular::{Popular, PopularConfig};

/// An item index with its score; higher scores are better.
pub type Scored = (u32, f32);

/// A trained model that recommends items to users.
pub trait Recommender: Send + Sync {
    /// The model's name in configs, reports and JSON (`popular`, `history`, `als`).
    fn name(&self) -> &'static str;

    /// Up to `n` items for `user` (`None` = unknown to training), best first.
    fn recommend(&self, user: Option<u32>, n: usize) -> Vec<Scored>;

    /// [`Recommender::recommend`] for many users at once; models with a faster
    /// batched path (matrix products) override it.
    fn recommend_batch(&self, users: &[Option<u32>], n: usize) -> Vec<Vec<Scored>> {
        users.iter().map(|&u| self.recommend(u, n)).collect()
    }
}

/// Drop the items in `seen` (sorted ascending) from `ranked` and keep the first `n`.
pub fn exclude_seen(ranked: Vec<Scored>, seen: &[u32], n: usize) -> Vec<Scored> {
    ranked
        .into_iter()
        .filter(|(item, _)| seen.binary_search(item).is_err())
        .take(n)
        .collect()
}

#[cfg(test)]
mod tests;
