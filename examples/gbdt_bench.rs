//! `gbdt_bench`: fit our LambdaMART GBDT on a re-ranker table and time it.
//!
//! The Rust half of `bench/gbdt_vs_lightgbm.sh`. It reads the table written by
//! `examples/rerank_table.rs` (`features.npy`, `labels.npy`, `groups.npy`),
//! holds out every fifth group for validation (the rule `bench/gbdt_lightgbm.py`
//! uses too), fits a fixed number of trees (no early stopping, so both learners
//! do the same work), and prints one JSON line: training seconds, validation
//! NDCG@10 of our model and — with `--lightgbm-scores` — of LightGBM's
//! validation scores, both computed by the same [`mean_ndcg_at`], and the
//! scoring speed in rows per second over the whole table.
//!
//! ```text
//! cargo run --release --example gbdt_bench -- --table DIR --trees 100 --leaves 31 \
//!     --learning-rate 0.1 [--lightgbm-scores DIR/lightgbm_valid_scores.npy]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{ensure, Result};
use clap::Parser;
use recsys::npy;
use recsys::rank::gbdt::{mean_ndcg_at, Booster, Dataset, GbdtConfig, Objective};

#[derive(Parser)]
struct Args {
    /// Directory with features.npy, labels.npy, groups.npy.
    #[arg(long)]
    table: PathBuf,
    #[arg(long, default_value_t = 100)]
    trees: usize,
    #[arg(long, default_value_t = 31)]
    leaves: usize,
    #[arg(long, default_value_t = 0.1)]
    learning_rate: f64,
    #[arg(long, default_value_t = 20)]
    min_data_in_leaf: usize,
    #[arg(long, default_value_t = 255)]
    max_bins: usize,
    /// LightGBM's scores of the validation rows, in row order.
    #[arg(long)]
    lightgbm_scores: Option<PathBuf>,
}

/// Every fifth group (0, 5, 10, …) validates; the rest train.
fn split(features: &[f32], labels: &[f32], groups: &[usize], width: usize) -> [Dataset; 2] {
    let mut parts: [(Vec<f32>, Vec<f32>, Vec<usize>); 2] = Default::default();
    for p in &mut parts {
        p.2.push(0);
    }
    for g in 0..groups.len() - 1 {
        let part = &mut parts[usize::from(g % 5 != 0)];
        let rows = groups[g]..groups[g + 1];
        part.0
            .extend_from_slice(&features[rows.start * width..rows.end * width]);
        part.1.extend_from_slice(&labels[rows]);
        part.2.push(part.1.len());
    }
    let names: Vec<String> = (0..width).map(|i| format!("f{i}")).collect();
    let [valid, train] = parts;
    let make = |(f, l, g): (Vec<f32>, Vec<f32>, Vec<usize>)| {
        Dataset::new(names.clone(), f, l, g).expect("a valid table")
    };
    [make(train), make(valid)]
}

fn run() -> Result<()> {
    let args = Args::parse();
    let (shape, features) = npy::read::<f32>(&args.table.join("features.npy"))?;
    let labels = npy::read::<f32>(&args.table.join("labels.npy"))?.1;
    let groups: Vec<usize> = npy::read::<u64>(&args.table.join("groups.npy"))?
        .1
        .into_iter()
        .map(|g| g as usize)
        .collect();
    let width = shape[1];
    let [train, valid] = split(&features, &labels, &groups, width);
    let config = GbdtConfig {
        objective: Objective::LambdaRank { ndcg_at: 10 },
        num_trees: args.trees,
        learning_rate: args.learning_rate,
        num_leaves: args.leaves,
        min_data_in_leaf: args.min_data_in_leaf,
        max_bins: args.max_bins,
        ..GbdtConfig::default()
    };
    let started = Instant::now();
    let model = Booster::fit(&train, None, &config, |_| {})?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let scores = model.predict(valid.features(), width);
    let ndcg = mean_ndcg_at(10, valid.labels(), &scores, valid.group_offsets());
    let lightgbm_ndcg = match &args.lightgbm_scores {
        Some(path) => {
            let theirs = npy::read::<f32>(path)?.1;
            ensure!(
                theirs.len() == valid.n_rows(),
                "LightGBM scored {} rows, validation has {}",
                theirs.len(),
                valid.n_rows()
            );
            Some(mean_ndcg_at(
                10,
                valid.labels(),
                &theirs,
                valid.group_offsets(),
            ))
        }
        None => None,
    };
    // Scoring speed over the whole table, as two_stage scores candidates.
    let started = Instant::now();
    let all = model.predict(&features, width);
    let score_seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "rows": labels.len(),
            "train_rows": train.n_rows(),
            "valid_rows": valid.n_rows(),
            "features": width,
            "trees": model.n_trees(),
            "fit_seconds": fit_seconds,
            "valid_ndcg_at_10": ndcg,
            "lightgbm_valid_ndcg_at_10": lightgbm_ndcg,
            "score_rows_per_second": all.len() as f64 / score_seconds,
        })
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gbdt_bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
