//! Ranking metrics at a cut-off `k`, for one user and averaged over users.
//!
//! Definitions (textbook, so our numbers compare with published ones):
//!
//! * precision@k = hits in the top k / k — always divided by k, even when the
//!   list is shorter or the user has fewer than k relevant items;
//! * recall@k = hits in the top k / number of relevant items;
//! * hit rate@k = 1 if there is at least one hit;
//! * NDCG@k = Σ_hits 1/log2(rank + 1) divided by the same sum for a perfect list
//!   of min(k, relevant) hits;
//! * AP@k = Σ_hits precision@rank / min(k, relevant), and MAP@k its mean.

use serde::{Deserialize, Serialize};

/// One user's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UserMetrics {
    /// precision@k.
    pub precision: f64,
    /// recall@k.
    pub recall: f64,
    /// NDCG@k.
    pub ndcg: f64,
    /// AP@k.
    pub ap: f64,
    /// 1.0 with at least one hit, else 0.0.
    pub hit: f64,
}

/// Score the list `recommended` (best first; only the first `k` count) against
/// `relevant` (sorted ascending) for a user with `n_relevant` relevant items in
/// all, some of which may be absent from `relevant` because no model can know them.
pub fn user_metrics(
    recommended: &[u32],
    relevant: &[u32],
    n_relevant: usize,
    k: usize,
) -> UserMetrics {
    debug_assert!(relevant.windows(2).all(|w| w[0] < w[1]));
    if k == 0 || n_relevant == 0 {
        return UserMetrics::default();
    }
    let mut hits = 0usize;
    let mut dcg = 0.0;
    let mut ap = 0.0;
    for (rank, item) in recommended.iter().take(k).enumerate() {
        if relevant.binary_search(item).is_ok() {
            hits += 1;
            dcg += 1.0 / ((rank + 2) as f64).log2();
            ap += hits as f64 / (rank + 1) as f64;
        }
    }
    let ideal_hits = k.min(n_relevant);
    let idcg: f64 = (0..ideal_hits).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
    UserMetrics {
        precision: hits as f64 / k as f64,
        recall: hits as f64 / n_relevant as f64,
        ndcg: dcg / idcg,
        ap: ap / ideal_hits as f64,
        hit: if hits > 0 { 1.0 } else { 0.0 },
    }
}

/// Metrics averaged over a group of users, plus catalog coverage.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean precision@k.
    pub precision: f64,
    /// Mean recall@k.
    pub recall: f64,
    /// Mean NDCG@k.
    pub ndcg: f64,
    /// MAP@k.
    pub map: f64,
    /// Share of users with at least one hit.
    pub hit_rate: f64,
    /// Distinct recommended items / items in the training catalogue.
    pub coverage: f64,
}

/// Running sums for [`Metrics`].
#[derive(Debug, Clone, Default)]
pub struct MetricSums {
    users: usize,
    sum: UserMetrics,
}

impl MetricSums {
    /// Add one user's metrics.
    pub fn add(&mut self, m: &UserMetrics) {
        self.users += 1;
        self.sum.precision += m.precision;
        self.sum.recall += m.recall;
        self.sum.ndcg += m.ndcg;
        self.sum.ap += m.ap;
        self.sum.hit += m.hit;
    }

    /// Users added so far.
    pub fn users(&self) -> usize {
        self.users
    }

    /// The means, with the given coverage.
    pub fn mean(&self, coverage: f64) -> Metrics {
        let n = self.users.max(1) as f64;
        Metrics {
            precision: self.sum.precision / n,
            recall: self.sum.recall / n,
            ndcg: self.sum.ndcg / n,
            map: self.sum.ap / n,
            hit_rate: self.sum.hit / n,
            coverage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_computed_case() {
        // Hits at ranks 1 and 3 of a 4-long list, 3 relevant items, k = 4.
        let m = user_metrics(&[10, 20, 30, 40], &[10, 30, 99], 3, 4);
        assert!(close(m.precision, 2.0 / 4.0));
        assert!(close(m.recall, 2.0 / 3.0));
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!(close(m.ndcg, dcg / idcg));
        assert!(close(m.ap, (1.0 + 2.0 / 3.0) / 3.0));
        assert!(close(m.hit, 1.0));
    }

    #[test]
    fn no_hits_is_all_zero() {
        let m = user_metrics(&[1, 2, 3], &[7, 8], 2, 3);
        assert_eq!(m, UserMetrics::default());
    }

    #[test]
    fn precision_divides_by_k_even_for_short_lists() {
        // k larger than the list: one hit in a 2-long list at k = 10.
        let m = user_metrics(&[5, 6], &[6], 1, 10);
        assert!(close(m.precision, 0.1));
        assert!(close(m.recall, 1.0));
        assert!(close(m.ndcg, (1.0 / 3f64.log2()) / 1.0));
        assert!(close(m.ap, 0.5));
    }

    #[test]
    fn only_the_first_k_count_and_unknown_relevant_items_lower_recall() {
        // The hit is at rank 3, beyond k = 2.
        assert_eq!(user_metrics(&[1, 2, 3], &[3], 1, 2).recall, 0.0);
        // 4 relevant in all, only 1 knowable: perfect list still has recall 1/4.
        let m = user_metrics(&[3], &[3], 4, 10);
        assert!(close(m.recall, 0.25));
        assert!(close(m.ap, 1.0 / 4.0));
    }

    #[test]
    fn averages_over_users() {
        let mut sums = MetricSums::default();
        sums.add(&user_metrics(&[1], &[1], 1, 1));
        sums.add(&user_metrics(&[2], &[1], 1, 1));
        let m = sums.mean(0.5);
        assert_eq!(sums.users(), 2);
        assert!(close(m.precision, 0.5));
        assert!(close(m.hit_rate, 0.5));
        assert!(close(m.coverage, 0.5));
    }
}
