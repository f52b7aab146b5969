//! The main job on the embedded data: train, evaluate, recommend.

use serde_json::Value;

use super::*;

fn json(out: &Output) -> Value {
    serde_json::from_str(ok(out).trim()).expect("stdout is one JSON object")
}

const MODELS: [&str; 4] = ["popular", "history", "als", "two_stage"];
const METRICS: [&str; 6] = ["precision", "recall", "ndcg", "map", "hit_rate", "coverage"];

#[test]
fn train_then_evaluate_gives_the_json_contract_and_beats_random() {
    let s = Scratch::default_data();
    ok(&s.run(&["train"]));
    assert_eq!(s.bundles().len(), 1);
    let report = json(&s.run(&["evaluate", "--k", "10", "--json"]));
    assert_eq!(report["k"], 10);
    assert_eq!(report["protocol"], "strict");
    let users = report["users"].as_u64().unwrap();
    assert!(users > 20, "{report}");
    let n_items = {
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(s.bundles()[0].join("manifest.json")).unwrap())
                .unwrap();
        manifest["data"]["items"].as_f64().unwrap()
    };
    // A random list of 10 from the catalogue finds each relevant item with
    // probability 10 / items, which bounds a random recommender's recall.
    let random_recall = 10.0 / n_items;
    for model in MODELS {
        let m = &report["models"][model];
        for metric in METRICS {
            let v = m[metric]
                .as_f64()
                .unwrap_or_else(|| panic!("{model}.{metric} missing: {report}"));
            assert!((0.0..=1.0).contains(&v), "{model}.{metric} = {v}");
        }
        let recall = m["recall"].as_f64().unwrap();
        assert!(
            recall > 2.0 * random_recall,
            "{model} recall {recall} vs random {random_recall}"
        );
    }
    let warm = report["segments"]["warm"]["users"].as_u64().unwrap();
    let cold = report["segments"]["cold"]["users"].as_u64().unwrap();
    assert_eq!(warm + cold, users);
}

#[test]
fn table_output_lists_every_model_and_segment() {
    let s = Scratch::default_data();
    let out = ok(&s.run(&["train", "--evaluate"]));
    for needle in [
        "all users",
        "warm users",
        "precision@10",
        "recall@10",
        "popular",
        "history",
        "als",
    ] {
        assert!(out.contains(needle), "`{needle}` missing from:\n{out}");
    }
}

#[test]
fn reference_protocol_needs_a_reference_bundle() {
    let s = Scratch::default_data();
    ok(&s.run(&["train"]));
    let err = failed(&s.run(&["evaluate", "--protocol", "reference"]));
    assert!(err.contains("train with --protocol reference"), "{err}");
    ok(&s.run(&["train", "--protocol", "reference"]));
    let report = json(&s.run(&["evaluate", "--json"]));
    assert_eq!(report["protocol"], "reference");
    assert_eq!(
        report["segments"]["cold"]["users"], 0,
        "reference evaluates warm users only"
    );
    assert!(report["models"]["als"]["precision"].as_f64().unwrap() > 0.0);
}

#[test]
fn newest_bundle_wins_and_an_explicit_bundle_is_honoured() {
    let s = Scratch::default_data();
    ok(&s.run(&["train"]));
    ok(&s.run(&["train", "--cutoff", "2015-08-15"]));
    let bundles = s.bundles();
    assert_eq!(bundles.len(), 2);
    let newest = json(&s.run(&["evaluate", "--json"]));
    assert_eq!(newest["cutoff"], "2015-08-15");
    let first = bundles[0].display().to_string();
    let older = json(&s.run(&["evaluate", "--json", "--bundle", &first]));
    assert_eq!(older["cutoff"], "2015-09-01");
    let err = failed(&s.run(&["evaluate", "--bundle", &first, "--cutoff", "2015-08-01"]));
    assert!(err.contains("overlap"), "{err}");
}

