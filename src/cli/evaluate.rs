//! `recsys evaluate`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::{bundle_dir, load_config, print_json};
use crate::bundle::Bundle;
use crate::data::time::{format_date, parse_date_ms};
use crate::data::{Cutoff, Protocol};
use crate::engine::{Engine, EngineSettings};
use crate::eval::evaluate_engine;
use crate::eval::replay::replay;
use crate::training::{data_fingerprint, prepare};

/// Arguments of `recsys evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Config file.
    #[arg(long, default_value = "config.toml")]
    pub config: PathBuf,
    /// List length (default: the config's).
    #[arg(long)]
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
}

pub(super) fn run(args: EvaluateArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    let k = args.k.unwrap_or(config.eval.k);
    if k == 0 {
        bail!("--k must be at least 1");
    }
    let dir = bundle_dir(args.bundle, &config)?;
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
        args.events,
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
    if args.json {
        print_json(&report.to_json())
    } else {
        print!("{}", report.to_table());
        Ok(())
    }
}
