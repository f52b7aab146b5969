//! Offline evaluation: how well each model predicts the test window.
//!
//! [`ground_truth`] turns the test events into each user's relevant items under
//! the split's [`Protocol`]; [`evaluate`] asks the live [`Engine`] for every
//! model's answer to every test user — the same answer `recommend` and the
//! service give: the business rules applied, popular items filling to k — and
//! averages the [`metrics`] overall and per segment: *warm* users (seen in
//! training) and *cold* ones (first seen in the test window), because a model
//! that only serves warm users should not look good by hiding the cold ones.
//!
//! [`replay`] judges the answer as the service gives it instead: the test
//! window fed to the engine in time order, every add-to-cart predicted from
//! the shopper's state just before it (`evaluate --replay`).

pub mod bootstrap;
pub mod metrics;
pub mod replay;
pub mod report;

use std::collections::HashSet;

pub use crate::data::{ground_truth, TestUser};
use crate::data::{Split, TrainSet};
use crate::engine::Engine;
use crate::models::{Context, Filter, Recommender, Scored};
use crate::rank::candidates::{N_SOURCES, SOURCES};
use crate::rank::TwoStage;
use metrics::{user_metrics, MetricSums, Metrics, UserMetrics};
pub use report::{Ceiling, Fold, Report};

/// Metrics of one model, overall and per segment.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelResult {
    /// The model's name.
    pub name: String,
    /// Over all evaluated users.
    pub all: Metrics,
    /// Over users seen in training.
    pub warm: Metrics,
    /// Over users first seen in the test window.
    pub cold: Metrics,
    /// Each evaluated user's metrics, in the order of the users (for
    /// bootstrap intervals and for pooling several cutoffs).
    pub per_user: Vec<UserMetrics>,
}

/// Metrics of `name`'s `lists` (one per user of `users`, at most `k` items
/// each), for a catalogue of `n_items` items.
pub fn score_lists(
    name: &str,
    users: &[TestUser],
    lists: &[Vec<Scored>],
    k: usize,
    n_items: usize,
) -> ModelResult {
    let mut sums = [
        MetricSums::default(),
        MetricSums::default(),
        MetricSums::default(),
    ];
    let mut shown: [HashSet<u32>; 3] = Default::default();
    let mut per_user = Vec::with_capacity(users.len());
    for (user, list) in users.iter().zip(lists) {
        let items: Vec<u32> = list.iter().take(k).map(|r| r.0).collect();
        let m = user_metrics(&items, &user.relevant, user.n_relevant, k);
        let segment = if user.user.is_some() { 1 } else { 2 };
        for s in [0, segment] {
            sums[s].add(&m);
            shown[s].extend(items.iter().copied());
        }
        per_user.push(m);
    }
    let catalog = n_items.max(1) as f64;
    let mean = |s: usize| sums[s].mean(shown[s].len() as f64 / catalog);
    ModelResult {
        name: name.to_string(),
        all: mean(0),
        warm: mean(1),
        cold: mean(2),
        per_user,
    }
}

/// The test users' contexts (their training history, nothing new) and filters.
fn contexts<'a>(engine: &'a Engine, users: &[TestUser]) -> (Vec<Context<'a>>, Vec<Filter>) {
    let train = &engine.bundle().train;
    let ctxs: Vec<Context> = users
        .iter()
        .map(|u| Context::new(train, u.user, &[]))
        .collect();
    let filters = ctxs.iter().map(|c| engine.filter(c, &[], None)).collect();
    (ctxs, filters)
}

/// Evaluate `models` at `k` on `users`: each model's answers as `engine`
/// gives them, item for item.
pub fn evaluate(
    engine: &Engine,
    models: &[&dyn Recommender],
    users: &[TestUser],
    k: usize,
) -> Vec<ModelResult> {
    let (ctxs, filters) = contexts(engine, users);
    let n_items = engine.bundle().items.len();
    models
        .iter()
        .map(|model| {
            let lists = engine.answer_batch(*model, &ctxs, &filters, k);
            score_lists(model.name(), users, &lists, k, n_items)
        })
        .collect()
}

/// How many of the relevant items two_stage's candidate sources reach.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateRecall {
    /// Per source: name, mean recall over users, items proposed at most.
    pub sources: Vec<(String, f64, usize)>,
    /// Recall of the union of all sources.
    pub union_recall: f64,
    /// Mean size of the union per user.
    pub union_size: f64,
}

/// Recall of `model`'s candidates (each source and the union) on `users`,
/// averaged like recall@k: relevant items reached over all relevant items.
pub fn candidate_recall(engine: &Engine, model: &TwoStage, users: &[TestUser]) -> CandidateRecall {
    let mut per_source = [0.0f64; N_SOURCES];
    let (mut union, mut size) = (0.0f64, 0.0f64);
    for chunk in users.chunks(4096) {
        let (ctxs, filters) = contexts(engine, chunk);
        let c = model.candidates(&ctxs, &filters);
        for (q, user) in chunk.iter().enumerate() {
            let n = user.n_relevant.max(1) as f64;
            let rows = c.rows(q);
            size += rows.len() as f64;
            for r in rows {
                if user.relevant.binary_search(&c.items[r]).is_err() {
                    continue;
                }
                union += 1.0 / n;
                for (s, rank) in c.ranks[r].iter().enumerate() {
                    if !rank.is_nan() {
                        per_source[s] += 1.0 / n;
                    }
                }
            }
        }
    }
    let users_n = users.len().max(1) as f64;
    CandidateRecall {
        sources: SOURCES
            .iter()
            .map(|&s| {
                (
                    s.name().to_string(),
                    per_source[s.index()] / users_n,
                    model.config.candidates.n(s),
                )
            })
            .collect(),
        union_recall: union / users_n,
        union_size: size / users_n,
    }
}

