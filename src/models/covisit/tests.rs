//! Co-visitation counts on hand-built logs, the bounded build against a
//! slow reference, and answers from a context.

use std::collections::HashMap;

use super::build::build;
use super::*;
use crate::data::time::DAY_MS;
use crate::data::{EventKind, EventLog};
use crate::models::{Event, Ranked};
use crate::rng::Rng;

use EventKind::{AddToCart as Cart, Transaction as Buy, View};

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;
const T0: i64 = 1_440_000_000_000;

/// A training set of `(ms after T0, shopper, kind, raw item)` events.
fn log(events: &[(i64, i64, EventKind, i64)]) -> TrainSet {
    let mut log = EventLog::default();
    for &(t, shopper, kind, item) in events {
        log.push(T0 + t, shopper, kind, item);
    }
    log.sort_dedup();
    let end = log.timestamp_ms.iter().max().copied().unwrap_or(T0);
    TrainSet::new(&log, end + 1)
}

fn fit(train: &TrainSet, config: CovisitConfig) -> Covisit {
    Covisit::fit(train, &config).unwrap().0
}

/// `C_m(a, b)` by raw item ids; `None` when `b` is not among `a`'s neighbours.
fn weight(cv: &Covisit, train: &TrainSet, m: Matrix, a: i64, b: i64) -> Option<f32> {
    let (a, b) = (train.items.get(a)?, train.items.get(b)?);
    let (items, weights) = cv.matrix(m).of(a);
    items.iter().position(|&x| x == b).map(|p| weights[p])
}

fn hours(window_hours: f32, cart_window_days: f32) -> CovisitConfig {
    CovisitConfig {
        window_hours,
        cart_window_days,
        ..CovisitConfig::default()
    }
}

#[test]
fn covisit_counts_a_pair_exactly_at_the_window_edge_and_not_one_ms_beyond() {
    let train = log(&[
        // At the edge of the 1-hour window, both ways.
        (0, 1, View, 10),
        (HOUR, 1, View, 11),
        // One millisecond beyond.
        (0, 2, View, 12),
        (HOUR + 1, 2, View, 13),
        // Carts a day apart: bought together (1-day window), never `any`.
        (0, 3, Cart, 20),
        (DAY_MS, 3, Buy, 21),
        (2 * DAY_MS + 1, 3, Cart, 22),
    ]);
    let cv = fit(&train, hours(1.0, 1.0));
    let w = |m, a, b| weight(&cv, &train, m, a, b);
    assert!(w(Matrix::Any, 10, 11).is_some() && w(Matrix::Any, 11, 10).is_some());
    assert_eq!(w(Matrix::Any, 12, 13), None);
    assert_eq!(w(Matrix::Any, 13, 12), None);
    assert_eq!(w(Matrix::BoughtTogether, 20, 21), Some(1.0));
    assert_eq!(w(Matrix::BoughtTogether, 21, 20), Some(1.0));
    assert_eq!(w(Matrix::BoughtTogether, 21, 22), None, "a day and 1 ms");
    assert_eq!(w(Matrix::BoughtTogether, 20, 22), None);
    assert_eq!(w(Matrix::Any, 20, 21), None, "a day is beyond an hour");
    // Views never make a bought-together pair, however close.
    assert_eq!(w(Matrix::BoughtTogether, 10, 11), None);
}

#[test]
fn covisit_time_weights_grow_from_one_to_four_and_a_shopper_counts_once() {
    let train = log(&[
        // The log spans 100 hours.
        (0, 1, View, 1),
        (0, 1, View, 2),
        (49 * HOUR, 2, View, 1),
        (50 * HOUR, 2, View, 2),
        (99 * HOUR, 3, View, 3),
        (100 * HOUR, 3, View, 4),
        // Back and forth: one vote, at its latest time (3 h).
        (0, 4, View, 5),
        (HOUR, 4, View, 6),
        (2 * HOUR, 4, View, 5),
        (3 * HOUR, 4, View, 6),
    ]);
    let cv = fit(&train, CovisitConfig::default());
    let w = |a, b| weight(&cv, &train, Matrix::Any, a, b).unwrap();
    let close = |got: f32, want: f32| (got - want).abs() < 1e-5;
    // tw(0) = 1 and tw(50 h) = 2.5, summed over two shoppers.
    assert!(close(w(1, 2), 3.5) && close(w(2, 1), 3.5), "{}", w(1, 2));
    assert!(close(w(3, 4), 4.0), "{}", w(3, 4));
    assert!(close(w(5, 6), 1.0 + 3.0 * 3.0 / 100.0), "{}", w(5, 6));
}

