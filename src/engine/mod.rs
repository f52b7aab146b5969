//! The live scoring engine: one bundle, indexed, answering shoppers at request time.
//!
//! `recsys serve`, `recsys recommend`, `recsys export` and `recsys evaluate`
//! all ask an [`Engine`], so what is evaluated is what a shopper receives:
//!
//! 1. the shopper's raw events since training become a model [`Context`] next to
//!    their training history ([`Engine::context_events`]);
//! 2. the business [`Rules`] make the request's [`Filter`] (unavailable items,
//!    what they bought or carted, the request's `exclude` and `category`);
//! 3. the served model ranks (two_stage re-ranks its candidates live; ALS folds
//!    the shopper in and searches its index);
//! 4. popular items the filter allows fill the answer to `k` ([`complete`]).
//!
//! Loading builds the ALS indexes (maximum inner product and cosine) once and
//! measures their recall against exact search. An engine is immutable once
//! built: the service swaps whole engines on reload.

pub mod answer;
pub mod export;

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

pub use answer::{Answer, Pick, Request};

use crate::bundle::Bundle;
use crate::data::EventKind;
use crate::models::{
    complete, Context, Event, Filter, Recommender, RequestRules, Rules, RulesConfig, Scored,
};

/// Users sampled at load to measure the indexes against exact search.
const RECALL_SAMPLE: usize = 200;

/// One event of a shopper as received (raw shop ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShopperEvent {
    /// Raw shop item id.
    pub item_id: i64,
    /// What the shopper did.
    pub kind: EventKind,
    /// When, UTC ms.
    pub timestamp_ms: i64,
}

/// What an engine is told besides the bundle.
#[derive(Debug, Clone, Default)]
pub struct EngineSettings {
    /// `[rules]`.
    pub rules: RulesConfig,
    /// The model answering requests (`[serve] model`); by default two_stage,
    /// else als, else the first the bundle has.
    pub model: Option<String>,
}

impl EngineSettings {
    /// The settings of `config`: its `[rules]` and `[serve] model`.
    pub fn from_config(config: &crate::config::Config) -> EngineSettings {
        EngineSettings {
            rules: config.rules.clone(),
            model: config.serve.model.clone(),
        }
    }
}

/// A bundle ready to answer.
pub struct Engine {
    /// The bundle's run id.
    pub version: String,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// The model answering requests.
    pub model: &'static str,
    /// Unix time of training.
    pub created_unix: f64,
    /// Unix time of loading.
    pub loaded_unix: f64,
    /// Seconds loading took.
    pub load_seconds: f64,
    /// Share of the exact 10 nearest neighbours the similar-items index finds.
    pub similar_recall: Option<f64>,
    /// Share of the exact top 50 by inner product the ALS candidate index finds.
    pub mips_recall: Option<f64>,
    bundle: Bundle,
    rules: Rules,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("version", &self.version)
            .field("path", &self.path)
            .field("model", &self.model)
            .finish()
    }
}

/// The model a bundle answers with: `wanted`, else two_stage, else als, else the first.
pub fn pick_model<'a>(wanted: Option<&str>, available: &[&'a str]) -> Option<&'a str> {
    match wanted {
        Some(name) => available.iter().copied().find(|&a| a == name),
        None => ["two_stage", "als"]
            .into_iter()
            .find_map(|name| available.iter().copied().find(|&a| a == name))
            .or_else(|| available.first().copied()),
    }
}

impl Engine {
    /// Load the bundle in `dir` and index it.
    pub fn load(dir: &Path, settings: &EngineSettings) -> Result<Engine> {
        let start = Instant::now();
        let bundle = Bundle::load(dir)?;
        let mut engine = Engine::from_bundle(bundle, dir, settings)?;
        engine.load_seconds = start.elapsed().as_secs_f64();
        Ok(engine)
    }

    /// Index an already loaded `bundle` (read from, or saved to, `dir`).
    pub fn from_bundle(bundle: Bundle, dir: &Path, settings: &EngineSettings) -> Result<Engine> {
        let start = Instant::now();
        let created_unix = chrono::DateTime::parse_from_rfc3339(&bundle.manifest.created_at)
            .map(|t| t.timestamp_millis() as f64 / 1000.0)
            .with_context(|| format!("reading created_at of bundle {}", dir.display()))?;
        let names: Vec<&'static str> = bundle.models().iter().map(|m| m.name()).collect();
        let Some(model) = pick_model(settings.model.as_deref(), &names) else {
            bail!(
                "bundle {} has no model `{}` to serve (it has: {}); set [serve] model to one of them",
                dir.display(),
                settings.model.as_deref().unwrap_or("?"),
                names.join(", ")
            );
        };
        let (similar_recall, mips_recall) = match &bundle.als {
            Some(als) => {
                let index = als.build_index();
                (
                    Some(index.similar_recall(als, RECALL_SAMPLE, 7)),
                    Some(index.mips_recall(als, 50, RECALL_SAMPLE, 7)),
                )
            }
            None => (None, None),
        };
        let rules = Rules::new(settings.rules.clone(), &bundle.item_info);
        Ok(Engine {
            version: bundle.manifest.run_id.clone(),
            path: dir.to_path_buf(),
            model,
            created_unix,
            loaded_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            load_seconds: start.elapsed().as_secs_f64(),
            similar_recall,
            mips_recall,
            bundle,
            rules,
        })
    }

