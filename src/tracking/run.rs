//! One `recsys train` as one MLflow run, under the rule that tracking never
//! costs a training run.
//!
//! [`TrainingRun::start`] finds (or creates) the experiment, starts a run and
//! logs its params and tags; whatever happens there, training goes on. Later
//! calls ([`TrainingRun::log`], [`TrainingRun::upload_dir`], …) are skipped
//! once one has failed — a dead server costs one timeout, not one per call — and
//! [`TrainingRun::finish`] ends the run FINISHED or FAILED and hands back the
//! first failure, for the caller to warn about (or, with `--require-tracking`,
//! fail on) once the bundle is safe on disk.

use std::path::{Path, PathBuf};

use super::batch::{LogBatch, Param, Tag};
use super::client::{MlflowClient, RunInfo, RunStatus};
use super::settings::TrackingSettings;
use super::TrackingError;

/// A run in progress, or the first reason it could not be recorded.
pub struct TrainingRun {
    settings: TrackingSettings,
    client: Option<MlflowClient>,
    run: Option<RunInfo>,
    failure: Option<TrackingError>,
}

/// A run recorded in full.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedRun {
    /// MLflow's run id.
    pub run_id: String,
    /// The experiment's id.
    pub experiment_id: String,
    /// The run's page in the MLflow UI.
    pub url: String,
}

/// Milliseconds since the Unix epoch, MLflow's clock.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl TrainingRun {
    /// Start a run with `params` and `tags` in the configured experiment
    /// (created if missing). Never fails: a failure is kept for [`finish`](Self::finish).
    pub fn start(settings: TrackingSettings, params: Vec<Param>, tags: Vec<Tag>) -> TrainingRun {
        let mut this = TrainingRun {
            settings,
            client: None,
            run: None,
            failure: None,
        };
        let started = MlflowClient::new(&this.settings).and_then(|client| {
            let experiment = client.experiment_id(&this.settings.experiment)?;
            let run = client.create_run(&experiment, now_ms(), &tags)?;
            Ok((client, run))
        });
        match started {
            Ok((client, run)) => {
                this.client = Some(client);
                this.run = Some(run);
                this.log(LogBatch {
                    params,
                    ..LogBatch::default()
                });
            }
            Err(e) => this.failure = Some(e),
        }
        this
    }

    /// The settings the run was started with.
    pub fn settings(&self) -> &TrackingSettings {
        &self.settings
    }

    /// MLflow's id of the run, once started.
    pub fn run_id(&self) -> Option<&str> {
        self.run.as_ref().map(|r| r.run_id.as_str())
    }

    /// Whether everything so far was recorded (so more is worth computing).
    pub fn is_recording(&self) -> bool {
        self.run.is_some() && self.failure.is_none()
    }

    /// Record `batch` (params, metrics, tags).
    pub fn log(&mut self, batch: LogBatch) {
        if batch.is_empty() {
            return;
        }
        self.attempt(|client, run| client.log_batch(&run.run_id, &batch));
    }

    /// Upload `bytes` as the run's artifact `path`.
    pub fn upload_bytes(&mut self, path: &str, bytes: &[u8]) {
        self.attempt(|client, run| client.upload_bytes(run, path, bytes));
    }

    /// Upload every file under `dir` as artifacts under `under` (same relative paths).
    pub fn upload_dir(&mut self, dir: &Path, under: &str) {
        let files = match files_under(dir) {
            Ok(files) => files,
            Err(source) => {
                self.fail(TrackingError::ReadFile {
                    path: dir.to_path_buf(),
                    source,
                });
                return;
            }
        };
        for (relative, file) in files {
            let path = format!("{under}/{relative}");
            self.attempt(|client, run| client.upload_file(run, &path, &file));
        }
    }

    /// The artifact URI of `path` in this run (what a model version's source names).
    pub fn artifact_uri(&self, path: &str) -> Option<String> {
        let run = self.run.as_ref()?;
        Some(format!("{}/{path}", run.artifact_uri.trim_end_matches('/')))
    }

    /// Register the run's artifacts under `path` as a new version of model
    /// `name`; returns the version.
    pub fn register(&mut self, name: &str, path: &str) -> Option<String> {
        let source = self.artifact_uri(path)?;
        self.attempt(|client, run| client.register_model_version(name, &source, &run.run_id))
    }

    /// End the run as `status` (renamed `run_name` if given). The first tracking
    /// failure, if any, comes back as the error; the run is then ended FAILED
    /// if the server still answers, since its record is incomplete.
    pub fn finish(
        mut self,
        status: RunStatus,
        run_name: Option<&str>,
    ) -> Result<TrackedRun, TrackingError> {
        let (Some(client), Some(run)) = (&self.client, &self.run) else {
            return Err(self
                .failure
                .take()
                .expect("a run that never started has a failure"));
        };
        if let Some(failure) = self.failure.take() {
            if failure.server_answered() {
                // Best effort: the failure being reported matters more than this one.
                let _ = client.end_run(&run.run_id, RunStatus::Failed, now_ms(), run_name);
            }
            return Err(failure);
        }
        client.end_run(&run.run_id, status, now_ms(), run_name)?;
        Ok(TrackedRun {
            run_id: run.run_id.clone(),
            experiment_id: run.experiment_id.clone(),
            url: format!(
                "{}/#/experiments/{}/runs/{}",
                self.settings.uri, run.experiment_id, run.run_id
            ),
        })
    }

    fn attempt<T>(
        &mut self,
        call: impl FnOnce(&MlflowClient, &RunInfo) -> Result<T, TrackingError>,
    ) -> Option<T> {
        if self.failure.is_some() {
            return None;
        }
        let (client, run) = (self.client.as_ref()?, self.run.as_ref()?);
        match call(client, run) {
            Ok(value) => Some(value),
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn fail(&mut self, e: TrackingError) {
        self.failure.get_or_insert(e);
    }
}

/// Files under `dir` (recursively) as (`/`-separated relative path, full path), sorted.
fn files_under(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path
                    .strip_prefix(dir)
                    .expect("found under dir")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((relative, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn files_are_listed_recursively_with_slash_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("b.json"), "{}").unwrap();
        std::fs::write(dir.path().join("sub/a.npy"), "x").unwrap();
        let got: Vec<String> = files_under(dir.path())
            .unwrap()
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(got, ["b.json", "sub/a.npy"]);
    }

    #[test]
    fn a_dead_server_is_one_failure_and_later_calls_do_nothing() {
        // A port nobody listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let settings = TrackingSettings {
            uri: format!("http://127.0.0.1:{port}"),
            experiment: "recsys".into(),
            timeout: Duration::from_secs(2),
            log_bundle: true,
            required: false,
            auth: None,
        };
        let mut run = TrainingRun::start(settings, vec![Param::new("a", "1")], vec![]);
        assert!(!run.is_recording());
        run.upload_bytes("metrics.json", b"{}");
        assert_eq!(run.register("m", "bundle"), None);
        let err = run.finish(RunStatus::Finished, None).unwrap_err();
        assert!(!err.server_answered());
        assert!(err.to_string().contains("connection refused"), "{err}");
    }
}
