//! Counting the co-visitation matrices in bounded memory.
//!
//! A row is one `(matrix, item a)`; its raw entries are the `(b, w)` of every
//! shopper's deduplicated pairs starting at `a`, 8 bytes each. Their number
//! grows with the shoppers and with the square of their activity (up to about
//! `max_events_per_user`² per shopper), so rather than trusting it to stay
//! small:
//!
//! 1. a first parallel pass over the shoppers generates their pairs and only
//!    counts each row's entries (an atomic counter per row);
//! 2. the rows are cut into consecutive ranges of at most `pass_entries`
//!    entries ([`PASS_ENTRIES`], 512 MiB), and each range is one more pass: the
//!    pairs are generated again and only the range's entries are scattered
//!    into place (an atomic cursor per row, each entry packed as `b << 32 |
//!    w.to_bits()` in one `u64`); then each row is sorted, equal `b`s summed,
//!    and the row pruned to its `neighbours` best.
//!
//! A row is always whole inside one pass, so the pruning is exact: never "top N
//! of a chunk". Generating a shopper's pairs is cheap (at most
//! `max_events_per_user`² steps, no allocation once a thread's buffers have
//! grown), so regenerating them per pass costs far less than the sort. Sorting
//! a row's packed entries orders them by `b`, then by weight, so each sum is
//! taken in the same order whatever order the threads scattered them in: the
//! matrices are identical from run to run.
//!
//! Memory beyond the training events: 16 bytes per row for counts and cursors
//! (48 per item), one pass's entries (≤ 512 MiB, sorted in place) and the
//! pruned matrices (≤ 3 · `neighbours` · 8 bytes per item).

use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use rayon::prelude::*;

use super::{CovisitConfig, Matrix, Neighbours};
use crate::data::time::DAY_MS;
use crate::data::{EventKind, TrainSet};
use crate::models::topk::{sort_best_first, top_k};
use crate::models::Scored;

/// Most raw entries one pass holds: 2^26, 512 MiB of packed `u64`s.
pub const PASS_ENTRIES: usize = 1 << 26;

/// How much later pairs weigh: `tw(t_max) = 1 + TIME_GAIN`.
const TIME_GAIN: f64 = 3.0;

const HOUR_MS: f64 = 3_600_000.0;

/// What building found, for the training facts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildStats {
    /// Raw entries (shopper pairs, each direction once) per matrix, before summing.
    pub pair_entries: [u64; 3],
    /// Entries kept per matrix after pruning.
    pub kept_entries: [u64; 3],
    /// Passes over the shoppers after the counting pass.
    pub passes: usize,
    /// Most raw entries held by one pass.
    pub largest_pass: u64,
}

/// A run of consecutive events of one shopper on one item.
#[derive(Debug, Clone, Copy)]
struct Step {
    item: u32,
    first: i64,
    last: i64,
    /// The run's latest view, if it has one.
    last_view: Option<i64>,
    /// The run's earliest add-to-cart, if it has one.
    first_cart: Option<i64>,
}

/// One shopper's vote for `b` in row `(matrix, a)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pair {
    matrix: Matrix,
    a: u32,
    b: u32,
    w: f32,
}

impl Pair {
    fn row(&self, n_items: usize) -> usize {
        self.matrix as usize * n_items + self.a as usize
    }
}

/// The settings in the units pairing needs.
struct Plan {
    window_ms: i64,
    cart_window_ms: i64,
    max_steps: usize,
    t_min: i64,
    span_ms: f64,
}

impl Plan {
    fn new(train: &TrainSet, config: &CovisitConfig) -> Plan {
        let t_min = train.timestamp_ms.par_iter().min().copied().unwrap_or(0);
        let t_max = train.timestamp_ms.par_iter().max().copied().unwrap_or(0);
        Plan {
            window_ms: (f64::from(config.window_hours) * HOUR_MS).round() as i64,
            cart_window_ms: (f64::from(config.cart_window_days) * DAY_MS as f64).round() as i64,
            max_steps: config.max_events_per_user,
            t_min,
            span_ms: (t_max - t_min) as f64,
        }
    }

    /// `tw(t) = 1 + 3 · (t − t_min) / (t_max − t_min)`; 1 when the log is one instant.
    fn time_weight(&self, t: i64) -> f32 {
        if self.span_ms <= 0.0 {
            return 1.0;
        }
        (1.0 + TIME_GAIN * ((t - self.t_min) as f64 / self.span_ms)) as f32
    }
}

/// A thread's buffers, reused from shopper to shopper.
#[derive(Default)]
struct Scratch {
    steps: Vec<Step>,
    carts: Vec<Step>,
    pairs: Vec<Pair>,
}

