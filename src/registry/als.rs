//! `als` in the registry: fitted on the interaction matrix, stored as its two factor tables.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use super::{inconsistent, FitInput, ModelSpec, Prefitted};
use crate::bundle::{Bundle, MANIFEST};
use crate::data::interaction_matrix;
use crate::models::als::{fast_loss, Neighbours};
use crate::models::factors::Factors;
use crate::models::Als;
use crate::npy;
use crate::progress;

pub(super) const SPEC: ModelSpec = ModelSpec {
    name: "als",
    prefit: None,
    fit,
    save,
    load,
    present: |b| b.als.is_some(),
};

const TABLES: [&str; 2] = ["als_user_factors.npy", "als_item_factors.npy"];
const NEIGHBOURS: [&str; 2] = ["als_neighbour_items.npy", "als_neighbour_scores.npy"];

fn fit(input: &FitInput, _: Option<Prefitted>, bundle: &mut Bundle) -> Result<serde_json::Value> {
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
    model.keep_neighbours(None, |m| bar.inc(m as u64));
    bar.finish_and_clear();
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
        let [rows, dim] = shape[..] else {
            return Err(inconsistent(
                dir,
                format!("{name} has shape {shape:?}, expected a table of rows × factors"),
            ));
        };
        let table = Factors { rows, dim, data };
        if table.has_non_finite() {
            return Err(inconsistent(
                dir,
                format!("{name} holds values that are not finite numbers"),
            ));
        }
        Ok(table)
    };
    let (users, items) = (table(TABLES[0])?, table(TABLES[1])?);
    // Folding a shopper in weighs their events with the settings it was trained with.
    let config = bundle.manifest.config.models.als.clone();
    // Every check names both sides: a table that disagrees with the ids would
    // score the wrong shopper or item, and one whose width disagrees with the
    // other's would make every dot product read past or short of its row.
    let mismatch = if users.rows != bundle.users.len() {
        Some(format!(
            "{} has {} rows, users.npy has {} users",
            TABLES[0],
            users.rows,
            bundle.users.len()
        ))
    } else if items.rows != bundle.items.len() {
        Some(format!(
            "{} has {} rows, items.npy has {} items",
            TABLES[1],
            items.rows,
            bundle.items.len()
        ))
    } else if users.dim != items.dim {
        Some(format!(
            "{} has {} factors per item, {} has {} per user",
            TABLES[1], items.dim, TABLES[0], users.dim
        ))
    } else if users.dim != config.factors || users.dim == 0 {
        Some(format!(
            "the ALS tables have {} factors, {MANIFEST} says als was trained with {}",
            users.dim, config.factors
        ))
    } else {
        None
    };
    if let Some(what) = mismatch {
        return Err(inconsistent(dir, what));
    }
    let als = Als::from_factors(users, items, config);
    if dir.join(NEIGHBOURS[0]).is_file() {
        let (shape, neighbour_items) = npy::read::<u32>(&dir.join(NEIGHBOURS[0]))?;
        let (score_shape, scores) = npy::read::<f32>(&dir.join(NEIGHBOURS[1]))?;
        let rows = als.item_factors.rows;
        let width = match shape[..] {
            [r, width] if r == rows && score_shape == shape => width,
            _ => {
                return Err(inconsistent(
                    dir,
                    format!(
                        "{} has shape {shape:?} and {} {score_shape:?}, expected both [{rows}, width] for the {rows} items",
                        NEIGHBOURS[0], NEIGHBOURS[1]
                    ),
                ))
            }
        };
        als.set_neighbours(Neighbours {
            width,
            items: neighbour_items,
            scores,
        })
        .map_err(|e| inconsistent(dir, format!("{}: {e}", NEIGHBOURS[0])))?;
    }
    bundle.als = Some(Arc::new(als));
    Ok(())
}
