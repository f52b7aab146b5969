//! The suite every model must pass: shape of the answer, determinism, and a
//! planted preference each model should pick up in its own way.

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

fn every_model(train: &TrainSet) -> Vec<Box<dyn Recommender>> {
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
fn answers_are_at_most_n_distinct_known_items_best_first() {
    let train = checkerboard();
    for model in every_model(&train) {
        for user in 0..train.users.len() as u32 {
            for n in [0, 1, 3, 50] {
                let recs = model.recommend(Some(user), n);
                assert!(recs.len() <= n, "{}: {} > {n}", model.name(), recs.len());
                let mut items: Vec<u32> = recs.iter().map(|r| r.0).collect();
                assert!(items.iter().all(|&i| (i as usize) < train.items.len()));
                items.sort_unstable();
                items.dedup();
                assert_eq!(items.len(), recs.len(), "{} repeats an item", model.name());
                assert!(
                    recs.windows(2).all(|w| w[0].1 >= w[1].1),
                    "{} is not sorted best first",
                    model.name()
                );
            }
        }
    }
}

#[test]
fn batch_answers_equal_single_answers_and_cold_users_are_handled() {
    let train = checkerboard();
    for model in every_model(&train) {
        let users: Vec<Option<u32>> = vec![Some(0), None, Some(3), Some(999)];
        let batch = model.recommend_batch(&users, 5);
        for (u, list) in users.iter().zip(&batch) {
            assert_eq!(list, &model.recommend(*u, 5), "{}", model.name());
        }
        if model.name() == "popular" {
            assert_eq!(batch[1].len(), 5, "popular must serve cold users");
        } else {
            assert!(
                batch[1].is_empty(),
                "{} invents items for a cold user",
                model.name()
            );
        }
    }
}

#[test]
fn training_twice_gives_the_same_answers() {
    let train = checkerboard();
    let (a, b) = (every_model(&train), every_model(&train));
    for (x, y) in a.iter().zip(&b) {
        for user in 0..train.users.len() as u32 {
            assert_eq!(
                x.recommend(Some(user), 10),
                y.recommend(Some(user), 10),
                "{}",
                x.name()
            );
        }
    }
}

#[test]
fn excluding_seen_items_removes_them_and_refills() {
    let ranked = vec![(5, 3.0), (1, 2.0), (7, 1.0), (2, 0.5)];
    assert_eq!(exclude_seen(ranked, &[1, 5], 2), vec![(7, 1.0), (2, 0.5)]);
}
