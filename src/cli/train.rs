//! `recsys train`, and recording it as an MLflow run when a tracking server is set.
//!
//! Training comes first: the run is started before the data is loaded (so a
//! failure is recorded as FAILED), but nothing the tracking server does or
//! fails to do stops training or the bundle being saved. A tracking failure is
//! reported once, at the end, as a warning — or as the error, with
//! `--require-tracking`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;

use super::{load_config, report_cleaning};
use crate::bundle::Bundle;
use crate::config::Config;
use crate::data::time::{format_date, format_ms};
use crate::data::{Cutoff, Protocol};
use crate::eval::Report;
use crate::tracking::{
    now_ms, record, LogBatch, Metric, Param, RunStatus, Tag, TrackingError, TrackingOverrides,
    TrackingSettings, TrainingRun,
};
use crate::training::tune::Tuned;
use crate::training::{run as run_training, FitOptions, Observer, Prepared, RunSettings, Trained};

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
    #[arg(long, value_parser = super::list_length)]
    pub k: Option<usize>,
    /// MLflow tracking server to record the run in (default: `uri` in [tracking], then MLFLOW_TRACKING_URI).
    #[arg(long, value_name = "URL")]
    pub tracking_uri: Option<String>,
    /// Exit non-zero (after saving the bundle) if the run cannot be recorded.
    #[arg(long)]
    pub require_tracking: bool,
    /// Register the uploaded bundle as a new version of this MLflow model.
    #[arg(long, value_name = "NAME")]
    pub register: Option<String>,
    /// Search the settings first (as `recsys tune` does, on a validation
    /// window before the cutoff) and train with the best.
    #[arg(long)]
    pub tune: bool,
    /// The search, with --tune.
    #[command(flatten)]
    pub tune_flags: super::tune::TuneFlags,
}

pub(super) fn run(args: TrainArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    let cutoff = match &args.cutoff {
        Some(date) => Cutoff::Date(date.clone()),
        None => config.split.cutoff_rule()?,
    };
    let protocol = args.protocol.unwrap_or(config.split.protocol);
    let k = args.k.unwrap_or(config.eval.k);
    let tuned = if args.tune {
        let tuned = super::tune::search(
            &config,
            args.events.clone(),
            &cutoff,
            protocol,
            k,
            &args.tune_flags,
            false,
        )?;
        eprintln!(
            "tuned: trial {} of {} is best ({} recall@{k} {:.4} on {} .. {}; as configured {:.4}); training with it",
            tuned.best,
            tuned.trials.len(),
            tuned.objective,
            tuned.best().score,
            format_date(tuned.valid_from_ms),
            format_date(tuned.cutoff_ms),
            tuned.trials[0].score
        );
        Some(tuned)
    } else {
        None
    };
    let config = tuned.as_ref().map_or(config, |t| t.best().config.clone());
    let overrides = TrackingOverrides {
        uri: args.tracking_uri.clone(),
        require: args.require_tracking,
    };
    let tracking =
        TrackingSettings::resolve(&overrides, &config.tracking, |key| std::env::var(key).ok())?;
    if let Some(name) = &args.register {
        match &tracking {
            _ if name.trim().is_empty() => bail!("--register needs a model name"),
            None => bail!(
                "--register {name} needs a tracking server; set uri in [tracking], MLFLOW_TRACKING_URI or --tracking-uri"
            ),
            Some(s) if !s.log_bundle => bail!(
                "--register {name} registers the uploaded bundle, but log_bundle = false in [tracking]; remove it"
            ),
            Some(_) => {}
        }
    }

    let Some(settings) = tracking else {
        train(&args, &config, &cutoff, protocol, k, FitOptions::default())?;
        return Ok(());
    };
    let uri = settings.uri.clone();
    let required = settings.required;
    let events = args.events.as_ref().unwrap_or(&config.data.events);
    let mut extra = vec![
        Param::new("train.events", events.display().to_string()),
        Param::new("train.protocol", protocol.as_str()),
        Param::new("train.evaluate", args.evaluate.to_string()),
    ];
    if args.evaluate {
        extra.push(Param::new("train.k", k.to_string()));
    }
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let commit = std::env::current_dir()
        .ok()
        .and_then(|dir| record::git_commit(&dir));
    let mut run = TrainingRun::start(
        settings,
        record::config_params(&config, extra),
        record::start_tags(&command_line, commit),
    );
    if let Some(tuned) = &tuned {
        record_trials(&run, tuned, k);
    }
    let options = FitOptions {
        record_als_loss: run.is_recording(),
    };
    let trained = match train(&args, &config, &cutoff, protocol, k, options) {
        Ok(trained) => trained,
        Err(e) => {
            if let Err(failure) = run.finish(RunStatus::Failed, None) {
                eprintln!("recsys: warning: {}", tracking_failed(&uri, &failure, None));
            }
            return Err(e);
        }
    };
    let version = record_run(&mut run, &trained, args.register.as_deref());
    match run.finish(RunStatus::Finished, Some(&trained.manifest.run_id)) {
        Ok(tracked) => {
            eprintln!(
                "recorded as MLflow run {} ({})",
                tracked.run_id, tracked.url
            );
            if let (Some(name), Some(version)) = (&args.register, version) {
                eprintln!("registered model `{name}` version {version}");
            }
            Ok(())
        }
        Err(failure) => {
            let message = tracking_failed(&uri, &failure, Some(&trained.dir));
            if required {
                bail!(message);
            }
            eprintln!("recsys: warning: {message}");
            Ok(())
        }
    }
}

