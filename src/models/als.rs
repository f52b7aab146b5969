//! `als`: implicit-feedback alternating least squares (Hu, Koren & Volinsky 2008).
//!
//! Every user × item cell gets a preference `p = 1` if the user interacted with
//! the item (weight `w > 0`) and `p = 0` otherwise, with confidence
//! `c = 1 + alpha * w`. ALS minimises
//!
//! ```text
//! Σ_u,i c_ui (p_ui − x_u·y_i)² + λ (Σ_u |x_u|² + Σ_i |y_i|²)
//! ```
//!
//! by solving for all user vectors with items fixed, then the reverse. Each
//! user's solve is the linear system
//!
//! ```text
//! x_u = (YᵀY + λI + Σ_{i∈u} (c_ui − 1) y_i y_iᵀ)⁻¹ Σ_{i∈u} c_ui y_i
//! ```
//!
//! which we approximate with a few conjugate-gradient steps warm-started from the
//! previous `x_u` (Takács et al. 2011): only `YᵀY` (shared) and the user's own
//! items are touched, so an iteration costs `O(nnz·f + rows·f²·steps)`.
//!
//! Rows with at most a handful of interactions — most shoppers — are instead
//! solved exactly with the Woodbury identity, which is both cheaper and more
//! accurate than CG for them (see [`solve_small_row`]).
//!
//! Rows are solved in parallel with rayon; each row's result depends only on the
//! seed and the data, never on thread scheduling, so training is deterministic.
//! The row solve is compiled several times and the fastest version the CPU runs
//! is chosen at run time, so one binary is fast on modern CPUs and still runs on
//! old ones: portable code; the same with AVX2+FMA; and, for 16, 32, 64, 96 or
//! 128 factors, kernels written for SIMD registers (AVX2, or AVX-512 where
//! available) that keep the row's vectors in registers and take its
//! interactions four at a time (module `simd` below).

use std::sync::OnceLock;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sprs::CsMat;

use super::factors::{axpy_kernel, dot, dot_kernel, Factors};
use super::ivf::IvfIndex;
use super::mips::MipsIndex;
use super::topk::mean_recall;
use super::{Context, Filter, Recommender, Scored};
use crate::data::matrix::sum_by_item;
use crate::data::EventWeights;
use crate::rng::Rng;

/// Settings of the `als` model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlsConfig {
    /// Number of latent factors.
    pub factors: usize,
    /// Full alternations (users, then items).
    pub iterations: usize,
    /// λ, the L2 penalty on factors.
    pub regularization: f32,
    /// Confidence slope: `c = 1 + alpha * weight`.
    pub alpha: f32,
    /// Conjugate-gradient steps per row solve.
    pub cg_steps: usize,
    /// Seed of the random initial factors.
    pub seed: u64,
    /// Weight of each event kind in the interaction matrix.
    pub weights: EventWeights,
}

impl Default for AlsConfig {
    fn default() -> Self {
        AlsConfig {
            factors: 64,
            iterations: 15,
            regularization: 0.01,
            alpha: 1.0,
            cg_steps: 3,
            seed: 42,
            weights: EventWeights::default(),
        }
    }
}

/// Training failed.
#[derive(Debug, thiserror::Error)]
pub enum AlsError {
    /// Settings that cannot work.
    #[error("invalid ALS setting: {0}")]
    InvalidConfig(String),
    /// The factors blew up.
    #[error("ALS diverged at iteration {iteration}: factors became NaN or infinite; lower `alpha` or raise `regularization`")]
    Diverged {
        /// 1-based iteration at which it happened.
        iteration: usize,
    },
}

/// A trained ALS model: one factor row per user and per item.
#[derive(Debug, Clone)]
pub struct Als {
    /// User factors, `users × factors`.
    pub user_factors: Factors,
    /// Item factors, `items × factors`.
    pub item_factors: Factors,
    /// Settings it was trained with: folding a shopper in weighs their events alike.
    pub config: AlsConfig,
    /// Dense user → row of `user_factors`, when only some users' rows are
    /// kept ([`Als::keep_users`]); `None`: row `u` is user `u`.
    user_rows: Option<Vec<u32>>,
    unit_items: OnceLock<Factors>,
    /// `YᵀY + λI` in f64, the part of every fold-in system shared by all shoppers.
    base: OnceLock<Vec<f64>>,
    index: OnceLock<AlsIndex>,
    neighbours: OnceLock<Neighbours>,
}

/// Every item's nearest neighbours by cosine, computed once from the cosine
/// index ([`Als::compute_neighbours`]) and kept in the bundle, so that no
/// request pays for an item's first similar-items search.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    /// Neighbours kept per item.
    pub width: usize,
    /// Item `i`'s neighbours are `items[i * width..(i + 1) * width]`, best
    /// first; [`Neighbours::NONE`] pads a short row.
    pub items: Vec<u32>,
    /// Their cosines, alongside.
    pub scores: Vec<f32>,
}

impl Neighbours {
    /// Padding of a row with fewer than `width` neighbours.
    pub const NONE: u32 = u32::MAX;

    /// Item `item`'s first `n` neighbours (`None` beyond the table).
    pub fn of(&self, item: u32, n: usize) -> Option<Vec<Scored>> {
        let start = item as usize * self.width;
        let row = self.items.get(start..start + self.width)?;
        Some(
            row.iter()
                .zip(&self.scores[start..start + self.width])
                .take(n)
                .take_while(|(&i, _)| i != Neighbours::NONE)
                .map(|(&i, &s)| (i, s))
                .collect(),
        )
    }
}

impl PartialEq for Als {
    fn eq(&self, other: &Self) -> bool {
        self.user_factors == other.user_factors && self.item_factors == other.item_factors
    }
}

/// Approximate search over the item factors, for answering one shopper at a
/// time without a pass over the whole catalogue.
#[derive(Debug, Clone)]
pub struct AlsIndex {
    /// `L` of `YᵀY + λI = L Lᵀ` (lower triangle, f64): queries are searched as `Lᵀ x`.
    whiten: Vec<f64>,
    /// Maximum inner product over the whitened items `L⁻¹ y` (see [`MipsIndex`]).
    mips: MipsIndex,
    /// Cosine similarity between items.
    cosine: IvfIndex,
    /// How the candidate index was tuned: (share of clusters probed, recall) per step.
    pub tuning: Vec<(f64, f64)>,
    /// Each item's nearest neighbours, computed once when first asked for.
    neighbours: Vec<OnceLock<Box<[Scored]>>>,
}

/// Neighbours cached per item by the index: the `similar` candidates of two_stage
/// and the service's `/similar` ask for at most this many.
pub const CACHED_NEIGHBOURS: usize = 50;

/// Seed of the cosine index's k-means: the stored neighbour table and the
/// index built at load agree.
const COSINE_SEED: u64 = 42;

/// The candidate index is tuned to find this share of the exact top
/// [`MIPS_RECALL_AT`] by inner product.
pub const MIPS_RECALL_TARGET: f64 = 0.96;

/// List length the candidate index is tuned and measured at.
pub const MIPS_RECALL_AT: usize = 50;

/// Trained users the candidate index is tuned on.
const MIPS_TUNING_SAMPLE: usize = 300;

impl Als {
    /// A model from factor tables (e.g. read back from a bundle) and the
    /// settings they were trained with.
    pub fn from_factors(user_factors: Factors, item_factors: Factors, config: AlsConfig) -> Als {
        Als {
            user_factors,
            item_factors,
            config,
            user_rows: None,
            unit_items: OnceLock::new(),
            base: OnceLock::new(),
            index: OnceLock::new(),
            neighbours: OnceLock::new(),
        }
    }

