//! A small blocking client of MLflow's REST API (`/api/2.0/mlflow/…`) and of
//! its artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/…`).
//!
//! Only what `recsys train` needs: find or create an experiment, create a run,
//! `log-batch`, upload files, end the run, register a model version. Every
//! request has a short timeout (uploads get more in proportion to their size),
//! so a dead server costs seconds, and every failure becomes a
//! [`TrackingError`] naming what was being done.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::batch::{LogBatch, Tag};
use super::settings::{Auth, TrackingSettings};
use super::TrackingError;

/// Slowest upload rate allowed before an upload counts as stalled: an artifact
/// of `n` MiB gets `timeout + n` seconds.
const MIN_UPLOAD_BYTES_PER_SECOND: u64 = 1 << 20;

/// A run as the server describes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunInfo {
    /// The run's id (32 hex digits).
    pub run_id: String,
    /// The experiment it belongs to.
    pub experiment_id: String,
    /// Where its artifacts live, e.g. `mlflow-artifacts:/1/<run_id>/artifacts`.
    pub artifact_uri: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Training succeeded.
    Finished,
    /// Training (or tracking) failed.
    Failed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
        }
    }
}

/// A client of one MLflow tracking server.
pub struct MlflowClient {
    agent: ureq::Agent,
    base: String,
    timeout: Duration,
    authorization: Option<String>,
}

impl MlflowClient {
    /// A client for the server in `settings` (no request is made yet).
    pub fn new(settings: &TrackingSettings) -> Result<MlflowClient, TrackingError> {
        let mut config = ureq::Agent::config_builder()
            // Error statuses carry MLflow's error code in the body; read it.
            .http_status_as_error(false)
            .timeout_connect(Some(settings.timeout))
            .timeout_global(Some(settings.timeout))
            .user_agent(concat!("recsys/", env!("CARGO_PKG_VERSION")));
        if settings.uri.starts_with("https://") {
            config = config.tls_config(tls_config()?);
        }
        let authorization = settings.auth.as_ref().map(|auth| match auth {
            Auth::Bearer(token) => format!("Bearer {token}"),
            Auth::Basic { user, password } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
        });
        Ok(MlflowClient {
            agent: config.build().new_agent(),
            base: settings.uri.clone(),
            timeout: settings.timeout,
            authorization,
        })
    }

    /// The id of experiment `name`, created if it does not exist.
    pub fn experiment_id(&self, name: &str) -> Result<String, TrackingError> {
        let action = format!("finding experiment `{name}`");
        match self.experiment_by_name(&action, name) {
            Ok(answer) => return experiment_from(&answer, name, &action),
            Err(e) if e.api_code() == Some("RESOURCE_DOES_NOT_EXIST") => {}
            Err(e) => return Err(e),
        }
        let action = format!("creating experiment `{name}`");
        let created = self.post(&action, "experiments/create", &json!({ "name": name }));
        match created {
            Ok(answer) => string_field(&answer, "experiment_id", &action),
            // Another trainer created it in between: use theirs.
            Err(e) if e.api_code() == Some("RESOURCE_ALREADY_EXISTS") => {
                let action = format!("finding experiment `{name}`");
                let answer = self.experiment_by_name(&action, name)?;
                experiment_from(&answer, name, &action)
            }
            Err(e) => Err(e),
        }
    }

    /// Start a run in `experiment_id` at `start_ms` (ms since the epoch) with `tags`.
    pub fn create_run(
        &self,
        experiment_id: &str,
        start_ms: i64,
        tags: &[Tag],
    ) -> Result<RunInfo, TrackingError> {
        let action = "starting a run";
        let answer = self.post(
            action,
            "runs/create",
            &json!({ "experiment_id": experiment_id, "start_time": start_ms, "tags": tags }),
        )?;
        serde_json::from_value(answer["run"]["info"].clone()).map_err(|e| TrackingError::Protocol {
            action: action.into(),
            detail: format!("no run info: {e}"),
        })
    }

    /// Record `batch` in run `run_id`, in as many requests as MLflow's limits need.
    pub fn log_batch(&self, run_id: &str, batch: &LogBatch) -> Result<(), TrackingError> {
        for chunk in batch.chunks() {
            self.post(
                "logging params, metrics and tags",
                "runs/log-batch",
                &json!({
                    "run_id": run_id,
                    "params": chunk.params,
                    "metrics": chunk.metrics,
                    "tags": chunk.tags,
                }),
            )?;
        }
        Ok(())
    }