#[test]
fn covisit_view_then_cart_is_directed_and_timed_from_the_last_view() {
    let train = log(&[
        // Viewed 1, carted 2 an hour later: 1 → 2 only.
        (0, 1, View, 1),
        (HOUR, 1, Cart, 2),
        // Carted 3, then viewed 4: no view → cart pair either way.
        (0, 2, Cart, 3),
        (10 * MINUTE, 2, View, 4),
        // Viewed 5, viewed 6 at 30 min and carted it at 90 min: close
        // visits, but the cart came 90 min after the view of 5.
        (0, 3, View, 5),
        (30 * MINUTE, 3, View, 6),
        (90 * MINUTE, 3, Cart, 6),
        // Viewed 7 and carted it; carted 8 exactly an hour after the view.
        (0, 4, View, 7),
        (50 * MINUTE, 4, Cart, 7),
        (HOUR, 4, Cart, 8),
    ]);
    let cv = fit(&train, hours(1.0, 1.0));
    let w = |m, a, b| weight(&cv, &train, m, a, b);
    assert_eq!(w(Matrix::ViewCart, 1, 2), Some(1.0));
    assert_eq!(w(Matrix::ViewCart, 2, 1), None);
    assert_eq!(w(Matrix::ViewCart, 3, 4), None);
    assert_eq!(w(Matrix::ViewCart, 4, 3), None);
    assert_eq!(w(Matrix::ViewCart, 5, 6), None);
    assert!(w(Matrix::Any, 5, 6).is_some());
    assert_eq!(w(Matrix::ViewCart, 7, 8), Some(1.0));
    assert_eq!(w(Matrix::BoughtTogether, 7, 8), Some(1.0));
}

#[test]
fn covisit_collapses_consecutive_events_and_pairs_only_the_latest_steps() {
    let train = log(&[
        (0, 1, View, 9),
        (MINUTE, 1, View, 1),
        (2 * MINUTE, 1, View, 1),
        (3 * MINUTE, 1, Cart, 1),
        (4 * MINUTE, 1, View, 2),
        (5 * MINUTE, 1, View, 3),
    ]);
    let config = CovisitConfig {
        max_events_per_user: 3,
        ..CovisitConfig::default()
    };
    let cv = fit(&train, config);
    let w = |a, b| weight(&cv, &train, Matrix::Any, a, b);
    // Steps 9, 1, 2, 3: item 9 is the fourth latest and pairs with nothing,
    // though the three events on 1 are one step.
    assert_eq!(w(9, 1), None);
    assert_eq!(w(9, 2), None);
    for (a, b) in [(1, 2), (1, 3), (2, 3)] {
        assert!(w(a, b).is_some(), "{a} {b}");
    }
    // One vote for (1, 2), at 2's time.
    let tw = 1.0 + 3.0 * 4.0 / 5.0;
    assert!((w(1, 2).unwrap() - tw).abs() < 1e-5, "{:?}", w(1, 2));
    // With room for all four steps, 9 pairs too.
    let cv = fit(&train, CovisitConfig::default());
    assert!(weight(&cv, &train, Matrix::Any, 9, 1).is_some());
}

#[test]
fn covisit_rows_keep_the_top_neighbours_with_ties_to_the_lower_item() {
    // Item 100 carted with 1 by three shoppers, with 2 and 3 by two each, 4 by one.
    let mut events = Vec::new();
    for (shopper, other) in [
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 2),
        (5, 2),
        (6, 3),
        (7, 3),
        (8, 4),
    ] {
        events.push((0, shopper, Cart, 100));
        events.push((MINUTE, shopper, Cart, other));
    }
    let train = log(&events);
    let config = CovisitConfig {
        neighbours: 2,
        ..CovisitConfig::default()
    };
    let cv = fit(&train, config);
    let item = |raw| train.items.get(raw).unwrap();
    // 2 and 3 tie at two votes; 2 has the lower index (it appeared first).
    assert!(item(2) < item(3));
    let (items, weights) = cv.matrix(Matrix::BoughtTogether).of(item(100));
    assert_eq!((items, weights), (&[item(1), item(2)][..], &[3.0, 2.0][..]));
    assert!(cv.matrix(Matrix::ViewCart).items.is_empty(), "no views");
    let (items, _) = cv.matrix(Matrix::Any).of(item(100));
    assert_eq!(items.len(), 2, "every row is pruned");
    let (items, weights) = cv.matrix(Matrix::BoughtTogether).of(item(4));
    assert_eq!((items, weights), (&[item(100)][..], &[1.0][..]));
}

