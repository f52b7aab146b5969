//! `als` in the registry: fitted on the interaction matrix, stored as its two factor tables.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::{inconsistent, FitInput, ModelSpec};
use crate::bundle::Bundle;
use crate::data::interaction_matrix;
use crate::models::als::{fast_loss, Neighbours, CACHED_NEIGHBOURS};
use crate::models::factors::Factors;
use crate::models::Als;
use crate::npy;
use crate::progress;

pub(super) const SPEC: ModelSpec = ModelSpec {
    name: "als",
    fit,
    save,
    load,
    present: |b| b.als.is_some(),
};

const TABLES: [&str; 2] = ["als_user_factors.npy", "als_item_factors.npy"];
const NEIGHBOURS: [&str; 2] = ["als_neighbour_items.npy", "als_neighbour_scores.npy"];

fn fit(input: &FitInput, bundle: &mut Bundle) -> Result<serde_json::Value> {
    let config = &input.config.models.als;
    let record = input.options.record_als_loss;
    let t = Instant::now();
    let matrix = interaction_matrix(&bundle.train, &config.weights);
    let bar = progress::bar(config.iterations as u64, "als");
    let mut losses = Vec::new();
    let mut loss_time = Duration::ZERO;
    let user_items = (record && !matrix.is_csr()).then(|| matrix.to_csr());
    let model = Als::fit(&matrix, config, |_, trainer| {
        if record {
            let t = Instant::now();
            losses.push(fast_loss(
                trainer,
                user_items.as_ref().unwrap_or(&matrix),
                config,
            ));
            loss_time += t.elapsed();
        }
        bar.inc(1)
    })
    .context("training als");
    bar.finish_and_clear();
    let model = model?;
    let fit_seconds = t.elapsed().saturating_sub(loss_time).as_secs_f64();
    // Every item's similar items, once, so that no request searches for them.
    let t = Instant::now();
    let bar = progress::bar(
        model.item_factors.rows as u64,
        "als: similar items of every item",
    );
    let table = model.compute_neighbours(CACHED_NEIGHBOURS, |m| bar.inc(m as u64));
    bar.finish_and_clear();
    model.set_neighbours(table).map_err(anyhow::Error::msg)?;
    let neighbours_seconds = t.elapsed().as_secs_f64();
    bundle.als = Some(Arc::new(model));
    let mut facts = json!({
        "seconds": fit_seconds,
        "neighbours_seconds": neighbours_seconds,
        "nnz": matrix.nnz(),
        "factors": config.factors,
    });
    if record {
        facts["loss_curve"] = json!(losses);
        facts["loss_seconds"] = json!(loss_time.as_secs_f64());
    }
    Ok(facts)
}

fn save(bundle: &Bundle, dir: &Path) -> Result<()> {
    let Some(a) = &bundle.als else {
        return Ok(());
    };
    for (name, f) in TABLES.into_iter().zip([&a.user_factors, &a.item_factors]) {
        npy::write(&dir.join(name), &[f.rows, f.dim], &f.data)?;
    }
    if let Some(n) = a.neighbours() {
        let shape = [a.item_factors.rows, n.width];
        npy::write(&dir.join(NEIGHBOURS[0]), &shape, &n.items)?;
        npy::write(&dir.join(NEIGHBOURS[1]), &shape, &n.scores)?;
    }
    Ok(())
}

fn load(bundle: &mut Bundle, dir: &Path) -> Result<()> {
    let table = |name: &str| -> Result<Factors> {
        let (shape, data) = npy::read::<f32>(&dir.join(name))?;
        match shape[..] {
            [rows, dim] => Ok(Factors { rows, dim, data }),
            _ => bail!("{name} in {} is not a 2-D table", dir.display()),
        }
    };
    let (users, items) = (table(TABLES[0])?, table(TABLES[1])?);
    if users.rows != bundle.users.len()
        || items.rows != bundle.items.len()
        || users.dim != items.dim
    {
        return Err(inconsistent(
            dir,
            "ALS factor tables do not match the id maps",
        ));
    }
    // Folding a shopper in weighs their events with the settings it was trained with.
    let config = bundle.manifest.config.models.als.clone();
    let als = Als::from_factors(users, items, config);
    if dir.join(NEIGHBOURS[0]).is_file() {
        let (shape, neighbour_items) = npy::read::<u32>(&dir.join(NEIGHBOURS[0]))?;
        let scores = npy::read::<f32>(&dir.join(NEIGHBOURS[1]))?.1;
        let width = match shape[..] {
            [_, width] => width,
            _ => bail!("{} in {} is not a 2-D table", NEIGHBOURS[0], dir.display()),
        };
        als.set_neighbours(Neighbours {
            width,
            items: neighbour_items,
            scores,
        })
        .map_err(|e| inconsistent(dir, e))?;
    }
    bundle.als = Some(Arc::new(als));
    Ok(())
}
