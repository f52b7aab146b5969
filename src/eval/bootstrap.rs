//! Bootstrap intervals: how much a mean over test shoppers, or a difference
//! between two models, would move with another sample of shoppers.
//!
//! A metric@k is a mean over shoppers, and the embedded RetailRocket extract
//! evaluates 27 of them: a model "winning" by 30% can be noise. The bootstrap
//! (Efron) resamples the shoppers with replacement `B` times, recomputes each
//! mean, and reads the 95% interval off the 2.5th and 97.5th percentiles of the
//! resampled means. Every model and metric is computed on the *same* resamples,
//! so a difference between two models is a **paired** bootstrap: the shopper
//! who is easy for one model is easy for the other in the same resample, and
//! that shared difficulty cancels out of the uplift instead of widening it.
//!
//! Resampling is seeded ([`Rng`]): the same report gives the same intervals.

use super::metrics::UserMetrics;
use super::ModelResult;
use crate::rng::Rng;

/// Bootstrap intervals of every model's metrics and of one model's uplift over the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Intervals {
    /// Resamples drawn.
    pub resamples: usize,
    /// Their seed.
    pub seed: u64,
    /// Per result: precision, recall, NDCG, MAP and hit rate at k.
    pub models: Vec<[Option<Interval>; 5]>,
    /// Per result: the reference model's uplift over it in percent, for the
    /// five metrics and coverage (always `None`: it is not a mean over
    /// shoppers); all `None` for the reference itself.
    pub uplift: Vec<[Option<Interval>; 6]>,
}

fn columns(m: &[UserMetrics]) -> [Vec<f64>; 5] {
    [
        m.iter().map(|u| u.precision).collect(),
        m.iter().map(|u| u.recall).collect(),
        m.iter().map(|u| u.ndcg).collect(),
        m.iter().map(|u| u.ap).collect(),
        m.iter().map(|u| u.hit).collect(),
    ]
}

impl Intervals {
    /// Intervals of `results` (each with the same shoppers in `per_user`),
    /// with `reference`'s paired uplift over each other result.
    pub fn compute(
        results: &[ModelResult],
        reference: &str,
        resamples: usize,
        seed: u64,
    ) -> Intervals {
        let per_model: Vec<[Vec<f64>; 5]> = results.iter().map(|r| columns(&r.per_user)).collect();
        let flat: Vec<&[f64]> = per_model
            .iter()
            .flat_map(|cols| cols.iter().map(Vec::as_slice))
            .collect();
        let means = resample_means(&flat, resamples, seed);
        let mean = |model: usize, metric: usize| &means[model * 5 + metric];
        let models = (0..results.len())
            .map(|m| std::array::from_fn(|j| percentile_interval(mean(m, j))))
            .collect();
        let reference = results.iter().position(|r| r.name == reference);
        let uplift = (0..results.len())
            .map(|m| {
                std::array::from_fn(|j| match reference {
                    Some(t) if t != m && j < 5 => uplift_interval(mean(t, j), mean(m, j)),
                    _ => None,
                })
            })
            .collect();
        Intervals {
            resamples,
            seed,
            models,
            uplift,
        }
    }
}

/// A 95% interval, `(low, high)`.
pub type Interval = (f64, f64);

/// Means of each column of `columns` (all the same length, one value per
/// shopper) over `resamples` bootstrap resamples of the shoppers drawn with
/// `seed`: `out[column][resample]`.
pub fn resample_means(columns: &[&[f64]], resamples: usize, seed: u64) -> Vec<Vec<f64>> {
    let n = columns.first().map_or(0, |c| c.len());
    assert!(
        columns.iter().all(|c| c.len() == n),
        "every column has one value per shopper"
    );
    let mut out = vec![Vec::with_capacity(resamples); columns.len()];
    if n == 0 {
        return out;
    }
    let mut rng = Rng::new(seed);
    let mut sums = vec![0.0f64; columns.len()];
    for _ in 0..resamples {
        sums.iter_mut().for_each(|s| *s = 0.0);
        for _ in 0..n {
            let i = rng.below(n as u64) as usize;
            for (sum, column) in sums.iter_mut().zip(columns) {
                *sum += column[i];
            }
        }
        for (o, sum) in out.iter_mut().zip(&sums) {
            o.push(sum / n as f64);
        }
    }
    out
}

/// The 95% percentile interval of `values` (the resampled statistic); `None`
/// when there are none or any is not finite.
pub fn percentile_interval(values: &[f64]) -> Option<Interval> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| {
        // Linear interpolation between closest ranks.
        let pos = q * (sorted.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
    };
    Some((at(0.025), at(0.975)))
}

/// The interval of the relative uplift `new / base − 1`, in percent, from the
/// paired resampled means of two models; `None` when a resampled base mean is 0.
pub fn uplift_interval(new: &[f64], base: &[f64]) -> Option<Interval> {
    let uplifts: Vec<f64> = new
        .iter()
        .zip(base)
        .map(|(&n, &b)| {
            if b > 0.0 {
                (n / b - 1.0) * 100.0
            } else {
                f64::NAN
            }
        })
        .collect();
    percentile_interval(&uplifts)
}

/// Whether `interval` lies wholly above or wholly below 0.
pub fn excludes_zero(interval: Interval) -> bool {
    interval.0 > 0.0 || interval.1 < 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_of_a_coin_has_the_textbook_interval() {
        // 400 shoppers, 100 hits: p = 0.25, se = sqrt(.25 * .75 / 400) = 0.021651;
        // the normal 95% interval is 0.25 ± 0.042435.
        let values: Vec<f64> = (0..400)
            .map(|i| if i % 4 == 0 { 1.0 } else { 0.0 })
            .collect();
        let means = resample_means(&[&values], 4000, 7);
        let (lo, hi) = percentile_interval(&means[0]).unwrap();
        assert!((lo - 0.2076).abs() < 0.006, "{lo}");
        assert!((hi - 0.2924).abs() < 0.006, "{hi}");
        // Seeded: the same intervals again.
        assert_eq!(resample_means(&[&values], 4000, 7), means);
    }

    #[test]
    fn a_constant_has_a_point_interval_and_paired_differences_cancel_noise() {
        let constant = vec![0.5; 50];
        let means = resample_means(&[&constant], 200, 1);
        assert_eq!(percentile_interval(&means[0]), Some((0.5, 0.5)));
        // Model b is model a plus 10% for every shopper, whose values vary a lot:
        // paired, the uplift is exactly 10% in every resample.
        let a: Vec<f64> = (0..60).map(|i| 0.1 + (i % 7) as f64 * 0.1).collect();
        let b: Vec<f64> = a.iter().map(|v| v * 1.1).collect();
        let means = resample_means(&[&b, &a], 500, 3);
        let (lo, hi) = uplift_interval(&means[0], &means[1]).unwrap();
        assert!(
            (lo - 10.0).abs() < 1e-9 && (hi - 10.0).abs() < 1e-9,
            "{lo} {hi}"
        );
        assert!(excludes_zero((lo, hi)));
        assert!(!excludes_zero((-1.0, 2.0)));
    }

    #[test]
    fn empty_and_degenerate_inputs() {
        assert_eq!(percentile_interval(&[]), None);
        assert_eq!(uplift_interval(&[1.0], &[0.0]), None);
        let means = resample_means(&[&[], &[]], 10, 1);
        assert!(means.iter().all(|m| m.is_empty()));
    }
}
