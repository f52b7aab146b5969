//! `recsys evaluate --replay`: the test window replayed as the service receives it.

use serde_json::Value;

use super::*;

#[test]
fn evaluate_replay_json_has_every_model_the_served_answer_and_both_segments() {
    let s = Scratch::default_data();
    ok(&s.run(&["train"]));
    let out = ok(&s.run(&["evaluate", "--k", "10", "--replay", "--json"]));
    let report: Value = serde_json::from_str(out.trim()).expect("stdout is one JSON object");
    let replay = &report["replay"];
    assert_eq!(replay["k"], 10, "{report}");
    assert_eq!(replay["served_model"], "two_stage");
    let carts = replay["add_to_carts"].as_u64().unwrap();
    let shoppers = replay["shoppers"].as_u64().unwrap();
    assert!(carts >= shoppers && shoppers > 0, "{replay}");
    for model in ["popular", "history", "als", "two_stage", "served"] {
        let m = &replay["models"][model];
        for metric in ["hit_rate", "mrr", "precision", "recall"] {
            let v = m[metric]
                .as_f64()
                .unwrap_or_else(|| panic!("{model}.{metric} missing: {replay}"));
            assert!((0.0..=1.0).contains(&v), "{model}.{metric} = {v}");
        }
        // A hit counts 1 in the hit rate and at most 1 in the MRR.
        assert!(m["mrr"].as_f64().unwrap() <= m["hit_rate"].as_f64().unwrap());
    }
    assert_eq!(replay["models"]["served"], replay["models"]["two_stage"]);
    let segment = |name: &str, key: &str| replay["segments"][name][key].as_u64().unwrap();
    assert_eq!(
        segment("warm", "shoppers") + segment("cold", "shoppers"),
        shoppers
    );
    assert_eq!(
        segment("warm", "add_to_carts") + segment("cold", "add_to_carts"),
        carts
    );
    // The batch evaluation is unchanged beside it.
    assert!(report["models"]["als"]["precision"].is_f64());
}

#[test]
fn evaluate_replay_table_has_a_replay_section_and_plain_evaluate_none() {
    let s = Scratch::default_data();
    ok(&s.run(&["train"]));
    let out = ok(&s.run(&["evaluate", "--k", "5", "--replay"]));
    for needle in ["replay, all shoppers", "hit_rate@5", "mrr@5", "served"] {
        assert!(out.contains(needle), "`{needle}` missing from:\n{out}");
    }
    let plain = ok(&s.run(&["evaluate", "--json"]));
    assert!(!plain.contains("\"replay\""), "{plain}");
}
