//! An evaluation's results as a terminal table or as the JSON that scripts read.
//!
//! The JSON shape is a contract (pipelines' quality gates parse it):
//! `{"k":10,"protocol":"strict","users":N,"models":{"als":{"precision":…,…},…},
//! "segments":{"warm":{"users":N,"models":{…}},"cold":{…}}, …}`; with
//! `--replay` also `"replay":{…}` ([`ReplayReport::to_json`]).

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use super::bootstrap::{excludes_zero, Interval, Intervals};
use super::metrics::Metrics;
use super::replay::ReplayReport;
use super::{CandidateRecall, ModelResult};
use crate::data::time::format_date;
use crate::data::Protocol;

/// Everything an evaluation found.
#[derive(Debug, Clone)]
pub struct Report {
    /// List length evaluated.
    pub k: usize,
    /// Protocol followed.
    pub protocol: Protocol,
    /// Start of the test window, UTC ms.
    pub cutoff_ms: i64,
    /// Users evaluated.
    pub users: usize,
    /// Of which seen in training.
    pub warm_users: usize,
    /// Of which first seen in the test window.
    pub cold_users: usize,
    /// Per model.
    pub results: Vec<ModelResult>,
    /// The bundle evaluated, if any.
    pub bundle: Option<String>,
    /// Recall of two_stage's candidates, when the bundle has that model.
    pub candidates: Option<CandidateRecall>,
    /// The test window replayed event by event, when asked for.
    pub replay: Option<ReplayReport>,
    /// Bootstrap intervals over the shoppers, when asked for.
    pub intervals: Option<Intervals>,
    /// What is reachable at all: relevant items in the shoppers' histories.
    pub ceiling: Option<Ceiling>,
    /// With rolling cutoffs: each cutoff and the shoppers it contributed.
    pub folds: Vec<Fold>,
}

/// One cutoff of a rolling evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fold {
    /// Start of its test window, UTC ms.
    pub cutoff_ms: i64,
    /// End of its test window (exclusive), UTC ms.
    pub until_ms: i64,
    /// Shoppers with relevant items in it.
    pub users: usize,
}

/// The share of relevant items a model could reach from what it knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ceiling {
    /// Mean over shoppers of the share of their relevant items that are in
    /// their own training history (what re-ranking their history can find).
    pub history: f64,
}

/// The model whose uplift over the others is reported.
const TWO_STAGE: &str = "two_stage";

/// Relative change from `base` to `new`, in percent (None when base is 0).
fn uplift_percent(new: f64, base: f64) -> Option<f64> {
    (base > 0.0).then(|| (new / base - 1.0) * 100.0)
}

const COLUMNS: [&str; 6] = ["precision", "recall", "ndcg", "map", "hit_rate", "coverage"];

fn values(m: &Metrics) -> [f64; 6] {
    [m.precision, m.recall, m.ndcg, m.map, m.hit_rate, m.coverage]
}

/// The metrics with bootstrap intervals, in [`Intervals`]' order.
const CI_COLUMNS: [&str; 5] = ["precision", "recall", "ndcg", "map", "hit_rate"];

fn ci_json(ci: Option<Interval>) -> Value {
    match ci {
        Some((lo, hi)) => json!([lo, hi]),
        None => Value::Null,
    }
}

fn metrics_json(m: &Metrics) -> Value {
    serde_json::to_value(m).expect("metrics serialise")
}

