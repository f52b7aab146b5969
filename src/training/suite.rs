//! The suite every model recsys trains must pass, two_stage included: each is
//! fitted through [`fit`] on data with a planted preference, then asked as the
//! engine asks it. The suite enables every name of `MODEL_NAMES`, opt-in
//! models included, so registering a model puts it under these checks.

use std::path::Path;

use super::{fit, Prepared};
use crate::bundle::Bundle;
use crate::config::{Config, MODEL_NAMES};
use crate::data::time::DAY_MS;
use crate::data::{split, EventKind, EventLog, LoadedEvents, Protocol, TrainSet};
use crate::models::{Context, Event, Filter};
use crate::rng::Rng;

const USERS: i64 = 120;
const ITEMS: i64 = 40;
const DAYS: i64 = 120;

/// Two taste groups over 120 days: user `u` views and carts items of parity
/// `u % 2` only, a few times a week; item 0 (even) and 1 (odd) are each
/// group's favourite. Training ends at day 100.
fn planted() -> (Prepared, i64) {
    let mut rng = Rng::new(5);
    let mut log = EventLog::default();
    let start = 1_400_000_000_000i64;
    for user in 0..USERS {
        let group = user % 2;
        for _ in 0..30 {
            let t = start + rng.below((DAYS * DAY_MS) as u64) as i64;
            // Favourite half the time, else any item of the group.
            let item = if rng.chance(0.3) {
                group
            } else {
                group + 2 * rng.below((ITEMS / 2) as u64) as i64
            };
            let kind = if rng.chance(0.25) {
                EventKind::AddToCart
            } else {
                EventKind::View
            };
            log.push(t, 1000 + user, kind, 100 + item);
        }
    }
    log.sort_dedup();
    let cutoff = start + 100 * DAY_MS;
    let split = split(&log, cutoff, Protocol::Strict);
    let train = TrainSet::new(&split.train, cutoff);
    let prepared = Prepared {
        events_path: "planted.csv".into(),
        loaded: LoadedEvents {
            log,
            skipped_rows: 0,
            first_skipped: None,
            duplicates_removed: 0,
        },
        item_features: None,
        items_seconds: 0.0,
        split,
        train,
    };
    (prepared, cutoff)
}

fn config() -> Config {
    let mut config = Config::default();
    let m = &mut config.models;
    m.enabled = MODEL_NAMES.iter().map(|s| s.to_string()).collect();
    m.als.factors = 8;
    m.als.iterations = 10;
    m.als.regularization = 0.1;
    m.two_stage.label_days = 20;
    m.two_stage.label_windows = 2;
    m.two_stage.reranker.num_trees = 30;
    m.two_stage.reranker.min_data_in_leaf = 5;
    // The planted data has no purchases to exclude; keep carted items so that
    // the groups' favourites stay recommendable.
    config.rules.exclude_carted = false;
    config
}

fn trained() -> &'static Bundle {
    static BUNDLE: std::sync::OnceLock<Bundle> = std::sync::OnceLock::new();
    BUNDLE.get_or_init(|| {
        let (prepared, _) = planted();
        fit(&config(), &prepared).expect("every model fits the planted data")
    })
}

fn group_of_item(bundle: &Bundle, item: u32) -> i64 {
    (bundle.items.raw(item) - 100) % 2
}

#[test]
fn every_registered_model_is_trained_and_suited() {
    let bundle = trained();
    let names: Vec<&str> = bundle.models().iter().map(|m| m.name()).collect();
    assert_eq!(names, MODEL_NAMES, "the suite covers every model");
}

#[test]
fn planted_preferences_come_back_first() {
    let bundle = trained();
    let train = &bundle.train;
    for model in bundle.models() {
        let mut in_group = 0usize;
        let mut asked = 0usize;
        for u in 0..train.users.len() as u32 {
            let group = (bundle.users.raw(u) - 1000) % 2;
            let list = model.recommend(&Context::known(train, u), 5, &Filter::none());
            if model.name() == "popular" {
                continue;
            }
            asked += list.len();
            in_group += list
                .iter()
                .filter(|r| group_of_item(bundle, r.0) == group)
                .count();
        }
        if model.name() == "popular" {
            // The favourites are the most carted items.
            let top: Vec<i64> = model
                .recommend(&Context::new(train, None, &[]), 2, &Filter::none())
                .iter()
                .map(|r| bundle.items.raw(r.0))
                .collect();
            assert!(top.contains(&100) && top.contains(&101), "popular: {top:?}");
            continue;
        }
        let share = in_group as f64 / asked.max(1) as f64;
        assert!(
            share >= 0.9,
            "{}: {share:.2} of items from the user's group",
            model.name()
        );
    }
}