#[test]
fn a_broken_bundle_is_reported_not_used() {
    let s = Scratch::default_data();
    ok(&s.run(&["train"]));
    let bundle = s.bundles().pop().unwrap();
    std::fs::write(bundle.join("als_item_factors.npy"), b"garbage").unwrap();
    let err = failed(&s.run(&["evaluate"]));
    assert!(err.contains("als_item_factors.npy"), "{err}");
    ok(&s.run(&["train"]));
    let newest = s.bundles().pop().unwrap();
    let trees = newest.join("two_stage_reranker.json");
    let text = std::fs::read_to_string(&trees).unwrap();
    // A tree pointing at a child that does not exist must not be scored.
    let broken = text.replacen("\"node\": 1\n", "\"node\": 99999\n", 1);
    assert_ne!(broken, text);
    std::fs::write(&trees, broken).unwrap();
    let err = failed(&s.run(&["evaluate"]));
    assert!(err.contains("two_stage_reranker.json"), "{err}");
    std::fs::write(&trees, b"{").unwrap();
    let err = failed(&s.run(&["evaluate"]));
    assert!(err.contains("two_stage_reranker.json"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = failed(&s.run(&["evaluate", "--bundle", &empty.path().display().to_string()]));
    assert!(err.contains("run `recsys train` first"), "{err}");
}

#[test]
fn recommend_for_known_and_unknown_users_and_items() {
    let s = Scratch::default_data();
    ok(&s.run(&["train"]));
    // 1150086 is the extract's most active visitor before the cutoff.
    let known = json(&s.run(&["recommend", "--user-id", "1150086", "--k", "5"]));
    assert_eq!(known["known_user"], true, "{known}");
    assert_eq!(
        known["model"], "two_stage",
        "the default when the bundle has it"
    );
    let recs = known["recommendations"].as_array().unwrap();
    assert_eq!(recs.len(), 5);
    let candidate_sources = ["als", "similar", "history", "popular", "category_popular"];
    for r in recs {
        assert!(r["item_id"].is_i64(), "{r}");
        let sources = r["sources"].as_array().unwrap();
        assert!(!sources.is_empty());
        assert!(sources
            .iter()
            .all(|s| candidate_sources.contains(&s.as_str().unwrap())));
        assert_eq!(r["source"], sources[0]);
    }

    let unknown = json(&s.run(&["recommend", "--user-id", "-1", "--k", "3"]));
    assert_eq!(unknown["known_user"], false);
    assert_eq!(unknown["model"], "popular");
    assert_eq!(unknown["recommendations"].as_array().unwrap().len(), 3);
    // The request's exclusions and category hold in the CLI too.
    let first = recs[0]["item_id"].as_i64().unwrap().to_string();
    let without = json(&s.run(&[
        "recommend",
        "--user-id",
        "1150086",
        "--k",
        "5",
        "--exclude",
        &first,
    ]));
    let ids: Vec<String> = without["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item_id"].to_string())
        .collect();
    assert_eq!(ids.len(), 5);
    assert!(!ids.contains(&first), "{without}");

    let history = json(&s.run(&[
        "recommend",
        "--user-id",
        "1150086",
        "--model",
        "history",
        "--k",
        "50",
    ]));
    let list = history["recommendations"].as_array().unwrap();
    assert_eq!(list.len(), 50, "filled up to k from popular: {history}");
    assert_eq!(list[0]["source"], "history");
    let mut ids: Vec<i64> = list
        .iter()
        .map(|r| r["item_id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 50, "no item twice");
    let err = failed(&s.run(&["recommend", "--user-id", "1", "--model", "magic"]));
    assert!(err.contains("no model `magic`"), "{err}");

    let item = known["recommendations"][0]["item_id"].as_i64().unwrap();
    let similar = json(&s.run(&["recommend", "--item-id", &item.to_string(), "--k", "4"]));
    let list = similar["similar"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    assert!(list.iter().all(|r| r["item_id"].as_i64() != Some(item)));
    let unknown_item = json(&s.run(&["recommend", "--item-id", "-5"]));
    assert_eq!(unknown_item["fallback"], "popular");
}

#[test]
fn generated_data_trains_and_evaluates_in_csv_and_parquet() {
    let s = Scratch::default_data();
    for format in ["csv", "parquet"] {
        let out_dir = s.path(&format!("gen-{format}"));
        let out = s.run(&[
            "generate",
            "--users",
            "3000",
            "--items",
            "500",
            "--events",
            "60000",
            "--seed",
            "3",
            "--format",
            format,
            "--out",
            &out_dir.display().to_string(),
        ]);
        ok(&out);
        let events = out_dir.join(format!("events.{format}"));
        assert!(events.is_file());
        let events = events.display().to_string();
        ok(&s.run(&["train", "--events", &events, "--cutoff", "2015-09-01"]));
        let report = json(&s.run(&["evaluate", "--json", "--events", &events]));
        assert!(report["users"].as_u64().unwrap() > 10, "{report}");
        assert!(
            report["models"]["history"]["recall"].as_f64().unwrap() > 0.0,
            "{report}"
        );
    }
}

#[test]
fn two_stage_reports_uplift_and_candidate_recall() {
    let s = Scratch::default_data();
    let out = s.run(&["train", "--evaluate"]);
    let table = ok(&out);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("two_stage re-ranker") && log.contains("top features by gain"),
        "{log}"
    );
    for needle in [
        "two_stage uplift over each single stage",
        "union (mean size)",
    ] {
        assert!(table.contains(needle), "`{needle}` missing from:\n{table}");
    }
    let bundle = &s.bundles()[0];
    let trees: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("two_stage_reranker.json")).unwrap())
            .unwrap();
    assert!(trees.is_object());
    let importance: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("two_stage_importance.json")).unwrap())
            .unwrap();
    assert!(
        importance[0]["gain"].as_f64().unwrap() > 0.0,
        "{importance}"
    );

    // The bundle reloads and scores the same as when it was trained.
    let report = json(&s.run(&["evaluate", "--json"]));
    let candidates = &report["candidates"];
    let union = candidates["union"]["recall_at_n"].as_f64().unwrap();
    for source in ["als", "similar", "history", "popular", "category_popular"] {
        let recall = candidates[source]["recall_at_n"].as_f64().unwrap();
        assert!(
            (0.0..=union + 1e-12).contains(&recall),
            "{source}: {candidates}"
        );
        assert!(candidates[source]["n"].as_u64().unwrap() > 0);
    }
    // The re-ranker orders only candidates (and popular filler), so it cannot
    // find more than the union holds.
    let two_stage = &report["models"]["two_stage"];
    assert!(two_stage["recall"].as_f64().unwrap() <= union + 1e-12);
    let uplift = &report["uplift_percent"]["popular"]["recall"];
    let shown = uplift["value"].as_f64().unwrap();
    // The paired bootstrap interval brackets the uplift it measures.
    let ci = uplift["ci"].as_array().unwrap();
    let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
    assert!(lo <= hi, "{report}");
    let recall_ci = &two_stage["recall_ci"];
    assert!(
        recall_ci[0].as_f64() <= two_stage["recall"].as_f64(),
        "{report}"
    );
    assert!(
        recall_ci[1].as_f64() >= two_stage["recall"].as_f64(),
        "{report}"
    );
    assert_eq!(report["bootstrap"]["resamples"], 1000);
    let _ = shown;
    let ceiling = report["ceiling"]["history"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&ceiling));
    assert_eq!(report["ceiling"]["candidates"].as_f64(), Some(union));
    let table_recall = table
        .lines()
        .find(|l| l.starts_with("two_stage"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap();
    assert!((table_recall - two_stage["recall"].as_f64().unwrap()).abs() < 1e-4);

    let answer = json(&s.run(&["recommend", "--user-id", "820159", "--k", "5"]));
    assert_eq!(answer["model"], "two_stage");
    assert_eq!(answer["recommendations"].as_array().unwrap().len(), 5);
}

#[test]
fn train_removes_the_temporary_directory_a_killed_train_left() {
    let s = Scratch::default_data();
    // What a train killed while writing its bundle leaves: a hidden
    // temporary directory whose lock nobody holds, untouched for a while.
    let name = ".20150901T000000Z-0123456789abcdef.tmp-4242-17";
    let killed = s.path("artifacts").join(name);
    std::fs::create_dir_all(&killed).unwrap();
    std::fs::write(killed.join("als_item_factors.npy"), vec![0u8; 2_500_000]).unwrap();
    std::fs::write(killed.join(".lock"), b"").unwrap();
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
    for path in [
        killed.join("als_item_factors.npy"),
        killed.join(".lock"),
        killed.clone(),
    ] {
        let file = std::fs::File::open(&path).unwrap();
        file.set_modified(long_ago).unwrap();
    }
    let out = s.run(&["train"]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{name} (2.5 MB), the temporary directory of a run that did not finish"
        )),
        "{stderr}"
    );
    assert!(!killed.exists());
    assert_eq!(s.bundles().len(), 1, "only the new bundle is left");
}
