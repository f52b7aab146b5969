//! `recsys recommend`: one user's recommendations, or an item's similar items, as JSON.
//!
//! Users and items are raw shop ids. Someone the bundle does not know gets the
//! popular list, and the answer says so (`"fallback": "popular"`): an unknown
//! shopper is normal traffic, not an error.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{ArgGroup, Args};
use serde_json::{json, Value};

use super::{bundle_dir, load_config, print_json};
use crate::bundle::Bundle;
use crate::models::{exclude_seen, Recommender, Scored};

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
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Model to ask (default: two_stage, else als, if the bundle has it).
    #[arg(long)]
    pub model: Option<String>,
    /// A bundle, or a directory of bundles (its newest).
    #[arg(long)]
    pub bundle: Option<PathBuf>,
}

pub(super) fn run(args: RecommendArgs) -> Result<()> {
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    let config = load_config(&args.config)?;
    let bundle = Bundle::load(&bundle_dir(args.bundle, &config)?)?;
    let answer = match (args.user_id, args.item_id) {
        (Some(user), _) => for_user(
            &bundle,
            user,
            args.k,
            args.model.as_deref(),
            config.models.exclude_seen,
        )?,
        (None, Some(item)) => similar(&bundle, item, args.k)?,
        (None, None) => unreachable!("clap requires one of them"),
    };
    print_json(&answer)
}

fn items_json(bundle: &Bundle, list: &[Scored], source: &str) -> Vec<Value> {
    list.iter()
        .map(|&(item, score)| json!({"item_id": bundle.items.raw(item), "score": score, "source": source}))
        .collect()
}

fn popular_fill(bundle: &Bundle, taken: &[Scored], k: usize) -> Vec<Scored> {
    let Some(popular) = &bundle.popular else {
        return Vec::new();
    };
    popular
        .recommend(None, k + taken.len())
        .into_iter()
        .filter(|p| !taken.iter().any(|t| t.0 == p.0))
        .take(k.saturating_sub(taken.len()))
        .collect()
}

fn for_user(
    bundle: &Bundle,
    user_id: i64,
    k: usize,
    model: Option<&str>,
    skip_seen: bool,
) -> Result<Value> {
    let names: Vec<&str> = bundle.models().iter().map(|m| m.name()).collect();
    let name = match model {
        Some(name) => name,
        None if names.contains(&"two_stage") => "two_stage",
        None if names.contains(&"als") => "als",
        None => names.first().copied().unwrap_or("popular"),
    };
    let Some(model) = bundle.model(name) else {
        bail!(
            "the bundle has no model `{name}` (it has: {})",
            names.join(", ")
        );
    };
    let user = bundle.users.get(user_id);
    let mut list = match user {
        Some(u) if skip_seen => {
            // The user's history list holds the items they interacted with.
            let mut seen: Vec<u32> = bundle
                .history
                .as_ref()
                .map(|h| {
                    h.recommend(Some(u), usize::MAX)
                        .into_iter()
                        .map(|s| s.0)
                        .collect()
                })
                .unwrap_or_default();
            seen.sort_unstable();
            exclude_seen(model.recommend(Some(u), k + seen.len()), &seen, k)
        }
        _ => model.recommend(user, k),
    };
    list.truncate(k);
    let fill = popular_fill(bundle, &list, k);
    let mut items = items_json(bundle, &list, name);
    items.extend(items_json(bundle, &fill, "popular"));
    let mut answer = json!({
        "user_id": user_id,
        "model": name,
        "model_version": bundle.manifest.run_id,
        "known_user": user.is_some(),
        "recommendations": items,
    });
    if user.is_none() {
        answer["fallback"] = json!("popular");
        answer["note"] = json!(format!(
            "user {user_id} is unknown to the model; showing popular items"
        ));
    }
    Ok(answer)
}

fn similar(bundle: &Bundle, item_id: i64, k: usize) -> Result<Value> {
    let Some(als) = &bundle.als else {
        bail!("similar items need the `als` model, which this bundle does not have; enable it in [models] and retrain");
    };
    let mut answer = json!({
        "item_id": item_id,
        "model": "als",
        "model_version": bundle.manifest.run_id,
    });
    match bundle.items.get(item_id) {
        Some(item) => {
            answer["known_item"] = json!(true);
            answer["similar"] = json!(items_json(bundle, &als.similar_items(item, k), "als"));
        }
        None => {
            answer["known_item"] = json!(false);
            answer["fallback"] = json!("popular");
            answer["note"] = json!(format!(
                "item {item_id} is unknown to the model; showing popular items"
            ));
            answer["similar"] = json!(items_json(bundle, &popular_fill(bundle, &[], k), "popular"));
        }
    }
    Ok(answer)
}