    /// Every item's `width` nearest neighbours by cosine, from a cosine index
    /// like the one [`Als::build_index`] builds, with the members of each
    /// cluster searched together ([`IvfIndex::neighbours_of_all`]); with
    /// `only`, the items `i` with `only[i]` get theirs and the others none.
    /// `done(m)` is called as `m` more items are finished.
    pub fn compute_neighbours(
        &self,
        width: usize,
        only: Option<&[bool]>,
        done: impl Fn(usize) + Sync,
    ) -> Neighbours {
        // The cosine index of [`Als::build_index`] when built (same seed, so
        // the same clusters), else one built for this.
        let built;
        let index = match self.index() {
            Some(index) => &index.cosine,
            None => {
                built = IvfIndex::build(&self.item_factors, COSINE_SEED);
                &built
            }
        };
        let rows = index.neighbours_of_all(width, only, done);
        let mut table = Neighbours {
            width,
            items: vec![Neighbours::NONE; rows.len() * width],
            scores: vec![0.0; rows.len() * width],
        };
        for (i, row) in rows.iter().enumerate() {
            for (j, &(item, score)) in row.iter().enumerate() {
                table.items[i * width + j] = item;
                table.scores[i * width + j] = score;
            }
        }
        table
    }

    /// Compute the items' [`CACHED_NEIGHBOURS`] nearest neighbours
    /// ([`Als::compute_neighbours`]) and answer similar items from them from
    /// now on. This table is what a bundle's model serves from, so a model
    /// fitted only to build training rows uses it too, or its candidates
    /// would differ from the served ones (and an exact search over every
    /// item is quadratic in the catalogue). Such a model is asked about a
    /// few items only: `only` (see [`Als::compute_neighbours`]) limits the
    /// table to those, and every other item then has no similar items.
    pub fn keep_neighbours(&self, only: Option<&[bool]>, done: impl Fn(usize) + Sync) {
        let table = self.compute_neighbours(CACHED_NEIGHBOURS, only, done);
        // A second table for the same model would be the same table.
        let _ = self.neighbours.set(table);
    }

    /// Answer similar items from `table` (checked against the model's items).
    pub fn set_neighbours(&self, table: Neighbours) -> Result<(), String> {
        let rows = self.item_factors.rows;
        if table.items.len() != rows * table.width
            || table.scores.len() != table.items.len()
            || table
                .items
                .iter()
                .any(|&i| i != Neighbours::NONE && i as usize >= rows)
        {
            return Err("the neighbour table does not match the item factors".into());
        }
        // A second table for the same model would be the same table.
        let _ = self.neighbours.set(table);
        Ok(())
    }

    /// The stored neighbour table, if the model has one.
    pub fn neighbours(&self) -> Option<&Neighbours> {
        self.neighbours.get()
    }

    /// Train on the users × items weight `matrix` (see
    /// [`interaction_matrix`](crate::data::interaction_matrix)), calling
    /// `after_iteration(i, &trainer)` after each iteration.
    pub fn fit(
        matrix: &CsMat<f32>,
        config: &AlsConfig,
        mut after_iteration: impl FnMut(usize, &AlsTrainer),
    ) -> Result<Als, AlsError> {
        let mut trainer = AlsTrainer::new(matrix, config)?;
        for i in 1..=config.iterations {
            trainer.iterate()?;
            after_iteration(i, &trainer);
        }
        Ok(trainer.into_model())
    }

    /// Build the search indexes (once; later calls return the same) so that
    /// single shoppers and similar items are answered from them instead of
    /// exact passes over the catalogue: a [`MipsIndex`] for a shopper's top
    /// items by inner product, a cosine [`IvfIndex`] for similar items.
    ///
    /// How many clusters a query must probe depends on the factors, so it is
    /// tuned here: the probes double until the index finds
    /// [`MIPS_RECALL_TARGET`] of the exact top [`MIPS_RECALL_AT`] for a sample
    /// of the trained users (or every cluster is probed, which is exact).
    pub fn build_index(&self) -> &AlsIndex {
        self.index.get_or_init(|| {
            let items = &self.item_factors;
            let f = items.dim;
            // B = YᵀY + λI = L Lᵀ; items become z = L⁻¹ y and queries Lᵀ x, so
            // that (Lᵀ x)·z = x·y while a shopper's query, ≈ Σ c_i z_i for
            // their items i, lies among the items' own vectors.
            let mut l = self.base().clone();
            cholesky(&mut l, f);
            let mut whitened = Factors::zeros(items.rows, f);
            whitened
                .data
                .par_chunks_mut(f)
                .enumerate()
                .for_each(|(i, out)| {
                    let mut z: Vec<f64> = items.row(i).iter().map(|&v| f64::from(v)).collect();
                    forward_substitute(&l, &mut z, f);
                    out.iter_mut().zip(z).for_each(|(o, v)| *o = v as f32);
                });
            let mut index = AlsIndex {
                whiten: l,
                mips: MipsIndex::build(&whitened, 43),
                cosine: IvfIndex::build(items, COSINE_SEED),
                neighbours: (0..items.rows).map(|_| OnceLock::new()).collect(),
                tuning: Vec::new(),
            };
            let sample = crate::rng::Rng::new(17).sample_sorted(
                self.user_factors.rows,
                MIPS_TUNING_SAMPLE.min(self.user_factors.rows),
            );
            let exact = self
                .user_factors
                .top_n_against(&sample, items, MIPS_RECALL_AT);
            loop {
                let recall = index.recall_on(self, &sample, &exact);
                index.tuning.push((index.mips.probe_share(), recall));
                if recall >= MIPS_RECALL_TARGET || !index.mips.widen() {
                    break;
                }
            }
            index
        })
    }

    /// `YᵀY + λI` in f64, computed once.
    fn base(&self) -> &Vec<f64> {
        self.base.get_or_init(|| {
            let gram = regularized_gram(&self.item_factors, self.config.regularization);
            gram.into_iter().map(f64::from).collect()
        })
    }

    /// Keep the trained rows of the users `keep` marks only; the others are
    /// folded in from their events when asked for, as shoppers active since
    /// training are. A label window's model answers its label users alone,
    /// and at ten times RetailRocket the other rows are 3 GB.
    pub fn keep_users(&mut self, keep: &[bool]) {
        let dim = self.user_factors.dim;
        let mut rows = vec![u32::MAX; self.user_factors.rows];
        let mut data = Vec::with_capacity(keep.iter().filter(|&&k| k).count() * dim);
        for (u, row) in rows.iter_mut().enumerate() {
            if keep.get(u).copied().unwrap_or(false) {
                *row = (data.len() / dim.max(1)) as u32;
                data.extend_from_slice(self.user_factors.row(u));
            }
        }
        self.user_factors = Factors {
            rows: data.len() / dim.max(1),
            dim,
            data,
        };
        self.user_rows = Some(rows);
    }

    /// The row of `user_factors` holding dense user `u`'s trained vector.
    fn user_row(&self, u: u32) -> Option<usize> {
        match &self.user_rows {
            None => ((u as usize) < self.user_factors.rows).then_some(u as usize),
            Some(rows) => rows
                .get(u as usize)
                .filter(|&&r| r != u32::MAX)
                .map(|&r| r as usize),
        }
    }

    /// The indexes, if [`Als::build_index`] has built them.
    pub fn index(&self) -> Option<&AlsIndex> {
        self.index.get()
    }

    /// The shopper's factor vector: their trained row when nothing happened
    /// since training, else folded in from all their events; `None` when there
    /// is nothing to go on.
    pub fn user_vector(&self, ctx: &Context) -> Option<Vec<f32>> {
        match ctx.user.and_then(|u| self.user_row(u)) {
            Some(row) if !ctx.has_new() => Some(self.user_factors.row(row).to_vec()),
            _ if ctx.is_empty() => None,
            _ => {
                let weights = &self.config.weights;
                let cells = sum_by_item(
                    ctx.events()
                        .filter(|e| (e.item as usize) < self.item_factors.rows)
                        .map(|e| (e.item, weights.of(e.kind)))
                        .collect(),
                );
                (!cells.is_empty()).then(|| self.fold_in(&cells))
            }
        }
    }

