//! S3 failures, told in terms of what the user has to fix.
//!
//! The SDK reports failures as nested structs (`DispatchFailure(…)`,
//! `ServiceError { raw: … }`) that mean little to someone whose secret key has
//! a typo. [`S3Error::from_sdk`] reads the S3 error code and the transport's
//! own classification and turns the common cases into one sentence naming the
//! bad value and where it comes from; anything else keeps the server's code and
//! message, never a debug dump.

use std::error::Error as StdError;
use std::path::PathBuf;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// What can go wrong talking to a bucket.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// No access key id or no secret key anywhere.
    #[error(
        "no S3 credentials: {missing} is not set; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
         (in the environment or a .env file), or access_key_id / secret_access_key in [s3] of config.toml"
    )]
    NoCredentials {
        /// The first variable that is missing.
        missing: &'static str,
    },
    /// No bucket named anywhere.
    #[error(
        "no bucket given: pass --bucket, set S3_BUCKET_NAME, or set bucket in [s3] of config.toml"
    )]
    NoBucket,
    /// A setting that cannot work.
    #[error("{message}")]
    Settings {
        /// What is wrong, naming the value.
        message: String,
    },
    /// The server does not accept the request signature: the secret key does not match the id.
    #[error(
        "the secret key is wrong for access key {access_key} (the server rejected the request signature); \
         check AWS_SECRET_ACCESS_KEY or secret_access_key in [s3]"
    )]
    WrongSecretKey {
        /// The access key id that was used.
        access_key: String,
    },
    /// The server does not know the access key id.
    #[error("access key {access_key} is not known to {endpoint}; check AWS_ACCESS_KEY_ID or access_key_id in [s3]")]
    UnknownAccessKey {
        /// The access key id that was used.
        access_key: String,
        /// The endpoint that refused it.
        endpoint: String,
    },
    /// The key pair is valid but may not do this.
    #[error("access key {access_key} may not {action} in bucket `{bucket}` (AccessDenied)")]
    AccessDenied {
        /// The access key id that was used.
        access_key: String,
        /// The bucket.
        bucket: String,
        /// What was attempted, e.g. `list objects`.
        action: String,
    },
    /// The bucket does not exist.
    #[error("bucket `{bucket}` does not exist at {endpoint}; check --bucket, S3_BUCKET_NAME or bucket in [s3]")]
    NoSuchBucket {
        /// The bucket.
        bucket: String,
        /// The endpoint asked.
        endpoint: String,
    },
    /// The object does not exist.
    #[error("no object `{key}` in bucket `{bucket}`")]
    NoSuchKey {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// No object under a prefix that was to be pulled.
    #[error("no objects under `{prefix}` in bucket `{bucket}`")]
    EmptyPrefix {
        /// The bucket.
        bucket: String,
        /// The prefix.
        prefix: String,
    },
    /// The endpoint could not be connected to, or did not answer in time.
    #[error(
        "cannot reach the S3 endpoint {endpoint}: {detail}; check --endpoint-url, AWS_ENDPOINT_URL or \
         endpoint_url in [s3], and that the server is running"
    )]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// What the transport said (connection refused, timed out, …).
        detail: String,
    },
    /// Any other failure of a request: the server's code and message.
    #[error("{action} failed at {endpoint}: {detail}")]
    Request {
        /// What was attempted, e.g. `upload part 3 of big.bin`.
        action: String,
        /// The endpoint.
        endpoint: String,
        /// The S3 error code, when the server sent one.
        code: Option<String>,
        /// The server's message or the transport's failure.
        detail: String,
    },
    /// The local file or directory to push is not there.
    #[error("no such local file or directory: {}", path.display())]
    NoSuchLocalPath {
        /// The path given.
        path: PathBuf,
    },
    /// Reading or writing a local file failed.
    #[error("{action} {}", path.display())]
    Local {
        /// What was being done, e.g. `writing`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A local path that cannot be used as asked.
    #[error("{}: {problem}", path.display())]
    BadLocalPath {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The object on the server and the local file differ in size after a transfer.
    #[error("size check failed for `{key}`: {local} bytes locally, {remote} bytes on the server; the transfer is incomplete")]
    SizeMismatch {
        /// The key.
        key: String,
        /// Bytes of the local file.
        local: u64,
        /// Bytes of the object.
        remote: u64,
    },
    /// A multipart upload failed, and aborting it failed too: parts may remain.
    #[error(
        "{first}; aborting multipart upload {upload_id} of `{key}` failed as well ({abort}), so its parts may \
         still take space: remove them with `aws s3api abort-multipart-upload`"
    )]
    AbortFailed {
        /// Why the upload failed.
        first: Box<S3Error>,
        /// The key being uploaded.
        key: String,
        /// The upload id.
        upload_id: String,
        /// Why the abort failed.
        abort: Box<S3Error>,
    },
}

/// Who asked what, for turning an SDK failure into an [`S3Error`].
pub(crate) struct Attempt<'a> {
    /// What was attempted, in words (`list objects`, `download`).
    pub action: &'a str,
    /// The object key, if the request was about one.
    pub key: Option<&'a str>,
    /// The bucket.
    pub bucket: &'a str,
    /// The access key id in use.
    pub access_key: &'a str,
    /// The endpoint, for messages.
    pub endpoint: &'a str,
}

