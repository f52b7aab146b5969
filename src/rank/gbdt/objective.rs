//! Losses (gradients and hessians per row) and the metrics early stopping
//! watches.
//!
//! # LambdaMART
//!
//! Within a group, rows are ranked by the current scores `s`. For every pair
//! `(i, j)` with `label_i > label_j` where at least one of the two is ranked in
//! the top k (LightGBM's truncation: pairs below the cut-off cannot change
//! NDCG@k much and would dominate the cost), with
//!
//! ```text
//! ΔNDCG_ij = (gain_i − gain_j) · |1/log2(2 + rank_i) − 1/log2(2 + rank_j)| / IDCG@k
//! gain     = 2^label − 1        (ranks from 0)
//! ρ_ij     = 1 / (1 + e^(σ (s_i − s_j)))       the probability the pair is misordered
//! ```
//!
//! the pair adds
//!
//! ```text
//! λ_ij = σ ρ_ij ΔNDCG_ij          to −g_i, and to +g_j
//! w_ij = σ² ρ_ij (1 − ρ_ij) ΔNDCG_ij    to h_i and to h_j
//! ```
//!
//! i.e. the gradient of the pairwise logistic loss weighted by how much NDCG
//! would change if the two swapped places (Burges 2010). Trees fit `−g / h`
//! per leaf, so the relevant row is pushed up and the other down. A group whose
//! labels are all equal has no pair and is skipped. With `lambdarank_norm`, as
//! in LightGBM, ΔNDCG is divided by `0.01 + |s_i − s_j|` and the group's λs are
//! rescaled by `log2(1 + Σ|λ|) / Σ|λ|`.
//!
//! Groups are independent, so they are processed in parallel in fixed batches;
//! each group's sums run in a fixed order, so the result does not depend on the
//! thread count.
//!
//! # Binary
//!
//! Log-loss on `p = 1 / (1 + e^−s)`: `g = p − y`, `h = p (1 − p)`.

use std::ops::Range;

use rayon::prelude::*;

use super::hist::GradPair;

/// LambdaRank settings resolved for one fit.
#[derive(Debug, Clone, Copy)]
pub(super) struct LambdaRank {
    /// The NDCG cut-off k (also the truncation level).
    pub k: usize,
    /// σ of the pair probability.
    pub sigma: f64,
    /// LightGBM's `lambdarank_norm`.
    pub norm: bool,
}

/// `2^label − 1`.
#[inline]
pub(super) fn gain(label: f32) -> f64 {
    (label as f64).exp2() - 1.0
}

/// `1 / log2(2 + rank)` for ranks `0..n`.
pub(super) fn discounts(n: usize) -> Vec<f64> {
    (0..n).map(|r| 1.0 / ((r + 2) as f64).log2()).collect()
}

/// Batches of whole groups with about `rows_per_batch` rows each, so parallel
/// work items are few and balanced however the group sizes vary.
pub(super) fn group_batches(offsets: &[usize], rows_per_batch: usize) -> Vec<Range<usize>> {
    let mut batches = Vec::new();
    let mut first = 0;
    for g in 0..offsets.len() - 1 {
        if offsets[g + 1] - offsets[first] >= rows_per_batch {
            batches.push(first..g + 1);
            first = g + 1;
        }
    }
    if first < offsets.len() - 1 {
        batches.push(first..offsets.len() - 1);
    }
    batches
}

/// What never changes between rounds for one dataset and cut-off k: labels,
/// hence every row's gain and every group's ideal DCG@k. Computing them once
/// keeps `exp2` and the ideal sort out of the per-round work.
#[derive(Debug, Clone)]
pub(super) struct RankTable {
    /// The cut-off k.
    pub k: usize,
    /// CSR group offsets.
    pub offsets: Vec<usize>,
    /// `2^label − 1` per row.
    pub gains: Vec<f64>,
    /// `1 / IDCG@k` per group, 0 when no label is positive (NDCG undefined).
    pub inv_idcg: Vec<f64>,
    /// Whether a group has two different labels, i.e. any pair to learn from.
    pub has_pairs: Vec<bool>,
    /// Discounts of ranks `0..` the largest group.
    pub disc: Vec<f64>,
    /// Parallel work items.
    pub batches: Vec<Range<usize>>,
}

