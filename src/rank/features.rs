//! Features of (user, candidate item) pairs, for the re-ranker.
//!
//! Item features are computed from one period's events ([`TrainSet`]) as of
//! that period's end (`cutoff_ms`), once; user and user × item features from
//! the shopper's [`Context`] — their events of the period plus any since — as of
//! [`Context::now_ms`]. The re-ranker learns from a period that ends where its
//! label window starts (contexts without new events), so no feature can see an
//! event of the label window; at request time the same code reads the
//! shopper's newest clicks.
//! Four groups, one row per candidate:
//! - **source**: each source's score and rank ([`Candidates`]); NaN where the
//!   source did not propose the item — "not proposed" is not "score 0";
//! - **user**: events by kind over 7 / 30 days and all time, days since the first
//!   and last event, distinct items and categories;
//! - **item**: the same counts for the item, cart rate, trend (last week against
//!   the three before), distinct users, age, category, parent, availability
//!   (NaN = unknown) and the category's recent add-to-carts;
//! - **user × item**: the user's views / carts / purchases of the item, days since
//!   the first and last of them, its rank in the user's recency list, whether
//!   its category is one of the user's recent ones and the share of the user's
//!   events in that category;
//! - **session**: the shopper's latest session (events no more than
//!   [`SESSION_GAP_MS`] apart): its events, minutes from its last event to the
//!   context's time, and the candidate's views and carts in it — on a browsing
//!   shop the next cart is mostly an item of the visit under way;
//! - **repeat**: the item's re-buy rate (of the shoppers who carted it, the
//!   share who carted it again on another day), and for the shopper the mean
//!   gap between the days they carted it, the days since they last did, and
//!   their ratio ("due": near 1 when the usual gap has passed) — a grocery
//!   shopper re-buys on a rhythm.
//!
//! Values are `f32`, rows are row-major with [`feature_names`] as columns.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

use super::candidates::{Candidates, SOURCES};
use crate::data::time::DAY_MS;
use crate::data::{EventKind, ItemInfo, TrainSet};
use crate::models::Context;

/// Windows of the event counts, in days before the period's end (`None` = all time).
const WINDOWS: [(Option<i64>, &str); 3] = [(Some(7), "7d"), (Some(30), "30d"), (None, "all")];
const KINDS: [(EventKind, &str); 3] = [
    (EventKind::View, "views"),
    (EventKind::AddToCart, "carts"),
    (EventKind::Transaction, "transactions"),
];

const USER_EXTRA: [&str; 4] = [
    "user_days_since_last",
    "user_days_since_first",
    "user_distinct_items",
    "user_distinct_categories",
];
const ITEM_EXTRA: [&str; 9] = [
    "item_cart_rate",
    "item_trend",
    "item_users",
    "item_days_since_last",
    "item_days_since_first",
    "item_category",
    "item_parent",
    "item_available",
    "category_carts_30d",
];
/// Events further apart than this start a new session (30 minutes, the usual
/// web-analytics rule).
pub const SESSION_GAP_MS: i64 = 30 * 60_000;

const SESSION: [&str; 4] = [
    "session_events",
    "session_minutes_since_last",
    "ui_session_views",
    "ui_session_carts",
];
const REPEAT: [&str; 4] = [
    "item_repeat_rate",
    "ui_cart_gap_days",
    "ui_days_since_last_cart",
    "ui_cart_due",
];
const USER_ITEM: [&str; 8] = [
    "ui_views",
    "ui_carts",
    "ui_transactions",
    "ui_days_since_last",
    "ui_days_since_first",
    "ui_recency_rank",
    "ui_recent_category",
    "ui_category_share",
];

/// Column names of the feature table, in order.
pub fn feature_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = Vec::new();
        for s in SOURCES {
            names.push(format!("{}_score", s.name()));
            names.push(format!("{}_rank", s.name()));
        }
        for who in ["user", "item"] {
            for (_, kind) in KINDS {
                for (_, window) in WINDOWS {
                    names.push(format!("{who}_{kind}_{window}"));
                }
            }
            let extra: &[&str] = if who == "user" {
                &USER_EXTRA
            } else {
                &ITEM_EXTRA
            };
            names.extend(extra.iter().map(|s| s.to_string()));
        }
        names.extend(USER_ITEM.iter().map(|s| s.to_string()));
        names.extend(SESSION.iter().map(|s| s.to_string()));
        names.extend(REPEAT.iter().map(|s| s.to_string()));
        names
    })
}