impl Attempt<'_> {
    /// `upload part 3 of `big.bin``, `list objects`.
    fn describe(&self) -> String {
        match self.key {
            Some(key) => format!("{} `{key}`", self.action),
            None => self.action.to_string(),
        }
    }
}

/// Whether a transport failure happened while connecting (refused, timed out,
/// unknown host) rather than on an established connection. The HTTP client
/// marks these in its error chain; its types are not public, its messages are.
fn failed_to_connect(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if [
            "(Connect)",
            "tcp connect",
            "connect timeout",
            "error trying to connect",
            "dns error",
        ]
        .iter()
        .any(|marker| text.contains(marker))
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// The innermost cause of an error: for a refused connection, "Connection refused
/// (os error 111)" rather than three layers of transport wrappers.
fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

impl S3Error {
    /// Classify an SDK failure of `attempt`.
    pub(crate) fn from_sdk<E>(err: SdkError<E, HttpResponse>, attempt: &Attempt<'_>) -> S3Error
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let endpoint = attempt.endpoint.to_string();
        match &err {
            SdkError::DispatchFailure(failure) => {
                let connector = failure.as_connector_error();
                let detail = match connector {
                    Some(c) if c.is_timeout() => {
                        format!("connecting timed out ({})", root_cause(c))
                    }
                    Some(c) => root_cause(c),
                    None => DisplayErrorContext(&err).to_string(),
                };
                if connector.is_none_or(|c| failed_to_connect(c)) {
                    return S3Error::Unreachable { endpoint, detail };
                }
                // Connected, then the connection broke: the endpoint is right,
                // the transfer is what failed (after the SDK's retries).
                return S3Error::Request {
                    action: attempt.describe(),
                    endpoint,
                    code: None,
                    detail: format!("the connection broke off: {detail}"),
                };
            }
            SdkError::TimeoutError(_) => {
                return S3Error::Unreachable {
                    endpoint,
                    detail: "no answer in time".to_string(),
                }
            }
            _ => {}
        }
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_string).or_else(|| {
            // HEAD responses carry no body, hence no code: fall back on the status.
            match status {
                Some(404) if attempt.key.is_some() => Some("NoSuchKey".to_string()),
                Some(404) => Some("NoSuchBucket".to_string()),
                Some(403) => Some("AccessDenied".to_string()),
                _ => None,
            }
        });
        let key = attempt.key.unwrap_or_default().to_string();
        let bucket = attempt.bucket.to_string();
        let access_key = attempt.access_key.to_string();
        match code.as_deref() {
            Some("SignatureDoesNotMatch") => S3Error::WrongSecretKey { access_key },
            Some("InvalidAccessKeyId") => S3Error::UnknownAccessKey {
                access_key,
                endpoint,
            },
            Some("NoSuchBucket") => S3Error::NoSuchBucket { bucket, endpoint },
            Some("NoSuchKey") | Some("NotFound") => S3Error::NoSuchKey { bucket, key },
            Some("AccessDenied") => S3Error::AccessDenied {
                access_key,
                bucket,
                action: attempt.action.to_string(),
            },
            _ => {
                let detail = match (err.code(), err.message()) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code.to_string(),
                    _ => root_cause(&err),
                };
                let detail = match status {
                    Some(status) => format!("{detail} (HTTP {status})"),
                    None => detail,
                };
                S3Error::Request {
                    action: attempt.describe(),
                    endpoint,
                    code,
                    detail,
                }
            }
        }
    }

    /// A local I/O failure.
    pub(crate) fn local(
        action: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> S3Error {
        S3Error::Local {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_value_to_fix() {
        let wrong = S3Error::WrongSecretKey {
            access_key: "AKIA1".into(),
        };
        assert!(wrong
            .to_string()
            .starts_with("the secret key is wrong for access key AKIA1"));
        let bucket = S3Error::NoSuchBucket {
            bucket: "models".into(),
            endpoint: "http://x:1".into(),
        };
        assert!(bucket
            .to_string()
            .contains("bucket `models` does not exist at http://x:1"));
    }

    #[test]
    fn root_cause_skips_the_wrappers() {
        #[derive(Debug, thiserror::Error)]
        #[error("dispatch failure")]
        struct Outer(#[source] std::io::Error);
        let err = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        ));
        assert_eq!(root_cause(&err), "Connection refused");
        assert!(!failed_to_connect(&err));
    }

    #[test]
    fn connect_failures_are_told_from_broken_transfers() {
        #[derive(Debug, thiserror::Error)]
        #[error("{0}")]
        struct Layer(String, #[source] std::io::Error);
        let refused = Layer(
            "client error (Connect)".into(),
            std::io::Error::other("tcp connect error"),
        );
        assert!(failed_to_connect(&refused));
        let broken = Layer(
            "dispatch failure".into(),
            std::io::Error::other("connection closed before message completed"),
        );
        assert!(!failed_to_connect(&broken));
    }
}
