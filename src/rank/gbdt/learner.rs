//! Growing one tree, leaf-wise, from the gradients of a boosting round.
//!
//! Leaf-wise (best-first) growth — always split the leaf whose best split gains
//! most — reaches a lower loss than level-wise growth for the same number of
//! leaves, which is why LightGBM uses it and why `num_leaves` rather than depth
//! is the main size knob.
//!
//! Each leaf owns a contiguous range of one row-index array; splitting a leaf
//! partitions its range in place (stable, so rows stay ascending and bin-code
//! reads stay close to sequential), and the two children take the two halves.
//! Only the smaller child's histogram is built from rows; the larger child's
//! is the parent's minus the smaller one's (the subtraction trick), so a level
//! of the tree costs at most half of its rows. Histogram buffers are recycled
//! through a pool, so steady-state training allocates nothing per tree but the
//! tree itself.

use rayon::prelude::*;

use super::bins::{BinnedData, GROUP};
use super::hist::{
    self, prefetch, GradPair, HistBin, LeafSums, Rows, SplitInfo, SplitRules, PREFETCH_AHEAD,
};
use super::tree::{Child, Node, Tree};

/// The shape limits and shrinkage of a tree.
#[derive(Debug, Clone, Copy)]
pub(super) struct TreeParams {
    /// Leaves at most.
    pub num_leaves: usize,
    /// Depth limit (`usize::MAX`: none).
    pub max_depth: usize,
    /// Split constraints.
    pub rules: SplitRules,
    /// Shrinkage of leaf values.
    pub learning_rate: f64,
}

/// A leaf while the tree grows.
#[derive(Debug)]
struct LeafState {
    /// Its rows are `indices[start..start + len]`.
    start: usize,
    len: usize,
    sums: LeafSums,
    depth: usize,
    /// Its histogram, while it may still be split.
    hist: Option<Vec<HistBin>>,
    /// Its best split, if any is allowed.
    best: Option<SplitInfo>,
    /// The node pointing at it and whether as its left child.
    parent: Option<(usize, bool)>,
}

/// Grows trees over one binned table, reusing its buffers between trees.
pub(super) struct Learner<'a> {
    data: &'a BinnedData,
    params: TreeParams,
    /// Spare histogram buffers.
    pool: Vec<Vec<HistBin>>,
    /// Row indices, each leaf a contiguous range.
    indices: Vec<u32>,
    /// Partition buffer, as long as `indices`.
    scratch: Vec<u32>,
    /// A leaf's gradients gathered in leaf order.
    ordered: Vec<GradPair>,
    /// The leaves of the last tree grown.
    leaves: Vec<LeafState>,
}

impl<'a> Learner<'a> {
    /// A learner for `data`.
    pub(super) fn new(data: &'a BinnedData, params: TreeParams) -> Self {
        Learner {
            data,
            params,
            pool: Vec::new(),
            indices: Vec::with_capacity(data.n_rows),
            scratch: vec![0; data.n_rows],
            ordered: vec![GradPair::default(); data.n_rows],
            leaves: Vec::new(),
        }
    }

