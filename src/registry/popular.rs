//! `popular` in the registry: fitted from the training events, stored as its ranking.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::{inconsistent, FitInput, ModelSpec, Prefitted};
use crate::bundle::Bundle;
use crate::models::Popular;
use crate::npy;

pub(super) const SPEC: ModelSpec = ModelSpec {
    name: "popular",
    prefit: None,
    fit,
    save,
    load,
    present: |b| b.popular.is_some(),
};

fn fit(input: &FitInput, _: Option<Prefitted>, bundle: &mut Bundle) -> Result<serde_json::Value> {
    let t = Instant::now();
    let m = Popular::fit(&bundle.train, &input.config.models.popular);
    let facts = json!({"seconds": t.elapsed().as_secs_f64(), "items": m.ranked.len()});
    bundle.popular = Some(Arc::new(m));
    Ok(facts)
}

fn save(bundle: &Bundle, dir: &Path) -> Result<()> {
    let Some(p) = &bundle.popular else {
        return Ok(());
    };
    let items: Vec<u32> = p.ranked.iter().map(|r| r.0).collect();
    let scores: Vec<f32> = p.ranked.iter().map(|r| r.1).collect();
    npy::write(&dir.join("popular_items.npy"), &[items.len()], &items)?;
    npy::write(&dir.join("popular_scores.npy"), &[scores.len()], &scores)
}

fn load(bundle: &mut Bundle, dir: &Path) -> Result<()> {
    let items = npy::read::<u32>(&dir.join("popular_items.npy"))?.1;
    let scores = npy::read::<f32>(&dir.join("popular_scores.npy"))?.1;
    if items.len() != scores.len() || items.iter().any(|&i| i as usize >= bundle.items.len()) {
        return Err(inconsistent(dir, "popular refers to unknown items"));
    }
    bundle.popular = Some(Arc::new(Popular {
        ranked: items.into_iter().zip(scores).collect(),
    }));
    Ok(())
}
