//! `gbdt`: histogram-based gradient-boosted decision trees with a LambdaMART
//! ranking objective, for the re-ranking stage.
//!
//! The learner follows LightGBM's design, because that is what it is measured
//! against and because the design is what makes tree boosting fast on millions
//! of candidate rows:
//!
//! * every feature is cut into at most 255 quantile bins once, before training
//!   (`bins.rs`), and the one-byte bin codes are stored feature-major, four
//!   features to a 4-byte word per row, so building histograms streams dense
//!   arrays and a scattered leaf costs one cache miss per row and four
//!   features;
//! * trees grow leaf-wise (best gain first) from per-leaf gradient histograms;
//!   only the smaller child of a split is histogrammed, the larger one is its
//!   parent minus the smaller (the *subtraction trick*);
//! * missing values (`NaN`) have a bin of their own and every split learns which
//!   side they go to;
//! * finished trees keep raw `f32` thresholds in a flat node array, so scoring a
//!   row needs no binning and the prediction loop is a handful of instructions;
//! * LambdaMART gradients are computed per query group in parallel, with one
//!   `exp` per row rather than per pair.
//!
//! Training is deterministic for a seed whatever the number of rayon threads:
//! work is split over features, over query groups or over fixed row chunks,
//! and every floating-point sum is taken in an order that does not depend on
//! scheduling.
//!
//! The main types:
//!
//! * [`Dataset`] — a validated feature table with labels and query groups;
//! * [`GbdtConfig`] and [`Objective`] — what to fit and how;
//! * [`Booster`] — the fitted model: [`Booster::fit`], [`Booster::predict`],
//!   [`Booster::feature_importance`], and a readable JSON model file;
//! * [`ndcg_at`] and [`mean_ndcg_at`] — the ranking metric early stopping uses.
//!
//! ```ignore
//! use recsys::rank::gbdt::{mean_ndcg_at, Booster, GbdtConfig};
//!
//! let (train, valid) = data.split_groups(0.2, 42);
//! let config = GbdtConfig { early_stopping_rounds: Some(20), ..GbdtConfig::default() };
//! let model = Booster::fit(&train, Some(&valid), &config, |info| {
//!     eprintln!("round {} valid {:?}", info.round, info.valid_metric);
//! })?;
//! let scores = model.predict(valid.features(), valid.n_features());
//! let ndcg = mean_ndcg_at(10, valid.labels(), &scores, valid.group_offsets());
//! std::fs::write("model.json", model.to_json())?;
//! ```

mod bins;
mod booster;
mod config;
mod dataset;
mod error;
mod hist;
mod learner;
mod model;
mod objective;
mod quickscorer;
mod tree;

#[cfg(test)]
mod tests;

pub use booster::{Booster, RoundInfo};
pub use config::{GbdtConfig, Objective};
pub use dataset::Dataset;
pub use error::{DatasetError, FitError, ModelError};
pub use objective::{mean_ndcg_at, ndcg_at};
