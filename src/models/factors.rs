//! Dense factor tables and the scoring written once for every factor model.
//!
//! A [`Factors`] table holds one `dim`-long row per user or item, row-major.
//! Scoring a user against all items is `X Yᵀ`; for many users at once it is a
//! matrix product done by `matrixmultiply` (pure Rust, runtime SIMD detection),
//! which is several times faster than one dot product at a time.

use rayon::prelude::*;

use super::topk::{top_k_dense, top_k_dense_where};
use super::Scored;

/// A row-major table of `rows` vectors of length `dim`.
#[derive(Debug, Clone, PartialEq)]
pub struct Factors {
    /// Number of rows (users or items).
    pub rows: usize,
    /// Length of each row (the number of latent factors).
    pub dim: usize,
    /// `rows * dim` values, row after row.
    pub data: Vec<f32>,
}

impl Factors {
    /// A table of zeros.
    pub fn zeros(rows: usize, dim: usize) -> Factors {
        Factors {
            rows,
            dim,
            data: vec![0.0; rows * dim],
        }
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// True when any value is NaN or infinite.
    pub fn has_non_finite(&self) -> bool {
        self.data.par_iter().any(|v| !v.is_finite())
    }

    /// `selfᵀ self`, the `dim × dim` Gram matrix (row-major).
    pub fn gram(&self) -> Vec<f32> {
        let d = self.dim;
        let mut out = vec![0.0f32; d * d];
        if self.rows == 0 {
            return out;
        }
        // out (d×d) = Aᵀ (d×rows) · A (rows×d); Aᵀ is A with swapped strides.
        unsafe {
            matrixmultiply::sgemm(
                d,
                self.rows,
                d,
                1.0,
                self.data.as_ptr(),
                1,
                d as isize,
                self.data.as_ptr(),
                d as isize,
                1,
                0.0,
                out.as_mut_ptr(),
                d as isize,
                1,
            );
        }
        out
    }

    /// Scores of rows `queries` of `self` against every row of `other`
    /// (`queries.len() × other.rows`, row-major): `Q Oᵀ`.
    pub fn scores_against(&self, queries: &[usize], other: &Factors) -> Vec<f32> {
        let d = self.dim;
        let mut q = Vec::with_capacity(queries.len() * d);
        for &r in queries {
            q.extend_from_slice(self.row(r));
        }
        let mut out = vec![0.0f32; queries.len() * other.rows];
        if queries.is_empty() || other.rows == 0 {
            return out;
        }
        unsafe {
            matrixmultiply::sgemm(
                queries.len(),
                d,
                other.rows,
                1.0,
                q.as_ptr(),
                d as isize,
                1,
                other.data.as_ptr(),
                1,
                d as isize,
                0.0,
                out.as_mut_ptr(),
                other.rows as isize,
                1,
            );
        }
        out
    }

    /// For each of `queries` (row indices of `self`), the top `n` rows of
    /// `other` by dot product, in parallel batches.
    pub fn top_n_against(&self, queries: &[usize], other: &Factors, n: usize) -> Vec<Vec<Scored>> {
        // 64 queries × 235k items × 4 bytes ≈ 60 MB of scores per batch: big
        // enough for an efficient product, small enough for two threads.
        const BATCH: usize = 64;
        queries
            .par_chunks(BATCH)
            .flat_map_iter(|chunk| {
                let scores = self.scores_against(chunk, other);
                (0..chunk.len())
                    .map(|q| {
                        let row = &scores[q * other.rows..(q + 1) * other.rows];
                        top_k_dense(row, n)
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// For every row `q` of `self` (the queries), the top `n` rows of `other`
    /// by dot product among those `keep(q, row)` allows, in parallel batches.
    pub fn top_n_where(
        &self,
        other: &Factors,
        n: usize,
        keep: impl Fn(usize, u32) -> bool + Sync,
    ) -> Vec<Vec<Scored>> {
        const BATCH: usize = 64;
        let all: Vec<usize> = (0..self.rows).collect();
        all.par_chunks(BATCH)
            .flat_map_iter(|chunk| {
                let scores = self.scores_against(chunk, other);
                chunk
                    .iter()
                    .enumerate()
                    .map(|(j, &q)| {
                        let row = &scores[j * other.rows..(j + 1) * other.rows];
                        top_k_dense_where(row, n, |i| keep(q, i))
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Each row scaled to unit length (zero rows stay zero), for cosine similarity.
    pub fn normalized(&self) -> Factors {
        let mut out = self.clone();
        out.data.par_chunks_mut(self.dim.max(1)).for_each(|row| {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        });
        out
    }
}

/// Dot product of two equal-length slices.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_kernel::<false>(a, b)
}

/// Dot product; with `FMA` the accumulation uses fused multiply-add, which is
/// only fast inside a function compiled with the `fma` target feature.
#[inline(always)]
pub fn dot_kernel<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    #[inline(always)]
    fn step<const FMA: bool>(acc: f32, x: f32, y: f32) -> f32 {
        if FMA {
            x.mul_add(y, acc)
        } else {
            acc + x * y
        }
    }
    // 32 independent lanes (four SIMD registers): one register's chain of
    // dependent adds would make the loop wait on add latency, not throughput.
    let mut wide = [0.0f32; 32];
    let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..32 {
            wide[j] = step::<FMA>(wide[j], x[j], y[j]);
        }
    }
    let mut acc = [0.0f32; 8];
    for j in 0..8 {
        acc[j] = (wide[j] + wide[j + 8]) + (wide[j + 16] + wide[j + 24]);
    }
    let (ca, cb) = (ra.chunks_exact(8), rb.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] = step::<FMA>(acc[j], x[j], y[j]);
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

/// `out[i] = q · rows[i]` for consecutive rows of `q.len()` values: the scan
/// of an index's cluster. Compiled twice, and the AVX2 + FMA version is taken
/// when the CPU has it (the binary is built for any x86-64).
pub fn dots(q: &[f32], rows: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has just been checked for AVX2 and FMA.
            unsafe { dots_fma(q, rows, out) };
            return;
        }
    }
    dots_with::<false>(q, rows, out);
}

#[inline(always)]
fn dots_with<const FMA: bool>(q: &[f32], rows: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(q.len().max(1))) {
        *o = dot_kernel::<FMA>(q, row);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_fma(q: &[f32], rows: &[f32], out: &mut [f32]) {
    dots_with::<true>(q, rows, out);
}

/// `y += a * x`, fused when `FMA` (see [`dot_kernel`]).
#[inline(always)]
pub fn axpy_kernel<const FMA: bool>(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi = if FMA {
            a.mul_add(*xi, *yi)
        } else {
            *yi + a * xi
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: usize, dim: usize, data: Vec<f32>) -> Factors {
        Factors { rows, dim, data }
    }

    #[test]
    fn gram_and_scores_match_naive_products() {
        let a = table(3, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(a.gram(), vec![35.0, 44.0, 44.0, 56.0]);
        let b = table(2, 2, vec![1.0, 0.0, 0.0, 1.0]);
        assert_eq!(a.scores_against(&[2, 0], &b), vec![5.0, 6.0, 1.0, 2.0]);
        assert_eq!(a.top_n_against(&[1], &b, 1), vec![vec![(1, 4.0)]]);
    }

    #[test]
    fn dots_score_every_row() {
        let rows: Vec<f32> = (0..33).map(|i| i as f32).collect();
        let q = [1.0, 0.0, 2.0];
        let mut out = vec![0.0; 11];
        dots(&q, &rows, &mut out);
        for (r, o) in out.iter().enumerate() {
            assert_eq!(*o, (3 * r) as f32 + 2.0 * (3 * r + 2) as f32);
        }
    }

    #[test]
    fn dot_handles_remainders() {
        let a: Vec<f32> = (0..11).map(|i| i as f32).collect();
        assert_eq!(dot(&a, &a), (0..11).map(|i| (i * i) as f32).sum::<f32>());
    }
}
