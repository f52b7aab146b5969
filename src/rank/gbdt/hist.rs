//! Gradient histograms of a leaf and the split search over them.
//!
//! A leaf's histogram holds, for every usable feature and every bin, the sums
//! `(Σg, Σh, n)` of the gradients, hessians and rows of the leaf whose value
//! falls in that bin. With it, the best threshold of a feature is one scan over
//! its bins, whatever the number of rows.
//!
//! Building is the hot loop of training, so:
//!
//! * it runs in parallel over feature groups (four features whose codes sit
//!   side by side, see `bins.rs`), each feature summed by one thread in row
//!   order, which makes the result independent of the thread count;
//! * a leaf's gradients are first gathered into leaf order (`ordered`), so
//!   the loop reads gradients sequentially and only the 4-byte code words
//!   are fetched by row index — with a software prefetch a few dozen rows
//!   ahead, because a leaf's rows are scattered over the table and that
//!   fetch, not the arithmetic, is what a large table's training waits on;
//! * gradients are stored as `f32` (half the memory traffic) and summed in
//!   `f64` so the subtraction trick (`larger child = parent − smaller child`)
//!   stays accurate after many splits;
//! * every feature owns a fixed block of 256 cells, so the `u8` bin code
//!   indexes it with no bounds check, and a cell is four `f64` lanes
//!   `[Σg, Σh, n, 0]` that one AVX add updates (chosen at run time; the
//!   portable build does the same additions, so both give the same bits);
//! * the four features of a group update four different blocks per row, so
//!   runs of rows in the same bin (common for skewed features) do not stall
//!   on each other's stores.
//!
//! The split gain is the usual second-order one:
//!
//! ```text
//! gain = G_L² / (H_L + λ) + G_R² / (H_R + λ) − G² / (H + λ)
//! ```
//!
//! and rows with a missing value are tried on both sides, the better side
//! becoming the split's default direction.

use rayon::prelude::*;

use super::bins::{BinnedData, FeatureGroup, CELLS_PER_FEATURE, GROUP};

/// The gradient and hessian of one row.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C)]
pub(super) struct GradPair {
    /// ∂loss/∂score.
    pub g: f32,
    /// ∂²loss/∂score².
    pub h: f32,
}

/// One histogram cell: sums over the rows in one bin. The row count is an
/// `f64` lane beside the gradient sums (exact up to 2⁵³) so one cell is four
/// `f64`s, 32-byte aligned, and a row is added with a single 256-bit add on
/// AVX machines: `[Σg, Σh, n, 0] += [g, h, 1, 0]`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C, align(32))]
pub(super) struct HistBin {
    /// Σ gradients.
    pub g: f64,
    /// Σ hessians.
    pub h: f64,
    /// Rows.
    pub n: f64,
    /// Padding to four lanes.
    pad: f64,
}

impl HistBin {
    /// Rows in the cell.
    #[inline]
    pub(super) fn count(&self) -> u64 {
        self.n as u64
    }

    #[inline(always)]
    fn add_row(&mut self, gp: GradPair) {
        // Written lane by lane so LLVM fuses it into one vector add.
        let v = [gp.g, gp.h, 1.0f32, 0.0f32];
        self.g += v[0] as f64;
        self.h += v[1] as f64;
        self.n += v[2] as f64;
        self.pad += v[3] as f64;
    }

    #[inline(always)]
    fn sub(&mut self, o: &HistBin) {
        self.g -= o.g;
        self.h -= o.h;
        self.n -= o.n;
        self.pad -= o.pad;
    }
}

/// Sums over all rows of a leaf (or one side of a split).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct LeafSums {
    /// Σ gradients.
    pub g: f64,
    /// Σ hessians.
    pub h: f64,
    /// Rows.
    pub n: u64,
}

impl LeafSums {
    fn minus(&self, o: &LeafSums) -> LeafSums {
        LeafSums {
            g: self.g - o.g,
            h: self.h - o.h,
            n: self.n - o.n,
        }
    }
}