    /// The factor vector of a shopper with interactions `cells` (item, summed
    /// weight), solved exactly against the trained item factors — the user half
    /// of an ALS iteration for one row (implicit's `recalculate_user`):
    ///
    /// ```text
    /// x = (YᵀY + λI + Σ_i (c_i − 1) y_i y_iᵀ)⁻¹ Σ_i c_i y_i,   c_i = 1 + α w_i
    /// ```
    ///
    /// `YᵀY + λI` is computed once per model; each call adds the shopper's
    /// rank-one terms and solves by Cholesky in f64: `O(n f² + f³/6)`.
    pub fn fold_in(&self, cells: &[(u32, f32)]) -> Vec<f32> {
        let f = self.item_factors.dim;
        let mut a = self.base().clone();
        let mut b = vec![0.0f64; f];
        let alpha = f64::from(self.config.alpha);
        for &(item, w) in cells {
            let y = self.item_factors.row(item as usize);
            let c = 1.0 + alpha * f64::from(w);
            for (bi, &yi) in b.iter_mut().zip(y) {
                *bi += c * f64::from(yi);
            }
            let extra = c - 1.0;
            if extra != 0.0 {
                // Lower triangle only: Cholesky reads no more.
                for r in 0..f {
                    let yr = extra * f64::from(y[r]);
                    let row = &mut a[r * f..r * f + r + 1];
                    for (ac, &yc) in row.iter_mut().zip(&y[..=r]) {
                        *ac += yr * f64::from(yc);
                    }
                }
            }
        }
        cholesky_solve(&mut a, &mut b, f);
        b.into_iter().map(|v| v as f32).collect()
    }

    /// The `n` items of largest `query · y`, allowed by `filter`: from the
    /// index when built, else by an exact pass.
    pub fn top_items(&self, query: &[f32], n: usize, filter: &Filter) -> Vec<Scored> {
        match self.index() {
            Some(index) => index.search(query, n, |id| filter.allows(id)),
            None => {
                let q = Factors {
                    rows: 1,
                    dim: query.len(),
                    data: query.to_vec(),
                };
                q.top_n_where(&self.item_factors, n, |_, item| filter.allows(item))
                    .pop()
                    .unwrap_or_default()
            }
        }
    }

    /// The `n` items most similar to `item` by cosine of their factors, itself
    /// excluded: from the index when built (cached per item), else exact.
    pub fn similar_items(&self, item: u32, n: usize) -> Vec<Scored> {
        self.similar_items_batch(&[item], n)
            .pop()
            .unwrap_or_default()
    }

    /// [`Als::similar_items`] for many items at once (one matrix product per
    /// batch without an index); an item unknown to the model gets an empty list.
    pub fn similar_items_batch(&self, items: &[u32], n: usize) -> Vec<Vec<Scored>> {
        if let Some(table) = self.neighbours().filter(|t| n <= t.width) {
            return items
                .iter()
                .map(|&item| table.of(item, n).unwrap_or_default())
                .collect();
        }
        if let Some(index) = self.index() {
            return items
                .iter()
                .map(|&item| {
                    let Some(slot) = index.neighbours.get(item as usize) else {
                        return Vec::new();
                    };
                    if n > CACHED_NEIGHBOURS {
                        return index.cosine.similar_to_row(item, n);
                    }
                    let cached = slot.get_or_init(|| {
                        index
                            .cosine
                            .similar_to_row(item, CACHED_NEIGHBOURS)
                            .into_boxed_slice()
                    });
                    cached.iter().take(n).copied().collect()
                })
                .collect();
        }
        self.exact_similar_batch(items, n)
    }

    /// [`Als::similar_items_batch`] by an exact pass over every item, index or not.
    pub fn exact_similar_batch(&self, items: &[u32], n: usize) -> Vec<Vec<Scored>> {
        let unit = self
            .unit_items
            .get_or_init(|| self.item_factors.normalized());
        let known: Vec<usize> = items
            .iter()
            .map(|&i| i as usize)
            .filter(|&i| i < unit.rows)
            .collect();
        // One extra so that dropping the item itself still leaves n.
        let mut lists = unit.top_n_against(&known, unit, n + 1).into_iter();
        items
            .iter()
            .map(|&item| {
                if item as usize >= unit.rows {
                    return Vec::new();
                }
                let mut list = lists.next().unwrap_or_default();
                list.retain(|&(i, _)| i != item);
                list.truncate(n);
                list
            })
            .collect()
    }
}

impl AlsIndex {
    /// The `n` items of largest `query · y` among those `keep` allows, with
    /// their true inner products.
    fn search(&self, query: &[f32], n: usize, keep: impl Fn(u32) -> bool) -> Vec<Scored> {
        let f = query.len();
        let l = &self.whiten;
        // Lᵀ x: entry i is Σ_{k ≥ i} L[k][i] x_k.
        let q: Vec<f32> = (0..f)
            .map(|i| {
                (i..f)
                    .map(|k| l[k * f + i] * f64::from(query[k]))
                    .sum::<f64>() as f32
            })
            .collect();
        self.mips.search(&q, n, keep)
    }

    /// Mean share of `exact` (each sampled user's exact top list) the index finds.
    fn recall_on(&self, als: &Als, users: &[usize], exact: &[Vec<Scored>]) -> f64 {
        let found: Vec<Vec<Scored>> = users
            .par_iter()
            .zip(exact.par_iter())
            .map(|(&u, truth)| self.search(als.user_factors.row(u), truth.len(), |_| true))
            .collect();
        mean_recall(exact, &found)
    }

    /// Mean share of the exact top `n` by inner product that the index finds,
    /// over up to `sample` users of `als` (the model it indexes), drawn with `seed`.
    pub fn mips_recall(&self, als: &Als, n: usize, sample: usize, seed: u64) -> f64 {
        let users = &als.user_factors;
        if users.rows == 0 || als.item_factors.rows == 0 {
            return 1.0;
        }
        let picked = crate::rng::Rng::new(seed).sample_sorted(users.rows, sample.min(users.rows));
        let exact = users.top_n_against(&picked, &als.item_factors, n);
        self.recall_on(als, &picked, &exact)
    }

    /// Share of the candidate index's clusters a query probes (at most).
    pub fn mips_probe_share(&self) -> f64 {
        self.mips.probe_share()
    }

    /// Mean share of the exact 10 nearest neighbours the similar items served
    /// (the stored table, else the cosine index) hold, over up to `sample`
    /// items drawn with `seed`.
    pub fn similar_recall(&self, als: &Als, sample: usize, seed: u64) -> f64 {
        let rows = als.item_factors.rows;
        if rows < 2 {
            return 1.0;
        }
        let picked: Vec<u32> = crate::rng::Rng::new(seed)
            .sample_sorted(rows, sample.min(rows))
            .into_iter()
            .map(|i| i as u32)
            .collect();
        let exact = als.exact_similar_batch(&picked, 10);
        let served = als.similar_items_batch(&picked, 10);
        mean_recall(&exact, &served)
    }
}

impl Recommender for Als {
    fn name(&self) -> &'static str {
        "als"
    }

    fn recommend(&self, ctx: &Context, n: usize, filter: &Filter) -> Vec<Scored> {
        match self.user_vector(ctx) {
            Some(x) => self.top_items(&x, n, filter),
            None => Vec::new(),
        }
    }

    fn recommend_batch(&self, ctxs: &[Context], n: usize, filters: &[Filter]) -> Vec<Vec<Scored>> {
        assert_eq!(ctxs.len(), filters.len(), "one filter per context");
        let vectors: Vec<Option<Vec<f32>>> = ctxs.par_iter().map(|c| self.user_vector(c)).collect();
        if self.index().is_some() {
            return vectors
                .par_iter()
                .zip(filters)
                .map(|(x, filter)| {
                    x.as_ref()
                        .map_or_else(Vec::new, |x| self.top_items(x, n, filter))
                })
                .collect();
        }
        // No index: one matrix product per batch of shoppers.
        let f = self.item_factors.dim;
        let asked: Vec<usize> = (0..ctxs.len()).filter(|&q| vectors[q].is_some()).collect();
        let mut queries = Factors::zeros(asked.len(), f);
        for (row, &q) in asked.iter().enumerate() {
            queries.data[row * f..(row + 1) * f]
                .copy_from_slice(vectors[q].as_deref().expect("asked"));
        }
        let mut lists = queries
            .top_n_where(&self.item_factors, n, |row, item| {
                filters[asked[row]].allows(item)
            })
            .into_iter();
        vectors
            .iter()
            .map(|x| match x {
                Some(_) => lists.next().unwrap_or_default(),
                None => Vec::new(),
            })
            .collect()
    }
}

