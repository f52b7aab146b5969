//! Two-stage ranking: candidates from several sources, their features, and a
//! gradient-boosted re-ranker that orders them.
//!
//! * [`candidates`] — the first stage: the union of ALS, similar items, the
//!   user's history, popular and category-popular items, each candidate keeping
//!   its sources' scores and ranks;
//! * [`features`] — user, item, user × item and source features per candidate,
//!   as of the end of a period (no look-ahead);
//! * [`gbdt`] — histogram gradient-boosted trees with LambdaMART and log-loss;
//! * [`two_stage`] — the training protocol (label window) and the
//!   [`TwoStage`] recommender.

pub mod candidates;
pub mod features;
pub mod gbdt;
pub mod two_stage;

pub use two_stage::{TwoStage, TwoStageConfig};