/// Number of feature columns.
pub fn n_features() -> usize {
    feature_names().len()
}

/// Counts by kind (rows) and window (columns).
type Counts = [[f32; 3]; 3];

fn count(counts: &mut Counts, kind: EventKind, age_ms: i64) {
    for (w, (days, _)) in WINDOWS.iter().enumerate() {
        if days.is_none_or(|d| age_ms < d * DAY_MS) {
            counts[kind as usize][w] += 1.0;
        }
    }
}

fn days(ms: i64) -> f32 {
    ms as f32 / DAY_MS as f32
}

/// Per-item aggregates of one period, computed once.
#[derive(Debug, Clone)]
struct ItemStats {
    counts: Vec<Counts>,
    /// Views 8..28 days before the end, for the trend.
    views_before: Vec<f32>,
    users: Vec<f32>,
    first_ms: Vec<i64>,
    last_ms: Vec<i64>,
    category_carts_30d: HashMap<i64, f32>,
    /// Shoppers who carted (or bought) the item, and of them those who did on
    /// two or more days.
    buyers: Vec<f32>,
    repeaters: Vec<f32>,
}

impl ItemStats {
    fn compute(train: &TrainSet, items: &[ItemInfo]) -> ItemStats {
        let n = train.items.len();
        let now = train.cutoff_ms;
        let mut s = ItemStats {
            counts: vec![[[0.0; 3]; 3]; n],
            views_before: vec![0.0; n],
            users: vec![0.0; n],
            first_ms: vec![i64::MAX; n],
            last_ms: vec![i64::MIN; n],
            category_carts_30d: HashMap::new(),
            buyers: vec![0.0; n],
            repeaters: vec![0.0; n],
        };
        let mut last_user = vec![u32::MAX; n];
        // The last buyer of each item, the day of their last cart of it and
        // the distinct days they carted it on so far.
        let mut last_buyer = vec![(u32::MAX, i64::MIN, 0u32); n];
        for e in 0..train.len() {
            let item = train.item[e] as usize;
            let t = train.timestamp_ms[e];
            let age = now - t;
            count(&mut s.counts[item], train.kind[e], age);
            if train.kind[e] == EventKind::View && (7 * DAY_MS..28 * DAY_MS).contains(&age) {
                s.views_before[item] += 1.0;
            }
            // Events are grouped by user, so a user's repeats are adjacent per item.
            if last_user[item] != train.user[e] {
                last_user[item] = train.user[e];
                s.users[item] += 1.0;
            }
            s.first_ms[item] = s.first_ms[item].min(t);
            s.last_ms[item] = s.last_ms[item].max(t);
            if train.kind[e] != EventKind::View {
                let day = t.div_euclid(DAY_MS);
                let b = &mut last_buyer[item];
                if b.0 != train.user[e] {
                    *b = (train.user[e], day, 1);
                    s.buyers[item] += 1.0;
                } else if b.1 != day {
                    b.1 = day;
                    b.2 += 1;
                    if b.2 == 2 {
                        s.repeaters[item] += 1.0;
                    }
                }
            }
            if train.kind[e] == EventKind::AddToCart && age < 30 * DAY_MS {
                if let Some(c) = items.get(item).and_then(|i| i.category) {
                    *s.category_carts_30d.entry(c).or_default() += 1.0;
                }
            }
        }
        s
    }
}

/// What one user did in the period, gathered for their candidate rows.
struct UserSummary {
    /// The time the user features describe.
    now: i64,
    counts: Counts,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    by_item: HashMap<u32, UserItem>,
    by_category: HashMap<i64, f32>,
    recent_categories: Vec<i64>,
    events: f32,
    /// Events of the latest session and the time of its last one.
    session_events: f32,
    session_last_ms: Option<i64>,
}

/// One item in a user's events.
#[derive(Debug, Clone, Copy)]
struct UserItem {
    /// Events by kind.
    kinds: [f32; 3],
    first_ms: i64,
    last_ms: i64,
    /// Rank among the user's items by latest event (1 = latest).
    recency_rank: usize,
    /// Views and carts (or purchases) in the latest session.
    session: [f32; 2],
    /// Distinct days with a cart or purchase of it, the first and last such day.
    cart_days: u32,
    first_cart_day: i64,
    last_cart_ms: Option<i64>,
}

