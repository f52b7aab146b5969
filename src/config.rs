//! `config.toml`: every setting of a run in one validated value.
//!
//! Paths in the file are relative to the file's own directory, so a config works
//! from wherever `recsys` is started. Unknown keys are errors: a typo should not
//! silently fall back to a default.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::{BadRows, Cutoff, Protocol};
use crate::models::{AlsConfig, CovisitConfig, HistoryConfig, PopularConfig, RulesConfig};
use crate::rank::gbdt::Objective;
use crate::rank::TwoStageConfig;

/// A whole run's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Input files.
    pub data: DataConfig,
    /// The hold-out.
    pub split: SplitConfig,
    /// Model settings.
    pub models: ModelsConfig,
    /// Evaluation settings.
    pub eval: EvalConfig,
    /// Where bundles go.
    pub artifacts: ArtifactsConfig,
    /// `[rules]`: business rules every model's answer obeys.
    pub rules: RulesConfig,
    /// `[serve]`: the HTTP service.
    pub serve: crate::serve::ServeConfig,
    /// `[s3]`: object storage.
    pub s3: crate::storage::s3::S3Config,
    /// `[postgres]`: the database.
    pub postgres: crate::storage::pg::PgConfig,
    /// `[tracking]`: MLflow experiment tracking.
    pub tracking: crate::tracking::TrackingConfig,
    /// `[tune]`: the settings search of `recsys tune`.
    pub tune: crate::training::tune::TuneConfig,
}

/// `[data]`: the input files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Event file, CSV or Parquet.
    pub events: PathBuf,
    /// Optional item-features file.
    pub item_features: Option<PathBuf>,
    /// What to do with unusable rows: `error` (default) or `skip`.
    pub bad_rows: BadRows,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            events: PathBuf::from("data/events.csv"),
            item_features: None,
            bad_rows: BadRows::Error,
        }
    }
}

/// `[split]`: where the test window starts and what counts as relevant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SplitConfig {
    /// Test window starts at this `YYYY-MM-DD` (UTC).
    pub cutoff: Option<String>,
    /// Or: the test window is the last N days.
    pub test_days: Option<u32>,
    /// `strict` (default) or `reference`.
    pub protocol: Protocol,
}

impl SplitConfig {
    /// The cutoff rule, preferring an explicit date.
    pub fn cutoff_rule(&self) -> Result<Cutoff> {
        match (&self.cutoff, self.test_days) {
            (Some(_), Some(_)) => {
                bail!("[split] sets both `cutoff` and `test_days`; keep one")
            }
            (Some(date), None) => Ok(Cutoff::Date(date.clone())),
            (None, Some(0)) => bail!("[split] `test_days` must be at least 1"),
            (None, Some(days)) => Ok(Cutoff::LastDays(days)),
            (None, None) => Ok(Cutoff::LastDays(14)),
        }
    }
}

/// `[models]`: which models to train and their settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Models to train, by name (`popular`, `history`, `als`, `covisit`,
    /// `two_stage`); [`DEFAULT_MODELS`] when unset.
    pub enabled: Vec<String>,
    /// `[models.popular]`.
    pub popular: PopularConfig,
    /// `[models.history]`.
    pub history: HistoryConfig,
    /// `[models.als]`.
    pub als: AlsConfig,
    /// `[models.covisit]`.
    pub covisit: CovisitConfig,
    /// `[models.two_stage]`.
    pub two_stage: TwoStageConfig,
}

/// Names of the models recsys can train, in registry order.
pub const MODEL_NAMES: [&str; 5] = ["popular", "history", "als", "covisit", "two_stage"];

/// The models trained when `[models] enabled` is not set: all but `covisit`,
/// which is trained only when listed.
pub const DEFAULT_MODELS: [&str; 4] = ["popular", "history", "als", "two_stage"];

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            enabled: DEFAULT_MODELS.iter().map(|s| s.to_string()).collect(),
            popular: PopularConfig::default(),
            history: HistoryConfig::default(),
            als: AlsConfig::default(),
            covisit: CovisitConfig::default(),
            two_stage: TwoStageConfig::default(),
        }
    }
}

impl ModelsConfig {
    /// Whether model `name` is to be trained.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.enabled.iter().any(|n| n == name)
    }
}

/// `[eval]`: evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Length of the evaluated lists.
    pub k: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig { k: 10 }
    }
}

/// `[artifacts]`: where model bundles are written and found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArtifactsConfig {
    /// Directory of bundles, one sub-directory per training run.
    pub dir: PathBuf,
}

impl Default for ArtifactsConfig {
    fn default() -> Self {
        ArtifactsConfig {
            dir: PathBuf::from("artifacts"),
        }
    }
}

