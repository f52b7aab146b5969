//! A/B tests between bundles: who sees which variant, and what the numbers say.
//!
//! An experiment (`[serve.experiment]`) names two or more variants, each a
//! bundle and a traffic share; the first is the control. A shopper's variant
//! is a pure function of the experiment name and their id ([`Experiment::assign`]),
//! so every replica, restart and reload sends the same shopper to the same
//! variant without sharing any state.
//!
//! The service counts per variant what it showed and what was attributed to
//! it ([`Tally`]); [`Experiment::report`] turns the counts into rates with 95%
//! intervals and tests each variant against the control ([`stats`]). The
//! shopper is the unit of the test (it is what is randomised): the rate is the
//! share of shoppers with at least one attributed add-to-cart.

pub mod stats;

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Fewest shoppers per variant before a difference is tested.
pub const MIN_SHOPPERS: u64 = 100;
/// Fewest converted shoppers (over all variants) before a difference is tested.
pub const MIN_CONVERSIONS: u64 = 10;

/// One variant of `[serve.experiment]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    /// Its name, as answers and metrics carry it.
    pub name: String,
    /// A bundle directory, a directory of bundles (its newest), or a run id in
    /// the artifacts directory.
    pub bundle: PathBuf,
    /// Its share of shoppers (shares are normalised over the variants).
    pub share: f64,
}

/// `[serve.experiment]`: the variants and their traffic shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// The experiment's name: part of the assignment hash, so a new name
    /// reshuffles shoppers.
    pub name: String,
    /// The variants, the control first.
    pub variants: Vec<VariantConfig>,
}

