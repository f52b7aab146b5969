//! QuickScorer: scoring an ensemble feature by feature instead of tree by tree.
//!
//! Walking a tree is a chain of dependent loads and branches the CPU cannot
//! predict; a re-rank of ~100 candidates through ~100 trees is ten thousand
//! such walks per request. QuickScorer (Lucchese et al., SIGIR 2015) replaces
//! the walk by bit operations over arrays read in order:
//!
//! * each tree's leaves are numbered left to right and a row's reachable
//!   leaves are a bit set, all ones to start with;
//! * a node whose test fails for the row (`x > threshold`: the row goes right)
//!   rules out every leaf of its left subtree: `bits &= mask`, the mask having
//!   zeros exactly on those leaves;
//! * once every failing node has been applied, the leaf the row reaches is the
//!   leftmost leaf still set — the lowest bit. (A node on the row's path that
//!   holds removes the right subtree by sending the row left; every leaf left
//!   of the exit leaf sits in the left subtree of a failing node.)
//!
//! Nodes are grouped by feature and sorted by threshold, so the failing nodes
//! of a feature are a prefix of its list: the scan stops at the first
//! threshold the value does not exceed, and the order in which trees are
//! visited does not matter because `&` commutes. Eight rows go through each
//! node together ([`LANES`]); the compiler turns the per-lane compare and
//! mask into vector instructions, and the AVX2 build of the loop is taken
//! when the CPU has it.
//!
//! Missing values follow each node's default side: a feature with a `NaN` in
//! any lane is scanned in full with the default applied per node.
//!
//! Each row's score is the base score plus the trees' leaf values added in
//! model order in `f64`, so it equals the tree walk ([`Tree::add_block`]) bit
//! for bit; the tests check that on random ensembles.

use std::fmt::Debug;
use std::ops::{BitAnd, Not};

use super::tree::{Child, Tree};

/// Rows scored together.
pub(super) const LANES: usize = 8;

/// A tree's leaf set as bits: `u32` when every tree has at most 32 leaves,
/// `u64` up to 64.
pub(super) trait LeafBits:
    Copy + Debug + PartialEq + BitAnd<Output = Self> + Not<Output = Self>
{
    const BITS: usize;
    const ONES: Self;
    /// Bits `lo..hi` set.
    fn range(lo: usize, hi: usize) -> Self;
    /// Index of the lowest set bit.
    fn lowest(self) -> usize;
}

macro_rules! leaf_bits {
    ($t:ty) => {
        impl LeafBits for $t {
            const BITS: usize = <$t>::BITS as usize;
            const ONES: Self = <$t>::MAX;
            fn range(lo: usize, hi: usize) -> Self {
                let upto = |n: usize| {
                    if n >= <Self as LeafBits>::BITS {
                        Self::MAX
                    } else {
                        ((1 as $t) << n) - 1
                    }
                };
                upto(hi) & !upto(lo)
            }
            #[inline(always)]
            fn lowest(self) -> usize {
                self.trailing_zeros() as usize
            }
        }
    };
}
leaf_bits!(u32);
leaf_bits!(u64);

/// The ensemble laid out for QuickScorer, with leaf sets of type `M`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan<M> {
    /// Feature `f`'s nodes are `starts[f]..starts[f + 1]` of the arrays below.
    starts: Vec<u32>,
    /// Thresholds, ascending within a feature.
    thresholds: Vec<f32>,
    /// The tree each node belongs to.
    trees: Vec<u32>,
    /// Zeros on the node's left-subtree leaves: applied when the test fails.
    masks: Vec<M>,
    /// Whether a missing value goes right at the node.
    missing_right: Vec<bool>,
    /// Tree `t`'s leaf values, left to right, start at `leaf_starts[t]`.
    leaf_starts: Vec<u32>,
    /// Leaf values of every tree, each tree's left to right.
    leaf_values: Vec<f32>,
}

