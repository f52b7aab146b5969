//! `covisit` in the registry: three pruned co-visitation matrices, each stored
//! CSR-style as `covisit_<matrix>_{offsets,items,weights}.npy`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::{inconsistent, FitInput, ModelSpec, Prefitted};
use crate::bundle::Bundle;
use crate::models::covisit::{Covisit, Matrix, Neighbours};
use crate::npy;

pub(super) const SPEC: ModelSpec = ModelSpec {
    name: "covisit",
    prefit: None,
    fit,
    save,
    load,
    present: |b| b.covisit.is_some(),
};

fn fit(input: &FitInput, _: Option<Prefitted>, bundle: &mut Bundle) -> Result<serde_json::Value> {
    let t = Instant::now();
    let (m, stats) = Covisit::fit(&bundle.train, &input.config.models.covisit)?;
    let by_matrix = |values: [u64; 3]| -> serde_json::Value {
        Matrix::ALL
            .iter()
            .map(|m| (m.name().to_string(), json!(values[*m as usize])))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let facts = json!({
        "seconds": t.elapsed().as_secs_f64(),
        "pair_entries": by_matrix(stats.pair_entries),
        "kept_entries": by_matrix(stats.kept_entries),
        "passes": stats.passes,
        "largest_pass_entries": stats.largest_pass,
    });
    bundle.covisit = Some(Arc::new(m));
    Ok(facts)
}

fn file(dir: &Path, m: Matrix, part: &str) -> std::path::PathBuf {
    dir.join(format!("covisit_{}_{part}.npy", m.name()))
}

fn save(bundle: &Bundle, dir: &Path) -> Result<()> {
    let Some(c) = &bundle.covisit else {
        return Ok(());
    };
    for m in Matrix::ALL {
        let n = c.matrix(m);
        npy::write(&file(dir, m, "offsets"), &[n.offsets.len()], &n.offsets)?;
        npy::write(&file(dir, m, "items"), &[n.items.len()], &n.items)?;
        npy::write(&file(dir, m, "weights"), &[n.weights.len()], &n.weights)?;
    }
    Ok(())
}

fn load(bundle: &mut Bundle, dir: &Path) -> Result<()> {
    // Answers aggregate with the settings it was fitted with.
    let config = bundle.manifest.config.models.covisit.clone();
    let n_items = bundle.items.len();
    let mut matrices: [Neighbours; 3] = Default::default();
    for m in Matrix::ALL {
        let n = Neighbours {
            offsets: npy::read::<u64>(&file(dir, m, "offsets"))?.1,
            items: npy::read::<u32>(&file(dir, m, "items"))?.1,
            weights: npy::read::<f32>(&file(dir, m, "weights"))?.1,
        };
        let name = m.name();
        if n.rows() != n_items
            || n.offsets.first() != Some(&0)
            || n.offsets.last().copied() != Some(n.items.len() as u64)
            || n.weights.len() != n.items.len()
            || n.offsets.windows(2).any(|w| w[0] > w[1])
        {
            return Err(inconsistent(
                dir,
                format!("covisit {name} offsets do not match the items"),
            ));
        }
        if n.offsets
            .windows(2)
            .any(|w| w[1] - w[0] > config.neighbours as u64)
        {
            return Err(inconsistent(
                dir,
                format!(
                    "covisit {name} keeps more than its {} neighbours",
                    config.neighbours
                ),
            ));
        }
        if n.items.iter().any(|&b| b as usize >= n_items) {
            return Err(inconsistent(
                dir,
                format!("covisit {name} refers to unknown items"),
            ));
        }
        if n.weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
            return Err(inconsistent(
                dir,
                format!("covisit {name} has weights that are not positive numbers"),
            ));
        }
        matrices[m as usize] = n;
    }
    bundle.covisit = Some(Arc::new(Covisit { config, matrices }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::test_bundle;
    use crate::models::covisit::CovisitConfig;
    use crate::models::{Context, Filter, Recommender};

    /// The repository's test bundle with covisit added.
    fn with_covisit() -> Bundle {
        let mut bundle = test_bundle().clone();
        let config = CovisitConfig {
            neighbours: 7,
            ..CovisitConfig::default()
        };
        let (m, _) = Covisit::fit(&bundle.train, &config).unwrap();
        assert!(
            m.matrix(Matrix::Any).items.len() > 100,
            "the data has pairs"
        );
        bundle.covisit = Some(Arc::new(m));
        bundle.manifest.config.models.covisit = config;
        bundle.manifest.models = bundle.model_names();
        bundle
    }

    #[test]
    fn covisit_round_trips_and_answers_alike() {
        let bundle = with_covisit();
        let dir = tempfile::tempdir().unwrap();
        let saved = bundle.save(dir.path()).unwrap();
        let loaded = Bundle::load(&saved).unwrap();
        let (fitted, back) = (bundle.covisit.unwrap(), loaded.covisit.clone().unwrap());
        assert_eq!(fitted, back, "same matrices and settings");
        for u in 0..loaded.train.users.len() as u32 {
            let ctx = Context::known(&loaded.train, u);
            assert_eq!(
                fitted.recommend(&ctx, 10, &Filter::none()),
                back.recommend(&ctx, 10, &Filter::none())
            );
        }
        assert!(loaded.model("covisit").is_some());
    }

    #[test]
    fn covisit_files_that_do_not_fit_the_bundle_are_refused() {
        let bundle = with_covisit();
        let n_items = bundle.items.len() as u32;
        type Corrupt = Box<dyn Fn(&Path)>;
        let cases: [(&str, Corrupt); 3] = [
            (
                "refers to unknown items",
                Box::new(move |saved: &Path| {
                    let path = file(saved, Matrix::ViewCart, "items");
                    let (_, mut items) = npy::read::<u32>(&path).unwrap();
                    items[0] = n_items;
                    npy::write(&path, &[items.len()], &items).unwrap();
                }),
            ),
            (
                "bought_together offsets do not match",
                Box::new(|saved: &Path| {
                    let path = file(saved, Matrix::BoughtTogether, "offsets");
                    let (_, offsets) = npy::read::<u64>(&path).unwrap();
                    npy::write(&path, &[offsets.len() - 1], &offsets[1..]).unwrap();
                }),
            ),
            (
                "not positive numbers",
                Box::new(|saved: &Path| {
                    let path = file(saved, Matrix::Any, "weights");
                    let (_, mut weights) = npy::read::<f32>(&path).unwrap();
                    weights[0] = f32::NAN;
                    npy::write(&path, &[weights.len()], &weights).unwrap();
                }),
            ),
        ];
        for (needle, corrupt) in cases {
            let dir = tempfile::tempdir().unwrap();
            let saved = bundle.save(dir.path()).unwrap();
            corrupt(&saved);
            let err = format!("{:#}", Bundle::load(&saved).unwrap_err());
            assert!(
                err.contains("inconsistent") && err.contains(needle),
                "{needle}: {err}"
            );
        }
    }
}