impl Report {
    /// The JSON object printed by `evaluate --json`.
    pub fn to_json(&self) -> Value {
        let models = |pick: fn(&ModelResult) -> &Metrics, with_ci: bool| -> Value {
            let mut map = Map::new();
            for (i, r) in self.results.iter().enumerate() {
                let mut m = metrics_json(pick(r));
                if let (true, Some(iv)) = (with_ci, &self.intervals) {
                    for (name, ci) in CI_COLUMNS.iter().zip(&iv.models[i]) {
                        m[format!("{name}_ci")] = ci_json(*ci);
                    }
                }
                map.insert(r.name.clone(), m);
            }
            Value::Object(map)
        };
        let mut out = json!({
            "k": self.k,
            "protocol": self.protocol.as_str(),
            "cutoff": format_date(self.cutoff_ms),
            "users": self.users,
            "models": models(|r| &r.all, true),
            "segments": {
                "warm": {"users": self.warm_users, "models": models(|r| &r.warm, false)},
                "cold": {"users": self.cold_users, "models": models(|r| &r.cold, false)},
            },
            "bundle": self.bundle,
        });
        if let Some(c) = &self.candidates {
            let mut map = Map::new();
            for (name, recall, n) in &c.sources {
                map.insert(name.clone(), json!({"recall_at_n": recall, "n": n}));
            }
            map.insert(
                "union".into(),
                json!({"recall_at_n": c.union_recall, "n": c.union_size}),
            );
            out["candidates"] = Value::Object(map);
        }
        if let Some(two) = self.results.iter().find(|r| r.name == TWO_STAGE) {
            let mut map = Map::new();
            for (i, base) in self.results.iter().enumerate() {
                if base.name == TWO_STAGE {
                    continue;
                }
                let mut per_metric = Map::new();
                for (j, (c, (new, old))) in COLUMNS
                    .iter()
                    .zip(values(&two.all).into_iter().zip(values(&base.all)))
                    .enumerate()
                {
                    let ci = self.uplift_ci(i, j);
                    per_metric.insert(
                        c.to_string(),
                        json!({"value": uplift_percent(new, old), "ci": ci_json(ci)}),
                    );
                }
                map.insert(base.name.clone(), Value::Object(per_metric));
            }
            out["uplift_percent"] = Value::Object(map);
        }
        if let Some(iv) = &self.intervals {
            out["bootstrap"] = json!({"resamples": iv.resamples, "seed": iv.seed, "level": 0.95});
        }
        if let Some(c) = &self.ceiling {
            out["ceiling"] = json!({
                "history": c.history,
                "candidates": self.candidates.as_ref().map(|c| c.union_recall),
            });
        }
        if !self.folds.is_empty() {
            out["cutoffs"] = Value::Array(
                self.folds
                    .iter()
                    .map(|f| {
                        json!({"cutoff": format_date(f.cutoff_ms), "until": format_date(f.until_ms), "users": f.users})
                    })
                    .collect(),
            );
        }
        if let Some(replay) = &self.replay {
            out["replay"] = replay.to_json();
        }
        out
    }