/// Record every tuning trial as a child run of `parent`: its settings as
/// params, every model's validation recall as metrics. A child that cannot be
/// recorded is reported and skipped; the parent's own record goes on.
fn record_trials(parent: &TrainingRun, tuned: &Tuned, k: usize) {
    let Some(parent_id) = parent.run_id() else {
        return;
    };
    for trial in &tuned.trials {
        let mut params: Vec<Param> = trial
            .params
            .iter()
            .map(|(key, value)| Param::new(key.clone(), value.to_string()))
            .collect();
        params.push(Param::new("tune.trial", trial.number.to_string()));
        params.push(Param::new("tune.objective", tuned.objective.clone()));
        let tags = vec![
            Tag::new("mlflow.parentRunId", parent_id),
            Tag::new("recsys.tune.best", (trial.number == tuned.best).to_string()),
        ];
        let mut child = TrainingRun::start(parent.settings().clone(), params, tags);
        let now = now_ms();
        let metrics = trial
            .scores
            .iter()
            .filter_map(|(model, recall)| {
                Metric::new(format!("{model}_valid_recall_at_{k}"), *recall, now, 0)
            })
            .chain(Metric::new("valid_seconds", trial.seconds, now, 0))
            .collect();
        child.log(LogBatch {
            metrics,
            ..LogBatch::default()
        });
        if let Err(e) = child.finish(
            RunStatus::Finished,
            Some(&format!("tune trial {}", trial.number)),
        ) {
            eprintln!(
                "recsys: warning: tuning trial {} was not recorded ({e})",
                trial.number
            );
        }
    }
}

/// The one sentence a tracking failure is reported with.
fn tracking_failed(uri: &str, failure: &TrackingError, bundle: Option<&Path>) -> String {
    let mut message = format!("experiment tracking at {uri} failed ({failure})");
    if let Some(dir) = bundle {
        message.push_str(&format!("; the bundle is saved at {}", dir.display()));
    }
    message
}

/// Log what `trained` found, upload its files and register it as model
/// `register`; returns the registered version.
fn record_run(run: &mut TrainingRun, trained: &Trained, register: Option<&str>) -> Option<String> {
    let now = now_ms();
    let manifest = &trained.manifest;
    let mut batch = LogBatch {
        params: vec![Param::new("train.cutoff", format_date(manifest.cutoff_ms))],
        metrics: record::training_metrics(manifest, now),
        tags: record::bundle_tags(manifest, &trained.dir),
    };
    batch
        .metrics
        .extend(record::seconds_metrics(&trained.timings, now));
    if let Some(report) = &trained.report {
        batch
            .metrics
            .extend(record::evaluation_metrics(report, now));
    }
    run.log(batch);
    if let Some(report) = &trained.report {
        let json = serde_json::to_vec_pretty(&report.to_json()).expect("JSON values serialise");
        run.upload_bytes("metrics.json", &json);
    }
    if run.settings().log_bundle {
        run.upload_dir(&trained.dir, "bundle");
    }
    register.and_then(|name| run.register(name, "bundle"))
}

/// Train as `args` say, printing each stage as it ends.
fn train(
    args: &TrainArgs,
    config: &Config,
    cutoff: &Cutoff,
    protocol: Protocol,
    k: usize,
    options: FitOptions,
) -> Result<Trained> {
    let settings = RunSettings {
        events: args.events.clone(),
        cutoff: cutoff.clone(),
        protocol,
        out: args
            .out
            .clone()
            .unwrap_or_else(|| config.artifacts.dir.clone()),
        evaluate_k: args.evaluate.then_some(k),
        options,
    };
    run_training(config, &settings, &mut Printer)
}

/// Prints what `recsys train` shows of each stage.
struct Printer;

impl Observer for Printer {
    fn prepared(&mut self, prepared: &Prepared, took: Duration) {
        let loaded = &prepared.loaded;
        let [views, carts, buys] = loaded.log.kind_counts();
        eprintln!(
            "loaded {} events from {} ({views} views, {carts} add-to-carts, {buys} transactions) in {:.1}s",
            loaded.log.len(),
            prepared.events_path.display(),
            took.as_secs_f64()
        );
        report_cleaning(loaded);
        if let Some(features) = &prepared.item_features {
            eprintln!(
                "item features for {} items in {:.1}s",
                features.len(),
                prepared.items_seconds
            );
        }
        eprintln!(
            "split at {} ({} protocol): {} training events, {} test events",
            format_ms(prepared.split.cutoff_ms),
            prepared.split.protocol,
            prepared.train.len(),
            prepared.split.test.len()
        );
    }

    fn saved(&mut self, bundle: &Bundle, dir: &Path) {
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
    }

    fn evaluated(&mut self, report: &Report, took: Duration) {
        eprintln!("evaluated in {:.1}s", took.as_secs_f64());
        print!("\n{}", report.to_table());
    }
}
