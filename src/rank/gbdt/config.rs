//! What to fit ([`Objective`]) and how ([`GbdtConfig`]).
//!
//! The parameter names and defaults are LightGBM's wherever the two overlap, so
//! a setting tuned in one tool means the same in the other and benchmarks compare
//! like with like. Both types are serde-friendly (`#[serde(default)]`), so they
//! can sit in `config.toml` with only the non-default values spelled out, and the
//! configuration is written into every model file for provenance.

use serde::{Deserialize, Serialize};

use super::error::FitError;

/// The loss the trees descend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Objective {
    /// LambdaMART on NDCG@`ndcg_at` within each query group (LightGBM's
    /// `lambdarank`). Labels are graded relevances in `0..=31`, gain `2^label − 1`.
    #[serde(rename = "lambdarank")]
    LambdaRank {
        /// The cut-off k of the NDCG that is optimised and used for early
        /// stopping; pairs with neither item in the current top k are ignored.
        #[serde(default = "default_ndcg_at")]
        ndcg_at: usize,
    },
    /// Log-loss on labels in `[0, 1]`; scores are log-odds.
    Binary,
}

fn default_ndcg_at() -> usize {
    10
}

impl Default for Objective {
    fn default() -> Self {
        Objective::LambdaRank {
            ndcg_at: default_ndcg_at(),
        }
    }
}

/// Settings of [`Booster::fit`](super::Booster::fit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GbdtConfig {
    /// The loss to minimise.
    pub objective: Objective,
    /// Boosting rounds (one tree each) at most.
    pub num_trees: usize,
    /// Shrinkage applied to every leaf value.
    pub learning_rate: f64,
    /// Leaves per tree at most; trees grow best-gain-first up to this.
    pub num_leaves: usize,
    /// Depth limit of a tree (the root is depth 0, so 1 means stumps); `None` or
    /// `Some(0)` means no limit, as `num_leaves` already bounds the tree.
    pub max_depth: Option<usize>,
    /// Training rows each leaf must hold at least.
    pub min_data_in_leaf: usize,
    /// Sum of hessians each leaf must hold at least.
    pub min_sum_hessian_in_leaf: f64,
    /// λ, the L2 penalty on leaf values: a leaf is worth `−G / (H + λ)`.
    pub lambda_l2: f64,
    /// A split must improve the loss by more than this.
    pub min_gain_to_split: f64,
    /// Quantile bins per feature at most (2 to 255); missing values get one more.
    pub max_bins: usize,
    /// Rows sampled (deterministically for `seed`) to find the bin boundaries.
    pub bin_sample_rows: usize,
    /// Fraction of the features each tree may split on, drawn per tree.
    pub feature_fraction: f64,
    /// Fraction of the rows each tree is grown from, drawn per tree.
    pub bagging_fraction: f64,
    /// Stop when the validation metric has not improved for this many rounds,
    /// and keep only the trees up to the best round. Needs a validation set.
    pub early_stopping_rounds: Option<usize>,
    /// σ of the LambdaRank pair probability `1 / (1 + e^(−σ (s_i − s_j)))`.
    pub lambdarank_sigmoid: f64,
    /// LightGBM's `lambdarank_norm`: divide each pair's |ΔNDCG| by
    /// `0.01 + |s_i − s_j|` and rescale each group's lambdas by
    /// `log2(1 + Σ|λ|) / Σ|λ|`, which evens out groups of very different sizes.
    pub lambdarank_norm: bool,
    /// Also compute the training-set metric every round (costs a sort per group).
    pub eval_train: bool,
    /// Seed of binning samples, bagging and feature sampling.
    pub seed: u64,
}

impl Default for GbdtConfig {
    fn default() -> Self {
        GbdtConfig {
            objective: Objective::default(),
            num_trees: 100,
            learning_rate: 0.1,
            num_leaves: 31,
            max_depth: None,
            min_data_in_leaf: 20,
            min_sum_hessian_in_leaf: 1e-3,
            lambda_l2: 0.0,
            min_gain_to_split: 0.0,
            max_bins: 255,
            bin_sample_rows: 200_000,
            feature_fraction: 1.0,
            bagging_fraction: 1.0,
            early_stopping_rounds: None,
            lambdarank_sigmoid: 1.0,
            lambdarank_norm: false,
            eval_train: false,
            seed: 0,
        }
    }
}

impl GbdtConfig {
    /// Checks every setting is usable, naming the first that is not.
    pub fn validate(&self) -> Result<(), FitError> {
        fn bad(name: &'static str, value: impl ToString, expected: &'static str) -> FitError {
            FitError::BadConfig {
                name,
                value: value.to_string(),
                expected,
            }
        }
        if let Objective::LambdaRank { ndcg_at } = self.objective {
            if ndcg_at == 0 {
                return Err(bad("ndcg_at", ndcg_at, "at least 1"));
            }
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(bad(
                "learning_rate",
                self.learning_rate,
                "a positive number",
            ));
        }
        // Zero rounds would "train" a constant model; the cap keeps a typo
        // from running for days.
        if !(1..=100_000).contains(&self.num_trees) {
            return Err(bad("num_trees", self.num_trees, "between 1 and 100000"));
        }
        if self.num_leaves < 2 || self.num_leaves > 1 << 16 {
            return Err(bad("num_leaves", self.num_leaves, "between 2 and 65536"));
        }
        if !(2..=255).contains(&self.max_bins) {
            return Err(bad("max_bins", self.max_bins, "between 2 and 255"));
        }
        // An empty leaf has no rows to estimate its value from.
        if self.min_data_in_leaf == 0 {
            return Err(bad("min_data_in_leaf", 0, "at least 1"));
        }
        if self.bin_sample_rows == 0 {
            return Err(bad("bin_sample_rows", 0, "at least 1"));
        }
        let non_negative = [
            ("min_sum_hessian_in_leaf", self.min_sum_hessian_in_leaf),
            ("lambda_l2", self.lambda_l2),
            ("min_gain_to_split", self.min_gain_to_split),
        ];
        for (name, value) in non_negative {
            if !(value.is_finite() && value >= 0.0) {
                return Err(bad(name, value, "a finite number ≥ 0"));
            }
        }
        for (name, value) in [
            ("feature_fraction", self.feature_fraction),
            ("bagging_fraction", self.bagging_fraction),
        ] {
            if !(value > 0.0 && value <= 1.0) {
                return Err(bad(name, value, "in (0, 1]"));
            }
        }
        if self.early_stopping_rounds == Some(0) {
            return Err(bad("early_stopping_rounds", 0, "at least 1, or unset"));
        }
        if !(self.lambdarank_sigmoid.is_finite() && self.lambdarank_sigmoid > 0.0) {
            return Err(bad(
                "lambdarank_sigmoid",
                self.lambdarank_sigmoid,
                "a positive number",
            ));
        }
        Ok(())
    }

    /// The depth limit as a number, `usize::MAX` meaning none.
    pub(super) fn depth_limit(&self) -> usize {
        match self.max_depth {
            None | Some(0) => usize::MAX,
            Some(d) => d,
        }
    }
}
