//! What a run records — params, metrics, tags — and how it is cut into
//! `log-batch` requests the server accepts.
//!
//! MLflow refuses a `runs/log-batch` request with more than 100 params, 100
//! tags, 1000 metrics or 1000 entries in all, or a body over 1 MB, and refuses
//! param values over 6000 characters and tag values over 8000 (keys may have
//! 250; the ones recsys makes are config paths and metric names, far shorter).
//! [`LogBatch::chunks`] splits any batch into requests within those limits, and
//! [`Param::new`] / [`Tag::new`] shorten over-long values (marked with `…`)
//! rather than lose the whole run to one long value.

use serde::Serialize;

/// Most params in one `log-batch` request.
pub const MAX_PARAMS_PER_BATCH: usize = 100;
/// Most tags in one `log-batch` request.
pub const MAX_TAGS_PER_BATCH: usize = 100;
/// Most metrics in one `log-batch` request.
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// Most entries of all kinds in one `log-batch` request.
pub const MAX_ENTRIES_PER_BATCH: usize = 1000;
/// Largest request body MLflow accepts, with room left for the JSON around the entries.
pub const MAX_BATCH_BYTES: usize = 900_000;
/// Longest param value MLflow stores (characters).
pub const MAX_PARAM_VALUE_CHARS: usize = 6000;
/// Longest tag value MLflow stores (characters).
pub const MAX_TAG_VALUE_CHARS: usize = 8000;

/// A run parameter: a setting, logged once, compared across runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Param {
    /// Dotted name, e.g. `models.als.factors`.
    pub key: String,
    /// The value as text.
    pub value: String,
}

impl Param {
    /// A param, its value shortened to what MLflow stores.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Param {
        Param {
            key: key.into(),
            value: shorten(value.into(), MAX_PARAM_VALUE_CHARS),
        }
    }
}

/// A run tag: a fact about the run (data fingerprint, version, commit).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tag {
    /// Name, e.g. `recsys.version` or MLflow's own `mlflow.source.git.commit`.
    pub key: String,
    /// The value as text.
    pub value: String,
}

impl Tag {
    /// A tag, its value shortened to what MLflow stores.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Tag {
        Tag {
            key: key.into(),
            value: shorten(value.into(), MAX_TAG_VALUE_CHARS),
        }
    }
}

/// One value of a metric; metrics with several steps form a curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// Name, e.g. `als_precision_at_10` or `als_loss`.
    pub key: String,
    /// The value; never NaN or infinite (JSON cannot carry those).
    pub value: f64,
    /// When it was measured, ms since the Unix epoch.
    pub timestamp: i64,
    /// Position on a curve (iteration, tree); 0 for a single value.
    pub step: i64,
}

impl Metric {
    /// A metric value, or `None` when it is not finite.
    pub fn new(key: impl Into<String>, value: f64, timestamp: i64, step: i64) -> Option<Metric> {
        value.is_finite().then(|| Metric {
            key: key.into(),
            value,
            timestamp,
            step,
        })
    }
}

/// Params, metrics and tags to record together.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogBatch {
    /// Params.
    pub params: Vec<Param>,
    /// Metric values.
    pub metrics: Vec<Metric>,
    /// Tags.
    pub tags: Vec<Tag>,
}

impl LogBatch {
    /// Whether there is nothing to record.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty() && self.metrics.is_empty() && self.tags.is_empty()
    }

    /// Number of entries of all kinds.
    pub fn len(&self) -> usize {
        self.params.len() + self.metrics.len() + self.tags.len()
    }

    /// Add everything in `other`.
    pub fn extend(&mut self, other: LogBatch) {
        self.params.extend(other.params);
        self.metrics.extend(other.metrics);
        self.tags.extend(other.tags);
    }

    /// The batch cut into requests within MLflow's limits, in order (params,
    /// then tags, then metrics, each kind in its original order, so a curve's
    /// steps arrive in sequence).
    pub fn chunks(&self) -> Vec<LogBatch> {
        let mut out = Vec::new();
        let mut current = LogBatch::default();
        let mut bytes = 0;
        let mut take = |current: &mut LogBatch, bytes: &mut usize, size: usize, fits: bool| {
            if !fits || current.len() == MAX_ENTRIES_PER_BATCH || *bytes + size > MAX_BATCH_BYTES {
                out.push(std::mem::take(current));
                *bytes = 0;
            }
            *bytes += size;
        };
        for p in &self.params {
            let fits = current.params.len() < MAX_PARAMS_PER_BATCH;
            take(
                &mut current,
                &mut bytes,
                entry_bytes(&p.key, &p.value),
                fits,
            );
            current.params.push(p.clone());
        }
        for t in &self.tags {
            let fits = current.tags.len() < MAX_TAGS_PER_BATCH;
            take(
                &mut current,
                &mut bytes,
                entry_bytes(&t.key, &t.value),
                fits,
            );
            current.tags.push(t.clone());
        }
        for m in &self.metrics {
            let fits = current.metrics.len() < MAX_METRICS_PER_BATCH;
            take(&mut current, &mut bytes, entry_bytes(&m.key, "") + 80, fits);
            current.metrics.push(m.clone());
        }
        if !current.is_empty() {
            out.push(current);
        }
        out.retain(|b| !b.is_empty());
        out
    }
}

