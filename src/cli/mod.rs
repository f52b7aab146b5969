//! The `recsys` command line: argument definitions and one function per command.
//!
//! Arguments are parsed by clap into the structs here, merged with the config
//! file into validated settings, and only then does any work start — so a bad
//! flag never leaves half-written output behind.

mod evaluate;
mod experiment;
mod export;
mod generate;
mod pg;
mod recommend;
mod s3;
mod serve;
mod train;
mod tune;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::Config;

/// recsys: recommend the products a shopper will add to the cart.
#[derive(Debug, Parser)]
#[command(name = "recsys", version, about, long_about = None)]
pub struct Cli {
    /// Log lines on stderr as `text` or `json` (one object per line); the
    /// level comes from RUST_LOG (default info; `debug` logs every request).
    #[arg(long, global = true, value_enum, default_value_t = crate::logging::LogFormat::Text)]
    pub log_format: crate::logging::LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train every configured model and write a versioned bundle.
    Train(train::TrainArgs),
    /// Score a bundle's models on the test window: precision@k, recall@k and more.
    Evaluate(evaluate::EvaluateArgs),
    /// Search the model settings on a validation window before the cutoff; print or write the best.
    Tune(tune::TuneArgs),
    /// Recommend items to a user, or items similar to an item (JSON).
    Recommend(recommend::RecommendArgs),
    /// Write a synthetic dataset shaped like RetailRocket.
    Generate(generate::GenerateArgs),
    /// Write a bundle's lists (popular, similar items, recommendations) as Parquet tables.
    Export(export::ExportArgs),
    /// Serve recommendations over HTTP, with Prometheus metrics.
    Serve(serve::ServeArgs),
    /// A/B tests between bundles: a running service's report, or a simulation on an event log.
    Experiment(experiment::ExperimentArgs),
    /// Object storage: list, measure, push and pull (any S3-compatible server).
    S3(s3::S3Args),
    /// PostgreSQL tables: show, load to Parquet, push from a file, drop.
    Pg(pg::PgArgs),
}

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    crate::logging::init(cli.log_format);
    match cli.command {
        Command::Train(args) => train::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Tune(args) => tune::run(args),
        Command::Recommend(args) => recommend::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Export(args) => export::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Experiment(args) => experiment::run(args),
        Command::S3(args) => s3::run(args),
        Command::Pg(args) => pg::run(args),
    }
}

/// Clap's parser of every `--k` (and `--similar-k`): a list length in
/// 1..=[`MAX_LIST_LENGTH`](crate::config::MAX_LIST_LENGTH), refused before
/// any data is loaded.
fn list_length(value: &str) -> std::result::Result<usize, String> {
    let max = crate::config::MAX_LIST_LENGTH;
    match value.trim().parse::<u64>() {
        Ok(k) if (1..=max).contains(&k) => Ok(k as usize),
        _ => Err(format!("must be a list length from 1 to {max}")),
    }
}

/// Read the config file named on the command line.
fn load_config(path: &Path) -> Result<Config> {
    if !path.exists() {
        anyhow::bail!(
            "config file {} not found; pass --config PATH (the repository's config.toml is an example)",
            path.display()
        );
    }
    Config::load(path)
}

/// What `--bundle` names: a bundle, or a directory of bundles (by default the artifacts directory).
fn bundle_dir_root(flag: Option<PathBuf>, config: &Config) -> PathBuf {
    flag.unwrap_or_else(|| config.artifacts.dir.clone())
}

/// The bundle directory from `--bundle`, or the newest in the artifacts directory.
fn bundle_dir(flag: Option<PathBuf>, config: &Config) -> Result<PathBuf> {
    crate::bundle::resolve(&bundle_dir_root(flag, config))
}

/// Tell on stderr what loading removed from the event file: exact duplicates
/// and, under `bad_rows = "skip"`, unusable rows.
fn report_cleaning(loaded: &crate::data::LoadedEvents) {
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
}

/// Print `value` as one line of JSON on stdout.
fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value).context("writing JSON to stdout")?;
    writeln!(out).context("writing to stdout")
}
