//! The router driven without a socket: every route, the blend rules and each
//! bad-input case. The real binary, reloads, Redis and Prometheus are covered
//! by `tests/serve.rs`.

use std::path::Path;

use axum::body::{to_bytes, Body};
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::engine::Engine;
use super::metrics::Metrics;
use super::routes::{app, OPENAPI};
use super::state::{AppState, Settings};
use super::store::{EventStore, MemoryStore};

use crate::bundle::test_bundle as bundle;

fn state() -> AppState {
    let engine = Engine::from_bundle(bundle().clone(), Path::new("unused"), 100).unwrap();
    let settings = Settings {
        max_k: 100,
        online_seeds: 3,
        events_per_user: 50,
        admin_token: Some("secret".into()),
        bundle_root: "no-such-dir".into(),
    };
    AppState::new(
        engine,
        EventStore::Memory(MemoryStore::new(1000, 50)),
        Metrics::new(),
        settings,
    )
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

fn known_user_with_list() -> i64 {
    let b = bundle();
    let lists = b.offline.as_ref().unwrap();
    let u = lists.users[(0..lists.users.len())
        .find(|&j| lists.offsets[j + 1] - lists.offsets[j] >= 10)
        .unwrap()];
    b.users.raw(u)
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

#[tokio::test]
async fn known_user_gets_personal_list_unknown_user_gets_popular() {
    let state = state();
    let user = known_user_with_list();
    let (status, body) = call(
        &state,
        Method::GET,
        &format!("/recommendations?user_id={user}&k=10"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], json!(user));
    assert_eq!(body["model_version"], json!(bundle().manifest.run_id));
    assert_eq!(sources(&body), vec!["personal"; 10]);

    let (status, body) = call(
        &state,
        Method::GET,
        "/recommendations?user_id=-999&k=7",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["known_user"], json!(false));
    assert_eq!(sources(&body), vec!["popular"; 7]);
    let popular: Vec<i64> = state
        .engine()
        .popular()
        .iter()
        .take(7)
        .map(|p| p.0)
        .collect();
    assert_eq!(item_ids(&body, "recommendations"), popular);
}

#[tokio::test]
async fn events_make_online_items_lead_and_the_list_fills_to_k() {
    let state = state();
    let user = known_user_with_list();
    let items = bundle().items.raw_ids();
    let (viewed, carted) = (items[3], items[4]);
    for (item, event) in [(carted, "view"), (viewed, "view"), (carted, "addtocart")] {
        let body = format!(r#"{{"user_id":{user},"item_id":{item},"event":"{event}"}}"#);
        let (status, answer) = call(&state, Method::POST, "/events", Some(&body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    let (_, body) = call(
        &state,
        Method::GET,
        &format!("/recommendations?user_id={user}&k=12"),
        None,
    )
    .await;
    let got = sources(&body);
    assert_eq!(got.len(), 12);
    assert_eq!(&got[..4], ["online", "personal", "online", "personal"]);
    let ids = item_ids(&body, "recommendations");
    assert_eq!(ids[0], viewed, "the latest viewed item leads");
    assert!(
        !ids.contains(&carted),
        "an item already carted is not recommended online"
    );
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no duplicates: {ids:?}");

    let (_, online) = call(
        &state,
        Method::GET,
        &format!("/recommendations/online?user_id={user}&k=5"),
        None,
    )
    .await;
    assert!(sources(&online).iter().all(|s| s == "online"));
    assert_eq!(item_ids(&online, "recommendations")[0], viewed);
    let (_, offline) = call(
        &state,
        Method::GET,
        &format!("/recommendations/offline?user_id={user}&k=5"),
        None,
    )
    .await;
    assert_eq!(sources(&offline), vec!["personal"; 5]);

    // A user only this service has seen: online items first, popular after.
    let (_, body) = call(
        &state,
        Method::POST,
        "/events",
        Some(&format!(
            r#"{{"user_id":-5,"item_id":{viewed},"event":"view","timestamp":1}}"#
        )),
    )
    .await;
    assert_eq!(body["timestamp"], json!(1));
    let (_, body) = call(
        &state,
        Method::GET,
        "/recommendations?user_id=-5&k=40",
        None,
    )
    .await;
    let got = sources(&body);
    assert_eq!(got.len(), 40);
    assert_eq!(got[0], "online");
    assert!(got.contains(&"popular".to_string()));
    assert!(!got.contains(&"personal".to_string()));
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
            "/recommendations/online?user_id=",
            None,
            StatusCode::BAD_REQUEST,
            "user_id must be an integer",
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
    // Nothing a client sent was a server error.
    let metrics = state.metrics.render();
    assert!(!metrics.contains("status=\"500\""), "{metrics}");
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
    assert_eq!(doc, serde_json::from_str::<Value>(OPENAPI).unwrap());
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 10);
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            // Every documented route exists: anything but 404/405 (a missing
            // parameter answers 400, which proves the route matched).
            let (status, body) = call(&state, method.clone(), path, None).await;
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but answers {status}: {body}"
            );
        }
    }
}