/// The rows a histogram is built from.
#[derive(Clone, Copy)]
pub(super) enum Rows<'a> {
    /// Every row of the table, in order; `grads` is indexed by row.
    All(&'a [GradPair]),
    /// A subset: `ordered[i]` is the gradient of row `indices[i]`.
    Subset {
        /// Row indices.
        indices: &'a [u32],
        /// Their gradients, gathered in the same order.
        ordered: &'a [GradPair],
    },
}

impl Rows<'_> {
    fn len(&self) -> usize {
        match self {
            Rows::All(g) => g.len(),
            Rows::Subset { indices, .. } => indices.len(),
        }
    }
}

/// Below this many row × feature visits a leaf is histogrammed on the calling
/// thread: forking costs more than it saves.
const PARALLEL_MIN_WORK: usize = 1 << 16;

/// The cells of feature `f` in a whole-leaf histogram.
#[inline]
pub(super) fn feature_cells(hist: &[HistBin], f: usize) -> &[HistBin] {
    &hist[f * CELLS_PER_FEATURE..(f + 1) * CELLS_PER_FEATURE]
}

/// What to look for once a feature's cells are ready: the best split of a
/// leaf with these sums under these rules.
pub(super) type SplitSearch<'a> = Option<(LeafSums, &'a SplitRules)>;

/// One feature's block of cells.
type Cells<'a> = &'a mut [HistBin; CELLS_PER_FEATURE];

