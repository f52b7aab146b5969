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

/// The `k` best `(item, score)` pairs offered so far, for loops that offer
/// them one at a time (NaN scores are skipped).
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Entry>,
    /// The worst kept score once `k` are kept; anything below it is refused
    /// without touching the heap.
    worst: f32,
}

impl TopK {
    /// Keep the best `k`.
    pub fn new(k: usize) -> TopK {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            worst: f32::NEG_INFINITY,
        }
    }

    /// Whether a score of `score` could still be kept (cheap pre-check).
    #[inline]
    pub fn could_keep(&self, score: f32) -> bool {
        self.heap.len() < self.k || score >= self.worst
    }

    /// Offer one pair.
    #[inline]
    pub fn offer(&mut self, item: u32, score: f32) {
        if self.k == 0 || score.is_nan() || !self.could_keep(score) {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Entry((item, score)));
        } else if let Some(worst) = self.heap.peek() {
            let better = score > worst.0 .1 || (score == worst.0 .1 && item < worst.0 .0);
            if !better {
                return;
            }
            self.heap.pop();
            self.heap.push(Entry((item, score)));
        }
        if self.heap.len() == self.k {
            self.worst = self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.0 .1);
        }
    }

    /// The kept pairs, best first.
    pub fn into_sorted(self) -> Vec<Scored> {
        let mut out: Vec<Scored> = self.heap.into_iter().map(|e| e.0).collect();
        sort_best_first(&mut out);
        out
    }
}

/// The `k` highest-scoring `(item, score)` pairs, best first. NaN scores are skipped.
pub fn top_k(scores: impl IntoIterator<Item = Scored>, k: usize) -> Vec<Scored> {
    let mut best = TopK::new(k);
    for (item, score) in scores {
        best.offer(item, score);
    }
    best.into_sorted()
}

/// Mean share of each `exact` list's items that the matching `found` list
/// holds (lists with nothing to find are left out; 1 when none is left): how
/// an approximate search is measured against the exact one.
pub fn mean_recall(exact: &[Vec<Scored>], found: &[Vec<Scored>]) -> f64 {
    let shares: Vec<f64> = exact
        .iter()
        .zip(found)
        .filter(|(truth, _)| !truth.is_empty())
        .map(|(truth, got)| {
            let hits = truth
                .iter()
                .filter(|t| got.iter().any(|g| g.0 == t.0))
                .count();
            hits as f64 / truth.len() as f64
        })
        .collect();
    if shares.is_empty() {
        1.0
    } else {
        shares.iter().sum::<f64>() / shares.len() as f64
    }
}

/// [`top_k`] of a dense score vector (item `i` scores `scores[i]`), the hot
/// path of scoring against every item of a large catalogue.
///
/// Scanning in item order means an arriving item never wins a tie against a
/// kept one, so a block of 16 whose maximum does not beat the worst kept score
/// is skipped whole — after the first few thousand items almost every block —
/// and the block maximum is a branch-free reduction the compiler vectorises.
pub fn top_k_dense(scores: &[f32], k: usize) -> Vec<Scored> {
    top_k_dense_where(scores, k, |_| true)
}

/// [`top_k_dense`] among the items `keep` allows; `keep` is asked only about
/// items good enough to be kept, so a filter costs little on a long vector.
pub fn top_k_dense_where(scores: &[f32], k: usize, keep: impl Fn(u32) -> bool) -> Vec<Scored> {
    const BLOCK: usize = 16;
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Entry> = BinaryHeap::with_capacity(k + 1);
    let mut worst = f32::NEG_INFINITY;
    let offer = |item: usize, score: f32, heap: &mut BinaryHeap<Entry>| {
        if score.is_nan() {
            return;
        }
        if heap.len() < k {
            if keep(item as u32) {
                heap.push(Entry((item as u32, score)));
            }
        } else if score > heap.peek().map_or(f32::NEG_INFINITY, |w| w.0 .1) && keep(item as u32) {
            heap.pop();
            heap.push(Entry((item as u32, score)));
        }
    };
    let blocks = scores.chunks_exact(BLOCK);
    let tail_start = scores.len() - blocks.remainder().len();
    for (b, block) in blocks.enumerate() {
        if heap.len() == k {
            // NaN never wins `max`, and NaN scores are never kept anyway.
            let mut lanes = [f32::NEG_INFINITY; 8];
            for (i, lane) in lanes.iter_mut().enumerate() {
                *lane = block[i].max(block[i + 8]);
            }
            let best = lanes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            if best <= worst {
                continue;
            }
        }
        for (i, &score) in block.iter().enumerate() {
            offer(b * BLOCK + i, score, &mut heap);
        }
        if heap.len() == k {
            worst = heap.peek().map_or(f32::NEG_INFINITY, |w| w.0 .1);
        }
    }
    for (i, &score) in scores[tail_start..].iter().enumerate() {
        offer(tail_start + i, score, &mut heap);
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

    #[test]
    fn the_dense_scan_agrees_with_the_heap_on_ties_and_nan() {
        let mut rng = crate::rng::Rng::new(5);
        for n in [0, 1, 15, 16, 17, 100, 1000, 4099] {
            // Few distinct values, so ties are everywhere; some NaN.
            let scores: Vec<f32> = (0..n)
                .map(|_| match rng.below(20) {
                    0 => f32::NAN,
                    v => (v % 7) as f32,
                })
                .collect();
            for k in [0, 1, 5, 16, 50, 5000] {
                let dense = top_k_dense(&scores, k);
                let heap = top_k(scores.iter().enumerate().map(|(i, &s)| (i as u32, s)), k);
                assert_eq!(dense, heap, "n {n} k {k}");
            }
        }
    }
}
