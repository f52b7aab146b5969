//! `rerank_table`: write two_stage's re-ranker training table as `.npy` files.
//!
//! The first half of `bench/gbdt_vs_lightgbm.sh`: it runs the same training
//! protocol as `recsys train` (label window, candidates, features) on a config's
//! data and writes what the re-ranker is fitted on, so that our GBDT and
//! LightGBM can be trained on identical rows:
//!
//! * `features.npy` — f32 `[rows, features]`, NaN = missing;
//! * `labels.npy` — f32 `[rows]`, 1 = relevant;
//! * `groups.npy` — u64 group offsets `[groups + 1]` (one group per user and window);
//! * `feature_names.json`.
//!
//! ```text
//! cargo run --release --example rerank_table -- --config config.toml --out DIR
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use recsys::config::Config;
use recsys::npy;
use recsys::rank::features::{feature_names, n_features};
use recsys::rank::two_stage::{training_table, SourceConfigs};
use recsys::training::prepare;

#[derive(Parser)]
struct Args {
    /// Config whose data, split and two_stage settings to use.
    #[arg(long)]
    config: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Override `[models.two_stage] label_windows`.
    #[arg(long)]
    label_windows: Option<usize>,
}

fn run() -> Result<()> {
    let args = Args::parse();
    let mut config = Config::load(&args.config)?;
    if let Some(w) = args.label_windows {
        config.models.two_stage.label_windows = w;
    }
    let started = Instant::now();
    let prepared = prepare(
        &config,
        None,
        &config.split.cutoff_rule()?,
        config.split.protocol,
    )?;
    let table = training_table(
        &prepared.split.train,
        prepared.split.cutoff_ms,
        prepared.split.protocol,
        prepared.item_features.as_ref(),
        SourceConfigs {
            popular: &config.models.popular,
            history: &config.models.history,
            als: &config.models.als,
        },
        &config.rules,
        &config.models.two_stage,
    )?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let rows = table.rows();
    npy::write(
        &args.out.join("features.npy"),
        &[rows, n_features()],
        &table.features,
    )?;
    npy::write(&args.out.join("labels.npy"), &[rows], &table.labels)?;
    let groups: Vec<u64> = table.groups.iter().map(|&g| g as u64).collect();
    npy::write(&args.out.join("groups.npy"), &[groups.len()], &groups)?;
    std::fs::write(
        args.out.join("feature_names.json"),
        serde_json::to_vec_pretty(feature_names())?,
    )?;
    println!(
        "{}",
        serde_json::json!({
            "rows": rows,
            "groups": groups.len() - 1,
            "features": n_features(),
            "positives": table.labels.iter().filter(|&&l| l > 0.0).count(),
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rerank_table: {e:#}");
            ExitCode::FAILURE
        }
    }
}
