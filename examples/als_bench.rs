//! `als_bench`: train our ALS on a matrix given as `.npy` triplets and time it.
//!
//! The Rust half of `bench/als_vs_implicit.sh`, which runs the Python
//! `implicit` package on the same files. Input is a users × items weight
//! matrix as three equal-length 1-D arrays — `rows` (u32), `cols` (u32),
//! `data` (f32) — plus `shape` (u64 `[users, items]`). It becomes a CSR
//! `CsMat<f32>` with sorted indices and duplicates summed, exactly what
//! [`AlsTrainer::new`] is given in production.
//!
//! Output is one JSON object per line on stdout, so the driver script can read
//! it without guessing:
//!
//! * `{"event":"load", ...}` — reading the arrays and building the CSR matrix;
//! * `{"event":"setup", ...}` — [`AlsTrainer::new`] alone (transpose, random factors);
//! * `{"event":"iteration","iteration":i,"seconds":..,"loss":..}` — one
//!   [`AlsTrainer::iterate`] each; `seconds` times `iterate()` only, the loss
//!   ([`AlsTrainer::loss`], the objective per matrix cell) is computed after
//!   the clock stops;
//! * `{"event":"recall", ...}` — with `--test`, recall@k of held-out
//!   `(user, item)` pairs, the user's training items excluded from the top k;
//! * `{"event":"done", ...}` — totals.
//!
//! ```text
//! cargo run --release --example als_bench -- \
//!     --rows rows.npy --cols cols.npy --data data.npy --shape shape.npy \
//!     --factors 64 --iterations 15 --regularization 0.01 --alpha 1 --cg-steps 3 \
//!     [--test test.npy] [--save-factors DIR]
//! ```
//!
//! Threads are rayon's: all cores unless `RAYON_NUM_THREADS` says otherwise.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use serde_json::json;
use sprs::{CsMat, TriMat};

use recsys::models::als::{Als, AlsConfig, AlsTrainer};
use recsys::models::factors::Factors;
use recsys::npy;

/// Train ALS on `.npy` triplets, timing each iteration (JSON lines on stdout).
#[derive(Debug, Parser)]
struct Args {
    /// Row (user) index of each non-zero, u32.
    #[arg(long)]
    rows: PathBuf,
    /// Column (item) index of each non-zero, u32.
    #[arg(long)]
    cols: PathBuf,
    /// Weight of each non-zero, f32.
    #[arg(long)]
    data: PathBuf,
    /// `[users, items]`, u64.
    #[arg(long)]
    shape: PathBuf,
    /// Number of latent factors.
    #[arg(long, default_value_t = 64)]
    factors: usize,
    /// ALS iterations, each timed on its own.
    #[arg(long, default_value_t = 15)]
    iterations: usize,
    /// λ, the L2 penalty.
    #[arg(long, default_value_t = 0.01)]
    regularization: f32,
    /// Confidence slope: `c = 1 + alpha * weight` [default: `AlsConfig`'s].
    #[arg(long)]
    alpha: Option<f32>,
    /// Conjugate-gradient steps per row solve.
    #[arg(long, default_value_t = 3)]
    cg_steps: usize,
    /// Seed of the initial factors.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Held-out `(user, item)` pairs, u32 of shape `(n, 2)`, for recall@k.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Cut-off of recall@k.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Skip the per-iteration loss (it costs about as much as a fraction of an iteration).
    #[arg(long)]
    no_loss: bool,
    /// Write the final `user_factors.npy` and `item_factors.npy` (f32) here.
    #[arg(long)]
    save_factors: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("als_bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let clock = Instant::now();
    let matrix = load_matrix(&args.rows, &args.cols, &args.data, &args.shape)?;
    emit(json!({
        "event": "load",
        "seconds": clock.elapsed().as_secs_f64(),
        "users": matrix.rows(),
        "items": matrix.cols(),
        "nnz": matrix.nnz(),
        "threads": rayon::current_num_threads(),
    }));

    let defaults = AlsConfig::default();
    let config = AlsConfig {
        factors: args.factors,
        iterations: args.iterations,
        regularization: args.regularization,
        alpha: args.alpha.unwrap_or(defaults.alpha),
        cg_steps: args.cg_steps,
        seed: args.seed,
        ..defaults
    };
    let clock = Instant::now();
    let mut trainer = AlsTrainer::new(&matrix, &config)?;
    let setup = clock.elapsed().as_secs_f64();
    emit(json!({ "event": "setup", "seconds": setup, "alpha": config.alpha }));

    let mut train_seconds = 0.0;
    let mut loss = None;
    for i in 1..=args.iterations {
        let clock = Instant::now();
        trainer.iterate()?;
        let seconds = clock.elapsed().as_secs_f64();
        train_seconds += seconds;
        let clock = Instant::now();
        loss = (!args.no_loss).then(|| trainer.loss());
        emit(json!({
            "event": "iteration",
            "iteration": i,
            "seconds": seconds,
            "loss": loss,
            "loss_seconds": clock.elapsed().as_secs_f64(),
        }));
    }
    if loss.is_none() {
        loss = Some(trainer.loss());
    }
    let model = trainer.into_model();

    if let Some(dir) = &args.save_factors {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, f) in [
            ("user_factors.npy", &model.user_factors),
            ("item_factors.npy", &model.item_factors),
        ] {
            npy::write(&dir.join(name), &[f.rows, f.dim], &f.data)?;
        }
    }