/// Factor a symmetric positive-definite `f × f` matrix as `a = L Lᵀ` in
/// place: only its lower triangle is read, and it becomes `L`.
fn cholesky(a: &mut [f64], f: usize) {
    for j in 0..f {
        let mut d = a[j * f + j];
        for k in 0..j {
            d -= a[j * f + k] * a[j * f + k];
        }
        // λ > 0 keeps the system positive definite; guard λ = 0 on degenerate factors.
        let d = d.max(1e-12).sqrt();
        a[j * f + j] = d;
        for i in j + 1..f {
            let (row_i, row_j) = (i * f, j * f);
            let mut s = a[row_i + j];
            for k in 0..j {
                s -= a[row_i + k] * a[row_j + k];
            }
            a[row_i + j] = s / d;
        }
    }
}

/// `b ← L⁻¹ b` for the lower-triangular `L` of [`cholesky`].
fn forward_substitute(l: &[f64], b: &mut [f64], f: usize) {
    for i in 0..f {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * f + k] * b[k];
        }
        b[i] = s / l[i * f + i];
    }
}

/// Solve `a x = b` in place (`b` becomes `x`) for a symmetric positive-definite
/// `f × f` matrix of which only the lower triangle is read, by Cholesky
/// factorisation `a = L Lᵀ` (overwriting that triangle with `L`).
fn cholesky_solve(a: &mut [f64], b: &mut [f64], f: usize) {
    cholesky(a, f);
    forward_substitute(a, b, f);
    for i in (0..f).rev() {
        let mut s = b[i];
        for k in i + 1..f {
            s -= a[k * f + i] * b[k];
        }
        b[i] = s / a[i * f + i];
    }
}

/// ALS training state, one [`AlsTrainer::iterate`] at a time (benchmarks time
/// iterations; tests watch the loss fall).
pub struct AlsTrainer {
    user_items: CsMat<f32>,
    item_users: CsMat<f32>,
    config: AlsConfig,
    users: Factors,
    items: Factors,
    done: usize,
}

impl AlsTrainer {
    /// Prepare training on `matrix` (users × items weights) with random initial factors.
    pub fn new(matrix: &CsMat<f32>, config: &AlsConfig) -> Result<AlsTrainer, AlsError> {
        if config.factors == 0 {
            return Err(AlsError::InvalidConfig(
                "`factors` must be at least 1".into(),
            ));
        }
        if config.cg_steps == 0 {
            return Err(AlsError::InvalidConfig(
                "`cg_steps` must be at least 1".into(),
            ));
        }
        let non_negative = |v: f32| v >= 0.0; // false for NaN too
        if !non_negative(config.regularization) || !non_negative(config.alpha) {
            return Err(AlsError::InvalidConfig(
                "`regularization` and `alpha` must be zero or positive".into(),
            ));
        }
        let user_items = if matrix.is_csr() {
            matrix.clone()
        } else {
            matrix.to_csr()
        };
        let item_users = user_items.transpose_view().to_csr();
        let (n_users, n_items) = user_items.shape();
        Ok(AlsTrainer {
            users: random_factors(n_users, config.factors, config.seed, 0),
            items: random_factors(n_items, config.factors, config.seed, 1),
            user_items,
            item_users,
            config: config.clone(),
            done: 0,
        })
    }

    /// One full alternation: all users, then all items.
    pub fn iterate(&mut self) -> Result<(), AlsError> {
        solve_rows(&mut self.users, &self.items, &self.user_items, &self.config);
        solve_rows(&mut self.items, &self.users, &self.item_users, &self.config);
        self.done += 1;
        if self.users.has_non_finite() || self.items.has_non_finite() {
            return Err(AlsError::Diverged {
                iteration: self.done,
            });
        }
        Ok(())
    }

    /// The objective per matrix cell (weighted squared error plus penalty).
    pub fn loss(&self) -> f64 {
        let cfg = &self.config;
        let yty = self.items.gram();
        let f = cfg.factors;
        let per_user: f64 = (0..self.users.rows)
            .into_par_iter()
            .map(|u| {
                let x = self.users.row(u);
                // Σ_i (x·y_i)² over all items = xᵀ (YᵀY) x.
                let mut total = 0.0f64;
                for a in 0..f {
                    total += f64::from(x[a])
                        * f64::from(dot_kernel::<false>(&yty[a * f..(a + 1) * f], x));
                }
                // Observed cells: c (1 − s)² replaces the s² counted above.
                let row = self.user_items.outer_view(u).expect("row in range");
                for (i, &w) in row.iter() {
                    let s = f64::from(dot_kernel::<false>(x, self.items.row(i)));
                    let c = 1.0 + f64::from(cfg.alpha) * f64::from(w);
                    total += c * (1.0 - s) * (1.0 - s) - s * s;
                }
                total + f64::from(cfg.regularization) * f64::from(dot_kernel::<false>(x, x))
            })
            .sum();
        let item_penalty: f64 = (0..self.items.rows)
            .into_par_iter()
            .map(|i| {
                let y = self.items.row(i);
                f64::from(cfg.regularization) * f64::from(dot_kernel::<false>(y, y))
            })
            .sum();
        let cells = (self.users.rows as f64 * self.items.rows as f64).max(1.0);
        (per_user + item_penalty) / cells
    }

    /// The current user factors.
    pub fn user_factors(&self) -> &Factors {
        &self.users
    }

    /// The current item factors.
    pub fn item_factors(&self) -> &Factors {
        &self.items
    }

    /// Finish training.
    pub fn into_model(self) -> Als {
        Als::from_factors(self.users, self.items, self.config)
    }
}

/// The ALS objective per matrix cell, the same value as [`AlsTrainer::loss`]
/// (the obviously-correct reference, one f×f quadratic form per user) in a
/// fraction of its time, for recording the loss after every iteration.
///
/// ```text
/// Σ_u,i (x_u·y_i)² = tr((XᵀX)(YᵀY))                  two Gram matrices, one sgemm each
/// loss = [tr(XᵀX·YᵀY) + Σ_observed (c (1 − s)² − s²) + λ (tr XᵀX + tr YᵀY)] / (users · items)
/// ```
///
/// where `s = x_u·y_i` and `c = 1 + alpha·w`: every cell counted as if its
/// preference were 0, then the observed cells corrected. `user_items` is the
/// users × items weight matrix in CSR form.
pub fn fast_loss(trainer: &AlsTrainer, user_items: &CsMat<f32>, config: &AlsConfig) -> f64 {
    let (users, items) = (trainer.user_factors(), trainer.item_factors());
    let (gx, gy) = (users.gram(), items.gram());
    let f = users.dim;
    let all_cells: f64 = gx
        .iter()
        .zip(&gy)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum();
    let trace = |g: &[f32]| (0..f).map(|a| f64::from(g[a * f + a])).sum::<f64>();
    let alpha = f64::from(config.alpha);
    let observed: f64 = (0..users.rows)
        .into_par_iter()
        .map(|u| {
            let x = users.row(u);
            let row = user_items.outer_view(u).expect("row in range");
            row.iter()
                .map(|(i, &w)| {
                    let s = f64::from(dot(x, items.row(i)));
                    let c = 1.0 + alpha * f64::from(w);
                    c * (1.0 - s) * (1.0 - s) - s * s
                })
                .sum::<f64>()
        })
        .sum();
    let penalty = f64::from(config.regularization) * (trace(&gx) + trace(&gy));
    let cells = (users.rows as f64 * items.rows as f64).max(1.0);
    (all_cells + observed + penalty) / cells
}

/// Small uniform values, each row from its own seeded stream (order-independent).
fn random_factors(rows: usize, dim: usize, seed: u64, side: u64) -> Factors {
    let mut f = Factors::zeros(rows, dim);
    f.data.par_chunks_mut(dim).enumerate().for_each(|(r, row)| {
        let mut rng = Rng::for_stream(seed ^ (side << 63), r as u64);
        row.iter_mut().for_each(|v| *v = rng.next_f32() * 0.01);
    });
    f
}

