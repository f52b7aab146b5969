//! [`Dataset`]: the feature table the learner trains and validates on.
//!
//! Features are one row-major `f32` buffer, as feature pipelines produce them
//! and as [`Booster::predict`](super::Booster::predict) consumes them; the
//! learner transposes them into per-feature bins itself. Query groups (one per
//! user for ranking) are CSR-style offsets, so a group is a contiguous run of
//! rows and no per-row group id is stored. The fields are private and checked
//! once in [`Dataset::new`], so everything downstream can index without checks.

use std::ops::Range;

use super::error::DatasetError;
use crate::rng::Rng;

/// A validated table of features, labels and query groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    n_rows: usize,
    feature_names: Vec<String>,
    features: Vec<f32>,
    labels: Vec<f32>,
    group_offsets: Vec<usize>,
}

impl Dataset {
    /// A table of `labels.len()` rows: `features` is row-major
    /// (`n_rows × feature_names.len()`, `f32::NAN` for a missing value), and
    /// group `g` is rows `group_offsets[g]..group_offsets[g + 1]`.
    pub fn new(
        feature_names: Vec<String>,
        features: Vec<f32>,
        labels: Vec<f32>,
        group_offsets: Vec<usize>,
    ) -> Result<Self, DatasetError> {
        let n_rows = labels.len();
        let n_features = feature_names.len();
        if n_features == 0 {
            return Err(DatasetError::NoFeatures);
        }
        let mut seen = std::collections::HashSet::with_capacity(n_features);
        for name in &feature_names {
            if !seen.insert(name.as_str()) {
                return Err(DatasetError::DuplicateFeature { name: name.clone() });
            }
        }
        let expected = n_rows.saturating_mul(n_features);
        if features.len() != expected {
            return Err(DatasetError::FeatureLength {
                got: features.len(),
                n_rows,
                n_features,
                expected,
            });
        }
        if let Some(row) = labels.iter().position(|l| !l.is_finite()) {
            return Err(DatasetError::NonFiniteLabel {
                row,
                value: labels[row],
            });
        }
        match (group_offsets.first(), group_offsets.last()) {
            (None, _) | (_, None) => return Err(DatasetError::NoOffsets),
            (Some(&first), _) if first != 0 => return Err(DatasetError::OffsetsStart { first }),
            (_, Some(&last)) if last != n_rows => {
                return Err(DatasetError::OffsetsEnd { last, n_rows })
            }
            _ => {}
        }
        if let Some(group) = group_offsets.windows(2).position(|w| w[1] < w[0]) {
            return Err(DatasetError::OffsetsDecrease {
                group,
                from: group_offsets[group],
                to: group_offsets[group + 1],
            });
        }
        Ok(Dataset {
            n_rows,
            feature_names,
            features,
            labels,
            group_offsets,
        })
    }

    /// A table whose rows are all one group, as the binary objective wants.
    pub fn single_group(
        feature_names: Vec<String>,
        features: Vec<f32>,
        labels: Vec<f32>,
    ) -> Result<Self, DatasetError> {
        let offsets = vec![0, labels.len()];
        Dataset::new(feature_names, features, labels, offsets)
    }

    /// Rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Columns.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Column names, in column order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The row-major feature buffer.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// One label per row.
    pub fn labels(&self) -> &[f32] {
        &self.labels
    }

    /// CSR offsets of the groups (`n_groups + 1` entries).
    pub fn group_offsets(&self) -> &[usize] {
        &self.group_offsets
    }

    /// Number of query groups.
    pub fn n_groups(&self) -> usize {
        self.group_offsets.len() - 1
    }

    /// The rows of group `g`.
    pub fn group_rows(&self, g: usize) -> Range<usize> {
        self.group_offsets[g]..self.group_offsets[g + 1]
    }

    /// The features of row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        let nf = self.n_features();
        &self.features[r * nf..(r + 1) * nf]
    }

    /// Splits whole groups into `(train, valid)`, about `valid_fraction` of the
    /// groups going to `valid`; which ones depends only on `seed`. Both sides
    /// keep the groups in their original order. With two groups or more each
    /// side gets at least one.
    ///
    /// # Panics
    ///
    /// If `valid_fraction` is not within `0.0..=1.0`.
    pub fn split_groups(&self, valid_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        assert!(
            (0.0..=1.0).contains(&valid_fraction),
            "valid_fraction {valid_fraction} is outside [0, 1]"
        );
        let n_groups = self.n_groups();
        let mut n_valid = (valid_fraction * n_groups as f64).round() as usize;
        if n_groups >= 2 {
            n_valid = n_valid.clamp(1, n_groups - 1);
        }
        let mut order: Vec<usize> = (0..n_groups).collect();
        Rng::new(seed).shuffle(&mut order);
        let mut is_valid = vec![false; n_groups];
        for &g in &order[..n_valid] {
            is_valid[g] = true;
        }
        (
            self.take_groups(&is_valid, false),
            self.take_groups(&is_valid, true),
        )
    }

    /// The groups `g` with `chosen[g] == which`, in order.
    fn take_groups(&self, chosen: &[bool], which: bool) -> Dataset {
        let nf = self.n_features();
        let mut features = Vec::new();
        let mut labels = Vec::new();
        let mut offsets = vec![0];
        for g in (0..self.n_groups()).filter(|&g| chosen[g] == which) {
            let rows = self.group_rows(g);
            features.extend_from_slice(&self.features[rows.start * nf..rows.end * nf]);
            labels.extend_from_slice(&self.labels[rows]);
            offsets.push(labels.len());
        }
        Dataset {
            n_rows: labels.len(),
            feature_names: self.feature_names.clone(),
            features,
            labels,
            group_offsets: offsets,
        }
    }
}
