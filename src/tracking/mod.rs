//! Experiment tracking: every `recsys train` recorded as an MLflow run.
//!
//! A bundle on disk says what one training produced; a tracking server keeps
//! every training side by side — settings, scores, curves, timings, the bundle
//! itself — so that a team can compare runs, see when a model got worse, and
//! promote one to the model registry. recsys talks to MLflow's REST API
//! directly (no Python on the training machine): any `mlflow server` with
//! artifact proxying (the default since MLflow 2) works.
//!
//! * [`TrackingConfig`] is the `[tracking]` section of config.toml;
//!   [`TrackingSettings::resolve`] merges it with `--tracking-uri` and
//!   `MLFLOW_TRACKING_URI` (tracking is off when no URI is set anywhere);
//! * [`TrainingRun`] is one run: started before training, fed params, metrics,
//!   tags and artifacts, ended FINISHED or FAILED. A server that is down or
//!   answers errors never stops training: the first failure is kept and handed
//!   back at the end, once the bundle is saved;
//! * [`record`] builds what `train` logs from the config, the bundle's
//!   manifest and the evaluation report;
//! * [`MlflowClient`] is the REST client, [`LogBatch`] cuts a batch into
//!   requests within MLflow's limits, [`TrackingError`] names what failed.
//!
//! ```no_run
//! use recsys::tracking::{LogBatch, Metric, RunStatus, TrackingConfig, TrackingOverrides,
//!                        TrackingSettings, TrainingRun};
//!
//! let config = TrackingConfig { uri: Some("http://127.0.0.1:5000".into()), ..Default::default() };
//! let settings = TrackingSettings::resolve(&TrackingOverrides::default(), &config, |k| {
//!     std::env::var(k).ok()
//! })?
//! .expect("a URI is set");
//! let mut run = TrainingRun::start(settings, vec![], vec![]);
//! run.log(LogBatch { metrics: Metric::new("als_loss", 0.5, 0, 1).into_iter().collect(), ..Default::default() });
//! match run.finish(RunStatus::Finished, Some("my-run")) {
//!     Ok(tracked) => println!("recorded at {}", tracked.url),
//!     Err(e) => eprintln!("not recorded: {e}"),
//! }
//! # Ok::<(), recsys::tracking::TrackingError>(())
//! ```

mod batch;
mod client;
mod error;
pub mod record;
mod run;
mod settings;

use serde::{Deserialize, Serialize};

pub use batch::{LogBatch, Metric, Param, Tag};
pub use client::{proxied_artifact_root, MlflowClient, RunInfo, RunStatus};
pub use error::TrackingError;
pub use run::{now_ms, TrackedRun, TrainingRun};
pub use settings::{
    Auth, TrackingOverrides, TrackingSettings, ENV_PASSWORD, ENV_TOKEN, ENV_URI, ENV_USERNAME,
};

/// `[tracking]` of config.toml. Without a `uri` here, on the command line or in
/// `MLFLOW_TRACKING_URI`, nothing is tracked. Credentials are read from the
/// environment only (see [`TrackingSettings::resolve`]), so nothing here is
/// secret: this section is copied into bundle manifests and logged as params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingConfig {
    /// MLflow tracking server, e.g. `http://127.0.0.1:5000` (else `MLFLOW_TRACKING_URI`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Experiment the runs go into, created if missing.
    pub experiment: String,
    /// Seconds allowed for one request before the server counts as down;
    /// uploads get one more second per MiB.
    pub timeout_seconds: u64,
    /// Upload the bundle's files as run artifacts (`bundle/…`); off keeps
    /// large bundles off the tracking server (and rules out `--register`).
    pub log_bundle: bool,
    /// Fail `train` (after saving the bundle) when tracking fails, as `--require-tracking`.
    pub required: bool,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            uri: None,
            experiment: "recsys".into(),
            timeout_seconds: 5,
            log_bundle: true,
            required: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_optional_and_typos_are_rejected() {
        let config: TrackingConfig = toml::from_str("").unwrap();
        assert_eq!(config, TrackingConfig::default());
        let config: TrackingConfig =
            toml::from_str("uri = \"http://mlflow:5000\"\nexperiment = \"shop\"\n").unwrap();
        assert_eq!(config.uri.as_deref(), Some("http://mlflow:5000"));
        assert_eq!(config.experiment, "shop");
        let err = toml::from_str::<TrackingConfig>("url = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("url"), "{err}");
    }
}
