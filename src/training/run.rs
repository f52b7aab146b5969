//! One training run: prepare → fit → save → evaluate, timed.
//!
//! `recsys train` wraps this in experiment tracking (started before, finished
//! after, so that a failed run is recorded as failed) and prints what the
//! [`Observer`] is told; tests and pipelines can run it without a terminal.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{fit_with, prepare, FitOptions, Prepared};
use crate::bundle::{Bundle, Manifest};
use crate::config::Config;
use crate::data::{Cutoff, Protocol};
use crate::engine::{Engine, EngineSettings};
use crate::eval::{evaluate_engine, Report};

/// What a run is asked to do beyond the config.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Event file instead of the config's.
    pub events: Option<PathBuf>,
    /// Where the test window starts.
    pub cutoff: Cutoff,
    /// What counts as relevant.
    pub protocol: Protocol,
    /// Directory of bundles to write into.
    pub out: PathBuf,
    /// Evaluate the new bundle at this k (through the live engine).
    pub evaluate_k: Option<usize>,
    /// What fitting records.
    pub options: FitOptions,
}

/// Told about each stage as it ends (printing, progress); every method does
/// nothing by default.
pub trait Observer {
    /// The data is loaded, validated and split.
    fn prepared(&mut self, _prepared: &Prepared, _took: Duration) {}
    /// The bundle is fitted and saved in `dir`.
    fn saved(&mut self, _bundle: &Bundle, _dir: &Path) {}
    /// The bundle is evaluated.
    fn evaluated(&mut self, _report: &Report, _took: Duration) {}
}

/// An observer that is told nothing.
pub struct Quiet;

impl Observer for Quiet {}

/// What one run produced.
#[derive(Debug)]
pub struct Trained {
    /// The saved bundle's manifest.
    pub manifest: Manifest,
    /// Where it was saved.
    pub dir: PathBuf,
    /// The evaluation, when asked for.
    pub report: Option<Report>,
    /// Wall-clock time of each stage (`load`, `fit`, `evaluate`, `total`).
    pub timings: Vec<(&'static str, Duration)>,
}

/// Load, fit, save and (when asked) evaluate, telling `observer` as it goes.
pub fn run(
    config: &Config,
    settings: &RunSettings,
    observer: &mut dyn Observer,
) -> Result<Trained> {
    let started = Instant::now();
    let prepared = prepare(
        config,
        settings.events.clone(),
        &settings.cutoff,
        settings.protocol,
    )?;
    let load_time = started.elapsed();
    observer.prepared(&prepared, load_time);
    let fit_started = Instant::now();
    let bundle = fit_with(config, &prepared, settings.options)?;
    let fit_time = fit_started.elapsed();
    let dir = bundle.save(&settings.out)?;
    observer.saved(&bundle, &dir);
    let manifest = bundle.manifest.clone();
    let mut timings = vec![("load", load_time), ("fit", fit_time)];
    let report = match settings.evaluate_k {
        Some(k) => {
            let eval_started = Instant::now();
            let engine = Engine::from_bundle(bundle, &dir, &EngineSettings::from_config(config))?;
            let report = evaluate_engine(&engine, &prepared.split, k);
            let took = eval_started.elapsed();
            timings.push(("evaluate", took));
            observer.evaluated(&report, took);
            Some(report)
        }
        None => None,
    };
    timings.push(("total", started.elapsed()));
    Ok(Trained {
        manifest,
        dir,
        report,
        timings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_saves_an_evaluated_bundle_and_times_each_stage() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut config = Config::load(&root.join("config.toml")).unwrap();
        config.models.enabled = vec!["popular".into(), "history".into()];
        let out = tempfile::tempdir().unwrap();
        let settings = RunSettings {
            events: None,
            cutoff: config.split.cutoff_rule().unwrap(),
            protocol: Protocol::Strict,
            out: out.path().to_path_buf(),
            evaluate_k: Some(5),
            options: FitOptions::default(),
        };
        let trained = run(&config, &settings, &mut Quiet).unwrap();
        assert!(trained.dir.join("manifest.json").is_file());
        assert_eq!(trained.manifest.models, ["popular", "history"]);
        let report = trained.report.unwrap();
        assert_eq!(report.k, 5);
        assert!(report.users > 0);
        let stages: Vec<&str> = trained.timings.iter().map(|t| t.0).collect();
        assert_eq!(stages, ["load", "fit", "evaluate", "total"]);
    }
}
