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
//! The inner loops are compiled twice — portable, and with AVX2+FMA chosen at run
//! time — so one binary is fast on modern CPUs and still runs on old ones.

use std::sync::OnceLock;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sprs::CsMat;

use super::factors::{axpy_kernel, dot_kernel, Factors};
use super::{Recommender, Scored};
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
    unit_items: OnceLock<Factors>,
}

impl PartialEq for Als {
    fn eq(&self, other: &Self) -> bool {
        self.user_factors == other.user_factors && self.item_factors == other.item_factors
    }
}

impl Als {
    /// A model from factor tables (e.g. read back from a bundle).
    pub fn from_factors(user_factors: Factors, item_factors: Factors) -> Als {
        Als {
            user_factors,
            item_factors,
            unit_items: OnceLock::new(),
        }
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

    /// The `n` items most similar to `item` by cosine of their factors, itself excluded.
    pub fn similar_items(&self, item: u32, n: usize) -> Vec<Scored> {
        self.similar_items_batch(&[item], n)
            .pop()
            .unwrap_or_default()
    }

    /// [`Als::similar_items`] for many items at once (one matrix product per
    /// batch); an item unknown to the model gets an empty list.
    pub fn similar_items_batch(&self, items: &[u32], n: usize) -> Vec<Vec<Scored>> {
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

impl Recommender for Als {
    fn name(&self) -> &'static str {
        "als"
    }

    fn recommend(&self, user: Option<u32>, n: usize) -> Vec<Scored> {
        self.recommend_batch(&[user], n).pop().unwrap_or_default()
    }

    fn recommend_batch(&self, users: &[Option<u32>], n: usize) -> Vec<Vec<Scored>> {
        let known: Vec<usize> = users
            .iter()
            .flatten()
            .map(|&u| u as usize)
            .filter(|&u| u < self.user_factors.rows)
            .collect();
        let mut lists = self
            .user_factors
            .top_n_against(&known, &self.item_factors, n)
            .into_iter();
        users
            .iter()
            .map(|u| match u {
                Some(u) if (*u as usize) < self.user_factors.rows => {
                    lists.next().unwrap_or_default()
                }
                _ => Vec::new(),
            })
            .collect()
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
        Als::from_factors(self.users, self.items)
    }
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
    let fma = simd_fma_available();
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
                // now, so their cache misses overlap with this row's arithmetic.
                if let Some(next) = matrix.outer_view(r + 1) {
                    prefetch_rows(fixed, next.indices());
                }
                // CG reads the row's fixed vectors 2 × (steps + 1) times: gather
                // them once into a contiguous buffer that stays in cache.
                gather_rows(fixed, cells.0, ys);
                #[cfg(target_arch = "x86_64")]
                if fma {
                    // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
                    unsafe { solve_row_avx2(x, &yty, ys, cells.1, config, scratch) };
                    return;
                }
                let _ = fma;
                solve_row::<false>(x, &yty, ys, cells.1, config, scratch);
            },
        );
}

/// Hint the CPU to start loading rows `rows` of `table` into cache.
fn prefetch_rows(table: &Factors, rows: &[usize]) {
    #[cfg(target_arch = "x86_64")]
    for &r in rows {
        let row = table.row(r);
        // One hint per 64-byte cache line (16 floats).
        for line in row.chunks(16) {
            // SAFETY: prefetching is a hint and never faults; the pointer is in bounds.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    line.as_ptr().cast::<i8>(),
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (table, rows);
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

fn simd_fma_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn solve_row_avx2(
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

#[cfg(test)]
mod tests;
