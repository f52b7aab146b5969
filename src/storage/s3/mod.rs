//! Object storage: any S3-compatible server (AWS, Yandex Object Storage, MinIO, SeaweedFS).
//!
//! Shops keep datasets and model bundles in a bucket; this module moves them
//! there and back safely and fast, for `recsys s3` and for any Rust code that
//! needs to publish a bundle.
//!
//! * [`S3Config`] is the `[s3]` section of config.toml;
//! * [`S3Settings`] is one validated value built from flags, `[s3]`, the
//!   environment and a `.env` file, in that order of precedence
//!   ([`S3Settings::resolve`]);
//! * [`S3Store`] is a client bound to one bucket: [`S3Store::list`],
//!   [`S3Store::push`] (a file, or a directory recursively; multipart with
//!   parallel parts above a threshold, aborted on failure, size verified after)
//!   and [`S3Store::pull`] (to a temporary name, renamed into place when complete);
//! * [`S3Error`] says what went wrong in terms of what to fix (a wrong secret
//!   key, a missing bucket, an unreachable endpoint) rather than as SDK structs.
//!
//! The store is async (the AWS SDK is); a command line creates its own runtime:
//!
//! ```no_run
//! use recsys::storage::s3::{EnvVars, S3Config, S3Overrides, S3Settings, S3Store};
//!
//! # fn main() -> anyhow::Result<()> {
//! let env = EnvVars::from_process_and_dotenv(std::path::Path::new(".env"))?;
//! let settings = S3Settings::resolve(&S3Overrides::default(), &S3Config::default(), &env)?;
//! let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
//! let store = S3Store::new(settings);
//! runtime.block_on(store.push(std::path::Path::new("artifacts/run-1"), "bundles/run-1"))?;
//! # Ok(())
//! # }
//! ```

mod error;
mod settings;
mod sizes;
mod store;
mod transfer;

use serde::{Deserialize, Serialize};

pub use error::S3Error;
pub use settings::{EnvVars, S3Overrides, S3Settings, TransferSettings};
pub use sizes::{human_bytes, human_rate};
pub use store::{ObjectInfo, S3Store};
pub use transfer::{plan_parts, LeftUpload, PartRange, PullReport, PushReport};

/// `[s3]` of config.toml. Every key is optional: an unset key falls back to the
/// environment (`AWS_*`, `S3_BUCKET_NAME`), then to a `.env` file, then to a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Bucket name (else `S3_BUCKET_NAME`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Endpoint of an S3-compatible server, e.g. `https://storage.yandexcloud.net`
    /// (else `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`; AWS itself when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Region (else `AWS_REGION`, `AWS_DEFAULT_REGION`, then `us-east-1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) instead of a bucket subdomain.
    /// Defaults to on with a custom endpoint, whose buckets rarely have DNS names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// Access key id (else `AWS_ACCESS_KEY_ID`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Secret access key (else `AWS_SECRET_ACCESS_KEY`). Never written back out:
    /// the config is copied into every bundle's manifest.
    #[serde(skip_serializing)]
    pub secret_access_key: Option<String>,
    /// Files of at least this many MiB are uploaded in parts (default 64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multipart_threshold_mb: Option<u64>,
    /// Size of one part in MiB, at least 5 (default 16).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_size_mb: Option<u64>,
    /// Parts (or small files) in flight at once (default 8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Seconds to wait for a TCP connection before calling the endpoint unreachable (default 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout_secs: Option<u64>,
    /// Attempts per request, the first included, with exponential back-off between them (default 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_key_is_read_but_never_written_back() {
        let config: S3Config = toml::from_str(
            "bucket = \"models\"\naccess_key_id = \"AKID\"\nsecret_access_key = \"hush\"\n",
        )
        .unwrap();
        assert_eq!(config.secret_access_key.as_deref(), Some("hush"));
        let written = toml::to_string(&config).unwrap();
        assert!(
            written.contains("AKID") && written.contains("models"),
            "{written}"
        );
        assert!(!written.contains("hush"), "{written}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<S3Config>("buckett = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("buckett"), "{err}");
    }
}
