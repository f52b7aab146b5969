//! `config.toml`: every setting of a run in one validated value.
//!
//! Paths in the file are relative to the file's own directory, so a config works
//! from wherever `recsys` is started. Unknown keys are errors: a typo should not
//! silently fall back to a default.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::{BadRows, Cutoff, EventWeights, Protocol};
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
    /// Or the raw RetailRocket properties files (`timestamp,itemid,property,value`):
    /// category and availability as they changed over time.
    pub item_properties: Vec<PathBuf>,
    /// With `item_properties`: the category tree (`categoryid,parentid`).
    pub category_tree: Option<PathBuf>,
    /// What to do with unusable rows: `error` (default) or `skip`.
    pub bad_rows: BadRows,
}

impl DataConfig {
    /// The item files fit together: one kind of item description at most.
    pub fn validate(&self) -> Result<()> {
        if self.item_features.is_some() && !self.item_properties.is_empty() {
            bail!(
                "[data] sets both `item_features` and `item_properties`; keep one \
                 (item_properties for the raw RetailRocket files, item_features for one row per item)"
            );
        }
        if self.category_tree.is_some() && self.item_properties.is_empty() {
            bail!(
                "[data] `category_tree` needs `item_properties` (the files that give items their categories)"
            );
        }
        Ok(())
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            events: PathBuf::from("data/events.csv"),
            item_features: None,
            item_properties: Vec::new(),
            category_tree: None,
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

/// The longest list any command or the service gives (`[eval] k`,
/// `[serve] max_k`, every `--k`): past it, per-list buffers stop being small.
pub const MAX_LIST_LENGTH: u64 = 10_000;

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
        for path in &mut config.data.item_properties {
            *path = base.join(&*path);
        }
        config.data.category_tree = config.data.category_tree.map(|p| base.join(p));
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

    /// Reject settings that cannot work, naming the key: every numeric setting
    /// is checked against its range ([`Config::check_ranges`]) before any
    /// data is read, so a hostile value is a one-line error, not a 5 TB
    /// allocation or a model silently trained on nonsense.
    pub fn validate(&self) -> Result<()> {
        self.data.validate()?;
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
        // The sections with checks of their own come first, so their lower
        // bounds keep their own messages; the table adds what they lack.
        self.serve.validate()?;
        self.tune.validate()?;
        self.models.covisit.validate()?;
        self.models
            .two_stage
            .reranker
            .validate()
            .context("[models.two_stage.reranker]")?;
        self.check_ranges()?;
        if let Some(model) = &self.serve.model {
            if !self.models.is_enabled(model) {
                bail!("[serve] model `{model}` is not in [models] enabled; enable it or remove the key");
            }
        }
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
        let c = &ts.candidates;
        if c.als + c.similar + c.history + c.popular + c.category_popular == 0 {
            bail!(
                "[models.two_stage.candidates] every source is set to 0; give at least one a size"
            );
        }
        if c.similar > 0 && c.similar_seeds == 0 {
            bail!(
                "[models.two_stage.candidates] similar = {} but similar_seeds = 0: nothing seeds it; set similar_seeds to at least 1 or similar = 0",
                c.similar
            );
        }
        if ts.graded_labels && ts.reranker.objective == Objective::Binary {
            bail!(
                "[models.two_stage] graded_labels needs the lambdarank objective (binary labels are 0 or 1); set graded_labels = false"
            );
        }
        Ok(())
    }

    /// Check every numeric setting without a check of its own against its range.
    ///
    /// Checked elsewhere, and not repeated here: what `ServeConfig::validate`
    /// checks (`[serve]`'s lower bounds, `[serve.feedback]
    /// attribution_minutes`, the `[serve.experiment]` shares), `[tune]`
    /// (`TuneConfig::validate`, which also sees the command line's overrides),
    /// `[models.covisit]` (`CovisitConfig::validate`) and
    /// `[models.two_stage.reranker]` (`GbdtConfig::validate`). Seeds take any
    /// `u64` and `[serve] port` any `u16` (0: a free port), so they are not
    /// listed.
    fn check_ranges(&self) -> Result<()> {
        let m = &self.models;
        let ts = &m.two_stage;
        let c = &ts.candidates;
        let serve = &self.serve;
        let mut r = Ranges::default();
        r.section("split")
            .optional("test_days", self.split.test_days, 1..=DAYS);
        r.section("models.popular")
            .count("window_days", m.popular.window_days, 1..=DAYS);
        r.section("models.history")
            .number(
                "half_life_days",
                m.history.half_life_days,
                Interval::above(0.0, DAYS as f64),
            )
            .count("max_items", m.history.max_items, 1..=100_000)
            .weights(&m.history.weights);
        r.section("models.als")
            .count("factors", m.als.factors, 1..=1024)
            .count("iterations", m.als.iterations, 1..=1000)
            .number(
                "regularization",
                m.als.regularization,
                Interval::closed(0.0, 1e4),
            )
            .number("alpha", m.als.alpha, Interval::closed(0.0, 1e4))
            .count("cg_steps", m.als.cg_steps, 1..=100)
            .weights(&m.als.weights);
        r.section("models.two_stage")
            .count("label_days", ts.label_days, 1..=365)
            .count("label_windows", ts.label_windows, 1..=52)
            .count("enough_groups", ts.enough_groups, 0..=100_000_000)
            .count("max_negatives", ts.max_negatives, 0..=100_000)
            .number(
                "valid_fraction",
                ts.valid_fraction,
                Interval::below(0.0, 1.0),
            );
        r.section("models.two_stage.candidates")
            .count("als", c.als, 0..=CANDIDATES)
            .count("similar", c.similar, 0..=CANDIDATES)
            .count("history", c.history, 0..=CANDIDATES)
            .count("popular", c.popular, 0..=CANDIDATES)
            .count("category_popular", c.category_popular, 0..=CANDIDATES)
            .count("recent_items", c.recent_items, 1..=1000)
            .count("similar_seeds", c.similar_seeds, 0..=100);
        r.section("eval")
            .count("k", self.eval.k, 1..=MAX_LIST_LENGTH);
        r.section("rules")
            .count("max_exclude", self.rules.max_exclude, 0..=100_000);
        r.section("serve")
            .count("max_k", serve.max_k, 1..=MAX_LIST_LENGTH)
            .count("events_per_user", serve.events_per_user, 1..=10_000)
            .count("max_users", serve.max_users, 1..=100_000_000)
            .count(
                "redis_ttl_seconds",
                serve.redis_ttl_seconds,
                1..=YEAR_SECONDS,
            )
            .count("redis_timeout_ms", serve.redis_timeout_ms, 1..=60_000)
            .count("max_body_bytes", serve.max_body_bytes, 1..=64 * MIB);
        r.section("serve.feedback").count(
            "items_per_user",
            serve.feedback.items_per_user,
            0..=10_000,
        );
        // S3's own limits: parts of 5 MiB to 5 GiB, objects up to 5 TiB.
        let s3 = &self.s3;
        r.section("s3")
            .optional(
                "multipart_threshold_mb",
                s3.multipart_threshold_mb,
                1..=5 * MIB,
            )
            .optional("part_size_mb", s3.part_size_mb, 5..=5120)
            .optional("concurrency", s3.concurrency, 1..=64)
            .optional("connect_timeout_secs", s3.connect_timeout_secs, 1..=3600)
            .optional("max_attempts", s3.max_attempts, 1..=100);
        r.section("postgres")
            .optional("port", self.postgres.port, 1..=65_535)
            .optional(
                "connect_timeout_secs",
                self.postgres.connect_timeout_secs,
                1..=3600,
            );
        r.section("tracking")
            .count("timeout_seconds", self.tracking.timeout_seconds, 1..=3600);
        r.finish()
    }
}

/// Ten years, in days: the longest window, half-life or hold-out accepted.
const DAYS: u64 = 3650;

/// A year and a day, in seconds.
const YEAR_SECONDS: u64 = 366 * 24 * 3600;

/// 2^20: bytes in a MiB, MiB in a TiB.
const MIB: u64 = 1 << 20;

/// Most candidates one source may propose per shopper.
const CANDIDATES: u64 = 10_000;

/// Numeric settings checked against their ranges, a section at a time; the
/// first value out of range is the error, naming its section and key.
#[derive(Debug, Default)]
struct Ranges {
    /// The section being checked, without brackets: `models.als`.
    section: &'static str,
    /// The first value out of range.
    error: Option<String>,
}

impl Ranges {
    /// The following keys are in `[name]`.
    fn section(&mut self, name: &'static str) -> &mut Ranges {
        self.section = name;
        self
    }