/// Random shoppers whose consecutive events are on different items (so each
/// event is one step) at increasing times.
fn random_log(seed: u64) -> TrainSet {
    let mut rng = Rng::new(seed);
    let mut events = Vec::new();
    for shopper in 0..300 {
        let mut t = rng.below(60 * DAY_MS as u64) as i64;
        let mut last = -1;
        for _ in 0..1 + rng.below(12) {
            let mut item = rng.below(30) as i64;
            while item == last {
                item = rng.below(30) as i64;
            }
            last = item;
            let kind = match rng.below(10) {
                0..=6 => View,
                7 | 8 => Cart,
                _ => Buy,
            };
            events.push((t, shopper, kind, item));
            t += 1 + rng.below(3 * DAY_MS as u64) as i64 / (1 + rng.below(20) as i64);
        }
    }
    log(&events)
}

/// The matrices by their definition: every pair of events of every shopper.
fn reference(train: &TrainSet, config: &CovisitConfig) -> [Vec<Vec<Scored>>; 3] {
    let window = (f64::from(config.window_hours) * HOUR as f64) as i64;
    let cart_window = (f64::from(config.cart_window_days) * DAY_MS as f64) as i64;
    let t_min = *train.timestamp_ms.iter().min().unwrap();
    let t_max = *train.timestamp_ms.iter().max().unwrap();
    let tw = |t: i64| 1.0 + 3.0 * (t - t_min) as f64 / (t_max - t_min) as f64;
    let mut sums: HashMap<(usize, u32, u32), f64> = HashMap::new();
    for u in 0..train.users.len() as u32 {
        let mut votes: HashMap<(usize, u32, u32), f64> = HashMap::new();
        let mut vote = |m: usize, a: u32, b: u32, w: f64| {
            let v = votes.entry((m, a, b)).or_insert(0.0);
            *v = v.max(w);
        };
        let events: Vec<usize> = train.user_events(u).collect();
        for (i, &e) in events.iter().enumerate() {
            for &f in &events[i + 1..] {
                let (a, b) = (train.item[e], train.item[f]);
                let dt = train.timestamp_ms[f] - train.timestamp_ms[e];
                if a == b {
                    continue;
                }
                if dt <= window {
                    vote(0, a, b, tw(train.timestamp_ms[f]));
                    vote(0, b, a, tw(train.timestamp_ms[f]));
                    if train.kind[e] == View && train.kind[f] == Cart {
                        vote(1, a, b, 1.0);
                    }
                }
                if dt <= cart_window && train.kind[e] != View && train.kind[f] != View {
                    vote(2, a, b, 1.0);
                    vote(2, b, a, 1.0);
                }
            }
        }
        for (key, w) in votes {
            *sums.entry(key).or_insert(0.0) += w;
        }
    }
    let n_items = train.items.len();
    let mut out: [Vec<Vec<Scored>>; 3] = Default::default();
    for rows in &mut out {
        rows.resize(n_items, Vec::new());
    }
    for ((m, a, b), w) in sums {
        out[m][a as usize].push((b, w as f32));
    }
    for rows in &mut out {
        for row in rows {
            row.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            row.truncate(config.neighbours);
        }
    }
    out
}

#[test]
fn covisit_bounded_passes_build_what_the_definition_says() {
    for seed in [1, 2, 3] {
        let train = random_log(seed);
        let config = CovisitConfig {
            neighbours: 5,
            max_events_per_user: 50,
            ..CovisitConfig::default()
        };
        let (one, stats) = build(&train, &config, PASS_ENTRIES);
        assert_eq!(stats.passes, 1);
        let (many, stats) = build(&train, &config, 40);
        assert!(stats.passes > 10, "{stats:?}");
        assert_eq!(one, many, "seed {seed}: the passes change nothing");
        let want = reference(&train, &config);
        for m in Matrix::ALL {
            for a in 0..train.items.len() as u32 {
                let (items, weights) = one[m as usize].of(a);
                let expected = &want[m as usize][a as usize];
                let got: Vec<u32> = items.to_vec();
                let exp: Vec<u32> = expected.iter().map(|x| x.0).collect();
                assert_eq!(got, exp, "seed {seed} {} row {a}", m.name());
                for (w, x) in weights.iter().zip(expected) {
                    assert!((w - x.1).abs() <= 1e-5 * x.1, "{w} vs {}", x.1);
                }
            }
        }
        assert!(
            one.iter().all(|n| !n.items.is_empty()),
            "every matrix has pairs"
        );
    }
}

