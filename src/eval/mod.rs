//! Offline evaluation: how well each model predicts the test window.
//!
//! [`ground_truth`] turns the test events into each user's relevant items under
//! the split's [`Protocol`]; [`evaluate`] asks every model for its top k per user
//! and averages the [`metrics`] overall and per segment — *warm* users (seen in
//! training) and *cold* ones (first seen in the test window), because a model that
//! only serves warm users should not look good by hiding the cold ones.

pub mod metrics;
pub mod report;

use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;

use crate::bundle::Bundle;
use crate::data::{EventKind, EventLog, IdMap, Protocol, Split};
use crate::models::{exclude_seen, Recommender};
use crate::rank::candidates::{N_SOURCES, SOURCES};
use crate::rank::TwoStage;
use metrics::{user_metrics, MetricSums, Metrics};
pub use report::Report;

/// One test user and what they found relevant.
#[derive(Debug, Clone, PartialEq)]
pub struct TestUser {
    /// Raw `visitorid`.
    pub visitor: i64,
    /// Dense training index, `None` for a cold user.
    pub user: Option<u32>,
    /// Relevant items known to training (dense, sorted ascending).
    pub relevant: Vec<u32>,
    /// All relevant items, including those no model could know.
    pub n_relevant: usize,
}

/// The users to evaluate and their relevant items, in visitor order; `users`
/// and `items` are the id maps of the models being evaluated.
pub fn ground_truth(
    test: &EventLog,
    users: &IdMap,
    items: &IdMap,
    protocol: Protocol,
) -> Vec<TestUser> {
    let mut by_visitor: BTreeMap<i64, HashSet<i64>> = BTreeMap::new();
    for i in 0..test.len() {
        let counts = match protocol {
            Protocol::Strict => test.kind[i] == EventKind::AddToCart,
            Protocol::Reference => {
                test.kind[i] != EventKind::Transaction && items.get(test.item[i]).is_some()
            }
        };
        if counts {
            by_visitor
                .entry(test.visitor[i])
                .or_default()
                .insert(test.item[i]);
        }
    }
    by_visitor
        .into_iter()
        .filter_map(|(visitor, found)| {
            let user = users.get(visitor);
            if protocol == Protocol::Reference && user.is_none() {
                return None;
            }
            let mut relevant: Vec<u32> = found.iter().filter_map(|&i| items.get(i)).collect();
            relevant.sort_unstable();
            Some(TestUser {
                visitor,
                user,
                relevant,
                n_relevant: found.len(),
            })
        })
        .collect()
}

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
}

/// Each test user's training items (dense, sorted), for `exclude_seen`.
pub fn seen_items(
    train: &EventLog,
    users: &IdMap,
    items: &IdMap,
    test_users: &[TestUser],
) -> HashMap<u32, Vec<u32>> {
    let wanted: HashSet<u32> = test_users.iter().filter_map(|u| u.user).collect();
    let mut seen: HashMap<u32, Vec<u32>> = HashMap::new();
    for i in 0..train.len() {
        if let (Some(u), Some(item)) = (users.get(train.visitor[i]), items.get(train.item[i])) {
            if wanted.contains(&u) {
                seen.entry(u).or_default().push(item);
            }
        }
    }
    seen.par_iter_mut().for_each(|(_, v)| {
        v.sort_unstable();
        v.dedup();
    });
    seen
}

