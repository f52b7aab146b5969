//! Every HTTP route, declared in one place.
//!
//! [`app`] builds the router from [`AppState`]; tests drive it with
//! `tower::ServiceExt::oneshot` without a socket. The OpenAPI document
//! (`openapi.json` beside this file, served at `/openapi.json`) describes
//! exactly these routes; a test checks that the two agree.
//!
//! Client mistakes answer 4xx with `{"error": "…"}` naming the parameter;
//! nothing a client sends can produce a 500.

use std::time::Instant;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::state::{AppState, Settings};
use super::store::ServiceEvent;
use crate::data::EventKind;
use crate::engine::Request as AnswerRequest;

/// The OpenAPI 3 description of [`app`]'s routes.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The router: every route, the metrics layer, the body limit and the JSON 404.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/recommendations", get(recommendations))
        .route("/similar", get(similar))
        .route("/events", post(events))
        .route("/experiment", get(experiment))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/admin/reload", post(reload))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(
            max_body_bytes,
            refuse_oversized_bodies,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// A client or server error as `{"error": "…"}` with its status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

/// Count and time every request by its route pattern (not the raw path, so
/// the label set stays small whatever clients send), give it a request id
/// (the client's `x-request-id` when it sent a usable one) returned in the
/// response's `x-request-id`, and log one line per request at debug level.
async fn track(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let id = request_id(request.headers());
    let method = request.method().clone();
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    let elapsed = start.elapsed();
    let status = response.status();
    let m = &state.metrics;
    m.requests
        .with_label_values(&[route.as_str(), status.as_str()])
        .inc();
    m.latency
        .with_label_values(&[route.as_str()])
        .observe(elapsed.as_secs_f64());
    let version = response
        .extensions()
        .get::<ModelVersion>()
        .map(|v| v.0.clone());
    tracing::debug!(
        request_id = id.as_str(),
        method = method.as_str(),
        route = route.as_str(),
        status = status.as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1e3,
        model_version = version.as_deref(),
        "request"
    );
    if let Ok(value) = header::HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The `x-request-id` header.
const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// A request's id, for handlers' log lines.
#[derive(Debug, Clone)]
struct RequestId(String);

/// The model version an answer came from, for the request's log line.
#[derive(Debug, Clone)]
struct ModelVersion(String);

/// The client's `x-request-id` when it is 1–64 visible ASCII characters,
/// else a new one: this process's start time and a counter, both hex.
fn request_id(headers: &HeaderMap) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    if let Some(given) = headers.get(&REQUEST_ID).and_then(|v| v.to_str().ok()) {
        if (1..=64).contains(&given.len()) && given.bytes().all(|b| b.is_ascii_graphic()) {
            return given.to_string();
        }
    }
    static PROCESS: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let process = PROCESS.get_or_init(|| now_ms() as u64 & 0xffff_ffff);
    format!("{process:08x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Refuse a body whose declared length is over the limit before reading any
/// of it: a client announcing a terabyte gets 413 at once, not after it sent
/// the first 16 KB.
async fn refuse_oversized_bodies(
    State(max_body_bytes): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > max_body_bytes as u64 => ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "the body is {length} bytes; at most {max_body_bytes} are accepted ([serve] max_body_bytes)"
            ),
        }
        .into_response(),
        _ => next.run(request).await,
    }
}

type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// Query parameters, parsed with errors that name them.
struct Parsed(Vec<(String, String)>);

impl Parsed {
    fn new(params: Params) -> Result<Parsed, ApiError> {
        params.map(|Query(pairs)| Parsed(pairs)).map_err(|e| {
            ApiError::bad_request(format!("malformed query string: {}", e.body_text()))
        })
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.as_str())
    }

    fn id(&self, name: &str) -> Result<i64, ApiError> {
        let value = self
            .raw(name)
            .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))?;
        value.trim().parse().map_err(|_| {
            ApiError::bad_request(format!("{name} must be an integer id, got {value:?}"))
        })
    }

    fn k(&self, max_k: usize) -> Result<usize, ApiError> {
        let Some(value) = self.raw("k") else {
            return Ok(10.min(max_k));
        };
        match value.trim().parse::<i64>() {
            Ok(k) if k >= 1 && k as u64 <= max_k as u64 => Ok(k as usize),
            Ok(k) => Err(ApiError::bad_request(format!(
                "k must be between 1 and {max_k}, got {k}"
            ))),
            Err(_) => Err(ApiError::bad_request(format!(
                "k must be an integer between 1 and {max_k}, got {value:?}"
            ))),
        }
    }
}

