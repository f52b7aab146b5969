//! `recsys train`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use super::load_config;
use crate::data::time::{format_date, format_ms};
use crate::data::{Cutoff, Protocol};
use crate::eval::evaluate_bundle;
use crate::train::{fit, prepare};

/// Arguments of `recsys train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Config file.
    #[arg(long, default_value = "config.toml")]
    pub config: PathBuf,
    /// Event file (CSV or Parquet) instead of the config's.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Train on events before this date (YYYY-MM-DD, UTC) instead of the config's split.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub cutoff: Option<String>,
    /// Evaluation protocol the training data is prepared for (reference drops transactions).
    #[arg(long)]
    pub protocol: Option<Protocol>,
    /// Directory of bundles to write into (default: the config's artifacts directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Evaluate the new bundle on the test window and print the table.
    #[arg(long)]
    pub evaluate: bool,
    /// List length for --evaluate (default: the config's).
    #[arg(long)]
    pub k: Option<usize>,
}

pub(super) fn run(args: TrainArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    let cutoff = match &args.cutoff {
        Some(date) => Cutoff::Date(date.clone()),
        None => config.split.cutoff_rule()?,
    };
    let protocol = args.protocol.unwrap_or(config.split.protocol);
    let k = args.k.unwrap_or(config.eval.k);
    anyhow::ensure!(k > 0, "--k must be at least 1");
    let started = Instant::now();
    let prepared = prepare(&config, args.events, &cutoff, protocol)?;
    let loaded = &prepared.loaded;
    let [views, carts, buys] = loaded.log.kind_counts();
    eprintln!(
        "loaded {} events from {} ({views} views, {carts} add-to-carts, {buys} transactions) in {:.1}s",
        loaded.log.len(),
        prepared.events_path.display(),
        started.elapsed().as_secs_f64()
    );
    if loaded.duplicates_removed > 0 {
        eprintln!(
            "collapsed {} exact duplicate events",
            loaded.duplicates_removed
        );
    }
    if loaded.skipped_rows > 0 {
        eprintln!(
            "skipped {} bad rows (bad_rows = \"skip\"); first: {}",
            loaded.skipped_rows,
            loaded.first_skipped.as_deref().unwrap_or("?")
        );
    }
    if let Some(features) = &prepared.item_features {
        eprintln!("item features for {} items", features.by_item.len());
    }
    eprintln!(
        "split at {} ({} protocol): {} training events, {} test events",
        format_ms(prepared.split.cutoff_ms),
        protocol,
        prepared.train.len(),
        prepared.split.test.len()
    );
    let bundle = fit(&config, &prepared)?;
    let out = args.out.unwrap_or_else(|| config.artifacts.dir.clone());
    let dir = bundle.save(&out)?;
    let m = &bundle.manifest;
    eprintln!(
        "trained {} on {} users × {} items (data before {}) in {}",
        m.models.join(", "),
        m.data.users,
        m.data.items,
        format_date(m.cutoff_ms),
        m.models
            .iter()
            .map(|name| format!(
                "{name} {:.2}s",
                m.training[name]["seconds"].as_f64().unwrap_or_default()
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(t) = &bundle.two_stage {
        let facts = &m.training["two_stage"];
        eprintln!(
            "two_stage re-ranker: {} trees on {} rows ({} users, {} positives); top features by gain:",
            t.booster.n_trees(),
            facts["rows"],
            facts["groups"],
            facts["positives"]
        );
        let importance = t.booster.feature_importance();
        let total: f64 = importance
            .iter()
            .map(|f| f.1)
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        for (name, gain) in importance.iter().take(10) {
            eprintln!("  {name:<28} {:>6.1}%", 100.0 * gain / total);
        }
    }
    println!("bundle {}", dir.display());
    if args.evaluate {
        let started = Instant::now();
        let report = evaluate_bundle(&bundle, &prepared.split, k, config.models.exclude_seen);
        eprintln!("evaluated in {:.1}s", started.elapsed().as_secs_f64());
        print!("\n{}", report.to_table());
    }
    Ok(())
}