/// Computes feature rows for one period's users and candidates.
#[derive(Debug, Clone)]
pub struct FeatureContext {
    /// The period's events.
    pub train: Arc<TrainSet>,
    /// Attributes of the period's items (dense).
    pub items: Arc<Vec<ItemInfo>>,
    /// How many of a user's latest distinct items define "recent categories".
    pub recent_items: usize,
    stats: ItemStats,
}

impl FeatureContext {
    /// Aggregate `train` once; `items` describes its dense items.
    pub fn new(train: Arc<TrainSet>, items: Arc<Vec<ItemInfo>>, recent_items: usize) -> Self {
        let stats = ItemStats::compute(&train, &items);
        FeatureContext {
            train,
            items,
            recent_items,
            stats,
        }
    }

    fn summarize(&self, ctx: &Context) -> UserSummary {
        let mut s = UserSummary {
            now: ctx.now_ms(),
            counts: [[0.0; 3]; 3],
            first_ms: None,
            last_ms: None,
            by_item: HashMap::new(),
            by_category: HashMap::new(),
            recent_categories: Vec::new(),
            events: 0.0,
            session_events: 0.0,
            session_last_ms: None,
        };
        let now = s.now;
        // The latest session starts after the last gap longer than the rule.
        let mut times: Vec<i64> = ctx.events().map(|e| e.timestamp_ms).collect();
        times.sort_unstable();
        let session_start = times
            .windows(2)
            .rev()
            .find(|w| w[1] - w[0] > SESSION_GAP_MS)
            .map_or(i64::MIN, |w| w[1]);
        for e in ctx.events() {
            let (item, t, kind) = (e.item, e.timestamp_ms, e.kind);
            count(&mut s.counts, kind, now - t);
            s.first_ms = Some(s.first_ms.map_or(t, |f| f.min(t)));
            s.last_ms = Some(s.last_ms.map_or(t, |l| l.max(t)));
            let entry = s.by_item.entry(item).or_insert(UserItem {
                kinds: [0.0; 3],
                first_ms: t,
                last_ms: t,
                recency_rank: 0,
                session: [0.0; 2],
                cart_days: 0,
                first_cart_day: 0,
                last_cart_ms: None,
            });
            entry.kinds[kind as usize] += 1.0;
            entry.first_ms = entry.first_ms.min(t);
            entry.last_ms = entry.last_ms.max(t);
            if t >= session_start {
                entry.session[usize::from(kind != EventKind::View)] += 1.0;
                s.session_events += 1.0;
                s.session_last_ms = Some(s.session_last_ms.map_or(t, |l| l.max(t)));
            }
            if kind != EventKind::View {
                let day = t.div_euclid(DAY_MS);
                match entry.last_cart_ms {
                    None => {
                        entry.cart_days = 1;
                        entry.first_cart_day = day;
                    }
                    Some(last) if last.div_euclid(DAY_MS) != day => entry.cart_days += 1,
                    Some(_) => {}
                }
                entry.first_cart_day = entry.first_cart_day.min(day);
                entry.last_cart_ms = Some(entry.last_cart_ms.map_or(t, |l| l.max(t)));
            }
            if let Some(c) = self.items.get(item as usize).and_then(|i| i.category) {
                *s.by_category.entry(c).or_default() += 1.0;
            }
            s.events += 1.0;
        }
        let mut by_recency: Vec<(u32, i64)> =
            s.by_item.iter().map(|(&i, v)| (i, v.last_ms)).collect();
        by_recency.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (rank, (item, _)) in by_recency.iter().enumerate() {
            s.by_item.get_mut(item).expect("item present").recency_rank = rank + 1;
            if rank < self.recent_items {
                if let Some(c) = self.items.get(*item as usize).and_then(|i| i.category) {
                    if !s.recent_categories.contains(&c) {
                        s.recent_categories.push(c);
                    }
                }
            }
        }
        s
    }