impl Parsed {
    /// `exclude=ID,ID,…`: at most `max` integer ids.
    fn exclude(&self, max: usize) -> Result<Vec<i64>, ApiError> {
        let Some(value) = self.raw("exclude") else {
            return Ok(Vec::new());
        };
        let ids: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        if ids.len() > max {
            return Err(ApiError::bad_request(format!(
                "exclude lists {} ids; at most {max}",
                ids.len()
            )));
        }
        ids.into_iter()
            .map(|id| {
                id.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "exclude must be comma-separated integer ids, got {id:?}"
                    ))
                })
            })
            .collect()
    }

    /// `category=ID`, if given.
    fn category(&self) -> Result<Option<i64>, ApiError> {
        match self.raw("category") {
            None => Ok(None),
            Some(_) => self.id("category").map(Some),
        }
    }
}

/// `GET /recommendations`: the engine's live answer for the shopper, with the
/// events the store holds for them.
async fn recommendations(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    params: Params,
) -> Result<Response, ApiError> {
    let params = Parsed::new(params)?;
    let user_id = params.id("user_id")?;
    let k = params.k(state.settings.max_k)?;
    let exclude = params.exclude(state.settings.max_exclude)?;
    let category = params.category()?;
    let (variant, engine) = state.variant(user_id);
    let events = match state
        .store
        .recent(user_id, state.settings.events_per_user)
        .await
    {
        Ok(events) => events,
        Err(err) => {
            // Answer from training history alone rather than fail the shopper's page.
            state
                .metrics
                .store_errors
                .with_label_values(&["read"])
                .inc();
            tracing::warn!(
                request_id = request_id.as_ref().map(|r| r.0 .0.as_str()),
                user_id,
                model_version = engine.version.as_str(),
                "event store read failed, answering from training history: {err}"
            );
            Vec::new()
        }
    };
    let request = AnswerRequest {
        user_id,
        events: &events,
        k,
        exclude: &exclude,
        category,
        model: None,
    };
    let answer = engine.answer(&request).map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("{e:#}"),
    })?;
    state
        .record_answer(user_id, &variant, &answer, now_ms())
        .await;
    let mut response = Json(Served {
        answer: &answer,
        variant: &variant,
    })
    .into_response();
    response
        .extensions_mut()
        .insert(ModelVersion(answer.model_version.clone()));
    Ok(response)
}

/// An answer as the service gives it: the engine's, with the shopper's variant.
#[derive(Serialize)]
struct Served<'a> {
    #[serde(flatten)]
    answer: &'a crate::engine::Answer,
    /// `default` when no experiment runs.
    variant: &'a str,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn similar(State(state): State<AppState>, params: Params) -> Result<Json<Value>, ApiError> {
    let params = Parsed::new(params)?;
    let item_id = params.id("item_id")?;
    let k = params.k(state.settings.max_k)?;
    let engine = state.engine();
    if !engine.has_similar() {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "model {} has no ALS factors, so it cannot tell similar items",
                engine.version
            ),
        });
    }
    // Unknown items get popular ones, marked as such: a new product page is
    // normal traffic, not an error.
    let (known, picks) = match engine.similar(item_id, k) {
        Some(list) => (true, list),
        None => (false, engine.popular(k)),
    };
    let mut body = json!({
        "item_id": item_id,
        "model_version": engine.version,
        "known_item": known,
        "similar": picks.iter().map(|&(item_id, score)| json!({"item_id": item_id, "score": score})).collect::<Vec<_>>(),
    });
    if !known {
        body["fallback"] = json!("popular");
    }
    Ok(Json(body))
}

/// The body of `POST /events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    user_id: i64,
    item_id: i64,
    event: String,
    /// UTC ms; the time of receipt when absent (`null` is refused: a client
    /// that meant to send a time should hear that it did not).
    #[serde(default)]
    timestamp: Timestamp,
}

/// An event's `timestamp`: absent, or whatever JSON value was sent.
#[derive(Debug, Default)]
enum Timestamp {
    #[default]
    Absent,
    Sent(Value),
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Timestamp::Sent)
    }
}

/// The earliest event time accepted: 2000-01-01 UTC. Older times are typos
/// or seconds sent as ms, and would sort before every real event.
const EARLIEST_EVENT_MS: i64 = 946_684_800_000;
/// How far ahead of the service's clock an event may be dated (clock skew).
const MAX_FUTURE_MS: i64 = 5 * 60_000;

impl Timestamp {
    /// The event's time in UTC ms, given the time of receipt.
    fn resolve(&self, received_ms: i64) -> Result<i64, ApiError> {
        let value = match self {
            Timestamp::Absent => return Ok(received_ms),
            Timestamp::Sent(value) => value,
        };
        let Some(ms) = value.as_i64() else {
            return Err(ApiError::bad_request(format!(
                "timestamp must be an integer (UTC milliseconds) or left out, got {value}"
            )));
        };
        let latest = received_ms.saturating_add(MAX_FUTURE_MS);
        if !(EARLIEST_EVENT_MS..=latest).contains(&ms) {
            return Err(ApiError::bad_request(format!(
                "timestamp {ms} is out of range: events are dated from 2000-01-01 ({EARLIEST_EVENT_MS}) \
                 to 5 minutes past the service's clock ({latest}); send UTC milliseconds, or leave it out"
            )));
        }
        Ok(ms)
    }
}

