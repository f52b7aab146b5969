//! Replay evaluation: the test window fed to the engine event by event, as the
//! service receives it, with every add-to-cart predicted from the moment before.
//!
//! The batch evaluation ([`evaluate`](super::evaluate)) asks each model once per
//! test shopper, from their training history alone, and judges the list against
//! everything they carted in the window. The service answers differently: it
//! reads what `POST /events` recorded so far, so a shopper's third add-to-cart is
//! predicted from the two before it and the views around them, and the items
//! already carted are no longer offered. [`replay`] measures that answer:
//!
//! * each test shopper's window events are taken in time order (events of equal
//!   time keep the log's order). At every *first* add-to-cart of an item, the
//!   engine's state just before it is asked for `k` items: the shopper's
//!   training history plus the window's events before it, made into a context
//!   and a filter by the engine's own functions, with no request exclusions.
//!   A later re-cart of the same item is not asked again: the service excludes
//!   carted items, so it could never be hit;
//! * every model of the bundle answers through [`Engine::answer_batch`], item
//!   for item what [`Engine::answer`] returns (the model's items, then popular
//!   ones filling to `k`), and the entry [`SERVED`] is the engine's served
//!   model, what `GET /recommendations` returns.
//!
//! Per model, over all shoppers and apart for *warm* (known to training) and
//! *cold* ones ([`ReplayMetrics`]):
//!
//! * hit rate@k = asks whose carted item is in the list / asks;
//! * MRR@k = mean over asks of 1 / rank of the carted item (0 when absent);
//! * precision@k and recall@k per shopper: at each ask the relevant items are
//!   those the shopper carts from then on (this ask's item and their later
//!   first carts); precision = relevant items in the list / k, recall = relevant
//!   items in the list / relevant items. Each is averaged over the shopper's
//!   asks, then over shoppers, so a shopper with fifty carts weighs as much as
//!   one with a single cart.
//!
//! Carted items training never saw still count as asks and as relevant items
//! ([`ReplayCounts::unknown_items`] says how many): no model can recommend them,
//! and leaving them out would flatter every model on a catalogue that turns over.
//!
//! One difference from the service remains: its event store keeps only the
//! latest `[serve] events_per_user` events of a shopper, while a replay keeps
//! every event of the window; the two agree while a shopper has no more.

use std::collections::HashSet;

use rayon::prelude::*;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::data::{EventKind, EventLog};
use crate::engine::{Engine, ShopperEvent};
use crate::models::{Context, Event, Filter, Scored};

/// The name of the entry holding the service's answer (the engine's model).
pub const SERVED: &str = "served";

/// Asks answered per batch, so memory stays bounded whatever the window's size.
const CHUNK: usize = 4096;

/// How many shoppers and add-to-carts a group of a replay holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ReplayCounts {
    /// Shoppers with at least one add-to-cart asked.
    pub shoppers: usize,
    /// Add-to-carts asked: first carts of an item in the window.
    pub add_to_carts: usize,
    /// Of which of items training never saw (no model can hit them).
    pub unknown_items: usize,
}

/// One model's replay metrics over a group of shoppers.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct ReplayMetrics {
    /// Share of asks whose carted item is in the list.
    pub hit_rate: f64,
    /// Mean reciprocal rank of the carted item (0 when absent).
    pub mrr: f64,
    /// Mean over shoppers of their mean precision@k.
    pub precision: f64,
    /// Mean over shoppers of their mean recall@k.
    pub recall: f64,
}

/// One model's replay metrics, overall and per segment.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayResult {
    /// The model's name, or [`SERVED`].
    pub name: String,
    /// Over all shoppers asked.
    pub all: ReplayMetrics,
    /// Over shoppers known to training.
    pub warm: ReplayMetrics,
    /// Over shoppers first seen in the test window.
    pub cold: ReplayMetrics,
}

/// Everything a replay found.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayReport {
    /// List length asked for.
    pub k: usize,
    /// The engine's model, whose answers the [`SERVED`] entry holds.
    pub served_model: String,
    /// Counts over all shoppers asked.
    pub all: ReplayCounts,
    /// Counts over shoppers known to training.
    pub warm: ReplayCounts,
    /// Counts over shoppers first seen in the test window.
    pub cold: ReplayCounts,
    /// Per model of the bundle, then [`SERVED`].
    pub results: Vec<ReplayResult>,
}

