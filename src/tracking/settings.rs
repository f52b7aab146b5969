//! One validated value of tracking settings, from the command line, `[tracking]`
//! and the environment, in that order of precedence (as for `[s3]`).
//!
//! Credentials come only from the environment, under MLflow's own names
//! (`MLFLOW_TRACKING_TOKEN`, or `MLFLOW_TRACKING_USERNAME` and
//! `MLFLOW_TRACKING_PASSWORD`), never from config.toml: the config is copied
//! into every bundle's manifest and logged as the run's params.

use std::fmt;
use std::time::Duration;

use super::{TrackingConfig, TrackingError};

/// The tracking server's URL when neither the flag nor `[tracking] uri` gives one.
pub const ENV_URI: &str = "MLFLOW_TRACKING_URI";
/// A bearer token for the tracking server.
pub const ENV_TOKEN: &str = "MLFLOW_TRACKING_TOKEN";
/// User name for HTTP basic authentication.
pub const ENV_USERNAME: &str = "MLFLOW_TRACKING_USERNAME";
/// Password for HTTP basic authentication.
pub const ENV_PASSWORD: &str = "MLFLOW_TRACKING_PASSWORD";

/// What the command line says about tracking.
#[derive(Debug, Clone, Default)]
pub struct TrackingOverrides {
    /// `--tracking-uri`.
    pub uri: Option<String>,
    /// `--require-tracking`.
    pub require: bool,
}

/// How requests authenticate, from the environment.
#[derive(Clone, PartialEq)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// HTTP basic authentication.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl fmt::Debug for Auth {
    // Settings get printed in debug output; secrets must not be.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(<hidden>)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}:<hidden>)"),
        }
    }
}

/// Validated tracking settings: where the server is and what to record.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingSettings {
    /// Base URL of the MLflow server, without a trailing `/`.
    pub uri: String,
    /// Experiment the runs go into (created if missing).
    pub experiment: String,
    /// Time allowed for one request (connect and answer); uploads get more in
    /// proportion to their size.
    pub timeout: Duration,
    /// Upload the bundle's files as run artifacts.
    pub log_bundle: bool,
    /// A tracking failure fails the command (after the bundle is saved).
    pub required: bool,
    /// Credentials, if the environment has any.
    pub auth: Option<Auth>,
}

