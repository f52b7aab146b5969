//! Approximate nearest neighbours of factor rows: an inverted-file (IVF) index.
//!
//! Exact similar items cost a pass over every item's factors — 60 MB at
//! RetailRocket size, milliseconds per query — which is fine for batches
//! (evaluation, training) and far too slow for a request. The index clusters
//! the unit-length rows with spherical k-means; a query scores the cluster
//! centres, then only the members of the `nprobe` best clusters (a few percent
//! of the catalogue, stored contiguously). Small catalogues get one cluster,
//! which is exact. [`IvfIndex::recall_against_exact`] measures what the
//! approximation costs on a sample, so the service can report it.

use rayon::prelude::*;

use super::factors::{dot, dots, Factors};
use super::topk::{top_k_dense, TopK};
use super::Scored;
use crate::rng::Rng;

/// Below this many rows one cluster (an exact scan) is fast enough for
/// [`IvfIndex::build`].
pub const EXACT_BELOW: usize = 4096;

/// Rows a cluster's members are compared with when every row's neighbours are
/// computed ([`IvfIndex::neighbours_of_all`]). Probing a fixed share of the
/// clusters would make that table's cost grow with the square of the rows
/// (100 times the work for 10 times the items); a fixed pool keeps it linear.
/// RetailRocket's 200,000 items stay under it (58 clusters of ~225 rows), so
/// there the pool is unchanged; at ten times the items it is 23 of 2,800
/// clusters, and [`crate::models::als::AlsIndex::similar_recall`] measures
/// what that costs.
pub const NEIGHBOUR_POOL_ROWS: usize = 16_384;

/// Clusters of unit-length rows, searched by cosine similarity.
#[derive(Debug, Clone)]
pub struct IvfIndex {
    /// Cluster centres, unit length.
    centroids: Factors,
    /// Cluster `c`'s members are `ids[offsets[c]..offsets[c + 1]]`.
    offsets: Vec<usize>,
    /// Row ids grouped by cluster.
    ids: Vec<u32>,
    /// Where each row sits in `ids`.
    slot_of: Vec<u32>,
    /// The members' unit vectors in the same order, so a probe reads memory in sequence.
    vectors: Vec<f32>,
    /// Clusters searched per query.
    nprobe: usize,
}

impl IvfIndex {
    /// Index the rows of `rows` (any length; normalised here), deterministic for `seed`.
    pub fn build(rows: &Factors, seed: u64) -> IvfIndex {
        IvfIndex::build_clustered_from(rows, seed, EXACT_BELOW)
    }

    /// [`IvfIndex::build`], clustering tables of `exact_below` rows or more.
    pub fn build_clustered_from(rows: &Factors, seed: u64, exact_below: usize) -> IvfIndex {
        let unit = rows.normalized();
        let n = unit.rows;
        let clusters = if n < exact_below {
            1
        } else {
            // ~2√n clusters of ~√n/2 members; probing 1/32 of them scans ~3%.
            ((2.0 * (n as f64).sqrt()) as usize).max(1)
        };
        let nprobe = clusters.div_ceil(32).max(1).min(clusters);
        let centroids = if clusters == 1 {
            Factors {
                rows: 1,
                dim: unit.dim,
                data: vec![0.0; unit.dim],
            }
        } else {
            spherical_kmeans(&unit, clusters, seed)
        };
        let assignment: Vec<usize> = if clusters == 1 {
            vec![0; n]
        } else {
            let all: Vec<usize> = (0..n).collect();
            unit.top_n_against(&all, &centroids, 1)
                .into_iter()
                .map(|best| best.first().map_or(0, |b| b.0 as usize))
                .collect()
        };
        let mut offsets = vec![0usize; clusters + 1];
        for &c in &assignment {
            offsets[c + 1] += 1;
        }
        for c in 0..clusters {
            offsets[c + 1] += offsets[c];
        }
        let mut next = offsets.clone();
        let mut ids = vec![0u32; n];
        let mut vectors = vec![0.0f32; n * unit.dim];
        for (row, &c) in assignment.iter().enumerate() {
            let slot = next[c];
            next[c] += 1;
            ids[slot] = row as u32;
            vectors[slot * unit.dim..(slot + 1) * unit.dim].copy_from_slice(unit.row(row));
        }
        let mut slot_of = vec![0u32; n];
        for (slot, &id) in ids.iter().enumerate() {
            slot_of[id as usize] = slot as u32;
        }
        IvfIndex {
            centroids,
            offsets,
            ids,
            slot_of,
            vectors,
            nprobe,
        }
    }