/// One test shopper's window, ready to replay.
struct Shopper {
    /// Raw `visitorid`.
    visitor: i64,
    /// Dense training index, `None` for a cold shopper.
    user: Option<u32>,
    /// The window's events on items training knows, as the engine reads them
    /// ([`Engine::context_events`]), in time order.
    events: Vec<Event>,
    /// The add-to-carts asked, in time order.
    asks: Vec<Ask>,
    /// `(item, ask)` of every asked item training knows, by item.
    carted: Vec<(u32, usize)>,
}

/// One add-to-cart to predict.
struct Ask {
    /// How many of the shopper's `events` came before it.
    before: usize,
    /// The carted item, `None` if training never saw it.
    item: Option<u32>,
}

/// The test shoppers with at least one add-to-cart, in visitor order.
fn shoppers(engine: &Engine, test: &EventLog) -> Vec<Shopper> {
    let bundle = engine.bundle();
    let mut order: Vec<usize> = (0..test.len()).collect();
    // Stable: events of equal time keep the log's order.
    order.sort_by_key(|&i| (test.visitor[i], test.timestamp_ms[i]));
    order
        .chunk_by(|&a, &b| test.visitor[a] == test.visitor[b])
        .filter_map(|group| {
            let raw: Vec<ShopperEvent> = group
                .iter()
                .map(|&i| ShopperEvent {
                    item_id: test.item[i],
                    kind: test.kind[i],
                    timestamp_ms: test.timestamp_ms[i],
                })
                .collect();
            // Already in time order, so the engine keeps this order and a
            // prefix of `raw` becomes a prefix of `events`.
            let events = engine.context_events(&raw);
            let mut asks = Vec::new();
            let mut asked: HashSet<i64> = HashSet::new();
            let mut known = 0;
            for e in &raw {
                let item = bundle.items.get(e.item_id);
                if e.kind == EventKind::AddToCart && asked.insert(e.item_id) {
                    asks.push(Ask {
                        before: known,
                        item,
                    });
                }
                known += usize::from(item.is_some());
            }
            debug_assert_eq!(known, events.len());
            if asks.is_empty() {
                return None;
            }
            let mut carted: Vec<(u32, usize)> = asks
                .iter()
                .enumerate()
                .filter_map(|(j, a)| a.item.map(|item| (item, j)))
                .collect();
            carted.sort_unstable();
            let visitor = test.visitor[group[0]];
            Some(Shopper {
                visitor,
                user: bundle.users.get(visitor),
                events,
                asks,
                carted,
            })
        })
        .collect()
}

/// The requests of `asks` (shopper, ask): each shopper's context just before
/// the add-to-cart and the filter the service would apply to it.
fn requests<'a>(
    engine: &'a Engine,
    shoppers: &'a [Shopper],
    asks: &[(usize, usize)],
) -> (Vec<Context<'a>>, Vec<Filter>) {
    let ctxs: Vec<Context> = asks
        .iter()
        .map(|&(s, j)| {
            let shopper = &shoppers[s];
            engine.context(shopper.visitor, &shopper.events[..shopper.asks[j].before])
        })
        .collect();
    let filters = ctxs
        .par_iter()
        .map(|ctx| engine.filter(ctx, &[], None))
        .collect();
    (ctxs, filters)
}

/// Sums of one shopper's asks for one model.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    hits: f64,
    reciprocal_rank: f64,
    precision: f64,
    recall: f64,
}

impl Sums {
    /// Score `list` for ask `j` of `shopper` and add it.
    fn add(&mut self, shopper: &Shopper, j: usize, list: &[Scored], k: usize) {
        let carted = shopper.asks[j].item;
        let n_relevant = shopper.asks.len() - j;
        let mut found = 0usize;
        for (rank, &(item, _)) in list.iter().take(k).enumerate() {
            if Some(item) == carted {
                self.hits += 1.0;
                self.reciprocal_rank += 1.0 / (rank + 1) as f64;
            }
            // Relevant: carted at this ask or a later one.
            if let Ok(p) = shopper.carted.binary_search_by_key(&item, |c| c.0) {
                found += usize::from(shopper.carted[p].1 >= j);
            }
        }
        self.precision += found as f64 / k as f64;
        self.recall += found as f64 / n_relevant as f64;
    }
}

/// Segments: all shoppers, warm ones, cold ones.
const ALL: usize = 0;
const WARM: usize = 1;
const COLD: usize = 2;

