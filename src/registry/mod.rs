//! Every model recsys trains, one line each.
//!
//! A model is its own folder of code (`models/popular.rs`, `models/als/`,
//! `rank/two_stage.rs`, …) plus one file here that says how it is fitted on a
//! training period, which arrays it writes into a bundle and how it reads and
//! checks them back; [`MODELS`] lists those files. Training, [`Bundle::save`]
//! and [`Bundle::load`] walk the list and branch on no model's name, so adding
//! a model is its folder, its file here, one line in [`MODELS`] and its
//! `[models.NAME]` section in the config. The suite every model must pass
//! (`training::suite`) runs over every model this list trains.

mod als;
mod covisit;
mod history;
mod popular;
mod two_stage;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::bundle::{as_inconsistent, Bundle, MANIFEST};
use crate::config::Config;
use crate::data::{ItemFeatures, Split};
use crate::fsio::{create_dir_atomically, write_bytes_atomically};

/// What fitting records beyond the models themselves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FitOptions {
    /// Record the ALS objective after every iteration (`loss_curve` in the
    /// `als` facts, for experiment tracking). Off unless asked for (`train`
    /// asks when a tracking server is set): each value costs two Gram matrices
    /// and a pass over the interactions ([`fast_loss`](crate::models::als::fast_loss)),
    /// about a third of an iteration at full RetailRocket size; its time is
    /// reported apart (`loss_seconds`) and left out of the model's `seconds`.
    pub record_als_loss: bool,
}

/// What a model is fitted from: the run's settings and data.
pub struct FitInput<'a> {
    /// The whole configuration (each model reads its `[models.NAME]` section).
    pub config: &'a Config,
    /// The hold-out (two_stage builds its label windows from the training part).
    pub split: &'a Split,
    /// Item features, if configured.
    pub item_features: Option<&'a ItemFeatures>,
    /// What to record.
    pub options: FitOptions,
}

/// What a model's [`ModelSpec::prefit`] hands to its `fit`.
pub type Prefitted = Box<dyn std::any::Any + Send>;

/// One model's lifecycle.
pub struct ModelSpec {
    /// Its name in `[models] enabled`, manifests, reports and answers.
    pub name: &'static str,
    /// Work on the input alone, done before any model is fitted and handed to
    /// `fit`. two_stage builds its training rows there: on the way it refits
    /// every candidate model on each label window, as large in memory as the
    /// models fitted for the bundle, and done first the two are never
    /// resident together (at ten times RetailRocket, 4 GB less at the peak).
    pub prefit: Option<fn(&FitInput) -> Result<Prefitted>>,
    /// Fit it on `bundle.train` (the models listed before it are already in
    /// `bundle`) and put it there, given what its `prefit` made; returns the
    /// facts for the manifest.
    pub fit: fn(&FitInput, Option<Prefitted>, &mut Bundle) -> Result<serde_json::Value>,
    /// Write its arrays into the bundle directory being built.
    pub save: fn(&Bundle, &Path) -> Result<()>,
    /// Read them back into `bundle` (whose id maps and training events are
    /// loaded), checking them against the bundle.
    pub load: fn(&mut Bundle, &Path) -> Result<()>,
    /// Whether `bundle` holds this model.
    pub present: fn(&Bundle) -> bool,
}

/// Every model, in fitting order: a model may use those listed before it.
pub const MODELS: [ModelSpec; 5] = [
    popular::SPEC,
    history::SPEC,
    als::SPEC,
    covisit::SPEC,
    two_stage::SPEC,
];

/// The spec of the model called `name`.
pub fn spec(name: &str) -> Option<&'static ModelSpec> {
    MODELS.iter().find(|m| m.name == name)
}

/// Fit every model `config` enables on `bundle.train`, in registry order;
/// returns each one's facts by name.
pub fn fit_enabled(
    input: &FitInput,
    bundle: &mut Bundle,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let enabled: Vec<&ModelSpec> = MODELS
        .iter()
        .filter(|m| input.config.models.is_enabled(m.name))
        .collect();
    let mut prefitted = Vec::with_capacity(enabled.len());
    for model in &enabled {
        prefitted.push(model.prefit.map(|prefit| prefit(input)).transpose()?);
    }
    let mut facts = serde_json::Map::new();
    for (model, prefitted) in enabled.into_iter().zip(prefitted) {
        let found = (model.fit)(input, prefitted, bundle)?;
        facts.insert(model.name.to_string(), found);
    }
    Ok(facts)
}

/// The inconsistency error of bundle `dir` (see [`crate::bundle::inconsistent`]).
pub(crate) fn inconsistent(dir: &Path, what: impl std::fmt::Display) -> anyhow::Error {
    crate::bundle::inconsistent(dir, what)
}

impl Bundle {
    /// Write the bundle to `root/<run_id>/` atomically; returns that directory.
    pub fn save(&self, root: &Path) -> Result<PathBuf> {
        let dest = root.join(&self.manifest.run_id);
        create_dir_atomically(&dest, |dir| {
            self.save_shared(dir)?;
            for model in MODELS.iter().filter(|m| (m.present)(self)) {
                (model.save)(self, dir).with_context(|| format!("writing model {}", model.name))?;
            }
            let config =
                toml::to_string_pretty(&self.manifest.config).context("serialising config")?;
            write_bytes_atomically(&dir.join("config.toml"), config.as_bytes())?;
            // The manifest goes last: a directory with a manifest is complete.
            let manifest =
                serde_json::to_vec_pretty(&self.manifest).context("serialising manifest")?;
            write_bytes_atomically(&dir.join(MANIFEST), &manifest)
        })
        .with_context(|| format!("writing bundle {}", dest.display()))?;
        Ok(dest)
    }

    /// Read the bundle in directory `dir`: the shared parts, then each model
    /// its manifest names, in registry order.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let mut bundle = Bundle::load_shared(dir)?;
        let named = bundle.manifest.models.clone();
        if let Some(unknown) = named.iter().find(|n| spec(n).is_none()) {
            bail!(
                "bundle {} has a model `{unknown}` this recsys does not know; retrain it",
                dir.display()
            );
        }
        for model in MODELS.iter().filter(|m| named.iter().any(|n| n == m.name)) {
            // A file that cannot be read as the array it should be is as much
            // a sign of a damaged bundle as arrays that do not fit together.
            as_inconsistent(dir, || (model.load)(&mut bundle, dir))?;
        }
        Ok(bundle)
    }

    /// The names of the models the bundle holds, in registry order.
    pub fn model_names(&self) -> Vec<String> {
        MODELS
            .iter()
            .filter(|m| (m.present)(self))
            .map(|m| m.name.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_accepts_exactly_the_registered_models() {
        let names: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
        assert_eq!(names, crate::config::MODEL_NAMES);
        assert!(spec("two_stage").is_some() && spec("nope").is_none());
    }

    #[test]
    fn a_bundle_naming_an_unknown_model_is_refused() {
        let bundle = crate::bundle::test_bundle();
        let dir = tempfile::tempdir().unwrap();
        let saved = bundle.save(dir.path()).unwrap();
        let path = saved.join(MANIFEST);
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        manifest["models"] = serde_json::json!(["popular", "magic"]);
        std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
        let err = format!("{:#}", Bundle::load(&saved).unwrap_err());
        assert!(err.contains("model `magic`"), "{err}");
    }
}