    /// Note the first failure: `key` = `shown` is not `expected`.
    fn fail(&mut self, key: &str, shown: impl std::fmt::Display, expected: String) {
        if self.error.is_none() {
            self.error = Some(format!(
                "[{}] {key} = {shown} is out of range: must be {expected}",
                self.section
            ));
        }
    }

    /// A whole number in `range`.
    fn count<T>(&mut self, key: &str, value: T, range: RangeInclusive<u64>) -> &mut Ranges
    where
        T: TryInto<u64> + std::fmt::Display + Copy,
    {
        // A value too large for u64 is out of every range here.
        if !value.try_into().is_ok_and(|v| range.contains(&v)) {
            let expected = format!("in {}..={}", range.start(), range.end());
            self.fail(key, value, expected);
        }
        self
    }

    /// A whole number in `range`, if set (unset keys fall back to defaults in range).
    fn optional<T>(
        &mut self,
        key: &str,
        value: Option<T>,
        range: RangeInclusive<u64>,
    ) -> &mut Ranges
    where
        T: TryInto<u64> + std::fmt::Display + Copy,
    {
        match value {
            Some(value) => self.count(key, value, range),
            None => self,
        }
    }

    /// A finite number in `interval`: NaN and the infinities never are.
    fn number<T>(&mut self, key: &str, value: T, interval: Interval) -> &mut Ranges
    where
        T: Into<f64> + std::fmt::Display + Copy,
    {
        if !interval.contains(value.into()) {
            self.fail(key, value, format!("a finite number in {interval}"));
        }
        self
    }