impl RankTable {
    /// The table of `labels` grouped by `offsets`, for NDCG@`k`.
    pub(super) fn new(labels: &[f32], offsets: &[usize], k: usize) -> Self {
        let gains: Vec<f64> = labels.iter().map(|&l| gain(l)).collect();
        let max_group = offsets.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        let disc = discounts(max_group.max(k).max(1));
        let mut ideal = Vec::new();
        let mut inv_idcg = Vec::with_capacity(offsets.len() - 1);
        let mut has_pairs = Vec::with_capacity(offsets.len() - 1);
        for w in offsets.windows(2) {
            let rows = w[0]..w[1];
            let idcg = ideal_dcg(&gains[rows.clone()], k, &disc, &mut ideal);
            inv_idcg.push(if idcg > 0.0 { 1.0 / idcg } else { 0.0 });
            let l = &labels[rows];
            has_pairs.push(l.iter().any(|&x| x != l[0]));
        }
        RankTable {
            k,
            offsets: offsets.to_vec(),
            gains,
            inv_idcg,
            has_pairs,
            disc,
            batches: group_batches(offsets, 1 << 13),
        }
    }

    /// Every group's rows in row order: the starting point of the `order`
    /// that [`lambdarank_gradients`] keeps between rounds.
    pub(super) fn initial_order(&self) -> Vec<u32> {
        self.offsets
            .windows(2)
            .flat_map(|w| 0..(w[1] - w[0]) as u32)
            .collect()
    }

    /// Mean NDCG@k of `scores` over the groups with a positive label (`None`
    /// if there is none), averaged in fixed batches so the value does not
    /// depend on the thread count.
    pub(super) fn mean_ndcg(&self, scores: &[f64]) -> Option<f64> {
        let per_batch: Vec<(f64, usize)> = self
            .batches
            .par_iter()
            .map(|b| {
                let mut order = Vec::new();
                let (mut sum, mut count) = (0.0, 0);
                for g in b.clone() {
                    if self.inv_idcg[g] == 0.0 {
                        continue;
                    }
                    let rows = self.offsets[g]..self.offsets[g + 1];
                    let dcg = dcg_at(
                        self.k,
                        &self.gains[rows.clone()],
                        &scores[rows],
                        &self.disc,
                        &mut order,
                    );
                    sum += dcg * self.inv_idcg[g];
                    count += 1;
                }
                (sum, count)
            })
            .collect();
        let (sum, count) = per_batch
            .iter()
            .fold((0.0, 0), |(s, c), &(bs, bc)| (s + bs, c + bc));
        (count > 0).then(|| sum / count as f64)
    }
}

/// Reusable per-task buffers of the LambdaRank pass; everything is indexed
/// by rank so the inner pair loop reads memory sequentially.
#[derive(Default)]
struct RankScratch {
    order: Vec<(u64, u32)>,
    label: Vec<f32>,
    gain: Vec<f64>,
    score: Vec<f64>,
    /// `e^(σ (s − s_max))`, so a pair's `ρ = e_low / (e_low + e_high)`.
    expo: Vec<f64>,
    lambda: Vec<f64>,
    hess: Vec<f64>,
    /// Row j's side of its pair with the current i.
    pair_lambda: Vec<f64>,
    pair_hess: Vec<f64>,
}

/// The current top-k item of the pair loop.
struct Item {
    label: f32,
    gain: f64,
    score: f64,
    expo: f64,
    disc: f64,
}

/// The items ranked below it, by rank. Gains are already divided by IDCG.
struct Others<'a> {
    label: &'a [f32],
    gain: &'a [f64],
    score: &'a [f64],
    expo: &'a [f64],
    disc: &'a [f64],
}

