//! Synthetic shopper events shaped like the RetailRocket data set.
//!
//! [`generate`] writes an event log (`events.csv` or `events.parquet`, columns
//! `timestamp,visitorid,event,itemid,transactionid`) and a catalogue
//! (`item_features.csv`, columns `item_id,category_id,parent_id,available`, or
//! the raw RetailRocket properties files and category tree: [`raw`]) for a
//! [`GenerateSpec`] of visitors, items and events, and returns a
//! [`GenerateSummary`]. The files load with the same code as the real data, so
//! every command, test and benchmark can run end to end, at any size, without the
//! real file.
//!
//! # Why a generative model rather than random rows
//!
//! Uniform random events would make every recommender look equally useless. The
//! properties that decide which recommender wins on RetailRocket are modelled
//! explicitly, so that comparisons on synthetic data point the same way as on the
//! real thing:
//!
//! * **Heavy tails.** Popularity is what "most popular" exploits and what ALS must
//!   beat; activity decides how many visitors are cold.
//! * **Repeat views and a funnel.** A "recently viewed" recommender works on
//!   RetailRocket because shoppers put into the cart what they looked at more
//!   than once; here too.
//! * **Drift.** Popularity measured last month predicts next week better than
//!   popularity over all time, which is what makes a time-based split matter.
//!
//! # The model
//!
//! *Catalogue.* `items / 200` leaf categories (at least one) under
//! `categories / 10` parents, with log-normal category sizes (a few big ones,
//! many small ones). Each item gets a Zipf–Mandelbrot popularity
//! `1 / (rank + q)`, exponent 1, with an offset `q = max(3, items / 2000)` so the
//! very top items do not take a large share on their own (at RetailRocket size
//! the top item gets about 0.1% of views, the top 1% of items about 22%). Ranks
//! are a random permutation, independent of category and id.
//!
//! *Drift.* A quarter of the items are evergreen: equally popular for the whole
//! 139 days (2015-05-03 to the end of 2015-09-18). The rest trend: each has a
//! window of 3 to 13 weeks centred anywhere in (or just outside) the period,
//! rising linearly to a peak four times its base popularity and falling back to
//! nothing. Popularity is tabulated every 14 days ("knots": alias tables over
//! the items then in demand) and an event at time `t` draws from the knot
//! before or after `t` with probability by distance, which is exactly the
//! linear interpolation of the two distributions. That is one memory access
//! per draw; rejection sampling in continuous time needed about five, and was
//! about three times slower at 10× RetailRocket size.
//!
//! *Visitors.* Every visitor gets one event; the remaining `events - users` are
//! shared out by a discrete power law (`P(count >= k) ≈ k^-α`, α chosen so the
//! mean comes out right, about 1.75 at RetailRocket's two events per visitor),
//! by cutting the cumulative weight at integer boundaries (see `Activity`).
//! So the file has **exactly** `spec.events` rows and every visitor id has at
//! least one event: at RetailRocket size 70% of visitors have one event, 15%
//! two, and the busiest a few thousand (capped near 0.3% of all events, like
//! RetailRocket's busiest bot). When `events < users` only `events` visitors,
//! spread evenly over the id range, get one event each.
//!
//! *Sessions and time.* Each next event starts a new session with probability
//! 0.2; inside a session events are about a minute apart (log-normal), sessions
//! are about two days apart (log-normal). The visitor's whole history is placed
//! at a uniform random start inside the period (gaps shrink if it would not fit).
//!
//! *Which item.* With probability 0.3 a view goes back to an item the visitor
//! already viewed (among the last 32, weighted by how often). Otherwise it is a
//! new draw, at the event's time: from the category browsed in this session, from
//! one of the visitor's one or two preferred categories (drawn by category
//! popularity when the visitor arrives), or from the whole catalogue. Inside a
//! category popularity counts as its square root, so a browsing shopper looks
//! beyond the category's best seller.
//!
//! *Funnel.* The first event of a visitor is a view. Every later event may be an
//! add-to-cart, mostly of a recently viewed item chosen with weight `views²`
//! (and a bonus for the item just viewed), and three times likelier when that
//! item was viewed more than once; about one cart in eight goes to an item not
//! viewed before (added from a listing). A cart converts to a purchase about
//! one time in three, usually at the very next event and in the same session;
//! purchases in one session share a `transactionid`. Rates are steered per
//! chunk of visitors towards RetailRocket's view : addtocart : transaction =
//! 100 : 2.6 : 0.8, so the ratios hold whatever the activity distribution, as
//! long as enough visitors have more than one event (with `events == users`
//! there is nothing but views).
//!
//! *Ids.* Visitor ids are `0..users` (dense, as in RetailRocket); item ids are
//! distinct random numbers below `2 × items` (RetailRocket: 235k items below
//! 470k); category ids are distinct numbers slightly sparser than dense (about
//! 1,300 below 1,320 at RetailRocket size). `available` is mostly 1 for items
//! still in demand at the end of the period and mostly 0 for trends that ended.
//!
//! # Determinism and speed
//!
//! Visitors are simulated in fixed chunks of 8,192, each with its own
//! [`Rng::for_stream`], in parallel with rayon; the output depends on the spec
//! and seed only, never on the number of threads. Chunks are formatted into CSV
//! bytes in parallel and written in order, a round of chunks at a time, so CSV
//! output needs memory for the popularity tables and one round only (about
//! 0.5 GB at 10× RetailRocket size); Parquet output keeps the whole table
//! (about 2 GB at that size). Events are grouped by visitor, in time order
//! within a visitor, not sorted globally (neither is the real file).
//!
//! # Example
//!
//! ```no_run
//! use recsys::data::generate::{generate, GenerateSpec, ItemLayout, OutputFormat};
//!
//! let spec = GenerateSpec { users: 1_400_000, items: 235_000, events: 2_760_000, seed: 42 };
//! let out = std::path::Path::new("data/synthetic");
//! let summary = generate(&spec, out, OutputFormat::Csv, ItemLayout::Flat)?;
//! println!("{} events by {} visitors", summary.events, summary.visitors);
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use polars::prelude::{Column, DataFrame, ParquetWriter};
use rayon::prelude::*;

use crate::data::events::EventKind;
use crate::fsio::write_file_atomically;
use crate::progress;

pub mod raw;
use crate::rng::Rng;

/// How much data to generate, and from which seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateSpec {
    /// Number of visitor ids (RetailRocket: 1,400,000). Each gets at least one
    /// event when `events >= users`.
    pub users: usize,
    /// Number of items in the catalogue (RetailRocket: 235,000).
    pub items: usize,
    /// Exact number of event rows (RetailRocket: 2,760,000).
    pub events: usize,
    /// Seed: the same spec and seed always give byte-identical files.
    pub seed: u64,
}

/// The file format of the generated event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// `events.csv`, comma-separated with a header line.
    Csv,
    /// `events.parquet`.
    Parquet,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateSummary {
    /// Event rows written (always `spec.events`).
    pub events: usize,
    /// Distinct visitors with at least one event (`min(users, events)`).
    pub visitors: usize,
    /// Distinct items with at least one event (at most `spec.items`; the item
    /// features file lists all `spec.items`).
    pub items: usize,
    /// Events of each kind, in [`EventKind::ALL`] order: view, addtocart,
    /// transaction.
    pub kind_counts: [usize; 3],
    /// Where the event log was written.
    pub events_path: PathBuf,
    /// Where the item descriptions were written: `item_features.csv`, or
    /// under [`ItemLayout::RetailRocketRaw`] the properties files and then the
    /// category tree.
    pub item_files: Vec<PathBuf>,
}

/// How the catalogue is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ItemLayout {
    /// `item_features.csv`: one row per item (`item_id,category_id,parent_id,available`).
    #[default]
    Flat,
    /// The files of the RetailRocket download: `item_properties_part1.csv`,
    /// `item_properties_part2.csv` (`timestamp,itemid,property,value`, values
    /// changing over time) and `category_tree.csv` ([`raw`]).
    RetailRocketRaw,
}