/// Mean over `users` of the share of their relevant items found in their own
/// training history: what no re-ranking of that history can go beyond.
pub fn history_ceiling(train: &TrainSet, users: &[TestUser]) -> f64 {
    let total: f64 = users
        .iter()
        .map(|u| {
            let Some(user) = u.user else { return 0.0 };
            let seen: HashSet<u32> = train.user_events(user).map(|i| train.item[i]).collect();
            let found = u.relevant.iter().filter(|i| seen.contains(i)).count();
            found as f64 / u.n_relevant.max(1) as f64
        })
        .sum();
    total / users.len().max(1) as f64
}

/// Evaluate every model of `engine`'s bundle on the test window of `split` at `k`.
pub fn evaluate_engine(engine: &Engine, split: &Split, k: usize) -> Report {
    let bundle = engine.bundle();
    let users = ground_truth(&split.test, &bundle.users, &bundle.items, split.protocol);
    let results = evaluate(engine, &bundle.models(), &users, k);
    let warm_users = users.iter().filter(|u| u.user.is_some()).count();
    let candidates = bundle
        .two_stage
        .as_ref()
        .map(|m| candidate_recall(engine, m, &users));
    Report {
        k,
        protocol: split.protocol,
        cutoff_ms: split.cutoff_ms,
        users: users.len(),
        warm_users,
        cold_users: users.len() - warm_users,
        results,
        bundle: Some(bundle.manifest.run_id.clone()),
        candidates,
        replay: None,
        intervals: None,
        ceiling: Some(Ceiling {
            history: history_ceiling(&bundle.train, &users),
        }),
        folds: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{EventKind, EventLog, Protocol};

    fn data() -> (crate::data::TrainSet, EventLog) {
        use crate::data::TrainSet;
        let mut train = EventLog::default();
        train.push(1, 1, EventKind::View, 100);
        train.push(2, 1, EventKind::View, 101);
        train.push(3, 2, EventKind::View, 102);
        train.sort_dedup();
        let mut test = EventLog::default();
        test.push(10, 1, EventKind::AddToCart, 101);
        test.push(11, 1, EventKind::View, 102);
        test.push(12, 3, EventKind::AddToCart, 100); // cold user
        test.push(13, 3, EventKind::AddToCart, 555); // item unknown to training
        test.push(14, 2, EventKind::Transaction, 102);
        test.sort_dedup();
        (TrainSet::new(&train, 5), test)
    }

    #[test]
    fn strict_counts_carts_of_warm_and_cold_users_including_unknown_items() {
        let (train, test) = data();
        let gt = ground_truth(&test, &train.users, &train.items, Protocol::Strict);
        assert_eq!(gt.len(), 2);
        assert_eq!(gt[0].visitor, 1);
        assert_eq!(gt[0].relevant, vec![train.items.get(101).unwrap()]);
        assert_eq!(gt[1].visitor, 3);
        assert_eq!(gt[1].user, None);
        assert_eq!(gt[1].n_relevant, 2);
        assert_eq!(gt[1].relevant.len(), 1);
    }

    #[test]
    fn reference_counts_any_event_on_known_items_for_warm_users() {
        let (train, test) = data();
        let gt = ground_truth(&test, &train.users, &train.items, Protocol::Reference);
        assert_eq!(
            gt.len(),
            1,
            "cold users and transaction-only users drop out"
        );
        assert_eq!(gt[0].n_relevant, 2);
    }

    #[test]
    fn the_history_ceiling_counts_relevant_items_the_shopper_had_touched() {
        let (train, test) = data();
        let gt = ground_truth(&test, &train.users, &train.items, Protocol::Strict);
        // Warm user 1 carts 101, which they viewed in training: all reachable.
        // Cold user 3 has no history: nothing of theirs is.
        assert_eq!(history_ceiling(&train, &gt), 0.5);
        assert_eq!(history_ceiling(&train, &gt[1..]), 0.0);
        assert_eq!(history_ceiling(&train, &[]), 0.0);
    }

    #[test]
    fn segments_and_coverage() {
        let (train, test) = data();
        let gt = ground_truth(&test, &train.users, &train.items, Protocol::Strict);
        let i = |raw| train.items.get(raw).unwrap();
        let list = vec![(i(101), 3.0), (i(100), 2.0), (i(102), 1.0)];
        let lists = vec![list.clone(); gt.len()];
        let res = score_lists("fixed", &gt, &lists, 1, train.items.len());
        assert_eq!(res.warm.precision, 1.0);
        assert_eq!(res.cold.precision, 0.0);
        assert_eq!(res.all.precision, 0.5);
        assert!((res.all.coverage - 1.0 / 3.0).abs() < 1e-12);
        // Without 101 the warm user misses at k = 1.
        let lists = vec![list[1..].to_vec(); gt.len()];
        let res = score_lists("fixed", &gt, &lists, 1, train.items.len());
        assert_eq!(res.warm.precision, 0.0);
        assert_eq!(res.cold.recall, 0.5);
    }
}
