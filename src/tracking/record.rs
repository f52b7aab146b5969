//! What a `recsys train` run records, built from what training already knows.
//!
//! * **params**: the resolved config flattened to dotted keys
//!   (`models.als.factors = 64`, lists as JSON), plus the command line's
//!   choices under `train.*` ([`config_params`]);
//! * **metrics**: every number among the manifest's training facts as
//!   `<model>_<fact>` (`als_seconds`, `two_stage_trees`, …), its curves as step
//!   metrics (`als_loss` per ALS iteration, `two_stage_valid_ndcg_at_10` per
//!   tree), the data sizes ([`training_metrics`]), and with `--evaluate` every
//!   model's scores as `<model>_<metric>_at_<k>`, also per segment
//!   (`als_warm_recall_at_10`) ([`evaluation_metrics`]);
//! * **tags**: recsys version, data fingerprint, bundle id, the git commit of
//!   the working directory when it is a checkout ([`start_tags`], [`bundle_tags`]).
//!
//! Everything here is a pure function of its inputs (the git commit aside), so
//! names and values are tested without a server.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::batch::{Metric, Param, Tag};
use crate::bundle::Manifest;
use crate::config::Config;
use crate::eval::Report;
use crate::rank::gbdt::Objective;

/// The resolved config as params, plus `extra` (the command line's choices).
pub fn config_params(config: &Config, extra: Vec<Param>) -> Vec<Param> {
    // Through JSON text rather than `to_value`: the text writes an f32 as
    // typed (`0.01`), `to_value` widens it first (`0.009999999776482582`).
    let text = serde_json::to_string(config).expect("the config serialises");
    let value: Value = serde_json::from_str(&text).expect("serde_json reads its own output");
    let mut out = Vec::new();
    flatten("", &value, &mut out);
    out.extend(extra);
    out
}

/// `value`'s leaves as params keyed by their dotted path under `prefix`;
/// lists stay whole (as JSON), unset options (`null`) are left out.
pub fn flatten(prefix: &str, value: &Value, out: &mut Vec<Param>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, v, out);
            }
        }
        Value::Null => {}
        Value::String(s) => out.push(Param::new(prefix, s.clone())),
        other => out.push(Param::new(prefix, other.to_string())),
    }
}

/// Metrics from the bundle's manifest: data sizes, every numeric training
/// fact and every fact curve, measured at `now_ms`.
pub fn training_metrics(manifest: &Manifest, now_ms: i64) -> Vec<Metric> {
    let d = &manifest.data;
    let mut out: Vec<Metric> = [
        ("data_events", d.events),
        ("data_train_events", d.train_events),
        ("data_users", d.users),
        ("data_items", d.items),
    ]
    .into_iter()
    .filter_map(|(key, n)| Metric::new(key, n as f64, now_ms, 0))
    .collect();
    let valid_metric = match manifest.config.models.two_stage.reranker.objective {
        Objective::LambdaRank { ndcg_at } => format!("ndcg_at_{ndcg_at}"),
        Objective::Binary => "logloss".to_string(),
    };
    let Some(models) = manifest.training.as_object() else {
        return out;
    };
    for (model, facts) in models {
        let Some(facts) = facts.as_object() else {
            continue;
        };
        for (fact, value) in facts {
            match value {
                Value::Number(n) => out.extend(
                    n.as_f64()
                        .and_then(|v| Metric::new(format!("{model}_{fact}"), v, now_ms, 0)),
                ),
                Value::Array(curve) if fact.ends_with("_curve") => {
                    let stem = fact.trim_end_matches("_curve");
                    // The validation curve is whatever the objective measures.
                    let key = if stem == "valid" {
                        format!("{model}_valid_{valid_metric}")
                    } else {
                        format!("{model}_{stem}")
                    };
                    // Entry i is after iteration (or tree) i + 1; gaps (no
                    // validation set) are skipped, not logged as zeros.
                    out.extend(curve.iter().enumerate().filter_map(|(i, v)| {
                        Metric::new(key.clone(), v.as_f64()?, now_ms, i as i64 + 1)
                    }));
                }
                _ => {}
            }
        }
    }
    out
}

