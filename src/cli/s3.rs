//! `recsys s3`: list, measure, push and pull objects in a bucket.
//!
//! A thin shell over [`crate::storage::s3`]: the flags, `[s3]` of the config
//! file (if there is one), the environment and a `.env` file in the working
//! directory are merged into one [`S3Settings`] before anything is sent, and the
//! async store runs on a runtime owned by this command. Listings go to stdout,
//! one object a line; progress bars and counts go to stderr. Ctrl-C stops a
//! transfer cleanly: the store aborts the multipart upload it was sending and
//! removes the temporary file it was writing. A push killed outright leaves
//! its upload on the server; the next push of the key aborts it and says so.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::load_config;
use crate::storage::s3::{
    human_bytes, human_rate, EnvVars, ObjectInfo, S3Config, S3Overrides, S3Settings, S3Store,
};

/// Arguments of `recsys s3`.
#[derive(Debug, Args)]
pub struct S3Args {
    /// What to do.
    #[command(subcommand)]
    pub command: S3Command,
    /// Where the bucket is and how to reach it.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Settings shared by every `recsys s3` command; each beats `[s3]` and the environment.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Config file whose `[s3]` section is read [default: config.toml, if it exists].
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Bucket [env: S3_BUCKET_NAME].
    #[arg(long, global = true)]
    pub bucket: Option<String>,
    /// Endpoint of an S3-compatible server [env: AWS_ENDPOINT_URL].
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
    /// Region [env: AWS_REGION; default: us-east-1].
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Path-style addressing (`--path-style false` for bucket subdomains)
    /// [default: on with a custom endpoint].
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub path_style: Option<bool>,
    /// Requests in flight at once: parts of a file, or files [default: 8].
    #[arg(long, global = true)]
    pub concurrency: Option<usize>,
}

/// The `recsys s3` commands.
#[derive(Debug, Subcommand)]
pub enum S3Command {
    /// List objects: last modified (UTC), size in bytes, key.
    Contents(ListArgs),
    /// Size of every object, human-readable and in bytes, and the total.
    Space(ListArgs),
    /// Upload a file, or a directory recursively (multipart for large files).
    Push(PushArgs),
    /// Download an object, or every object under a prefix ending in `/`.
    Pull(PullArgs),
}

/// Arguments of `contents` and `space`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only keys starting with this.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Keys per listing request; the listing always goes on to the last key.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub page_size: i32,
}

/// Arguments of `push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// File or directory to upload.
    #[arg(long)]
    pub local_file_path: PathBuf,
    /// Key of the object; for a directory, the prefix its files go under.
    #[arg(long)]
    pub s3_file_path: String,
    /// Files of at least this many MiB go up in parts [default: 64].
    #[arg(long)]
    pub multipart_threshold_mb: Option<u64>,
    /// MiB per part, at least 5 [default: 16].
    #[arg(long)]
    pub part_size_mb: Option<u64>,
}

/// Arguments of `pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Key of the object, or a prefix ending in `/` to pull everything under it.
    #[arg(long)]
    pub s3_file_path: String,
    /// Where to write: a file, an existing directory, or (for a prefix) a new directory.
    #[arg(long)]
    pub local_file_path: PathBuf,
}