    /// Feature rows (row-major, [`n_features`] columns) for every candidate of
    /// `candidates`, whose `q`-th shopper is `ctxs[q]`.
    pub fn build(&self, ctxs: &[Context], candidates: &Candidates) -> Vec<f32> {
        let users = ctxs;
        assert_eq!(
            users.len(),
            candidates.users(),
            "one user per candidate list"
        );
        let width = n_features();
        let mut out = vec![0.0f32; candidates.len() * width];
        // Split the output into per-user blocks so users fill theirs in parallel.
        let mut blocks: Vec<(usize, &mut [f32])> = Vec::with_capacity(users.len());
        let mut rest = out.as_mut_slice();
        for q in 0..users.len() {
            let (block, tail) = rest.split_at_mut(candidates.rows(q).len() * width);
            blocks.push((q, block));
            rest = tail;
        }
        if blocks.len() == 1 {
            // One shopper (a request): no thread hand-off.
            let (q, block) = blocks.pop().expect("one block");
            let summary = self.summarize(&users[q]);
            for (row, r) in block.chunks_exact_mut(width).zip(candidates.rows(q)) {
                self.fill_row(row, &summary, candidates, r);
            }
            return out;
        }
        blocks.into_par_iter().for_each(|(q, block)| {
            let summary = self.summarize(&users[q]);
            for (row, r) in block.chunks_exact_mut(width).zip(candidates.rows(q)) {
                self.fill_row(row, &summary, candidates, r);
            }
        });
        out
    }

