//! Picking the `k` best-scored items out of many.
//!
//! Used by every model; ties break toward the lower item index so results are
//! deterministic whatever order the scores arrive in.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::Scored;

/// Min-heap entry: the worst kept candidate sits on top.
#[derive(PartialEq)]
struct Entry(Scored);

impl Eq for Entry {}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // "Greater" = worse: lower score, or equal score and higher index.
        other
            .0
             .1
            .total_cmp(&self.0 .1)
            .then_with(|| self.0 .0.cmp(&other.0 .0))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The `k` highest-scoring `(item, score)` pairs, best first. NaN scores are skipped.
pub fn top_k(scores: impl IntoIterator<Item = Scored>, k: usize) -> Vec<Scored> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Entry> = BinaryHeap::with_capacity(k + 1);
    for (item, score) in scores {
        if score.is_nan() {
            continue;
        }
        if heap.len() < k {
            heap.push(Entry((item, score)));
        } else if let Some(worst) = heap.peek() {
            let better = score > worst.0 .1 || (score == worst.0 .1 && item < worst.0 .0);
            if better {
                heap.pop();
                heap.push(Entry((item, score)));
            }
        }
    }
    let mut out: Vec<Scored> = heap.into_iter().map(|e| e.0).collect();
    sort_best_first(&mut out);
    out
}

/// Sort `(item, score)` pairs best first, ties by ascending item.
pub fn sort_best_first(items: &mut [Scored]) {
    items.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_in_order_with_deterministic_ties() {
        let scores = vec![
            (0, 1.0),
            (1, 5.0),
            (2, 3.0),
            (3, 5.0),
            (4, f32::NAN),
            (5, 3.0),
        ];
        assert_eq!(top_k(scores.clone(), 3), vec![(1, 5.0), (3, 5.0), (2, 3.0)]);
        assert_eq!(top_k(scores.clone(), 0), vec![]);
        assert_eq!(top_k(scores, 10).len(), 5);
    }
}
