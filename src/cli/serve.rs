//! `recsys serve`: the HTTP recommendation service.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::{bundle_dir_root, load_config};
use crate::serve::server::{run as serve, ServeOptions};

/// Arguments of `recsys serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (`[serve]` holds the service settings).
    #[arg(long, default_value = "config.toml")]
    pub config: PathBuf,
    /// A bundle, or a directory of bundles (the newest is served, and reloads pick up newer ones).
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Address to listen on (default from `[serve] host`, 127.0.0.1).
    #[arg(long)]
    pub host: Option<String>,
    /// Port to listen on (default from `[serve] port`, 8000; 0 picks a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// Event store: "memory" or a redis:// URL (default from `[serve] event_store`).
    #[arg(long)]
    pub event_store: Option<String>,
}

pub(super) fn run(args: ServeArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    let mut serve_config = config.serve.clone();
    if let Some(host) = args.host {
        serve_config.host = host;
    }
    if let Some(port) = args.port {
        serve_config.port = port;
    }
    if let Some(store) = args.event_store {
        serve_config.event_store = store;
    }
    serve_config.validate()?;
    serve(ServeOptions {
        config: serve_config,
        bundle_root: bundle_dir_root(args.bundle, &config),
        engine: crate::engine::EngineSettings::from_config(&config),
    })
}