    /// Grows a tree on `grads` (one per row of the table) using the rows in
    /// `bag` (ascending; `None` = all rows) and splitting only on `features`
    /// (ascending, usable).
    pub(super) fn grow(
        &mut self,
        grads: &[GradPair],
        bag: Option<&[u32]>,
        features: &[usize],
    ) -> Tree {
        let data = self.data;
        let p = self.params;
        self.indices.clear();
        match bag {
            Some(rows) => self.indices.extend_from_slice(rows),
            None => self.indices.extend(0..data.n_rows as u32),
        }
        let all_rows = bag.is_none();
        let mut root_sums = LeafSums::default();
        for &r in &self.indices {
            let gp = grads[r as usize];
            root_sums.g += gp.g as f64;
            root_sums.h += gp.h as f64;
        }
        root_sums.n = self.indices.len() as u64;

        for leaf in self.leaves.drain(..) {
            if let Some(h) = leaf.hist {
                self.pool.push(h);
            }
        }
        self.leaves.push(LeafState {
            start: 0,
            len: self.indices.len(),
            sums: root_sums,
            depth: 0,
            hist: None,
            best: None,
            parent: None,
        });
        if self.splittable(0) {
            let mut buf = self.take_buffer();
            let rows = if all_rows {
                Rows::All(grads)
            } else {
                gather(&self.indices, &mut self.ordered, grads)
            };
            let search = Some((self.leaves[0].sums, &p.rules));
            let best = hist::build(&mut buf, data, features, rows, search);
            self.set_histogram(0, buf, best);
        }

        let mut nodes: Vec<Node> = Vec::new();
        let mut gains: Vec<f32> = Vec::new();
        while self.leaves.len() < p.num_leaves {
            let mut pick: Option<(usize, f64)> = None;
            for (i, leaf) in self.leaves.iter().enumerate() {
                if let Some(b) = &leaf.best {
                    if pick.is_none_or(|(_, g)| b.gain > g) {
                        pick = Some((i, b.gain));
                    }
                }
            }
            let Some((li, _)) = pick else { break };
            let split = self.leaves[li]
                .best
                .take()
                .expect("picked leaf has a split");
            let parent_hist = self.leaves[li]
                .hist
                .take()
                .expect("a leaf with a split has a histogram");
            let (start, len, depth, parent) = {
                let l = &self.leaves[li];
                (l.start, l.len, l.depth, l.parent)
            };

            let mapper = &data.mappers[split.feature];
            let table = split.left_table(mapper.missing_bin());
            let (codes, slot) = data.codes_of(split.feature);
            let n_left = partition(
                &mut self.indices[start..start + len],
                &mut self.scratch[..len],
                codes,
                slot,
                &table,
            );
            debug_assert_eq!(n_left as u64, split.left.n);

            let node = nodes.len();
            let new_leaf = self.leaves.len();
            nodes.push(Node::new(
                split.feature,
                mapper.upper[split.bin as usize],
                split.default_left,
                Child::Leaf(li).encode(),
                Child::Leaf(new_leaf).encode(),
            ));
            gains.push(split.gain as f32);
            if let Some((pn, is_left)) = parent {
                let enc = Child::Node(node).encode();
                if is_left {
                    nodes[pn].children[0] = enc;
                } else {
                    nodes[pn].children[1] = enc;
                }
            }
            self.leaves[li] = LeafState {
                start,
                len: n_left,
                sums: split.left,
                depth: depth + 1,
                hist: None,
                best: None,
                parent: Some((node, true)),
            };
            self.leaves.push(LeafState {
                start: start + n_left,
                len: len - n_left,
                sums: split.right,
                depth: depth + 1,
                hist: None,
                best: None,
                parent: Some((node, false)),
            });

            // Histograms only for children that may still be split; after the
            // last allowed split, none.
            let room = self.leaves.len() < p.num_leaves;
            let (small, large) = if n_left <= len - n_left {
                (li, new_leaf)
            } else {
                (new_leaf, li)
            };
            let want_small = room && self.splittable(small);
            let want_large = room && self.splittable(large);
            let small_search = want_small.then_some((self.leaves[small].sums, &p.rules));
            let large_search = want_large.then_some((self.leaves[large].sums, &p.rules));
            if want_large {
                let mut small_buf = self.take_buffer();
                let rows = self.leaf_rows(small, grads);
                let small_best = hist::build(&mut small_buf, data, features, rows, small_search);
                let mut large_buf = parent_hist;
                let large_best =
                    hist::subtract(&mut large_buf, &small_buf, data, features, large_search);
                self.set_histogram(large, large_buf, large_best);
                if want_small {
                    self.set_histogram(small, small_buf, small_best);
                } else {
                    self.pool.push(small_buf);
                }
            } else if want_small {
                let mut buf = parent_hist;
                let rows = self.leaf_rows(small, grads);
                let best = hist::build(&mut buf, data, features, rows, small_search);
                self.set_histogram(small, buf, best);
            } else {
                self.pool.push(parent_hist);
            }
        }

        for leaf in self.leaves.iter_mut() {
            if let Some(h) = leaf.hist.take() {
                self.pool.push(h);
            }
            leaf.best = None;
        }
        let leaf_values = self
            .leaves
            .iter()
            .map(|l| (leaf_value(&l.sums, p.rules.lambda_l2) * p.learning_rate) as f32)
            .collect();
        let leaf_counts = self.leaves.iter().map(|l| l.len as u64).collect();
        Tree {
            nodes,
            gains,
            leaf_values,
            leaf_counts,
        }
    }

    /// Adds `tree`'s leaf values (the tree last grown) to the scores of the
    /// rows it was grown on, without walking the tree.
    pub(super) fn add_to_scores(&self, tree: &Tree, scores: &mut [f64]) {
        for (leaf, state) in self.leaves.iter().enumerate() {
            let v = tree.leaf_values[leaf] as f64;
            for &r in &self.indices[state.start..state.start + state.len] {
                scores[r as usize] += v;
            }
        }
    }

    /// Whether leaf `i` may be split at all by the size limits.
    fn splittable(&self, i: usize) -> bool {
        let l = &self.leaves[i];
        let r = &self.params.rules;
        l.depth < self.params.max_depth
            && l.len as u64 >= 2 * r.min_data_in_leaf
            && l.sums.h >= 2.0 * r.min_sum_hessian
    }