/// One node before grouping by feature.
struct Entry<M> {
    feature: u32,
    threshold: f32,
    tree: u32,
    mask: M,
    missing_right: bool,
}

impl<M: LeafBits> Plan<M> {
    /// The plan for `trees` over `n_features` features; `None` when a tree
    /// has more leaves than `M` has bits.
    fn new(trees: &[Tree], n_features: usize) -> Option<Self> {
        let mut entries: Vec<Entry<M>> = Vec::new();
        let mut leaf_starts = Vec::with_capacity(trees.len());
        let mut leaf_values = Vec::new();
        for (t, tree) in trees.iter().enumerate() {
            if tree.leaf_values.len() > M::BITS {
                return None;
            }
            leaf_starts.push(u32::try_from(leaf_values.len()).ok()?);
            if tree.nodes.is_empty() {
                leaf_values.push(tree.leaf_values[0]);
                continue;
            }
            let tree_id = u32::try_from(t).ok()?;
            visit(
                tree,
                Child::Node(0),
                tree_id,
                &mut entries,
                &mut leaf_values,
            );
        }
        entries.sort_by(|a, b| {
            a.feature
                .cmp(&b.feature)
                .then(a.threshold.total_cmp(&b.threshold))
        });
        let mut starts = vec![0u32; n_features + 1];
        for e in &entries {
            let f = e.feature as usize;
            if f >= n_features {
                return None;
            }
            starts[f + 1] += 1;
        }
        for f in 0..n_features {
            starts[f + 1] += starts[f];
        }
        Some(Plan {
            starts,
            thresholds: entries.iter().map(|e| e.threshold).collect(),
            trees: entries.iter().map(|e| e.tree).collect(),
            masks: entries.iter().map(|e| e.mask).collect(),
            missing_right: entries.iter().map(|e| e.missing_right).collect(),
            leaf_starts,
            leaf_values,
        })
    }

    /// Adds the ensemble's output for consecutive rows (`rows` row-major,
    /// `n_features` wide, `acc.len()` of them) to `acc`.
    #[inline(always)]
    fn add_rows(&self, rows: &[f32], n_features: usize, acc: &mut [f64]) {
        let mut bits = vec![[M::ONES; LANES]; self.leaf_starts.len()];
        for (acc, rows) in acc.chunks_mut(LANES).zip(rows.chunks(LANES * n_features)) {
            self.add_block(rows, n_features, acc, &mut bits);
        }
    }

    /// [`Plan::add_rows`] for up to [`LANES`] rows; `bits` is scratch space,
    /// one leaf set per tree and lane.
    #[inline(always)]
    fn add_block(&self, rows: &[f32], n_features: usize, acc: &mut [f64], bits: &mut [[M; LANES]]) {
        let n = acc.len().min(LANES);
        bits.iter_mut().for_each(|b| *b = [M::ONES; LANES]);
        for f in 0..n_features {
            let (lo, hi) = (self.starts[f] as usize, self.starts[f + 1] as usize);
            if lo == hi {
                continue;
            }
            // Lanes past the last row hold −∞, which exceeds no threshold.
            let mut xs = [f32::NEG_INFINITY; LANES];
            for (l, x) in xs.iter_mut().enumerate().take(n) {
                *x = rows[l * n_features + f];
            }
            if xs.iter().any(|x| x.is_nan()) {
                for j in lo..hi {
                    let (t, m, right) = (self.thresholds[j], self.masks[j], self.missing_right[j]);
                    let b = &mut bits[self.trees[j] as usize];
                    for (bl, &x) in b.iter_mut().zip(&xs) {
                        let fails = x > t || (x.is_nan() && right);
                        *bl = *bl & if fails { m } else { M::ONES };
                    }
                }
            } else {
                let xmax = xs.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
                let mut j = lo;
                // Some lane still exceeds the threshold while it is below the largest value.
                while j < hi && self.thresholds[j] < xmax {
                    let (t, m) = (self.thresholds[j], self.masks[j]);
                    let b = &mut bits[self.trees[j] as usize];
                    for (bl, &x) in b.iter_mut().zip(&xs) {
                        *bl = *bl & if x > t { m } else { M::ONES };
                    }
                    j += 1;
                }
            }
        }
        for (b, &start) in bits.iter().zip(&self.leaf_starts) {
            let leaves = &self.leaf_values[start as usize..];
            for (a, bl) in acc.iter_mut().zip(b.iter()).take(n) {
                *a += leaves[bl.lowest()] as f64;
            }
        }
    }
}

