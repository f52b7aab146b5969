//! An evaluation's results as a terminal table or as the JSON that scripts read.
//!
//! The JSON shape is a contract (pipelines' quality gates parse it):
//! `{"k":10,"protocol":"strict","users":N,"models":{"als":{"precision":…,…},…},
//! "segments":{"warm":{"users":N,"models":{…}},"cold":{…}}, …}`.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use super::metrics::Metrics;
use super::ModelResult;
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
}

const COLUMNS: [&str; 6] = ["precision", "recall", "ndcg", "map", "hit_rate", "coverage"];

fn values(m: &Metrics) -> [f64; 6] {
    [m.precision, m.recall, m.ndcg, m.map, m.hit_rate, m.coverage]
}

fn metrics_json(m: &Metrics) -> Value {
    serde_json::to_value(m).expect("metrics serialise")
}

impl Report {
    /// The JSON object printed by `evaluate --json`.
    pub fn to_json(&self) -> Value {
        let models = |pick: fn(&ModelResult) -> &Metrics| -> Value {
            let mut map = Map::new();
            for r in &self.results {
                map.insert(r.name.clone(), metrics_json(pick(r)));
            }
            Value::Object(map)
        };
        json!({
            "k": self.k,
            "protocol": self.protocol.as_str(),
            "cutoff": format_date(self.cutoff_ms),
            "users": self.users,
            "models": models(|r| &r.all),
            "segments": {
                "warm": {"users": self.warm_users, "models": models(|r| &r.warm)},
                "cold": {"users": self.cold_users, "models": models(|r| &r.cold)},
            },
            "bundle": self.bundle,
        })
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
        out
    }
}
