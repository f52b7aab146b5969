//! Where the S3 settings come from, merged into one validated [`S3Settings`].
//!
//! Users already have their keys in `AWS_*` variables or a `.env` file (the
//! Python scripts this replaces read one), so those work as they are; a project
//! pins its bucket or endpoint in `[s3]` of config.toml, and a flag wins over
//! everything for one run. Precedence, highest first: flags, `[s3]`, the
//! process environment, `.env`, defaults. The merge is a pure function of those
//! four inputs so that it is tested without touching the process environment.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::{S3Config, S3Error};

const MIB: u64 = 1024 * 1024;

/// The variables read from the environment and `.env`.
const VARIABLES: [&str; 8] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "S3_BUCKET_NAME",
];

/// S3-related environment variables: the process's own, completed by a `.env` file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvVars {
    values: HashMap<String, String>,
}

impl EnvVars {
    /// The relevant process variables, plus those in `dotenv` (if the file exists)
    /// that the process does not set: a real variable always wins over the file.
    pub fn from_process_and_dotenv(dotenv: &Path) -> Result<EnvVars, S3Error> {
        let mut values = HashMap::new();
        if dotenv.is_file() {
            let entries = dotenvy::from_path_iter(dotenv).map_err(|e| S3Error::Settings {
                message: format!("reading {}: {e}", dotenv.display()),
            })?;
            for entry in entries {
                let (name, value) = entry.map_err(|e| S3Error::Settings {
                    message: format!("reading {}: {e}", dotenv.display()),
                })?;
                if VARIABLES.contains(&name.as_str()) {
                    values.insert(name, value);
                }
            }
        }
        for name in VARIABLES {
            if let Ok(value) = std::env::var(name) {
                values.insert(name.to_string(), value);
            }
        }
        Ok(EnvVars { values })
    }