/// Every model's scores in `report`, overall (`als_precision_at_10`) and per
/// segment (`als_warm_precision_at_10`, `als_cold_…`), the users evaluated, and
/// the two-stage candidates' recall when the report has it.
pub fn evaluation_metrics(report: &Report, now_ms: i64) -> Vec<Metric> {
    let k = report.k;
    let mut out = Vec::new();
    let mut push = |key: String, value: f64| out.extend(Metric::new(key, value, now_ms, 0));
    push("eval_users".into(), report.users as f64);
    push("eval_warm_users".into(), report.warm_users as f64);
    push("eval_cold_users".into(), report.cold_users as f64);
    for r in &report.results {
        for (segment, m) in [("", &r.all), ("warm_", &r.warm), ("cold_", &r.cold)] {
            for (metric, value) in [
                ("precision", m.precision),
                ("recall", m.recall),
                ("ndcg", m.ndcg),
                ("map", m.map),
                ("hit_rate", m.hit_rate),
                ("coverage", m.coverage),
            ] {
                push(format!("{}_{segment}{metric}_at_{k}", r.name), value);
            }
        }
    }
    if let Some(c) = &report.candidates {
        for (source, recall, _) in &c.sources {
            push(format!("two_stage_candidates_{source}_recall"), *recall);
        }
        push("two_stage_candidates_union_recall".into(), c.union_recall);
        push("two_stage_candidates_union_size".into(), c.union_size);
    }
    out
}

/// Wall-clock timings as `<stage>_seconds` metrics.
pub fn seconds_metrics(timings: &[(&str, Duration)], now_ms: i64) -> Vec<Metric> {
    timings
        .iter()
        .filter_map(|(stage, t)| {
            Metric::new(format!("{stage}_seconds"), t.as_secs_f64(), now_ms, 0)
        })
        .collect()
}

/// Tags known before training: who ran what, with which recsys, from which commit.
pub fn start_tags(command_line: &str, git_commit: Option<String>) -> Vec<Tag> {
    let mut tags = vec![
        Tag::new("mlflow.source.name", "recsys train"),
        Tag::new("mlflow.source.type", "LOCAL"),
        Tag::new("recsys.version", env!("CARGO_PKG_VERSION")),
        Tag::new("recsys.command", command_line),
    ];
    if let Some(user) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        tags.push(Tag::new("mlflow.user", user));
    }
    if let Some(commit) = git_commit {
        tags.push(Tag::new("mlflow.source.git.commit", commit));
    }
    tags
}

/// Tags that tie the run to its bundle and data.
pub fn bundle_tags(manifest: &Manifest, bundle_dir: &Path) -> Vec<Tag> {
    vec![
        Tag::new("recsys.bundle", &manifest.run_id),
        Tag::new(
            "recsys.bundle_path",
            std::fs::canonicalize(bundle_dir)
                .unwrap_or_else(|_| bundle_dir.to_path_buf())
                .display()
                .to_string(),
        ),
        Tag::new("recsys.data_fingerprint", &manifest.data.fingerprint),
        Tag::new("recsys.events_path", &manifest.data.events_path),
        Tag::new("recsys.models", manifest.models.join(",")),
    ]
}