async fn events(
    State(state): State<AppState>,
    body: Result<Json<EventBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|rejection| ApiError {
        // 413 for an oversized body, 415 for a wrong content type, else 400.
        status: match rejection.status() {
            s if s.is_client_error() && s != StatusCode::UNPROCESSABLE_ENTITY => s,
            _ => StatusCode::BAD_REQUEST,
        },
        message: format!("invalid event: {}", rejection.body_text()),
    })?;
    let Some(kind) = EventKind::parse(&body.event) else {
        return Err(ApiError::bad_request(format!(
            "event must be one of view, addtocart, transaction; got {:?}",
            body.event
        )));
    };
    let received_ms = now_ms();
    let timestamp_ms = body.timestamp.resolve(received_ms)?;
    let event = ServiceEvent {
        item_id: body.item_id,
        kind,
        timestamp_ms,
    };
    // Attribution is judged at receipt: the shopper carts after seeing the answer.
    if let Err(err) = state.record_event(body.user_id, event, received_ms).await {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("the event was not recorded: {err}"),
        });
    }
    let m = &state.metrics;
    if let Some((users, events)) = state.store.size() {
        m.store_users.set(users as i64);
        m.store_events.set(events as i64);
    }
    // An item the model does not know is kept for the shopper (the catalogue
    // grows between trainings) but cannot be scored or recommended.
    let known_item = state.engine().bundle().items.get(body.item_id).is_some();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "user_id": body.user_id,
            "item_id": body.item_id,
            "event": body.event,
            "timestamp": timestamp_ms,
            "known_item": known_item,
        })),
    ))
}

/// `GET /experiment`: the running A/B test's report, per variant.
async fn experiment(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.experiment_report().await {
        None => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: "no experiment is running; configure [serve.experiment] to run one".into(),
        }),
        Some(Err(err)) => Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("the experiment's counts cannot be read from the event store: {err}"),
        }),
        Some(Ok(report)) => Ok(Json(serde_json::to_value(report).map_err(|e| {
            ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("encoding the report: {e}"),
            }
        })?)),
    }
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(state): State<AppState>) -> Json<Value> {
    let serving = state.serving_now();
    let engine = &serving.variants[0].1;
    let mut body = json!({
        "status": "ready",
        "model_version": engine.version,
        "model": engine.model,
        "similar_recall": engine.similar_recall,
        "candidate_recall": engine.mips_recall,
        "event_store": state.store.kind(),
    });
    if let Some(e) = &state.settings.experiment {
        body["experiment"] = json!({
            "name": e.name,
            "variants": serving.variants.iter().map(|(name, engine)| json!({
                "name": name.as_ref(),
                "model_version": engine.version,
                "model": engine.model,
            })).collect::<Vec<_>>(),
        });
    }
    Json(body)
}

async fn reload(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    if let Some(token) = &state.settings.admin_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: "reloading needs the admin token: Authorization: Bearer <token>".into(),
            });
        }
    }
    let outcome = state.reload().await;
    match outcome.error {
        None => Ok(Json(json!({
            "reloaded": true,
            "model_version": outcome.version,
            "previous_version": outcome.previous,
        }))),
        Some(error) => Err(ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("reload failed, still serving {}: {error}", outcome.version),
        }),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// The OpenAPI document with this service's largest `k` filled in.
async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi_document(&state.settings),
    )
}

/// [`OPENAPI`] as this service applies it: every `k` parameter's maximum
/// (and default, when smaller) is `max_k`, `exclude` holds at most
/// `max_exclude` ids, and `/admin/reload` needs the bearer token only when one
/// is configured. Schemathesis reads these as the limits to test.
pub fn openapi_document(settings: &Settings) -> String {
    let mut doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is valid JSON");
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for path in paths.values_mut() {
            let Some(params) = path
                .get_mut("get")
                .and_then(|get| get.get_mut("parameters"))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for param in params.iter_mut() {
                if param["name"] == "k" {
                    param["schema"]["maximum"] = json!(settings.max_k);
                    param["schema"]["default"] = json!(10.min(settings.max_k));
                } else if param["name"] == "exclude" {
                    param["schema"]["maxItems"] = json!(settings.max_exclude);
                }
            }
        }
    }
    if settings.admin_token.is_none() {
        let reload = &mut doc["paths"]["/admin/reload"]["post"];
        reload["security"] = json!([]);
        if let Some(responses) = reload["responses"].as_object_mut() {
            responses.remove("401");
        }
    }
    doc.to_string()
}

async fn not_found(request: Request) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("no route {}; see /openapi.json", request.uri().path()),
    }
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!(
            "{} is not allowed on {}; see /openapi.json",
            request.method(),
            request.uri().path()
        ),
    }
}