    /// Every row's `width` most similar rows (itself excluded), by id, all at
    /// once: the members of a cluster are scored together, in one matrix
    /// product, against the members of the `2 × nprobe` clusters nearest
    /// their cluster's centre (at most [`NEIGHBOUR_POOL_ROWS`] rows' worth of
    /// clusters), instead of one scan per row. With `only`, the rows `r` with
    /// `only[r]` get theirs (the same lists as without it: a row's pool is
    /// its cluster's) and the others an empty list. `done(m)` is called as
    /// each cluster's `m` members are finished.
    pub fn neighbours_of_all(
        &self,
        width: usize,
        only: Option<&[bool]>,
        done: impl Fn(usize) + Sync,
    ) -> Vec<Vec<Scored>> {
        let wanted = |id: u32| only.is_none_or(|o| o.get(id as usize).copied().unwrap_or(false));
        let dim = self.centroids.dim;
        let mean_members = (self.ids.len() / self.clusters()).max(1);
        let pool_clusters = (2 * self.nprobe)
            .min(NEIGHBOUR_POOL_ROWS.div_ceil(mean_members))
            .clamp(1, self.clusters());
        let per_cluster: Vec<Vec<(u32, Vec<Scored>)>> = (0..self.clusters())
            .into_par_iter()
            .map(|c| {
                let (start, end) = (self.offsets[c], self.offsets[c + 1]);
                let members: Vec<usize> = (start..end)
                    .filter(|&slot| wanted(self.ids[slot]))
                    .collect();
                if members.is_empty() {
                    return Vec::new();
                }
                let queries = Factors {
                    rows: end - start,
                    dim,
                    data: self.vectors[start * dim..end * dim].to_vec(),
                };
                let asked: Vec<usize> = members.iter().map(|&slot| slot - start).collect();
                // The clusters nearest the cluster's centre, twice as many as a
                // single search probes: its members lie around that centre, and
                // the margin covers those near its edge.
                let probes: Vec<usize> = if self.clusters() == 1 {
                    vec![0]
                } else {
                    let mut centre_scores = vec![0.0; self.clusters()];
                    dots(
                        self.centroids.row(c),
                        &self.centroids.data,
                        &mut centre_scores,
                    );
                    top_k_dense(&centre_scores, pool_clusters)
                        .into_iter()
                        .map(|p| p.0 as usize)
                        .collect()
                };
                let mut pool_slots = Vec::new();
                let mut pool = Vec::new();
                for p in probes {
                    let (s, e) = (self.offsets[p], self.offsets[p + 1]);
                    pool_slots.extend(s..e);
                    pool.extend_from_slice(&self.vectors[s * dim..e * dim]);
                }
                let pool = Factors {
                    rows: pool_slots.len(),
                    dim,
                    data: pool,
                };
                let lists = queries.top_n_against(&asked, &pool, width + 1);
                done(members.len());
                members
                    .into_iter()
                    .zip(lists)
                    .map(|(slot, list)| {
                        let id = self.ids[slot];
                        let mut list: Vec<Scored> = list
                            .into_iter()
                            .map(|(j, s)| (self.ids[pool_slots[j as usize]], s))
                            .filter(|&(other, _)| other != id)
                            .collect();
                        list.truncate(width);
                        (id, list)
                    })
                    .collect()
            })
            .collect();
        let mut out = vec![Vec::new(); self.ids.len()];
        for (id, list) in per_cluster.into_iter().flatten() {
            out[id as usize] = list;
        }
        out
    }

    /// Clusters in the index.
    pub fn clusters(&self) -> usize {
        self.centroids.rows
    }

    /// Clusters searched per query.
    pub fn probes(&self) -> usize {
        self.nprobe
    }

    /// Search `nprobe` clusters per query (at least one, at most all).
    pub fn set_probes(&mut self, nprobe: usize) {
        self.nprobe = nprobe.clamp(1, self.clusters());
    }