    /// Event weights: each finite and in [0, 10000], and not all 0 (nothing
    /// would count).
    fn weights(&mut self, weights: &EventWeights) -> &mut Ranges {
        let each = [
            ("weights.view", weights.view),
            ("weights.addtocart", weights.addtocart),
            ("weights.transaction", weights.transaction),
        ];
        for (key, value) in each {
            self.number(key, value, Interval::closed(0.0, 1e4));
        }
        if each.iter().all(|&(_, w)| w == 0.0) && self.error.is_none() {
            self.error = Some(format!(
                "[{}] weights are all 0: give at least one event kind a weight above 0",
                self.section
            ));
        }
        self
    }

    /// The first value out of range, if any.
    fn finish(&mut self) -> Result<()> {
        match self.error.take() {
            Some(message) => bail!("{message}"),
            None => Ok(()),
        }
    }
}

/// An interval of finite numbers, each end included or not.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Interval {
    min: f64,
    min_included: bool,
    max: f64,
    max_included: bool,
}

impl Interval {
    /// `[min, max]`.
    const fn closed(min: f64, max: f64) -> Interval {
        Interval {
            min,
            min_included: true,
            max,
            max_included: true,
        }
    }

    /// `(min, max]`: above `min`.
    const fn above(min: f64, max: f64) -> Interval {
        Interval {
            min_included: false,
            ..Interval::closed(min, max)
        }
    }

    /// `[min, max)`: below `max`.
    const fn below(min: f64, max: f64) -> Interval {
        Interval {
            max_included: false,
            ..Interval::closed(min, max)
        }
    }

