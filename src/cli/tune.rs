//! `recsys tune`: search the settings on a validation window cut from the
//! training period, print the trials, and write the best settings.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::{load_config, print_json};
use crate::config::Config;
use crate::data::time::format_date;
use crate::data::{Cutoff, Protocol};
use crate::fsio::write_bytes_atomically;
use crate::training::tune::{tune, Trial, TuneOptions, Tuned};

/// The tuning flags, shared by `recsys tune` and `recsys train --tune`.
#[derive(Debug, Clone, Args)]
pub struct TuneFlags {
    /// Trials, the configuration as given included (default: `[tune] trials`).
    #[arg(long)]
    pub trials: Option<usize>,
    /// Stop starting trials after this many minutes (default: `[tune] budget_minutes`).
    #[arg(long, value_name = "M")]
    pub budget_minutes: Option<f64>,
    /// Days before the cutoff that validate (default: `[tune] valid_days`).
    #[arg(long, value_name = "D")]
    pub valid_days: Option<u32>,
    /// The model whose recall@k is maximised (default: `[tune] model`, else the served model).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Search only these settings (dotted keys, e.g. models.als.factors).
    #[arg(long, value_name = "KEY,KEY,…", value_delimiter = ',')]
    pub only: Vec<String>,
}

/// Arguments of `recsys tune`.
#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Config file (`[tune]` holds the search's settings).
    #[arg(long, default_value = "config.toml")]
    pub config: PathBuf,
    /// Event file (CSV or Parquet) instead of the config's.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// The test cutoff (YYYY-MM-DD); the validation window ends here. Default: the config's split.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub cutoff: Option<String>,
    /// What counts as relevant (default: the config's protocol).
    #[arg(long)]
    pub protocol: Option<Protocol>,
    /// List length of the objective recall@k (default: the config's).
    #[arg(long, value_parser = super::list_length)]
    pub k: Option<usize>,
    /// The search.
    #[command(flatten)]
    pub flags: TuneFlags,
    /// Write the config with the best settings to this file (next to the config).
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Print one JSON object instead of the table and snippet.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(args: TuneArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    if let Some(out) = &args.write {
        check_write_target(&args.config, out)?;
    }
    let cutoff = match &args.cutoff {
        Some(date) => Cutoff::Date(date.clone()),
        None => config.split.cutoff_rule()?,
    };
    let protocol = args.protocol.unwrap_or(config.split.protocol);
    let k = args.k.unwrap_or(config.eval.k);
    let quiet = args.json;
    let tuned = search(
        &config,
        args.events.clone(),
        &cutoff,
        protocol,
        k,
        &args.flags,
        quiet,
    )?;
    if let Some(out) = &args.write {
        write_config(&args.config, out, &tuned)?;
        eprintln!("wrote {} with the best settings", out.display());
    }
    if args.json {
        return print_json(&to_json(&tuned));
    }
    println!(
        "best: trial {} — {} recall@{k} {:.4} (trial 0, the config as given: {:.4})",
        tuned.best,
        tuned.objective,
        tuned.best().score,
        tuned.trials[0].score
    );
    print!("\n{}", tuned.snippet());
    Ok(())
}

/// Run the search `flags` describe on `config`, printing each trial on stderr unless `quiet`.
pub(super) fn search(
    config: &Config,
    events: Option<PathBuf>,
    cutoff: &Cutoff,
    protocol: Protocol,
    k: usize,
    flags: &TuneFlags,
    quiet: bool,
) -> Result<Tuned> {
    let mut tune_config = config.tune.clone();
    if let Some(n) = flags.trials {
        tune_config.trials = n;
    }
    if let Some(m) = flags.budget_minutes {
        tune_config.budget_minutes = Some(m);
    }
    if let Some(d) = flags.valid_days {
        tune_config.valid_days = d;
    }
    if let Some(m) = &flags.model {
        tune_config.model = Some(m.clone());
    }
    let options = TuneOptions {
        tune: tune_config,
        only: flags.only.clone(),
        k,
        protocol,
    };
    let mut header = false;
    tune(config, events, cutoff, &options, |trial| {
        if quiet {
            return;
        }
        if !header {
            eprintln!("{}", header_line(trial, k));
            header = true;
        }
        eprintln!("{}", trial_line(trial));
    })
}

fn header_line(trial: &Trial, k: usize) -> String {
    let mut line = format!(
        "{:>5} {:>11} {:>8}",
        "trial",
        format!("recall@{k}"),
        "seconds"
    );
    for key in trial.params.keys() {
        line.push_str(&format!(" {:>14}", short(key)));
    }
    line
}

fn trial_line(trial: &Trial) -> String {
    let mut line = format!(
        "{:>5} {:>11.4} {:>8.1}",
        trial.number, trial.score, trial.seconds
    );
    for value in trial.params.values() {
        line.push_str(&format!(" {value:>14.4}"));
    }
    line
}

/// `models.als.weights.addtocart` → `als.w.addtocart`: table columns stay narrow.
fn short(key: &str) -> String {
    key.trim_start_matches("models.")
        .replace("two_stage.reranker.", "rr.")
        .replace(".weights.", ".w.")
}

fn to_json(tuned: &Tuned) -> serde_json::Value {
    serde_json::json!({
        "objective": tuned.objective,
        "valid_from": format_date(tuned.valid_from_ms),
        "cutoff": format_date(tuned.cutoff_ms),
        "users": tuned.users,
        "best": tuned.best,
        "snippet": tuned.snippet(),
        "trials": tuned.trials.iter().map(|t| serde_json::json!({
            "trial": t.number,
            "score": t.score,
            "scores": t.scores,
            "params": t.params,
            "seconds": t.seconds,
        })).collect::<Vec<_>>(),
    })
}

/// Relative paths in a config are relative to its directory: the tuned copy
/// must live in the same one.
fn check_write_target(config: &Path, out: &Path) -> Result<()> {
    let dir = |p: &Path| {
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
        std::fs::canonicalize(parent.unwrap_or(Path::new(".")))
    };
    let same = match (dir(config), dir(out)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same {
        bail!(
            "--write {}: write the tuned config next to {} (paths in it are relative to its directory)",
            out.display(),
            config.display()
        );
    }
    if out.exists() && std::fs::canonicalize(out).ok() == std::fs::canonicalize(config).ok() {
        bail!("--write would overwrite the config being tuned; name a new file");
    }
    Ok(())
}

/// The config file's own table with the best settings set, written atomically to `out`.
fn write_config(config: &Path, out: &Path, tuned: &Tuned) -> Result<()> {
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("reading config {}", config.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing config {}", config.display()))?;
    let best: toml::Table = toml::from_str(&tuned.snippet()).context("the tuned settings")?;
    merge(&mut table, best);
    let header = format!(
        "# {} with the settings `recsys tune` found best (trial {}: {} recall {:.4} on the validation window {} .. {}).\n",
        config.display(),
        tuned.best,
        tuned.objective,
        tuned.best().score,
        format_date(tuned.valid_from_ms),
        format_date(tuned.cutoff_ms)
    );
    let body = toml::to_string_pretty(&table).context("writing the tuned config")?;
    write_bytes_atomically(out, format!("{header}{body}").as_bytes())
        .with_context(|| format!("writing {}", out.display()))
}

/// Set every key of `from` in `into`, descending into tables.
fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}
