//! `recsys tune`: settings chosen for each shop on a validation window cut
//! from its own training period.
//!
//! Defaults fitted to one extract do not carry to another shop: a browsing
//! shop rewards recency (a short history half-life), a grocery shop that
//! shoppers re-buy from rewards frequency (a long one); ALS's confidence
//! scaling and regularisation depend on how dense the shop's data is. The
//! tuner therefore splits the *training* period once more in time — the last
//! `[tune] valid_days` before the cutoff become a validation window, the rest
//! trains — and searches the settings by seeded random search, each trial
//! fitting every enabled model on the shortened period and scoring the
//! objective model's recall@k on the validation window exactly as `evaluate`
//! would. The test window after the cutoff is never read.
//!
//! Trial 0 is the configuration as given, so the best trial is never worse on
//! validation than the defaults. Random search rather than a model-based
//! search: with tens of trials over a handful of settings it is as good
//! (Bergstra & Bengio, JMLR 2012), needs no tuning itself, and every trial is
//! independent and reproducible from the seed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use super::{fit, prepare};
use crate::config::Config;
use crate::data::time::{format_date, DAY_MS};
use crate::data::{ground_truth, Cutoff, Protocol};
use crate::engine::{pick_model, Engine, EngineSettings};
use crate::eval::evaluate;
use crate::rng::Rng;

/// `[tune]` of config.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TuneConfig {
    /// Days before the cutoff that validate (the rest of the training period trains).
    pub valid_days: u32,
    /// Trials, the configuration as given included.
    pub trials: usize,
    /// Seed of the search.
    pub seed: u64,
    /// Stop starting trials after this many minutes (none: run them all).
    pub budget_minutes: Option<f64>,
    /// The model whose recall@k is maximised (default: the served model —
    /// `[serve] model`, else two_stage, else als).
    pub model: Option<String>,
}

impl Default for TuneConfig {
    fn default() -> Self {
        TuneConfig {
            valid_days: 14,
            trials: 20,
            seed: 7,
            budget_minutes: None,
            model: None,
        }
    }
}

impl TuneConfig {
    /// Reject settings that cannot work, naming the key.
    pub fn validate(&self) -> Result<()> {
        // Also reached with the command line's overrides applied. The upper
        // bounds: ten years of validation, and trials (allocated up front) a
        // search could plausibly run.
        if !(1..=3650).contains(&self.valid_days) {
            bail!(
                "[tune] valid_days = {} is out of range: must be in 1..=3650",
                self.valid_days
            );
        }
        if !(1..=10_000).contains(&self.trials) {
            bail!(
                "[tune] trials = {} is out of range: must be in 1..=10000",
                self.trials
            );
        }
        if let Some(b) = self.budget_minutes {
            if !(b.is_finite() && b > 0.0) {
                bail!("[tune] budget_minutes must be a positive number of minutes");
            }
        }
        Ok(())
    }
}