/// Fills the cells of `features` (ascending) in `hist` (a whole-leaf
/// histogram, [`CELLS_PER_FEATURE`] cells per feature) from `rows`, and with
/// `search` returns the leaf's best split.
///
/// Work is split by feature group: one task streams the group's codes once
/// and fills all its features (also those not in `features`, which a
/// feature-sampled tree then ignores), then searches its features' splits
/// while the cells are still in cache. Only each feature's used cells are
/// written.
pub(super) fn build(
    hist: &mut [HistBin],
    data: &BinnedData,
    features: &[usize],
    rows: Rows<'_>,
    search: SplitSearch<'_>,
) -> Option<SplitInfo> {
    let mut selected = vec![false; data.mappers.len()];
    for &f in features {
        selected[f] = true;
    }
    let mut blocks: Vec<Option<Cells<'_>>> = hist
        .chunks_exact_mut(CELLS_PER_FEATURE)
        .map(|b| Some(b.try_into().expect("a block is 256 cells")))
        .collect();
    // Blocks past the features are spares for the short last group.
    let mut spares = data.mappers.len()..blocks.len();
    let tasks: Vec<(&FeatureGroup, Vec<Cells<'_>>)> = data
        .groups
        .iter()
        .filter(|g| g.features.iter().any(|&f| selected[f]))
        .map(|g| {
            let mut cells: Vec<Cells<'_>> = g
                .features
                .iter()
                .map(|&f| blocks[f].take().expect("one group per feature"))
                .collect();
            while cells.len() < GROUP {
                let b = spares.next().expect("GROUP − 1 spare blocks");
                cells.push(blocks[b].take().expect("a spare is used once"));
            }
            (g, cells)
        })
        .collect();
    let one = |(group, mut cells): (&FeatureGroup, Vec<Cells<'_>>)| {
        build_group(&mut cells, group, data, rows);
        let mut found = Vec::new();
        if let Some((total, rules)) = search {
            for (c, &f) in cells.iter().zip(&group.features) {
                if selected[f] {
                    let n_cells = data.mappers[f].n_cells();
                    found.push(best_split_feature(&c[..n_cells], f, total, rules));
                }
            }
        }
        found
    };
    let found: Vec<Vec<Option<SplitInfo>>> = if rows.len() * features.len() >= PARALLEL_MIN_WORK {
        tasks.into_par_iter().with_max_len(1).map(one).collect()
    } else {
        tasks.into_iter().map(one).collect()
    };
    best_of(found.into_iter().flatten())
}

/// `parent −= child` over the cells of `features`: afterwards `parent` holds
/// the histogram of the parent's other child. With `search`, returns that
/// child's best split.
pub(super) fn subtract(
    parent: &mut [HistBin],
    child: &[HistBin],
    data: &BinnedData,
    features: &[usize],
    search: SplitSearch<'_>,
) -> Option<SplitInfo> {
    let mut blocks = parent.chunks_exact_mut(CELLS_PER_FEATURE).enumerate();
    let mut slices = Vec::with_capacity(features.len());
    for &f in features {
        let (_, block) = blocks
            .by_ref()
            .find(|(i, _)| *i == f)
            .expect("features are ascending and in range");
        slices.push((f, block));
    }
    let one = |(f, cells): (usize, &mut [HistBin])| {
        let n_cells = data.mappers[f].n_cells();
        for (p, c) in cells[..n_cells].iter_mut().zip(feature_cells(child, f)) {
            p.sub(c);
        }
        search.and_then(|(total, rules)| best_split_feature(&cells[..n_cells], f, total, rules))
    };
    let found: Vec<Option<SplitInfo>> = slices.into_par_iter().with_max_len(4).map(one).collect();
    best_of(found)
}

/// The best of per-feature candidates given in feature order; ties keep the
/// lower feature, whatever the scheduling.
fn best_of(found: impl IntoIterator<Item = Option<SplitInfo>>) -> Option<SplitInfo> {
    let mut best: Option<SplitInfo> = None;
    for s in found.into_iter().flatten() {
        if best.is_none_or(|b| s.gain > b.gain) {
            best = Some(s);
        }
    }
    best
}

/// One group's histograms, with the AVX build when the CPU has it (the same
/// additions in the same order, so the same bits either way). `cells` has a
/// block for each slot, spare blocks standing in for the unused slots of a
/// short last group.
fn build_group(cells: &mut [Cells<'_>], group: &FeatureGroup, data: &BinnedData, rows: Rows<'_>) {
    for (c, &f) in cells.iter_mut().zip(&group.features) {
        c[..data.mappers[f].n_cells()].fill(HistBin::default());
    }
    let cells: [&mut [HistBin; CELLS_PER_FEATURE]; GROUP] = cells
        .iter_mut()
        .map(|c| &mut **c)
        .collect::<Vec<_>>()
        .try_into()
        .unwrap_or_else(|_| panic!("one block per slot"));
    let codes = &group.codes[..];
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX, checked just above.
            unsafe { build_group_avx(cells, codes, rows) };
            return;
        }
    }
    build_group_impl(cells, codes, rows);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn build_group_avx(
    cells: [&mut [HistBin; CELLS_PER_FEATURE]; GROUP],
    codes: &[[u8; GROUP]],
    rows: Rows<'_>,
) {
    build_group_impl(cells, codes, rows);
}

/// How many rows ahead loops over a leaf's scattered rows prefetch.
pub(super) const PREFETCH_AHEAD: usize = 64;

/// A hint to bring `x`'s cache line into L1; no effect on results.
#[inline(always)]
pub(super) fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint and never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(x as *const T as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// The hot loop: per row one 4-byte load of codes, one gradient, and four
/// independent cell updates (which also keeps runs of equal bins in one
/// feature from stalling on each other).
#[inline(always)]
fn build_group_impl(
    cells: [&mut [HistBin; CELLS_PER_FEATURE]; GROUP],
    codes: &[[u8; GROUP]],
    rows: Rows<'_>,
) {
    let mut cells = cells;
    let mut add = |k: [u8; GROUP], gp: GradPair| {
        for (c, &k) in cells.iter_mut().zip(&k) {
            c[k as usize].add_row(gp);
        }
    };
    match rows {
        Rows::All(grads) => {
            for (&k, &gp) in codes[..grads.len()].iter().zip(grads) {
                add(k, gp);
            }
        }
        Rows::Subset { indices, ordered } => {
            // A leaf's rows are ascending but scattered, which no hardware
            // prefetcher follows: ask for the codes of the row PREFETCH_AHEAD
            // places on, so many cache misses are in flight at once instead
            // of each row waiting for its own.
            let ordered = &ordered[..indices.len()];
            let ahead = indices.len().saturating_sub(PREFETCH_AHEAD);
            for (i, (&r, &gp)) in indices[..ahead].iter().zip(ordered).enumerate() {
                prefetch(&codes[indices[i + PREFETCH_AHEAD] as usize]);
                add(codes[r as usize], gp);
            }
            for (&r, &gp) in indices[ahead..].iter().zip(&ordered[ahead..]) {
                add(codes[r as usize], gp);
            }
        }
    }
}

/// Limits a split must respect.
#[derive(Debug, Clone, Copy)]
pub(super) struct SplitRules {
    /// λ of the L2 penalty.
    pub lambda_l2: f64,
    /// Rows per child at least (≥ 1).
    pub min_data_in_leaf: u64,
    /// Σ hessians per child at least.
    pub min_sum_hessian: f64,
    /// Gain must exceed this.
    pub min_gain_to_split: f64,
}

impl SplitRules {
    #[inline]
    fn score(&self, s: &LeafSums) -> f64 {
        s.g * s.g / (s.h + self.lambda_l2)
    }

    #[inline]
    fn allows(&self, s: &LeafSums) -> bool {
        s.n >= self.min_data_in_leaf && s.h >= self.min_sum_hessian
    }
}

/// The best split found for a leaf.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct SplitInfo {
    /// The feature.
    pub feature: usize,
    /// Values in bins `0..=bin` go left.
    pub bin: u8,
    /// Where missing values go.
    pub default_left: bool,
    /// Loss reduction.
    pub gain: f64,
    /// Sums of the left child.
    pub left: LeafSums,
    /// Sums of the right child.
    pub right: LeafSums,
}

impl SplitInfo {
    /// Whether a row with bin code `bin` goes left, as a 256-entry table so the
    /// partition loop is branch-free.
    pub(super) fn left_table(&self, missing_bin: usize) -> [bool; 256] {
        let mut t = [false; 256];
        for (b, slot) in t.iter_mut().enumerate() {
            *slot = if b == missing_bin {
                self.default_left
            } else {
                b <= self.bin as usize
            };
        }
        t
    }
}

/// The best threshold of one feature. `cells` are its value bins followed by
/// its missing bin.
pub(super) fn best_split_feature(
    cells: &[HistBin],
    feature: usize,
    total: LeafSums,
    rules: &SplitRules,
) -> Option<SplitInfo> {
    let n_value = cells.len() - 1;
    let missing = cells[n_value];
    let parent = rules.score(&total);
    // A gain must beat the setting and also the rounding error of
    // `score_L + score_R − parent`: otherwise a split of a leaf whose rows are
    // already alike "gains" 1e-14 and wastes a leaf.
    let floor = rules.min_gain_to_split.max(1e-10 * parent);
    let mut best: Option<SplitInfo> = None;
    // Missing right first, then (if the leaf has missing rows) missing left;
    // without missing rows the two scans would be identical.
    for missing_left in [false, true] {
        if missing_left && missing.count() == 0 {
            break;
        }
        let mut left = if missing_left {
            LeafSums {
                g: missing.g,
                h: missing.h,
                n: missing.count(),
            }
        } else {
            LeafSums::default()
        };
        for (t, cell) in cells[..n_value].iter().enumerate() {
            left.g += cell.g;
            left.h += cell.h;
            let n = cell.count();
            left.n += n;
            if n == 0 {
                // Same partition as the previous threshold.
                continue;
            }
            if left.n == total.n {
                break;
            }
            let right = total.minus(&left);
            if !rules.allows(&left) || !rules.allows(&right) {
                continue;
            }
            let gain = rules.score(&left) + rules.score(&right) - parent;
            if gain > floor && best.is_none_or(|b| gain > b.gain) {
                best = Some(SplitInfo {
                    feature,
                    bin: t as u8,
                    default_left: missing_left,
                    gain,
                    left,
                    right,
                });
            }
        }
    }
    if let Some(b) = best.as_mut() {
        if missing.count() == 0 {
            // No training row was missing here: send future missing values to
            // the side most training rows went to.
            b.default_left = b.left.n >= b.right.n;
        }
    }
    best
}