impl Scratch {
    /// Shopper `u`'s pairs: each `(matrix, a, b)` once, with its largest weight.
    fn pairs_of(&mut self, train: &TrainSet, u: u32, plan: &Plan) -> &[Pair] {
        self.pairs.clear();
        let events = train.user_events(u);
        if events.len() < 2 {
            return &self.pairs;
        }
        collapse(
            train,
            events.clone(),
            |_| true,
            plan.max_steps,
            &mut self.steps,
        );
        collapse(
            train,
            events,
            |k| k != EventKind::View,
            plan.max_steps,
            &mut self.carts,
        );
        let pairs = &mut self.pairs;
        let steps = &self.steps;
        for (i, s) in steps.iter().enumerate() {
            for t in &steps[i + 1..] {
                // Steps are in time order: every later one is further away.
                if t.first - s.last > plan.window_ms {
                    break;
                }
                if s.item == t.item {
                    continue;
                }
                let (a, b) = (s.item.min(t.item), s.item.max(t.item));
                let w = plan.time_weight(t.first);
                pairs.push(Pair {
                    matrix: Matrix::Any,
                    a,
                    b,
                    w,
                });
                if let (Some(viewed), Some(carted)) = (s.last_view, t.first_cart) {
                    if carted - viewed <= plan.window_ms {
                        pairs.push(Pair {
                            matrix: Matrix::ViewCart,
                            a: s.item,
                            b: t.item,
                            w: 1.0,
                        });
                    }
                }
            }
        }
        let carts = &self.carts;
        for (i, s) in carts.iter().enumerate() {
            for t in &carts[i + 1..] {
                if t.first - s.last > plan.cart_window_ms {
                    break;
                }
                if s.item != t.item {
                    pairs.push(Pair {
                        matrix: Matrix::BoughtTogether,
                        a: s.item.min(t.item),
                        b: s.item.max(t.item),
                        w: 1.0,
                    });
                }
            }
        }
        // Once per shopper: the largest weight of each (matrix, a, b) sorts first.
        pairs.sort_unstable_by(|x, y| {
            (x.matrix as u8, x.a, x.b)
                .cmp(&(y.matrix as u8, y.a, y.b))
                .then(y.w.total_cmp(&x.w))
        });
        pairs.dedup_by_key(|p| (p.matrix, p.a, p.b));
        // The symmetric matrices were counted as (min, max); add the mirror.
        let once = pairs.len();
        for i in 0..once {
            let p = pairs[i];
            if p.matrix != Matrix::ViewCart {
                pairs.push(Pair {
                    a: p.b,
                    b: p.a,
                    ..p
                });
            }
        }
        &self.pairs
    }
}

/// Shopper events `range` whose kinds `keep` accepts, as steps; only the
/// latest `max_steps` stay.
fn collapse(
    train: &TrainSet,
    range: Range<usize>,
    keep: impl Fn(EventKind) -> bool,
    max_steps: usize,
    out: &mut Vec<Step>,
) {
    out.clear();
    for e in range {
        let kind = train.kind[e];
        if !keep(kind) {
            continue;
        }
        let (item, t) = (train.item[e], train.timestamp_ms[e]);
        match out.last_mut() {
            Some(step) if step.item == item => step.last = t,
            _ => out.push(Step {
                item,
                first: t,
                last: t,
                last_view: None,
                first_cart: None,
            }),
        }
        let step = out.last_mut().expect("a step was just pushed or extended");
        match kind {
            EventKind::View => step.last_view = Some(t),
            EventKind::AddToCart => {
                step.first_cart.get_or_insert(t);
            }
            EventKind::Transaction => {}
        }
    }
    if out.len() > max_steps {
        out.drain(..out.len() - max_steps);
    }
}

/// The three pruned matrices of `train`, holding at most `pass_entries` raw
/// entries at a time (more only when a single row has more).
pub(super) fn build(
    train: &TrainSet,
    config: &CovisitConfig,
    pass_entries: usize,
) -> ([Neighbours; 3], BuildStats) {
    let plan = Plan::new(train, config);
    let n_items = train.items.len();
    let users = train.users.len() as u32;
    let rows = Matrix::ALL.len() * n_items;

    let counts: Vec<AtomicU64> = (0..rows).map(|_| AtomicU64::new(0)).collect();
    (0..users)
        .into_par_iter()
        .for_each_init(Scratch::default, |scratch, u| {
            for p in scratch.pairs_of(train, u, &plan) {
                counts[p.row(n_items)].fetch_add(1, Relaxed);
            }
        });
    let counts: Vec<u64> = counts.into_iter().map(AtomicU64::into_inner).collect();

    let mut stats = BuildStats::default();
    for (m, per_matrix) in counts.chunks(n_items.max(1)).enumerate() {
        stats.pair_entries[m] = per_matrix.iter().sum();
    }
    let mut matrices = [
        Neighbours::empty(),
        Neighbours::empty(),
        Neighbours::empty(),
    ];
    for range in passes(&counts, pass_entries) {
        let counts = &counts[range.clone()];
        let total: u64 = counts.iter().sum();
        stats.passes += 1;
        stats.largest_pass = stats.largest_pass.max(total);
        let entries = if total == 0 {
            Vec::new()
        } else {
            scatter(train, &plan, users, n_items, range.clone(), counts, total)
        };
        let mut row = range.start;
        for (lengths, kept) in prune(entries, counts, config.neighbours) {
            let mut at = 0;
            for len in lengths {
                matrices[row / n_items].push(&kept[at..at + len as usize]);
                at += len as usize;
                row += 1;
            }
        }
    }
    for (m, matrix) in matrices.iter().enumerate() {
        stats.kept_entries[m] = matrix.items.len() as u64;
    }
    (matrices, stats)
}

