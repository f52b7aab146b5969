//! `recsys evaluate --cutoffs` / `--folds`: train at each cutoff, evaluate on
//! the window up to the next one, pool the shoppers.

use std::collections::HashSet;

use serde_json::Value;

use super::*;

const DAY: i64 = 86_400_000;
/// 2015-08-18 and 2015-08-25, UTC ms.
const CUT: [i64; 2] = [1_439_856_000_000, 1_440_460_800_000];

/// Visitors with an add-to-cart in `[from, until)` of the embedded data:
/// the strict protocol's test users of that window.
fn carting_visitors(from: i64, until: i64) -> usize {
    let text = std::fs::read_to_string(repo().join("data/events_u100_i300.csv")).unwrap();
    let mut users = HashSet::new();
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let t: i64 = cells[0].parse().unwrap();
        if cells[2] == "addtocart" && (from..until).contains(&t) {
            users.insert(cells[1].to_string());
        }
    }
    users.len()
}

#[test]
fn rolling_cutoffs_pool_each_windows_shoppers_once() {
    let s = Scratch::default_data();
    let out = ok(&s.run(&[
        "evaluate",
        "--cutoffs",
        "2015-08-18,2015-08-25",
        "--test-days",
        "5",
        "--bootstrap",
        "200",
        "--json",
    ]));
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    let folds = report["cutoffs"].as_array().unwrap();
    assert_eq!(folds.len(), 2, "{report}");
    let expected = [
        carting_visitors(CUT[0], CUT[1]),
        carting_visitors(CUT[1], CUT[1] + 5 * DAY),
    ];
    for (fold, want) in folds.iter().zip(expected) {
        assert_eq!(fold["users"].as_u64().unwrap() as usize, want, "{fold}");
    }
    assert_eq!(fold_until(&folds[1]), "2015-08-30");
    assert_eq!(
        report["users"].as_u64().unwrap() as usize,
        expected.iter().sum::<usize>()
    );
    let warm = report["segments"]["warm"]["users"].as_u64().unwrap();
    let cold = report["segments"]["cold"]["users"].as_u64().unwrap();
    assert_eq!(warm + cold, report["users"].as_u64().unwrap());
    // Every model has a pooled value inside its own interval.
    for (name, m) in report["models"].as_object().unwrap() {
        let (v, ci) = (m["recall"].as_f64().unwrap(), &m["recall_ci"]);
        assert!(
            ci[0].as_f64().unwrap() <= v && v <= ci[1].as_f64().unwrap(),
            "{name}: {m}"
        );
    }
    // Nothing was written: rolling trains in memory.
    assert!(s.bundles().is_empty());
}

fn fold_until(fold: &Value) -> &str {
    fold["until"].as_str().unwrap()
}

#[test]
fn folds_end_at_the_data_and_bad_cutoffs_are_named() {
    let s = Scratch::default_data();
    let out = ok(&s.run(&[
        "evaluate",
        "--folds",
        "3",
        "--fold-days",
        "7",
        "--bootstrap",
        "0",
    ]));
    assert!(out.contains("pooled over 3 cutoffs"), "{out}");
    assert!(!out.contains("95% intervals"), "{out}");
    let bad = s.run(&["evaluate", "--cutoffs", "2015-08-25,2015-08-18"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--cutoffs") && err.contains("increasing"),
        "{err}"
    );
    let bad = s.run(&["evaluate", "--cutoffs", "2015-13-01"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--cutoffs"));
}
