//! Rolling cutoffs: train at several cutoffs, evaluate each on the window
//! after it, and pool the shoppers.
//!
//! One cutoff of the embedded RetailRocket extract leaves 27 shoppers to
//! evaluate: too few to tell two models apart. Moving the cutoff back week by
//! week and training again each time gives every week's shoppers a turn —
//! each fold is an honest hold-out (its models never see its test window),
//! and the folds' shoppers together are hundreds. A shopper who carts in two
//! windows counts twice: each (cutoff, shopper) pair is one prediction made
//! from a different past.
//!
//! Each fold's test window ends where the next begins (`until`), so no
//! add-to-cart is counted by two folds. Means are pooled over every fold's
//! shoppers (a shopper weighs the same whatever their fold); coverage, which
//! is not a mean over shoppers, is the folds' coverage weighted by shoppers.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use super::{fit, prepare};
use crate::config::Config;
use crate::data::time::format_date;
use crate::data::{ground_truth, Cutoff, Protocol};
use crate::engine::{Engine, EngineSettings};
use crate::eval::metrics::{MetricSums, Metrics};
use crate::eval::{
    candidate_recall, evaluate, history_ceiling, CandidateRecall, Ceiling, Fold, ModelResult,
    Report,
};

/// One fold: its test window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The cutoff: training before it, testing from it.
    pub cutoff_ms: i64,
    /// The end of the test window (exclusive).
    pub until_ms: i64,
}

/// The windows of `cutoffs` (ascending, distinct): each ends at the next
/// cutoff, the last `last_days` after its own.
pub fn windows(cutoffs: &[i64], last_days: i64) -> Result<Vec<Window>> {
    if cutoffs.is_empty() {
        bail!("no cutoffs given");
    }
    if cutoffs.windows(2).any(|w| w[0] >= w[1]) {
        bail!("cutoffs must be in increasing order, each once");
    }
    if last_days <= 0 {
        bail!("the test window must be at least one day long");
    }
    Ok(cutoffs
        .iter()
        .enumerate()
        .map(|(i, &c)| Window {
            cutoff_ms: c,
            until_ms: cutoffs
                .get(i + 1)
                .copied()
                .unwrap_or(c + last_days * crate::data::time::DAY_MS),
        })
        .collect())
}

/// `n` weekly-style cutoffs `days` apart, the last window ending at `end_ms`.
pub fn fold_cutoffs(end_ms: i64, n: usize, days: i64) -> Vec<i64> {
    let day = crate::data::time::DAY_MS;
    // Whole days: the last window ends at the end of the data's last day.
    let end = (end_ms / day + 1) * day;
    (1..=n as i64).rev().map(|i| end - i * days * day).collect()
}

/// What a fold contributes before pooling.
struct FoldResult {
    results: Vec<ModelResult>,
    warm: Vec<bool>,
    candidates: Option<CandidateRecall>,
    ceiling: f64,
    fold: Fold,
}

/// Train and evaluate at every window of `windows` on `config`'s data (or
/// `events`), at `k`, and pool the folds into one report.
pub fn rolling(
    config: &Config,
    events: Option<PathBuf>,
    windows: &[Window],
    protocol: Protocol,
    k: usize,
) -> Result<Report> {
    let first = windows.first().context("no cutoffs given")?;
    let mut prepared = prepare(
        config,
        events,
        &Cutoff::Date(format_date(first.cutoff_ms)),
        protocol,
    )?;
    let settings = EngineSettings::from_config(config);
    let mut folds = Vec::with_capacity(windows.len());
    for w in windows {
        let at = || format!("at cutoff {}", format_date(w.cutoff_ms));
        prepared.resplit(w.cutoff_ms, protocol, Some(w.until_ms));
        eprintln!(
            "fold {}: training on {} events, testing {} .. {}",
            format_date(w.cutoff_ms),
            prepared.train.len(),
            format_date(w.cutoff_ms),
            format_date(w.until_ms)
        );
        let bundle = fit(config, &prepared).with_context(at)?;
        let engine = Engine::from_bundle(bundle, Path::new("(rolling, in memory)"), &settings)
            .with_context(at)?;
        let bundle = engine.bundle();
        let users = ground_truth(&prepared.split.test, &bundle.users, &bundle.items, protocol);
        let results = evaluate(&engine, &bundle.models(), &users, k);
        let candidates = bundle
            .two_stage
            .as_ref()
            .map(|m| candidate_recall(&engine, m, &users));
        folds.push(FoldResult {
            results,
            warm: users.iter().map(|u| u.user.is_some()).collect(),
            candidates,
            ceiling: history_ceiling(&bundle.train, &users),
            fold: Fold {
                cutoff_ms: w.cutoff_ms,
                until_ms: w.until_ms,
                users: users.len(),
            },
        });
    }
    pool(folds, protocol, k)
}