    /// The loaded bundle.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// Whether the bundle's training data has `user_id`.
    pub fn knows_user(&self, user_id: i64) -> bool {
        self.bundle.users.get(user_id).is_some()
    }

    /// The model called `name`, or an error listing those the bundle has.
    pub fn model(&self, name: &str) -> Result<&dyn Recommender> {
        self.bundle.model(name).with_context(|| {
            let names: Vec<&str> = self.bundle.models().iter().map(|m| m.name()).collect();
            format!(
                "the bundle has no model `{name}` (it has: {})",
                names.join(", ")
            )
        })
    }

    /// Raw events as model events: items the bundle does not know are
    /// dropped (no model can score them), the rest ordered by time (stable,
    /// so events of equal time keep their order of arrival).
    pub fn context_events(&self, events: &[ShopperEvent]) -> Vec<Event> {
        let mut out: Vec<Event> = events
            .iter()
            .filter_map(|e| {
                self.bundle.items.get(e.item_id).map(|item| Event {
                    item,
                    kind: e.kind,
                    timestamp_ms: e.timestamp_ms,
                })
            })
            .collect();
        out.sort_by_key(|e| e.timestamp_ms);
        out
    }

    /// The shopper context of `user_id` with `events` (as made by [`Engine::context_events`]).
    pub fn context<'a>(&'a self, user_id: i64, events: &'a [Event]) -> Context<'a> {
        Context::new(&self.bundle.train, self.bundle.users.get(user_id), events)
    }

    /// The filter for the shopper of `ctx` with the request's exclusions
    /// (raw ids; unknown ones cannot be recommended anyway) and category.
    pub fn filter(&self, ctx: &Context, exclude: &[i64], category: Option<i64>) -> Filter {
        let request = RequestRules {
            exclude: exclude
                .iter()
                .filter_map(|&raw| self.bundle.items.get(raw))
                .collect(),
            category,
        };
        self.rules.filter(ctx, &request)
    }

    /// The popular ranking the answers are filled from (empty without a popular model).
    pub fn fallback(&self) -> &[Scored] {
        self.bundle.popular.as_ref().map_or(&[], |p| &p.ranked)
    }

    /// `model`'s answers to many shoppers at once, as [`Engine::answer`] would
    /// give them item for item: `k` items each, the model's allowed by the
    /// filter, then popular ones. The batch form of evaluation and export.
    pub fn answer_batch(
        &self,
        model: &dyn Recommender,
        ctxs: &[Context],
        filters: &[Filter],
        k: usize,
    ) -> Vec<Vec<Scored>> {
        let mut lists = model.recommend_batch(ctxs, k, filters);
        for (list, filter) in lists.iter_mut().zip(filters) {
            list.truncate(k);
            complete(list, self.fallback(), filter, k);
        }
        lists
    }

    /// The `k` items most similar to `item_id`, or `None` if the bundle cannot
    /// tell (no ALS model, or an item it has never seen).
    pub fn similar(&self, item_id: i64, k: usize) -> Option<Vec<(i64, f32)>> {
        let als = self.bundle.als.as_ref()?;
        let item = self.bundle.items.get(item_id)?;
        Some(
            als.similar_items(item, k)
                .into_iter()
                .map(|(i, s)| (self.bundle.items.raw(i), s))
                .collect(),
        )
    }

    /// Whether similar items can be served (the bundle has ALS factors).
    pub fn has_similar(&self) -> bool {
        self.bundle.als.is_some()
    }

    /// Up to `k` popular items allowed for everyone, raw ids (for unknown items on `/similar`).
    pub fn popular(&self, k: usize) -> Vec<(i64, f32)> {
        let everyone = self.rules.filter(
            &Context::new(&self.bundle.train, None, &[]),
            &RequestRules::default(),
        );
        self.fallback()
            .iter()
            .filter(|r| everyone.allows(r.0))
            .take(k)
            .map(|&(i, s)| (self.bundle.items.raw(i), s))
            .collect()
    }
}
