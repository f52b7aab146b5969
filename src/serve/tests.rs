//! The router driven without a socket: every route, the live answers and each
//! bad-input case. The real binary, reloads, Redis and Prometheus are covered
//! by `tests/serve.rs`.

use std::path::Path;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::metrics::Metrics;
use super::routes::{app, OPENAPI};
use super::state::{AppState, Settings};
use super::store::{EventStore, MemoryFeedback, MemoryStore};

use crate::bundle::test_bundle as bundle;
use crate::engine::{Engine, EngineSettings};
use crate::experiment::{Experiment, VariantConfig};
use crate::rng::Rng;

fn engine() -> Engine {
    Engine::from_bundle(
        bundle().clone(),
        Path::new("unused"),
        &EngineSettings::default(),
    )
    .unwrap()
}

fn settings() -> Settings {
    Settings {
        max_k: 100,
        max_exclude: 5,
        engine: EngineSettings::default(),
        events_per_user: 50,
        admin_token: Some("secret".into()),
        bundle_root: "no-such-dir".into(),
        experiment: None,
        feedback_window_ms: WINDOW_MS,
    }
}

const WINDOW_MS: i64 = 30 * 60_000;

fn memory_store() -> EventStore {
    EventStore::Memory(MemoryStore::new(1000, 50), MemoryFeedback::new(1000, 100))
}

fn state() -> AppState {
    AppState::new(
        vec![Arc::new(engine())],
        memory_store(),
        Metrics::new(),
        settings(),
    )
    .unwrap()
}

/// A state running an experiment `e` with two variants on the same bundle.
fn experiment_state(shares: [f64; 2]) -> AppState {
    let experiment = Experiment {
        name: "test".into(),
        variants: ["control", "treatment"]
            .iter()
            .zip(shares)
            .map(|(name, share)| VariantConfig {
                name: name.to_string(),
                bundle: "no-such-dir".into(),
                share,
            })
            .collect(),
    };
    let settings = Settings {
        experiment: Some(experiment),
        ..settings()
    };
    AppState::new(
        vec![Arc::new(engine()), Arc::new(engine())],
        memory_store(),
        Metrics::new(),
        settings,
    )
    .unwrap()
}

async fn call(
    state: &AppState,
    method: Method,
    uri: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
        .unwrap();
    let response = app(state.clone(), 1024).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
    (status, value)
}