impl Config {
    /// Read and validate `path`; relative paths inside become relative to its directory.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let parsed: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        reject_retired_keys(&parsed)
            .with_context(|| format!("checking config {}", path.display()))?;
        let mut config: Config =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        config.data.events = base.join(&config.data.events);
        config.data.item_features = config.data.item_features.map(|p| base.join(p));
        config.artifacts.dir = base.join(&config.artifacts.dir);
        if let Some(experiment) = &mut config.serve.experiment {
            // A variant names a bundle path (relative to the config) or a run id
            // in the artifacts directory.
            for variant in &mut experiment.variants {
                let path = base.join(&variant.bundle);
                let run = config.artifacts.dir.join(&variant.bundle);
                variant.bundle = if !path.exists() && run.exists() {
                    run
                } else {
                    path
                };
            }
        }
        config
            .validate()
            .with_context(|| format!("checking config {}", path.display()))?;
        Ok(config)
    }

    /// Reject settings that cannot work, naming the key.
    pub fn validate(&self) -> Result<()> {
        self.split.cutoff_rule()?;
        for name in &self.models.enabled {
            if !MODEL_NAMES.contains(&name.as_str()) {
                bail!(
                    "[models] enabled lists unknown model `{name}` (known: {})",
                    MODEL_NAMES.join(", ")
                );
            }
        }
        if self.models.enabled.is_empty() {
            bail!(
                "[models] enabled is empty; enable at least one of {}",
                MODEL_NAMES.join(", ")
            );
        }
        self.serve.validate()?;
        self.tune.validate()?;
        if let Some(model) = &self.serve.model {
            if !self.models.is_enabled(model) {
                bail!("[serve] model `{model}` is not in [models] enabled; enable it or remove the key");
            }
        }
        if self.eval.k == 0 {
            bail!("[eval] k must be at least 1");
        }
        if self.models.history.half_life_days <= 0.0 {
            bail!("[models.history] half_life_days must be positive");
        }
        self.models.covisit.validate()?;
        if self.models.is_enabled("two_stage") {
            for needed in ["popular", "history", "als"] {
                if !self.models.is_enabled(needed) {
                    bail!(
                        "[models] enabled has `two_stage` but not `{needed}`, one of its candidate sources; add it"
                    );
                }
            }
        }
        let ts = &self.models.two_stage;
        if ts.label_days == 0 {
            bail!("[models.two_stage] label_days must be at least 1");
        }
        let c = &ts.candidates;
        if c.als + c.similar + c.history + c.popular + c.category_popular == 0 {
            bail!(
                "[models.two_stage.candidates] every source is set to 0; give at least one a size"
            );
        }
        if ts.graded_labels && ts.reranker.objective == Objective::Binary {
            bail!(
                "[models.two_stage] graded_labels needs the lambdarank objective (binary labels are 0 or 1); set graded_labels = false"
            );
        }
        if !(0.0..1.0).contains(&ts.valid_fraction) {
            bail!("[models.two_stage] valid_fraction must be in [0, 1)");
        }
        ts.reranker
            .validate()
            .context("[models.two_stage.reranker]")?;
        Ok(())
    }
}

/// Settings earlier versions had, with what replaced them: a config that still
/// has one is refused with the replacement named, not silently half-used.
const RETIRED: [(&str, Option<&str>, &str); 3] = [
    (
        "offline",
        None,
        "[offline] is gone: the service scores every shopper live, so no lists are precomputed; \
         remove the section (to choose the served model, set `model` in [serve])",
    ),
    (
        "models",
        Some("exclude_seen"),
        "[models] exclude_seen moved to [rules] exclude_seen (with exclude_carted and exclude_bought)",
    ),
    (
        "serve",
        Some("online_seeds"),
        "[serve] online_seeds is gone: the served model reads the shopper's new events itself; remove it",
    ),
];

fn reject_retired_keys(parsed: &toml::Table) -> Result<()> {
    for (section, key, message) in RETIRED {
        let Some(value) = parsed.get(section) else {
            continue;
        };
        let present = match key {
            None => true,
            Some(key) => value.as_table().is_some_and(|t| t.contains_key(key)),
        };
        if present {
            bail!("{message}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_config_file_and_typos_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[data]\nevents = \"e.csv\"\n[split]\ncutoff = \"2015-09-01\"\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.data.events, dir.path().join("e.csv"));
        assert_eq!(c.artifacts.dir, dir.path().join("artifacts"));

        std::fs::write(&path, "[models.als]\nfactorz = 3\n").unwrap();
        let err = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(err.contains("factorz"), "{err}");

        std::fs::write(&path, "[split]\ncutoff = \"2015-09-01\"\ntest_days = 3\n").unwrap();
        assert!(Config::load(&path).is_err());

        // Retired sections name their replacement.
        std::fs::write(&path, "[offline]\ntop = 30\nactive_days = 7\n").unwrap();
        let err = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(
            err.contains("[offline] is gone") && err.contains("[serve]"),
            "{err}"
        );
        std::fs::write(&path, "[models]\nexclude_seen = true\n").unwrap();
        let err = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(err.contains("[rules] exclude_seen"), "{err}");
    }

    #[test]
    fn two_stage_settings_that_cannot_work_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let cases = [
            (
                "[models]\nenabled = [\"popular\", \"history\", \"two_stage\"]\n",
                "not `als`",
            ),
            (
                "[models.two_stage.reranker]\nobjective = { type = \"binary\" }\n",
                "graded_labels needs the lambdarank objective",
            ),
            ("[models.two_stage]\nlabel_days = 0\n", "label_days"),
            (
                "[models.two_stage.reranker]\nnum_leaves = 1\n",
                "[models.two_stage.reranker]",
            ),
        ];
        for (text, needle) in cases {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", Config::load(&path).unwrap_err());
            assert!(err.contains(needle), "{text}: {err}");
        }
        std::fs::write(
            &path,
            "[models.two_stage]\ngraded_labels = false\n[models.two_stage.reranker]\nobjective = { type = \"binary\" }\n",
        )
        .unwrap();
        assert!(Config::load(&path).is_ok());
    }
}
