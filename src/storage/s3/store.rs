//! [`S3Store`]: an SDK client bound to one bucket, and listing.
//!
//! The client is built by hand from the resolved settings rather than through
//! `aws-config`'s provider chain: the settings already say where every value
//! comes from, and the chain would add profile files, IMDS probes (slow when
//! there is no EC2 metadata service) and a large build. Two things matter for
//! the user here: a short connect timeout, so an unreachable endpoint fails in
//! seconds instead of hanging, and the SDK's standard retry mode, which retries
//! throttling, 5xx answers and dropped connections with exponential back-off.

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::DateTimeFormat;
use aws_sdk_s3::Client;

use super::error::Attempt;
use super::{S3Error, S3Settings};

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, RFC 3339 in UTC (`2024-05-01T12:00:00Z`), empty if the server sent none.
    pub last_modified: String,
}

/// A client for one bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    pub(crate) client: Client,
    pub(crate) settings: S3Settings,
}

impl S3Store {
    /// A store for `settings.bucket`. Nothing is sent until the first request.
    pub fn new(settings: S3Settings) -> S3Store {
        let credentials = Credentials::new(
            settings.access_key_id.clone(),
            settings.secret_access_key.clone(),
            settings.session_token.clone(),
            None,
            "recsys-settings",
        );
        let mut config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .credentials_provider(credentials)
            .region(Region::new(settings.region.clone()))
            .force_path_style(settings.path_style)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(settings.connect_timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts))
            // Checksums only where the API demands them: several S3-compatible
            // servers reject the newer default of trailing CRC32s in aws-chunked
            // bodies. The size of every upload is verified separately.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(url) = &settings.endpoint_url {
            config = config.endpoint_url(url);
        }
        S3Store {
            client: Client::from_conf(config.build()),
            settings,
        }
    }

    /// The settings this store was made with.
    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.settings.bucket
    }

    /// The underlying SDK client, for requests this module does not wrap.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Turn an SDK failure of `action` (on `key`, if any) into an [`S3Error`].
    pub(crate) fn error<E>(
        &self,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
        action: &str,
        key: Option<&str>,
    ) -> S3Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let endpoint = self.settings.endpoint_name();
        S3Error::from_sdk(
            err,
            &Attempt {
                action,
                key,
                bucket: &self.settings.bucket,
                access_key: &self.settings.access_key_id,
                endpoint: &endpoint,
            },
        )
    }

    /// Every object whose key starts with `prefix`, in key order, following the
    /// listing's continuation tokens to the end; `page_size` keys per request
    /// (S3 caps it at 1000).
    pub async fn list(&self, prefix: &str, page_size: i32) -> Result<Vec<ObjectInfo>, S3Error> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.settings.bucket)
            .prefix(prefix)
            .max_keys(page_size)
            .into_paginator()
            .send();
        let mut objects = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(e, "list objects", None))?;
            for object in page.contents() {
                objects.push(ObjectInfo {
                    key: object.key().unwrap_or_default().to_string(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    last_modified: object
                        .last_modified()
                        .and_then(|t| t.fmt(DateTimeFormat::DateTime).ok())
                        .unwrap_or_default(),
                });
            }
        }
        Ok(objects)
    }

    /// The size of object `key` on the server.
    pub async fn object_size(&self, key: &str) -> Result<u64, S3Error> {
        let head = self
            .client
            .head_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error(e, "check the size of", Some(key)))?;
        Ok(head.content_length().unwrap_or(0).max(0) as u64)
    }
}
