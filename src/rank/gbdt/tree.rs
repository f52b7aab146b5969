//! A fitted regression tree in the flat layout prediction wants.
//!
//! Scoring millions of rows × hundreds of trees is a pointer chase, so the
//! layout is chosen for it: internal nodes are one array of 16-byte [`Node`]s
//! (four to a cache line), children are `i32` where a negative value `!leaf`
//! names a leaf (LightGBM's encoding, no separate "is leaf" flag to test), and
//! leaf values live in their own array. The statistics the model file and the
//! importance report need (gains, counts) are kept in side arrays so they never
//! share cache lines with the hot data.

/// Rows scored together by [`Tree::add_block`].
pub(super) const BLOCK: usize = 8;

/// One internal node: `row[feature] ≤ threshold` goes left, `NaN` goes to the
/// default side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Node {
    /// Feature index in the low 31 bits, "missing goes left" in the top bit.
    feature_and_default: u32,
    /// Raw-value threshold (may be ±∞).
    pub threshold: f32,
    /// Left then right child: a node index, or `!leaf` when negative. An
    /// array, so the direction taken indexes it instead of branching.
    pub children: [i32; 2],
}

const DEFAULT_LEFT_BIT: u32 = 1 << 31;

impl Node {
    /// A node; `feature` must be below 2³¹.
    pub(super) fn new(
        feature: usize,
        threshold: f32,
        default_left: bool,
        left: i32,
        right: i32,
    ) -> Self {
        let f = u32::try_from(feature).expect("feature index fits 31 bits");
        assert!(f < DEFAULT_LEFT_BIT, "feature index fits 31 bits");
        Node {
            feature_and_default: f | if default_left { DEFAULT_LEFT_BIT } else { 0 },
            threshold,
            children: [left, right],
        }
    }

    /// The feature tested.
    #[inline(always)]
    pub(super) fn feature(&self) -> usize {
        (self.feature_and_default & !DEFAULT_LEFT_BIT) as usize
    }

    /// Whether missing values go left.
    #[inline(always)]
    pub(super) fn default_left(&self) -> bool {
        self.feature_and_default & DEFAULT_LEFT_BIT != 0
    }
}

/// A child pointer decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Child {
    /// An internal node.
    Node(usize),
    /// A leaf.
    Leaf(usize),
}

impl Child {
    /// The `i32` encoding used in [`Node`].
    pub(super) fn encode(self) -> i32 {
        match self {
            Child::Node(i) => i32::try_from(i).expect("node index fits i32"),
            Child::Leaf(i) => !i32::try_from(i).expect("leaf index fits i32"),
        }
    }

    /// Decodes a child pointer.
    pub(super) fn decode(c: i32) -> Child {
        if c < 0 {
            Child::Leaf(!c as usize)
        } else {
            Child::Node(c as usize)
        }
    }
}

/// A regression tree: `nodes.len() + 1` leaves, node 0 the root (no nodes: a
/// single leaf).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Tree {
    /// Internal nodes.
    pub nodes: Vec<Node>,
    /// Loss reduction of each node's split.
    pub gains: Vec<f32>,
    /// Output of each leaf, learning rate included. `f32` because that is
    /// plenty for one tree's share of a score, halves the hot data, and — as
    /// serde_json reads `f32` exactly but not always `f64` — makes the JSON
    /// round trip bit-exact.
    pub leaf_values: Vec<f32>,
    /// Training rows that reached each leaf (of the bagged rows).
    pub leaf_counts: Vec<u64>,
}

impl Tree {
    /// One step down from node `i` for `row`: the child pointer taken.
    #[inline(always)]
    fn step(&self, i: usize, row: &[f32]) -> i32 {
        let node = &self.nodes[i];
        let v = row[node.feature()];
        // Right when v > t, or when v is NaN and missing goes right. Written
        // with flags rather than `||` so it compiles to setcc/or, not to a
        // branch whose outcome is a coin flip at every level.
        let missing_right = (node.feature_and_default >> 31) ^ 1;
        let go_right = (v > node.threshold) as u32 | (v.is_nan() as u32 & missing_right);
        node.children[go_right as usize]
    }

    /// The leaf `row` falls in.
    #[inline]
    pub(super) fn leaf_index(&self, row: &[f32]) -> usize {
        if self.nodes.is_empty() {
            return 0;
        }
        let mut c = 0i32;
        loop {
            c = self.step(c as usize, row);
            if c < 0 {
                return !c as usize;
            }
        }
    }

    /// The tree's output for `row`.
    #[inline]
    pub(super) fn predict(&self, row: &[f32]) -> f64 {
        self.leaf_values[self.leaf_index(row)] as f64
    }

    /// Adds the tree's output for each of up to [`BLOCK`] consecutive rows
    /// (`rows` row-major, `n_features` wide) to `acc`. The rows walk down in
    /// lockstep, so their independent pointer chases overlap in the CPU
    /// instead of each waiting on its own loads; a row that reached its leaf
    /// stays there.
    #[inline]
    pub(super) fn add_block(&self, rows: &[f32], n_features: usize, acc: &mut [f64]) {
        if self.nodes.is_empty() {
            let v = self.leaf_values[0] as f64;
            acc.iter_mut().for_each(|a| *a += v);
            return;
        }
        let n = acc.len().min(BLOCK);
        let mut cur = [0i32; BLOCK];
        loop {
            let mut active = false;
            for (l, c) in cur.iter_mut().enumerate().take(n) {
                let row = &rows[l * n_features..(l + 1) * n_features];
                let next = self.step((*c).max(0) as usize, row);
                *c = if *c >= 0 { next } else { *c };
                active |= *c >= 0;
            }
            if !active {
                break;
            }
        }
        for (a, &c) in acc.iter_mut().zip(&cur[..n]) {
            *a += self.leaf_values[!c as usize] as f64;
        }
    }

    /// Edges on the longest root-to-leaf path.
    #[cfg(test)]
    pub(super) fn depth(&self) -> usize {
        fn walk(tree: &Tree, c: Child) -> usize {
            match c {
                Child::Leaf(_) => 0,
                Child::Node(i) => {
                    let n = &tree.nodes[i];
                    let [l, r] = n.children;
                    1 + walk(tree, Child::decode(l)).max(walk(tree, Child::decode(r)))
                }
            }
        }
        if self.nodes.is_empty() {
            0
        } else {
            walk(self, Child::Node(0))
        }
    }
}