fn segment(shopper: &Shopper) -> usize {
    if shopper.user.is_some() {
        WARM
    } else {
        COLD
    }
}

/// The metrics of one model from its per-shopper sums, per segment.
fn metrics(shoppers: &[Shopper], sums: &[Sums]) -> [ReplayMetrics; 3] {
    let mut total = [ReplayMetrics::default(); 3];
    let mut asks = [0usize; 3];
    let mut people = [0usize; 3];
    for (shopper, s) in shoppers.iter().zip(sums) {
        let n = shopper.asks.len();
        for g in [ALL, segment(shopper)] {
            let t = &mut total[g];
            t.hit_rate += s.hits;
            t.mrr += s.reciprocal_rank;
            t.precision += s.precision / n as f64;
            t.recall += s.recall / n as f64;
            asks[g] += n;
            people[g] += 1;
        }
    }
    for g in [ALL, WARM, COLD] {
        let (a, p) = (asks[g].max(1) as f64, people[g].max(1) as f64);
        let t = &mut total[g];
        t.hit_rate /= a;
        t.mrr /= a;
        t.precision /= p;
        t.recall /= p;
    }
    total
}

/// Replay the test window `test` against `engine` at `k`: every model of its
/// bundle, then [`SERVED`] (see the module docs for what is asked and how it
/// is scored). `k` must be at least 1.
pub fn replay(engine: &Engine, test: &EventLog, k: usize) -> ReplayReport {
    assert!(k > 0, "a replay asks for at least one item");
    let shoppers = shoppers(engine, test);
    let asks: Vec<(usize, usize)> = shoppers
        .iter()
        .enumerate()
        .flat_map(|(s, shopper)| (0..shopper.asks.len()).map(move |j| (s, j)))
        .collect();
    let models = engine.bundle().models();
    let mut sums = vec![vec![Sums::default(); shoppers.len()]; models.len()];
    let bar = crate::progress::bar(asks.len() as u64, "replay");
    for chunk in asks.chunks(CHUNK) {
        let (ctxs, filters) = requests(engine, &shoppers, chunk);
        for (model, sums) in models.iter().zip(sums.iter_mut()) {
            let lists = engine.answer_batch(*model, &ctxs, &filters, k);
            for (&(s, j), list) in chunk.iter().zip(&lists) {
                sums[s].add(&shoppers[s], j, list, k);
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();

    let mut results: Vec<ReplayResult> = models
        .iter()
        .zip(&sums)
        .map(|(model, sums)| {
            let [all, warm, cold] = metrics(&shoppers, sums);
            ReplayResult {
                name: model.name().to_string(),
                all,
                warm,
                cold,
            }
        })
        .collect();
    // The engine's model is one of the bundle's, and answer_batch gives what
    // Engine::answer gives: the service's answers are that model's.
    if let Some(served) = results.iter().find(|r| r.name == engine.model) {
        results.push(ReplayResult {
            name: SERVED.to_string(),
            ..served.clone()
        });
    }
    let mut counts = [ReplayCounts::default(); 3];
    for shopper in &shoppers {
        for g in [ALL, segment(shopper)] {
            let c = &mut counts[g];
            c.shoppers += 1;
            c.add_to_carts += shopper.asks.len();
            c.unknown_items += shopper.asks.iter().filter(|a| a.item.is_none()).count();
        }
    }
    ReplayReport {
        k,
        served_model: engine.model.to_string(),
        all: counts[ALL],
        warm: counts[WARM],
        cold: counts[COLD],
        results,
    }
}

/// The columns of the table, in JSON key order.
const COLUMNS: [&str; 4] = ["hit_rate", "mrr", "precision", "recall"];

fn values(m: &ReplayMetrics) -> [f64; 4] {
    [m.hit_rate, m.mrr, m.precision, m.recall]
}

impl ReplayReport {
    /// The `"replay"` object of `evaluate --replay --json`:
    /// `{"k":10,"served_model":"two_stage","shoppers":N,"add_to_carts":N,"unknown_items":N,
    /// "models":{"als":{"hit_rate":…,"mrr":…,"precision":…,"recall":…},…,"served":{…}},
    /// "segments":{"warm":{"shoppers":N,"add_to_carts":N,"unknown_items":N,"models":{…}},"cold":{…}}}`.
    pub fn to_json(&self) -> Value {
        let models = |pick: fn(&ReplayResult) -> &ReplayMetrics| -> Value {
            let mut map = Map::new();
            for r in &self.results {
                map.insert(
                    r.name.clone(),
                    serde_json::to_value(pick(r)).expect("metrics serialise"),
                );
            }
            Value::Object(map)
        };
        let group = |c: &ReplayCounts, models: Value| {
            json!({
                "shoppers": c.shoppers,
                "add_to_carts": c.add_to_carts,
                "unknown_items": c.unknown_items,
                "models": models,
            })
        };
        let mut out = group(&self.all, models(|r| &r.all));
        out["k"] = json!(self.k);
        out["served_model"] = json!(self.served_model);
        out["segments"] = json!({
            "warm": group(&self.warm, models(|r| &r.warm)),
            "cold": group(&self.cold, models(|r| &r.cold)),
        });
        out
    }

    /// A plain-text table: models × metrics, overall then per segment.
    pub fn to_table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "replay of the test window, k = {}: {} add-to-carts of {} shoppers asked in time order \
             ({} of items training never saw); `{SERVED}` is the service's answer ({})",
            self.k, self.all.add_to_carts, self.all.shoppers, self.all.unknown_items, self.served_model
        );
        type Pick = fn(&ReplayResult) -> &ReplayMetrics;
        let sections: [(&str, &ReplayCounts, Pick); 3] = [
            ("all shoppers", &self.all, |r| &r.all),
            ("warm shoppers", &self.warm, |r| &r.warm),
            ("cold shoppers", &self.cold, |r| &r.cold),
        ];
        for (title, counts, pick) in sections {
            if counts.shoppers == 0 {
                continue;
            }
            let _ = writeln!(
                out,
                "\nreplay, {title} ({}, {} add-to-carts)",
                counts.shoppers, counts.add_to_carts
            );
            let _ = write!(out, "{:<10}", "model");
            for c in COLUMNS {
                let _ = write!(out, " {:>12}", format!("{c}@{}", self.k));
            }
            out.push('\n');
            for r in &self.results {
                let _ = write!(out, "{:<10}", r.name);
                for v in values(pick(r)) {
                    let _ = write!(out, " {v:>12.4}");
                }
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::bundle::{Bundle, DataSummary, Manifest, FORMAT_VERSION};
    use crate::config::Config;
    use crate::data::{ItemInfo, Protocol, TrainSet};
    use crate::engine::{EngineSettings, Request};
    use crate::models::{History, HistoryConfig, Popular, PopularConfig};

    const A: i64 = 10;
    const B: i64 = 20;
    const C: i64 = 30;
    const D: i64 = 40;
    /// An item training never saw.
    const NEW: i64 = 999;

    /// A bundle with popular and history trained on four items before t = 1000,
    /// served by `model` (default: popular), and a test window after it.
    ///
    /// Popular ranks A (2 carts), C (1 cart, 2 views), B (1 cart, 1 view), D (1 view).
    fn tiny(model: Option<&str>) -> (Engine, EventLog) {
        use EventKind::{AddToCart as Cart, View};
        let mut log = EventLog::default();
        for (t, visitor, kind, item) in [
            (1, 1, Cart, A),
            (2, 1, View, B),
            (3, 2, Cart, A),
            (4, 2, Cart, B),
            (5, 2, View, C),
            (6, 3, View, C),
            (7, 3, View, D),
            (8, 3, Cart, C),
        ] {
            log.push(t, visitor, kind, item);
        }
        log.sort_dedup();
        let train = TrainSet::new(&log, 1000);
        let mut test = EventLog::default();
        for (t, visitor, kind, item) in [
            // Warm shopper 1: three items carted, C twice.
            (1001, 1, View, C),
            (1002, 1, Cart, C),
            (1003, 1, Cart, B),
            (1004, 1, Cart, C),
            (1005, 1, Cart, A),
            // Warm shopper 3 carts what popular ranks last.
            (1020, 3, Cart, D),
            // Cold shopper 9 carts D and an item training never saw.
            (1010, 9, Cart, D),
            (1011, 9, Cart, NEW),
            (1012, 9, View, A),
            // Shopper 2 only looks: nothing to ask.
            (1030, 2, View, A),
        ] {
            test.push(t, visitor, kind, item);
        }
        test.sort_dedup();
        let n_items = train.items.len();
        let bundle = Bundle {
            manifest: Manifest {
                format_version: FORMAT_VERSION,
                run_id: "tiny".into(),
                created_at: "2015-09-01T00:00:00+00:00".into(),
                recsys_version: "test".into(),
                cutoff_ms: 1000,
                protocol: Protocol::Strict,
                data: DataSummary {
                    events_path: "tiny".into(),
                    fingerprint: "0".into(),
                    events: log.len() + test.len(),
                    train_events: train.len(),
                    users: train.users.len(),
                    items: n_items,
                },
                models: vec!["popular".into(), "history".into()],
                training: Value::Null,
                config: Config::default(),
            },
            users: train.users.clone(),
            items: train.items.clone(),
            item_info: Arc::new(vec![ItemInfo::default(); n_items]),
            popular: Some(Arc::new(Popular::fit(&train, &PopularConfig::default()))),
            history: Some(Arc::new(History::fit(&train, &HistoryConfig::default()))),
            als: None,
            covisit: None,
            two_stage: None,
            train: Arc::new(train),
        };
        let settings = EngineSettings {
            model: model.map(String::from),
            ..EngineSettings::default()
        };
        let engine = Engine::from_bundle(bundle, Path::new("tiny"), &settings).unwrap();
        (engine, test)
    }

    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() < 1e-12
    }

    fn assert_metrics(got: &ReplayMetrics, want: [f64; 4], what: &str) {
        assert!(
            values(got).iter().zip(want).all(|(&g, w)| close(g, w)),
            "{what}: expected (hit_rate, mrr, precision, recall) {want:?}, got {got:?}"
        );
    }

    /// Every ask's list from `model`, as raw ids, in the replay's order.
    fn replay_lists(engine: &Engine, test: &EventLog, model: &str, k: usize) -> Vec<Vec<i64>> {
        let shoppers = shoppers(engine, test);
        let asks: Vec<(usize, usize)> = shoppers
            .iter()
            .enumerate()
            .flat_map(|(s, shopper)| (0..shopper.asks.len()).map(move |j| (s, j)))
            .collect();
        let (ctxs, filters) = requests(engine, &shoppers, &asks);
        let model = engine.model(model).unwrap();
        let items = &engine.bundle().items;
        engine
            .answer_batch(model, &ctxs, &filters, k)
            .iter()
            .map(|list| list.iter().map(|&(i, _)| items.raw(i)).collect())
            .collect()
    }

    /// The service's answers, one request at a time: for every visitor (in
    /// order) and every first add-to-cart of an item, `Engine::answer` with
    /// the visitor's window events before it.
    fn service_lists(engine: &Engine, test: &EventLog, k: usize) -> Vec<Vec<i64>> {
        let mut visitors: Vec<i64> = test.visitor.clone();
        visitors.sort_unstable();
        visitors.dedup();
        let mut out = Vec::new();
        for visitor in visitors {
            let mut events: Vec<ShopperEvent> = (0..test.len())
                .filter(|&i| test.visitor[i] == visitor)
                .map(|i| ShopperEvent {
                    item_id: test.item[i],
                    kind: test.kind[i],
                    timestamp_ms: test.timestamp_ms[i],
                })
                .collect();
            events.sort_by_key(|e| e.timestamp_ms);
            let mut carted = Vec::new();
            for (p, e) in events.iter().enumerate() {
                if e.kind != EventKind::AddToCart || carted.contains(&e.item_id) {
                    continue;
                }
                carted.push(e.item_id);
                let answer = engine
                    .answer(&Request::new(visitor, &events[..p], k))
                    .unwrap();
                out.push(answer.recommendations.iter().map(|r| r.item_id).collect());
            }
        }
        out
    }

    #[test]
    fn popular_replay_matches_a_hand_computed_one() {
        let (engine, test) = tiny(None);
        let report = replay(&engine, &test, 2);
        assert_eq!(report.k, 2);
        assert_eq!(report.served_model, "popular");
        let count = |shoppers, add_to_carts, unknown_items| ReplayCounts {
            shoppers,
            add_to_carts,
            unknown_items,
        };
        // Shopper 2 carted nothing; shopper 1's re-cart of C is not asked.
        assert_eq!(report.all, count(3, 6, 1));
        assert_eq!(report.warm, count(2, 4, 0));
        assert_eq!(report.cold, count(1, 2, 1));
        let names: Vec<&str> = report.results.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["popular", "history", SERVED]);
        let popular = &report.results[0];
        // Shopper 1, lists of two:
        //   C carted: [A, C], hit at 2; relevant {C, B, A}: P 2/2, R 2/3;
        //   B carted: C excluded, [A, B], hit at 2; relevant {B, A}: P 1, R 1;
        //   A carted: C, B excluded, [A, D], hit at 1; relevant {A}: P 1/2, R 1.
        // Shopper 3: D carted: [A, C], a miss.
        // Shopper 9 (cold): D carted, then NEW: [A, C] twice, two misses.
        let (p1, r1) = ((1.0 + 1.0 + 0.5) / 3.0, (2.0 / 3.0 + 1.0 + 1.0) / 3.0);
        let rr = 0.5 + 0.5 + 1.0;
        assert_metrics(
            &popular.all,
            [3.0 / 6.0, rr / 6.0, p1 / 3.0, r1 / 3.0],
            "all",
        );
        assert_metrics(
            &popular.warm,
            [3.0 / 4.0, rr / 4.0, p1 / 2.0, r1 / 2.0],
            "warm",
        );
        assert_metrics(&popular.cold, [0.0; 4], "cold");
        assert_eq!(report.results[2].all, popular.all, "popular is served");
        assert_eq!(report.results[2].cold, popular.cold);
    }

    #[test]
    fn a_recart_is_asked_once_and_carted_items_leave_later_answers() {
        let (engine, test) = tiny(None);
        let lists = replay_lists(&engine, &test, "popular", 2);
        // Shopper 1 (C, B, A; C's re-cart not asked), shopper 3 (D), shopper 9 (D, NEW).
        assert_eq!(
            lists,
            [
                vec![A, C],
                vec![A, B],
                vec![A, D],
                vec![A, C],
                vec![A, C],
                vec![A, C]
            ]
        );
    }

    #[test]
    fn served_answers_are_the_services_item_for_item() {
        // History reads the window's events, so its answers change ask by ask.
        let (engine, test) = tiny(Some("history"));
        for k in [1, 2, 4] {
            assert_eq!(
                replay_lists(&engine, &test, engine.model, k),
                service_lists(&engine, &test, k),
                "k = {k}"
            );
        }
        let report = replay(&engine, &test, 2);
        assert_eq!(report.served_model, "history");
        let served = report.results.iter().find(|r| r.name == SERVED).unwrap();
        let history = report.results.iter().find(|r| r.name == "history").unwrap();
        assert_eq!((served.all, served.warm), (history.all, history.warm));
    }

    #[test]
    fn served_answers_on_the_embedded_data_are_the_services() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = Config::load(&root.join("config.toml")).unwrap();
        let cutoff = config.split.cutoff_rule().unwrap();
        let prepared =
            crate::training::prepare(&config, None, &cutoff, config.split.protocol).unwrap();
        let engine = Engine::from_bundle(
            crate::bundle::test_bundle().clone(),
            Path::new("test"),
            &EngineSettings::default(),
        )
        .unwrap();
        let test = &prepared.split.test;
        let ours = replay_lists(&engine, test, engine.model, 10);
        assert!(ours.len() > 20, "the extract has add-to-carts to replay");
        assert_eq!(ours, service_lists(&engine, test, 10));
        let report = replay(&engine, test, 10);
        assert_eq!(report.all.add_to_carts, ours.len());
        assert_eq!(
            report.all.shoppers,
            report.warm.shoppers + report.cold.shoppers
        );
        for r in &report.results {
            for v in values(&r.all) {
                assert!((0.0..=1.0).contains(&v), "{}: {v}", r.name);
            }
        }
    }

    #[test]
    fn json_and_table_name_every_model_and_segment() {
        let (engine, test) = tiny(None);
        let report = replay(&engine, &test, 2);
        let json = report.to_json();
        assert_eq!(json["add_to_carts"], 6);
        assert_eq!(json["served_model"], "popular");
        assert_eq!(json["segments"]["cold"]["unknown_items"], 1);
        assert!(close(
            json["models"][SERVED]["hit_rate"].as_f64().unwrap(),
            0.5
        ));
        assert!(json["segments"]["warm"]["models"]["history"]["mrr"].is_f64());
        let table = report.to_table();
        for needle in [
            "all shoppers",
            "warm shoppers",
            "cold shoppers",
            "hit_rate@2",
            "mrr@2",
        ] {
            assert!(table.contains(needle), "`{needle}` missing from:\n{table}");
        }
    }
}