    /// The `n` rows most similar to `query` (any length) by cosine, best
    /// first, without `skip` (the query's own row, if it is one).
    pub fn search(&self, query: &[f32], n: usize, skip: Option<u32>) -> Vec<Scored> {
        self.search_where(query, n, |id| Some(id) != skip)
    }

    /// [`IvfIndex::search`] among the rows `keep` allows.
    pub fn search_where(&self, query: &[f32], n: usize, keep: impl Fn(u32) -> bool) -> Vec<Scored> {
        let dim = self.centroids.dim;
        let norm = dot(query, query).sqrt();
        if norm == 0.0 || query.len() != dim {
            return Vec::new();
        }
        let probes: Vec<u32> = if self.clusters() == 1 {
            vec![0]
        } else {
            let mut centre_scores = vec![0.0; self.clusters()];
            dots(query, &self.centroids.data, &mut centre_scores);
            top_k_dense(&centre_scores, self.nprobe)
                .into_iter()
                .map(|p| p.0)
                .collect()
        };
        // Members of a cluster sit together: a plain loop over them, scored
        // against the unit query, with the worst kept score as a cut-off.
        let unit: Vec<f32> = query.iter().map(|v| v / norm).collect();
        let mut best = TopK::new(n);
        let mut scores = Vec::new();
        for c in probes {
            let (start, end) = (self.offsets[c as usize], self.offsets[c as usize + 1]);
            scores.resize(end - start, 0.0);
            dots(&unit, &self.vectors[start * dim..end * dim], &mut scores);
            for (slot, &score) in (start..end).zip(&scores) {
                let id = self.ids[slot];
                if best.could_keep(score) && keep(id) {
                    best.offer(id, score);
                }
            }
        }
        best.into_sorted()
    }

    /// The `n` rows most similar to row `row` of the indexed table, itself excluded.
    pub fn similar_to_row(&self, row: u32, n: usize) -> Vec<Scored> {
        let dim = self.centroids.dim;
        let Some(&slot) = self.slot_of.get(row as usize) else {
            return Vec::new();
        };
        let slot = slot as usize;
        let query = self.vectors[slot * dim..(slot + 1) * dim].to_vec();
        self.search(&query, n, Some(row))
    }

    /// Mean share of the exact top `n` found by the index, over up to
    /// `sample` rows of `rows` (the table it was built from).
    pub fn recall_against_exact(&self, rows: &Factors, n: usize, sample: usize, seed: u64) -> f64 {
        let unit = rows.normalized();
        if unit.rows < 2 {
            return 1.0;
        }
        let picked = Rng::new(seed).sample_sorted(unit.rows, sample.min(unit.rows));
        let exact = unit.top_n_against(&picked, &unit, n + 1);
        let found: Vec<f64> = picked
            .par_iter()
            .zip(exact.par_iter())
            .map(|(&row, truth)| {
                let truth: Vec<u32> = truth
                    .iter()
                    .map(|t| t.0)
                    .filter(|&t| t != row as u32)
                    .take(n)
                    .collect();
                let got = self.search(unit.row(row), n, Some(row as u32));
                let hits = got.iter().filter(|g| truth.contains(&g.0)).count();
                hits as f64 / truth.len().max(1) as f64
            })
            .collect();
        found.iter().sum::<f64>() / found.len().max(1) as f64
    }
}