/// Solve every row of `target` against the fixed side `fixed`, where row `r`
/// of `matrix` holds target row `r`'s weights over `fixed`'s rows.
fn solve_rows(target: &mut Factors, fixed: &Factors, matrix: &CsMat<f32>, config: &AlsConfig) {
    let f = target.dim;
    let yty = regularized_gram(fixed, config.regularization);
    let exact = exact_solver(&yty, fixed, matrix);
    let kernel = Kernel::best(f);
    target
        .data
        .par_chunks_mut(f)
        .with_min_len(256)
        .enumerate()
        .for_each_init(
            || (vec![0.0f32; 3 * f], Vec::new()),
            |(scratch, ys), (r, x)| {
                let row = matrix.outer_view(r).expect("row in range");
                let cells = (row.indices(), row.data());
                if let Some(z) = &exact {
                    if (1..=SMALL_ROW).contains(&cells.0.len()) {
                        solve_small_row(x, fixed, z, cells, config.alpha);
                        return;
                    }
                }
                // The fixed vectors are read at random: ask for the next row's
                // while this one is solved, so their cache misses overlap with
                // this row's arithmetic.
                let next = matrix.outer_view(r + 1);
                let mut ahead = Prefetch::new(fixed, next.as_ref().map_or(&[], |n| n.indices()));
                let system = RowSystem {
                    a_base: &yty,
                    fixed,
                    items: cells.0,
                    weights: cells.1,
                    config,
                };
                kernel.solve_row(x, &system, ys, scratch, &mut ahead);
            },
        );
}

/// The next row's fixed vectors, requested from memory a few at a time while
/// the current row is solved.
///
/// Asking for a long row's vectors all at once (an item's hundreds of users)
/// stalls the core until the cache has room for that many misses; spread over
/// the current row's work they overlap with arithmetic instead. They go to the
/// L2 cache only: a long row's vectors would push the current row's out of L1.
struct Prefetch<'a> {
    table: &'a Factors,
    rows: &'a [usize],
    done: usize,
}

impl<'a> Prefetch<'a> {
    /// Rows asked for per [`Prefetch::step`]: two per block of four
    /// interactions has every request out by the middle of the solve.
    const PER_STEP: usize = 2;

    fn new(table: &'a Factors, rows: &'a [usize]) -> Prefetch<'a> {
        Prefetch {
            table,
            rows,
            done: 0,
        }
    }

    /// Ask for the next few rows.
    #[inline(always)]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn step(&mut self) {
        let end = (self.done + Self::PER_STEP).min(self.rows.len());
        self.request(end);
    }

    /// Ask for every row not asked for yet.
    fn finish(&mut self) {
        self.request(self.rows.len());
    }

    #[inline(always)]
    fn request(&mut self, end: usize) {
        #[cfg(target_arch = "x86_64")]
        for &r in &self.rows[self.done..end] {
            // One hint per 64-byte cache line (16 floats).
            for line in self.table.row(r).chunks(16) {
                // SAFETY: prefetching is a hint and never faults; the pointer is in bounds.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(
                        line.as_ptr().cast::<i8>(),
                    )
                };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = self.table;
        self.done = self.done.max(end);
    }
}

/// Copy rows `rows` of `table` one after another into `out`.
fn gather_rows(table: &Factors, rows: &[usize], out: &mut Vec<f32>) {
    out.clear();
    for &r in rows {
        out.extend_from_slice(table.row(r));
    }
}

/// `YᵀY + λI`, the part of every row's system shared by all rows.
fn regularized_gram(fixed: &Factors, regularization: f32) -> Vec<f32> {
    let f = fixed.dim;
    let mut gram = fixed.gram();
    for d in 0..f {
        gram[d * f + d] += regularization;
    }
    gram
}

/// Rows with at most this many interactions are solved exactly (see [`solve_small_row`]).
const SMALL_ROW: usize = 8;

/// `Z = Y B⁻¹` with `B = YᵀY + λI`, when the exact small-row solve pays for it:
/// computing `Z` costs one `f × f` product per fixed row, so it is worth it only
/// when the small rows are many (see the comment inside).
fn exact_solver(b: &[f32], fixed: &Factors, matrix: &CsMat<f32>) -> Option<Factors> {
    let small_cells: usize = matrix
        .outer_iterator()
        .map(|row| row.nnz())
        .filter(|n| (1..=SMALL_ROW).contains(n))
        .sum();
    // Z costs one f × f product per fixed row; each small-row cell then saves
    // about that much CG work, but reads Z at random (memory-bound), so ask for
    // at least as many small-row cells as fixed rows.
    if small_cells < fixed.rows {
        return None;
    }
    let f = fixed.dim;
    let b_inv = Factors {
        rows: f,
        dim: f,
        data: invert_spd(b, f)?,
    };
    // B⁻¹ is symmetric, so row i of Y B⁻¹ is B⁻¹ y_i: score Y against B⁻¹'s rows.
    let all: Vec<usize> = (0..fixed.rows).collect();
    Some(Factors {
        rows: fixed.rows,
        dim: f,
        data: fixed.scores_against(&all, &b_inv),
    })
}

/// The inverse of a symmetric positive-definite `f × f` matrix, by Gauss–Jordan
/// elimination in f64; `None` if it is numerically singular.
fn invert_spd(a: &[f32], f: usize) -> Option<Vec<f32>> {
    let mut m: Vec<f64> = a.iter().map(|&v| f64::from(v)).collect();
    let mut inv = vec![0.0f64; f * f];
    for d in 0..f {
        inv[d * f + d] = 1.0;
    }
    for col in 0..f {
        let pivot =
            (col..f).max_by(|&p, &q| m[p * f + col].abs().total_cmp(&m[q * f + col].abs()))?;
        if m[pivot * f + col].abs() < 1e-12 {
            return None;
        }
        for k in 0..f {
            m.swap(col * f + k, pivot * f + k);
            inv.swap(col * f + k, pivot * f + k);
        }
        let scale = 1.0 / m[col * f + col];
        for k in 0..f {
            m[col * f + k] *= scale;
            inv[col * f + k] *= scale;
        }
        for row in 0..f {
            if row != col {
                let factor = m[row * f + col];
                if factor != 0.0 {
                    for k in 0..f {
                        m[row * f + k] -= factor * m[col * f + k];
                        inv[row * f + k] -= factor * inv[col * f + k];
                    }
                }
            }
        }
    }
    Some(inv.into_iter().map(|v| v as f32).collect())
}

/// Exact solve of a row with few interactions by the Woodbury identity.
///
/// With `B = YᵀY + λI`, `U = [y_i]`, `D = diag(α w_i)` and `c_i = 1 + α w_i`,
/// the system is `(B + U D Uᵀ) x = U c`. Given `z_i = B⁻¹ y_i` (rows of `z`) and
/// `G = Uᵀ B⁻¹ U` (`G_ij = y_i·z_j`):
///
/// ```text
/// x = Σ c_i z_i − Σ t_j z_j,   where (I + D G) t = D G c
/// ```
///
/// That is `O(n² f)` for `n` interactions instead of CG's `O(steps · f²)`, and
/// exact rather than approximate. Most shoppers have one or two interactions.
fn solve_small_row(
    x: &mut [f32],
    fixed: &Factors,
    z: &Factors,
    (items, weights): (&[usize], &[f32]),
    alpha: f32,
) {
    let n = items.len();
    debug_assert!(n <= SMALL_ROW);
    let mut g = [0.0f64; SMALL_ROW * SMALL_ROW];
    for i in 0..n {
        for j in 0..n {
            g[i * n + j] = f64::from(dot_kernel::<false>(fixed.row(items[i]), z.row(items[j])));
        }
    }
    let mut d = [0.0f64; SMALL_ROW];
    let mut c = [0.0f64; SMALL_ROW];
    for (i, &w) in weights.iter().enumerate() {
        d[i] = f64::from(alpha * w);
        c[i] = 1.0 + d[i];
    }
    // M = I + D G, rhs = D G c.
    let mut m = [0.0f64; SMALL_ROW * SMALL_ROW];
    let mut t = [0.0f64; SMALL_ROW];
    for i in 0..n {
        let gc: f64 = (0..n).map(|j| g[i * n + j] * c[j]).sum();
        t[i] = d[i] * gc;
        for j in 0..n {
            m[i * n + j] = d[i] * g[i * n + j] + if i == j { 1.0 } else { 0.0 };
        }
    }
    solve_dense(&mut m[..n * n], &mut t[..n], n);
    x.iter_mut().for_each(|v| *v = 0.0);
    for i in 0..n {
        axpy_kernel::<false>((c[i] - t[i]) as f32, z.row(items[i]), x);
    }
}

