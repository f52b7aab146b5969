//! `history` in the registry: each user's decayed items, stored CSR-style.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::{inconsistent, FitInput, ModelSpec, Prefitted};
use crate::bundle::Bundle;
use crate::models::History;
use crate::npy;

pub(super) const SPEC: ModelSpec = ModelSpec {
    name: "history",
    prefit: None,
    fit,
    save,
    load,
    present: |b| b.history.is_some(),
};

fn fit(input: &FitInput, _: Option<Prefitted>, bundle: &mut Bundle) -> Result<serde_json::Value> {
    let t = Instant::now();
    let m = History::fit(&bundle.train, &input.config.models.history);
    let facts = json!({"seconds": t.elapsed().as_secs_f64(), "entries": m.items.len()});
    bundle.history = Some(Arc::new(m));
    Ok(facts)
}

fn save(bundle: &Bundle, dir: &Path) -> Result<()> {
    let Some(h) = &bundle.history else {
        return Ok(());
    };
    npy::write(
        &dir.join("history_offsets.npy"),
        &[h.offsets.len()],
        &h.offsets,
    )?;
    npy::write(&dir.join("history_items.npy"), &[h.items.len()], &h.items)?;
    npy::write(
        &dir.join("history_scores.npy"),
        &[h.scores.len()],
        &h.scores,
    )
}

fn load(bundle: &mut Bundle, dir: &Path) -> Result<()> {
    let h = History {
        // New events are weighted and decayed with the settings it was fitted with.
        config: bundle.manifest.config.models.history.clone(),
        cutoff_ms: bundle.manifest.cutoff_ms,
        offsets: npy::read::<u64>(&dir.join("history_offsets.npy"))?.1,
        items: npy::read::<u32>(&dir.join("history_items.npy"))?.1,
        scores: npy::read::<f32>(&dir.join("history_scores.npy"))?.1,
    };
    if h.users() != bundle.users.len()
        || h.offsets.last().copied() != Some(h.items.len() as u64)
        || h.scores.len() != h.items.len()
        || h.offsets.windows(2).any(|w| w[0] > w[1])
    {
        return Err(inconsistent(
            dir,
            "history offsets do not match the id maps",
        ));
    }
    if h.items.iter().any(|&x| x as usize >= bundle.items.len()) {
        return Err(inconsistent(dir, "history refers to unknown items"));
    }
    bundle.history = Some(Arc::new(h));
    Ok(())
}