    /// End run `run_id` with `status` at `end_ms`, renaming it to `run_name` if given.
    pub fn end_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_ms: i64,
        run_name: Option<&str>,
    ) -> Result<(), TrackingError> {
        let mut body = json!({ "run_id": run_id, "status": status.as_str(), "end_time": end_ms });
        if let Some(name) = run_name {
            body["run_name"] = json!(name);
        }
        self.post(
            &format!("ending the run as {}", status.as_str()),
            "runs/update",
            &body,
        )?;
        Ok(())
    }

    /// Upload local `file` as artifact `path` (relative, `/`-separated) of `run`.
    pub fn upload_file(&self, run: &RunInfo, path: &str, file: &Path) -> Result<(), TrackingError> {
        let read_error = |source| TrackingError::ReadFile {
            path: file.to_path_buf(),
            source,
        };
        let body = std::fs::File::open(file).map_err(read_error)?;
        let size = body.metadata().map_err(read_error)?.len();
        self.put_artifact(run, path, body, size)
    }

    /// Upload `bytes` as artifact `path` of `run`.
    pub fn upload_bytes(
        &self,
        run: &RunInfo,
        path: &str,
        bytes: &[u8],
    ) -> Result<(), TrackingError> {
        self.put_artifact(run, path, bytes, bytes.len() as u64)
    }

    /// Register the artifacts under `source` (an artifact URI of `run_id`) as a
    /// new version of model `name`, creating the model if needed; returns the version.
    pub fn register_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: &str,
    ) -> Result<String, TrackingError> {
        let action = format!("registering model `{name}`");
        match self.post(
            &action,
            "registered-models/create",
            &json!({ "name": name }),
        ) {
            Err(e) if e.api_code() != Some("RESOURCE_ALREADY_EXISTS") => return Err(e),
            _ => {}
        }
        let answer = self.post(
            &action,
            "model-versions/create",
            &json!({ "name": name, "source": source, "run_id": run_id }),
        )?;
        let version = &answer["model_version"]["version"];
        match version {
            Value::String(v) => Ok(v.clone()),
            Value::Number(v) => Ok(v.to_string()),
            _ => Err(TrackingError::Protocol {
                action,
                detail: "no model_version.version".into(),
            }),
        }
    }

    /// URL of REST route `route` (e.g. `runs/create`).
    fn api(&self, route: &str) -> String {
        format!("{}/api/2.0/mlflow/{route}", self.base)
    }

    fn experiment_by_name(&self, action: &str, name: &str) -> Result<Value, TrackingError> {
        let request = self
            .authorize(self.agent.get(self.api("experiments/get-by-name")))
            .query("experiment_name", name);
        self.answer(action, request.call())
    }

    fn post(&self, action: &str, route: &str, body: &Value) -> Result<Value, TrackingError> {
        let bytes = serde_json::to_vec(body).expect("JSON values serialise");
        let request = self
            .authorize(self.agent.post(self.api(route)))
            .header("Content-Type", "application/json");
        self.answer(action, request.send(&bytes[..]))
    }

    fn authorize<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(value) => request.header("Authorization", value),
            None => request,
        }
    }

    /// MLflow's JSON answer to a request that was `sent`.
    fn answer(
        &self,
        action: &str,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, TrackingError> {
        let mut response = sent.map_err(|e| self.transport_error(action, e))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| self.transport_error(action, e))?;
        if !(200..300).contains(&status) {
            return Err(api_error(action, status, &text));
        }
        serde_json::from_str(&text).map_err(|e| TrackingError::Protocol {
            action: action.into(),
            detail: format!("not JSON: {e}"),
        })
    }

    fn put_artifact(
        &self,
        run: &RunInfo,
        path: &str,
        body: impl ureq::AsSendBody,
        size: u64,
    ) -> Result<(), TrackingError> {
        let action = format!("uploading artifact {path}");
        let root = proxied_artifact_root(&run.artifact_uri).ok_or_else(|| {
            TrackingError::NoArtifactProxy {
                artifact_uri: run.artifact_uri.clone(),
            }
        })?;
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}/{}",
            self.base,
            root,
            encode_path(path)
        );
        let timeout = self.timeout + Duration::from_secs(size / MIN_UPLOAD_BYTES_PER_SECOND);
        let request = self
            .authorize(self.agent.put(url))
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Content-Type", "application/octet-stream");
        let mut response = request
            .send(body)
            .map_err(|e| TrackingError::from_transport(&action, timeout, e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            return Err(api_error(&action, status, &text));
        }
        Ok(())
    }

    fn transport_error(&self, action: &str, e: ureq::Error) -> TrackingError {
        TrackingError::from_transport(action, self.timeout, e)
    }
}

impl TrackingError {
    /// A transport failure (no HTTP answer) of `action`, told plainly.
    fn from_transport(action: &str, timeout: Duration, e: ureq::Error) -> TrackingError {
        let unreachable = |reason: String| TrackingError::Unreachable {
            action: action.into(),
            reason,
        };
        match e {
            ureq::Error::Timeout(_) => TrackingError::Timeout {
                action: action.into(),
                seconds: timeout.as_secs(),
            },
            ureq::Error::Io(io) => match io.kind() {
                std::io::ErrorKind::ConnectionRefused => unreachable("connection refused".into()),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    TrackingError::Timeout {
                        action: action.into(),
                        seconds: timeout.as_secs(),
                    }
                }
                _ => unreachable(io.to_string()),
            },
            ureq::Error::HostNotFound => unreachable("host not found".into()),
            other => unreachable(other.to_string()),
        }
    }
}

