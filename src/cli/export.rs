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
use crate::bundle::export::{export_bundle, export_events, ExportOptions};
use crate::bundle::Bundle;
use crate::data::load_events;

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
    #[arg(long, default_value_t = 30)]
    pub k: usize,
    /// Similar items per item in `similar_items` (computed for every item).
    #[arg(long, default_value_t = 10)]
    pub similar_k: usize,
    /// Instead of a bundle's tables: validate this event file (CSV or Parquet)
    /// as `train` loads it and write it as OUT/events.parquet.
    #[arg(long, conflicts_with_all = ["bundle", "k", "similar_k"])]
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
    let options = ExportOptions {
        k: args.k,
        similar_k: args.similar_k,
    };
    if options.k == 0 || options.similar_k == 0 {
        anyhow::bail!("--k and --similar-k must be at least 1");
    }
    let bundle = Bundle::load(&bundle_dir(args.bundle, &config)?)?;
    let summary = export_bundle(&bundle, &args.out, &options)?;
    for skipped in &summary.skipped {
        eprintln!("note: {} not written: {}", skipped.table, skipped.reason);
    }
    for written in &summary.written {
        println!(
            "wrote {}: {} rows of {} from bundle {}",
            written.path.display(),
            written.rows,
            written.table,
            bundle.manifest.run_id
        );
    }
    Ok(())
}