/// Generate a RetailRocket-like event log and item catalogue into `out_dir`
/// (created if missing), replacing `events.{csv,parquet}` and
/// `item_features.csv` atomically. See the module documentation for the model.
pub fn generate(
    spec: &GenerateSpec,
    out_dir: &Path,
    format: OutputFormat,
    layout: ItemLayout,
) -> Result<GenerateSummary> {
    validate(spec)?;
    let catalogue = Catalogue::build(spec.items, spec.seed);
    let activity = Activity::new(spec);

    let item_files = match layout {
        ItemLayout::Flat => {
            let path = out_dir.join("item_features.csv");
            write_file_atomically(&path, |w| catalogue.write_features(w))
                .with_context(|| format!("writing {}", path.display()))?;
            vec![path]
        }
        ItemLayout::RetailRocketRaw => raw::write(&catalogue, spec.seed, out_dir)?,
    };

    let bar = progress::bar(spec.events as u64, "generating");
    let (events_path, tally) = match format {
        OutputFormat::Csv => {
            let path = out_dir.join("events.csv");
            let mut tally = None;
            write_file_atomically(&path, |w| {
                w.write_all(b"timestamp,visitorid,event,itemid,transactionid\n")?;
                tally = Some(simulate(
                    spec,
                    &catalogue,
                    &activity,
                    &bar,
                    |chunks, txn_bases| {
                        let bufs: Vec<Vec<u8>> = chunks
                            .par_iter()
                            .zip(txn_bases)
                            .map(|(chunk, &base)| format_csv(chunk, base, &catalogue))
                            .collect();
                        for buf in &bufs {
                            w.write_all(buf)?;
                        }
                        Ok(())
                    },
                )?);
                Ok(())
            })
            .with_context(|| format!("writing {}", path.display()))?;
            (path, tally.expect("the fill closure ran to completion"))
        }
        OutputFormat::Parquet => {
            let path = out_dir.join("events.parquet");
            let mut frame: Option<DataFrame> = None;
            let tally = simulate(spec, &catalogue, &activity, &bar, |chunks, txn_bases| {
                let parts: Vec<DataFrame> = chunks
                    .par_iter()
                    .zip(txn_bases)
                    .map(|(chunk, &base)| chunk_frame(chunk, base, &catalogue))
                    .collect::<Result<_>>()?;
                let mut parts = parts.into_iter();
                let mut round = parts.next().expect("a round has chunks");
                for part in parts {
                    round.vstack_mut_owned(part)?;
                }
                // One Arrow chunk per round: rounds are at least a row group
                // long (for RetailRocket-like specs), so the writer can slice
                // them instead of copying the whole table into row groups.
                round.rechunk_mut_par();
                match frame.as_mut() {
                    Some(frame) => {
                        frame.vstack_mut_owned(round)?;
                    }
                    None => frame = Some(round),
                }
                Ok(())
            })?;
            let mut frame = frame.expect("at least one event, so at least one round");
            write_file_atomically(&path, |w| {
                ParquetWriter::new(&mut *w).finish(&mut frame)?;
                Ok(())
            })
            .with_context(|| format!("writing {}", path.display()))?;
            (path, tally)
        }
    };
    bar.finish_and_clear();

    debug_assert_eq!(tally.events, spec.events);
    Ok(GenerateSummary {
        events: tally.events,
        visitors: tally.visitors,
        items: tally.item_seen.iter().filter(|&&s| s).count(),
        kind_counts: tally.kind_counts,
        events_path,
        item_files,
    })
}

fn validate(spec: &GenerateSpec) -> Result<()> {
    for (name, value) in [
        ("users", spec.users),
        ("items", spec.items),
        ("events", spec.events),
    ] {
        if value == 0 {
            bail!("cannot generate data with 0 {name}; {name} must be at least 1");
        }
    }
    // Visitor ids and item indices are kept as u32 to halve memory; raw item ids
    // go up to twice the catalogue size.
    if spec.users > u32::MAX as usize {
        bail!("users must be at most {} (got {})", u32::MAX, spec.users);
    }
    if spec.items > MAX_ITEMS {
        bail!("items must be at most {MAX_ITEMS} (got {})", spec.items);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Constants of the model. Times are in milliseconds unless named otherwise.

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: f64 = 60_000.0;
/// 2015-05-03T00:00:00Z, RetailRocket's first day.
const START_MS: i64 = 1_430_611_200_000;
/// Through the end of 2015-09-18, RetailRocket's last day.
const SPAN_DAYS: i64 = 139;
const SPAN_MS: i64 = SPAN_DAYS * DAY_MS;

const MAX_ITEMS: usize = 1 << 30;
const ITEMS_PER_CATEGORY: usize = 200;
const CATEGORIES_PER_PARENT: usize = 10;
/// RetailRocket's item ids run up to about twice the number of items.
const ITEM_ID_SPREAD: usize = 2;
/// Log-normal spread of category sizes (and parent sizes).
const CATEGORY_SIZE_SIGMA: f64 = 1.2;
/// Popularity `1 / (rank + q)`; `q = max(ZIPF_MIN_OFFSET, items / ZIPF_OFFSET_ITEMS)`
/// keeps the very top items from taking a large share on their own.
const ZIPF_OFFSET_ITEMS: f64 = 2_000.0;
const ZIPF_MIN_OFFSET: f64 = 3.0;
const EVERGREEN_SHARE: f64 = 0.25;
/// How much more popular a trending item is at its peak than its base rank says.
const TREND_BOOST: f64 = 4.0;
const TREND_HALF_WIDTH_DAYS: (f64, f64) = (10.0, 45.0);
/// Trend peaks fall up to this many days outside the period, so some items are
/// already fading on day one and some are still rising at the end.
const TREND_CENTER_MARGIN_DAYS: f64 = 20.0;
/// Days between the knots at which popularity is tabulated.
const KNOT_DAYS: f64 = 14.0;

/// Visitors per parallel work unit (and per random stream).
const CHUNK_VISITORS: usize = 8_192;
/// Chunks simulated, formatted and written per round, to bound memory.
const BATCH_CHUNKS: usize = 32;
/// Range of the tail index of visitor activity (see [`Activity::new`]).
const ACTIVITY_ALPHA_RANGE: (f64, f64) = (1.1, 3.0);
/// Soft cap on one visitor's weight, as a share of all events (RetailRocket's
/// busiest visitor has 0.3%), but at least `ACTIVITY_MIN_CAP` events.
const ACTIVITY_CAP_SHARE: f64 = 0.003;
const ACTIVITY_MIN_CAP: f64 = 100.0;
/// Fixed-point scale of activity weights, so the split of events is exact
/// integer arithmetic.
const ACTIVITY_SCALE: f64 = 4_096.0;

const P_NEW_SESSION: f64 = 0.2;
const INTRA_SESSION_MEDIAN_MS: f64 = 60_000.0;
const INTRA_SESSION_SIGMA: f64 = 1.0;
const INTER_SESSION_MEDIAN_MS: f64 = 2.0 * DAY_MS as f64;
const INTER_SESSION_SIGMA: f64 = 1.2;
const P_REVISIT: f64 = 0.3;
const HISTORY_LEN: usize = 32;
const P_SECOND_CATEGORY: f64 = 0.35;
/// A new item comes from the session's category, else a preferred category,
/// else anywhere.
const P_SESSION_CATEGORY: f64 = 0.35;
const P_PREFERRED_CATEGORY: f64 = 0.5;

/// Shares of all events (100 : 2.6 : 0.8).
const CART_SHARE: f64 = 2.6 / 103.4;
const TXN_SHARE: f64 = 0.8 / 103.4;
/// Cart likelihood multiplier when the candidate was viewed more than once, and
/// otherwise.
const CART_BOOST_REPEAT: f64 = 2.0;
const CART_BOOST_SINGLE: f64 = 0.6;
/// Chance that the cart candidate is an item the visitor has not viewed (added
/// from a listing page), drawn like a new view; with the lower multiplier such
/// items end up as about one cart in eight.
const P_CART_UNSEEN: f64 = 0.25;
/// Weight bonus for carting the item just viewed.
const CART_LAST_VIEWED_BONUS: u64 = 3;
/// Chance per event that a pending purchase happens now.
const P_BUY_NOW: f64 = 0.8;
/// Chance that a purchase falling on a session's first event is moved to just
/// after the cart instead (same session).
const P_BUY_SAME_SESSION: f64 = 0.85;

/// Random stream families, combined with a chunk number.
const STREAM_CATALOGUE: u64 = 1 << 48;
const STREAM_ACTIVITY: u64 = 2 << 48;
const STREAM_BEHAVIOUR: u64 = 3 << 48;

const NO_TXN: u32 = u32::MAX;

// ---------------------------------------------------------------------------
// Sampling helpers.

/// One slot of a Walker/Vose alias table over items: take `item` with
/// probability `prob`, else `alias`.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    prob: f32,
    item: u32,
    alias: u32,
}

/// Fill `out` with an alias table drawing `items[j]` in proportion to
/// `weights[j]`.
fn build_alias(items: &[u32], weights: &[f64], out: &mut [Slot], scratch: &mut AliasScratch) {
    let n = weights.len();
    if n == 0 {
        return;
    }
    let total: f64 = weights.iter().sum();
    scratch.scaled.clear();
    scratch.small.clear();
    scratch.large.clear();
    for (j, &w) in weights.iter().enumerate() {
        let s = if total > 0.0 {
            w * n as f64 / total
        } else {
            1.0
        };
        scratch.scaled.push(s);
        if s < 1.0 {
            scratch.small.push(j);
        } else {
            scratch.large.push(j);
        }
    }
    while let (Some(&s), Some(&l)) = (scratch.small.last(), scratch.large.last()) {
        scratch.small.pop();
        out[s] = Slot {
            prob: scratch.scaled[s] as f32,
            item: items[s],
            alias: items[l],
        };
        scratch.scaled[l] -= 1.0 - scratch.scaled[s];
        if scratch.scaled[l] < 1.0 {
            scratch.large.pop();
            scratch.small.push(l);
        }
    }
    // Leftovers are 1 up to rounding.
    for &j in scratch.small.iter().chain(&scratch.large) {
        out[j] = Slot {
            prob: 1.0,
            item: items[j],
            alias: items[j],
        };
    }
}

#[derive(Default)]
struct AliasScratch {
    scaled: Vec<f64>,
    small: Vec<usize>,
    large: Vec<usize>,
}

/// Draw from the alias table `slots` with one random number and one memory
/// access: the high half of `r * len` picks the slot, the low half is the coin.
#[inline]
fn alias_draw(slots: &[Slot], rng: &mut Rng) -> u32 {
    let m = rng.next_u64() as u128 * slots.len() as u128;
    let slot = slots[(m >> 64) as usize];
    let coin = ((m as u64) >> 40) as f32 * (1.0 / (1u32 << 24) as f32);
    if coin < slot.prob {
        slot.item
    } else {
        slot.alias
    }
}

/// Index drawn in proportion to the gaps of the increasing `cumulative` weights.
fn cumulative_draw(cumulative: &[f64], rng: &mut Rng) -> usize {
    let total = *cumulative.last().expect("non-empty weights");
    let x = rng.next_f64() * total;
    cumulative
        .partition_point(|&c| c <= x)
        .min(cumulative.len() - 1)
}

fn cumulative(weights: &[f64]) -> Vec<f64> {
    weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect()
}

fn lognormal(rng: &mut Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * rng.normal()).exp()
}

