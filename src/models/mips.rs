//! Maximum inner product search over item factors: the ALS candidates of one
//! shopper without a pass over the whole catalogue.
//!
//! Inner products are not a metric, but they become cosines after one extra
//! coordinate (Bachrach et al. 2014): with `M` the largest item norm,
//!
//! ```text
//! y' = [y, √(M² − |y|²)],  q' = [q, 0]   ⇒   q'·y' = q·y  and  |y'| = M for every item,
//! ```
//!
//! so the items nearest `q'` by cosine are the items of largest `q·y`, and the
//! cosine [`IvfIndex`] can search them. With one `M` for the whole catalogue
//! the extra coordinate dominates every short vector, the clusters stop
//! following the directions, and the index must probe almost everything. So
//! the items are split into ranges of similar norm, each augmented with its own
//! `M_r` and indexed apart (norm-ranging, Yan et al. 2018). A query visits the
//! ranges from the longest vectors down and stops as soon as the best `n`
//! found beat `|q| · M_r`, the most any item of the next range can score —
//! on ALS factors, where the items shoppers like have long vectors, the short
//! ranges are rarely read.

use super::factors::{dot, Factors};
use super::ivf::IvfIndex;
use super::topk::top_k;
use super::Scored;

/// The longest-vector range holds this share of the items; each next range
/// twice as many, the last one the rest. Norms of trained factors fall off
/// steeply, so narrow ranges at the top keep each range's lengths alike.
const FIRST_RANGE_SHARE: f64 = 1.0 / 256.0;

/// Ranges of this many items or more are clustered; smaller ones scanned whole.
const EXACT_BELOW: usize = 1024;

/// One norm range: its items (global ids, longest first) and their index.
#[derive(Debug, Clone)]
struct Range {
    ids: Vec<u32>,
    max_norm: f32,
    index: IvfIndex,
}

/// A maximum inner product index over the rows of a factor table.
#[derive(Debug, Clone)]
pub struct MipsIndex {
    /// Longest vectors first.
    ranges: Vec<Range>,
}

impl MipsIndex {
    /// Index the rows of `items`, deterministic for `seed`.
    pub fn build(items: &Factors, seed: u64) -> MipsIndex {
        let f = items.dim;
        let norms: Vec<f32> = (0..items.rows)
            .map(|i| dot(items.row(i), items.row(i)).sqrt())
            .collect();
        let mut order: Vec<u32> = (0..items.rows as u32).collect();
        order.sort_by(|&a, &b| {
            norms[b as usize]
                .total_cmp(&norms[a as usize])
                .then(a.cmp(&b))
        });
        let mut bounds = Vec::new();
        let mut size = ((items.rows as f64 * FIRST_RANGE_SHARE).ceil() as usize).max(1);
        let mut start = 0;
        while start < items.rows {
            let end = if items.rows - start < 2 * size {
                items.rows
            } else {
                start + size
            };
            bounds.push(start..end);
            start = end;
            size *= 2;
        }
        let ranges = bounds
            .into_iter()
            .map(|b| &order[b])
            .enumerate()
            .map(|(r, ids)| {
                let max_norm = norms[ids[0] as usize];
                let mut augmented = Factors::zeros(ids.len(), f + 1);
                for (row, &id) in augmented.data.chunks_exact_mut(f + 1).zip(ids) {
                    let n = norms[id as usize];
                    row[..f].copy_from_slice(items.row(id as usize));
                    row[f] = (max_norm * max_norm - n * n).max(0.0).sqrt();
                }
                Range {
                    ids: ids.to_vec(),
                    max_norm,
                    index: IvfIndex::build_clustered_from(&augmented, seed + r as u64, EXACT_BELOW),
                }
            })
            .collect();
        MipsIndex { ranges }
    }

    /// The `n` rows of largest `query · y` among those `keep` allows, best
    /// first, with their true inner products.
    pub fn search(&self, query: &[f32], n: usize, keep: impl Fn(u32) -> bool) -> Vec<Scored> {
        let q_norm = dot(query, query).sqrt();
        if n == 0 || q_norm == 0.0 {
            return Vec::new();
        }
        let mut q = query.to_vec();
        q.push(0.0);
        let mut best: Vec<Scored> = Vec::new();
        for range in &self.ranges {
            let bound = range.max_norm * q_norm;
            if best.len() == n && best[n - 1].1 >= bound {
                break;
            }
            let found = range
                .index
                .search_where(&q, n, |local| keep(range.ids[local as usize]));
            let scale = range.max_norm * q_norm;
            best.extend(
                found
                    .into_iter()
                    .map(|(local, s)| (range.ids[local as usize], s * scale)),
            );
            best = top_k(best, n);
        }
        best
    }

    /// Clusters probed per query in each range, as a share of its clusters.
    pub fn probe_share(&self) -> f64 {
        let (probed, all) = self.ranges.iter().fold((0, 0), |(p, a), r| {
            (p + r.index.probes(), a + r.index.clusters())
        });
        probed as f64 / all.max(1) as f64
    }

    /// Double the clusters every range probes; false once every cluster is probed.
    pub fn widen(&mut self) -> bool {
        let mut widened = false;
        for range in &mut self.ranges {
            let probes = range.index.probes();
            if probes < range.index.clusters() {
                range.index.set_probes(probes * 2);
                widened = true;
            }
        }
        widened
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn finds_the_largest_inner_products_across_norm_ranges() {
        // A small table: every range is one exact cluster, so the search is exact.
        let mut rng = Rng::new(9);
        let mut items = Factors::zeros(500, 6);
        for (i, row) in items.data.chunks_exact_mut(6).enumerate() {
            let length = 1.0 + (i % 50) as f32;
            row.iter_mut()
                .for_each(|v| *v = length * (rng.next_f32() - 0.5));
        }
        let index = MipsIndex::build(&items, 1);
        for q in 0..20 {
            let query: Vec<f32> = (0..6).map(|_| rng.next_f32() - 0.5).collect();
            let exact = top_k(
                (0..500u32).map(|i| (i, dot(&query, items.row(i as usize)))),
                10,
            );
            let got = index.search(&query, 10, |i| i % 7 != 0 || q == 0);
            let allowed: Vec<Scored> = if q == 0 {
                exact.clone()
            } else {
                top_k(
                    (0..500u32)
                        .filter(|i| i % 7 != 0)
                        .map(|i| (i, dot(&query, items.row(i as usize)))),
                    10,
                )
            };
            let ids = |l: &[Scored]| l.iter().map(|s| s.0).collect::<Vec<_>>();
            assert_eq!(ids(&got), ids(&allowed));
            for (g, a) in got.iter().zip(&allowed) {
                assert!((g.1 - a.1).abs() < 1e-4 * (1.0 + a.1.abs()));
            }
        }
    }
}