fn sources(body: &Value) -> Vec<String> {
    body["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["source"].as_str().unwrap().to_string())
        .collect()
}

fn item_ids(body: &Value, key: &str) -> Vec<i64> {
    body[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item_id"].as_i64().unwrap())
        .collect()
}

async fn get(state: &AppState, uri: &str) -> Value {
    let (status, body) = call(state, Method::GET, uri, None).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    body
}

async fn post_event(state: &AppState, user: i64, item: i64, event: &str, timestamp: i64) {
    let body = format!(
        r#"{{"user_id":{user},"item_id":{item},"event":"{event}","timestamp":{timestamp}}}"#
    );
    let (status, answer) = call(state, Method::POST, "/events", Some(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
}

/// The raw ids of items the test data marks `available = 0`.
fn unavailable() -> Vec<i64> {
    let b = bundle();
    (0..b.items.len())
        .filter(|&i| b.item_info[i].available == Some(false))
        .map(|i| b.items.raw(i as u32))
        .collect()
}

#[tokio::test]
async fn every_known_user_gets_the_models_answer_and_unknown_users_get_popular() {
    let state = state();
    let engine = state.engine();
    let b = bundle();
    // Every shopper training knew, active lately or not.
    for u in 0..b.users.len() as u32 {
        let user = b.users.raw(u);
        let body = get(&state, &format!("/recommendations?user_id={user}&k=10")).await;
        assert_eq!(body["model"], json!(engine.model), "{body}");
        assert_eq!(body["known_user"], json!(true));
        assert_eq!(body["model_version"], json!(b.manifest.run_id));
        assert_eq!(sources(&body).len(), 10);
        assert!(sources(&body).iter().any(|s| s != "popular"), "{body}");
        // The service's answer is the engine's, item for item.
        let direct = engine
            .answer(&crate::engine::Request::new(user, &[], 10))
            .unwrap();
        let mut direct: Value =
            serde_json::from_str(&serde_json::to_string(&direct).unwrap()).unwrap();
        direct["variant"] = json!("default");
        assert_eq!(body, direct);
    }
    let body = get(&state, "/recommendations?user_id=-999&k=7").await;
    assert_eq!(body["known_user"], json!(false));
    assert_eq!(body["model"], json!("popular"));
    assert_eq!(sources(&body), vec!["popular"; 7]);
    let popular: Vec<i64> = engine.popular(7).iter().map(|p| p.0).collect();
    assert_eq!(item_ids(&body, "recommendations"), popular);
}

#[tokio::test]
async fn new_events_change_the_very_next_answer() {
    let state = state();
    let b = bundle();
    let items = b.items.raw_ids();
    // A brand-new shopper: popular first, then a model-ranked answer after two views.
    let before = get(&state, "/recommendations?user_id=-5&k=10").await;
    assert_eq!(before["model"], json!("popular"));
    post_event(&state, -5, items[3], "view", 1_442_000_000_000).await;
    post_event(&state, -5, items[7], "view", 1_442_000_000_001).await;
    let after = get(&state, "/recommendations?user_id=-5&k=10").await;
    assert_eq!(after["model"], json!(state.engine().model), "{after}");
    assert_eq!(after["known_user"], json!(false));
    assert_eq!(after["new_events"], json!(2));
    assert_ne!(
        item_ids(&after, "recommendations"),
        item_ids(&before, "recommendations")
    );
    assert!(sources(&after).iter().any(|s| s != "popular"));

    // A known shopper who carts an item: it leaves their list at once.
    let user = b.users.raw(0);
    let first = get(&state, &format!("/recommendations?user_id={user}&k=10")).await;
    let top = item_ids(&first, "recommendations")[0];
    post_event(&state, user, top, "addtocart", 1_442_000_000_000).await;
    let next = get(&state, &format!("/recommendations?user_id={user}&k=10")).await;
    let ids = item_ids(&next, "recommendations");
    assert!(
        !ids.contains(&top),
        "a carted item is not recommended again"
    );
    assert_eq!(ids.len(), 10);
    assert_eq!(next["new_events"], json!(1));
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no duplicates: {ids:?}");
}

#[tokio::test]
async fn exclude_and_category_narrow_the_answer_and_it_still_has_k_items() {
    let state = state();
    let b = bundle();
    let user = b.users.raw(1);
    let plain = get(&state, &format!("/recommendations?user_id={user}&k=10")).await;
    let ids = item_ids(&plain, "recommendations");
    let uri = format!(
        "/recommendations?user_id={user}&k=10&exclude={},{}",
        ids[0], ids[1]
    );
    let excluded = item_ids(&get(&state, &uri).await, "recommendations");
    assert_eq!(excluded.len(), 10);
    assert!(!excluded.contains(&ids[0]) && !excluded.contains(&ids[1]));
    // The category of the first item, and how many items it has.
    let first = b.items.get(ids[0]).unwrap() as usize;
    let category = b.item_info[first]
        .category
        .expect("the test data has categories");
    let in_category = (0..b.items.len())
        .filter(|&i| b.item_info[i].category == Some(category))
        .filter(|&i| b.item_info[i].available != Some(false))
        .count();
    let body = get(
        &state,
        &format!("/recommendations?user_id={user}&k=10&category={category}"),
    )
    .await;
    let got = item_ids(&body, "recommendations");
    assert!(!got.is_empty());
    assert!(got.len() <= 10 && got.len() >= in_category.min(10).saturating_sub(2));
    for id in got {
        let i = b.items.get(id).unwrap() as usize;
        assert_eq!(b.item_info[i].category, Some(category), "item {id}");
    }
}

#[tokio::test]
async fn unavailable_items_never_appear_in_random_requests() {
    let state = state();
    let b = bundle();
    let hidden = unavailable();
    assert!(
        !hidden.is_empty(),
        "the test data marks some items unavailable"
    );
    let mut rng = Rng::new(11);
    for round in 0..150 {
        let user = if rng.chance(0.7) {
            b.users.raw(rng.below(b.users.len() as u64) as u32)
        } else {
            -1_000 - round
        };
        // Some shoppers view unavailable items first: still never recommended.
        for e in 0..rng.below(4) {
            let item = if rng.chance(0.5) {
                hidden[rng.below(hidden.len() as u64) as usize]
            } else {
                b.items.raw(rng.below(b.items.len() as u64) as u32)
            };
            post_event(&state, user, item, "view", 1_442_000_000_000 + e as i64).await;
        }
        let k = 1 + rng.below(40);
        let body = get(&state, &format!("/recommendations?user_id={user}&k={k}")).await;
        for id in item_ids(&body, "recommendations") {
            assert!(
                !hidden.contains(&id),
                "round {round}: unavailable {id} served"
            );
        }
    }
}

#[tokio::test]
async fn similar_items_and_unknown_item_fallback() {
    let state = state();
    let item = bundle().items.raw_ids()[0];
    let (status, body) = call(
        &state,
        Method::GET,
        &format!("/similar?item_id={item}&k=5"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids = item_ids(&body, "similar");
    assert_eq!(ids.len(), 5);
    assert!(!ids.contains(&item));
    // Beyond the cached depth the answer is computed directly and agrees with it.
    let (_, long) = call(
        &state,
        Method::GET,
        &format!("/similar?item_id={item}&k=60"),
        None,
    )
    .await;
    assert_eq!(&item_ids(&long, "similar")[..5], &ids[..]);
    let (_, body) = call(&state, Method::GET, "/similar?item_id=-1&k=3", None).await;
    assert_eq!(body["known_item"], json!(false));
    assert_eq!(body["fallback"], json!("popular"));
    assert_eq!(item_ids(&body, "similar").len(), 3);
}

#[tokio::test]
async fn bad_input_answers_4xx_naming_the_problem() {
    let state = state();
    let cases: &[(Method, &str, Option<&str>, StatusCode, &str)] = &[
        (
            Method::GET,
            "/recommendations",
            None,
            StatusCode::BAD_REQUEST,
            "user_id is required",
        ),
        (
            Method::GET,
            "/recommendations?user_id=abc",
            None,
            StatusCode::BAD_REQUEST,
            "user_id must be an integer",
        ),
        (
            Method::GET,
            "/recommendations?user_id=1&k=0",
            None,
            StatusCode::BAD_REQUEST,
            "k must be between 1 and 100",
        ),
        (
            Method::GET,
            "/recommendations?user_id=1&k=-3",
            None,
            StatusCode::BAD_REQUEST,
            "k must be between",
        ),
        (
            Method::GET,
            "/recommendations?user_id=1&k=101",
            None,
            StatusCode::BAD_REQUEST,
            "k must be between 1 and 100",
        ),
        (
            Method::GET,
            "/recommendations?user_id=1&k=ten",
            None,
            StatusCode::BAD_REQUEST,
            "k must be an integer",
        ),
        (
            Method::GET,
            "/recommendations?user_id=",
            None,
            StatusCode::BAD_REQUEST,
            "user_id must be an integer",
        ),
        (
            Method::GET,
            "/recommendations?user_id=1&exclude=5,x",
            None,
            StatusCode::BAD_REQUEST,
            "exclude must be comma-separated integer ids",
        ),
        (
            Method::GET,
            "/recommendations?user_id=1&exclude=1,2,3,4,5,6",
            None,
            StatusCode::BAD_REQUEST,
            "at most 5",
        ),
        (
            Method::GET,
            "/recommendations?user_id=1&category=shoes",
            None,
            StatusCode::BAD_REQUEST,
            "category must be an integer",
        ),
        (
            // One past the largest i64: the document bounds ids to int64.
            Method::GET,
            "/recommendations?user_id=9223372036854775808",
            None,
            StatusCode::BAD_REQUEST,
            "user_id must be an integer",
        ),
        (
            Method::GET,
            "/recommendations?user_id=1&exclude=5,-9223372036854775809",
            None,
            StatusCode::BAD_REQUEST,
            "exclude must be comma-separated integer ids",
        ),
        (
            Method::GET,
            "/similar?k=3",
            None,
            StatusCode::BAD_REQUEST,
            "item_id is required",
        ),
        (
            Method::GET,
            "/similar?item_id=1.5",
            None,
            StatusCode::BAD_REQUEST,
            "item_id must be an integer",
        ),
        (
            Method::POST,
            "/events",
            Some(r#"{"user_id":1,"item_id":2,"event":"click"}"#),
            StatusCode::BAD_REQUEST,
            "event must be one of view, addtocart, transaction",
        ),
        (
            Method::POST,
            "/events",
            Some(r#"{"user_id":1,"item_id":2"#),
            StatusCode::BAD_REQUEST,
            "invalid event",
        ),
        (
            Method::POST,
            "/events",
            Some(r#"{"user_id":"x","item_id":2,"event":"view"}"#),
            StatusCode::BAD_REQUEST,
            "user_id",
        ),
        (
            Method::POST,
            "/events",
            Some(r#"{"item_id":2,"event":"view"}"#),
            StatusCode::BAD_REQUEST,
            "user_id",
        ),
        (
            Method::POST,
            "/events",
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid event",
        ),
        (
            Method::POST,
            "/events",
            Some(r#"{"user_id":1,"item_id":2,"event":"view","timestamp":null}"#),
            StatusCode::BAD_REQUEST,
            "timestamp must be an integer (UTC milliseconds) or left out, got null",
        ),
        (
            Method::POST,
            "/events",
            Some(r#"{"user_id":1,"item_id":2,"event":"view","timestamp":"2015-09-01"}"#),
            StatusCode::BAD_REQUEST,
            "timestamp must be an integer",
        ),
        (
            // 1677, as the smallest i64 of nanoseconds: it would sort before every real event.
            Method::POST,
            "/events",
            Some(r#"{"user_id":1,"item_id":2,"event":"view","timestamp":-9223372036854775808}"#),
            StatusCode::BAD_REQUEST,
            "timestamp -9223372036854775808 is out of range",
        ),
        (
            // Seconds sent as milliseconds: January 1970.
            Method::POST,
            "/events",
            Some(r#"{"user_id":1,"item_id":2,"event":"view","timestamp":1441065600}"#),
            StatusCode::BAD_REQUEST,
            "is out of range",
        ),
        (
            // One ms before 2000-01-01, the document's minimum.
            Method::POST,
            "/events",
            Some(r#"{"user_id":1,"item_id":2,"event":"view","timestamp":946684799999}"#),
            StatusCode::BAD_REQUEST,
            "timestamp 946684799999 is out of range",
        ),
        (
            // The year 2100.
            Method::POST,
            "/events",
            Some(r#"{"user_id":1,"item_id":2,"event":"view","timestamp":4102444800000}"#),
            StatusCode::BAD_REQUEST,
            "past the service's clock",
        ),
        (
            Method::GET,
            "/nowhere",
            None,
            StatusCode::NOT_FOUND,
            "no route /nowhere",
        ),
        (
            Method::DELETE,
            "/events",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "DELETE is not allowed",
        ),
        (
            Method::POST,
            "/admin/reload",
            None,
            StatusCode::UNAUTHORIZED,
            "admin token",
        ),
    ];
    for (method, uri, body, status, needle) in cases {
        let (got, answer) = call(&state, method.clone(), uri, *body).await;
        assert_eq!(got, *status, "{method} {uri} {body:?}: {answer}");
        let message = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{uri}: no error field in {answer}"));
        assert!(
            message.contains(needle),
            "{method} {uri}: {message:?} lacks {needle:?}"
        );
    }
    let huge = format!(
        r#"{{"user_id":1,"item_id":2,"event":"view","pad":"{}"}}"#,
        "x".repeat(4096)
    );
    let (status, answer) = call(&state, Method::POST, "/events", Some(&huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("invalid event"));
    // A declared length over the limit is refused before any body is read.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/events")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, "1000000000000")
        .body(Body::empty())
        .unwrap();
    let response = app(state.clone(), 1024).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("the body is 1000000000000 bytes; at most 1024"),
        "{text}"
    );
    // Nothing a client sent was a server error.
    let metrics = state.metrics.render();
    assert!(!metrics.contains("status=\"500\""), "{metrics}");
}

#[tokio::test]
async fn events_on_items_the_model_does_not_know_are_kept_but_never_recommended() {
    let state = state();
    let user = bundle().users.raw(0);
    let t = 1_441_065_600_000; // 2015-09-01
    for (i, item) in [-42, 999_999_999, -42].into_iter().enumerate() {
        let body = format!(
            r#"{{"user_id":{user},"item_id":{item},"event":"view","timestamp":{}}}"#,
            t + i as i64
        );
        let (status, answer) = call(&state, Method::POST, "/events", Some(&body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer["known_item"], json!(false), "{answer}");
    }
    let body = format!(
        r#"{{"user_id":{user},"item_id":{},"event":"view"}}"#,
        bundle().items.raw(0)
    );
    let (_, answer) = call(&state, Method::POST, "/events", Some(&body)).await;
    assert_eq!(answer["known_item"], json!(true), "{answer}");
    let answer = get(&state, &format!("/recommendations?user_id={user}&k=100")).await;
    let ids = item_ids(&answer, "recommendations");
    assert!(!ids.is_empty());
    assert!(
        !ids.contains(&-42) && !ids.contains(&999_999_999),
        "{ids:?}"
    );
    assert_eq!(answer["new_events"], json!(1), "{answer}");
}

#[tokio::test]
async fn the_openapi_document_states_the_configured_limits() {
    let state = AppState::new(
        vec![Arc::new(engine())],
        memory_store(),
        Metrics::new(),
        Settings {
            max_k: 7,
            max_exclude: 3,
            admin_token: None,
            ..settings()
        },
    )
    .unwrap();
    let (_, doc) = call(&state, Method::GET, "/openapi.json", None).await;
    for path in ["/recommendations", "/similar"] {
        let k = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "k")
            .unwrap();
        assert_eq!(k["schema"]["maximum"], json!(7), "{path}");
        assert_eq!(k["schema"]["default"], json!(7), "{path}");
    }
    let (status, answer) = call(&state, Method::GET, "/similar?item_id=1&k=8", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let exclude = &doc["paths"]["/recommendations"]["get"]["parameters"][2];
    assert_eq!(exclude["name"], json!("exclude"));
    assert_eq!(exclude["schema"]["maxItems"], json!(3));
    // Without a token, reloading needs none, and the document says so.
    let reload = &doc["paths"]["/admin/reload"]["post"];
    assert_eq!(reload["security"], json!([]));
    assert!(reload["responses"].get("401").is_none(), "{reload}");
}

#[tokio::test]
async fn failed_reload_keeps_the_model_and_says_why() {
    let state = state();
    let before = state.engine().version.clone();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/admin/reload")
        .header(header::AUTHORIZATION, "Bearer secret")
        .body(Body::empty())
        .unwrap();
    let response = app(state.clone(), 1024).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value =
        serde_json::from_slice(&to_bytes(response.into_body(), usize::MAX).await.unwrap()).unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains(&format!("still serving {before}")),
        "{message}"
    );
    assert!(message.contains("no-such-dir"), "{message}");
    assert_eq!(state.engine().version, before);
    assert!(state
        .metrics
        .render()
        .contains("recsys_model_reloads_total{outcome=\"failure\"} 1"));
}

#[tokio::test]
async fn openapi_document_lists_exactly_the_routes() {
    let state = state();
    let (status, doc) = call(&state, Method::GET, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    // The file, with this state's limits (max_k 100, max_exclude 5) filled in.
    let mut file: Value = serde_json::from_str(OPENAPI).unwrap();
    file["paths"]["/recommendations"]["get"]["parameters"][2]["schema"]["maxItems"] = json!(5);
    assert_eq!(doc, file);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 9);
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            // Every documented route exists: anything but 404/405 (a missing
            // parameter answers 400, which proves the route matched).
            let (status, body) = call(&state, method.clone(), path, None).await;
            // Without an experiment, /experiment says so with a 404 of its own.
            let says_why = body["error"]
                .as_str()
                .is_some_and(|e| e.contains("[serve.experiment]"));
            assert!(
                (status != StatusCode::NOT_FOUND || says_why)
                    && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but answers {status}: {body}"
            );
        }
    }
}

/// The fields of `value` against the document's schema `name`: every required
/// one present, none undocumented (schemathesis checks the full schemas).
fn assert_fields(value: &Value, name: &str) {
    let doc: Value = serde_json::from_str(OPENAPI).unwrap();
    let schema = &doc["components"]["schemas"][name];
    let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
    for required in schema["required"].as_array().unwrap() {
        assert!(
            value.get(required.as_str().unwrap()).is_some(),
            "{name}: {required} missing from {value}"
        );
    }
    for key in keys {
        assert!(
            schema["properties"].get(key).is_some(),
            "{name}: {key} is not documented, in {value}"
        );
    }
}

#[tokio::test]
async fn answers_carry_exactly_the_documented_fields() {
    let state = experiment_state([0.5, 0.5]);
    let user = bundle().users.raw(0);
    let item = bundle().items.raw(0);
    let body = format!(r#"{{"user_id":{user},"item_id":{item},"event":"view"}}"#);
    let (status, recorded) = call(&state, Method::POST, "/events", Some(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // `known_item` was sent but not documented: schemathesis' first finding.
    assert_fields(&recorded, "RecordedEvent");
    let answer = get(&state, &format!("/recommendations?user_id={user}&k=5")).await;
    assert_fields(&answer, "Recommendations");
    assert_fields(&answer["recommendations"][0], "Item");
    assert_fields(&get(&state, "/similar?item_id=-1&k=3").await, "Similar");
    let ready = get(&state, "/ready").await;
    assert_fields(&ready, "Ready");
    assert!(ready.get("experiment").is_some());
    let report = get(&state, "/experiment").await;
    assert_fields(&report, "ExperimentReport");
    let (_, error) = call(&state, Method::GET, "/similar", None).await;
    assert_fields(&error, "Error");
}

/// The sum of the series of `name` whose labels include every one of `labels`.
fn metric(state: &AppState, name: &str, labels: &[(&str, &str)]) -> f64 {
    state
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test]
async fn carts_of_shown_items_are_credited_once_to_variant_and_source() {
    let state = state();
    let user = bundle().users.raw(0);
    let answer = get(&state, &format!("/recommendations?user_id={user}&k=5")).await;
    assert_eq!(answer["variant"], "default", "{answer}");
    let shown = item_ids(&answer, "recommendations");
    let source = sources(&answer)[1].clone();
    let shown_total = metric(
        &state,
        "recsys_recommended_items_total",
        &[("variant", "default")],
    );
    assert_eq!(shown_total, 5.0);
    let credited = |event: &'static str| {
        let state = state.clone();
        move || {
            metric(
                &state,
                "recsys_attributed_events_total",
                &[("event", event)],
            )
        }
    };
    // An item never shown to them: nothing credited.
    let never = (0..bundle().items.len())
        .map(|i| bundle().items.raw(i as u32))
        .find(|id| !shown.contains(id))
        .unwrap();
    post_event(&state, user, never, "addtocart", now()).await;
    assert_eq!(credited("addtocart")(), 0.0);
    // The second item shown: credited to its source, once however often carted.
    post_event(&state, user, shown[1], "addtocart", now()).await;
    post_event(&state, user, shown[1], "addtocart", now()).await;
    assert_eq!(credited("addtocart")(), 1.0);
    assert_eq!(
        metric(
            &state,
            "recsys_attributed_events_total",
            &[
                ("variant", "default"),
                ("event", "addtocart"),
                ("source", &source)
            ]
        ),
        1.0
    );
    post_event(&state, user, shown[1], "transaction", now()).await;
    assert_eq!(credited("transaction")(), 1.0);
    // Another shopper carting the same item is not credited: it was not shown to them.
    post_event(&state, user + 1_000_000, shown[0], "addtocart", now()).await;
    assert_eq!(credited("addtocart")(), 1.0);
    // Views are never credited.
    post_event(&state, user, shown[0], "view", now()).await;
    assert_eq!(credited("view")(), 0.0);
}

#[tokio::test]
async fn feedback_can_be_turned_off() {
    let settings = Settings {
        feedback_window_ms: 0,
        ..settings()
    };
    let state = AppState::new(
        vec![Arc::new(engine())],
        memory_store(),
        Metrics::new(),
        settings,
    )
    .unwrap();
    let user = bundle().users.raw(0);
    let answer = get(&state, &format!("/recommendations?user_id={user}&k=5")).await;
    let shown = item_ids(&answer, "recommendations");
    post_event(&state, user, shown[0], "addtocart", now()).await;
    assert_eq!(metric(&state, "recsys_attributed_events_total", &[]), 0.0);
}

#[tokio::test]
async fn experiment_assigns_stably_and_reports_what_a_hand_count_gives() {
    let state = experiment_state([1.0, 3.0]);
    let e = state.settings.experiment.clone().unwrap();
    let (status, _) = call(&state, Method::GET, "/experiment", None).await;
    assert_eq!(status, StatusCode::OK);
    // Known and unknown shoppers; every second one carts the first item shown.
    let users: Vec<i64> = (0..bundle().users.len().min(150) as u32)
        .map(|u| bundle().users.raw(u))
        .chain(9_000_000..9_000_150)
        .collect();
    let mut expected = [crate::experiment::Tally::default(); 2];
    for (n, &user) in users.iter().enumerate() {
        let first = get(&state, &format!("/recommendations?user_id={user}&k=4")).await;
        let again = get(&state, &format!("/recommendations?user_id={user}&k=4")).await;
        let v = e.assign(user);
        assert_eq!(first["variant"], e.variants[v].name.as_str());
        assert_eq!(
            again["variant"], first["variant"],
            "the same shopper, the same variant"
        );
        let t = &mut expected[v];
        t.shoppers += 1;
        t.answers += 2;
        t.items_shown += 8;
        if n % 2 == 0 {
            let item = item_ids(&first, "recommendations")[0];
            post_event(&state, user, item, "addtocart", now()).await;
            t.attributed_add_to_carts += 1;
            t.converted_shoppers += 1;
        }
    }
    assert!(expected.iter().all(|t| t.shoppers > 0));
    let (status, report) = call(&state, Method::GET, "/experiment", None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let hand = e.report(&expected);
    let served: crate::experiment::Report = serde_json::from_value(report.clone()).unwrap();
    assert_eq!(served.verdict, hand.verdict);
    for (s, h) in served.variants.iter().zip(&hand.variants) {
        assert_eq!((&s.name, s.tally), (&h.name, h.tally));
        // Floats to the last digits JSON carries.
        for (a, b) in [
            (s.rate, h.rate),
            (s.rate_low, h.rate_low),
            (s.rate_high, h.rate_high),
        ] {
            assert!((a - b).abs() < 1e-12, "{a} {b}");
        }
        assert_eq!(s.p_value.is_some(), h.p_value.is_some());
        if let (Some(a), Some(b)) = (s.p_value, h.p_value) {
            assert!((a - b).abs() < 1e-12);
        }
    }
    assert_eq!(report["variants"][1]["shoppers"], expected[1].shoppers);
    assert!(report["variants"][1]["p_value"].is_number(), "{report}");
    // The per-variant series the dashboard divides.
    for (v, t) in e.variants.iter().zip(&expected) {
        let labels = [("variant", v.name.as_str())];
        assert_eq!(
            metric(&state, "recsys_recommended_items_total", &labels),
            t.items_shown as f64
        );
        assert_eq!(
            metric(&state, "recsys_attributed_events_total", &labels),
            t.attributed_add_to_carts as f64
        );
    }
}

#[tokio::test]
async fn without_an_experiment_its_report_is_a_clear_404() {
    let (status, body) = call(&state(), Method::GET, "/experiment", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("[serve.experiment]"),
        "{body}"
    );
}

#[tokio::test]
async fn a_reload_swaps_every_variant_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let saved = bundle().save(dir.path()).unwrap();
    let mut state = experiment_state([1.0, 1.0]);
    let mut settings = state.settings.clone();
    let experiment = settings.experiment.as_mut().unwrap();
    experiment.variants[0].bundle = saved.clone();
    experiment.variants[1].bundle = dir.path().join("missing");
    state = AppState::new(
        vec![Arc::new(engine()), Arc::new(engine())],
        memory_store(),
        Metrics::new(),
        settings.clone(),
    )
    .unwrap();
    let before: Vec<_> = state
        .serving_now()
        .variants
        .iter()
        .map(|v| v.1.clone())
        .collect();
    let outcome = state.reload().await;
    let error = outcome.error.expect("the second variant has no bundle");
    assert!(error.contains("variant treatment"), "{error}");
    let after = state.serving_now();
    for (old, new) in before.iter().zip(&after.variants) {
        assert!(
            std::sync::Arc::ptr_eq(old, &new.1),
            "a variant was swapped alone"
        );
    }
    // With both bundles present, both are swapped.
    settings.experiment.as_mut().unwrap().variants[1].bundle = saved.clone();
    let state = AppState::new(
        vec![Arc::new(engine()), Arc::new(engine())],
        memory_store(),
        Metrics::new(),
        settings,
    )
    .unwrap();
    let outcome = state.reload().await;
    assert_eq!(outcome.error, None);
    for (_, engine) in &state.serving_now().variants {
        assert_eq!(engine.path, saved);
    }
}
