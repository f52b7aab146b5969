//! `recsys export`: a bundle's lists as Parquet tables for `recsys pg push`, or
//! an event file validated into a Parquet snapshot.
//!
//! Both are what the Airflow pipelines publish (`pipelines/airflow/`): the
//! retraining DAG exports the new bundle's tables and pushes them to Postgres;
//! the data-loading DAG turns the raw events it pulled into the snapshot it
//! keeps in S3. The snapshot is checked by the loader `train` uses, so a file
//! that would fail training fails here, before it is published.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::{bundle_dir, load_config, report_cleaning};
use crate::data::load_events;
use crate::engine::export::{export_events, export_tables, ExportOptions, ExportUsers};
use crate::engine::{Engine, EngineSettings};

/// Arguments of `recsys export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Config file.
    #[arg(long, default_value = "config.toml")]
    pub config: PathBuf,
    /// A bundle, or a directory of bundles (its newest); default: the newest in the artifacts directory.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Directory for the Parquet files (created if missing; files there are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Popular items in `top_popular`, and items per user in `recommendations`.
    #[arg(long, default_value_t = 30, value_parser = super::list_length)]
    pub k: usize,
    /// Similar items per item in `similar_items` (computed for every item).
    #[arg(long, default_value_t = 10, value_parser = super::list_length)]
    pub similar_k: usize,
    /// `recommendations` for the shoppers with an event in the last this many
    /// days of training (0: every shopper).
    #[arg(long, default_value_t = 7)]
    pub active_days: u32,
    /// `recommendations` for the shopper ids in this file instead (one per line).
    #[arg(long, conflicts_with = "active_days")]
    pub users: Option<PathBuf>,
    /// Instead of a bundle's tables: validate this event file (CSV or Parquet)
    /// as `train` loads it and write it as OUT/events.parquet.
    #[arg(long, conflicts_with_all = ["bundle", "k", "similar_k", "users", "active_days"])]
    pub events: Option<PathBuf>,
}

pub(super) fn run(args: ExportArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    if let Some(path) = &args.events {
        let loaded = load_events(path, config.data.bad_rows)
            .with_context(|| format!("loading events from {}", path.display()))?;
        report_cleaning(&loaded);
        let written = export_events(&loaded, &args.out)?;
        println!(
            "wrote {}: {} events from {}",
            written.path.display(),
            written.rows,
            path.display()
        );
        return Ok(());
    }
    let users = match &args.users {
        Some(path) => ExportUsers::Listed(read_user_ids(path)?),
        None => ExportUsers::ActiveDays(args.active_days),
    };
    let options = ExportOptions {
        k: args.k,
        similar_k: args.similar_k,
        users,
    };
    let engine = Engine::load(
        &bundle_dir(args.bundle, &config)?,
        &EngineSettings::from_config(&config),
    )?;
    let summary = export_tables(&engine, &args.out, &options)?;
    for skipped in &summary.skipped {
        eprintln!("note: {} not written: {}", skipped.table, skipped.reason);
    }
    for written in &summary.written {
        println!(
            "wrote {}: {} rows of {} from bundle {}",
            written.path.display(),
            written.rows,
            written.table,
            engine.version
        );
    }
    Ok(())
}

/// Shopper ids, one per line (blank lines and `#` comments skipped).
fn read_user_ids(path: &std::path::Path) -> Result<Vec<i64>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading shopper ids from {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| {
            line.parse().with_context(|| {
                format!(
                    "{}: line {n}: `{line}` is not an integer shopper id",
                    path.display()
                )
            })
        })
        .collect()
}