/// Every pair of `me` with the rows in `others`: writes the other row's λ
/// (signed: positive pushes it down) and hessian. Branch-free, so the loop
/// vectorises; a pair with equal labels has equal gains and so comes out
/// as exactly 0, with no test needed.
#[inline]
fn pairs_of<const NORM: bool>(
    me: &Item,
    o: &Others<'_>,
    sigma: f64,
    out_lambda: &mut [f64],
    out_hess: &mut [f64],
) {
    let n = out_lambda.len();
    let (label, gain, score, expo, disc) = (
        &o.label[..n],
        &o.gain[..n],
        &o.score[..n],
        &o.expo[..n],
        &o.disc[..n],
    );
    let out_hess = &mut out_hess[..n];
    for j in 0..n {
        // `sign` is +1 when `me` is the more relevant of the two.
        let me_high = me.label > label[j];
        let sign = if me_high { 1.0 } else { -1.0 };
        let (e_high, e_low) = if me_high {
            (me.expo, expo[j])
        } else {
            (expo[j], me.expo)
        };
        let delta_score = sign * (me.score - score[j]);
        // Gains grow with labels and discounts fall with rank (j is below).
        let mut delta_ndcg = (me.gain - gain[j]).abs() * (me.disc - disc[j]);
        if NORM {
            delta_ndcg /= 0.01 + delta_score.abs();
        }
        let rho = e_low / (e_low + e_high);
        let lambda = sigma * rho * delta_ndcg;
        out_lambda[j] = sign * lambda;
        out_hess[j] = sigma * (1.0 - rho) * lambda;
    }
}