    /// The rows of leaf `i`, with their gradients gathered.
    fn leaf_rows<'s>(&'s mut self, i: usize, grads: &[GradPair]) -> Rows<'s> {
        let l = &self.leaves[i];
        gather(
            &self.indices[l.start..l.start + l.len],
            &mut self.ordered,
            grads,
        )
    }

    /// Stores leaf `i`'s histogram and best split; a leaf without an allowed
    /// split gives its buffer back at once.
    fn set_histogram(&mut self, i: usize, buf: Vec<HistBin>, best: Option<SplitInfo>) {
        let leaf = &mut self.leaves[i];
        leaf.best = best;
        if best.is_some() {
            leaf.hist = Some(buf);
        } else {
            self.pool.push(buf);
        }
    }

    fn take_buffer(&mut self) -> Vec<HistBin> {
        self.pool
            .pop()
            .unwrap_or_else(|| vec![HistBin::default(); self.data.total_cells()])
    }
}

/// Leaf output before shrinkage: the Newton step `−G / (H + λ)`.
pub(super) fn leaf_value(s: &LeafSums, lambda_l2: f64) -> f64 {
    let denom = s.h + lambda_l2;
    if denom > 0.0 {
        -s.g / denom
    } else {
        0.0
    }
}

/// Gathers the gradients of `rows` into `ordered` (in parallel chunks for
/// big leaves) and pairs them up.
fn gather<'s>(rows: &'s [u32], ordered: &'s mut [GradPair], grads: &[GradPair]) -> Rows<'s> {
    const CHUNK: usize = 1 << 15;
    let ordered = &mut ordered[..rows.len()];
    let copy = |(o, rows): (&mut [GradPair], &[u32])| {
        for (i, (o, &r)) in o.iter_mut().zip(rows).enumerate() {
            if let Some(&ahead) = rows.get(i + PREFETCH_AHEAD) {
                prefetch(&grads[ahead as usize]);
            }
            *o = grads[r as usize];
        }
    };
    if rows.len() >= 4 * CHUNK {
        ordered
            .par_chunks_mut(CHUNK)
            .zip(rows.par_chunks(CHUNK))
            .for_each(copy);
    } else {
        copy((ordered, rows));
    }
    Rows::Subset {
        indices: rows,
        ordered,
    }
}

/// Rows per task of a parallel partition.
const PARTITION_CHUNK: usize = 1 << 16;

/// Stable in-place partition of `rows` into those whose bin code goes left and
/// the rest; returns how many go left. `scratch` is as long as `rows`.
/// Large ranges are cut into fixed chunks partitioned in parallel and stitched
/// together in chunk order, so the result is the same for any thread count.
pub(super) fn partition(
    rows: &mut [u32],
    scratch: &mut [u32],
    codes: &[[u8; GROUP]],
    slot: usize,
    goes_left: &[bool; 256],
) -> usize {
    let len = rows.len();
    if len < 2 * PARTITION_CHUNK {
        let n_left = partition_chunk(rows, scratch, codes, slot, goes_left);
        rows[n_left..].copy_from_slice(&scratch[..len - n_left]);
        return n_left;
    }
    let lefts: Vec<usize> = rows
        .par_chunks_mut(PARTITION_CHUNK)
        .zip(scratch.par_chunks_mut(PARTITION_CHUNK))
        .map(|(r, s)| partition_chunk(r, s, codes, slot, goes_left))
        .collect();
    // Lefts move towards the front (never past their source), rights come
    // back from scratch.
    let mut write = 0;
    for (c, &n_left) in lefts.iter().enumerate() {
        let src = c * PARTITION_CHUNK;
        rows.copy_within(src..src + n_left, write);
        write += n_left;
    }
    let total_left = write;
    for (c, &n_left) in lefts.iter().enumerate() {
        let src = c * PARTITION_CHUNK;
        let chunk_len = PARTITION_CHUNK.min(len - src);
        let n_right = chunk_len - n_left;
        rows[write..write + n_right].copy_from_slice(&scratch[src..src + n_right]);
        write += n_right;
    }
    total_left
}

/// Lefts compacted to the front of `rows`, rights to the front of `scratch`;
/// returns the number of lefts. Branch-free: every row is written to both
/// places and only the cursors move conditionally, because the direction of a
/// row is unpredictable.
fn partition_chunk(
    rows: &mut [u32],
    scratch: &mut [u32],
    codes: &[[u8; GROUP]],
    slot: usize,
    goes_left: &[bool; 256],
) -> usize {
    let mut n_left = 0;
    let mut n_right = 0;
    for i in 0..rows.len() {
        if let Some(&ahead) = rows.get(i + PREFETCH_AHEAD) {
            prefetch(&codes[ahead as usize]);
        }
        let r = rows[i];
        let left = goes_left[codes[r as usize][slot] as usize];
        // n_left ≤ i and n_right ≤ i: both writes land on slots already read.
        rows[n_left] = r;
        scratch[n_right] = r;
        n_left += left as usize;
        n_right += (!left) as usize;
    }
    n_left
}