/// The commit checked out in `dir` (or a directory above it), if it is a git
/// checkout and git is installed; `None` otherwise, never an error.
pub fn git_commit(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--verify", "--quiet", "HEAD"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && commit.len() >= 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(commit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::metrics::Metrics;
    use crate::eval::ModelResult;

    fn param<'a>(params: &'a [Param], key: &str) -> Option<&'a str> {
        params
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }

    #[test]
    fn the_config_becomes_dotted_params_with_values_as_written() {
        let config = Config::default();
        let params = config_params(&config, vec![Param::new("train.protocol", "strict")]);
        assert_eq!(param(&params, "models.als.factors"), Some("64"));
        assert_eq!(param(&params, "models.als.regularization"), Some("0.01"));
        assert_eq!(
            param(&params, "models.enabled"),
            Some(r#"["popular","history","als","two_stage"]"#)
        );
        assert_eq!(param(&params, "tracking.experiment"), Some("recsys"));
        assert_eq!(param(&params, "train.protocol"), Some("strict"));
        // Unset options are left out rather than logged as "null".
        assert_eq!(param(&params, "split.cutoff"), None);
        let keys: std::collections::HashSet<&str> = params.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys.len(), params.len(), "keys are unique");
    }

    #[test]
    fn flattening_keeps_lists_whole_and_skips_nulls() {
        let value = serde_json::json!({"a": {"b": 1, "c": [1, 2], "d": null, "e": "x"}, "f": true});
        let mut out = Vec::new();
        flatten("", &value, &mut out);
        let got: Vec<(&str, &str)> = out
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [("a.b", "1"), ("a.c", "[1,2]"), ("a.e", "x"), ("f", "true")]
        );
    }

    fn manifest(training: Value) -> Manifest {
        Manifest {
            format_version: 1,
            run_id: "r".into(),
            created_at: String::new(),
            recsys_version: String::new(),
            cutoff_ms: 0,
            protocol: Default::default(),
            data: crate::bundle::DataSummary {
                events_path: "e.csv".into(),
                fingerprint: "f".into(),
                events: 10,
                train_events: 8,
                users: 3,
                items: 4,
            },
            models: vec!["als".into()],
            training,
            config: Config::default(),
        }
    }

    #[test]
    fn training_facts_become_metrics_and_curves_become_steps() {
        let m = manifest(serde_json::json!({
            "als": {"seconds": 1.5, "nnz": 7, "loss_curve": [3.0, 2.0, 1.0]},
            "two_stage": {"trees": 2, "valid_curve": [0.5, null, 0.7], "windows": [{"a": 1}],
                          "importance": {"f": 1.0}},
        }));
        let metrics = training_metrics(&m, 99);
        let value = |key: &str| metrics.iter().find(|x| x.key == key).map(|x| x.value);
        assert_eq!(value("als_seconds"), Some(1.5));
        assert_eq!(value("als_nnz"), Some(7.0));
        assert_eq!(value("two_stage_trees"), Some(2.0));
        assert_eq!(value("data_train_events"), Some(8.0));
        let steps = |key: &str| -> Vec<(i64, f64)> {
            metrics
                .iter()
                .filter(|x| x.key == key)
                .map(|x| (x.step, x.value))
                .collect()
        };
        assert_eq!(steps("als_loss"), [(1, 3.0), (2, 2.0), (3, 1.0)]);
        assert_eq!(steps("two_stage_valid_ndcg_at_10"), [(1, 0.5), (3, 0.7)]);
        assert!(metrics.iter().all(|x| x.timestamp == 99));
        assert!(!metrics
            .iter()
            .any(|x| x.key.contains("windows") || x.key.contains("importance")));
    }

    #[test]
    fn evaluation_scores_are_named_by_model_metric_segment_and_k() {
        let metrics = |p: f64| Metrics {
            precision: p,
            recall: 0.3,
            ndcg: 0.2,
            map: 0.1,
            hit_rate: 0.5,
            coverage: 0.05,
        };
        let report = Report {
            k: 10,
            protocol: Default::default(),
            cutoff_ms: 0,
            users: 27,
            warm_users: 20,
            cold_users: 7,
            results: vec![ModelResult {
                name: "als".into(),
                all: metrics(0.11),
                warm: metrics(0.15),
                cold: metrics(0.0),
                per_user: Vec::new(),
            }],
            bundle: None,
            candidates: None,
            replay: None,
            intervals: None,
            ceiling: None,
            folds: Vec::new(),
        };
        let got = evaluation_metrics(&report, 5);
        let value = |key: &str| got.iter().find(|x| x.key == key).map(|x| x.value);
        assert_eq!(value("als_precision_at_10"), Some(0.11));
        assert_eq!(value("als_warm_precision_at_10"), Some(0.15));
        assert_eq!(value("als_cold_recall_at_10"), Some(0.3));
        assert_eq!(value("als_coverage_at_10"), Some(0.05));
        assert_eq!(value("eval_users"), Some(27.0));
        assert_eq!(got.len(), 3 + 3 * 6);
    }
}