    /// Whether `v` lies in it; false for NaN, since every comparison with NaN is.
    fn contains(&self, v: f64) -> bool {
        let above_min = if self.min_included {
            v >= self.min
        } else {
            v > self.min
        };
        let below_max = if self.max_included {
            v <= self.max
        } else {
            v < self.max
        };
        above_min && below_max
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = if self.min_included { '[' } else { '(' };
        let close = if self.max_included { ']' } else { ')' };
        write!(f, "{open}{}, {}{close}", self.min, self.max)
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

    /// Hostile values, each with the section and key its error must name. The
    /// data file named by the config does not exist: each is refused before
    /// any data is read.
    const HOSTILE: &[(&str, &str, &str)] = &[
        ("models.als", "factors", "factors = 4294967296"),
        ("models.als", "factors", "factors = 0"),
        ("models.als", "iterations", "iterations = 0"),
        ("models.als", "cg_steps", "cg_steps = 0"),
        ("models.als", "alpha", "alpha = inf"),
        ("models.als", "regularization", "regularization = nan"),
        ("models.als", "regularization", "regularization = -0.5"),
        (
            "models.als",
            "weights.view",
            "weights = { view = -1.0, addtocart = 5.0, transaction = 10.0 }",
        ),
        (
            "models.als",
            "weights.transaction",
            "weights = { view = 1.0, addtocart = 5.0, transaction = nan }",
        ),
        ("models.history", "half_life_days", "half_life_days = nan"),
        ("models.history", "half_life_days", "half_life_days = inf"),
        ("models.history", "half_life_days", "half_life_days = 0.0"),
        ("models.history", "half_life_days", "half_life_days = -7.0"),
        ("models.history", "max_items", "max_items = 0"),
        (
            "models.history",
            "weights",
            "weights = { view = 0.0, addtocart = 0.0, transaction = 0.0 }",
        ),
        (
            "models.history",
            "weights.addtocart",
            "weights = { view = 1.0, addtocart = -inf, transaction = 1.0 }",
        ),
        ("models.popular", "window_days", "window_days = 0"),
        ("models.popular", "window_days", "window_days = 4000000000"),
        ("models.covisit", "neighbours", "neighbours = 1000000000"),
        ("models.covisit", "window_hours", "window_hours = inf"),
        (
            "models.covisit",
            "recent_items",
            "recent_items = 1000000000000",
        ),
        ("models.two_stage", "label_windows", "label_windows = 0"),
        (
            "models.two_stage",
            "label_windows",
            "label_windows = 1000000",
        ),
        ("models.two_stage", "label_days", "label_days = 0"),
        ("models.two_stage", "label_days", "label_days = 100000"),
        ("models.two_stage", "valid_fraction", "valid_fraction = nan"),
        ("models.two_stage", "valid_fraction", "valid_fraction = 1.0"),
        (
            "models.two_stage",
            "max_negatives",
            "max_negatives = 1000000000000",
        ),
        ("models.two_stage.candidates", "als", "als = 1000000000"),
        (
            "models.two_stage.candidates",
            "recent_items",
            "recent_items = 0",
        ),
        (
            "models.two_stage.candidates",
            "similar_seeds",
            "similar_seeds = 0",
        ),
        ("models.two_stage.reranker", "num_trees", "num_trees = 0"),
        (
            "models.two_stage.reranker",
            "num_trees",
            "num_trees = 1000000000",
        ),
        (
            "models.two_stage.reranker",
            "learning_rate",
            "learning_rate = nan",
        ),
        (
            "models.two_stage.reranker",
            "min_data_in_leaf",
            "min_data_in_leaf = 0",
        ),
        ("models.two_stage.reranker", "lambda_l2", "lambda_l2 = inf"),
        ("split", "test_days", "test_days = 100000"),
        ("eval", "k", "k = 0"),
        ("eval", "k", "k = 4294967296"),
        ("rules", "max_exclude", "max_exclude = 1000000000"),
        ("serve", "max_k", "max_k = 1000000000"),
        ("serve", "max_k", "max_k = 0"),
        ("serve", "events_per_user", "events_per_user = 1000000000"),
        ("serve", "redis_timeout_ms", "redis_timeout_ms = 0"),
        ("serve", "redis_ttl_seconds", "redis_ttl_seconds = 0"),
        ("serve", "max_body_bytes", "max_body_bytes = 1099511627776"),
        (
            "serve.feedback",
            "items_per_user",
            "items_per_user = 1000000000",
        ),
        ("tune", "trials", "trials = 1000000000000"),
        ("tune", "valid_days", "valid_days = 0"),
        ("tune", "budget_minutes", "budget_minutes = nan"),
        ("s3", "part_size_mb", "part_size_mb = 1"),
        (
            "s3",
            "multipart_threshold_mb",
            "multipart_threshold_mb = 17592186044416",
        ),
        ("s3", "concurrency", "concurrency = 0"),
        ("s3", "max_attempts", "max_attempts = 0"),
        ("postgres", "port", "port = 0"),
        (
            "postgres",
            "connect_timeout_secs",
            "connect_timeout_secs = 0",
        ),
        ("tracking", "timeout_seconds", "timeout_seconds = 0"),
    ];

    #[test]
    fn hostile_numeric_values_are_refused_naming_section_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        for (section, key, line) in HOSTILE {
            std::fs::write(&path, format!("[{section}]\n{line}\n")).unwrap();
            let err = match Config::load(&path) {
                Ok(_) => panic!("[{section}] {line} was accepted"),
                Err(e) => format!("{e:#}"),
            };
            assert!(
                err.contains(&format!("[{section}]")) && err.contains(key),
                "[{section}] {line}: the error names no `[{section}] {key}`: {err}"
            );
        }
    }