/// Solve `m t = rhs` in place (`rhs` becomes `t`) by Gaussian elimination with
/// partial pivoting; `m` is `n × n`, row-major. `I + D G` is well conditioned
/// (D ≥ 0, G positive semi-definite), so no singularity check is needed.
fn solve_dense(m: &mut [f64], rhs: &mut [f64], n: usize) {
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&p, &q| m[p * n + col].abs().total_cmp(&m[q * n + col].abs()))
            .expect("non-empty range");
        for k in 0..n {
            m.swap(col * n + k, pivot * n + k);
        }
        rhs.swap(col, pivot);
        for row in col + 1..n {
            let factor = m[row * n + col] / m[col * n + col];
            for k in col..n {
                m[row * n + k] -= factor * m[col * n + k];
            }
            rhs[row] -= factor * rhs[col];
        }
    }
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| m[row * n + k] * rhs[k]).sum();
        rhs[row] = (rhs[row] - s) / m[row * n + row];
    }
}

/// Which compiled version of the row solver runs, chosen once per
/// [`solve_rows`] from the CPU and the number of factors. Only
/// [`Kernel::best`] and [`Kernel::available`] make the SIMD variants, after
/// checking that the CPU has the instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// [`solve_row`] as portable code.
    Portable,
    /// [`solve_row`] compiled with AVX2 and FMA, for factor counts the
    /// [`simd`] kernels do not cover.
    #[cfg(target_arch = "x86_64")]
    Fma,
    /// [`simd`] on 8-float AVX2 registers.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// [`simd`] on 16-float AVX-512 registers.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kernel {
    /// The fastest kernel this CPU runs for `f` factors.
    fn best(f: usize) -> Kernel {
        Kernel::available(f).pop().unwrap_or(Kernel::Portable)
    }

    /// Every kernel this CPU runs for `f` factors, slowest first.
    fn available(f: usize) -> Vec<Kernel> {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
            let avx2 = fma && simd::covers(f);
            let avx512 = avx2 && std::is_x86_feature_detected!("avx512f");
            [
                (true, Kernel::Portable),
                (fma, Kernel::Fma),
                (avx2, Kernel::Avx2),
                (avx512, Kernel::Avx512),
            ]
            .into_iter()
            .filter_map(|(runs, kernel)| runs.then_some(kernel))
            .collect()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = f;
            vec![Kernel::Portable]
        }
    }

    /// A few CG steps on one row's system (see [`solve_row`]), with `ys` as
    /// room for the row's fixed vectors and `ahead` asking for the next row's.
    fn solve_row(
        self,
        x: &mut [f32],
        system: &RowSystem,
        ys: &mut Vec<f32>,
        scratch: &mut [f32],
        ahead: &mut Prefetch,
    ) {
        let RowSystem {
            a_base,
            fixed,
            items,
            weights,
            config,
        } = *system;
        match self {
            Kernel::Portable => {
                ahead.finish();
                gather_rows(fixed, items, ys);
                solve_row::<false>(x, a_base, ys, weights, config, scratch);
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Fma => {
                ahead.finish();
                gather_rows(fixed, items, ys);
                // SAFETY: `available` made this variant after checking for AVX2 and FMA.
                unsafe { solve_row_fma(x, a_base, ys, weights, config, scratch) };
            }
            // SAFETY: `available` made these variants after checking the CPU
            // features and that `simd` covers this many factors.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { simd::solve_row_avx2(x, system, ys, ahead) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { simd::solve_row_avx512(x, system, ys, ahead) },
        }
    }
}

/// One row's system `A x = b`, with `A = a_base + Σ α w_i y_i y_iᵀ` and
/// `b = Σ (1 + α w_i) y_i`, where `y_i` is row `items[i]` of `fixed` and
/// `a_base = YᵀY + λI`.
#[derive(Clone, Copy)]
struct RowSystem<'a> {
    a_base: &'a [f32],
    fixed: &'a Factors,
    items: &'a [usize],
    weights: &'a [f32],
    config: &'a AlsConfig,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn solve_row_fma(
    x: &mut [f32],
    a_base: &[f32],
    ys: &[f32],
    weights: &[f32],
    config: &AlsConfig,
    scratch: &mut [f32],
) {
    solve_row::<true>(x, a_base, ys, weights, config, scratch)
}

/// `out = a v` for a symmetric `F × F` matrix `a`, as `Σ_j v_j · row_j`: the
/// sum lives in registers (`F` known at compile time) and every step is an
/// independent multiply-add, instead of `F` dot products each waiting on its
/// own chain of additions.
#[inline(always)]
fn symmetric_matvec<const FMA: bool, const F: usize>(a: &[f32], v: &[f32], out: &mut [f32]) {
    let mut acc = [0.0f32; F];
    for (row, &vj) in a.chunks_exact(F).zip(v) {
        let row: &[f32; F] = row.try_into().expect("row of length F");
        for k in 0..F {
            acc[k] = if FMA {
                vj.mul_add(row[k], acc[k])
            } else {
                acc[k] + vj * row[k]
            };
        }
    }
    out.copy_from_slice(&acc);
}

/// `out = A v` with `A = a_base + Σ α w_i y_i y_iᵀ`. A function, not a closure:
/// closures do not inherit the caller's `target_feature`s, and `mul_add` outside
/// an FMA-enabled function is a slow software call.
#[inline(always)]
fn apply_a<const FMA: bool>(
    a_base: &[f32],
    ys: &[f32],
    weights: &[f32],
    alpha: f32,
    v: &[f32],
    out: &mut [f32],
) {
    let f = v.len();
    match f {
        32 => symmetric_matvec::<FMA, 32>(a_base, v, out),
        64 => symmetric_matvec::<FMA, 64>(a_base, v, out),
        96 => symmetric_matvec::<FMA, 96>(a_base, v, out),
        128 => symmetric_matvec::<FMA, 128>(a_base, v, out),
        _ => {
            out.iter_mut().for_each(|o| *o = 0.0);
            for (j, row) in a_base.chunks_exact(f).enumerate() {
                axpy_kernel::<FMA>(v[j], row, out);
            }
        }
    }
    for (y, &w) in ys.chunks_exact(f).zip(weights) {
        axpy_kernel::<FMA>(alpha * w * dot_kernel::<FMA>(y, v), y, out);
    }
}

