//! Levelled, structured logs for the service and the long commands.
//!
//! One `tracing` subscriber for the process, installed by [`init`] before a
//! command runs, writing to stderr so that stdout stays the command's output
//! (JSON answers, tables):
//!
//! - `--log-format text` (the default): one line per event, time, level,
//!   message and fields, for a terminal or `journalctl`;
//! - `--log-format json`: one JSON object per line with the same fields, for
//!   log shippers (Loki, Elasticsearch, CloudWatch).
//!
//! The level comes from `RUST_LOG` in `tracing`'s filter syntax
//! (`RUST_LOG=debug` adds one line per HTTP request with its route, status,
//! latency and request id); without it, `info`.
//!
//! An error that ends a command is not a log line: `main` prints it in the
//! ripgrep style, `recsys: what went wrong: why`, for the person who typed
//! the command.

use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Install the process's subscriber; a `RUST_LOG` that does not parse is
/// reported and `info` used instead.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env();
    let (filter, bad_filter) = match filter {
        Ok(filter) => (filter, None),
        Err(err) => (EnvFilter::new("info"), Some(err)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    // A second call (tests running commands in one process) keeps the first.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    if let Some(err) = bad_filter {
        tracing::warn!("RUST_LOG is not a valid filter ({err}); logging at info");
    }
}
