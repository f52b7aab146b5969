//! `recsys experiment`: A/B tests between bundles — a running service's
//! report, or one simulated on a real event log.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use super::{load_config, print_json};
use crate::data::load_events;
use crate::data::time::parse_date_ms;
use crate::engine::EngineSettings;
use crate::experiment::{Experiment, Report, VariantConfig};
use crate::serve::simulate::{simulate, Simulation};

/// Arguments of `recsys experiment`.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ExperimentCommand,
}

/// The `experiment` subcommands.
#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// A running service's experiment, per variant (its GET /experiment).
    Report(ReportArgs),
    /// Replay an event log's test window against two bundles in-process and report the A/B test.
    Simulate(SimulateArgs),
}

/// Arguments of `recsys experiment report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The service's address, e.g. http://127.0.0.1:8000.
    #[arg(long)]
    pub url: String,
    /// Print the report's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `recsys experiment simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Config file (`[serve]` and `[serve.feedback]` settings, `[rules]`, `[data] bad_rows`).
    #[arg(long, default_value = "config.toml")]
    pub config: PathBuf,
    /// The control's bundle (or a directory of bundles: its newest).
    #[arg(long)]
    pub bundle_a: PathBuf,
    /// The treatment's bundle.
    #[arg(long)]
    pub bundle_b: PathBuf,
    /// Event file (CSV or Parquet) whose test window is replayed (default: the config's).
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Start of the replayed window; it must not be before either bundle's training cutoff.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub cutoff: String,
    /// Items per answer.
    #[arg(long, default_value_t = 10, value_parser = super::list_length)]
    pub k: usize,
    /// Share of shoppers sent to B.
    #[arg(long, default_value_t = 0.5)]
    pub share_b: f64,
    /// The experiment's name (it seeds the assignment of shoppers).
    #[arg(long, default_value = "simulation")]
    pub name: String,
    /// Print the report's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Run `recsys experiment …`.
pub(super) fn run(args: ExperimentArgs) -> Result<()> {
    match args.command {
        ExperimentCommand::Report(args) => report(args),
        ExperimentCommand::Simulate(args) => run_simulation(args),
    }
}

fn show(report: &Report, json: bool) -> Result<()> {
    if json {
        print_json(report)
    } else {
        print!("{}", report.to_table());
        Ok(())
    }
}

fn report(args: ReportArgs) -> Result<()> {
    let url = format!("{}/experiment", args.url.trim_end_matches('/'));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(&url)
        .call()
        .with_context(|| format!("asking {url}; is `recsys serve` running there?"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .body_mut()
        .read_json()
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        bail!(
            "{url} answered {status}: {}",
            body["error"].as_str().unwrap_or("no reason given")
        );
    }
    if args.json {
        return print_json(&body);
    }
    let report: Report = serde_json::from_value(body)
        .with_context(|| format!("{url} did not answer an experiment report"))?;
    show(&report, false)
}

fn run_simulation(args: SimulateArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    if !(args.share_b > 0.0 && args.share_b < 1.0) {
        bail!("--share-b must be between 0 and 1, got {}", args.share_b);
    }
    let cutoff_ms = parse_date_ms(&args.cutoff)
        .map_err(anyhow::Error::msg)
        .context("--cutoff")?;
    let experiment = Experiment {
        name: args.name,
        variants: vec![
            VariantConfig {
                name: "A".into(),
                bundle: args.bundle_a,
                share: 1.0 - args.share_b,
            },
            VariantConfig {
                name: "B".into(),
                bundle: args.bundle_b,
                share: args.share_b,
            },
        ],
    };
    experiment.validate()?;
    let events = args.events.unwrap_or_else(|| config.data.events.clone());
    let loaded = load_events(&events, config.data.bad_rows)
        .with_context(|| format!("loading events from {}", events.display()))?;
    let report = simulate(
        &Simulation {
            experiment,
            serve: config.serve.clone(),
            engine: EngineSettings::from_config(&config),
            k: args.k,
        },
        &loaded.log,
        cutoff_ms,
    )?;
    show(&report, args.json)
}