    fn fill_row(&self, row: &mut [f32], user: &UserSummary, cands: &Candidates, r: usize) {
        let now = self.train.cutoff_ms;
        let user_now = user.now;
        let item = cands.items[r];
        let i = item as usize;
        let info = self.items.get(i).copied().unwrap_or_default();
        let stats = &self.stats;
        let mut col = 0;
        let mut put = |v: f32| {
            row[col] = v;
            col += 1;
        };
        for s in 0..SOURCES.len() {
            put(cands.scores[r][s]);
            put(cands.ranks[r][s]);
        }
        // User.
        for kind in user.counts {
            kind.into_iter().for_each(&mut put);
        }
        put(user.last_ms.map_or(f32::NAN, |t| days(user_now - t)));
        put(user.first_ms.map_or(f32::NAN, |t| days(user_now - t)));
        put(user.by_item.len() as f32);
        put(user.by_category.len() as f32);
        // Item.
        let counts = stats.counts[i];
        for kind in counts {
            kind.into_iter().for_each(&mut put);
        }
        let (views_all, carts_all) = (counts[0][2], counts[1][2]);
        put(carts_all / (views_all + 1.0));
        put(counts[0][0] / (stats.views_before[i] / 3.0 + 1.0));
        put(stats.users[i]);
        let seen = stats.first_ms[i] != i64::MAX;
        put(if seen {
            days(now - stats.last_ms[i])
        } else {
            f32::NAN
        });
        put(if seen {
            days(now - stats.first_ms[i])
        } else {
            f32::NAN
        });
        put(info.category.map_or(f32::NAN, |c| c as f32));
        put(info.parent.map_or(f32::NAN, |p| p as f32));
        put(info.available.map_or(f32::NAN, |a| f32::from(u8::from(a))));
        put(info.category.map_or(f32::NAN, |c| {
            stats.category_carts_30d.get(&c).copied().unwrap_or(0.0)
        }));
        // User × item.
        let ui = user.by_item.get(&item);
        match ui {
            Some(u) => {
                u.kinds.iter().copied().for_each(&mut put);
                put(days(user_now - u.last_ms));
                put(days(user_now - u.first_ms));
                put(u.recency_rank as f32);
            }
            None => {
                [0.0, 0.0, 0.0, f32::NAN, f32::NAN, f32::NAN]
                    .into_iter()
                    .for_each(&mut put);
            }
        }
        match info.category {
            Some(c) => {
                put(f32::from(u8::from(user.recent_categories.contains(&c))));
                let share = user.by_category.get(&c).copied().unwrap_or(0.0);
                put(if user.events > 0.0 {
                    share / user.events
                } else {
                    f32::NAN
                });
            }
            None => {
                put(f32::NAN);
                put(f32::NAN);
            }
        }
        // Session.
        put(user.session_events);
        put(user
            .session_last_ms
            .map_or(f32::NAN, |t| (user_now - t) as f32 / 60_000.0));
        let session = ui.map_or([0.0; 2], |u| u.session);
        put(session[0]);
        put(session[1]);
        // Repeat.
        put(if stats.buyers[i] > 0.0 {
            stats.repeaters[i] / stats.buyers[i]
        } else {
            f32::NAN
        });
        let gap = ui.filter(|u| u.cart_days >= 2).and_then(|u| {
            let last_day = u.last_cart_ms?.div_euclid(DAY_MS);
            Some((last_day - u.first_cart_day) as f32 / (u.cart_days - 1) as f32)
        });
        let since = ui.and_then(|u| u.last_cart_ms).map(|t| days(user_now - t));
        put(gap.unwrap_or(f32::NAN));
        put(since.unwrap_or(f32::NAN));
        put(match (since, gap) {
            (Some(since), Some(gap)) if gap > 0.0 => since / gap,
            _ => f32::NAN,
        });
        debug_assert_eq!(col, row.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::EventLog;
    use crate::rank::candidates::N_SOURCES;

    fn column(name: &str) -> usize {
        feature_names().iter().position(|n| n == name).unwrap()
    }

    #[test]
    fn names_are_unique_and_match_the_row_width() {
        let mut names = feature_names().to_vec();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        assert_eq!(n, 2 * N_SOURCES + 9 + 4 + 9 + 9 + 8 + 4 + 4);
    }

    #[test]
    fn counts_windows_and_missing_values() {
        let now = 100 * DAY_MS;
        let mut log = EventLog::default();
        log.push(now - 40 * DAY_MS, 1, EventKind::View, 10);
        log.push(now - 10 * DAY_MS, 1, EventKind::View, 10);
        log.push(now - DAY_MS, 1, EventKind::AddToCart, 10);
        log.push(now - 2 * DAY_MS, 1, EventKind::View, 11);
        log.push(now - 3 * DAY_MS, 2, EventKind::View, 10);
        log.sort_dedup();
        let train = Arc::new(TrainSet::new(&log, now));
        let i10 = train.items.get(10).unwrap();
        let i11 = train.items.get(11).unwrap();
        let mut info = vec![ItemInfo::default(); train.items.len()];
        info[i10 as usize] = ItemInfo {
            category: Some(5),
            parent: Some(1),
            available: Some(true),
        };
        let ctx = FeatureContext::new(train.clone(), Arc::new(info), 5);
        let mut cands = Candidates {
            offsets: vec![0, 2, 3],
            ..Candidates::default()
        };
        for item in [i10, i11, i10] {
            cands.items.push(item);
            cands.scores.push([f32::NAN; N_SOURCES]);
            cands.ranks.push([f32::NAN; N_SOURCES]);
        }
        cands.scores[0][0] = 0.5;
        let u1 = train.users.get(1);
        let rows = ctx.build(
            &[
                Context::new(&train, u1, &[]),
                Context::new(&train, None, &[]),
            ],
            &cands,
        );
        let w = n_features();
        let at = |row: usize, name: &str| rows[row * w + column(name)];
        assert_eq!(at(0, "als_score"), 0.5);
        assert!(at(0, "als_rank").is_nan() && at(1, "als_score").is_nan());
        assert_eq!(at(0, "user_views_7d"), 1.0);
        assert_eq!(at(0, "user_views_30d"), 2.0);
        assert_eq!(at(0, "user_views_all"), 3.0);
        assert_eq!(at(0, "user_carts_7d"), 1.0);
        assert_eq!(at(0, "user_days_since_last"), 1.0);
        assert_eq!(at(0, "user_days_since_first"), 40.0);
        assert_eq!(at(0, "item_views_all"), 3.0);
        assert_eq!(at(0, "item_users"), 2.0);
        assert_eq!(at(0, "item_carts_30d"), 1.0);
        assert_eq!(at(0, "item_category"), 5.0);
        assert_eq!(at(0, "item_available"), 1.0);
        assert_eq!(at(0, "category_carts_30d"), 1.0);
        assert_eq!(at(0, "ui_views"), 2.0);
        assert_eq!(at(0, "ui_carts"), 1.0);
        assert_eq!(at(0, "ui_days_since_last"), 1.0);
        assert_eq!(at(0, "ui_recency_rank"), 1.0);
        assert_eq!(at(0, "ui_recent_category"), 1.0);
        assert_eq!(at(0, "ui_category_share"), 0.75);
        // Item 11 has no known category: category features are missing, not 0.
        assert!(at(1, "item_category").is_nan() && at(1, "ui_recent_category").is_nan());
        assert_eq!(at(1, "ui_recency_rank"), 2.0);
        // A user unknown to the period: zero counts, unknown recency.
        assert_eq!(at(2, "user_views_all"), 0.0);
        assert!(at(2, "user_days_since_last").is_nan());
        assert_eq!(at(2, "ui_views"), 0.0);
        assert!(at(2, "ui_days_since_last").is_nan());
        assert!(at(2, "ui_category_share").is_nan());
    }

    #[test]
    fn session_and_repeat_features_on_a_hand_built_log() {
        let now = 100 * DAY_MS;
        let min = 60_000;
        let mut log = EventLog::default();
        // Shopper 1 carts item 10 on days 70, 80 and 90 (a 10-day rhythm) ...
        for day in [70, 80, 90] {
            log.push(day * DAY_MS, 1, EventKind::AddToCart, 10);
        }
        // ... twice on day 90 (one cart day), and shopper 2 carts it once.
        log.push(90 * DAY_MS + 5 * min, 1, EventKind::AddToCart, 10);
        log.push(50 * DAY_MS, 2, EventKind::AddToCart, 10);
        // Shopper 1's latest session: views of 11 and 12, 20 minutes apart,
        // after a gap of more than 30 minutes.
        log.push(now - 3 * 60 * min, 1, EventKind::View, 12);
        log.push(now - 40 * min, 1, EventKind::View, 11);
        log.push(now - 20 * min, 1, EventKind::View, 12);
        log.sort_dedup();
        let train = Arc::new(TrainSet::new(&log, now));
        let info = vec![ItemInfo::default(); train.items.len()];
        let ctx = FeatureContext::new(train.clone(), Arc::new(info), 5);
        let item = |raw| train.items.get(raw).unwrap();
        let mut cands = Candidates {
            offsets: vec![0, 3],
            ..Candidates::default()
        };
        for i in [item(10), item(11), item(12)] {
            cands.items.push(i);
            cands.scores.push([f32::NAN; N_SOURCES]);
            cands.ranks.push([f32::NAN; N_SOURCES]);
        }
        let rows = ctx.build(&[Context::new(&train, train.users.get(1), &[])], &cands);
        let w = n_features();
        let at = |row: usize, name: &str| rows[row * w + column(name)];
        // Of item 10's two buyers one came back on another day.
        assert_eq!(at(0, "item_repeat_rate"), 0.5);
        assert!(at(1, "item_repeat_rate").is_nan(), "nobody carted 11");
        // Cart days 70, 80, 90: a 10-day gap, last cart 10 days (minus 5 minutes) ago.
        assert_eq!(at(0, "ui_cart_gap_days"), 10.0);
        let since = at(0, "ui_days_since_last_cart");
        assert!((since - (10.0 - 5.0 / 1440.0)).abs() < 1e-4, "{since}");
        assert!((at(0, "ui_cart_due") - since / 10.0).abs() < 1e-6);
        assert!(at(1, "ui_cart_gap_days").is_nan() && at(1, "ui_cart_due").is_nan());
        // The session: the two views 40 and 20 minutes ago; the one 3 hours ago is another visit.
        assert_eq!(at(0, "session_events"), 2.0);
        assert_eq!(at(0, "session_minutes_since_last"), 20.0);
        assert_eq!(
            (at(1, "ui_session_views"), at(2, "ui_session_views")),
            (1.0, 1.0)
        );
        assert_eq!(at(0, "ui_session_views"), 0.0);
        assert_eq!(at(2, "ui_views"), 2.0);
        // A new event starts the session over: a cart of 11 five minutes later joins it.
        let new = [crate::models::Event {
            item: item(11),
            kind: EventKind::AddToCart,
            timestamp_ms: now + 5 * min,
        }];
        let rows = ctx.build(&[Context::new(&train, train.users.get(1), &new)], &cands);
        let at = |row: usize, name: &str| rows[row * w + column(name)];
        assert_eq!(at(0, "session_events"), 3.0);
        assert_eq!(at(0, "session_minutes_since_last"), 0.0);
        assert_eq!(at(1, "ui_session_carts"), 1.0);
    }
}