/// An upper bound of an entry's size in the request JSON (escaping can at
/// most double a character's bytes, plus the field names around it).
fn entry_bytes(key: &str, value: &str) -> usize {
    2 * (key.len() + value.len()) + 32
}

/// `value` cut to at most `max` characters, the cut marked with `…`.
fn shorten(value: String, max: usize) -> String {
    if value.chars().count() <= max {
        return value;
    }
    let mut cut: String = value.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(params: usize, tags: usize, metrics: usize) -> LogBatch {
        LogBatch {
            params: (0..params)
                .map(|i| Param::new(format!("p{i}"), "v"))
                .collect(),
            tags: (0..tags).map(|i| Tag::new(format!("t{i}"), "v")).collect(),
            metrics: (0..metrics)
                .map(|i| Metric::new("loss", i as f64, 0, i as i64).unwrap())
                .collect(),
        }
    }

    fn within_limits(chunk: &LogBatch) -> bool {
        chunk.params.len() <= MAX_PARAMS_PER_BATCH
            && chunk.tags.len() <= MAX_TAGS_PER_BATCH
            && chunk.metrics.len() <= MAX_METRICS_PER_BATCH
            && chunk.len() <= MAX_ENTRIES_PER_BATCH
            && serde_json::to_vec(chunk).unwrap().len() <= 1_000_000
    }

    #[test]
    fn chunks_respect_every_limit_and_keep_everything_in_order() {
        for (p, t, m) in [
            (0, 0, 0),
            (3, 2, 10),
            (250, 7, 2500),
            (100, 100, 800),
            (1, 0, 1000),
        ] {
            let whole = batch(p, t, m);
            let chunks = whole.chunks();
            assert!(chunks.iter().all(within_limits), "{p} {t} {m}");
            let mut joined = LogBatch::default();
            for c in chunks {
                joined.extend(c);
            }
            assert_eq!(joined, whole, "{p} {t} {m}");
        }
        assert_eq!(batch(250, 0, 0).chunks().len(), 3);
        assert_eq!(batch(0, 0, 2500).chunks().len(), 3);
        assert_eq!(batch(100, 100, 800).chunks().len(), 1);
        assert!(batch(0, 0, 0).chunks().is_empty());
    }

    #[test]
    fn long_values_are_cut_to_what_mlflow_stores_and_big_batches_split_by_size() {
        let long = "é".repeat(10_000);
        let p = Param::new("data.events", long.clone());
        assert_eq!(p.value.chars().count(), MAX_PARAM_VALUE_CHARS);
        assert!(p.value.ends_with('…'));
        assert_eq!(Param::new("k", "short").value, "short");
        assert_eq!(
            Tag::new("t", long.clone()).value.chars().count(),
            MAX_TAG_VALUE_CHARS
        );
        // 100 params of 6000 two-byte characters are over 1 MB together.
        let heavy = LogBatch {
            params: (0..100)
                .map(|i| Param::new(format!("p{i}"), long.clone()))
                .collect(),
            ..LogBatch::default()
        };
        let chunks = heavy.chunks();
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(within_limits));
    }

    #[test]
    fn non_finite_metric_values_are_dropped() {
        assert!(Metric::new("m", f64::NAN, 0, 0).is_none());
        assert!(Metric::new("m", f64::INFINITY, 0, 0).is_none());
        assert!(Metric::new("m", 0.5, 0, 0).is_some());
    }
}
