//! `recsys recommend`: one shopper's recommendations, or an item's similar items, as JSON.
//!
//! A shopper's answer comes from the same function the service answers
//! `GET /recommendations` with ([`Engine::answer`]), so the same shopper with
//! the same events gets the same list from both. `--events FILE` passes the
//! events a shopper made since training (an event file in the usual format;
//! the rows of `--user-id` are read). Ids are raw shop ids; a shopper nothing
//! is known about gets popular items, and the answer says so (`"model":
//! "popular"`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args};
use serde_json::json;

use super::{bundle_dir, load_config, print_json};
use crate::data::load_events;
use crate::engine::{Engine, EngineSettings, Request, ShopperEvent};

/// Arguments of `recsys recommend`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("who").required(true).args(["user_id", "item_id"])))]
pub struct RecommendArgs {
    /// Config file.
    #[arg(long, default_value = "config.toml")]
    pub config: PathBuf,
    /// Recommend to this visitor (raw `visitorid`).
    #[arg(long, allow_negative_numbers = true)]
    pub user_id: Option<i64>,
    /// Items similar to this item (raw `itemid`), from the ALS factors.
    #[arg(long, allow_negative_numbers = true)]
    pub item_id: Option<i64>,
    /// How many items.
    #[arg(long, default_value_t = 10, value_parser = super::list_length)]
    pub k: usize,
    /// Model to ask (default: `[serve] model`, else two_stage, else als).
    #[arg(long)]
    pub model: Option<String>,
    /// The shopper's events since training: an event file (CSV or Parquet,
    /// the columns of the training data) whose rows of --user-id are read.
    #[arg(long, requires = "user_id")]
    pub events: Option<PathBuf>,
    /// Item ids not to recommend, comma-separated.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub exclude: Vec<i64>,
    /// Only items of this category.
    #[arg(long, allow_negative_numbers = true)]
    pub category: Option<i64>,
    /// A bundle, or a directory of bundles (its newest).
    #[arg(long)]
    pub bundle: Option<PathBuf>,
}

pub(super) fn run(args: RecommendArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    if args.exclude.len() > config.rules.max_exclude {
        bail!(
            "--exclude lists {} items; at most {} ([rules] max_exclude)",
            args.exclude.len(),
            config.rules.max_exclude
        );
    }
    let engine = Engine::load(
        &bundle_dir(args.bundle, &config)?,
        &EngineSettings::from_config(&config),
    )?;
    match (args.user_id, args.item_id) {
        (Some(user_id), _) => {
            let events = match &args.events {
                Some(path) => shopper_events(path, user_id, config.data.bad_rows)?,
                None => Vec::new(),
            };
            let request = Request {
                user_id,
                events: &events,
                k: args.k,
                exclude: &args.exclude,
                category: args.category,
                model: args.model.as_deref(),
            };
            // Printed as the service sends it, so that the two compare equal.
            print_json(&engine.answer(&request)?)
        }
        (None, Some(item_id)) => print_json(&similar(&engine, item_id, args.k)?),
        (None, None) => unreachable!("clap requires one of them"),
    }
}

/// The events of `user_id` in the event file at `path`.
fn shopper_events(
    path: &std::path::Path,
    user_id: i64,
    bad_rows: crate::data::BadRows,
) -> Result<Vec<ShopperEvent>> {
    let loaded = load_events(path, bad_rows)
        .with_context(|| format!("loading the shopper's events from {}", path.display()))?;
    let log = &loaded.log;
    Ok((0..log.len())
        .filter(|&i| log.visitor[i] == user_id)
        .map(|i| ShopperEvent {
            item_id: log.item[i],
            kind: log.kind[i],
            timestamp_ms: log.timestamp_ms[i],
        })
        .collect())
}

fn similar(engine: &Engine, item_id: i64, k: usize) -> Result<serde_json::Value> {
    if !engine.has_similar() {
        bail!("similar items need the `als` model, which this bundle does not have; enable it in [models] and retrain");
    }
    let list = |items: Vec<(i64, f32)>, source: &str| -> Vec<serde_json::Value> {
        items
            .into_iter()
            .map(|(item_id, score)| json!({"item_id": item_id, "score": score, "source": source}))
            .collect()
    };
    let mut answer = json!({
        "item_id": item_id,
        "model": "als",
        "model_version": engine.version,
    });
    match engine.similar(item_id, k) {
        Some(items) => {
            answer["known_item"] = json!(true);
            answer["similar"] = json!(list(items, "als"));
        }
        None => {
            answer["known_item"] = json!(false);
            answer["fallback"] = json!("popular");
            answer["note"] = json!(format!(
                "item {item_id} is unknown to the model; showing popular items"
            ));
            answer["similar"] = json!(list(engine.popular(k), "popular"));
        }
    }
    Ok(answer)
}