/// Appends the leaves under `c` to `leaf_values` left to right and a node
/// entry for every internal node; returns the range of leaf positions (within
/// the tree) under `c`.
fn visit<M: LeafBits>(
    tree: &Tree,
    c: Child,
    tree_id: u32,
    entries: &mut Vec<Entry<M>>,
    leaf_values: &mut Vec<f32>,
) -> (usize, usize) {
    visit_from(tree, c, tree_id, entries, leaf_values, &mut 0)
}

fn visit_from<M: LeafBits>(
    tree: &Tree,
    c: Child,
    tree_id: u32,
    entries: &mut Vec<Entry<M>>,
    leaf_values: &mut Vec<f32>,
    next_leaf: &mut usize,
) -> (usize, usize) {
    match c {
        Child::Leaf(l) => {
            leaf_values.push(tree.leaf_values[l]);
            *next_leaf += 1;
            (*next_leaf - 1, *next_leaf)
        }
        Child::Node(i) => {
            let node = &tree.nodes[i];
            let [left, right] = node.children;
            let (lo, mid) = visit_from(
                tree,
                Child::decode(left),
                tree_id,
                entries,
                leaf_values,
                next_leaf,
            );
            let (_, hi) = visit_from(
                tree,
                Child::decode(right),
                tree_id,
                entries,
                leaf_values,
                next_leaf,
            );
            entries.push(Entry {
                feature: node.feature() as u32,
                threshold: node.threshold,
                tree: tree_id,
                mask: !M::range(lo, mid),
                missing_right: !node.default_left(),
            });
            (lo, hi)
        }
    }
}

/// An ensemble compiled for QuickScorer.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum QuickScorer {
    /// Every tree has at most 32 leaves.
    Narrow(Plan<u32>),
    /// Every tree has at most 64 leaves.
    Wide(Plan<u64>),
}

impl QuickScorer {
    /// Compiles `trees`; `None` when a tree has more than 64 leaves (the tree
    /// walk then scores).
    pub(super) fn new(trees: &[Tree], n_features: usize) -> Option<Self> {
        let most = trees.iter().map(|t| t.leaf_values.len()).max().unwrap_or(1);
        if most <= 32 {
            Plan::new(trees, n_features).map(QuickScorer::Narrow)
        } else {
            Plan::new(trees, n_features).map(QuickScorer::Wide)
        }
    }