/// `k` unit-length centres of the unit rows of `unit` (spherical k-means on a sample).
fn spherical_kmeans(unit: &Factors, k: usize, seed: u64) -> Factors {
    const ITERATIONS: usize = 8;
    let dim = unit.dim;
    let mut rng = Rng::new(seed);
    // ~64 points per centre is plenty to place it; the full table is assigned once at the end.
    let sample = rng.sample_sorted(unit.rows, (64 * k).min(unit.rows));
    let seeds = rng.sample_sorted(sample.len(), k);
    let mut centroids = Factors {
        rows: k,
        dim,
        data: seeds
            .iter()
            .flat_map(|&s| unit.row(sample[s]).iter().copied())
            .collect(),
    };
    for _ in 0..ITERATIONS {
        let nearest = unit.top_n_against(&sample, &centroids, 1);
        let mut sums = vec![0.0f32; k * dim];
        let mut counts = vec![0usize; k];
        for (&row, best) in sample.iter().zip(&nearest) {
            let Some(&(c, _)) = best.first() else {
                continue;
            };
            let c = c as usize;
            counts[c] += 1;
            for (s, v) in sums[c * dim..(c + 1) * dim].iter_mut().zip(unit.row(row)) {
                *s += v;
            }
        }
        for c in 0..k {
            let sum = &sums[c * dim..(c + 1) * dim];
            let norm = dot(sum, sum).sqrt();
            // An empty cluster keeps its old centre.
            if counts[c] > 0 && norm > 0.0 {
                for (dst, s) in centroids.data[c * dim..(c + 1) * dim].iter_mut().zip(sum) {
                    *dst = s / norm;
                }
            }
        }
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` rows around `topics` random directions, with noise.
    fn clustered(n: usize, topics: usize, dim: usize, seed: u64) -> Factors {
        let mut rng = Rng::new(seed);
        let centres: Vec<f32> = (0..topics * dim).map(|_| rng.normal() as f32).collect();
        let mut data = Vec::with_capacity(n * dim);
        for i in 0..n {
            let t = i % topics;
            for d in 0..dim {
                data.push(centres[t * dim + d] + 0.3 * rng.normal() as f32);
            }
        }
        Factors { rows: n, dim, data }
    }

    #[test]
    fn small_tables_are_searched_exactly() {
        let rows = clustered(500, 10, 16, 1);
        let index = IvfIndex::build(&rows, 7);
        assert_eq!(index.clusters(), 1);
        assert_eq!(index.recall_against_exact(&rows, 10, 100, 3), 1.0);
        let got = index.similar_to_row(42, 5);
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|g| g.0 != 42));
        assert!(got.windows(2).all(|w| w[0].1 >= w[1].1));
    }

    #[test]
    fn large_tables_are_clustered_and_still_find_most_true_neighbours() {
        let rows = clustered(20_000, 200, 32, 2);
        let index = IvfIndex::build(&rows, 7);
        assert!(index.clusters() > 100, "{}", index.clusters());
        let recall = index.recall_against_exact(&rows, 20, 200, 5);
        assert!(recall > 0.9, "recall@20 {recall}");
        // A query far from every row still answers, and a zero query answers nothing.
        assert_eq!(index.search(&[1.0; 32], 3, None).len(), 3);
        assert!(index.search(&[0.0; 32], 3, None).is_empty());
    }

    #[test]
    fn every_rows_neighbours_at_once_match_the_exact_ones_closely() {
        let rows = clustered(12_000, 120, 16, 4);
        let index = IvfIndex::build(&rows, 7);
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let all = index.neighbours_of_all(10, None, |m| {
            calls.fetch_add(m, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(calls.into_inner(), 12_000);
        assert_eq!(all.len(), 12_000);
        let unit = rows.normalized();
        let sample: Vec<usize> = (0..12_000).step_by(60).collect();
        let exact = unit.top_n_against(&sample, &unit, 11);
        let mut found = 0.0;
        for (&row, truth) in sample.iter().zip(&exact) {
            let got = &all[row];
            assert!(got.len() <= 10 && got.iter().all(|g| g.0 as usize != row));
            let truth: Vec<u32> = truth
                .iter()
                .map(|t| t.0)
                .filter(|&t| t as usize != row)
                .take(10)
                .collect();
            found += truth
                .iter()
                .filter(|t| got.iter().any(|g| g.0 == **t))
                .count() as f64
                / truth.len() as f64;
        }
        let recall = found / sample.len() as f64;
        assert!(recall > 0.9, "recall@10 {recall}");

        // Asked for some rows only, those get the lists they get among all
        // (ids compared: equal cosines may be computed in another order), and
        // the others nothing.
        let only: Vec<bool> = (0..12_000).map(|r| r % 7 == 3).collect();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let some = index.neighbours_of_all(10, Some(&only), |m| {
            calls.fetch_add(m, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(calls.into_inner(), only.iter().filter(|&&o| o).count());
        assert_eq!(some.len(), 12_000);
        for (row, (list, full)) in some.iter().zip(&all).enumerate() {
            if only[row] {
                let ids = |l: &Vec<Scored>| l.iter().map(|s| s.0).collect::<Vec<_>>();
                assert_eq!(ids(list), ids(full), "row {row}");
            } else {
                assert!(list.is_empty(), "row {row}");
            }
        }
    }
}