/// A sum in four interleaved lanes: a fixed order, but not one long chain.
fn sum4(x: &[f64]) -> f64 {
    let mut lanes = [0.0; 4];
    let mut chunks = x.chunks_exact(4);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    let tail: f64 = chunks.remainder().iter().sum();
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

/// LambdaRank gradients of every row into `out`. `order` holds, per group,
/// the group's rows (0-based within it) in the order of the previous call —
/// start from [`RankTable::initial_order`] — and is updated to this call's
/// order by score.
pub(super) fn lambdarank_gradients(
    cfg: &LambdaRank,
    table: &RankTable,
    order: &mut [u32],
    labels: &[f32],
    scores: &[f64],
    out: &mut [GradPair],
) {
    let offsets = &table.offsets;
    // Cut `out` and `order` into one disjoint slice per batch.
    type Part<'a> = (Range<usize>, &'a mut [GradPair], &'a mut [u32]);
    let mut parts: Vec<Part<'_>> = Vec::with_capacity(table.batches.len());
    let (mut rest, mut rest_order) = (out, order);
    for b in &table.batches {
        let n = offsets[b.end] - offsets[b.start];
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(n);
        let (mine_order, tail_order) = std::mem::take(&mut rest_order).split_at_mut(n);
        parts.push((b.clone(), mine, mine_order));
        rest = tail;
        rest_order = tail_order;
    }
    parts
        .into_par_iter()
        .with_max_len(1)
        .for_each(|(groups, out, order)| {
            let mut scratch = RankScratch::default();
            let base = offsets[groups.start];
            for g in groups {
                let rows = offsets[g]..offsets[g + 1];
                let local = rows.start - base..rows.end - base;
                let out = &mut out[local.clone()];
                if !table.has_pairs[g] || table.inv_idcg[g] == 0.0 {
                    out.fill(GradPair::default());
                    continue;
                }
                lambdarank_group(
                    cfg,
                    &labels[rows.clone()],
                    &table.gains[rows.clone()],
                    &scores[rows],
                    table.inv_idcg[g],
                    &table.disc,
                    &mut order[local],
                    &mut scratch,
                    out,
                );
            }
        });
}

/// The LambdaRank gradients of one group that has pairs (see the module doc).
#[allow(clippy::too_many_arguments)]
fn lambdarank_group(
    cfg: &LambdaRank,
    labels: &[f32],
    gains: &[f64],
    scores: &[f64],
    inv_idcg: f64,
    disc: &[f64],
    prev_order: &mut [u32],
    s: &mut RankScratch,
    out: &mut [GradPair],
) {
    let n = labels.len();
    // Sort starting from last round's order: one tree moves scores only a
    // little, so the input is nearly sorted and insertion sort is close to
    // linear. Keys with row tie-breaks are unique, so the result is exactly
    // that of sorting from scratch.
    s.order.clear();
    s.order.extend(
        prev_order
            .iter()
            .map(|&i| (descending_key(scores[i as usize]), i)),
    );
    sort_nearly_sorted(&mut s.order);
    for (p, &(_, i)) in prev_order.iter_mut().zip(&s.order) {
        *p = i;
    }
    let sigma = cfg.sigma;
    let top = scores[s.order[0].1 as usize];
    s.label.clear();
    s.gain.clear();
    s.score.clear();
    s.expo.clear();
    for &(_, r) in &s.order {
        let r = r as usize;
        s.label.push(labels[r]);
        // Gains pre-divided by IDCG, so ΔNDCG needs no further scaling.
        s.gain.push(gains[r] * inv_idcg);
        s.score.push(scores[r]);
        // One exp per row instead of one per pair: with e_x = e^(σ (s_x − s_top)),
        // ρ = 1 / (1 + e^(σ (s_h − s_l))) = e_l / (e_l + e_h). Shifting by the
        // top score keeps every e_x ≤ 1 so nothing overflows, and the floor
        // keeps it > 0 so e_l + e_h never vanishes (it only matters for rows
        // 700/σ below the top, where ρ is 0 or 1 to any precision anyway).
        s.expo.push((sigma * (scores[r] - top)).max(-700.0).exp());
    }
    s.lambda.clear();
    s.lambda.resize(n, 0.0);
    s.hess.clear();
    s.hess.resize(n, 0.0);
    let norm = cfg.norm && s.score[0] != s.score[n - 1];
    let mut sum_lambdas = 0.0;
    s.pair_lambda.clear();
    s.pair_lambda.resize(n, 0.0);
    s.pair_hess.clear();
    s.pair_hess.resize(n, 0.0);
    for i in 0..(n - 1).min(cfg.k) {
        let me = Item {
            label: s.label[i],
            gain: s.gain[i],
            score: s.score[i],
            expo: s.expo[i],
            disc: disc[i],
        };
        let rest = i + 1..n;
        let others = Others {
            label: &s.label[rest.clone()],
            gain: &s.gain[rest.clone()],
            score: &s.score[rest.clone()],
            expo: &s.expo[rest.clone()],
            disc: &disc[rest.clone()],
        };
        let (pl, ph) = (
            &mut s.pair_lambda[rest.clone()],
            &mut s.pair_hess[rest.clone()],
        );
        if norm {
            pairs_of::<true>(&me, &others, sigma, pl, ph);
        } else {
            pairs_of::<false>(&me, &others, sigma, pl, ph);
        }
        // Row j takes its side of each pair; row i the opposite of the sum.
        for (l, &p) in s.lambda[rest.clone()].iter_mut().zip(pl.iter()) {
            *l += p;
        }
        for (h, &p) in s.hess[rest.clone()].iter_mut().zip(ph.iter()) {
            *h += p;
        }
        s.lambda[i] -= sum4(pl);
        s.hess[i] += sum4(ph);
        if cfg.norm {
            sum_lambdas += 2.0 * pl.iter().map(|p| p.abs()).sum::<f64>();
        }
    }
    let factor = if cfg.norm && sum_lambdas > 0.0 {
        (1.0 + sum_lambdas).log2() / sum_lambdas
    } else {
        1.0
    };
    for (rank, &(_, r)) in s.order.iter().enumerate() {
        out[r as usize] = GradPair {
            g: (s.lambda[rank] * factor) as f32,
            h: (s.hess[rank] * factor) as f32,
        };
    }
}

/// Sorts `v`, fast when it is nearly sorted already: insertion sort, which
/// costs one step per element plus one per inversion, abandoned for a full
/// sort once the inversions pass a few per element.
fn sort_nearly_sorted(v: &mut [(u64, u32)]) {
    let budget = 8 * v.len();
    let mut moves = 0;
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && v[j - 1] > x {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
        moves += i - j;
        if moves > budget {
            v.sort_unstable();
            return;
        }
    }
}

/// A `u64` that sorts ascending as the score sorts descending; NaN ranks
/// last and −0 equals +0.
#[inline]
fn descending_key(x: f64) -> u64 {
    let x = if x.is_nan() {
        f64::NEG_INFINITY
    } else {
        x + 0.0
    };
    let bits = x.to_bits();
    // Flip all bits of negatives and only the sign of positives: the result
    // orders like the float; then invert for descending.
    let ascending = if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    };
    !ascending
}

/// Rows of a group by descending score, ties in row order (the order
/// LightGBM's stable sort gives, so the first round, where all scores tie,
/// is deterministic and the same as LightGBM's). Sorting `(key, row)` pairs
/// directly is several times faster than sorting row indices through a
/// comparator that looks the scores up.
fn sort_by_score<S: Copy + Into<f64>>(scores: &[S], order: &mut Vec<(u64, u32)>) {
    order.clear();
    order.extend(
        scores
            .iter()
            .enumerate()
            .map(|(i, &s)| (descending_key(s.into()), i as u32)),
    );
    order.sort_unstable();
}

