//! `recsys tune` and `recsys train --tune`: settings searched on a validation
//! window before the cutoff, written as a snippet or a new config.

use serde_json::Value;

use super::*;

#[test]
fn tune_searches_reports_and_writes_a_config_that_trains() {
    let s = Scratch::default_data();
    let out = ok(&s.run(&[
        "tune",
        "--trials",
        "4",
        "--only",
        "models.history.half_life_days,models.history.weights.addtocart",
        "--model",
        "history",
        "--write",
        &s.path("tuned.toml").display().to_string(),
        "--json",
    ]));
    let tuned: Value = serde_json::from_str(out.trim()).unwrap();
    let trials = tuned["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4, "{tuned}");
    assert_eq!(tuned["objective"], "history");
    // The validation window ends at the test cutoff: the test window is not read.
    assert_eq!(tuned["cutoff"], "2015-09-01");
    assert_eq!(tuned["valid_from"], "2015-08-18");
    // Trial 0 is the config as given; the best is never worse than it.
    assert_eq!(trials[0]["params"]["models.history.half_life_days"], 7.0);
    let best = &trials[tuned["best"].as_u64().unwrap() as usize];
    assert!(best["score"].as_f64() >= trials[0]["score"].as_f64());
    for t in trials {
        assert_eq!(t["params"].as_object().unwrap().len(), 2, "{t}");
        assert_eq!(t["score"], t["scores"]["history"]);
    }
    // The written config holds the best values and trains.
    let written = std::fs::read_to_string(s.path("tuned.toml")).unwrap();
    let half_life = best["params"]["models.history.half_life_days"]
        .as_f64()
        .unwrap();
    let table: toml::Table = toml::from_str(&written).unwrap();
    let got = table["models"]["history"]["half_life_days"]
        .as_float()
        .unwrap();
    assert!(
        (got - half_life).abs() <= 1e-3 * half_life,
        "{got} vs {half_life}"
    );
    let train = Command::new(env!("CARGO_BIN_EXE_recsys"))
        .args(["train", "--config", "tuned.toml", "--out", "tuned-out"])
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    ok(&train);
}

#[test]
fn train_with_tune_trains_the_best_and_bad_requests_are_named() {
    let s = Scratch::default_data();
    let out = s.run(&[
        "train",
        "--tune",
        "--trials",
        "2",
        "--only",
        "models.als.factors",
    ]);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tuned: trial"), "{err}");
    assert_eq!(s.bundles().len(), 1);
    // An unknown setting, an impossible window and a write elsewhere are refused.
    let bad = s.run(&["tune", "--only", "models.als.factorz"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("models.als.factorz"));
    let bad = s.run(&["tune", "--valid-days", "400", "--trials", "1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("valid_days"));
    let bad = s.run(&["tune", "--write", "/tmp/elsewhere/tuned.toml"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("next to"));
}