/// How a setting is drawn.
#[derive(Debug, Clone, Copy)]
enum Space {
    /// One of these values.
    Choice(&'static [f64]),
    /// Log-uniform between the bounds.
    LogUniform(f64, f64),
    /// Uniform between the bounds.
    Uniform(f64, f64),
}

impl Space {
    fn draw(self, rng: &mut Rng) -> f64 {
        match self {
            Space::Choice(values) => values[rng.below(values.len() as u64) as usize],
            Space::LogUniform(lo, hi) => (lo.ln() + rng.next_f64() * (hi.ln() - lo.ln())).exp(),
            Space::Uniform(lo, hi) => lo + rng.next_f64() * (hi - lo),
        }
    }
}

/// One searched setting: its dotted config key, the model it belongs to, how
/// it is drawn, and how it is set.
struct Param {
    key: &'static str,
    model: &'static str,
    space: Space,
    get: fn(&Config) -> f64,
    set: fn(&mut Config, f64),
}

/// The search space, per model; only the enabled models' settings are searched.
const PARAMS: &[Param] = &[
    Param {
        key: "models.history.half_life_days",
        model: "history",
        space: Space::LogUniform(0.5, 365.0),
        get: |c| f64::from(c.models.history.half_life_days),
        set: |c, v| c.models.history.half_life_days = v as f32,
    },
    Param {
        key: "models.history.weights.addtocart",
        model: "history",
        space: Space::Uniform(1.0, 10.0),
        get: |c| f64::from(c.models.history.weights.addtocart),
        set: |c, v| c.models.history.weights.addtocart = v as f32,
    },
    Param {
        key: "models.als.factors",
        model: "als",
        space: Space::Choice(&[4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
        get: |c| c.models.als.factors as f64,
        set: |c, v| c.models.als.factors = v as usize,
    },
    Param {
        key: "models.als.alpha",
        model: "als",
        space: Space::LogUniform(0.1, 50.0),
        get: |c| f64::from(c.models.als.alpha),
        set: |c, v| c.models.als.alpha = v as f32,
    },
    Param {
        key: "models.als.regularization",
        model: "als",
        space: Space::LogUniform(0.001, 1.0),
        get: |c| f64::from(c.models.als.regularization),
        set: |c, v| c.models.als.regularization = v as f32,
    },
    Param {
        key: "models.als.weights.addtocart",
        model: "als",
        space: Space::Uniform(1.0, 20.0),
        get: |c| f64::from(c.models.als.weights.addtocart),
        set: |c, v| c.models.als.weights.addtocart = v as f32,
    },
    Param {
        key: "models.als.weights.transaction",
        model: "als",
        space: Space::Uniform(1.0, 30.0),
        get: |c| f64::from(c.models.als.weights.transaction),
        set: |c, v| c.models.als.weights.transaction = v as f32,
    },
    Param {
        key: "models.two_stage.reranker.num_leaves",
        model: "two_stage",
        space: Space::Choice(&[7.0, 15.0, 31.0]),
        get: |c| c.models.two_stage.reranker.num_leaves as f64,
        set: |c, v| c.models.two_stage.reranker.num_leaves = v as usize,
    },
    Param {
        key: "models.two_stage.reranker.learning_rate",
        model: "two_stage",
        space: Space::LogUniform(0.02, 0.2),
        get: |c| c.models.two_stage.reranker.learning_rate,
        set: |c, v| c.models.two_stage.reranker.learning_rate = v,
    },
    Param {
        key: "models.two_stage.reranker.min_data_in_leaf",
        model: "two_stage",
        space: Space::Choice(&[5.0, 10.0, 20.0, 50.0]),
        get: |c| c.models.two_stage.reranker.min_data_in_leaf as f64,
        set: |c, v| c.models.two_stage.reranker.min_data_in_leaf = v as usize,
    },
];

/// What `tune` searches and how.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    /// `[tune]`, flags applied.
    pub tune: TuneConfig,
    /// Only these settings (dotted keys); all of the enabled models' when empty.
    pub only: Vec<String>,
    /// Recall at this k is the objective.
    pub k: usize,
    /// The protocol the validation labels follow.
    pub protocol: Protocol,
}

/// One trial.
#[derive(Debug, Clone)]
pub struct Trial {
    /// 0 is the configuration as given.
    pub number: usize,
    /// The searched settings' values, by dotted key.
    pub params: BTreeMap<String, f64>,
    /// The configuration it trained with.
    pub config: Config,
    /// The objective model's recall@k on the validation window.
    pub score: f64,
    /// Every model's recall@k on the validation window.
    pub scores: BTreeMap<String, f64>,
    /// Seconds it took.
    pub seconds: f64,
}

/// A finished search.
#[derive(Debug, Clone)]
pub struct Tuned {
    /// The model whose recall was maximised.
    pub objective: String,
    /// Start of the validation window, UTC ms.
    pub valid_from_ms: i64,
    /// Its end: the cutoff, UTC ms.
    pub cutoff_ms: i64,
    /// Shoppers with relevant items in the validation window.
    pub users: usize,
    /// Every trial run, in order.
    pub trials: Vec<Trial>,
    /// Index of the best trial (the first of equals).
    pub best: usize,
}

impl Tuned {
    /// The best trial.
    pub fn best(&self) -> &Trial {
        &self.trials[self.best]
    }

    /// The best settings as a TOML snippet of the sections they belong to.
    pub fn snippet(&self) -> String {
        let best = self.best();
        let mut sections: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (key, &value) in &best.params {
            let (section, name) = key.rsplit_once('.').unwrap_or(("", key));
            // Event weights are one inline table: all three kinds are written.
            if let Some(model) = section.strip_suffix(".weights") {
                let weights = match model {
                    "models.als" => best.config.models.als.weights,
                    _ => best.config.models.history.weights,
                };
                let line = format!(
                    "weights = {{ view = {}, addtocart = {}, transaction = {} }}",
                    float(f64::from(weights.view)),
                    float(f64::from(weights.addtocart)),
                    float(f64::from(weights.transaction))
                );
                let lines = sections.entry(model).or_default();
                if !lines.contains(&line) {
                    lines.push(line);
                }
                continue;
            }
            let integer = PARAMS
                .iter()
                .any(|p| p.key == key && matches!(p.space, Space::Choice(_)));
            let text = if integer {
                format!("{}", value as i64)
            } else {
                float(value)
            };
            sections
                .entry(section)
                .or_default()
                .push(format!("{name} = {text}"));
        }
        let mut out = String::new();
        for (section, lines) in sections {
            out.push_str(&format!("[{section}]\n"));
            for line in lines {
                out.push_str(&line);
                out.push('\n');
            }
            out.push('\n');
        }
        out
    }
}

/// `value` as a TOML float to 4 significant digits (always with a point).
fn float(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return "0.0".into();
    }
    let digits = (3 - value.abs().log10().floor() as i32).max(1) as usize;
    format!("{value:.digits$}")
}

/// The settings searched for `config`'s enabled models (or `only`).
fn space<'a>(config: &Config, only: &[String]) -> Result<Vec<&'a Param>> {
    for key in only {
        if !PARAMS.iter().any(|p| p.key == key) {
            bail!(
                "--only {key}: not a tunable setting (tunable: {})",
                PARAMS.iter().map(|p| p.key).collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(PARAMS
        .iter()
        .filter(|p| config.models.is_enabled(p.model))
        .filter(|p| only.is_empty() || only.iter().any(|k| k == p.key))
        .collect())
}

/// Search `config`'s settings on the validation window before `cutoff` of its
/// data (or `events`); `observe` sees every trial as it ends.
pub fn tune(
    config: &Config,
    events: Option<PathBuf>,
    cutoff: &Cutoff,
    options: &TuneOptions,
    mut observe: impl FnMut(&Trial),
) -> Result<Tuned> {
    options.tune.validate()?;
    let params = space(config, &options.only)?;
    let enabled: Vec<&str> = config.models.enabled.iter().map(String::as_str).collect();
    let wanted = options
        .tune
        .model
        .as_deref()
        .or(config.serve.model.as_deref());
    let Some(objective) = pick_model(wanted, &enabled) else {
        bail!(
            "[tune] model `{}` is not in [models] enabled ({})",
            wanted.unwrap_or("?"),
            enabled.join(", ")
        );
    };
    let mut prepared = prepare(config, events, cutoff, options.protocol)?;
    let cutoff_ms = prepared.split.cutoff_ms;
    let valid_from_ms = cutoff_ms - i64::from(options.tune.valid_days) * DAY_MS;
    prepared.resplit(valid_from_ms, options.protocol, Some(cutoff_ms));
    if prepared.train.is_empty() {
        bail!(
            "no training events before {} ({} validation days before the cutoff {}); lower [tune] valid_days",
            format_date(valid_from_ms),
            options.tune.valid_days,
            format_date(cutoff_ms)
        );
    }
    let start = Instant::now();
    let budget = options.tune.budget_minutes.map(|m| m * 60.0);
    let mut rng = Rng::new(options.tune.seed);
    let mut trials: Vec<Trial> = Vec::with_capacity(options.tune.trials);
    let mut users = 0;
    for number in 0..options.tune.trials {
        if number > 0 && budget.is_some_and(|b| start.elapsed().as_secs_f64() >= b) {
            break;
        }
        let mut trial_config = config.clone();
        let mut values = BTreeMap::new();
        for p in &params {
            // Every trial draws every setting, so trial n's values do not depend
            // on which trials ran before it stopped early.
            let drawn = p.space.draw(&mut rng);
            let value = if number == 0 { (p.get)(config) } else { drawn };
            (p.set)(&mut trial_config, value);
            values.insert(p.key.to_string(), (p.get)(&trial_config));
        }
        trial_config
            .validate()
            .with_context(|| format!("trial {number}'s settings"))?;
        let t = Instant::now();
        let bundle = fit(&trial_config, &prepared).with_context(|| format!("trial {number}"))?;
        let engine = Engine::from_bundle(
            bundle,
            std::path::Path::new("(tuning, in memory)"),
            &EngineSettings::from_config(&trial_config),
        )?;
        let bundle = engine.bundle();
        let truth = ground_truth(
            &prepared.split.test,
            &bundle.users,
            &bundle.items,
            options.protocol,
        );
        users = truth.len();
        if truth.is_empty() {
            bail!(
                "no shopper has relevant items in the validation window {} .. {}; raise [tune] valid_days",
                format_date(valid_from_ms),
                format_date(cutoff_ms)
            );
        }
        let results = evaluate(&engine, &bundle.models(), &truth, options.k);
        let scores: BTreeMap<String, f64> = results
            .iter()
            .map(|r| (r.name.clone(), r.all.recall))
            .collect();
        let trial = Trial {
            number,
            params: values,
            config: trial_config,
            score: scores.get(objective).copied().unwrap_or(0.0),
            scores,
            seconds: t.elapsed().as_secs_f64(),
        };
        observe(&trial);
        trials.push(trial);
    }
    let best = trials.iter().enumerate().fold(0, |best, (i, t)| {
        if t.score > trials[best].score {
            i
        } else {
            best
        }
    });
    Ok(Tuned {
        objective: objective.to_string(),
        valid_from_ms,
        cutoff_ms,
        users,
        trials,
        best,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_their_space_and_are_seeded() {
        let mut a = Rng::new(3);
        let mut b = Rng::new(3);
        for _ in 0..200 {
            let v = Space::LogUniform(0.5, 365.0).draw(&mut a);
            assert!((0.5..=365.0).contains(&v));
            assert_eq!(v, Space::LogUniform(0.5, 365.0).draw(&mut b));
            let c = Space::Choice(&[16.0, 32.0]).draw(&mut a);
            assert!(c == 16.0 || c == 32.0);
            let _ = Space::Choice(&[16.0, 32.0]).draw(&mut b);
        }
    }

    #[test]
    fn every_param_sets_what_it_reads() {
        for p in PARAMS {
            let mut c = Config::default();
            let v = match p.space {
                Space::Choice(values) => values[0],
                Space::LogUniform(lo, _) | Space::Uniform(lo, _) => lo,
            };
            (p.set)(&mut c, v);
            assert!(
                ((p.get)(&c) - v).abs() < 1e-6 * v.abs().max(1.0),
                "{}",
                p.key
            );
            // The dotted key names the setting in the TOML.
            let toml = toml::to_string(&c).unwrap();
            let name = p.key.rsplit('.').next().unwrap();
            assert!(toml.contains(name), "{}", p.key);
        }
    }

    #[test]
    fn the_snippet_is_toml_that_sets_the_best_values() {
        let mut params = BTreeMap::new();
        let mut config = Config::default();
        config.models.als.weights.addtocart = 7.5;
        params.insert("models.als.factors".to_string(), 32.0);
        params.insert("models.als.alpha".to_string(), 2.34567);
        params.insert("models.als.weights.addtocart".to_string(), 7.5);
        params.insert("models.history.half_life_days".to_string(), 30.0);
        let trial = Trial {
            number: 1,
            params,
            config,
            score: 0.2,
            scores: BTreeMap::new(),
            seconds: 0.0,
        };
        let tuned = Tuned {
            objective: "als".into(),
            valid_from_ms: 0,
            cutoff_ms: 0,
            users: 1,
            trials: vec![trial],
            best: 0,
        };
        let snippet = tuned.snippet();
        let parsed: Config = toml::from_str(&snippet).unwrap();
        assert_eq!(parsed.models.als.factors, 32);
        assert!((parsed.models.als.alpha - 2.346).abs() < 1e-6, "{snippet}");
        let mut weights = Config::default().models.als.weights;
        weights.addtocart = 7.5;
        assert_eq!(parsed.models.als.weights, weights, "{snippet}");
        assert_eq!(parsed.models.history.half_life_days, 30.0);
    }

    #[test]
    fn unknown_settings_are_refused_by_name() {
        let err = space(&Config::default(), &["models.als.factorz".into()])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("models.als.factorz") && err.contains("models.als.factors"));
    }

    /// 16 groups of 30 items; each shopper views and carts items of one group.
    /// The validation window's carts are new items of the shopper's group.
    fn planted(dir: &std::path::Path) -> Config {
        let day = DAY_MS;
        let mut rng = Rng::new(11);
        let mut csv = String::from("timestamp,visitorid,event,itemid,transactionid\n");
        for user in 0..600i64 {
            let group = user % 16;
            let item = |rng: &mut Rng| group * 30 + rng.below(30) as i64;
            for _ in 0..8 {
                let t = rng.below(60) as i64 * day + 1;
                csv.push_str(&format!("{t},{user},view,{},\n", item(&mut rng)));
            }
            // Noise: views of any item, which many factors learn by heart.
            for _ in 0..8 {
                let t = rng.below(60) as i64 * day + 1;
                csv.push_str(&format!("{t},{user},view,{},\n", rng.below(480)));
            }
            for _ in 0..2 {
                let t = (67 + rng.below(12) as i64) * day + 1;
                csv.push_str(&format!("{t},{user},addtocart,{},\n", item(&mut rng)));
            }
            // The test window after the cutoff (day 80), which tuning never reads.
            let t = 85 * day + user;
            csv.push_str(&format!("{t},{user},addtocart,{},\n", item(&mut rng)));
        }
        let events = dir.join("events.csv");
        std::fs::write(&events, csv).unwrap();
        let mut config = Config::default();
        config.data.events = events;
        config.data.item_features = None;
        config.models.enabled = vec!["popular".into(), "als".into()];
        config.models.als.iterations = 8;
        config
    }

    #[test]
    fn on_planted_groups_the_tuner_finds_the_planted_factor_count() {
        let dir = tempfile::tempdir().unwrap();
        let config = planted(dir.path());
        let options = TuneOptions {
            tune: TuneConfig {
                valid_days: 14,
                trials: 16,
                seed: 5,
                budget_minutes: None,
                model: Some("als".into()),
            },
            only: vec!["models.als.factors".into()],
            k: 10,
            protocol: Protocol::Strict,
        };
        let mut seen = 0;
        let tuned = tune(
            &config,
            None,
            &Cutoff::Date(format_date(80 * DAY_MS)),
            &options,
            |_| seen += 1,
        )
        .unwrap();
        assert_eq!(seen, 16);
        assert_eq!(tuned.objective, "als");
        assert_eq!(
            tuned.trials[0].params["models.als.factors"], 64.0,
            "trial 0 is the config"
        );
        let by_factors: BTreeMap<i64, f64> = tuned
            .trials
            .iter()
            .map(|t| (t.params["models.als.factors"] as i64, t.score))
            .collect();
        let best = tuned.best().params["models.als.factors"];
        assert!(
            (16.0..=32.0).contains(&best),
            "planted 16 groups; best {best}: {by_factors:?}"
        );
        // Too few factors to tell the groups apart, or so many that they learn
        // the noise, are clearly worse.
        assert!(by_factors[&4] < tuned.best().score * 0.8, "{by_factors:?}");
        assert!(
            by_factors[&128] < tuned.best().score * 0.8,
            "{by_factors:?}"
        );
    }
}