    #[test]
    fn an_out_of_range_value_says_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let cases = [
            (
                "[models.als]\nfactors = 4294967296\n",
                "[models.als] factors = 4294967296 is out of range: must be in 1..=1024",
            ),
            (
                "[models.history]\nhalf_life_days = nan\n",
                "[models.history] half_life_days = NaN is out of range: must be a finite number in (0, 3650]",
            ),
            (
                "[models.two_stage]\nvalid_fraction = 1.0\n",
                "[models.two_stage] valid_fraction = 1 is out of range: must be a finite number in [0, 1)",
            ),
        ];
        for (text, message) in cases {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", Config::load(&path).unwrap_err());
            assert!(err.ends_with(message), "{text}: {err}");
        }
    }

    #[test]
    fn the_ends_of_each_range_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let text = "[models.als]\nfactors = 1024\niterations = 1\nregularization = 0.0\nalpha = 0.0\n\
                    weights = { view = 0.0, addtocart = 10000.0, transaction = 0.0 }\n\
                    [models.history]\nhalf_life_days = 0.001\nmax_items = 100000\n\
                    [models.popular]\nwindow_days = 3650\n\
                    [models.two_stage]\nlabel_days = 365\nlabel_windows = 52\nmax_negatives = 0\nvalid_fraction = 0.0\n\
                    [models.two_stage.candidates]\nsimilar = 0\nsimilar_seeds = 0\n\
                    [eval]\nk = 10000\n[serve]\nport = 0\nmax_k = 10000\n\
                    [serve.feedback]\nattribution_minutes = 0\nitems_per_user = 0\n\
                    [s3]\npart_size_mb = 5120\n[postgres]\nport = 65535\n";
        std::fs::write(&path, text).unwrap();
        Config::load(&path).unwrap();
        assert!(Config::default().validate().is_ok());
    }

    /// Every `*.toml` config the repository ships (Cargo's own manifests
    /// aside): the ranges must not refuse a file users were given.
    #[test]
    fn every_config_file_shipped_in_the_repo_loads() {
        fn tomls(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    tomls(&path, out);
                } else if path.extension().is_some_and(|e| e == "toml")
                    && path.file_name().is_some_and(|n| n != "Cargo.toml")
                {
                    out.push(path);
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![root.join("config.toml")];
        for dir in [
            "tests",
            "bench",
            "benches",
            "deploy",
            "examples",
            "pipelines",
        ] {
            tomls(&root.join(dir), &mut files);
        }
        for file in &files {
            if let Err(e) = Config::load(file) {
                panic!("{} no longer loads: {e:#}", file.display());
            }
        }
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
