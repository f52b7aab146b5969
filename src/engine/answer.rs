//! The answer policy, written once: what `GET /recommendations` and
//! `recsys recommend --user-id` return for a shopper.

use serde::Serialize;

use super::{Engine, ShopperEvent};
use crate::models::complete;

/// One request for recommendations.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Raw shopper id.
    pub user_id: i64,
    /// The shopper's events since training (any order; the engine sorts them by time).
    pub events: &'a [ShopperEvent],
    /// Items wanted.
    pub k: usize,
    /// Raw item ids the caller does not want.
    pub exclude: &'a [i64],
    /// Only items of this category.
    pub category: Option<i64>,
    /// The model to ask instead of the engine's.
    pub model: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// A plain request: `k` items for `user_id` with `events`.
    pub fn new(user_id: i64, events: &'a [ShopperEvent], k: usize) -> Request<'a> {
        Request {
            user_id,
            events,
            k,
            exclude: &[],
            category: None,
            model: None,
        }
    }
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pick {
    /// Raw shop item id.
    pub item_id: i64,
    /// The ranking model's score (filled items score below every ranked one).
    pub score: f32,
    /// The first of `sources`: what proposed the item.
    pub source: &'static str,
    /// Everything that proposed it: two_stage's candidate sources (`als`,
    /// `similar`, `history`, `popular`, `category_popular`), the single model
    /// that ranked it, or `popular` for an item filling the answer to k.
    pub sources: Vec<&'static str>,
}

/// The answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// Raw shopper id.
    pub user_id: i64,
    /// The model that ranked the answer (`popular` when there was nothing to go on).
    pub model: &'static str,
    /// The bundle's run id.
    pub model_version: String,
    /// Whether training knew the shopper.
    pub known_user: bool,
    /// Events since training the model read (those on items it knows).
    pub new_events: usize,
    /// Items placed by the model; the rest filled from popular items.
    pub ranked: usize,
    /// The items, best first.
    pub recommendations: Vec<Pick>,
}

impl Engine {
    /// Answer `request`: the served (or asked) model ranks for the shopper's
    /// context, under the rules' filter, and popular items the filter allows
    /// fill the answer to `k`. A shopper with nothing known gets popular items.
    pub fn answer(&self, request: &Request) -> anyhow::Result<Answer> {
        let model = match request.model {
            Some(name) => self.model(name)?,
            None => self.model(self.model)?,
        };
        let events = self.context_events(request.events);
        let ctx = self.context(request.user_id, &events);
        let filter = self.filter(&ctx, request.exclude, request.category);
        let k = request.k;
        // A model with nothing to go on (an empty context) answers nothing;
        // popular items fill the answer then.
        let mut ranked = model.explain(&ctx, k, &filter);
        ranked.truncate(k);
        let mut scored: Vec<_> = ranked.iter().map(|r| (r.item, r.score)).collect();
        complete(&mut scored, self.fallback(), &filter, k);
        let items = &self.bundle().items;
        let recommendations = scored
            .iter()
            .enumerate()
            .map(|(i, &(item, score))| {
                let sources = match ranked.get(i) {
                    Some(r) => r.sources.clone(),
                    None => vec!["popular"],
                };
                Pick {
                    item_id: items.raw(item),
                    score,
                    source: sources.first().copied().unwrap_or("popular"),
                    sources,
                }
            })
            .collect();
        Ok(Answer {
            user_id: request.user_id,
            model: if ranked.is_empty() {
                "popular"
            } else {
                model.name()
            },
            model_version: self.version.clone(),
            known_user: ctx.user.is_some(),
            new_events: events.len(),
            ranked: ranked.len(),
            recommendations,
        })
    }
}