/// A few CG steps on `A x = b`, with `A = a_base + Σ α w_i y_i y_iᵀ`
/// (`a_base = YᵀY + λI`) and `b = Σ (1 + α w_i) y_i`, warm-started from `x`;
/// `ys` holds the row's `y_i` one after another.
#[inline(always)]
fn solve_row<const FMA: bool>(
    x: &mut [f32],
    a_base: &[f32],
    ys: &[f32],
    weights: &[f32],
    config: &AlsConfig,
    scratch: &mut [f32],
) {
    let f = x.len();
    if weights.is_empty() {
        // No interactions: b = 0, so the exact solution is 0.
        x.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    let (r, rest) = scratch.split_at_mut(f);
    let (p, ap) = rest.split_at_mut(f);
    let alpha = config.alpha;

    // r = b − A x
    apply_a::<FMA>(a_base, ys, weights, alpha, x, ap);
    for (ri, ai) in r.iter_mut().zip(ap.iter()) {
        *ri = -ai;
    }
    for (y, &w) in ys.chunks_exact(f).zip(weights) {
        axpy_kernel::<FMA>(1.0 + alpha * w, y, r);
    }
    p.copy_from_slice(r);
    let mut rs_old = dot_kernel::<FMA>(r, r);
    for _ in 0..config.cg_steps {
        if rs_old < 1e-20 {
            break;
        }
        apply_a::<FMA>(a_base, ys, weights, alpha, p, ap);
        let step = rs_old / dot_kernel::<FMA>(p, ap);
        axpy_kernel::<FMA>(step, p, x);
        axpy_kernel::<FMA>(-step, ap, r);
        let rs_new = dot_kernel::<FMA>(r, r);
        if rs_new < 1e-20 {
            break;
        }
        let beta = rs_new / rs_old;
        for (pi, ri) in p.iter_mut().zip(r.iter()) {
            *pi = ri + beta * *pi;
        }
        rs_old = rs_new;
    }
}

/// The CG row solve written for SIMD registers, once, over the `Lanes` trait,
/// and compiled for AVX2 (8 floats a register) and AVX-512 (16).
///
/// Same algebra as [`solve_row`] — the algorithm of `implicit`'s CPU solver —
/// with the row's vectors `x`, `r`, `p`, `A p` held as `L` registers (`f = L ×
/// lanes`, a compile-time constant). Most of the time goes to
/// `add_interactions`, which takes the row's interactions four at a time: four
/// dot products side by side, one shared horizontal reduction, then one pass
/// adding the four scaled vectors. The scalar path instead reduces every dot
/// product on its own and waits for it before the matching `axpy` can start.
/// The first pass also copies the row's fixed vectors into a contiguous buffer
/// for the later passes.
#[cfg(target_arch = "x86_64")]
// Register `k` of a vector sits at float offset `k × lanes` of the rows it
// multiplies, so the loops count `k` rather than iterate.
#[allow(clippy::needless_range_loop)]
mod simd {
    use std::arch::x86_64::*;

    use super::{Factors, Prefetch, RowSystem};

    /// The factor counts compiled here.
    pub(super) fn covers(f: usize) -> bool {
        matches!(f, 16 | 32 | 64 | 96 | 128)
    }

    /// [`solve_row`] on AVX2 registers.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA, and [`covers`]`(x.len())`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn solve_row_avx2(
        x: &mut [f32],
        system: &RowSystem,
        ys: &mut Vec<f32>,
        ahead: &mut Prefetch,
    ) {
        match x.len() {
            16 => solve_row::<Avx2, 2>(x, system, ys, ahead),
            32 => solve_row::<Avx2, 4>(x, system, ys, ahead),
            64 => solve_row::<Avx2, 8>(x, system, ys, ahead),
            96 => solve_row::<Avx2, 12>(x, system, ys, ahead),
            128 => solve_row::<Avx2, 16>(x, system, ys, ahead),
            f => unreachable!("no AVX2 kernel for {f} factors"),
        }
    }

    /// [`solve_row`] on AVX-512 registers.
    ///
    /// # Safety
    /// The CPU supports AVX-512F, AVX2 and FMA, and [`covers`]`(x.len())`.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn solve_row_avx512(
        x: &mut [f32],
        system: &RowSystem,
        ys: &mut Vec<f32>,
        ahead: &mut Prefetch,
    ) {
        match x.len() {
            16 => solve_row::<Avx512, 1>(x, system, ys, ahead),
            32 => solve_row::<Avx512, 2>(x, system, ys, ahead),
            64 => solve_row::<Avx512, 4>(x, system, ys, ahead),
            96 => solve_row::<Avx512, 6>(x, system, ys, ahead),
            128 => solve_row::<Avx512, 8>(x, system, ys, ahead),
            f => unreachable!("no AVX-512 kernel for {f} factors"),
        }
    }

    /// Where a pass over the row's interactions finds their fixed vectors.
    enum Ys<'a> {
        /// One after another, copied by an earlier pass.
        Gathered(&'a [f32]),
        /// Rows `items` of `table`, each copied to `into` as it is read: CG
        /// reads the vectors 2 × (steps + 1) times, so the first pass gathers
        /// them into a contiguous buffer that stays in cache.
        Gather {
            table: &'a Factors,
            items: &'a [usize],
            into: &'a mut [f32],
        },
    }

    impl Ys<'_> {
        /// Where interaction `i`'s vector is read from.
        #[inline(always)]
        fn source(&self, i: usize, f: usize) -> *const f32 {
            match self {
                Ys::Gathered(ys) => ys[i * f..(i + 1) * f].as_ptr(),
                Ys::Gather { table, items, .. } => table.row(items[i]).as_ptr(),
            }
        }

        /// Where this pass copies the vectors of `n` interactions to (`i`'s
        /// at offset `i × f`), if it gathers.
        #[inline(always)]
        fn destination(&mut self, n: usize, f: usize) -> Option<*mut f32> {
            match self {
                Ys::Gathered(_) => None,
                Ys::Gather { into, .. } => Some(into[..n * f].as_mut_ptr()),
            }
        }
    }

    /// One SIMD register of floats and the few operations the solver needs.
    /// Every method must be inlined into a function compiled with the
    /// instruction set's `target_feature`s, and called only where the CPU has them.
    trait Lanes {
        /// Floats per register.
        const N: usize;
        type V: Copy;
        unsafe fn zero() -> Self::V;
        unsafe fn splat(x: f32) -> Self::V;
        /// Load `N` floats from `p` (any alignment).
        unsafe fn load(p: *const f32) -> Self::V;
        unsafe fn store(p: *mut f32, v: Self::V);
        unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
        unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
        unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
        /// `a * b + c`, fused.
        unsafe fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
        /// The sum of the lanes.
        unsafe fn sum(a: Self::V) -> f32;
        /// The sums of the lanes of `a`, `b`, `c` and `d`, in that order.
        unsafe fn sum4(a: Self::V, b: Self::V, c: Self::V, d: Self::V) -> __m128;
    }

    struct Avx2;

    impl Lanes for Avx2 {
        const N: usize = 8;
        type V = __m256;
        #[inline(always)]
        unsafe fn zero() -> __m256 {
            _mm256_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m256 {
            _mm256_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m256) {
            _mm256_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn add(a: __m256, b: __m256) -> __m256 {
            _mm256_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn sub(a: __m256, b: __m256) -> __m256 {
            _mm256_sub_ps(a, b)
        }
        #[inline(always)]
        unsafe fn mul(a: __m256, b: __m256) -> __m256 {
            _mm256_mul_ps(a, b)
        }
        #[inline(always)]
        unsafe fn mul_add(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn sum(a: __m256) -> f32 {
            let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
        }
        #[inline(always)]
        unsafe fn sum4(a: __m256, b: __m256, c: __m256, d: __m256) -> __m128 {
            // Pairwise sums within each 128-bit half leave, per half, one
            // partial sum of each input in input order; adding the halves
            // finishes all four at once.
            let t = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
            _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps::<1>(t))
        }
    }

    struct Avx512;

    impl Avx512 {
        /// The two 256-bit halves added.
        #[inline(always)]
        unsafe fn fold(a: __m512) -> __m256 {
            let high = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(a));
            _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(high))
        }
    }

    impl Lanes for Avx512 {
        const N: usize = 16;
        type V = __m512;
        #[inline(always)]
        unsafe fn zero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m512 {
            _mm512_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            _mm512_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn sub(a: __m512, b: __m512) -> __m512 {
            _mm512_sub_ps(a, b)
        }
        #[inline(always)]
        unsafe fn mul(a: __m512, b: __m512) -> __m512 {
            _mm512_mul_ps(a, b)
        }
        #[inline(always)]
        unsafe fn mul_add(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn sum(a: __m512) -> f32 {
            Avx2::sum(Self::fold(a))
        }
        #[inline(always)]
        unsafe fn sum4(a: __m512, b: __m512, c: __m512, d: __m512) -> __m128 {
            Avx2::sum4(Self::fold(a), Self::fold(b), Self::fold(c), Self::fold(d))
        }
    }

    /// A vector of `f = L × S::N` floats in registers.
    type Vector<S, const L: usize> = [<S as Lanes>::V; L];

    #[inline(always)]
    unsafe fn load<S: Lanes, const L: usize>(v: &[f32]) -> Vector<S, L> {
        assert_eq!(v.len(), L * S::N);
        let mut out = [S::zero(); L];
        for (k, o) in out.iter_mut().enumerate() {
            *o = S::load(v.as_ptr().add(k * S::N));
        }
        out
    }

    #[inline(always)]
    unsafe fn store<S: Lanes, const L: usize>(v: &Vector<S, L>, out: &mut [f32]) {
        assert_eq!(out.len(), L * S::N);
        for (k, &vk) in v.iter().enumerate() {
            S::store(out.as_mut_ptr().add(k * S::N), vk);
        }
    }

    #[inline(always)]
    unsafe fn dot<S: Lanes, const L: usize>(a: &Vector<S, L>, b: &Vector<S, L>) -> f32 {
        // Two chains of additions, so each waits on half as many others.
        let (mut even, mut odd) = (S::zero(), S::zero());
        for k in (0..L).step_by(2) {
            even = S::mul_add(a[k], b[k], even);
            if k + 1 < L {
                odd = S::mul_add(a[k + 1], b[k + 1], odd);
            }
        }
        S::sum(S::add(even, odd))
    }

    /// `out += a v` for the symmetric `f × f` matrix `a`, as `Σ_j v_j · row_j`:
    /// every step is independent multiply-adds into registers.
    #[inline(always)]
    unsafe fn add_matvec<S: Lanes, const L: usize>(
        a: &[f32],
        v: &Vector<S, L>,
        out: &mut Vector<S, L>,
    ) {
        let f = L * S::N;
        assert_eq!(a.len(), f * f);
        // SAFETY: a vector of `L` registers is `f` floats in memory, in order.
        let scalars: &[f32] = std::slice::from_raw_parts(v.as_ptr().cast::<f32>(), f);
        // A multiply-add takes 4 cycles and two can start per cycle, so 8
        // independent sums keep the units busy: with few registers per vector
        // (AVX-512), even and odd rows of `a` get a sum each.
        let mut even: Vector<S, L> = [S::zero(); L];
        let mut odd: Vector<S, L> = [S::zero(); L];
        let rows = a.as_ptr();
        if L <= 4 {
            for j in (0..f).step_by(2) {
                let (vj, vj1) = (S::splat(scalars[j]), S::splat(scalars[j + 1]));
                let (row, next) = (rows.add(j * f), rows.add((j + 1) * f));
                for k in 0..L {
                    even[k] = S::mul_add(vj, S::load(row.add(k * S::N)), even[k]);
                    odd[k] = S::mul_add(vj1, S::load(next.add(k * S::N)), odd[k]);
                }
            }
        } else {
            for (j, &vj) in scalars[..f].iter().enumerate() {
                let (vj, row) = (S::splat(vj), rows.add(j * f));
                for k in 0..L {
                    even[k] = S::mul_add(vj, S::load(row.add(k * S::N)), even[k]);
                }
            }
        }
        for k in 0..L {
            out[k] = S::add(out[k], S::add(even[k], odd[k]));
        }
    }

    /// `out += Σ_i (c0 + c1 w_i + c2 w_i (y_i·v)) y_i` over the row's
    /// interactions (vectors `ys`, weights `w`), four at a time.
    #[inline(always)]
    unsafe fn add_interactions<S: Lanes, const L: usize>(
        mut ys: Ys,
        w: &[f32],
        v: &Vector<S, L>,
        [c0, c1, c2]: [f32; 3],
        out: &mut Vector<S, L>,
        ahead: &mut Prefetch,
    ) {
        let f = L * S::N;
        let copy_to = ys.destination(w.len(), f);
        let blocks = w.len() / 4;
        for b in 0..blocks {
            ahead.step();
            let i = 4 * b;
            // (Loops, not closures: a closure would not inherit the
            // `target_feature`s, and its intrinsics would become calls.)
            let mut y = [std::ptr::null(); 4];
            let mut dots = [S::zero(); 4];
            for j in 0..4 {
                y[j] = ys.source(i + j, f);
                dots[j] = S::mul(S::load(y[j]), v[0]);
            }
            for k in 1..L {
                for j in 0..4 {
                    dots[j] = S::mul_add(S::load(y[j].add(k * S::N)), v[k], dots[j]);
                }
            }
            let dots = S::sum4(dots[0], dots[1], dots[2], dots[3]);
            let w4 = _mm_loadu_ps(w[i..i + 4].as_ptr());
            let coef = _mm_fmadd_ps(
                _mm_mul_ps(_mm_set1_ps(c2), w4),
                dots,
                _mm_fmadd_ps(_mm_set1_ps(c1), w4, _mm_set1_ps(c0)),
            );
            let mut coefs = [0.0f32; 4];
            _mm_storeu_ps(coefs.as_mut_ptr(), coef);
            let mut c = [S::zero(); 4];
            for j in 0..4 {
                c[j] = S::splat(coefs[j]);
            }
            for k in 0..L {
                let mut acc = out[k];
                for j in 0..4 {
                    let yk = S::load(y[j].add(k * S::N));
                    if let Some(to) = copy_to {
                        S::store(to.add((i + j) * f + k * S::N), yk);
                    }
                    acc = S::mul_add(c[j], yk, acc);
                }
                out[k] = acc;
            }
        }
        for (i, &wi) in w.iter().enumerate().skip(4 * blocks) {
            let y = ys.source(i, f);
            let mut d = S::mul(S::load(y), v[0]);
            for k in 1..L {
                d = S::mul_add(S::load(y.add(k * S::N)), v[k], d);
            }
            let c = S::splat((c0 + c1 * wi) + c2 * wi * S::sum(d));
            for k in 0..L {
                let yk = S::load(y.add(k * S::N));
                if let Some(to) = copy_to {
                    S::store(to.add(i * f + k * S::N), yk);
                }
                out[k] = S::mul_add(c, yk, out[k]);
            }
        }
    }

    /// A few CG steps on `A x = b` warm-started from `x`, as in
    /// [`super::solve_row`]; `ys` is room for the row's fixed vectors.
    #[inline(always)]
    unsafe fn solve_row<S: Lanes, const L: usize>(
        x: &mut [f32],
        system: &RowSystem,
        ys: &mut Vec<f32>,
        ahead: &mut Prefetch,
    ) {
        let RowSystem {
            a_base,
            fixed,
            items,
            weights,
            config,
        } = *system;
        let (alpha, f) = (config.alpha, L * S::N);
        assert!(x.len() == f && fixed.dim == f && items.len() == weights.len());
        if weights.is_empty() {
            // No interactions: b = 0, so the exact solution is 0.
            x.iter_mut().for_each(|v| *v = 0.0);
            ahead.finish();
            return;
        }
        if ys.len() < items.len() * f {
            ys.resize(items.len() * f, 0.0);
        }
        let ys = &mut ys[..items.len() * f];
        let mut xv = load::<S, L>(x);
        // r = b − A x = Σ_i (c_i − α w_i (y_i·x)) y_i − a_base x, with
        // c_i = 1 + α w_i: one pass over the interactions, as `implicit` does.
        let mut r = [S::zero(); L];
        let gather = Ys::Gather {
            table: fixed,
            items,
            into: ys,
        };
        add_interactions::<S, L>(gather, weights, &xv, [1.0, alpha, -alpha], &mut r, ahead);
        let ys = &*ys;
        let mut base_x = [S::zero(); L];
        add_matvec::<S, L>(a_base, &xv, &mut base_x);
        for k in 0..L {
            r[k] = S::sub(r[k], base_x[k]);
        }
        let mut p = r;
        let mut rs_old = dot::<S, L>(&r, &r);
        for _ in 0..config.cg_steps {
            if rs_old < 1e-20 {
                break;
            }
            // A p = Σ_i α w_i (y_i·p) y_i + a_base p; the interactions first,
            // so the matrix product overlaps with the tail of their work.
            let mut ap = [S::zero(); L];
            let gathered = Ys::Gathered(ys);
            add_interactions::<S, L>(gathered, weights, &p, [0.0, 0.0, alpha], &mut ap, ahead);
            add_matvec::<S, L>(a_base, &p, &mut ap);
            let step = rs_old / dot::<S, L>(&p, &ap);
            let (step, minus_step) = (S::splat(step), S::splat(-step));
            for k in 0..L {
                xv[k] = S::mul_add(step, p[k], xv[k]);
                r[k] = S::mul_add(minus_step, ap[k], r[k]);
            }
            let rs_new = dot::<S, L>(&r, &r);
            if rs_new < 1e-20 {
                break;
            }
            let beta = S::splat(rs_new / rs_old);
            for k in 0..L {
                p[k] = S::mul_add(beta, p[k], r[k]);
            }
            rs_old = rs_new;
        }
        ahead.finish();
        store::<S, L>(&xv, x);
    }
}

#[cfg(test)]
mod tests;
