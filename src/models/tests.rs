//! Checks of the single-stage models' live behaviour; the suite every
//! trained model must pass (two_stage included) is `crate::training`'s `suite`.

use super::*;
use crate::data::{interaction_matrix, EventKind, EventLog, TrainSet};

/// Two taste groups: even users view even items 0..10, odd users odd items;
/// user u misses item u % 10 — a model learning the groups should suggest it.
pub(crate) fn checkerboard() -> TrainSet {
    let mut log = EventLog::default();
    let mut t = 1_000_000i64;
    for user in 0..40i64 {
        for item in 0..10i64 {
            if item % 2 == user % 2 && item != user % 10 {
                t += 1000;
                let kind = if (user + item) % 3 == 0 {
                    EventKind::AddToCart
                } else {
                    EventKind::View
                };
                log.push(t, user, kind, item);
            }
        }
    }
    log.sort_dedup();
    TrainSet::new(&log, t + 1)
}

pub(crate) fn every_model(train: &TrainSet) -> Vec<Box<dyn Recommender>> {
    let als_config = AlsConfig {
        factors: 8,
        iterations: 10,
        regularization: 0.1,
        alpha: 2.0,
        cg_steps: 3,
        ..AlsConfig::default()
    };
    let matrix = interaction_matrix(train, &als_config.weights);
    vec![
        Box::new(Popular::fit(train, &PopularConfig::default())),
        Box::new(History::fit(train, &HistoryConfig::default())),
        Box::new(Als::fit(&matrix, &als_config, |_, _| {}).unwrap()),
    ]
}

#[test]
fn history_merges_new_events_into_the_decayed_history() {
    let train = checkerboard();
    let history = History::fit(&train, &HistoryConfig::default());
    let none = Filter::none();
    let u = train.users.get(0).unwrap();
    let before = history.recommend(&Context::known(&train, u), 3, &none);
    // A cart of an item the user never touched, a day after training: it leads.
    let odd = train.items.get(1).unwrap();
    let new = [Event {
        item: odd,
        kind: EventKind::AddToCart,
        timestamp_ms: train.cutoff_ms + crate::data::time::DAY_MS,
    }];
    let after = history.recommend(&Context::new(&train, Some(u), &new), 3, &none);
    assert_eq!(after[0].0, odd);
    // The old items keep their order behind it, each decayed by the same day.
    assert_eq!(after[1].0, before[0].0);
    assert_eq!(after[2].0, before[1].0);
    let ratio = after[1].1 / before[0].1;
    assert!((ratio - 0.5f32.powf(1.0 / 7.0)).abs() < 1e-4, "{ratio}");
    // Years later the order still holds (log-space scores do not underflow).
    let late = [Event {
        timestamp_ms: train.cutoff_ms + 3_000 * crate::data::time::DAY_MS,
        ..new[0]
    }];
    let years = history.recommend(&Context::new(&train, Some(u), &late), 3, &none);
    assert_eq!(
        years.iter().map(|r| r.0).collect::<Vec<_>>(),
        after.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    // A brand-new shopper's events alone make a list.
    let cold = history.recommend(&Context::new(&train, None, &new), 3, &none);
    assert_eq!(cold.len(), 1);
}

#[test]
fn a_new_shopper_with_two_views_gets_als_scores() {
    let train = checkerboard();
    let models = every_model(&train);
    let als = &models[2];
    let (i2, i4) = (train.items.get(2).unwrap(), train.items.get(4).unwrap());
    let views = [
        Event {
            item: i2,
            kind: EventKind::View,
            timestamp_ms: train.cutoff_ms,
        },
        Event {
            item: i4,
            kind: EventKind::View,
            timestamp_ms: train.cutoff_ms + 1,
        },
    ];
    let got = als.recommend(&Context::new(&train, None, &views), 3, &Filter::none());
    assert_eq!(got.len(), 3);
    // Two even items viewed: the even taste group comes back.
    let even: Vec<u32> = (0..10)
        .step_by(2)
        .map(|i| train.items.get(i).unwrap())
        .collect();
    assert!(got.iter().all(|g| even.contains(&g.0)), "{got:?}");
}

#[test]
fn excluded_items_never_come_back_and_lists_stay_full() {
    let train = checkerboard();
    for model in every_model(&train) {
        for user in 0..train.users.len() as u32 {
            let ctx = Context::known(&train, user);
            let all = model.recommend(&ctx, 10, &Filter::none());
            let refuse: Vec<u32> = all.iter().take(2).map(|r| r.0).collect();
            let filtered = model.recommend(&ctx, 3, &Filter::excluding(refuse.clone()));
            assert!(
                filtered.iter().all(|r| !refuse.contains(&r.0)),
                "{}",
                model.name()
            );
            if all.len() >= 5 {
                assert_eq!(
                    filtered.len(),
                    3,
                    "{} refills after excluding",
                    model.name()
                );
            }
        }
    }
}
