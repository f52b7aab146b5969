//! The service's request parsing: query strings and JSON bodies sent to the
//! router `recsys serve` runs, through `tower::ServiceExt::oneshot` (no
//! socket), on a small bundle with every model.
//!
//! The service promises that nothing a client sends produces a 5xx and that
//! every client mistake is a 4xx with a JSON `{"error": "…"}` body; this target
//! checks both. An input is up to eight requests separated by NUL bytes (a NUL
//! is valid in neither a URI nor JSON), sent in turn to a service started
//! afresh for the input, so events posted by one request shape the next
//! answer. A request's first byte picks what the rest is:
//!
//! * 0: the query of `GET /recommendations?…`;
//! * 1: the query of `GET /similar?…`;
//! * 2: the JSON body of `POST /events` (`content-type: application/json`);
//! * 3: the same body with no content type;
//! * 4: a whole `GET` path and query;
//! * 5: a whole `POST` path and query, empty JSON body.
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::body::{to_bytes, Body};
use axum::http::{header, Method, Request, StatusCode, Uri};
use libfuzzer_sys::fuzz_target;
use recsys::engine::{Engine, EngineSettings};
use recsys::serve::metrics::Metrics;
use recsys::serve::routes::app;
use recsys::serve::state::{AppState, Settings};
use recsys::serve::store::{EventStore, MemoryFeedback, MemoryStore};
use tower::ServiceExt;

/// The `[serve]` defaults the service runs with.
const MAX_BODY_BYTES: usize = 16 * 1024;

fn engine() -> &'static Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let (bundle, dir) = recsys_fuzz::tiny_bundle();
        let engine = Engine::from_bundle(bundle.clone(), dir, &EngineSettings::default())
            .expect("indexing the bundle");
        Arc::new(engine)
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

fn state() -> AppState {
    let settings = Settings {
        max_k: 100,
        max_exclude: 100,
        engine: EngineSettings::default(),
        events_per_user: 20,
        admin_token: Some("secret".into()),
        bundle_root: Path::new("no-such-bundle").into(),
        experiment: None,
        feedback_window_ms: 30 * 60_000,
    };
    let store = EventStore::Memory(MemoryStore::new(1000, 20), MemoryFeedback::new(1000, 50));
    AppState::new(vec![engine().clone()], store, Metrics::new(), settings)
        .expect("the service's state")
}

/// The request `chunk` describes, if it is one an HTTP client could send.
fn request(chunk: &[u8]) -> Option<Request<Body>> {
    let (&what, rest) = chunk.split_first()?;
    let text = std::str::from_utf8(rest).ok();
    let (method, uri, body, json) = match what % 6 {
        0 => (
            Method::GET,
            format!("/recommendations?{}", text?),
            None,
            false,
        ),
        1 => (Method::GET, format!("/similar?{}", text?), None, false),
        2 => (Method::POST, "/events".into(), Some(rest), true),
        3 => (Method::POST, "/events".into(), Some(rest), false),
        4 => (
            Method::GET,
            format!("/{}", text?.trim_start_matches('/')),
            None,
            false,
        ),
        _ => (
            Method::POST,
            format!("/{}", text?.trim_start_matches('/')),
            Some(&b"{}"[..]),
            true,
        ),
    };
    let uri: Uri = uri.parse().ok()?;
    let mut builder = Request::builder().method(method).uri(uri);
    if json {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    let body = body.map_or(Body::empty(), |b| Body::from(b.to_vec()));
    builder.body(body).ok()
}

fuzz_target!(
    // Training takes seconds: before the first input, not within its timeout.
    init: {
        engine();
        runtime();
    },
    |data: &[u8]| run(data)
);

fn run(data: &[u8]) {
    let requests: Vec<Request<Body>> = data
        .split(|&b| b == 0)
        .take(8)
        .filter_map(request)
        .collect();
    if requests.is_empty() {
        return;
    }
    let state = state();
    runtime().block_on(async {
        for request in requests {
            let uri = request.uri().clone();
            let response = app(state.clone(), MAX_BODY_BYTES)
                .oneshot(request)
                .await
                .expect("the router is infallible");
            let status = response.status();
            let bytes = to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("the body is in memory");
            assert!(
                !status.is_server_error(),
                "{uri} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
            if status.is_client_error() {
                let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                    panic!(
                        "{uri} answered {status} without JSON: {}",
                        String::from_utf8_lossy(&bytes)
                    )
                });
                assert!(
                    body["error"].is_string(),
                    "{uri} answered {status} with {body}"
                );
            } else {
                assert!(
                    status == StatusCode::OK || status == StatusCode::ACCEPTED,
                    "{uri} answered {status}"
                );
            }
        }
    });
}