impl Experiment {
    /// Reject experiments that cannot run, naming the key.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            bail!("[serve.experiment] name must not be empty");
        }
        if self.variants.len() < 2 {
            bail!(
                "[serve.experiment] needs at least two variants (the control first), it has {}",
                self.variants.len()
            );
        }
        for (i, v) in self.variants.iter().enumerate() {
            if v.name.trim().is_empty() || v.name.contains(['"', '\\', '\n', ':']) {
                bail!(
                    "[serve.experiment] variant {} has name {:?}: use letters, digits, '-' or '_'",
                    i + 1,
                    v.name
                );
            }
            if self.variants[..i].iter().any(|o| o.name == v.name) {
                bail!("[serve.experiment] names variant {:?} twice", v.name);
            }
            if !(v.share.is_finite() && v.share > 0.0) {
                bail!(
                    "[serve.experiment] variant {:?} has share {}: shares must be positive numbers",
                    v.name,
                    v.share
                );
            }
            if v.bundle.as_os_str().is_empty() {
                bail!("[serve.experiment] variant {:?} names no bundle", v.name);
            }
        }
        Ok(())
    }

    /// The variant (index into `variants`) of shopper `user`: stable across
    /// processes, machines and versions of this program.
    pub fn assign(&self, user: i64) -> usize {
        let total: f64 = self.variants.iter().map(|v| v.share).sum();
        let u = unit_hash(&self.name, user) * total;
        let mut cumulative = 0.0;
        for (i, v) in self.variants.iter().enumerate() {
            cumulative += v.share;
            if u < cumulative {
                return i;
            }
        }
        self.variants.len() - 1
    }

    /// The report of `tallies` (one per variant, in order).
    pub fn report(&self, tallies: &[Tally]) -> Report {
        let total: f64 = self.variants.iter().map(|v| v.share).sum();
        let control = tallies.first().copied().unwrap_or_default();
        let conversions: u64 = tallies.iter().map(|t| t.converted_shoppers).sum();
        let fewest = tallies.iter().map(|t| t.shoppers).min().unwrap_or(0);
        let enough = fewest >= MIN_SHOPPERS && conversions >= MIN_CONVERSIONS;
        let variants = self
            .variants
            .iter()
            .zip(tallies)
            .enumerate()
            .map(|(i, (v, t))| {
                let (low, high) = stats::wilson(t.converted_shoppers, t.shoppers);
                let test = (i > 0)
                    .then(|| {
                        stats::two_proportion_z(
                            (control.converted_shoppers, control.shoppers),
                            (t.converted_shoppers, t.shoppers),
                        )
                    })
                    .flatten();
                VariantReport {
                    name: v.name.clone(),
                    share: v.share / total,
                    tally: *t,
                    rate: ratio(t.converted_shoppers, t.shoppers),
                    rate_low: low,
                    rate_high: high,
                    per_1000_shown: 1000.0 * ratio(t.attributed_add_to_carts, t.items_shown),
                    difference: (i > 0).then(|| {
                        ratio(t.converted_shoppers, t.shoppers)
                            - ratio(control.converted_shoppers, control.shoppers)
                    }),
                    z: test.map(|(z, _)| z),
                    p_value: test.map(|(_, p)| p),
                }
            })
            .collect();
        let verdict = if enough {
            "enough data: each variant is tested against the control (two-proportion z-test, shoppers as the unit)".to_string()
        } else {
            format!(
                "not enough data yet: the test needs at least {MIN_SHOPPERS} shoppers in every variant (fewest now: {fewest}) and {MIN_CONVERSIONS} converted shoppers in all (now: {conversions}); p-values below are not to be trusted"
            )
        };
        Report {
            experiment: self.name.clone(),
            control: self
                .variants
                .first()
                .map(|v| v.name.clone())
                .unwrap_or_default(),
            enough_data: enough,
            verdict,
            variants,
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// A number in `[0, 1)` from (experiment name, user id): FNV-1a over the
/// name's bytes and the id's little-endian bytes, finished by SplitMix64's
/// mixer. Written out rather than taken from `std`, whose hasher may change
/// between Rust releases and would reshuffle running experiments.
pub fn unit_hash(name: &str, user: i64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain([0xff]).chain(user.to_le_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// What one variant showed and earned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Distinct shoppers answered.
    pub shoppers: u64,
    /// Answers given.
    pub answers: u64,
    /// Items shown in those answers.
    pub items_shown: u64,
    /// Add-to-carts of an item shown to the shopper within the attribution window.
    pub attributed_add_to_carts: u64,
    /// Transactions of such items.
    pub attributed_transactions: u64,
    /// Distinct shoppers with at least one attributed add-to-cart.
    pub converted_shoppers: u64,
}

/// One variant in a [`Report`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantReport {
    /// The variant's name.
    pub name: String,
    /// Its normalised traffic share.
    pub share: f64,
    /// Its counts.
    #[serde(flatten)]
    pub tally: Tally,
    /// Converted shoppers / shoppers.
    pub rate: f64,
    /// 95% Wilson interval of the rate, low end.
    pub rate_low: f64,
    /// 95% Wilson interval of the rate, high end.
    pub rate_high: f64,
    /// Attributed add-to-carts per 1,000 items shown.
    pub per_1000_shown: f64,
    /// Rate minus the control's (absent for the control).
    pub difference: Option<f64>,
    /// z of the two-proportion test against the control.
    pub z: Option<f64>,
    /// Its two-sided p-value (absent for the control, or when neither side varies).
    pub p_value: Option<f64>,
}

/// An experiment's standing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The experiment's name.
    pub experiment: String,
    /// The control variant.
    pub control: String,
    /// Whether there are enough shoppers and conversions to test.
    pub enough_data: bool,
    /// In words: whether the test can be trusted yet.
    pub verdict: String,
    /// Per variant, the control first.
    pub variants: Vec<VariantReport>,
}

impl Report {
    /// The report as a terminal table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "experiment {} (control: {})",
            self.experiment, self.control
        );
        let _ = writeln!(
            out,
            "{:<12} {:>6} {:>9} {:>9} {:>11} {:>9} {:>10} {:>9} {:>19} {:>9} {:>9}",
            "variant",
            "share",
            "shoppers",
            "answers",
            "items_shown",
            "carts",
            "converted",
            "rate",
            "95% interval",
            "vs ctrl",
            "p_value"
        );
        for v in &self.variants {
            let _ = writeln!(
                out,
                "{:<12} {:>6.3} {:>9} {:>9} {:>11} {:>9} {:>10} {:>9.4} {:>19} {:>9} {:>9}",
                v.name,
                v.share,
                v.tally.shoppers,
                v.tally.answers,
                v.tally.items_shown,
                v.tally.attributed_add_to_carts,
                v.tally.converted_shoppers,
                v.rate,
                format!("[{:.4}, {:.4}]", v.rate_low, v.rate_high),
                v.difference.map_or("-".into(), |d| format!("{d:+.4}")),
                v.p_value.map_or("-".into(), |p| format!("{p:.3}")),
            );
        }
        let _ = writeln!(out, "{}", self.verdict);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment(shares: &[f64]) -> Experiment {
        Experiment {
            name: "ranker-2026-12".into(),
            variants: shares
                .iter()
                .enumerate()
                .map(|(i, &share)| VariantConfig {
                    name: format!("v{i}"),
                    bundle: format!("b{i}").into(),
                    share,
                })
                .collect(),
        }
    }

    #[test]
    fn assignment_is_stable_and_follows_the_shares() {
        let e = experiment(&[1.0, 3.0]);
        let counts = (0..40_000i64).fold([0usize; 2], |mut c, u| {
            c[e.assign(u)] += 1;
            c
        });
        let share_b = counts[1] as f64 / 40_000.0;
        assert!((share_b - 0.75).abs() < 0.01, "{share_b}");
        // Fixed values: a change of hash would move running experiments' shoppers.
        assert_eq!(unit_hash("a", 1), unit_hash("a", 1));
        assert_ne!(unit_hash("a", 1), unit_hash("b", 1));
        let first: Vec<usize> = (0..12).map(|u| e.assign(u)).collect();
        let again: Vec<usize> = (0..12).map(|u| experiment(&[1.0, 3.0]).assign(u)).collect();
        assert_eq!(first, again);
    }

    #[test]
    fn report_against_a_hand_computation() {
        let e = experiment(&[1.0, 1.0]);
        let a = Tally {
            shoppers: 1000,
            answers: 5000,
            items_shown: 50_000,
            attributed_add_to_carts: 40,
            attributed_transactions: 3,
            converted_shoppers: 30,
        };
        let b = Tally {
            converted_shoppers: 45,
            attributed_add_to_carts: 60,
            ..a
        };
        let r = e.report(&[a, b]);
        assert!(r.enough_data, "{}", r.verdict);
        assert_eq!(r.control, "v0");
        assert_eq!(r.variants[0].p_value, None);
        assert!((r.variants[0].rate - 0.03).abs() < 1e-12);
        assert!((r.variants[1].per_1000_shown - 1.2).abs() < 1e-12);
        assert!((r.variants[1].difference.unwrap() - 0.015).abs() < 1e-12);
        assert!((r.variants[1].p_value.unwrap() - 0.077_49).abs() < 1e-4);
        assert!((r.variants[1].share - 0.5).abs() < 1e-12);
        let table = r.to_table();
        assert!(table.contains("v1") && table.contains("0.077"), "{table}");
        // Few shoppers: said plainly.
        let small = Tally { shoppers: 20, ..a };
        let r = e.report(&[small, small]);
        assert!(!r.enough_data);
        assert!(
            r.verdict.starts_with("not enough data yet"),
            "{}",
            r.verdict
        );
    }

    #[test]
    fn validation_names_the_problem() {
        let mut e = experiment(&[1.0]);
        assert!(e
            .validate()
            .unwrap_err()
            .to_string()
            .contains("at least two"));
        e = experiment(&[1.0, 0.0]);
        assert!(e.validate().unwrap_err().to_string().contains("share"));
        e = experiment(&[1.0, 1.0]);
        e.variants[1].name = "v0".into();
        assert!(e.validate().unwrap_err().to_string().contains("twice"));
        assert!(experiment(&[1.0, 2.0]).validate().is_ok());
    }
}