/// Viewed together: item 1 with 2 (by every shopper) and 3 (every other
/// one); 5 with 6; 7 with 8.
fn neighbourhoods() -> TrainSet {
    let mut events = Vec::new();
    for shopper in 0..6 {
        let t = shopper * HOUR;
        events.push((t, shopper, View, 1));
        events.push((t + MINUTE, shopper, View, 2));
        if shopper % 2 == 0 {
            events.push((t + 2 * MINUTE, shopper, View, 3));
        }
        for (group, (a, b)) in [(100, (5, 6)), (200, (7, 8))] {
            events.push((t, group + shopper, View, a));
            events.push((t + MINUTE, group + shopper, View, b));
        }
    }
    log(&events)
}

#[test]
fn covisit_answers_a_new_shopper_from_new_events_alone() {
    let train = neighbourhoods();
    let cv = fit(&train, CovisitConfig::default());
    let item = |raw| train.items.get(raw).unwrap();
    let none = Filter::none();
    let new = [Event {
        item: item(1),
        kind: View,
        timestamp_ms: train.cutoff_ms + HOUR,
    }];
    let ctx = Context::new(&train, None, &new);
    let got = cv.recommend(&ctx, 5, &none);
    let items: Vec<u32> = got.iter().map(|g| g.0).collect();
    assert_eq!(items, [item(2), item(3)]);
    assert!(got[0].1 > got[1].1);
    let explained = cv.explain(&ctx, 5, &none);
    assert_eq!(
        explained[0],
        Ranked {
            item: item(2),
            score: got[0].1,
            sources: vec!["covisit"]
        }
    );
    assert!(cv
        .recommend(&Context::new(&train, None, &[]), 5, &none)
        .is_empty());
    assert!(cv.recommend(&ctx, 0, &none).is_empty());
    // The filter removes, and nothing else comes in.
    let refused = cv.recommend(&ctx, 5, &Filter::excluding(vec![item(2)]));
    assert_eq!(refused, [got[1]]);
}

#[test]
fn covisit_weighs_sources_by_recency_and_kind() {
    let train = neighbourhoods();
    let cv = fit(&train, CovisitConfig::default());
    let item = |raw| train.items.get(raw).unwrap();
    let at = |raw, kind, minutes: i64| Event {
        item: item(raw),
        kind,
        timestamp_ms: train.cutoff_ms + minutes * MINUTE,
    };
    let order = |events: &[Event]| -> Vec<u32> {
        let ctx = Context::new(&train, None, events);
        let got = cv.recommend(&ctx, 10, &Filter::none());
        got.iter().map(|g| g.0).collect()
    };
    // The neighbour of the latest item comes first.
    assert_eq!(order(&[at(7, View, 1), at(5, View, 2)]), [item(6), item(8)]);
    assert_eq!(order(&[at(5, View, 1), at(7, View, 2)]), [item(8), item(6)]);
    // A cart outweighs one step of recency: 3 · 2^(−1/5) > 1.
    assert_eq!(
        order(&[at(7, View, 1), at(7, Cart, 2), at(5, View, 3)]),
        [item(8), item(6)]
    );
    // A returning shopper: their training items count as well.
    let u = train.users.get(0).unwrap();
    let ctx = Context::known(&train, u);
    assert!(!cv.recommend(&ctx, 5, &Filter::none()).is_empty());
}

#[test]
fn covisit_settings_that_cannot_work_are_named() {
    let base = CovisitConfig::default();
    assert_eq!(base.validate(), Ok(()));
    let cases: [(CovisitConfig, &str); 7] = [
        (hours(0.0, 14.0), "window_hours"),
        (hours(24.0, f32::NAN), "cart_window_days"),
        (
            CovisitConfig {
                neighbours: 0,
                ..base.clone()
            },
            "neighbours",
        ),
        (
            CovisitConfig {
                max_events_per_user: 1,
                ..base.clone()
            },
            "max_events_per_user",
        ),
        (
            CovisitConfig {
                half_life_items: -1.0,
                ..base.clone()
            },
            "half_life_items",
        ),
        (
            CovisitConfig {
                matrix_weights: MatrixWeights {
                    any: 0.0,
                    view_cart: 0.0,
                    bought_together: 0.0,
                },
                ..base.clone()
            },
            "matrix_weights",
        ),
        (
            CovisitConfig {
                source_weights: EventWeights {
                    view: -1.0,
                    ..base.source_weights
                },
                ..base.clone()
            },
            "source_weights.view",
        ),
    ];
    for (config, key) in cases {
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(&format!("[models.covisit] {key} =")), "{err}");
        assert!(Covisit::fit(&neighbourhoods(), &config).is_err());
    }
    // The config file is checked on load.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[models.covisit]\nrecent_items = 0\n").unwrap();
    let err = format!("{:#}", crate::config::Config::load(&path).unwrap_err());
    assert!(err.contains("recent_items"), "{err}");
}