    /// A plain-text table: models × metrics, overall then per segment.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "protocol {}, test window from {}, k = {}: {} users ({} warm, {} cold)",
            self.protocol,
            format_date(self.cutoff_ms),
            self.k,
            self.users,
            self.warm_users,
            self.cold_users
        );
        if !self.folds.is_empty() {
            let _ = writeln!(
                out,
                "pooled over {} cutoffs, each trained on the data before it and tested on the window after it:",
                self.folds.len()
            );
            for f in &self.folds {
                let _ = writeln!(
                    out,
                    "  {} .. {}: {} users",
                    format_date(f.cutoff_ms),
                    format_date(f.until_ms),
                    f.users
                );
            }
        }
        type Pick = fn(&ModelResult) -> &Metrics;
        let sections: [(&str, usize, Pick); 3] = [
            ("all users", self.users, |r| &r.all),
            ("warm users", self.warm_users, |r| &r.warm),
            ("cold users", self.cold_users, |r| &r.cold),
        ];
        for (title, n, pick) in sections {
            if n == 0 {
                continue;
            }
            let _ = writeln!(out, "\n{title} ({n})");
            let _ = write!(out, "{:<10}", "model");
            for c in COLUMNS {
                let head = if c == "coverage" {
                    c.to_string()
                } else {
                    format!("{c}@{}", self.k)
                };
                let _ = write!(out, " {head:>12}");
            }
            out.push('\n');
            for r in &self.results {
                let _ = write!(out, "{:<10}", r.name);
                for v in values(pick(r)) {
                    let _ = write!(out, " {v:>12.4}");
                }
                out.push('\n');
            }
        }
        self.write_uplift(&mut out);
        self.write_candidates(&mut out);
        self.write_ceiling(&mut out);
        if let Some(replay) = &self.replay {
            out.push('\n');
            out.push_str(&replay.to_table());
        }
        out
    }

    fn write_uplift(&self, out: &mut String) {
        let Some(two) = self.results.iter().find(|r| r.name == TWO_STAGE) else {
            return;
        };
        let _ = writeln!(
            out,
            "\ntwo_stage uplift over each single stage, all users (%)"
        );
        let _ = write!(out, "{:<10}", "over");
        for c in COLUMNS {
            let _ = write!(out, " {c:>12}");
        }
        out.push('\n');
        for (i, base) in self.results.iter().enumerate() {
            if base.name == TWO_STAGE {
                continue;
            }
            let _ = write!(out, "{:<10}", base.name);
            for (j, (new, old)) in values(&two.all)
                .into_iter()
                .zip(values(&base.all))
                .enumerate()
            {
                let sure = self.uplift_ci(i, j).is_some_and(excludes_zero);
                match uplift_percent(new, old) {
                    Some(p) => {
                        let mark = if sure { "*" } else { " " };
                        let _ = write!(out, " {:>12}", format!("{p:+.1}{mark}"));
                    }
                    None => {
                        let _ = write!(out, " {:>12}", "n/a ");
                    }
                }
            }
            out.push('\n');
        }
        if let Some(iv) = &self.intervals {
            let _ = writeln!(
                out,
                "* the paired 95% bootstrap interval of the uplift excludes 0 ({} resamples of the shoppers, seed {})",
                iv.resamples, iv.seed
            );
            let _ = writeln!(out, "\n95% intervals, all users (bootstrap over shoppers)");
            let _ = write!(out, "{:<10}", "model");
            for c in CI_COLUMNS {
                let _ = write!(out, " {:>17}", format!("{c}@{}", self.k));
            }
            out.push('\n');
            for (r, cis) in self.results.iter().zip(&iv.models) {
                let _ = write!(out, "{:<10}", r.name);
                for ci in cis {
                    let text = ci.map_or("n/a".into(), |(lo, hi)| format!("[{lo:.4}, {hi:.4}]"));
                    let _ = write!(out, " {text:>17}");
                }
                out.push('\n');
            }
        }
    }

    /// The interval of two_stage's uplift over result `base` in column `column`.
    fn uplift_ci(&self, base: usize, column: usize) -> Option<Interval> {
        let iv = self.intervals.as_ref()?;
        iv.uplift.get(base)?.get(column).copied().flatten()
    }

    fn write_candidates(&self, out: &mut String) {
        let Some(c) = &self.candidates else { return };
        let _ = writeln!(
            out,
            "\ntwo_stage candidates: recall of the relevant items, all users"
        );
        let _ = writeln!(out, "{:<18} {:>8} {:>12}", "source", "n", "recall@n");
        for (name, recall, n) in &c.sources {
            let _ = writeln!(out, "{name:<18} {n:>8} {recall:>12.4}");
        }
        let _ = writeln!(
            out,
            "{:<18} {:>8.1} {:>12.4}",
            "union (mean size)", c.union_size, c.union_recall
        );
    }

    fn write_ceiling(&self, out: &mut String) {
        let Some(c) = &self.ceiling else { return };
        let _ = write!(
            out,
            "\nceiling: {:.1}% of the relevant items are in the shopper's own history",
            100.0 * c.history
        );
        if let Some(cand) = &self.candidates {
            let _ = write!(
                out,
                ", {:.1}% in two_stage's candidate union",
                100.0 * cand.union_recall
            );
        }
        out.push('\n');
    }
}
