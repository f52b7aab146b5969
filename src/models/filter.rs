//! Business rules: which items may be shown to one shopper in one request.
//!
//! Every model takes a [`Filter`] and only ever returns items it allows, so a
//! rule is written once and holds for evaluation, `recsys recommend` and the
//! service alike. [`Rules`] turns `[rules]` of config.toml, the catalogue's
//! attributes and a request into that filter: unavailable items hidden, items
//! the shopper bought or carted left out, plus the request's own exclusions
//! and category.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::context::Context;
use crate::data::{EventKind, ItemInfo};

/// Which of the shopper's events the exclusions read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExcludeFrom {
    /// Events since training (what the service received): an item carted in
    /// this visit is not offered again, while a shop whose shoppers re-buy
    /// still sees last month's basket come back.
    #[default]
    New,
    /// Training events too.
    All,
}

/// `[rules]` of config.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Never recommend items whose features say `available = 0`.
    pub hide_unavailable: bool,
    /// Leave out items the shopper bought.
    pub exclude_bought: bool,
    /// Leave out items the shopper added to the cart.
    pub exclude_carted: bool,
    /// Leave out every item the shopper interacted with, views included.
    pub exclude_seen: bool,
    /// Whether the three exclusions above read only the events since
    /// training (`new`, the default) or the training history too (`all`).
    pub exclude_from: ExcludeFrom,
    /// Most ids a request's `exclude` may list.
    pub max_exclude: usize,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            hide_unavailable: true,
            exclude_bought: true,
            exclude_carted: true,
            exclude_seen: false,
            exclude_from: ExcludeFrom::New,
            max_exclude: 100,
        }
    }
}

/// The items one request may receive.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Items hidden for everyone (unavailable), by dense item.
    hidden: Option<Arc<[bool]>>,
    /// Items hidden for this shopper, ascending.
    excluded: Vec<u32>,
    /// Only items of this category, with every item's category.
    category: Option<(i64, Arc<[Option<i64>]>)>,
}

impl Filter {
    /// A filter that allows every item.
    pub fn none() -> Filter {
        Filter::default()
    }

    /// A filter that leaves out `excluded` (any order) and allows the rest.
    pub fn excluding(mut excluded: Vec<u32>) -> Filter {
        excluded.sort_unstable();
        excluded.dedup();
        Filter {
            excluded,
            ..Filter::default()
        }
    }

    /// Whether `item` may be recommended.
    #[inline]
    pub fn allows(&self, item: u32) -> bool {
        if let Some(hidden) = &self.hidden {
            if hidden.get(item as usize).copied().unwrap_or(false) {
                return false;
            }
        }
        if let Some((wanted, of)) = &self.category {
            if of.get(item as usize).copied().flatten() != Some(*wanted) {
                return false;
            }
        }
        self.excluded.binary_search(&item).is_err()
    }

    /// Whether the filter allows everything (lets scorers skip the checks).
    pub fn is_none(&self) -> bool {
        self.hidden.is_none() && self.excluded.is_empty() && self.category.is_none()
    }

    /// The category the request is restricted to, if any.
    pub fn category(&self) -> Option<i64> {
        self.category.as_ref().map(|c| c.0)
    }
}

/// The rules of one bundle's catalogue, ready to make per-request filters.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The settings.
    pub config: RulesConfig,
    hidden: Option<Arc<[bool]>>,
    categories: Arc<[Option<i64>]>,
}

/// What one request adds to the rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestRules {
    /// Dense items the caller does not want.
    pub exclude: Vec<u32>,
    /// Only items of this category.
    pub category: Option<i64>,
}

impl Rules {
    /// Rules for a catalogue described by `items` (dense).
    pub fn new(config: RulesConfig, items: &[ItemInfo]) -> Rules {
        let hidden: Arc<[bool]> = items.iter().map(|i| i.available == Some(false)).collect();
        let any_hidden = hidden.iter().any(|&h| h);
        Rules {
            hidden: (config.hide_unavailable && any_hidden).then_some(hidden),
            categories: items.iter().map(|i| i.category).collect(),
            config,
        }
    }

    /// The filter for the shopper of `ctx` making `request`.
    pub fn filter(&self, ctx: &Context, request: &RequestRules) -> Filter {
        let c = &self.config;
        let kinds: &[EventKind] = if c.exclude_seen {
            &EventKind::ALL
        } else {
            match (c.exclude_carted, c.exclude_bought) {
                (true, true) => &[EventKind::AddToCart, EventKind::Transaction],
                (true, false) => &[EventKind::AddToCart],
                (false, true) => &[EventKind::Transaction],
                (false, false) => &[],
            }
        };
        let mut excluded = match c.exclude_from {
            _ if kinds.is_empty() => Vec::new(),
            ExcludeFrom::All => ctx.items_with(kinds),
            ExcludeFrom::New => ctx
                .new
                .iter()
                .filter(|e| kinds.contains(&e.kind))
                .map(|e| e.item)
                .collect(),
        };
        excluded.extend_from_slice(&request.exclude);
        let mut filter = Filter::excluding(excluded);
        filter.hidden = self.hidden.clone();
        filter.category = request.category.map(|c| (c, self.categories.clone()));
        filter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{EventLog, TrainSet};
    use crate::models::context::Event;

    #[test]
    fn rules_hide_unavailable_bought_carted_and_requested_items() {
        let mut log = EventLog::default();
        log.push(1, 5, EventKind::View, 100);
        log.push(2, 5, EventKind::AddToCart, 101);
        log.push(3, 6, EventKind::Transaction, 102);
        log.push(4, 6, EventKind::View, 103);
        log.sort_dedup();
        let train = TrainSet::new(&log, 10);
        let item = |raw| train.items.get(raw).unwrap();
        let mut info = vec![ItemInfo::default(); train.items.len()];
        info[item(103) as usize].available = Some(false);
        info[item(100) as usize].category = Some(7);
        let rules = Rules::new(
            RulesConfig {
                exclude_from: ExcludeFrom::All,
                ..RulesConfig::default()
            },
            &info,
        );
        let bought = [Event {
            item: item(102),
            kind: EventKind::Transaction,
            timestamp_ms: 11,
        }];
        let ctx = Context::new(&train, train.users.get(5), &bought);
        let f = rules.filter(&ctx, &RequestRules::default());
        assert!(f.allows(item(100)), "viewed items stay");
        assert!(!f.allows(item(101)), "carted in training");
        assert!(!f.allows(item(102)), "bought since training");
        assert!(!f.allows(item(103)), "unavailable");
        let f = rules.filter(
            &ctx,
            &RequestRules {
                exclude: vec![item(100)],
                category: None,
            },
        );
        assert!(!f.allows(item(100)));
        let f = rules.filter(
            &ctx,
            &RequestRules {
                exclude: vec![],
                category: Some(7),
            },
        );
        assert!(f.allows(item(100)) && f.category() == Some(7));
        let open = Rules::new(
            RulesConfig {
                hide_unavailable: false,
                exclude_bought: false,
                exclude_carted: false,
                ..RulesConfig::default()
            },
            &info,
        );
        let f = open.filter(&ctx, &RequestRules::default());
        assert!(f.is_none() && f.allows(item(103)) && f.allows(item(101)));
        // By default only what happened since training is excluded: the
        // training cart of 101 comes back, the purchase since does not.
        let new_only = Rules::new(RulesConfig::default(), &info);
        let f = new_only.filter(&ctx, &RequestRules::default());
        assert!(f.allows(item(101)) && !f.allows(item(102)) && !f.allows(item(103)));
    }
}