    /// Adds the ensemble's output for each row of `rows` (row-major,
    /// `n_features` wide, `acc.len()` rows) to `acc`, each tree's in model
    /// order.
    pub(super) fn add_rows(&self, rows: &[f32], n_features: usize, acc: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has just been checked for AVX2.
                unsafe { self.add_rows_avx2(rows, n_features, acc) };
                return;
            }
        }
        self.add_rows_portable(rows, n_features, acc);
    }

    #[inline(always)]
    fn add_rows_portable(&self, rows: &[f32], n_features: usize, acc: &mut [f64]) {
        match self {
            QuickScorer::Narrow(p) => p.add_rows(rows, n_features, acc),
            QuickScorer::Wide(p) => p.add_rows(rows, n_features, acc),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn add_rows_avx2(&self, rows: &[f32], n_features: usize, acc: &mut [f64]) {
        self.add_rows_portable(rows, n_features, acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rank::gbdt::tree::Node;
    use crate::rng::Rng;

    /// A random tree of `leaves` leaves over `n_features` features, thresholds
    /// drawn from a few values so that ties between trees occur.
    fn random_tree(rng: &mut Rng, leaves: usize, n_features: usize) -> Tree {
        // Grow by replacing a random leaf with a node over that leaf and a new one.
        let mut nodes: Vec<Node> = Vec::new();
        let mut slots: Vec<(usize, usize)> = Vec::new(); // (node, side) holding a leaf
        let mut n_leaves = 1;
        for _ in 1..leaves {
            let feature = rng.below(n_features as u64) as usize;
            let threshold = (rng.below(9) as f32 - 4.0) * 0.5;
            let default_left = rng.below(2) == 0;
            let new = nodes.len();
            let old_leaf = if nodes.is_empty() {
                0
            } else {
                let (parent, side) = slots.swap_remove(rng.below(slots.len() as u64) as usize);
                let old = !nodes[parent].children[side];
                nodes[parent].children[side] = new as i32;
                old as usize
            };
            let left = Child::Leaf(old_leaf).encode();
            let right = Child::Leaf(n_leaves).encode();
            nodes.push(Node::new(feature, threshold, default_left, left, right));
            n_leaves += 1;
            slots.push((new, 0));
            slots.push((new, 1));
        }
        let leaf_values: Vec<f32> = (0..n_leaves)
            .map(|_| (rng.below(2001) as f32 - 1000.0) / 997.0)
            .collect();
        Tree {
            gains: vec![0.0; nodes.len()],
            nodes,
            leaf_counts: vec![0; n_leaves],
            leaf_values,
        }
    }

    fn walk(trees: &[Tree], rows: &[f32], n_features: usize) -> Vec<f64> {
        let n = rows.len() / n_features;
        let mut acc = vec![0.25f64; n];
        for tree in trees {
            for (a, r) in acc.iter_mut().zip(rows.chunks(n_features)) {
                *a += tree.predict(r);
            }
        }
        acc
    }

    fn check(leaves: usize, seed: u64) {
        let mut rng = Rng::new(seed);
        let n_features = 5;
        let trees: Vec<Tree> = (0..23)
            .map(|i| {
                random_tree(
                    &mut rng,
                    if i == 3 { 1 } else { 1 + (i * 7) % leaves },
                    n_features,
                )
            })
            .collect();
        let n_rows = 37;
        let rows: Vec<f32> = (0..n_rows * n_features)
            .map(|_| match rng.below(12) {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                k => (k as f32 - 7.0) * 0.5, // hits thresholds exactly too
            })
            .collect();
        let qs = QuickScorer::new(&trees, n_features).expect("trees fit");
        let mut acc = vec![0.25f64; n_rows];
        qs.add_rows(&rows, n_features, &mut acc);
        let expect = walk(&trees, &rows, n_features);
        assert_eq!(acc, expect, "leaves {leaves} seed {seed}");
        let mut portable = vec![0.25f64; n_rows];
        qs.add_rows_portable(&rows, n_features, &mut portable);
        assert_eq!(portable, expect);
    }

    #[test]
    fn quickscorer_equals_the_tree_walk_bit_for_bit() {
        for seed in 0..20 {
            check(31, seed);
            check(64, seed);
        }
    }

    #[test]
    fn trees_over_64_leaves_are_left_to_the_walk() {
        let mut rng = Rng::new(1);
        let trees = vec![random_tree(&mut rng, 65, 3)];
        assert!(QuickScorer::new(&trees, 3).is_none());
        let trees = vec![random_tree(&mut rng, 33, 3)];
        assert!(matches!(
            QuickScorer::new(&trees, 3),
            Some(QuickScorer::Wide(_))
        ));
    }

    #[test]
    fn leaf_ranges_cover_the_named_bits() {
        assert_eq!(u32::range(0, 32), u32::MAX);
        assert_eq!(u32::range(1, 3), 0b110);
        assert_eq!(u64::range(60, 64), 0xF << 60);
        assert_eq!(0b1000u32.lowest(), 3);
    }
}