impl TrackingSettings {
    /// Settings from `overrides`, then `config`, then the environment (read
    /// through `env`, e.g. `|k| std::env::var(k).ok()`); `Ok(None)` when no
    /// tracking URI is set anywhere, i.e. tracking is off.
    pub fn resolve(
        overrides: &TrackingOverrides,
        config: &TrackingConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<TrackingSettings>, TrackingError> {
        let env = |key: &str| env(key).filter(|v| !v.trim().is_empty());
        let required = overrides.require || config.required;
        let uri = match (&overrides.uri, &config.uri) {
            (Some(uri), _) | (None, Some(uri)) => Some(uri.clone()),
            (None, None) => env(ENV_URI),
        };
        let Some(uri) = uri else {
            if required {
                return Err(TrackingError::Settings(format!(
                    "tracking is required (--require-tracking or required = true in [tracking]) \
                     but no tracking server is set; set uri in [tracking], {ENV_URI} or --tracking-uri"
                )));
            }
            return Ok(None);
        };
        let uri = validate_uri(uri.trim())?;
        if config.experiment.trim().is_empty() {
            return Err(TrackingError::Settings(
                "[tracking] experiment is empty; name the MLflow experiment, e.g. \"recsys\""
                    .into(),
            ));
        }
        if config.timeout_seconds == 0 {
            return Err(TrackingError::Settings(
                "[tracking] timeout_seconds must be at least 1".into(),
            ));
        }
        let auth = match (env(ENV_TOKEN), env(ENV_USERNAME), env(ENV_PASSWORD)) {
            (Some(token), _, _) => Some(Auth::Bearer(token)),
            (None, Some(user), Some(password)) => Some(Auth::Basic { user, password }),
            (None, Some(_), None) => {
                return Err(TrackingError::Settings(format!(
                    "{ENV_USERNAME} is set but {ENV_PASSWORD} is not; set both or neither"
                )))
            }
            (None, None, _) => None,
        };
        Ok(Some(TrackingSettings {
            uri,
            experiment: config.experiment.trim().to_string(),
            timeout: Duration::from_secs(config.timeout_seconds),
            log_bundle: config.log_bundle,
            required,
            auth,
        }))
    }
}

/// The URI without a trailing `/`, if it is an http(s) URL without credentials.
fn validate_uri(uri: &str) -> Result<String, TrackingError> {
    let rest = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"))
        .ok_or_else(|| {
            TrackingError::Settings(format!(
                "tracking URI `{uri}` is not an http:// or https:// URL; recsys records runs \
                 through an MLflow tracking server (`mlflow server`), not a local store"
            ))
        })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(TrackingError::Settings(format!(
            "tracking URI `{uri}` has no host"
        )));
    }
    if authority.contains('@') {
        // The URI ends up in bundle manifests and warnings; a password must not.
        return Err(TrackingError::Settings(format!(
            "tracking URI `{}` holds credentials; set {ENV_USERNAME} and {ENV_PASSWORD} \
             (or {ENV_TOKEN}) instead",
            uri.replacen(authority, authority.rsplit('@').next().unwrap_or(""), 1)
        )));
    }
    Ok(uri.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        flag: Option<&str>,
        config: &TrackingConfig,
        env: &[(&str, &str)],
    ) -> Result<Option<TrackingSettings>, TrackingError> {
        let overrides = TrackingOverrides {
            uri: flag.map(String::from),
            require: false,
        };
        TrackingSettings::resolve(&overrides, config, |key| {
            env.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_flag_beats_the_config_which_beats_the_environment() {
        let env = [(ENV_URI, "http://env:5000")];
        let mut config = TrackingConfig::default();
        assert_eq!(resolve(None, &config, &[]).unwrap(), None);
        let got = resolve(None, &config, &env).unwrap().unwrap();
        assert_eq!(got.uri, "http://env:5000");
        assert_eq!(got.experiment, "recsys");
        config.uri = Some("http://config:5000/".into());
        assert_eq!(
            resolve(None, &config, &env).unwrap().unwrap().uri,
            "http://config:5000"
        );
        assert_eq!(
            resolve(Some("https://flag"), &config, &env)
                .unwrap()
                .unwrap()
                .uri,
            "https://flag"
        );
    }

    #[test]
    fn settings_that_cannot_work_are_named() {
        let config = TrackingConfig::default();
        for (uri, needle) in [
            ("file:///tmp/mlruns", "not an http"),
            ("databricks", "not an http"),
            ("http://", "no host"),
            ("http://me:secret@host:5000", "holds credentials"),
        ] {
            let err = resolve(Some(uri), &config, &[]).unwrap_err().to_string();
            assert!(err.contains(needle), "{uri}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
        let zero = TrackingConfig {
            timeout_seconds: 0,
            ..TrackingConfig::default()
        };
        assert!(resolve(Some("http://h"), &zero, &[]).is_err());
        let required = TrackingConfig {
            required: true,
            ..TrackingConfig::default()
        };
        let err = resolve(None, &required, &[]).unwrap_err().to_string();
        assert!(err.contains(ENV_URI), "{err}");
    }

    #[test]
    fn credentials_come_from_the_environment_and_stay_hidden() {
        let config = TrackingConfig::default();
        let got = resolve(
            Some("http://h"),
            &config,
            &[(ENV_USERNAME, "ann"), (ENV_PASSWORD, "hunter2")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            got.auth,
            Some(Auth::Basic {
                user: "ann".into(),
                password: "hunter2".into()
            })
        );
        assert!(!format!("{got:?}").contains("hunter2"));
        let token = resolve(Some("http://h"), &config, &[(ENV_TOKEN, "tok")])
            .unwrap()
            .unwrap();
        assert_eq!(token.auth, Some(Auth::Bearer("tok".into())));
        assert!(resolve(Some("http://h"), &config, &[(ENV_USERNAME, "ann")]).is_err());
    }
}