/// One report of every fold's shoppers.
fn pool(folds: Vec<FoldResult>, protocol: Protocol, k: usize) -> Result<Report> {
    let names: Vec<String> = folds[0].results.iter().map(|r| r.name.clone()).collect();
    for f in &folds {
        let these: Vec<&str> = f.results.iter().map(|r| r.name.as_str()).collect();
        if these != names.iter().map(String::as_str).collect::<Vec<_>>() {
            bail!(
                "the fold at {} trained models {these:?}, the first {names:?}",
                format_date(f.fold.cutoff_ms)
            );
        }
    }
    let users: usize = folds.iter().map(|f| f.fold.users).sum();
    let warm_users: usize = folds
        .iter()
        .map(|f| f.warm.iter().filter(|&&w| w).count())
        .sum();
    let results = names
        .iter()
        .enumerate()
        .map(|(m, name)| {
            let mut sums = [
                MetricSums::default(),
                MetricSums::default(),
                MetricSums::default(),
            ];
            let mut coverage = [0.0f64; 3];
            let mut per_user = Vec::with_capacity(users);
            for f in &folds {
                let r = &f.results[m];
                let counts = [
                    f.warm.len(),
                    f.warm.iter().filter(|&&w| w).count(),
                    f.warm.iter().filter(|&&w| !w).count(),
                ];
                for (s, (metrics, n)) in [
                    (&r.all, counts[0]),
                    (&r.warm, counts[1]),
                    (&r.cold, counts[2]),
                ]
                .into_iter()
                .enumerate()
                {
                    coverage[s] += n as f64 * metrics.coverage;
                }
                for (u, &warm) in r.per_user.iter().zip(&f.warm) {
                    sums[0].add(u);
                    sums[if warm { 1 } else { 2 }].add(u);
                    per_user.push(*u);
                }
            }
            let mean = |s: usize| -> Metrics {
                let n = sums[s].users().max(1) as f64;
                sums[s].mean(coverage[s] / n)
            };
            ModelResult {
                name: name.clone(),
                all: mean(0),
                warm: mean(1),
                cold: mean(2),
                per_user,
            }
        })
        .collect();
    let candidates = pool_candidates(&folds);
    let ceiling = folds
        .iter()
        .map(|f| f.ceiling * f.fold.users as f64)
        .sum::<f64>()
        / users.max(1) as f64;
    Ok(Report {
        k,
        protocol,
        cutoff_ms: folds[0].fold.cutoff_ms,
        users,
        warm_users,
        cold_users: users - warm_users,
        results,
        bundle: None,
        candidates,
        replay: None,
        intervals: None,
        ceiling: Some(Ceiling { history: ceiling }),
        folds: folds.iter().map(|f| f.fold).collect(),
    })
}

/// Candidate recall of every fold, weighted by its shoppers.
fn pool_candidates(folds: &[FoldResult]) -> Option<CandidateRecall> {
    let mut pooled: Option<CandidateRecall> = None;
    let users: f64 = folds.iter().map(|f| f.fold.users as f64).sum();
    for f in folds {
        let c = f.candidates.as_ref()?;
        let w = f.fold.users as f64 / users.max(1.0);
        let p = pooled.get_or_insert_with(|| CandidateRecall {
            sources: c
                .sources
                .iter()
                .map(|(name, _, n)| (name.clone(), 0.0, *n))
                .collect(),
            union_recall: 0.0,
            union_size: 0.0,
        });
        for (pooled, fold) in p.sources.iter_mut().zip(&c.sources) {
            pooled.1 += w * fold.1;
        }
        p.union_recall += w * c.union_recall;
        p.union_size += w * c.union_size;
    }
    pooled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::time::DAY_MS;

    #[test]
    fn windows_end_at_the_next_cutoff_and_the_last_after_its_days() {
        let w = windows(&[0, 7 * DAY_MS, 14 * DAY_MS], 3).unwrap();
        assert_eq!(w[0].until_ms, 7 * DAY_MS);
        assert_eq!(w[1].until_ms, 14 * DAY_MS);
        assert_eq!(w[2].until_ms, 17 * DAY_MS);
        assert!(windows(&[5, 5], 3).is_err());
        assert!(windows(&[9, 5], 3).is_err());
        assert!(windows(&[], 3).is_err());
        assert!(windows(&[1], 0).is_err());
    }

    #[test]
    fn folds_step_back_from_the_end_of_the_last_day() {
        // Data ending mid-day 10: windows end at the start of day 11.
        let end = 10 * DAY_MS + 5_000;
        assert_eq!(
            fold_cutoffs(end, 3, 2),
            vec![5 * DAY_MS, 7 * DAY_MS, 9 * DAY_MS]
        );
    }
}
