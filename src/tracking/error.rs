//! Tracking failures, told as what was being done and why it did not work.
//!
//! The caller branches on one question — did the server answer at all? — to
//! decide whether it is worth asking it to mark the run FAILED
//! ([`TrackingError::server_answered`]); everything else is one sentence for
//! the warning `recsys train` prints.

use std::path::PathBuf;

/// What can go wrong recording a run in MLflow.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    /// A setting that cannot work (a URI that is not HTTP, a zero timeout, …).
    #[error("{0}")]
    Settings(String),
    /// No connection: refused, unknown host, TLS handshake failure.
    #[error("{action}: {reason}")]
    Unreachable {
        /// What was being done, e.g. `creating experiment `recsys``.
        action: String,
        /// Why it failed, e.g. `connection refused`.
        reason: String,
    },
    /// The server took longer than the configured timeout.
    #[error("{action}: no answer within {seconds} s")]
    Timeout {
        /// What was being done.
        action: String,
        /// The timeout that ran out.
        seconds: u64,
    },
    /// The server answered with an error status.
    #[error("{action}: the server answered {status}{}: {message}", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default())]
    Api {
        /// What was being done.
        action: String,
        /// HTTP status.
        status: u16,
        /// MLflow's `error_code` (`RESOURCE_DOES_NOT_EXIST`, …), when the body had one.
        code: Option<String>,
        /// MLflow's `message`, shortened to its first line.
        message: String,
    },
    /// The answer was not what MLflow's REST API returns.
    #[error("{action}: unexpected answer ({detail}); is this an MLflow tracking server?")]
    Protocol {
        /// What was being done.
        action: String,
        /// What was wrong with it.
        detail: String,
    },
    /// The experiment exists but is deleted, so no run can start in it.
    #[error("experiment `{name}` is deleted on the tracking server; restore it or set another `experiment` in [tracking]")]
    ExperimentDeleted {
        /// The experiment's name.
        name: String,
    },
    /// The run's artifacts live somewhere recsys cannot write (no artifact proxy).
    #[error(
        "the run's artifact location {artifact_uri} is not served by the tracking server; \
         start `mlflow server` with artifact proxying (--serve-artifacts, the default) \
         and use an experiment created that way"
    )]
    NoArtifactProxy {
        /// The run's `artifact_uri`.
        artifact_uri: String,
    },
    /// A local file to upload could not be read.
    #[error("reading {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl TrackingError {
    /// Whether the server was reached and answered, so that further requests
    /// (marking the run FAILED) can still succeed; false for a dead or silent
    /// server, where another request would only cost another timeout.
    pub fn server_answered(&self) -> bool {
        matches!(
            self,
            TrackingError::Api { .. }
                | TrackingError::Protocol { .. }
                | TrackingError::ExperimentDeleted { .. }
                | TrackingError::NoArtifactProxy { .. }
                | TrackingError::ReadFile { .. }
        )
    }

    /// The MLflow error code, if the server answered with one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            TrackingError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_read_as_one_sentence_with_the_code() {
        let err = TrackingError::Api {
            action: "starting a run".into(),
            status: 400,
            code: Some("INVALID_PARAMETER_VALUE".into()),
            message: "bad id".into(),
        };
        assert_eq!(
            err.to_string(),
            "starting a run: the server answered 400 INVALID_PARAMETER_VALUE: bad id"
        );
        assert!(err.server_answered());
        let down = TrackingError::Unreachable {
            action: "starting a run".into(),
            reason: "connection refused".into(),
        };
        assert!(!down.server_answered());
    }
}