#[test]
fn answers_are_at_most_n_distinct_allowed_items_best_first_and_deterministic() {
    let bundle = trained();
    let again = {
        let (prepared, _) = planted();
        fit(&config(), &prepared).unwrap()
    };
    let train = &bundle.train;
    let refuse = Filter::excluding(vec![0, 1, 2]);
    for (model, twin) in bundle.models().into_iter().zip(again.models()) {
        for u in 0..train.users.len() as u32 {
            let ctx = Context::known(train, u);
            for n in [0, 1, 7, 60] {
                let list = model.recommend(&ctx, n, &refuse);
                assert!(list.len() <= n, "{}", model.name());
                let mut items: Vec<u32> = list.iter().map(|r| r.0).collect();
                assert!(items.iter().all(|&i| refuse.allows(i)), "{}", model.name());
                items.sort_unstable();
                items.dedup();
                assert_eq!(items.len(), list.len(), "{} repeats an item", model.name());
                assert!(
                    list.windows(2).all(|w| w[0].1 >= w[1].1),
                    "{} is not best first",
                    model.name()
                );
            }
            assert_eq!(
                model.recommend(&ctx, 10, &Filter::none()),
                twin.recommend(&ctx, 10, &Filter::none()),
                "{} trained twice answers differently",
                model.name()
            );
        }
    }
}

#[test]
fn batch_answers_equal_single_answers_and_empty_contexts_are_handled() {
    let bundle = trained();
    let train = &bundle.train;
    let new = [Event {
        item: 0,
        kind: EventKind::View,
        timestamp_ms: train.cutoff_ms + DAY_MS,
    }];
    let ctxs = vec![
        Context::known(train, 0),
        Context::new(train, None, &[]),
        Context::new(train, Some(3), &new),
        Context::new(train, None, &new),
    ];
    let filters = vec![Filter::none(); ctxs.len()];
    for model in bundle.models() {
        let batch = model.recommend_batch(&ctxs, 5, &filters);
        for (ctx, list) in ctxs.iter().zip(&batch) {
            assert_eq!(
                list,
                &model.recommend(ctx, 5, &Filter::none()),
                "{}",
                model.name()
            );
        }
        if model.name() == "popular" {
            assert_eq!(batch[1].len(), 5, "popular serves everyone");
        } else {
            assert!(
                batch[1].is_empty(),
                "{} invents items for nobody",
                model.name()
            );
            assert!(
                !batch[3].is_empty(),
                "{} ignores a new shopper's view",
                model.name()
            );
        }
    }
}

#[test]
fn a_saved_and_loaded_bundle_answers_identically() {
    let bundle = trained();
    let dir = tempfile::tempdir().unwrap();
    let saved = bundle.save(dir.path()).unwrap();
    let loaded = Bundle::load(&saved).unwrap();
    let train = &bundle.train;
    let new = [Event {
        item: 3,
        kind: EventKind::AddToCart,
        timestamp_ms: train.cutoff_ms + 2 * DAY_MS,
    }];
    for (model, back) in bundle.models().into_iter().zip(loaded.models()) {
        assert_eq!(model.name(), back.name());
        for u in 0..train.users.len() as u32 {
            for ctx in [Context::known(train, u), Context::new(train, Some(u), &new)] {
                let other = Context::new(&loaded.train, ctx.user, ctx.new);
                assert_eq!(
                    model.recommend(&ctx, 10, &Filter::none()),
                    back.recommend(&other, 10, &Filter::none()),
                    "{} differs after a round trip",
                    model.name()
                );
            }
        }
    }
    assert!(Path::new(&saved).join("manifest.json").is_file());
}