/// Consecutive row ranges of at most `budget` entries each (a row with more
/// is a range of its own); one empty range when there are no rows.
fn passes(counts: &[u64], budget: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut held = 0u64;
    for (row, &c) in counts.iter().enumerate() {
        if row > start && held + c > budget as u64 {
            out.push(start..row);
            start = row;
            held = 0;
        }
        held += c;
    }
    out.push(start..counts.len());
    out
}

/// Every shopper's entries of `rows`, packed, grouped by row in row order
/// (`counts` is each row's entry count).
fn scatter(
    train: &TrainSet,
    plan: &Plan,
    users: u32,
    n_items: usize,
    rows: Range<usize>,
    counts: &[u64],
    total: u64,
) -> Vec<u64> {
    let mut start = 0usize;
    let cursors: Vec<AtomicUsize> = counts
        .iter()
        .map(|&c| {
            let at = AtomicUsize::new(start);
            start += c as usize;
            at
        })
        .collect();
    let slots: Vec<AtomicU64> = (0..total).map(|_| AtomicU64::new(0)).collect();
    (0..users)
        .into_par_iter()
        .for_each_init(Scratch::default, |scratch, u| {
            for p in scratch.pairs_of(train, u, plan) {
                let row = p.row(n_items);
                if rows.contains(&row) {
                    let at = cursors[row - rows.start].fetch_add(1, Relaxed);
                    slots[at].store(u64::from(p.b) << 32 | u64::from(p.w.to_bits()), Relaxed);
                }
            }
        });
    slots.into_iter().map(AtomicU64::into_inner).collect()
}

/// Rows pruned per parallel task: enough to amortise the task, few enough
/// that a pass's rows spread over the threads.
const BLOCK_ROWS: usize = 4096;

/// Each row of `entries` (`counts[r]` packed entries each) summed by neighbour
/// and pruned to its `keep` best, ties to the lower item; by blocks of
/// [`BLOCK_ROWS`] rows, each as (every row's length, the rows' entries), so a
/// pass over millions of mostly empty rows holds no vector per row.
fn prune(mut entries: Vec<u64>, counts: &[u64], keep: usize) -> Vec<(Vec<u32>, Vec<Scored>)> {
    let mut blocks: Vec<(&[u64], &mut [u64])> = Vec::new();
    let mut rest = entries.as_mut_slice();
    for block in counts.chunks(BLOCK_ROWS) {
        let (head, tail) = rest.split_at_mut(block.iter().sum::<u64>() as usize);
        blocks.push((block, head));
        rest = tail;
    }
    blocks
        .into_par_iter()
        .map(|(counts, entries)| {
            let mut lengths = Vec::with_capacity(counts.len());
            let mut kept = Vec::new();
            let mut summed = Vec::new();
            let mut rest = entries;
            for &c in counts {
                let (row, tail) = rest.split_at_mut(c as usize);
                rest = tail;
                sum_row(row, &mut summed);
                let before = kept.len();
                if summed.len() > keep {
                    kept.extend(top_k(summed.drain(..), keep));
                } else {
                    sort_best_first(&mut summed);
                    kept.append(&mut summed);
                }
                lengths.push((kept.len() - before) as u32);
            }
            (lengths, kept)
        })
        .collect()
}

/// The packed entries of one row summed by neighbour into `out` (cleared first).
fn sum_row(row: &mut [u64], out: &mut Vec<Scored>) {
    out.clear();
    // Weights are positive, so their bits sort as the numbers do: each sum is
    // taken in the same order however the threads scattered the entries.
    row.sort_unstable();
    let mut i = 0;
    while i < row.len() {
        let b = (row[i] >> 32) as u32;
        let mut sum = 0f64;
        while i < row.len() && (row[i] >> 32) as u32 == b {
            sum += f64::from(f32::from_bits(row[i] as u32));
            i += 1;
        }
        out.push((b, sum as f32));
    }
}