    /// Variables given directly (tests, or callers with their own source).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> EnvVars {
        EnvVars {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// A variable's value; an empty one counts as unset, as in the AWS tools.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Settings given on the command line for one run; `None` means "not given".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct S3Overrides {
    /// `--bucket`.
    pub bucket: Option<String>,
    /// `--endpoint-url`.
    pub endpoint_url: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--path-style`.
    pub path_style: Option<bool>,
    /// `--multipart-threshold-mb`.
    pub multipart_threshold_mb: Option<u64>,
    /// `--part-size-mb`.
    pub part_size_mb: Option<u64>,
    /// `--concurrency`.
    pub concurrency: Option<usize>,
}

/// How large transfers are cut up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferSettings {
    /// Files of at least this many bytes go multipart.
    pub multipart_threshold: u64,
    /// Bytes per part (the last part may be smaller); at least 5 MiB, as S3 requires.
    pub part_size: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
}

impl Default for TransferSettings {
    fn default() -> Self {
        TransferSettings {
            multipart_threshold: 64 * MIB,
            part_size: 16 * MIB,
            concurrency: 8,
        }
    }
}

/// Everything needed to talk to one bucket, validated.
#[derive(Clone, PartialEq)]
pub struct S3Settings {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (never printed: `Debug` hides it).
    pub secret_access_key: String,
    /// Session token for temporary credentials (`AWS_SESSION_TOKEN`).
    pub session_token: Option<String>,
    /// Endpoint URL; `None` is AWS itself.
    pub endpoint_url: Option<String>,
    /// Region.
    pub region: String,
    /// Bucket.
    pub bucket: String,
    /// Path-style addressing.
    pub path_style: bool,
    /// Multipart threshold, part size, concurrency.
    pub transfer: TransferSettings,
    /// How long a TCP connect may take before the endpoint counts as unreachable.
    pub connect_timeout: Duration,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<hidden>"),
            )
            .field("endpoint_url", &self.endpoint_url)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("path_style", &self.path_style)
            .field("transfer", &self.transfer)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// The first value that is set, trimmed, empty counting as unset.
fn first(candidates: &[Option<&str>]) -> Option<String> {
    candidates
        .iter()
        .flatten()
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
        .map(str::to_string)
}

fn invalid(message: String) -> S3Error {
    S3Error::Settings { message }
}

impl S3Settings {
    /// Merge flags over `[s3]` over the environment (which already holds `.env`
    /// beneath the real variables), then check the result.
    pub fn resolve(
        flags: &S3Overrides,
        config: &S3Config,
        env: &EnvVars,
    ) -> Result<S3Settings, S3Error> {
        let access_key_id = first(&[
            config.access_key_id.as_deref(),
            env.get("AWS_ACCESS_KEY_ID"),
        ]);
        let secret_access_key = first(&[
            config.secret_access_key.as_deref(),
            env.get("AWS_SECRET_ACCESS_KEY"),
        ]);
        let (access_key_id, secret_access_key) = match (access_key_id, secret_access_key) {
            (Some(id), Some(secret)) => (id, secret),
            (id, _) => {
                return Err(S3Error::NoCredentials {
                    missing: match id {
                        Some(_) => "AWS_SECRET_ACCESS_KEY",
                        None => "AWS_ACCESS_KEY_ID",
                    },
                })
            }
        };
        let endpoint_url = first(&[
            flags.endpoint_url.as_deref(),
            config.endpoint_url.as_deref(),
            env.get("AWS_ENDPOINT_URL_S3"),
            env.get("AWS_ENDPOINT_URL"),
        ]);
        if let Some(url) = &endpoint_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(format!(
                    "endpoint URL `{url}` must start with http:// or https://"
                )));
            }
        }
        let region = first(&[
            flags.region.as_deref(),
            config.region.as_deref(),
            env.get("AWS_REGION"),
            env.get("AWS_DEFAULT_REGION"),
        ])
        .unwrap_or_else(|| "us-east-1".to_string());
        let bucket = first(&[
            flags.bucket.as_deref(),
            config.bucket.as_deref(),
            env.get("S3_BUCKET_NAME"),
        ])
        .ok_or(S3Error::NoBucket)?;
        // Servers other than AWS seldom give buckets DNS names of their own.
        let path_style = flags
            .path_style
            .or(config.path_style)
            .unwrap_or(endpoint_url.is_some());

        let defaults = TransferSettings::default();
        let multipart_threshold = flags
            .multipart_threshold_mb
            .or(config.multipart_threshold_mb)
            .map_or(defaults.multipart_threshold, |mb| mb * MIB);
        let part_size = flags
            .part_size_mb
            .or(config.part_size_mb)
            .map_or(defaults.part_size, |mb| mb * MIB);
        let concurrency = flags
            .concurrency
            .or(config.concurrency)
            .unwrap_or(defaults.concurrency);
        if multipart_threshold == 0 {
            return Err(invalid(
                "the multipart threshold must be at least 1 MiB".to_string(),
            ));
        }
        if !(5 * MIB..=5 * 1024 * MIB).contains(&part_size) {
            return Err(invalid(format!(
                "the part size must be between 5 MiB and 5120 MiB (S3's limits), not {} MiB",
                part_size / MIB
            )));
        }
        if !(1..=64).contains(&concurrency) {
            return Err(invalid(format!(
                "concurrency must be between 1 and 64, not {concurrency}"
            )));
        }
        let connect_timeout = Duration::from_secs(config.connect_timeout_secs.unwrap_or(3));
        if connect_timeout.is_zero() {
            return Err(invalid(
                "[s3] connect_timeout_secs must be at least 1".to_string(),
            ));
        }
        let max_attempts = config.max_attempts.unwrap_or(3);
        if max_attempts == 0 {
            return Err(invalid("[s3] max_attempts must be at least 1".to_string()));
        }
        Ok(S3Settings {
            access_key_id,
            secret_access_key,
            session_token: env.get("AWS_SESSION_TOKEN").map(str::to_string),
            endpoint_url,
            region,
            bucket,
            path_style,
            transfer: TransferSettings {
                multipart_threshold,
                part_size,
                concurrency,
            },
            connect_timeout,
            max_attempts,
        })
    }

    /// The endpoint as people know it, for messages.
    pub fn endpoint_name(&self) -> String {
        match &self.endpoint_url {
            Some(url) => url.clone(),
            None => format!("AWS S3 ({})", self.region),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "env-id"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ]
    }

    fn resolve(flags: &S3Overrides, config: &S3Config, env: &[(&str, &str)]) -> S3Settings {
        S3Settings::resolve(flags, config, &EnvVars::from_pairs(env.iter().copied())).unwrap()
    }

    #[test]
    fn flags_beat_config_which_beats_the_environment() {
        let mut env = keys();
        env.extend([
            ("S3_BUCKET_NAME", "env-bucket"),
            ("AWS_REGION", "env-region"),
            ("AWS_ENDPOINT_URL", "http://env:1"),
        ]);
        let config = S3Config {
            bucket: Some("config-bucket".into()),
            region: Some("config-region".into()),
            ..S3Config::default()
        };
        let flags = S3Overrides {
            bucket: Some("flag-bucket".into()),
            ..S3Overrides::default()
        };
        let s = resolve(&flags, &config, &env);
        assert_eq!(s.bucket, "flag-bucket");
        assert_eq!(s.region, "config-region");
        assert_eq!(s.endpoint_url.as_deref(), Some("http://env:1"));
        assert_eq!(s.access_key_id, "env-id");

        let s = resolve(&S3Overrides::default(), &S3Config::default(), &env);
        assert_eq!(s.bucket, "env-bucket");
        assert_eq!(s.region, "env-region");
    }

    #[test]
    fn config_keys_beat_environment_keys() {
        let config = S3Config {
            access_key_id: Some("config-id".into()),
            secret_access_key: Some("config-secret".into()),
            bucket: Some("b".into()),
            ..S3Config::default()
        };
        let s = resolve(&S3Overrides::default(), &config, &keys());
        assert_eq!(
            (s.access_key_id.as_str(), s.secret_access_key.as_str()),
            ("config-id", "config-secret")
        );
    }

    #[test]
    fn process_variables_beat_the_dotenv_file() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(".env");
        // PATH is always set in the test process and is not one of ours: it must
        // be ignored, while our variables come through.
        std::fs::write(
            &dotenv,
            "S3_BUCKET_NAME=from-file\nPATH=/nowhere\nAWS_REGION=\"file-region\"\n",
        )
        .unwrap();
        let env = EnvVars::from_process_and_dotenv(&dotenv).unwrap();
        if std::env::var("S3_BUCKET_NAME").is_err() {
            assert_eq!(env.get("S3_BUCKET_NAME"), Some("from-file"));
        }
        if std::env::var("AWS_REGION").is_err() {
            assert_eq!(env.get("AWS_REGION"), Some("file-region"));
        }
        assert_eq!(env.get("PATH"), None);
    }

    #[test]
    fn a_broken_dotenv_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(".env");
        std::fs::write(&dotenv, "S3_BUCKET_NAME='unterminated\n").unwrap();
        let err = EnvVars::from_process_and_dotenv(&dotenv).unwrap_err();
        assert!(err.to_string().contains(".env"), "{err}");
    }

    #[test]
    fn s3_specific_endpoint_beats_the_generic_one() {
        let mut env = keys();
        env.extend([
            ("S3_BUCKET_NAME", "b"),
            ("AWS_ENDPOINT_URL", "http://generic:1"),
            ("AWS_ENDPOINT_URL_S3", "http://s3:1"),
        ]);
        let s = resolve(&S3Overrides::default(), &S3Config::default(), &env);
        assert_eq!(s.endpoint_url.as_deref(), Some("http://s3:1"));
    }

    #[test]
    fn path_style_defaults_on_only_for_custom_endpoints() {
        let mut env = keys();
        env.push(("S3_BUCKET_NAME", "b"));
        let aws = resolve(&S3Overrides::default(), &S3Config::default(), &env);
        assert!(!aws.path_style);
        assert_eq!(aws.region, "us-east-1");
        env.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:8333"));
        let custom = resolve(&S3Overrides::default(), &S3Config::default(), &env);
        assert!(custom.path_style);
        let forced = resolve(
            &S3Overrides {
                path_style: Some(false),
                ..S3Overrides::default()
            },
            &S3Config::default(),
            &env,
        );
        assert!(!forced.path_style);
    }

    #[test]
    fn missing_pieces_say_what_to_set() {
        let none = EnvVars::default();
        let err = S3Settings::resolve(&S3Overrides::default(), &S3Config::default(), &none)
            .unwrap_err()
            .to_string();
        assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
        let only_id = EnvVars::from_pairs([("AWS_ACCESS_KEY_ID", "id")]);
        let err = S3Settings::resolve(&S3Overrides::default(), &S3Config::default(), &only_id)
            .unwrap_err()
            .to_string();
        assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
        let blank_bucket = EnvVars::from_pairs(keys().into_iter().chain([("S3_BUCKET_NAME", " ")]));
        let err = S3Settings::resolve(&S3Overrides::default(), &S3Config::default(), &blank_bucket)
            .unwrap_err()
            .to_string();
        assert!(err.contains("S3_BUCKET_NAME"), "{err}");
    }

    #[test]
    fn transfer_limits_are_checked() {
        let env = EnvVars::from_pairs(keys().into_iter().chain([("S3_BUCKET_NAME", "b")]));
        let try_flags = |flags: S3Overrides| {
            S3Settings::resolve(&flags, &S3Config::default(), &env).map(|s| s.transfer)
        };
        let small_parts = S3Overrides {
            part_size_mb: Some(4),
            ..S3Overrides::default()
        };
        assert!(try_flags(small_parts)
            .unwrap_err()
            .to_string()
            .contains("5 MiB"));
        let no_workers = S3Overrides {
            concurrency: Some(0),
            ..S3Overrides::default()
        };
        assert!(try_flags(no_workers).is_err());
        let custom = S3Overrides {
            multipart_threshold_mb: Some(8),
            part_size_mb: Some(5),
            concurrency: Some(2),
            ..S3Overrides::default()
        };
        assert_eq!(
            try_flags(custom).unwrap(),
            TransferSettings {
                multipart_threshold: 8 * MIB,
                part_size: 5 * MIB,
                concurrency: 2
            }
        );
        assert_eq!(
            try_flags(S3Overrides::default()).unwrap(),
            TransferSettings::default()
        );
    }

    #[test]
    fn endpoint_without_scheme_is_rejected() {
        let env = EnvVars::from_pairs(keys().into_iter().chain([("S3_BUCKET_NAME", "b")]));
        let flags = S3Overrides {
            endpoint_url: Some("127.0.0.1:8333".into()),
            ..S3Overrides::default()
        };
        let err = S3Settings::resolve(&flags, &S3Config::default(), &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`127.0.0.1:8333`"), "{err}");
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let env = EnvVars::from_pairs(keys().into_iter().chain([("S3_BUCKET_NAME", "b")]));
        let s = S3Settings::resolve(&S3Overrides::default(), &S3Config::default(), &env).unwrap();
        assert!(!format!("{s:?}").contains("env-secret"));
    }
}
