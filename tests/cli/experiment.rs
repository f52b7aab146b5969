//! `recsys experiment simulate`: an A/B test replayed over a generated log's
//! test window must find a clearly better bundle better, and two identical
//! bundles not different.

use serde_json::Value;

use super::*;

/// Generated data with its own config, a full bundle and a popular-only one.
fn two_bundles() -> (Scratch, String, String, String) {
    let s = Scratch::default_data();
    let data = s.path("gen");
    ok(&s.run(&[
        "generate",
        "--users",
        "12000",
        "--items",
        "1500",
        "--events",
        "160000",
        "--seed",
        "3",
        "--out",
        &data.display().to_string(),
    ]));
    let events = data.join("events.csv").display().to_string();
    let popular = s.path("popular.toml");
    let config = std::fs::read_to_string(s.config()).unwrap().replace(
        "enabled = [\"popular\", \"history\", \"als\", \"two_stage\"]",
        "enabled = [\"popular\"]",
    );
    assert!(config.contains("enabled = [\"popular\"]"));
    std::fs::write(&popular, config).unwrap();
    let best = s.path("best").display().to_string();
    ok(&s.run(&[
        "train",
        "--events",
        &events,
        "--cutoff",
        "2015-09-01",
        "--out",
        &best,
    ]));
    let pop = s.path("pop").display().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_recsys"))
        .args([
            "train",
            "--events",
            &events,
            "--cutoff",
            "2015-09-01",
            "--out",
            &pop,
        ])
        .arg("--config")
        .arg(&popular)
        .output()
        .unwrap();
    ok(&out);
    (s, events, best, pop)
}

fn simulate(s: &Scratch, events: &str, a: &str, b: &str) -> Value {
    let out = ok(&s.run(&[
        "experiment",
        "simulate",
        "--bundle-a",
        a,
        "--bundle-b",
        b,
        "--events",
        events,
        "--cutoff",
        "2015-09-01",
        "--json",
    ]));
    serde_json::from_str(out.trim()).expect("stdout is one JSON object")
}

#[test]
fn simulation_finds_the_better_bundle_and_no_difference_between_equals() {
    let (s, events, best, pop) = two_bundles();
    let ab = simulate(&s, &events, &pop, &best);
    let (a, b) = (&ab["variants"][0], &ab["variants"][1]);
    assert_eq!(ab["enough_data"], true, "{ab}");
    assert!(b["rate"].as_f64() > a["rate"].as_f64(), "{ab}");
    assert!(b["p_value"].as_f64().unwrap() < 0.05, "{ab}");
    assert!(b["attributed_add_to_carts"].as_u64().unwrap() > 0);
    // Every shopper of the window was answered, each in one variant.
    let shoppers = a["shoppers"].as_u64().unwrap() + b["shoppers"].as_u64().unwrap();
    assert!(shoppers > 200, "{ab}");

    let aa = simulate(&s, &events, &best, &best);
    assert!(
        aa["variants"][1]["p_value"].as_f64().unwrap() >= 0.05,
        "{aa}"
    );
    // Same log, same assignment: the same shoppers as in the A/B run.
    let aa_shoppers: u64 = aa["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["shoppers"].as_u64().unwrap())
        .sum();
    assert_eq!(aa_shoppers, shoppers);
    // A replay is deterministic.
    assert_eq!(simulate(&s, &events, &best, &best), aa);
}

#[test]
fn simulation_refuses_a_window_the_bundle_was_trained_on() {
    let s = Scratch::default_data();
    ok(&s.run(&["train"]));
    let bundle = s.bundles()[0].display().to_string();
    let out = s.run(&[
        "experiment",
        "simulate",
        "--bundle-a",
        &bundle,
        "--bundle-b",
        &bundle,
        "--cutoff",
        "2015-08-01",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("trained up to 2015-09-01") && err.contains("--cutoff"),
        "{err}"
    );
}