fn shuffle<T>(rng: &mut Rng, values: &mut [T]) {
    for i in (1..values.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        values.swap(i, j);
    }
}

/// `count` distinct numbers below `range`, ascending (Knuth's selection sampling).
fn distinct_below(rng: &mut Rng, count: usize, range: usize) -> Vec<u32> {
    debug_assert!(count <= range);
    let mut out = Vec::with_capacity(count);
    for t in 0..range {
        let needed = count - out.len();
        if needed == 0 {
            break;
        }
        if rng.below((range - t) as u64) < needed as u64 {
            out.push(t as u32);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The catalogue.

/// When an item is in demand: `1 - |day - center| * inv_half` of its peak,
/// floored at 0. Evergreen items have `inv_half = 0`.
#[derive(Debug, Clone, Copy)]
struct Life {
    center_day: f64,
    inv_half_days: f64,
}

impl Life {
    fn level(self, day: f64) -> f64 {
        (1.0 - (day - self.center_day).abs() * self.inv_half_days).max(0.0)
    }
}

/// Popularity on one day: alias tables over the items then in demand.
struct Knot {
    /// Whole-catalogue table.
    global: Vec<Slot>,
    /// Per-category tables, concatenated (see `Catalogue::category_ranges`).
    by_category: Vec<Slot>,
    /// Table over categories by their items' total popularity (`item` holds the
    /// category).
    categories: Vec<Slot>,
}

struct Catalogue {
    /// Raw item id of each internal item. Internal items are numbered
    /// category by category.
    raw_id: Vec<u32>,
    /// Internal items in ascending raw id order, for writing the features file.
    by_raw_id: Vec<u32>,
    /// First internal item of each leaf category, and `items` at the end.
    category_first: Vec<u32>,
    leaf_raw: Vec<u32>,
    leaf_parent: Vec<u32>,
    parent_raw: Vec<u32>,
    available: Vec<bool>,
    /// Popularity at days 0, KNOT_DAYS, 2·KNOT_DAYS, ... past the period's end.
    knots: Vec<Knot>,
    /// `[start, end)` of category `c`'s table in knot `k`'s `by_category`, at
    /// `c * knots.len() + k`: a visitor keeps drawing from the same few
    /// categories, so keeping a category's ranges together keeps them cached.
    category_ranges: Vec<[u32; 2]>,
}

impl Catalogue {
    fn build(items: usize, seed: u64) -> Catalogue {
        let mut rng = Rng::for_stream(seed, STREAM_CATALOGUE);
        let leaves = (items / ITEMS_PER_CATEGORY).max(1);
        let parents = (leaves / CATEGORIES_PER_PARENT).max(1);

        let all = leaves + parents;
        let mut category_ids = distinct_below(&mut rng, all, all + all / 50 + 1);
        shuffle(&mut rng, &mut category_ids);
        let parent_raw = category_ids[..parents].to_vec();
        let leaf_raw = category_ids[parents..].to_vec();
        let parent_weights: Vec<f64> = (0..parents)
            .map(|_| lognormal(&mut rng, 1.0, CATEGORY_SIZE_SIGMA))
            .collect();
        let parent_cum = cumulative(&parent_weights);
        let leaf_parent: Vec<u32> = (0..leaves)
            .map(|_| cumulative_draw(&parent_cum, &mut rng) as u32)
            .collect();

        // Every leaf gets one item (items >= leaves always), the rest by weight.
        let leaf_weights: Vec<f64> = (0..leaves)
            .map(|_| lognormal(&mut rng, 1.0, CATEGORY_SIZE_SIGMA))
            .collect();
        let leaf_cum = cumulative(&leaf_weights);
        let mut sizes = vec![1usize; leaves];
        for _ in leaves..items {
            sizes[cumulative_draw(&leaf_cum, &mut rng)] += 1;
        }
        let mut category = Vec::with_capacity(items);
        let mut category_first = Vec::with_capacity(leaves + 1);
        for (c, &size) in sizes.iter().enumerate() {
            category_first.push(category.len() as u32);
            category.extend(std::iter::repeat_n(c as u32, size));
        }
        category_first.push(items as u32);

        let sorted_ids = distinct_below(&mut rng, items, items * ITEM_ID_SPREAD);
        let mut by_raw_id: Vec<u32> = (0..items as u32).collect();
        shuffle(&mut rng, &mut by_raw_id);
        let mut raw_id = vec![0u32; items];
        for (&internal, &id) in by_raw_id.iter().zip(&sorted_ids) {
            raw_id[internal as usize] = id;
        }

        let mut rank: Vec<u32> = (0..items as u32).collect();
        shuffle(&mut rng, &mut rank);
        let q = (items as f64 / ZIPF_OFFSET_ITEMS).max(ZIPF_MIN_OFFSET);
        let mut peak = Vec::with_capacity(items);
        let mut life = Vec::with_capacity(items);
        let mut available = Vec::with_capacity(items);
        for &r in &rank {
            let base = 1.0 / (r as f64 + q);
            if rng.chance(EVERGREEN_SHARE) {
                peak.push(base);
                life.push(Life {
                    center_day: 0.0,
                    inv_half_days: 0.0,
                });
                available.push(rng.chance(0.9));
            } else {
                let (lo, hi) = TREND_HALF_WIDTH_DAYS;
                let half = lo + (hi - lo) * rng.next_f64();
                let center = -TREND_CENTER_MARGIN_DAYS
                    + (SPAN_DAYS as f64 + 2.0 * TREND_CENTER_MARGIN_DAYS) * rng.next_f64();
                peak.push(base * TREND_BOOST);
                life.push(Life {
                    center_day: center,
                    inv_half_days: 1.0 / half,
                });
                // Items whose trend is over are mostly no longer sold.
                let still_selling = center + half > SPAN_DAYS as f64;
                available.push(rng.chance(if still_selling { 0.9 } else { 0.1 }));
            }
        }

        let knot_count = (SPAN_DAYS as f64 / KNOT_DAYS).ceil() as usize + 1;
        let (knots, starts): (Vec<Knot>, Vec<Vec<u32>>) = (0..knot_count)
            .into_par_iter()
            .map(|k| Knot::build(k as f64 * KNOT_DAYS, &peak, &life, &category, leaves))
            .unzip();
        let mut category_ranges = Vec::with_capacity(leaves * knot_count);
        for c in 0..leaves {
            category_ranges.extend(starts.iter().map(|start| [start[c], start[c + 1]]));
        }

        Catalogue {
            raw_id,
            by_raw_id,
            category_first,
            leaf_raw,
            leaf_parent,
            parent_raw,
            available,
            knots,
            category_ranges,
        }
    }

    /// The knot whose tables to use on `day`. Popularity between two knots is
    /// the linear interpolation of theirs: the later knot is used with
    /// probability equal to how far `day` is towards it.
    #[inline]
    fn knot(&self, day: f32, rng: &mut Rng) -> usize {
        let x = (day / KNOT_DAYS as f32).max(0.0);
        let before = x as usize;
        let k = before + (rng.next_f32() < x - before as f32) as usize;
        k.min(self.knots.len() - 1)
    }

    /// An item and its category, drawn by popularity on `day`, from `category`
    /// when given (and something there is in demand), else from the whole
    /// catalogue.
    #[inline]
    fn draw(&self, day: f32, category: Option<u32>, rng: &mut Rng) -> (u32, u32) {
        let k = self.knot(day, rng);
        let knot = &self.knots[k];
        if let Some(c) = category {
            let [a, b] = self.category_ranges[c as usize * self.knots.len() + k];
            if b > a {
                return (
                    alias_draw(&knot.by_category[a as usize..b as usize], rng),
                    c,
                );
            }
        }
        let item = alias_draw(&knot.global, rng);
        (item, self.category_of(item))
    }

    /// A category drawn by the popularity of its items on `day`.
    fn draw_category(&self, day: f32, rng: &mut Rng) -> u32 {
        alias_draw(&self.knots[self.knot(day, rng)].categories, rng)
    }

    /// The leaf category of internal item `item` (a search in a small array,
    /// cheaper than a cache miss on a per-item one).
    #[inline]
    fn category_of(&self, item: u32) -> u32 {
        (self.category_first.partition_point(|&first| first <= item) - 1) as u32
    }

    fn write_features(&self, w: &mut BufWriter<File>) -> Result<()> {
        let mut buf = Vec::with_capacity(1 << 16);
        buf.extend_from_slice(b"item_id,category_id,parent_id,available\n");
        let mut line = Line::new();
        for &item in &self.by_raw_id {
            let leaf = self.category_of(item) as usize;
            let item = item as usize;
            line.num(self.raw_id[item] as u64)
                .text(b",")
                .num(self.leaf_raw[leaf] as u64)
                .text(b",")
                .num(self.parent_raw[self.leaf_parent[leaf] as usize] as u64)
                .text(if self.available[item] {
                    b",1\n"
                } else {
                    b",0\n"
                })
                .flush_into(&mut buf);
            if buf.len() >= 1 << 16 {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
        w.write_all(&buf)?;
        Ok(())
    }
}

impl Knot {
    /// The tables for `day`, and where each category's table starts in
    /// `by_category` (plus the end). Within a category popularity counts as its
    /// square root: a shopper browsing a category looks further than its best
    /// seller.
    fn build(
        day: f64,
        peak: &[f64],
        life: &[Life],
        category: &[u32],
        leaves: usize,
    ) -> (Knot, Vec<u32>) {
        let mut items = Vec::new();
        let mut weights = Vec::new();
        for (i, (&p, &l)) in peak.iter().zip(life).enumerate() {
            let level = l.level(day);
            if level > 0.0 {
                items.push(i as u32);
                weights.push(p * level);
            }
        }
        if items.is_empty() {
            // Only possible for a tiny catalogue of trending items: use them all.
            items = (0..peak.len() as u32).collect();
            weights = peak.to_vec();
        }
        let mut scratch = AliasScratch::default();
        let mut global = vec![Slot::default(); items.len()];
        build_alias(&items, &weights, &mut global, &mut scratch);

        // `items` ascend, so each category is one run of them.
        let mut category_start = Vec::with_capacity(leaves + 1);
        let mut by_category = vec![Slot::default(); items.len()];
        let flat: Vec<f64> = weights.iter().map(|w| w.sqrt()).collect();
        let mut a = 0;
        for c in 0..leaves as u32 {
            category_start.push(a as u32);
            let b = a + items[a..].partition_point(|&i| category[i as usize] == c);
            build_alias(
                &items[a..b],
                &flat[a..b],
                &mut by_category[a..b],
                &mut scratch,
            );
            a = b;
        }
        category_start.push(a as u32);

        let (mut nonempty, mut masses) = (Vec::new(), Vec::new());
        for c in 0..leaves {
            let (a, b) = (category_start[c] as usize, category_start[c + 1] as usize);
            if b > a {
                nonempty.push(c as u32);
                masses.push(weights[a..b].iter().sum());
            }
        }
        let mut categories = vec![Slot::default(); nonempty.len()];
        build_alias(&nonempty, &masses, &mut categories, &mut scratch);
        let knot = Knot {
            global,
            by_category,
            categories,
        };
        (knot, category_start)
    }
}

// ---------------------------------------------------------------------------
// How many events each visitor has.

/// Splits `events` over visitors exactly: one each, plus the extra events cut
/// from the cumulative activity weight at integer boundaries, so visitor `v`
/// gets `floor(X·C_v / W) - floor(X·C_{v-1} / W)` extra events (`X` extra events,
/// `C_v` the weight of visitors `0..=v`, `W` the total): the floor or the ceiling
/// of its fair share, and exactly `X` in all. Weights are re-drawn from
/// per-chunk streams rather than stored, so only one number per chunk is kept.
struct Activity {
    users: usize,
    events: u64,
    seed: u64,
    law: WeightLaw,
    /// Events beyond one per visitor (0 when `events <= users`).
    extra: u64,
    /// Total weight of the chunks before each chunk.
    chunk_offset: Vec<u64>,
    total_weight: u64,
}

impl Activity {
    /// A weight is `floor(x) - 1` for a Pareto draw `x` (`P(x > t) = t^-α`),
    /// softly capped (see [`WeightLaw`]); α is chosen to make its mean the mean
    /// number of extra events per visitor. Then a visitor's share is close to its
    /// (integer) weight, and `P(count >= k) ≈ k^-α`, a discrete power law: at
    /// RetailRocket's two events per visitor α ≈ 1.75, about 70% of visitors
    /// have one event, 15% two, 6% three, and the busiest a few thousand. α stays
    /// within [`ACTIVITY_ALPHA_RANGE`]; beyond it shares are scaled.
    fn new(spec: &GenerateSpec) -> Activity {
        let chunks = spec.users.div_ceil(CHUNK_VISITORS);
        let extra = spec.events.saturating_sub(spec.users) as u64;
        let cap = (spec.events as f64 * ACTIVITY_CAP_SHARE).max(ACTIVITY_MIN_CAP);
        let law = WeightLaw::for_mean(extra as f64 / spec.users as f64, cap);
        let sums: Vec<u64> = if extra > 0 {
            (0..chunks)
                .into_par_iter()
                .map(|k| {
                    let mut rng = Rng::for_stream(spec.seed, STREAM_ACTIVITY | k as u64);
                    let len = CHUNK_VISITORS.min(spec.users - k * CHUNK_VISITORS);
                    (0..len).map(|_| law.draw(&mut rng)).sum()
                })
                .collect()
        } else {
            vec![0; chunks]
        };
        let mut chunk_offset = Vec::with_capacity(chunks);
        let mut total_weight = 0u64;
        for s in sums {
            chunk_offset.push(total_weight);
            total_weight += s;
        }
        Activity {
            users: spec.users,
            events: spec.events as u64,
            seed: spec.seed,
            law,
            extra,
            chunk_offset,
            total_weight,
        }
    }

    fn chunks(&self) -> usize {
        self.chunk_offset.len()
    }

    /// Event counts of the visitors of chunk `k`.
    fn counts(&self, k: usize) -> Vec<u64> {
        let lo = k * CHUNK_VISITORS;
        let hi = (lo + CHUNK_VISITORS).min(self.users);
        if self.events <= self.users as u64 {
            // Even spread: visitor v has an event when a multiple of `users`
            // falls in (events * v, events * (v + 1)].
            let (e, u) = (self.events as u128, self.users as u128);
            return (lo..hi)
                .map(|v| ((e * (v as u128 + 1)) / u - (e * v as u128) / u) as u64)
                .collect();
        }
        let mut rng = Rng::for_stream(self.seed, STREAM_ACTIVITY | k as u64);
        let (x, total) = (self.extra as u128, self.total_weight as u128);
        let mut cum = self.chunk_offset[k];
        let mut cut = (x * cum as u128 / total) as u64;
        (lo..hi)
            .map(|_| {
                cum += self.law.draw(&mut rng);
                let next = (x * cum as u128 / total) as u64;
                let n = 1 + next - cut;
                cut = next;
                n
            })
            .collect()
    }
}

/// The law of activity weights: `w = floor(x) - 1` for a Pareto `x` with tail
/// index `alpha`, softly capped as `w / (1 + w / cap)`.
#[derive(Debug, Clone, Copy)]
struct WeightLaw {
    alpha: f64,
    cap: f64,
    /// `P(x >= 2)`: draws `u` above it give weight 0 without a power.
    zero_above: f64,
}

impl WeightLaw {
    fn new(alpha: f64, cap: f64) -> WeightLaw {
        WeightLaw {
            alpha,
            cap,
            zero_above: 2f64.powf(-alpha),
        }
    }

    /// The law in [`ACTIVITY_ALPHA_RANGE`] whose mean is closest to `mean`.
    fn for_mean(mean: f64, cap: f64) -> WeightLaw {
        let (mut lo, mut hi) = ACTIVITY_ALPHA_RANGE;
        if WeightLaw::new(lo, cap).mean() <= mean {
            return WeightLaw::new(lo, cap);
        }
        // The mean falls as α grows: bisect.
        for _ in 0..40 {
            let mid = 0.5 * (lo + hi);
            if WeightLaw::new(mid, cap).mean() > mean {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        WeightLaw::new(0.5 * (lo + hi), cap)
    }

    fn soft_cap(&self, w: f64) -> f64 {
        w / (1.0 + w / self.cap)
    }

    /// `E[w]`: `P(w = k) = (k + 1)^-α - (k + 2)^-α`, summed term by term for
    /// small `k` and over geometric buckets beyond.
    fn mean(&self) -> f64 {
        let tail = |k: f64| (k + 1.0).powf(-self.alpha);
        let mut sum = 0.0;
        let mut k = 1.0;
        while k < 1_000.0 {
            sum += (tail(k) - tail(k + 1.0)) * self.soft_cap(k);
            k += 1.0;
        }
        while k < 1e15 {
            let next = k * 1.05;
            sum += (tail(k) - tail(next)) * self.soft_cap((k * next).sqrt());
            k = next;
        }
        sum
    }

    /// A weight in fixed point (never zero, so the total is positive).
    #[inline]
    fn draw(&self, rng: &mut Rng) -> u64 {
        let u = 1.0 - rng.next_f64(); // in (0, 1]
        if u > self.zero_above {
            return 1;
        }
        let w = u.powf(-1.0 / self.alpha).floor() - 1.0;
        (self.soft_cap(w) * ACTIVITY_SCALE) as u64 + 1
    }
}

// ---------------------------------------------------------------------------
// Simulating visitors.

#[derive(Debug, Clone, Copy)]
struct Event {
    timestamp_ms: i64,
    visitor: u32,
    /// Internal item index.
    item: u32,
    /// Chunk-local transaction number, or `NO_TXN`.
    txn: u32,
    kind: EventKind,
}

/// The events of one chunk of visitors.
#[derive(Default)]
struct ChunkEvents {
    events: Vec<Event>,
    /// Transaction numbers used (the chunk's are `0..txns`).
    txns: u32,
    visitors: usize,
}

/// Steers the funnel towards the target shares within a chunk: each later event
/// becomes a cart with probability (carts still to place) / (events left), and
/// a cart becomes a purchase with probability (purchases still to place) /
/// (carts still to place). Purchases that never got their event are handed back.
struct Funnel {
    carts_left: f64,
    txns_left: f64,
    slots_left: f64,
}

#[derive(Default)]
struct VisitorScratch {
    times: Vec<i64>,
    new_session: Vec<bool>,
    /// Recently viewed items, least recent first.
    history: Vec<Seen>,
    /// Carted items that will be bought.
    pending: Vec<u32>,
}

fn simulate_chunk(k: usize, catalogue: &Catalogue, activity: &Activity) -> ChunkEvents {
    let counts = activity.counts(k);
    let total: u64 = counts.iter().sum();
    let mut out = ChunkEvents {
        events: Vec::with_capacity(total as usize),
        ..Default::default()
    };
    let mut funnel = Funnel {
        carts_left: total as f64 * CART_SHARE,
        txns_left: total as f64 * TXN_SHARE,
        slots_left: counts.iter().map(|&n| n.saturating_sub(1)).sum::<u64>() as f64,
    };
    let mut rng = Rng::for_stream(activity.seed, STREAM_BEHAVIOUR | k as u64);
    let mut scratch = VisitorScratch::default();
    let first = k * CHUNK_VISITORS;
    for (offset, &n) in counts.iter().enumerate() {
        if n > 0 {
            let visitor = (first + offset) as u32;
            simulate_visitor(
                catalogue,
                visitor,
                n as usize,
                &mut rng,
                &mut funnel,
                &mut scratch,
                &mut out,
            );
            out.visitors += 1;
        }
    }
    out
}

/// Timestamps of `n` events of one visitor, and which start a session.
fn visitor_times(n: usize, rng: &mut Rng, times: &mut Vec<i64>, new_session: &mut Vec<bool>) {
    times.clear();
    new_session.clear();
    let (mut intra, mut inter) = (0i64, 0i64);
    times.push(0);
    new_session.push(true);
    for _ in 1..n {
        let new = rng.chance(P_NEW_SESSION);
        let gap = if new {
            let g = lognormal(rng, INTER_SESSION_MEDIAN_MS, INTER_SESSION_SIGMA);
            g.clamp(60.0 * MINUTE_MS, 60.0 * DAY_MS as f64) as i64
        } else {
            let g = lognormal(rng, INTRA_SESSION_MEDIAN_MS, INTRA_SESSION_SIGMA);
            g.clamp(1_000.0, 30.0 * MINUTE_MS) as i64
        };
        if new {
            inter += gap;
        } else {
            intra += gap;
        }
        times.push(gap);
        new_session.push(new);
    }
    // Fit the history into the period: shrink the gaps between sessions first,
    // and only if that is not enough (thousands of events) every gap.
    let room = SPAN_MS - 1;
    let (intra_scale, inter_scale) = if intra + inter <= room {
        (1.0, 1.0)
    } else if intra <= room {
        (1.0, (room - intra) as f64 / inter as f64)
    } else {
        let s = room as f64 / (intra + inter) as f64;
        (s, s)
    };
    let mut t = 0i64;
    for k in 1..n {
        let scale = if new_session[k] {
            inter_scale
        } else {
            intra_scale
        };
        t += ((times[k] as f64 * scale) as i64).max(1);
        times[k] = t;
    }
    let start = START_MS + rng.below((room - t).max(0) as u64 + 1) as i64;
    let end = START_MS + room;
    for time in times.iter_mut() {
        *time = (start + *time).min(end);
    }
}

#[inline]
fn day_of(timestamp_ms: i64) -> f32 {
    ((timestamp_ms - START_MS) as f64 / DAY_MS as f64) as f32
}

fn simulate_visitor(
    catalogue: &Catalogue,
    visitor: u32,
    n: usize,
    rng: &mut Rng,
    funnel: &mut Funnel,
    scratch: &mut VisitorScratch,
    out: &mut ChunkEvents,
) {
    let VisitorScratch {
        times,
        new_session,
        history,
        pending,
    } = scratch;
    visitor_times(n, rng, times, new_session);
    history.clear();
    pending.clear();

    // Preferred categories, drawn by popularity on arrival, when first needed
    // (most visitors never need them, and each draw is a cache miss).
    let first_day = day_of(times[0]);
    let mut preferred: Option<[u32; 2]> = None;
    let mut preferred = |rng: &mut Rng| {
        *preferred.get_or_insert_with(|| {
            let a = catalogue.draw_category(first_day, rng);
            let b = if rng.chance(P_SECOND_CATEGORY) {
                catalogue.draw_category(first_day, rng)
            } else {
                a
            };
            [a, b]
        })
    };

    let mut session = 0u32;
    let mut session_category: Option<u32> = None;
    let mut last_viewed: Option<u32> = None;
    let (mut txn_session, mut txn) = (u32::MAX, NO_TXN);
    for k in 0..n {
        let mut timestamp_ms = times[k];
        if k > 0 && new_session[k] {
            session += 1;
            session_category = None;
        }
        let push = |out: &mut ChunkEvents, timestamp_ms, item, kind, txn| {
            out.events.push(Event {
                timestamp_ms,
                visitor,
                item,
                txn,
                kind,
            })
        };

        if k > 0 {
            let slots = funnel.slots_left.max(1.0);
            funnel.slots_left -= 1.0;

            let last = k + 1 == n;
            if !pending.is_empty() && (last || rng.chance(P_BUY_NOW)) {
                let item = pending.remove(0);
                let mut buy_session = session;
                if new_session[k] && rng.chance(P_BUY_SAME_SESSION) {
                    // Buy right after the cart, before the break.
                    let gap = lognormal(rng, INTRA_SESSION_MEDIAN_MS, INTRA_SESSION_SIGMA)
                        .clamp(1_000.0, 30.0 * MINUTE_MS) as i64;
                    timestamp_ms = (times[k - 1] + gap).min(times[k]);
                    buy_session = session - 1;
                }
                if buy_session != txn_session {
                    txn_session = buy_session;
                    txn = out.txns;
                    out.txns += 1;
                }
                push(out, timestamp_ms, item, EventKind::Transaction, txn);
                continue;
            }

            // Try a cart at the highest rate, then keep it in proportion to
            // the candidate's boost: the same odds, without choosing a
            // candidate at every event.
            let tried = rng.chance(funnel.carts_left / slots * CART_BOOST_REPEAT);
            let candidate = tried.then(|| {
                if rng.chance(P_CART_UNSEEN) {
                    // Added from a listing, without opening the item's page.
                    let category = match session_category {
                        Some(c) => c,
                        None => preferred(rng)[0],
                    };
                    (
                        catalogue.draw(day_of(timestamp_ms), Some(category), rng).0,
                        0,
                    )
                } else {
                    cart_candidate(history, last_viewed, rng)
                }
            });
            if let Some((candidate, _)) = candidate.filter(|&(_, views)| {
                views >= 2 || rng.chance(CART_BOOST_SINGLE / CART_BOOST_REPEAT)
            }) {
                let carts = funnel.carts_left.max(1.0);
                funnel.carts_left -= 1.0;
                // A cart on the last event could not be followed by a purchase.
                if !last && rng.chance(funnel.txns_left / carts) {
                    funnel.txns_left -= 1.0;
                    pending.push(candidate);
                }
                push(out, timestamp_ms, candidate, EventKind::AddToCart, NO_TXN);
                continue;
            }
        }

        let (item, category) = if !history.is_empty() && rng.chance(P_REVISIT) {
            revisit(history, rng)
        } else {
            let r = rng.next_f64();
            let category = match session_category {
                Some(c) if r < P_SESSION_CATEGORY => Some(c),
                _ if r < P_SESSION_CATEGORY + (1.0 - P_SESSION_CATEGORY) * P_PREFERRED_CATEGORY => {
                    let [a, b] = preferred(rng);
                    Some(if rng.chance(0.5) { a } else { b })
                }
                _ => None,
            };
            catalogue.draw(day_of(timestamp_ms), category, rng)
        };
        session_category = Some(category);
        last_viewed = Some(item);
        remember(history, item, category);
        push(out, timestamp_ms, item, EventKind::View, NO_TXN);
    }
    // Purchases that found no later event go back to the chunk's budget.
    funnel.txns_left += pending.len() as f64;
}

/// An item in a visitor's recent history.
#[derive(Debug, Clone, Copy)]
struct Seen {
    item: u32,
    category: u32,
    views: u32,
}

/// Count a view of `item`, moving it to the most recent end.
fn remember(history: &mut Vec<Seen>, item: u32, category: u32) {
    let views = match history.iter().rposition(|s| s.item == item) {
        Some(pos) => history.remove(pos).views + 1,
        None => 1,
    };
    if history.len() == HISTORY_LEN {
        history.remove(0);
    }
    history.push(Seen {
        item,
        category,
        views,
    });
}

/// A recently viewed item and its category, weighted by how often it was
/// viewed.
fn revisit(history: &[Seen], rng: &mut Rng) -> (u32, u32) {
    let total: u64 = history.iter().map(|s| s.views as u64).sum();
    let mut x = rng.below(total);
    for s in history {
        if x < s.views as u64 {
            return (s.item, s.category);
        }
        x -= s.views as u64;
    }
    let last = history[history.len() - 1];
    (last.item, last.category)
}

/// The item a cart would go to, with its view count: weighted by views², with a
/// bonus for the item just viewed.
fn cart_candidate(history: &[Seen], last_viewed: Option<u32>, rng: &mut Rng) -> (u32, u32) {
    let weight = |s: &Seen| {
        let w = s.views as u64 * s.views as u64;
        if Some(s.item) == last_viewed {
            w * CART_LAST_VIEWED_BONUS
        } else {
            w
        }
    };
    let total: u64 = history.iter().map(weight).sum();
    let mut x = rng.below(total.max(1));
    for s in history {
        let w = weight(s);
        if x < w {
            return (s.item, s.views);
        }
        x -= w;
    }
    let last = history[history.len() - 1];
    (last.item, last.views)
}

// ---------------------------------------------------------------------------
// Running the simulation and writing rows.

struct Tally {
    events: usize,
    visitors: usize,
    kind_counts: [usize; 3],
    item_seen: Vec<bool>,
}

/// Simulate every chunk, in parallel rounds of `BATCH_CHUNKS`, handing each
/// round (in chunk order) to `sink` with the global number of each chunk's
/// first transaction.
fn simulate(
    spec: &GenerateSpec,
    catalogue: &Catalogue,
    activity: &Activity,
    bar: &ProgressBar,
    mut sink: impl FnMut(&[ChunkEvents], &[u64]) -> Result<()>,
) -> Result<Tally> {
    let mut tally = Tally {
        events: 0,
        visitors: 0,
        kind_counts: [0; 3],
        item_seen: vec![false; spec.items],
    };
    let mut next_txn = 0u64;
    let chunks = activity.chunks();
    for round in (0..chunks).step_by(BATCH_CHUNKS) {
        let batch: Vec<ChunkEvents> = (round..(round + BATCH_CHUNKS).min(chunks))
            .into_par_iter()
            .map(|k| simulate_chunk(k, catalogue, activity))
            .collect();
        let mut txn_bases = Vec::with_capacity(batch.len());
        let mut batch_events = 0;
        for chunk in &batch {
            txn_bases.push(next_txn);
            next_txn += chunk.txns as u64;
            batch_events += chunk.events.len();
            tally.visitors += chunk.visitors;
            for e in &chunk.events {
                tally.kind_counts[e.kind as usize] += 1;
                tally.item_seen[e.item as usize] = true;
            }
        }
        sink(&batch, &txn_bases)?;
        tally.events += batch_events;
        bar.inc(batch_events as u64);
    }
    Ok(tally)
}

/// "00", "01", ..., "99": two digits per division when formatting numbers.
const DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[2 * i] = b'0' + (i / 10) as u8;
        table[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

/// One CSV line built on the stack, so the output grows once per row rather
/// than once per field.
struct Line {
    bytes: [u8; 96],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            bytes: [0; 96],
            len: 0,
        }
    }

    /// Append `v` in decimal.
    #[inline]
    fn num(&mut self, mut v: u64) -> &mut Line {
        let digits = v.checked_ilog10().map_or(1, |l| l as usize + 1);
        let mut end = self.len + digits;
        while v >= 100 {
            let pair = (v % 100) as usize * 2;
            v /= 100;
            self.bytes[end - 2..end].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
            end -= 2;
        }
        if v >= 10 {
            let pair = v as usize * 2;
            self.bytes[end - 2..end].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        } else {
            self.bytes[end - 1] = b'0' + v as u8;
        }
        self.len += digits;
        self
    }

    #[inline]
    fn text(&mut self, text: &[u8]) -> &mut Line {
        self.bytes[self.len..self.len + text.len()].copy_from_slice(text);
        self.len += text.len();
        self
    }

    /// Append the line to `buf` and start a new one.
    #[inline]
    fn flush_into(&mut self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.bytes[..self.len]);
        self.len = 0;
    }
}

fn format_csv(chunk: &ChunkEvents, txn_base: u64, catalogue: &Catalogue) -> Vec<u8> {
    // ~40 bytes a row: 13-digit time, 7-digit ids, kind, commas.
    let mut buf = Vec::with_capacity(chunk.events.len() * 44);
    let mut line = Line::new();
    for e in &chunk.events {
        line.num(e.timestamp_ms as u64)
            .text(b",")
            .num(e.visitor as u64)
            .text(b",")
            .text(e.kind.as_str().as_bytes())
            .text(b",")
            .num(catalogue.raw_id[e.item as usize] as u64)
            .text(b",");
        if e.txn != NO_TXN {
            line.num(txn_base + e.txn as u64);
        }
        line.text(b"\n").flush_into(&mut buf);
    }
    buf
}

/// The events of one chunk as a table, to be stacked under the previous
/// chunks' for a Parquet file (building chunk by chunk keeps only the final
/// Arrow buffers alive, not a second copy of every column).
fn chunk_frame(chunk: &ChunkEvents, txn_base: u64, catalogue: &Catalogue) -> Result<DataFrame> {
    let n = chunk.events.len();
    let mut timestamp = Vec::with_capacity(n);
    let mut visitor = Vec::with_capacity(n);
    let mut event = Vec::with_capacity(n);
    let mut item = Vec::with_capacity(n);
    let mut transaction = Vec::with_capacity(n);
    for e in &chunk.events {
        timestamp.push(e.timestamp_ms);
        visitor.push(e.visitor as i64);
        event.push(e.kind.as_str());
        item.push(catalogue.raw_id[e.item as usize] as i64);
        transaction.push((e.txn != NO_TXN).then(|| (txn_base + e.txn as u64) as i64));
    }
    let frame = DataFrame::new(
        n,
        vec![
            Column::new("timestamp".into(), timestamp),
            Column::new("visitorid".into(), visitor),
            Column::new("event".into(), event),
            Column::new("itemid".into(), item),
            Column::new("transactionid".into(), transaction),
        ],
    )
    .context("building the event table")?;
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    /// One parsed row of `events.csv`.
    #[derive(Debug, Clone, PartialEq)]
    struct Row {
        timestamp: i64,
        visitor: u64,
        kind: EventKind,
        item: u64,
        txn: Option<u64>,
    }

    fn read_rows(path: &Path) -> Vec<Row> {
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("timestamp,visitorid,event,itemid,transactionid")
        );
        lines
            .map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                assert_eq!(f.len(), 5, "bad line {line:?}");
                Row {
                    timestamp: f[0].parse().unwrap(),
                    visitor: f[1].parse().unwrap(),
                    kind: EventKind::parse(f[2]).unwrap(),
                    item: f[3].parse().unwrap(),
                    txn: (!f[4].is_empty()).then(|| f[4].parse().unwrap()),
                }
            })
            .collect()
    }

    const MEDIUM: GenerateSpec = GenerateSpec {
        users: 50_000,
        items: 5_000,
        events: 200_000,
        seed: 7,
    };

    fn run(spec: &GenerateSpec) -> (tempfile::TempDir, GenerateSummary, Vec<Row>) {
        let dir = tempfile::tempdir().unwrap();
        let summary = generate(spec, dir.path(), OutputFormat::Csv, ItemLayout::Flat).unwrap();
        let rows = read_rows(&summary.events_path);
        (dir, summary, rows)
    }

    #[test]
    fn writes_exactly_the_requested_rows_visitors_and_items() {
        let (_dir, summary, rows) = run(&MEDIUM);
        assert_eq!(rows.len(), MEDIUM.events);
        assert_eq!(summary.events, MEDIUM.events);
        assert_eq!(summary.kind_counts.iter().sum::<usize>(), MEDIUM.events);
        let visitors: HashSet<u64> = rows.iter().map(|r| r.visitor).collect();
        assert_eq!(visitors.len(), MEDIUM.users, "every visitor has an event");
        assert_eq!(summary.visitors, MEDIUM.users);
        assert!(visitors.iter().all(|&v| v < MEDIUM.users as u64));
        let items: HashSet<u64> = rows.iter().map(|r| r.item).collect();
        assert_eq!(summary.items, items.len());
        assert!(items.len() <= MEDIUM.items && items.len() > MEDIUM.items / 2);

        let features = std::fs::read_to_string(&summary.item_files[0]).unwrap();
        let mut lines = features.lines();
        assert_eq!(
            lines.next(),
            Some("item_id,category_id,parent_id,available")
        );
        let mut ids = Vec::new();
        let mut categories = HashSet::new();
        for line in lines {
            let f: Vec<u64> = line.split(',').map(|x| x.parse().unwrap()).collect();
            assert_eq!(f.len(), 4);
            assert!(f[3] <= 1);
            ids.push(f[0]);
            categories.insert(f[1]);
        }
        assert_eq!(ids.len(), MEDIUM.items);
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "unique, sorted item ids"
        );
        assert!(*ids.last().unwrap() < (MEDIUM.items * ITEM_ID_SPREAD) as u64);
        assert!(items.iter().all(|i| ids.binary_search(i).is_ok()));
        assert_eq!(categories.len(), MEDIUM.items / ITEMS_PER_CATEGORY);
    }

    #[test]
    fn activity_is_heavy_tailed() {
        let (_dir, _summary, rows) = run(&MEDIUM);
        let mut per_visitor: HashMap<u64, usize> = HashMap::new();
        for r in &rows {
            *per_visitor.entry(r.visitor).or_default() += 1;
        }
        let one_or_two = per_visitor.values().filter(|&&n| n <= 2).count();
        let max = per_visitor.values().max().copied().unwrap();
        // Mean is 4 events a visitor, yet most have one or two and a few hundreds.
        assert!(
            one_or_two * 2 > MEDIUM.users,
            "{one_or_two} with 1-2 events"
        );
        assert!(max >= 200, "busiest visitor has only {max} events");
    }

    #[test]
    fn funnel_ratios_match_retailrocket() {
        let (_dir, summary, rows) = run(&MEDIUM);
        let [views, carts, txns] = summary.kind_counts;
        let counted = |k| rows.iter().filter(|r| r.kind == k).count();
        assert_eq!(counted(EventKind::AddToCart), carts);
        let cart_rate = carts as f64 / views as f64 * 100.0;
        let txn_rate = txns as f64 / views as f64 * 100.0;
        assert!(
            (2.3..2.9).contains(&cart_rate),
            "carts per 100 views {cart_rate}"
        );
        assert!(
            (0.65..0.95).contains(&txn_rate),
            "purchases per 100 views {txn_rate}"
        );
        for r in &rows {
            assert_eq!(r.txn.is_some(), r.kind == EventKind::Transaction, "{r:?}");
        }
    }

    #[test]
    fn purchases_follow_a_cart_of_the_same_item_in_the_session() {
        let (_dir, _summary, mut rows) = run(&MEDIUM);
        rows.sort_by_key(|r| (r.visitor, r.timestamp));
        let session_gap = 30 * 60 * 1000;
        let (mut purchases, mut after_cart) = (0, 0);
        for (i, r) in rows.iter().enumerate() {
            if r.kind != EventKind::Transaction {
                continue;
            }
            purchases += 1;
            // Walk back through this visitor's session.
            let mut t = r.timestamp;
            for prev in rows[..i].iter().rev() {
                if prev.visitor != r.visitor || t - prev.timestamp > session_gap {
                    break;
                }
                if prev.kind == EventKind::AddToCart && prev.item == r.item {
                    after_cart += 1;
                    break;
                }
                t = prev.timestamp;
            }
        }
        let share = after_cart as f64 / purchases as f64;
        assert!(
            share > 0.6,
            "only {share} of purchases follow a cart in session"
        );
    }

    #[test]
    fn carts_favour_items_viewed_more_than_once() {
        let (_dir, _summary, mut rows) = run(&MEDIUM);
        rows.sort_by_key(|r| (r.visitor, r.timestamp));
        let mut views: HashMap<(u64, u64), usize> = HashMap::new();
        let (mut carts, mut carts_after_repeat) = (0, 0);
        let mut revisits = 0;
        let mut all_views = 0;
        for r in &rows {
            match r.kind {
                EventKind::View => {
                    let n = views.entry((r.visitor, r.item)).or_default();
                    revisits += (*n > 0) as usize;
                    all_views += 1;
                    *n += 1;
                }
                EventKind::AddToCart => {
                    carts += 1;
                    carts_after_repeat +=
                        (views.get(&(r.visitor, r.item)).copied().unwrap_or(0) >= 2) as usize;
                }
                EventKind::Transaction => {}
            }
        }
        let repeated_pairs = views.values().filter(|&&n| n >= 2).count();
        let base = repeated_pairs as f64 / views.len() as f64;
        let cart_share = carts_after_repeat as f64 / carts as f64;
        assert!(
            cart_share > 2.0 * base,
            "{cart_share} of carts after repeat views vs {base} of viewed pairs"
        );
        let revisit_share = revisits as f64 / all_views as f64;
        assert!(
            (0.15..0.45).contains(&revisit_share),
            "revisit share {revisit_share}"
        );
    }

    #[test]
    fn popularity_is_heavy_tailed() {
        let (_dir, _summary, rows) = run(&MEDIUM);
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for r in rows.iter().filter(|r| r.kind == EventKind::View) {
            *counts.entry(r.item).or_default() += 1;
        }
        let mut sorted: Vec<usize> = counts.values().copied().collect();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let total: usize = sorted.iter().sum();
        let top: usize = sorted[..MEDIUM.items / 100].iter().sum();
        let share = top as f64 / total as f64;
        assert!(share > 0.15, "top 1% of items get only {share} of views");
        assert!(
            (sorted[0] as f64) < 0.1 * total as f64,
            "one item takes {} of {total} views",
            sorted[0]
        );
    }

    #[test]
    fn recent_popularity_predicts_better_than_all_time() {
        let (_dir, _summary, rows) = run(&MEDIUM);
        let week = 7 * DAY_MS;
        let test_from = START_MS + SPAN_MS - week;
        let top = |from: i64| -> HashSet<u64> {
            let mut counts: HashMap<u64, usize> = HashMap::new();
            for r in rows
                .iter()
                .filter(|r| r.timestamp >= from && r.timestamp < test_from)
            {
                *counts.entry(r.item).or_default() += 1;
            }
            let mut ranked: Vec<(usize, u64)> = counts.into_iter().map(|(i, n)| (n, i)).collect();
            ranked.sort_unstable_by(|a, b| b.cmp(a));
            ranked.into_iter().take(50).map(|(_, i)| i).collect()
        };
        let (all_time, recent) = (top(START_MS), top(test_from - 3 * week));
        let hits = |set: &HashSet<u64>| {
            rows.iter()
                .filter(|r| r.timestamp >= test_from && set.contains(&r.item))
                .count()
        };
        let (all_hits, recent_hits) = (hits(&all_time), hits(&recent));
        assert!(
            recent_hits as f64 > 1.2 * all_hits as f64,
            "recent top-50 {recent_hits} vs all-time top-50 {all_hits} last-week events"
        );
    }

    #[test]
    fn timestamps_cover_the_retailrocket_period() {
        let (_dir, _summary, rows) = run(&MEDIUM);
        let (min, max) = rows.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| {
            (lo.min(r.timestamp), hi.max(r.timestamp))
        });
        // Within the period, and reaching both of its ends.
        assert!((START_MS..START_MS + DAY_MS).contains(&min), "first {min}");
        let last_day = START_MS + SPAN_MS - DAY_MS..START_MS + SPAN_MS;
        assert!(last_day.contains(&max), "last {max}");
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let spec = GenerateSpec {
            users: 20_000,
            items: 3_000,
            events: 50_000,
            seed: 11,
        };
        let read = |spec: &GenerateSpec| {
            let dir = tempfile::tempdir().unwrap();
            let s = generate(spec, dir.path(), OutputFormat::Csv, ItemLayout::Flat).unwrap();
            (
                std::fs::read(&s.events_path).unwrap(),
                std::fs::read(&s.item_files[0]).unwrap(),
            )
        };
        let a = read(&spec);
        // A different thread count must not change anything either.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| read(&spec));
        assert!(a == b, "same seed gave different files");
        let c = read(&GenerateSpec { seed: 12, ..spec });
        assert_ne!(a.0, c.0);
        assert_ne!(a.1, c.1);
    }

    #[test]
    fn parses_back_with_polars_and_parquet_matches_csv() {
        use polars::prelude::*;
        let spec = GenerateSpec {
            users: 3_000,
            items: 1_000,
            events: 10_000,
            seed: 3,
        };
        let dir = tempfile::tempdir().unwrap();
        let csv = generate(
            &spec,
            &dir.path().join("csv"),
            OutputFormat::Csv,
            ItemLayout::Flat,
        )
        .unwrap();
        let pq = generate(
            &spec,
            &dir.path().join("pq"),
            OutputFormat::Parquet,
            ItemLayout::Flat,
        )
        .unwrap();
        assert_eq!(csv.kind_counts, pq.kind_counts);
        assert!(pq.events_path.ends_with("events.parquet"));

        let from_csv = CsvReadOptions::default()
            .with_has_header(true)
            // Transaction ids are rare: look at every row to type them.
            .with_infer_schema_length(None)
            .try_into_reader_with_file_path(Some(csv.events_path.clone()))
            .unwrap()
            .finish()
            .unwrap();
        let from_pq = ParquetReader::new(File::open(&pq.events_path).unwrap())
            .finish()
            .unwrap();
        for frame in [&from_csv, &from_pq] {
            let names: Vec<&str> = frame
                .get_column_names()
                .iter()
                .map(|n| n.as_str())
                .collect();
            assert_eq!(
                names,
                ["timestamp", "visitorid", "event", "itemid", "transactionid"]
            );
            assert_eq!(frame.height(), spec.events);
            let txn = frame.column("transactionid").unwrap();
            assert_eq!(
                spec.events - txn.null_count(),
                csv.kind_counts[EventKind::Transaction as usize]
            );
        }
        assert!(from_csv.equals_missing(&from_pq), "CSV and Parquet differ");
    }

    #[test]
    fn fewer_events_than_users_gives_one_event_each() {
        let spec = GenerateSpec {
            users: 1_000,
            items: 100,
            events: 300,
            seed: 1,
        };
        let (_dir, summary, rows) = run(&spec);
        assert_eq!(rows.len(), 300);
        assert_eq!(summary.visitors, 300);
        let visitors: HashSet<u64> = rows.iter().map(|r| r.visitor).collect();
        assert_eq!(visitors.len(), 300);
        assert!(rows.iter().all(|r| r.kind == EventKind::View));

        // And the smallest possible spec still works.
        let tiny = GenerateSpec {
            users: 1,
            items: 1,
            events: 5,
            seed: 0,
        };
        let (_dir, summary, rows) = run(&tiny);
        assert_eq!((rows.len(), summary.visitors, summary.items), (5, 1, 1));
    }

    #[test]
    fn invalid_spec_is_an_error_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        for (spec, field) in [
            (GenerateSpec { users: 0, ..MEDIUM }, "users"),
            (GenerateSpec { items: 0, ..MEDIUM }, "items"),
            (
                GenerateSpec {
                    events: 0,
                    ..MEDIUM
                },
                "events",
            ),
            (
                GenerateSpec {
                    items: MAX_ITEMS + 1,
                    ..MEDIUM
                },
                "items",
            ),
        ] {
            let err = generate(&spec, dir.path(), OutputFormat::Csv, ItemLayout::Flat).unwrap_err();
            assert!(format!("{err:#}").contains(field), "{err:#}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// RetailRocket size and ten times that, timed (about a minute in all):
    /// `cargo test --release --lib generate -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn retailrocket_size_timing() {
        for scale in [1, 10] {
            let spec = GenerateSpec {
                users: 1_400_000 * scale,
                items: 235_000 * scale,
                events: 2_760_000 * scale,
                seed: 42,
            };
            let dir = tempfile::tempdir().unwrap();
            for format in [OutputFormat::Csv, OutputFormat::Parquet] {
                let started = std::time::Instant::now();
                let s = generate(&spec, dir.path(), format, ItemLayout::Flat).unwrap();
                eprintln!(
                    "{scale}x {format:?}: {:.2}s, {} events, {} visitors, {} items, kinds {:?}, {} MB",
                    started.elapsed().as_secs_f64(),
                    s.events,
                    s.visitors,
                    s.items,
                    s.kind_counts,
                    std::fs::metadata(&s.events_path).unwrap().len() >> 20
                );
            }
        }
    }
}
