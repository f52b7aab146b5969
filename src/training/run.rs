//! One training run: prepare → fit → save → evaluate, timed.
//!
//! `recsys train` wraps this in experiment tracking (started before, finished
//! after, so that a failed run is recorded as failed) and prints what the
//! [`Observer`] is told; tests and pipelines can run it without a terminal.
//!
//! A run first removes what killed runs left in the output directory (their
//! temporary bundle directories, tens of MB each, see
//! [`remove_stale_temp_dirs`]), saying on stderr what it removed: that is
//! someone's disk space, so it is said even when nobody observes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{fit_with, prepare, FitOptions, Prepared};
use crate::bundle::{Bundle, Manifest};
use crate::config::Config;
use crate::data::{Cutoff, Protocol};
use crate::engine::{Engine, EngineSettings};
use crate::eval::{evaluate_engine, Report};
use crate::fsio::{remove_stale_temp_dirs, RemovedTemp};

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
    /// Temporary directories of earlier, killed runs removed from the output
    /// directory.
    pub removed: Vec<RemovedTemp>,
}

/// Load, fit, save and (when asked) evaluate, telling `observer` as it goes.
pub fn run(
    config: &Config,
    settings: &RunSettings,
    observer: &mut dyn Observer,
) -> Result<Trained> {
    let started = Instant::now();
    let mut removed = Vec::new();
    for found in remove_stale_temp_dirs(&settings.out) {
        match found {
            Ok(r) => {
                eprintln!("recsys: {r}");
                removed.push(r);
            }
            // Not this run's business to fail over: it writes its own bundle.
            Err(e) => eprintln!("recsys: warning: {e:#}"),
        }
    }
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
            let split = prepared.into_test_window();
            let engine = Engine::from_bundle(bundle, &dir, &EngineSettings::from_config(config))?;
            let report = evaluate_engine(&engine, &split, k);
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
        removed,
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

    #[test]
    fn a_run_removes_what_killed_runs_left_and_keeps_what_others_write() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut config = Config::load(&root.join("config.toml")).unwrap();
        config.models.enabled = vec!["popular".into()];
        let out = tempfile::tempdir().unwrap();
        // A killed run's temporary bundle: its lock is free, its files old.
        let killed = out.path().join(".20150901T000000Z-abc.tmp-4242-17");
        std::fs::create_dir(&killed).unwrap();
        std::fs::write(killed.join("als_item_factors.npy"), vec![0u8; 2500]).unwrap();
        std::fs::File::create(killed.join(crate::fsio::LOCK_FILE)).unwrap();
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(600);
        for name in ["als_item_factors.npy", crate::fsio::LOCK_FILE, ""] {
            let file = std::fs::File::open(killed.join(name)).unwrap();
            file.set_modified(long_ago).unwrap();
        }
        // Another run's, being written right now.
        let writing = out.path().join(".20150901T000000Z-def.tmp-4243-18");
        std::fs::create_dir(&writing).unwrap();
        let lock = std::fs::File::create(writing.join(crate::fsio::LOCK_FILE)).unwrap();
        lock.lock().unwrap();
        std::fs::File::open(&writing)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();

        let settings = RunSettings {
            events: None,
            cutoff: config.split.cutoff_rule().unwrap(),
            protocol: Protocol::Strict,
            out: out.path().to_path_buf(),
            evaluate_k: None,
            options: FitOptions::default(),
        };
        let trained = run(&config, &settings, &mut Quiet).unwrap();
        assert_eq!(trained.removed.len(), 1);
        assert_eq!(trained.removed[0].path, killed);
        assert_eq!(trained.removed[0].bytes, 2500);
        assert!(trained.removed[0].to_string().contains("(2.5 kB)"));
        assert!(!killed.exists());
        assert!(writing.is_dir(), "a locked temporary directory is kept");
        assert!(trained.dir.join("manifest.json").is_file());
        let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
        assert_eq!(left.len(), 2, "the new bundle and the one being written");
    }
}