pub(super) fn run(args: S3Args) -> Result<()> {
    let settings = settings(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let store = S3Store::new(settings);
    runtime.block_on(async {
        let command = async {
            match args.command {
                S3Command::Contents(list) => contents(&store, &list).await,
                S3Command::Space(list) => space(&store, &list).await,
                S3Command::Push(push) => push_command(&store, &push).await,
                S3Command::Pull(pull) => pull_command(&store, &pull).await,
            }
        };
        // On Ctrl-C the command's future is dropped, which aborts an unfinished
        // multipart upload and removes a partial download before we exit.
        tokio::select! {
            result = command => result,
            _ = tokio::signal::ctrl_c() => {
                anyhow::bail!("interrupted; unfinished uploads were aborted and partial downloads removed")
            }
        }
    })
}

/// Flags over `[s3]` over the environment over `.env`.
fn settings(args: &S3Args) -> Result<S3Settings> {
    let default_config = Path::new("config.toml");
    let config = match &args.connection.config {
        Some(path) => load_config(path)?.s3,
        None if default_config.is_file() => load_config(default_config)?.s3,
        None => S3Config::default(),
    };
    let (multipart_threshold_mb, part_size_mb) = match &args.command {
        S3Command::Push(push) => (push.multipart_threshold_mb, push.part_size_mb),
        _ => (None, None),
    };
    let connection = &args.connection;
    let flags = S3Overrides {
        bucket: connection.bucket.clone(),
        endpoint_url: connection.endpoint_url.clone(),
        region: connection.region.clone(),
        path_style: connection.path_style,
        multipart_threshold_mb,
        part_size_mb,
        concurrency: connection.concurrency,
    };
    let env = EnvVars::from_process_and_dotenv(Path::new(".env"))?;
    Ok(S3Settings::resolve(&flags, &config, &env)?)
}

fn location(store: &S3Store, key: &str) -> String {
    format!("s3://{}/{key}", store.bucket())
}

async fn list(store: &S3Store, args: &ListArgs) -> Result<Vec<ObjectInfo>> {
    store
        .list(&args.prefix, args.page_size)
        .await
        .with_context(|| format!("listing {}", location(store, &args.prefix)))
}

async fn contents(store: &S3Store, args: &ListArgs) -> Result<()> {
    let objects = list(store, args).await?;
    let width = objects
        .iter()
        .map(|o| o.size.to_string().len())
        .max()
        .unwrap_or(1);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for object in &objects {
        writeln!(
            out,
            "{:<20}  {:>width$}  {}",
            object.last_modified, object.size, object.key
        )?;
    }
    out.flush()?;
    eprintln!(
        "{} under {}",
        count(objects.len(), "object"),
        location(store, &args.prefix)
    );
    Ok(())
}

async fn space(store: &S3Store, args: &ListArgs) -> Result<()> {
    let objects = list(store, args).await?;
    let width = objects
        .iter()
        .map(|o| o.size.to_string().len())
        .max()
        .unwrap_or(1)
        .max("bytes".len());
    let total: u64 = objects.iter().map(|o| o.size).sum();
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(out, "{:>10}  {:>width$}  key", "size", "bytes")?;
    for object in &objects {
        writeln!(
            out,
            "{:>10}  {:>width$}  {}",
            human_bytes(object.size),
            object.size,
            object.key
        )?;
    }
    writeln!(
        out,
        "total: {} ({total} bytes) in {} under {}",
        human_bytes(total),
        count(objects.len(), "object"),
        location(store, &args.prefix)
    )?;
    out.flush()?;
    Ok(())
}

/// `1 file`, `12 files`.
fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        _ => format!("{n} {noun}s"),
    }
}

fn seconds_and_rate(bytes: u64, elapsed: std::time::Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    format!("{seconds:.1} s, {}", human_rate(bytes, seconds))
}

async fn push_command(store: &S3Store, args: &PushArgs) -> Result<()> {
    let report = store
        .push(&args.local_file_path, &args.s3_file_path)
        .await
        .with_context(|| {
            format!(
                "pushing {} to {}",
                args.local_file_path.display(),
                location(store, &args.s3_file_path)
            )
        })?;
    for left in &report.aborted {
        eprintln!(
            "aborted multipart upload {} of {}{}, left unfinished by a push that did not end",
            left.upload_id,
            location(store, &left.key),
            left.initiated
                .as_deref()
                .map(|t| format!(" (begun {t})"))
                .unwrap_or_default()
        );
    }
    let target = match report.keys.as_slice() {
        [single] => location(store, single),
        _ => location(store, &args.s3_file_path),
    };
    let parts = match report.multipart_files {
        0 => String::new(),
        1 => format!(", multipart in {} parts", report.parts),
        n => format!(", {n} files multipart in {} parts", report.parts),
    };
    println!(
        "pushed {} from {} to {target}: {} ({} bytes){parts}, {}",
        count(report.keys.len(), "file"),
        args.local_file_path.display(),
        human_bytes(report.bytes),
        report.bytes,
        seconds_and_rate(report.bytes, report.elapsed)
    );
    Ok(())
}

async fn pull_command(store: &S3Store, args: &PullArgs) -> Result<()> {
    let report = store
        .pull(&args.s3_file_path, &args.local_file_path)
        .await
        .with_context(|| {
            format!(
                "pulling {} to {}",
                location(store, &args.s3_file_path),
                args.local_file_path.display()
            )
        })?;
    println!(
        "pulled {} from {} to {}: {} ({} bytes), {}",
        count(report.files, "file"),
        location(store, &args.s3_file_path),
        report.destination.display(),
        human_bytes(report.bytes),
        report.bytes,
        seconds_and_rate(report.bytes, report.elapsed)
    );
    Ok(())
}