/// Evaluate `models` at `k` on `users`, for a catalogue of `n_items` items.
/// With `seen` (see [`seen_items`]), those items are removed from each user's
/// list before scoring.
pub fn evaluate(
    models: &[&dyn Recommender],
    users: &[TestUser],
    k: usize,
    n_items: usize,
    seen: Option<&HashMap<u32, Vec<u32>>>,
) -> Vec<ModelResult> {
    let queries: Vec<Option<u32>> = users.iter().map(|u| u.user).collect();
    let empty = HashMap::new();
    let seen = seen.unwrap_or(&empty);
    // Ask for enough that k remain after removing the longest seen list.
    let ask = k + seen.values().map(Vec::len).max().unwrap_or(0);
    models
        .iter()
        .map(|model| {
            let lists = model.recommend_batch(&queries, ask);
            let mut sums = [
                MetricSums::default(),
                MetricSums::default(),
                MetricSums::default(),
            ];
            let mut shown: [HashSet<u32>; 3] = Default::default();
            for (user, list) in users.iter().zip(lists) {
                let list = match user.user.and_then(|u| seen.get(&u)) {
                    Some(seen) => exclude_seen(list, seen, k),
                    None => list.into_iter().take(k).collect(),
                };
                let items: Vec<u32> = list.iter().map(|r| r.0).collect();
                let m = user_metrics(&items, &user.relevant, user.n_relevant, k);
                let segment = if user.user.is_some() { 1 } else { 2 };
                for s in [0, segment] {
                    sums[s].add(&m);
                    shown[s].extend(items.iter().copied());
                }
            }
            let catalog = n_items.max(1) as f64;
            let mean = |s: usize| sums[s].mean(shown[s].len() as f64 / catalog);
            ModelResult {
                name: model.name().to_string(),
                all: mean(0),
                warm: mean(1),
                cold: mean(2),
            }
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
pub fn candidate_recall(model: &TwoStage, users: &[TestUser]) -> CandidateRecall {
    let mut per_source = [0.0f64; N_SOURCES];
    let (mut union, mut size) = (0.0f64, 0.0f64);
    for chunk in users.chunks(4096) {
        let queries: Vec<Option<u32>> = chunk.iter().map(|u| u.user).collect();
        let c = model.candidates(&queries);
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

/// Evaluate every model of `bundle` on the test window of `split` at `k`.
pub fn evaluate_bundle(
    bundle: &Bundle,
    split: &Split,
    k: usize,
    exclude_seen_items: bool,
) -> Report {
    let users = ground_truth(&split.test, &bundle.users, &bundle.items, split.protocol);
    let seen =
        exclude_seen_items.then(|| seen_items(&split.train, &bundle.users, &bundle.items, &users));
    let results = evaluate(
        &bundle.models(),
        &users,
        k,
        bundle.items.len(),
        seen.as_ref(),
    );
    let warm_users = users.iter().filter(|u| u.user.is_some()).count();
    let candidates = bundle
        .two_stage
        .as_ref()
        .map(|m| candidate_recall(m, &users));
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Scored;

    struct Fixed(Vec<Scored>);
    impl Recommender for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn recommend(&self, _user: Option<u32>, n: usize) -> Vec<Scored> {
            self.0.iter().take(n).copied().collect()
        }
    }

    fn data() -> (crate::data::TrainSet, EventLog, EventLog) {
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
        (TrainSet::new(&train, 5), test, train)
    }

    #[test]
    fn strict_counts_carts_of_warm_and_cold_users_including_unknown_items() {
        let (train, test, _) = data();
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
        let (train, test, _) = data();
        let gt = ground_truth(&test, &train.users, &train.items, Protocol::Reference);
        assert_eq!(
            gt.len(),
            1,
            "cold users and transaction-only users drop out"
        );
        assert_eq!(gt[0].n_relevant, 2);
    }

    #[test]
    fn segments_and_seen_filtering() {
        let (train, test, log) = data();
        let gt = ground_truth(&test, &train.users, &train.items, Protocol::Strict);
        let i = |raw| train.items.get(raw).unwrap();
        let model = Fixed(vec![(i(101), 3.0), (i(100), 2.0), (i(102), 1.0)]);
        let res = &evaluate(&[&model], &gt, 1, train.items.len(), None)[0];
        assert_eq!(res.warm.precision, 1.0);
        assert_eq!(res.cold.precision, 0.0);
        assert_eq!(res.all.precision, 0.5);
        assert!((res.all.coverage - 1.0 / 3.0).abs() < 1e-12);
        // User 1 saw 100 and 101 in training: excluding them leaves 102, a miss.
        let seen = seen_items(&log, &train.users, &train.items, &gt);
        let res = &evaluate(&[&model], &gt, 1, train.items.len(), Some(&seen))[0];
        assert_eq!(res.warm.precision, 0.0);
        assert_eq!(res.cold.recall, 0.0);
    }
}