/// The error MLflow answered with: its `error_code` and the first line of its
/// `message` (which can hold a whole SQL statement), else the start of the body.
fn api_error(action: &str, status: u16, body: &str) -> TrackingError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v[name].as_str())
            .map(str::to_string)
    };
    let message = field("message").unwrap_or_else(|| body.to_string());
    let mut message: String = message
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    if message.is_empty() {
        message = "(no message)".into();
    }
    TrackingError::Api {
        action: action.into(),
        status,
        code: field("error_code"),
        message,
    }
}

fn string_field(answer: &Value, name: &str, action: &str) -> Result<String, TrackingError> {
    answer[name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| TrackingError::Protocol {
            action: action.into(),
            detail: format!("no `{name}`"),
        })
}

/// The id of the experiment in a `get-by-name` answer, if it can take runs.
fn experiment_from(answer: &Value, name: &str, action: &str) -> Result<String, TrackingError> {
    let experiment = &answer["experiment"];
    if experiment["lifecycle_stage"].as_str() == Some("deleted") {
        return Err(TrackingError::ExperimentDeleted { name: name.into() });
    }
    string_field(experiment, "experiment_id", action)
}

/// The path under the artifact proxy of a run's `mlflow-artifacts:` URI
/// (`mlflow-artifacts:/1/<run>/artifacts` or `mlflow-artifacts://host/1/<run>/artifacts`
/// → `1/<run>/artifacts`); `None` for locations the server does not proxy
/// (`s3://…`, a local path).
pub fn proxied_artifact_root(artifact_uri: &str) -> Option<&str> {
    let rest = artifact_uri.strip_prefix("mlflow-artifacts:")?;
    let path = match rest.strip_prefix("//") {
        Some(with_host) => &with_host[with_host.find('/')?..],
        None => rest,
    };
    let path = path.trim_matches('/');
    (!path.is_empty()).then_some(path)
}

/// `path` with every byte outside the URL-safe set percent-encoded, `/` kept.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// TLS with the system's root certificates and rustls' ring provider (the
/// crypto the rest of recsys already links).
fn tls_config() -> Result<ureq::tls::TlsConfig, TrackingError> {
    let found = rustls_native_certs::load_native_certs();
    let roots: Vec<ureq::tls::Certificate<'static>> = found
        .certs
        .iter()
        .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if roots.is_empty() {
        return Err(TrackingError::Settings(
            "no trusted root certificates found on this system for an https:// tracking URI".into(),
        ));
    }
    Ok(ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxied_artifact_locations_map_to_the_proxy_path_and_others_are_refused() {
        let run = "0123456789abcdef";
        assert_eq!(
            proxied_artifact_root(&format!("mlflow-artifacts:/1/{run}/artifacts")),
            Some(format!("1/{run}/artifacts").as_str())
        );
        assert_eq!(
            proxied_artifact_root(&format!(
                "mlflow-artifacts://mlflow:5000/7/{run}/artifacts/"
            )),
            Some(format!("7/{run}/artifacts").as_str())
        );
        assert_eq!(proxied_artifact_root("s3://bucket/1/x/artifacts"), None);
        assert_eq!(proxied_artifact_root("/mlruns/1/x/artifacts"), None);
        assert_eq!(proxied_artifact_root("mlflow-artifacts:/"), None);
    }

    #[test]
    fn artifact_paths_are_percent_encoded_except_separators() {
        assert_eq!(encode_path("bundle/manifest.json"), "bundle/manifest.json");
        assert_eq!(encode_path("a b/é?.npy"), "a%20b/%C3%A9%3F.npy");
    }

    #[test]
    fn mlflow_error_bodies_become_a_code_and_the_first_line_of_the_message() {
        let body = r#"{"error_code": "RESOURCE_ALREADY_EXISTS", "message": "Experiment(name=recsys) already exists.\n[SQL: INSERT …]"}"#;
        match api_error("creating experiment", 400, body) {
            TrackingError::Api {
                status,
                code,
                message,
                ..
            } => {
                assert_eq!(status, 400);
                assert_eq!(code.as_deref(), Some("RESOURCE_ALREADY_EXISTS"));
                assert_eq!(message, "Experiment(name=recsys) already exists.");
            }
            other => panic!("{other:?}"),
        }
        let err = api_error("starting a run", 502, "<html>Bad Gateway</html>");
        assert_eq!(err.api_code(), None);
        assert!(err.to_string().contains("502: <html>Bad Gateway"), "{err}");
    }
}