/// DCG@k of the best possible order of `gains`.
fn ideal_dcg(gains: &[f64], k: usize, disc: &[f64], buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend_from_slice(gains);
    buf.sort_unstable_by(|a, b| b.total_cmp(a));
    buf.iter().take(k).zip(disc).map(|(g, d)| g * d).sum()
}

/// DCG@k of the rows ranked by `scores`.
fn dcg_at<S: Copy + Into<f64>>(
    k: usize,
    gains: &[f64],
    scores: &[S],
    disc: &[f64],
    order: &mut Vec<(u64, u32)>,
) -> f64 {
    sort_by_score(scores, order);
    order
        .iter()
        .take(k)
        .zip(disc)
        .map(|(&(_, r), d)| gains[r as usize] * d)
        .sum()
}

/// Binary log-loss gradients.
pub(super) fn binary_gradients(labels: &[f32], scores: &[f64], out: &mut [GradPair]) {
    const CHUNK: usize = 1 << 14;
    out.par_chunks_mut(CHUNK)
        .zip(labels.par_chunks(CHUNK).zip(scores.par_chunks(CHUNK)))
        .for_each(|(out, (labels, scores))| {
            for ((o, &y), &s) in out.iter_mut().zip(labels).zip(scores) {
                let p = sigmoid(s);
                *o = GradPair {
                    g: (p - y as f64) as f32,
                    h: (p * (1.0 - p)) as f32,
                };
            }
        });
}

/// `1 / (1 + e^−x)`.
#[inline]
pub(super) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Mean log-loss of scores (log-odds) against labels in `[0, 1]`, summed in
/// fixed chunks so the value does not depend on the thread count.
pub(super) fn log_loss<S: Copy + Into<f64> + Sync>(labels: &[f32], scores: &[S]) -> f64 {
    const CHUNK: usize = 1 << 14;
    const EPS: f64 = 1e-15;
    let partial: Vec<f64> = labels
        .par_chunks(CHUNK)
        .zip(scores.par_chunks(CHUNK))
        .map(|(labels, scores)| {
            labels
                .iter()
                .zip(scores)
                .map(|(&y, &s)| {
                    let p = sigmoid(s.into()).clamp(EPS, 1.0 - EPS);
                    let y = y as f64;
                    -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
                })
                .sum::<f64>()
        })
        .collect();
    partial.iter().sum::<f64>() / labels.len().max(1) as f64
}

/// NDCG@k of one group: DCG@k of the rows ranked by `scores` (ties in row
/// order, NaN last) over the DCG@k of the ideal order, gain `2^label − 1`.
/// `None` when no label is positive, as NDCG is then undefined.
///
/// # Panics
///
/// If `labels` and `scores` differ in length.
pub fn ndcg_at<S: Copy + Into<f64>>(k: usize, labels: &[f32], scores: &[S]) -> Option<f64> {
    assert_eq!(labels.len(), scores.len(), "one score per label");
    let gains: Vec<f64> = labels.iter().map(|&l| gain(l)).collect();
    let disc = discounts(k.min(labels.len()));
    let idcg = ideal_dcg(&gains, k, &disc, &mut Vec::new());
    (idcg > 0.0).then(|| dcg_at(k, &gains, scores, &disc, &mut Vec::new()) / idcg)
}

/// Mean NDCG@k over the groups of `group_offsets` that have a positive label;
/// `None` if no group has one. Groups are scored in parallel and averaged in
/// a fixed order, so the value does not depend on the thread count.
///
/// # Panics
///
/// If `labels` and `scores` differ in length or `group_offsets` does not
/// cover them.
pub fn mean_ndcg_at<S: Copy + Into<f64> + Sync>(
    k: usize,
    labels: &[f32],
    scores: &[S],
    group_offsets: &[usize],
) -> Option<f64> {
    assert_eq!(labels.len(), scores.len(), "one score per label");
    assert_eq!(
        group_offsets.last().copied(),
        Some(labels.len()),
        "group_offsets must end at the number of rows"
    );
    let scores: Vec<f64> = scores.iter().map(|&s| s.into()).collect();
    RankTable::new(labels, group_offsets, k).mean_ndcg(&scores)
}
