//! `recsys evaluate`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::{bundle_dir, load_config, print_json};
use crate::bundle::Bundle;
use crate::config::Config;
use crate::data::load_events;
use crate::data::time::DAY_MS;
use crate::data::time::{format_date, parse_date_ms};
use crate::data::{Cutoff, Protocol};
use crate::engine::{Engine, EngineSettings};
use crate::eval::bootstrap::Intervals;
use crate::eval::replay::replay;
use crate::eval::{evaluate_engine, Report};
use crate::training::rolling::{fold_cutoffs, rolling, windows};
use crate::training::{data_fingerprint, prepare};

/// Arguments of `recsys evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Config file.
    #[arg(long, default_value = "config.toml")]
    pub config: PathBuf,
    /// List length (default: the config's).
    #[arg(long, value_parser = super::list_length)]
    pub k: Option<usize>,
    /// Event file (CSV or Parquet) instead of the config's.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Start of the test window (default: the bundle's training cutoff).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub cutoff: Option<String>,
    /// A bundle, or a directory of bundles (its newest); default: the newest in the artifacts directory.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// What counts as relevant (default: the protocol the bundle was trained for).
    #[arg(long)]
    pub protocol: Option<Protocol>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also replay the test window in time order, as the service receives it:
    /// every add-to-cart predicted from the shopper's events before it (hit
    /// rate, MRR, precision and recall per shopper; `"replay"` in the JSON).
    #[arg(long)]
    pub replay: bool,
    /// Rolling evaluation: train at each of these cutoffs (comma-separated
    /// dates, ascending) and evaluate on the window up to the next; the
    /// shoppers of every window are pooled. Trains in memory; writes no bundle.
    #[arg(long, value_name = "DATE,DATE,…", value_delimiter = ',', conflicts_with_all = ["bundle", "cutoff", "replay", "folds"])]
    pub cutoffs: Vec<String>,
    /// Rolling evaluation over the last N windows of `--fold-days` days each.
    #[arg(long, value_name = "N", requires = "fold_days", conflicts_with_all = ["bundle", "cutoff", "replay"])]
    pub folds: Option<usize>,
    /// Length of each window of `--folds`, days.
    #[arg(long, value_name = "D", requires = "folds")]
    pub fold_days: Option<i64>,
    /// Length of the last window of `--cutoffs`, days (default: the gap between the last two cutoffs, or 7).
    #[arg(long, value_name = "D")]
    pub test_days: Option<i64>,
    /// Bootstrap resamples of the shoppers for the 95% intervals (0: none).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap resamples.
    #[arg(long, default_value_t = 42)]
    pub bootstrap_seed: u64,
}

pub(super) fn run(args: EvaluateArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    let k = args.k.unwrap_or(config.eval.k);
    if !args.cutoffs.is_empty() || args.folds.is_some() {
        return run_rolling(args, &config, k);
    }
    let dir = bundle_dir(args.bundle.clone(), &config)?;
    let bundle = Bundle::load(&dir)?;
    let trained = &bundle.manifest;
    let protocol = args.protocol.unwrap_or(trained.protocol);
    if protocol != trained.protocol {
        bail!(
            "bundle {} was trained for the {} protocol; to evaluate under {protocol}, train with --protocol {protocol}",
            dir.display(),
            trained.protocol
        );
    }
    let cutoff_ms = match &args.cutoff {
        Some(date) => parse_date_ms(date).map_err(anyhow::Error::msg)?,
        None => trained.cutoff_ms,
    };
    if cutoff_ms < trained.cutoff_ms {
        bail!(
            "--cutoff {} is before the bundle's training cutoff {}: the test window would overlap its training data",
            format_date(cutoff_ms),
            format_date(trained.cutoff_ms)
        );
    }
    let prepared = prepare(
        &config,
        args.events.clone(),
        &Cutoff::Date(format_date(cutoff_ms)),
        protocol,
    )?;
    if data_fingerprint(&prepared.loaded) != trained.data.fingerprint {
        eprintln!(
            "note: {} differs from the data bundle {} was trained on; ids are matched by value",
            prepared.events_path.display(),
            trained.run_id
        );
    }
    let engine = Engine::from_bundle(bundle, &dir, &EngineSettings::from_config(&config))?;
    let mut report = evaluate_engine(&engine, &prepared.split, k);
    if report.users == 0 {
        bail!(
            "no user in the test window from {} has relevant items under the {protocol} protocol; nothing to evaluate",
            format_date(cutoff_ms)
        );
    }
    if args.replay {
        report.replay = Some(replay(&engine, &prepared.split.test, k));
    }
    show(report, &args)
}

/// Add the bootstrap intervals `args` ask for and print `report`.
fn show(mut report: Report, args: &EvaluateArgs) -> Result<()> {
    if args.bootstrap > 0 {
        report.intervals = Some(Intervals::compute(
            &report.results,
            "two_stage",
            args.bootstrap,
            args.bootstrap_seed,
        ));
    }
    if args.json {
        print_json(&report.to_json())
    } else {
        print!("{}", report.to_table());
        Ok(())
    }
}

/// `--cutoffs` / `--folds`: train and evaluate at every cutoff, pooled.
fn run_rolling(args: EvaluateArgs, config: &Config, k: usize) -> Result<()> {
    let protocol = args.protocol.unwrap_or(config.split.protocol);
    let (cutoffs, last_days) = match (args.folds, args.fold_days) {
        (Some(n), Some(days)) => {
            if n == 0 || days <= 0 {
                bail!("--folds and --fold-days must be at least 1");
            }
            let events = args
                .events
                .clone()
                .unwrap_or_else(|| config.data.events.clone());
            let loaded = load_events(&events, config.data.bad_rows)
                .with_context(|| format!("loading events from {}", events.display()))?;
            let (_, end) = loaded
                .log
                .time_range()
                .with_context(|| format!("{} has no events", events.display()))?;
            (fold_cutoffs(end, n, days), days)
        }
        _ => {
            let cutoffs = args
                .cutoffs
                .iter()
                .map(|d| parse_date_ms(d.trim()).map_err(anyhow::Error::msg))
                .collect::<Result<Vec<i64>>>()
                .context("--cutoffs")?;
            let gap = cutoffs
                .windows(2)
                .last()
                .map_or(7, |w| (w[1] - w[0]) / DAY_MS);
            (cutoffs, args.test_days.unwrap_or(gap.max(1)))
        }
    };
    let windows = windows(&cutoffs, last_days).context("--cutoffs")?;
    let report = rolling(config, args.events.clone(), &windows, protocol, k)?;
    if report.users == 0 {
        bail!("no user in any test window has relevant items under the {protocol} protocol; nothing to evaluate");
    }
    show(report, &args)
}