    if let Some(path) = &args.test {
        let clock = Instant::now();
        let (users, items) = read_test(path, matrix.rows(), matrix.cols())?;
        let hits = hits_at_k(&model, &matrix, &users, &items, args.k);
        emit(json!({
            "event": "recall",
            "k": args.k,
            "users": users.len(),
            "hits": hits,
            "recall": hits as f64 / users.len().max(1) as f64,
            "seconds": clock.elapsed().as_secs_f64(),
        }));
    }

    emit(json!({
        "event": "done",
        "setup_seconds": setup,
        "train_seconds": train_seconds,
        "iterations": args.iterations,
        "loss": loss,
        "threads": rayon::current_num_threads(),
    }));
    Ok(())
}

fn emit(value: serde_json::Value) {
    println!("{value}");
}

/// The CSR users × items matrix of a `.npy` triplet: sorted indices, duplicates summed.
fn load_matrix(rows: &Path, cols: &Path, data: &Path, shape: &Path) -> Result<CsMat<f32>> {
    let (_, shape) = npy::read::<u64>(shape)?;
    let &[n_rows, n_cols] = shape.as_slice() else {
        bail!("shape must hold [users, items], found {shape:?}");
    };
    let (n_rows, n_cols) = (n_rows as usize, n_cols as usize);
    let (_, rows) = npy::read::<u32>(rows)?;
    let (_, cols) = npy::read::<u32>(cols)?;
    let (_, data) = npy::read::<f32>(data)?;
    ensure!(
        rows.len() == cols.len() && cols.len() == data.len(),
        "rows, cols and data differ in length: {}, {}, {}",
        rows.len(),
        cols.len(),
        data.len()
    );
    if let Some(r) = rows.iter().find(|&&r| r as usize >= n_rows) {
        bail!("row index {r} is outside the shape's {n_rows} rows");
    }
    if let Some(c) = cols.iter().find(|&&c| c as usize >= n_cols) {
        bail!("column index {c} is outside the shape's {n_cols} columns");
    }
    let triplets = TriMat::from_triplets(
        (n_rows, n_cols),
        rows.into_iter().map(|r| r as usize).collect(),
        cols.into_iter().map(|c| c as usize).collect(),
        data,
    );
    Ok(triplets.to_csr())
}

/// Held-out `(user, item)` pairs from a u32 `(n, 2)` array.
fn read_test(path: &Path, n_users: usize, n_items: usize) -> Result<(Vec<u32>, Vec<u32>)> {
    let (shape, pairs) = npy::read::<u32>(path)?;
    ensure!(
        shape.len() == 2 && shape[1] == 2,
        "{} must have shape (n, 2), found {shape:?}",
        path.display()
    );
    let (users, items): (Vec<u32>, Vec<u32>) = pairs.chunks_exact(2).map(|p| (p[0], p[1])).unzip();
    ensure!(
        users.iter().all(|&u| (u as usize) < n_users)
            && items.iter().all(|&i| (i as usize) < n_items),
        "{} holds a user or item outside the matrix",
        path.display()
    );
    Ok((users, items))
}

/// How many held-out items land in their user's top `k`, the user's training
/// items excluded (as `implicit`'s `filter_already_liked_items=True` does).
fn hits_at_k(model: &Als, matrix: &CsMat<f32>, users: &[u32], items: &[u32], k: usize) -> usize {
    // Batches bound the score matrix held at once.
    const BATCH: usize = 4096;
    let f = model.user_factors.dim;
    users
        .chunks(BATCH)
        .zip(items.chunks(BATCH))
        .map(|(users, items)| {
            let mut queries = Factors::zeros(users.len(), f);
            for (q, &u) in users.iter().enumerate() {
                queries.data[q * f..(q + 1) * f]
                    .copy_from_slice(model.user_factors.row(u as usize));
            }
            let seen = |q: usize, item: u32| {
                let row = matrix.outer_view(users[q] as usize).expect("user in range");
                row.indices().binary_search(&(item as usize)).is_ok()
            };
            queries
                .top_n_where(&model.item_factors, k, |q, item| !seen(q, item))
                .iter()
                .zip(items)
                .filter(|(top, &item)| top.iter().any(|&(i, _)| i == item))
                .count()
        })
        .sum()
}
