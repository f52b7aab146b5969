//! The service's Prometheus metrics, exported at `/metrics`.
//!
//! Names follow Prometheus conventions (`_total` counters, `_seconds`
//! durations, base units). The Grafana dashboard in `deploy/grafana/` queries
//! exactly these; a test checks that every name it uses is exported here.

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Values of the `source` label of `recsys_recommended_items_total` and
/// `recsys_attributed_events_total`: what proposed each served item
/// (two_stage's candidate sources, or the model).
pub const SOURCES: [&str; 6] = [
    "als",
    "similar",
    "history",
    "popular",
    "category_popular",
    "covisit",
];

/// Values of the `answer` label of `recsys_recommendation_responses_total`:
/// the model that ranked the answer (`popular` when nothing was known).
pub const ANSWERS: [&str; 5] = ["two_stage", "als", "history", "covisit", "popular"];

/// Latency buckets, seconds: the service answers in microseconds to milliseconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Every metric the service exports, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `recsys_http_requests_total{route,status}`.
    pub requests: IntCounterVec,
    /// `recsys_http_request_duration_seconds{route}`.
    pub latency: HistogramVec,
    /// `recsys_recommended_items_total{variant,source}`: items served, by
    /// variant and by what proposed them.
    pub recommended_items: IntCounterVec,
    /// `recsys_attributed_events_total{variant,event,source}`: add-to-carts
    /// and purchases of items recommended within the attribution window.
    pub attributed_events: IntCounterVec,
    /// `recsys_recommendation_responses_total{answer}`: answers by the model
    /// that ranked them (`popular` for shoppers nothing is known about).
    pub responses: IntCounterVec,
    /// `recsys_events_received_total{event}`.
    pub events: IntCounterVec,
    /// `recsys_event_store_users`.
    pub store_users: IntGauge,
    /// `recsys_event_store_events`.
    pub store_events: IntGauge,
    /// `recsys_event_store_errors_total{operation}`: Redis failures and timeouts.
    pub store_errors: IntCounterVec,
    /// `recsys_model_info{version,model,variant}`: 1 for each model serving.
    pub model_info: GaugeVec,
    /// `recsys_model_loaded_timestamp_seconds`: when the serving model was loaded.
    pub model_loaded: Gauge,
    /// `recsys_model_created_timestamp_seconds`: when the serving model was trained.
    pub model_created: Gauge,
    /// `recsys_model_load_duration_seconds`: how long loading it took.
    pub model_load_seconds: Gauge,
    /// `recsys_model_reloads_total{outcome}`: `success` or `failure`.
    pub reloads: IntCounterVec,
    /// `recsys_similar_index_recall`: share of exact nearest neighbours the
    /// similar-items index finds, measured at load.
    pub similar_recall: Gauge,
    /// `recsys_candidate_index_recall`: share of the exact top 50 by inner
    /// product the ALS candidate index finds, measured at load.
    pub candidate_recall: Gauge,
    // Label lookups hash and lock; the per-request series are resolved once.
    answer_series: [prometheus::IntCounter; 5],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A fresh registry with every metric, process CPU and memory included.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("recsys_http_requests_total", "HTTP requests answered."),
            &["route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "recsys_http_request_duration_seconds",
                "Time to answer an HTTP request.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )
        .expect("valid metric");
        let recommended_items = IntCounterVec::new(
            Opts::new(
                "recsys_recommended_items_total",
                "Recommended items served, by variant and by what proposed them.",
            ),
            &["variant", "source"],
        )
        .expect("valid metric");
        let attributed_events = IntCounterVec::new(
            Opts::new(
                "recsys_attributed_events_total",
                "Add-to-carts and purchases of items recommended to the shopper within the attribution window.",
            ),
            &["variant", "event", "source"],
        )
        .expect("valid metric");
        let responses = IntCounterVec::new(
            Opts::new(
                "recsys_recommendation_responses_total",
                "Recommendation answers, by the model that ranked them (popular: nothing known).",
            ),
            &["answer"],
        )
        .expect("valid metric");
        let events = IntCounterVec::new(
            Opts::new("recsys_events_received_total", "Shopper events received."),
            &["event"],
        )
        .expect("valid metric");
        let store_users = IntGauge::new(
            "recsys_event_store_users",
            "Users in the in-memory event store.",
        )
        .expect("valid metric");
        let store_events = IntGauge::new(
            "recsys_event_store_events",
            "Events in the in-memory event store.",
        )
        .expect("valid metric");
        let store_errors = IntCounterVec::new(
            Opts::new(
                "recsys_event_store_errors_total",
                "Event store operations that failed or timed out.",
            ),
            &["operation"],
        )
        .expect("valid metric");
        let model_info = GaugeVec::new(
            Opts::new("recsys_model_info", "The model bundle serving (value 1)."),
            &["version", "model", "variant"],
        )
        .expect("valid metric");
        let model_loaded = Gauge::new(
            "recsys_model_loaded_timestamp_seconds",
            "Unix time the serving model was loaded.",
        )
        .expect("valid metric");
        let model_created = Gauge::new(
            "recsys_model_created_timestamp_seconds",
            "Unix time the serving model was trained.",
        )
        .expect("valid metric");
        let model_load_seconds = Gauge::new(
            "recsys_model_load_duration_seconds",
            "Seconds it took to load the serving model.",
        )
        .expect("valid metric");
        let reloads = IntCounterVec::new(
            Opts::new("recsys_model_reloads_total", "Model reloads by outcome."),
            &["outcome"],
        )
        .expect("valid metric");
        let similar_recall = Gauge::new(
            "recsys_similar_index_recall",
            "Share of the exact 10 nearest neighbours the similar-items index finds (sampled at load).",
        )
        .expect("valid metric");
        let candidate_recall = Gauge::new(
            "recsys_candidate_index_recall",
            "Share of the exact top 50 by inner product the ALS candidate index finds (sampled at load).",
        )
        .expect("valid metric");
        for metric in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(recommended_items.clone()),
            Box::new(attributed_events.clone()),
            Box::new(responses.clone()),
            Box::new(events.clone()),
            Box::new(store_users.clone()),
            Box::new(store_events.clone()),
            Box::new(store_errors.clone()),
            Box::new(model_info.clone()),
            Box::new(model_loaded.clone()),
            Box::new(model_created.clone()),
            Box::new(model_load_seconds.clone()),
            Box::new(reloads.clone()),
            Box::new(similar_recall.clone()),
            Box::new(candidate_recall.clone()),
        ] {
            registry.register(metric).expect("metric names are unique");
        }
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process metrics register once");
        // Series that exist before their first event, so rates start at zero.
        let answer_series = ANSWERS.map(|a| responses.with_label_values(&[a]));
        for outcome in ["success", "failure"] {
            reloads.with_label_values(&[outcome]);
        }
        for operation in ["push", "read", "feedback"] {
            store_errors.with_label_values(&[operation]);
        }
        Metrics {
            registry,
            requests,
            latency,
            recommended_items,
            attributed_events,
            responses,
            events,
            store_users,
            store_events,
            store_errors,
            model_info,
            model_loaded,
            model_created,
            model_load_seconds,
            reloads,
            similar_recall,
            candidate_recall,
            answer_series,
        }
    }

    /// Count one answer ranked by `model`.
    pub fn answered(&self, model: &str) {
        match ANSWERS.iter().position(|&a| a == model) {
            Some(i) => self.answer_series[i].inc(),
            None => self.responses.with_label_values(&[model]).inc(),
        }
    }

    /// Create the per-variant series of `variants` × `sources` at zero, so
    /// rates start at zero rather than at the first event.
    pub fn start_variants(&self, variants: &[std::sync::Arc<str>], sources: &[&str]) {
        for variant in variants {
            for source in sources {
                let variant: &str = variant;
                self.recommended_items.with_label_values(&[variant, source]);
                for event in ["addtocart", "transaction"] {
                    self.attributed_events
                        .with_label_values(&[variant, event, source]);
                }
            }
        }
    }

    /// Count the items of one answer in `variant`, by their sources.
    pub fn served<'a>(&self, variant: &str, sources: impl Iterator<Item = &'a str>) {
        // An answer has few distinct sources: one counter update per source.
        let mut counts: Vec<(&str, u64)> = Vec::with_capacity(4);
        for source in sources {
            match counts.iter_mut().find(|(s, _)| *s == source) {
                Some((_, n)) => *n += 1,
                None => counts.push((source, 1)),
            }
        }
        for (source, n) in counts {
            self.recommended_items
                .with_label_values(&[variant, source])
                .inc_by(n);
        }
    }

    /// Count one attributed `event` of an item `source` proposed in `variant`.
    pub fn attributed(&self, variant: &str, event: &str, source: &str) {
        self.attributed_events
            .with_label_values(&[variant, event, source])
            .inc();
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding of gathered metrics does not fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    /// Names of every exported metric family.
    pub fn names(&self) -> Vec<String> {
        self.registry
            .gather()
            .iter()
            .map(|family| family.name().to_string())
            .collect()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
