//! `recsys serve`: the real binary on a free loopback port, with a bundle
//! trained on `data/`; reloads, signals, metrics, Redis and a real Prometheus.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli::{free_port, ok, repo, Scratch};

/// A running `recsys serve`, killed when dropped.
struct Server {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(scratch: &Scratch, extra: &[&str]) -> Server {
        Server::start_with_env(scratch, extra, &[])
    }

    fn start_with_env(scratch: &Scratch, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::try_start(scratch, extra, env)
            .unwrap_or_else(|log| panic!("serve did not start:\n{log}"))
    }

    /// Start and wait for the "listening on" line; Err(stderr) if it exits first.
    fn try_start(
        scratch: &Scratch,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let port: &[&str] = if extra.contains(&"--port") {
            &[]
        } else {
            &["--port", "0"]
        };
        let config = scratch.config();
        let config: &[&str] = if extra.contains(&"--config") {
            &[]
        } else {
            &["--config", &config]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_recsys"))
            .arg("serve")
            .args(config)
            .args(port)
            .args(extra)
            .env_remove("RECSYS_ADMIN_TOKEN")
            .envs(env.iter().copied())
            .current_dir(scratch.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(format!(
                        "http://{}",
                        rest.split_whitespace().next().unwrap()
                    ));
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => Ok(Server { child, url, log }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(log.lock().unwrap().clone())
            }
        }
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let response = client().get(format!("{}{path}", self.url)).send().unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = client()
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    fn metrics(&self) -> String {
        client()
            .get(format!("{}/metrics", self.url))
            .send()
            .unwrap()
            .text()
            .unwrap()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A scratch directory with one bundle trained on `data/`.
fn trained() -> Scratch {
    let scratch = Scratch::default_data();
    ok(&scratch.run(&["train"]));
    scratch
}

/// Visitor ids from `data/`, in file order, without repeats.
fn visitors() -> Vec<i64> {
    let text = std::fs::read_to_string(repo().join("data/events_u100_i300.csv")).unwrap();
    let mut seen = Vec::new();
    for line in text.lines().skip(1) {
        let id: i64 = line.split(',').nth(1).unwrap().parse().unwrap();
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    seen
}

/// The first `n` distinct items of `data/` seen before the 2015-09-01 cutoff.
fn trained_items(n: usize) -> Vec<i64> {
    let text = std::fs::read_to_string(repo().join("data/events_u100_i300.csv")).unwrap();
    let mut items = Vec::new();
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let (t, item): (i64, i64) = (cells[0].parse().unwrap(), cells[3].parse().unwrap());
        if t < 1_441_065_600_000 && !items.contains(&item) {
            items.push(item);
        }
    }
    items.truncate(n);
    items
}

fn sources(body: &Value) -> Vec<&str> {
    body["recommendations"]
        .as_array()
        .unwrap_or_else(|| panic!("no recommendations in {body}"))
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect()
}

/// A shopper training knew, answered by two_stage.
fn known_user(server: &Server) -> i64 {
    visitors()
        .into_iter()
        .find(|u| {
            let body = server.get(&format!("/recommendations?user_id={u}&k=10")).1;
            body["known_user"] == json!(true) && body["model"] == json!("two_stage")
        })
        .expect("some visitor of data/ is known to the bundle")
}

/// A copy of bundle `from` as a newer bundle in the same directory.
fn newer_copy(from: &Path, name: &str) -> PathBuf {
    let to = from.parent().unwrap().join(name);
    std::fs::create_dir(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    let manifest_path = to.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["run_id"] = json!(name);
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    to
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn serves_every_shopper_live_with_two_stage_and_agrees_with_the_cli() {
    let scratch = trained();
    let bundle = scratch.bundles().pop().unwrap();
    let version = bundle.file_name().unwrap().to_string_lossy().to_string();
    let server = Server::start(&scratch, &[]);

    assert_eq!(server.get("/health"), (200, json!({"status": "ok"})));
    let (status, ready) = server.get("/ready");
    assert_eq!(status, 200);
    assert_eq!(ready["model_version"], json!(version));
    assert_eq!(ready["model"], json!("two_stage"));
    assert_eq!(ready["event_store"], json!("memory"));

    // Visitor 960773 has a training history but was not active in its last
    // week: the service used to answer it with popular items only.
    let (_, body) = server.get("/recommendations?user_id=960773&k=10");
    assert_eq!(body["known_user"], json!(true), "{body}");
    assert_eq!(body["model"], json!("two_stage"), "{body}");
    assert_eq!(body["model_version"], json!(version));
    assert_eq!(body["recommendations"].as_array().unwrap().len(), 10);
    assert!(sources(&body).iter().any(|s| *s != "popular"), "{body}");
    // `recsys recommend` gives the same list: one answer function.
    let cli: Value = serde_json::from_str(&ok(&scratch.run(&[
        "recommend",
        "--user-id",
        "960773",
        "--k",
        "10",
    ])))
    .unwrap();
    assert_eq!(cli["recommendations"], body["recommendations"]);
    assert_eq!(cli["model"], body["model"]);

    // A new shopper's events are read by the very next request, and the CLI
    // given the same events (--events) agrees again.
    let user = -4242;
    let before = server
        .get(&format!("/recommendations?user_id={user}&k=10"))
        .1;
    assert_eq!(before["model"], json!("popular"));
    let mut csv = String::from("timestamp,visitorid,event,itemid,transactionid\n");
    for (t, item) in trained_items(3).into_iter().enumerate() {
        let timestamp = 1_442_000_000_000i64 + t as i64;
        let (status, _) = server.post(
            "/events",
            json!({"user_id": user, "item_id": item, "event": "view", "timestamp": timestamp}),
        );
        assert_eq!(status, 202);
        csv.push_str(&format!("{timestamp},{user},view,{item},\n"));
    }
    let (_, after) = server.get(&format!("/recommendations?user_id={user}&k=10"));
    assert_eq!(after["model"], json!("two_stage"), "{after}");
    assert_eq!(after["known_user"], json!(false));
    assert_eq!(after["new_events"], json!(3));
    assert_ne!(after["recommendations"], before["recommendations"]);
    std::fs::write(scratch.path("new.csv"), csv).unwrap();
    let cli: Value = serde_json::from_str(&ok(&scratch.run(&[
        "recommend",
        "--user-id",
        &user.to_string(),
        "--events",
        scratch.path("new.csv").to_str().unwrap(),
    ])))
    .unwrap();
    assert_eq!(cli["recommendations"], after["recommendations"]);

    // Shoppers nothing is known about get the popular list, k long.
    let (_, body) = server.get("/recommendations?user_id=-42&k=25");
    assert_eq!(sources(&body), vec!["popular"; 25]);
    assert_eq!(body["model"], json!("popular"));

    // Client mistakes are 400s with a message, never 500s.
    let (status, body) = server.get("/recommendations?user_id=1&k=1000");
    assert_eq!(status, 400);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("k must be between 1 and 100"));

    let (status, doc) = server.get("/openapi.json");
    assert_eq!(status, 200);
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("src/serve/openapi.json")).unwrap(),
    )
    .unwrap();
    // The served document is the committed one with this service's limits
    // filled in: the same routes and schemas.
    let routes = |d: &Value| {
        d["paths"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(routes(&doc), routes(&committed));
    assert_eq!(doc["components"], committed["components"]);
}

#[test]
fn reload_swaps_in_a_newer_bundle_and_a_corrupt_one_leaves_the_old_serving() {
    let scratch = trained();
    let first = scratch.bundles().pop().unwrap();
    let server = Server::start(&scratch, &[]);
    let user = known_user(&server);
    let version = |server: &Server| {
        server.get("/ready").1["model_version"]
            .as_str()
            .unwrap()
            .to_string()
    };

    newer_copy(&first, "29990101T000000000Z-good");
    let (status, body) = server.post("/admin/reload", json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model_version"], json!("29990101T000000000Z-good"));
    assert_eq!(version(&server), "29990101T000000000Z-good");

    // A newer bundle with a truncated factor table is refused, loudly.
    let corrupt = newer_copy(&first, "29990102T000000000Z-corrupt");
    let factors = corrupt.join("als_item_factors.npy");
    let bytes = std::fs::read(&factors).unwrap();
    std::fs::write(&factors, &bytes[..bytes.len() / 2]).unwrap();
    let (status, body) = server.post("/admin/reload", json!({}));
    assert_eq!(status, 500, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("still serving 29990101T000000000Z-good"),
        "{message}"
    );
    assert!(message.contains("als_item_factors.npy"), "{message}");
    assert_eq!(version(&server), "29990101T000000000Z-good");
    let (status, body) = server.get(&format!("/recommendations?user_id={user}&k=10"));
    assert_eq!(status, 200);
    assert_eq!(body["model"], json!("two_stage"));

    // SIGHUP reloads too.
    std::fs::remove_dir_all(&corrupt).unwrap();
    newer_copy(&first, "29990103T000000000Z-hup");
    server.signal("HUP");
    wait_until("the SIGHUP reload", || {
        version(&server) == "29990103T000000000Z-hup"
    });
    let metrics = server.metrics();
    assert!(
        metrics.contains("recsys_model_reloads_total{outcome=\"success\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("recsys_model_reloads_total{outcome=\"failure\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("version=\"29990103T000000000Z-hup\""),
        "{metrics}"
    );
}

#[test]
fn admin_token_guards_reload() {
    let scratch = trained();
    let server = Server::start_with_env(&scratch, &[], &[("RECSYS_ADMIN_TOKEN", "s3cret")]);
    let (status, body) = server.post("/admin/reload", json!({}));
    assert_eq!(status, 401, "{body}");
    let response = client()
        .post(format!("{}/admin/reload", server.url))
        .bearer_auth("s3cret")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[test]
fn sigterm_stops_cleanly_and_start_up_errors_are_clear() {
    let scratch = trained();
    let mut server = Server::start(&scratch, &[]);
    server.signal("TERM");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit {status:?}\n{}", server.log());
    wait_until("the shutdown message", || {
        server.log().contains("INFO stopped")
    });

    let empty = Scratch::default_data();
    let log = Server::try_start(&empty, &[], &[])
        .err()
        .expect("no bundle, no service");
    assert!(log.contains("run `recsys train` first"), "{log}");

    let port = free_port().to_string();
    let _taken = TcpListener::bind(format!("127.0.0.1:{port}")).unwrap();
    let log = Server::try_start(&scratch, &["--port", &port], &[])
        .err()
        .expect("port in use");
    assert!(
        log.contains(&format!("listening on 127.0.0.1:{port}")),
        "{log}"
    );

    let dead = format!("redis://127.0.0.1:{}", free_port());
    let log = Server::try_start(&scratch, &["--event-store", &dead], &[])
        .err()
        .expect("no redis");
    assert!(
        log.contains(&format!("the event store at {dead} does not answer")),
        "{log}"
    );
}

#[test]
fn json_logs_carry_one_line_per_request_with_its_id_and_the_model_version() {
    let scratch = trained();
    let server = Server::start_with_env(
        &scratch,
        &["--log-format", "json"],
        &[("RUST_LOG", "debug")],
    );
    let user = known_user(&server);
    let response = client()
        .get(format!("{}/recommendations?user_id={user}&k=3", server.url))
        .header("x-request-id", "checkout-7f3a")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["x-request-id"], "checkout-7f3a");
    let version = response.json::<Value>().unwrap()["model_version"]
        .as_str()
        .unwrap()
        .to_string();
    // Without one (or with an unusable one), the service makes an id.
    let response = client()
        .get(format!("{}/health", server.url))
        .header("x-request-id", "x".repeat(100))
        .send()
        .unwrap();
    let made = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!made.is_empty() && made.len() <= 64, "{made}");

    let lines = |id: &str| -> Vec<Value> {
        server
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["request_id"] == id)
            .collect()
    };
    wait_until("the request lines", || {
        !lines("checkout-7f3a").is_empty() && !lines(&made).is_empty()
    });
    let line = &lines("checkout-7f3a")[0];
    assert_eq!(line["level"], "DEBUG", "{line}");
    assert_eq!(line["route"], "/recommendations", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["model_version"], version.as_str(), "{line}");
    assert!(line["latency_ms"].as_f64().unwrap() >= 0.0, "{line}");
    assert!(line["timestamp"].is_string(), "{line}");
    assert_eq!(lines(&made)[0]["route"], "/health");
    // Every line of the log is JSON, the start-up lines included.
    for l in server.log().lines() {
        assert!(serde_json::from_str::<Value>(l).is_ok(), "not JSON: {l}");
    }
    assert!(server.log().contains("listening on http://"));
}

/// Set `[serve]` keys in the scratch config (replacing those of an earlier call).
fn set_serve_keys(scratch: &Scratch, keys: &str) {
    let path = scratch.path("config.toml");
    let original = scratch.path("config.toml.orig");
    if !original.exists() {
        std::fs::copy(&path, &original).unwrap();
    }
    let text = std::fs::read_to_string(&original).unwrap();
    // The keys given replace the config's own.
    let names: Vec<String> = keys
        .lines()
        .filter_map(|l| l.split('=').next())
        .map(|k| format!("{} =", k.trim()))
        .collect();
    let text: String = text
        .lines()
        .filter(|l| !names.iter().any(|n| l.starts_with(n.as_str())))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(text.contains("\n[serve]\n"));
    std::fs::write(
        &path,
        text.replace("\n[serve]\n", &format!("\n[serve]\n{keys}\n")),
    )
    .unwrap();
}

/// A connection to `server` that sent a POST's head and half its body.
fn half_sent_post(server: &Server) -> std::net::TcpStream {
    use std::io::Write;
    let address = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let body = r#"{"user_id":1,"item_id":2,"event":"view"}"#;
    write!(
        stream,
        "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .unwrap();
    stream
}

/// Wait up to `within` for the server to exit; its status.
fn exits_within(server: &mut Server, within: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < within,
            "still running after {within:?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_finishes_requests_in_flight_and_a_stalled_client_cannot_hold_it() {
    use std::io::{Read, Write};
    let scratch = trained();
    set_serve_keys(
        &scratch,
        "drain_seconds = 3\nheader_read_timeout_seconds = 1",
    );

    // A request in flight when SIGTERM comes is answered; new clients are refused.
    let mut server = Server::start(&scratch, &[]);
    let address = server.url.trim_start_matches("http://").to_string();
    let mut slow = half_sent_post(&server);
    std::thread::sleep(Duration::from_millis(200));
    server.signal("TERM");
    wait_until("the shutdown message", || {
        server.log().contains("shutting down")
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "new connections are refused while draining"
    );
    slow.write_all(&br#"{"user_id":1,"item_id":2,"event":"view"}"#[10..])
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let status = exits_within(&mut server, Duration::from_secs(10));
    assert!(status.success(), "{status:?}\n{}", server.log());

    // A client that never finishes its body: the drain deadline ends it.
    let mut server = Server::start(&scratch, &[]);
    let _stalled = half_sent_post(&server);
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    server.signal("TERM");
    let status = exits_within(&mut server, Duration::from_secs(10));
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(!status.success());
    assert!(
        server.log().contains("1 connection(s) cut") && server.log().contains("drain_seconds = 3"),
        "{}",
        server.log()
    );

    // ... or a second signal, at once.
    set_serve_keys(
        &scratch,
        "drain_seconds = 600\nheader_read_timeout_seconds = 1",
    );
    let mut server = Server::start(&scratch, &[]);
    let _stalled = half_sent_post(&server);
    std::thread::sleep(Duration::from_millis(200));
    server.signal("TERM");
    wait_until("the shutdown message", || {
        server.log().contains("shutting down")
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.child.try_wait().unwrap().is_none(), "still draining");
    server.signal("TERM");
    exits_within(&mut server, Duration::from_secs(5));
    assert!(server.log().contains("second signal"), "{}", server.log());

    // A half-sent request head is dropped after header_read_timeout_seconds.
    let server = Server::start(&scratch, &[]);
    let address = server.url.trim_start_matches("http://");
    let mut loris = std::net::TcpStream::connect(address).unwrap();
    loris
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    loris
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    let start = Instant::now();
    let _ = loris.read_to_end(&mut rest);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.get("/health").0, 200);
}

/// `(name, labels, value)` of every sample; panics on a line that is not
/// Prometheus text format.
fn parse_metrics(text: &str) -> Vec<(String, String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let kind = comment.split_whitespace().next().unwrap();
            assert!(
                kind == "HELP" || kind == "TYPE",
                "bad comment line {line:?}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (
                name,
                rest.strip_suffix('}')
                    .unwrap_or_else(|| panic!("bad labels {line:?}")),
            ),
            None => (series, ""),
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        samples.push((name.to_string(), labels.to_string(), value));
    }
    samples
}

/// The metric names a PromQL expression refers to: identifiers outside label
/// matchers, strings and `by (…)`-style label lists that are not functions
/// (followed by `(`) or keywords.
fn promql_metrics(expr: &str) -> Vec<String> {
    const KEYWORDS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "or",
        "and",
        "unless",
        "bool",
        "offset",
        // Aggregations, which may be followed by `by (…)` before their `(`.
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    ];
    let mut names = Vec::new();
    let mut word = String::new();
    let (mut in_braces, mut in_string, mut label_list, mut expect_labels) =
        (false, false, false, false);
    let chars: Vec<char> = expr.chars().chain(std::iter::once(' ')).collect();
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            in_string = c != '"';
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
            let is_function = next == Some('(');
            if KEYWORDS.contains(&word.as_str()) {
                expect_labels = matches!(
                    word.as_str(),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                );
            } else {
                expect_labels = false;
                if !in_braces
                    && !label_list
                    && !is_function
                    && !word.starts_with(|c: char| c.is_ascii_digit())
                {
                    names.push(word.clone());
                }
            }
            word.clear();
        }
        match c {
            '{' => in_braces = true,
            '}' => in_braces = false,
            '"' => in_string = true,
            '(' if expect_labels => {
                label_list = true;
                expect_labels = false;
            }
            ')' if label_list => label_list = false,
            c if !c.is_whitespace() => expect_labels = false,
            _ => {}
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn promql_metric_names_are_found() {
    let expr = r#"sum by (answer) (rate(recsys_x_total{a="b(c)"}[5m])) / ignoring(answer) group_left clamp_min(sum(rate(recsys_y_total[5m])), 1e-9) + time() - up"#;
    assert_eq!(
        promql_metrics(expr),
        vec!["recsys_x_total", "recsys_y_total", "up"]
    );
}

#[test]
fn metrics_are_prometheus_text_and_the_dashboard_queries_only_what_is_exported() {
    let scratch = trained();
    let server = Server::start(&scratch, &[]);
    server.get("/recommendations?user_id=-1&k=5");
    server.get("/recommendations?user_id=abc");
    server.post(
        "/events",
        json!({"user_id": 5, "item_id": 6, "event": "view"}),
    );
    let samples = parse_metrics(&server.metrics());
    let value = |name: &str, labels: &str| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l.contains(labels))
            .map(|s| s.2)
            .unwrap_or_else(|| panic!("no sample {name}{{{labels}}}"))
    };
    assert_eq!(
        value(
            "recsys_http_requests_total",
            "route=\"/recommendations\",status=\"200\""
        ),
        1.0
    );
    assert_eq!(
        value(
            "recsys_http_requests_total",
            "route=\"/recommendations\",status=\"400\""
        ),
        1.0
    );
    assert_eq!(
        value(
            "recsys_http_requests_total",
            "route=\"/events\",status=\"202\""
        ),
        1.0
    );
    assert_eq!(
        value(
            "recsys_http_request_duration_seconds_count",
            "route=\"/recommendations\""
        ),
        2.0
    );
    assert_eq!(
        value("recsys_recommended_items_total", "source=\"popular\""),
        5.0
    );
    assert_eq!(
        value(
            "recsys_recommendation_responses_total",
            "answer=\"popular\""
        ),
        1.0
    );
    assert_eq!(value("recsys_events_received_total", "event=\"view\""), 1.0);
    assert_eq!(value("recsys_event_store_events", ""), 1.0);
    assert_eq!(value("recsys_model_info", "model=\"two_stage\""), 1.0);
    assert!(value("recsys_model_loaded_timestamp_seconds", "") > 1.7e9);
    assert!(value("process_resident_memory_bytes", "") > 1e6);
    value("process_cpu_seconds_total", "");

    // Every metric the dashboard and the alerting rules query is exported.
    let exported: Vec<String> = samples.iter().map(|s| s.0.clone()).collect();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/dashboards/recsys.json")).unwrap(),
    )
    .unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(
        exprs.len() >= 8,
        "the dashboard has too few queries: {exprs:?}"
    );
    for expr in &exprs {
        let names = promql_metrics(expr);
        assert!(!names.is_empty(), "no metric in {expr:?}");
        for name in names {
            assert!(
                exported.contains(&name),
                "the dashboard queries {name} ({expr}), which the service does not export"
            );
        }
    }
}

#[test]
fn a_real_prometheus_scrapes_the_request_counter() {
    let prometheus =
        std::env::var("RECSYS_TEST_PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
    let scratch = trained();
    let server = Server::start(&scratch, &[]);
    let (_, answer) = server.get("/recommendations?user_id=-1&k=5");
    // A cart of a shown item, so the feedback panels have series to divide.
    let shown = answer["recommendations"][0]["item_id"].as_i64().unwrap();
    let (status, _) = server.post(
        "/events",
        json!({"user_id": -1, "item_id": shown, "event": "addtocart"}),
    );
    assert_eq!(status, 202);
    let target = server.url.trim_start_matches("http://").to_string();
    let config = scratch.path("prometheus.yml");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: recsys\n    static_configs:\n      - targets: ['{target}']\n"),
    )
    .unwrap();
    let port = free_port();
    let mut child = Command::new(&prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", scratch.path("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{prometheus}` ({e}); install it with .ci/services/up or set RECSYS_TEST_PROMETHEUS"));
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _prometheus = Kill(std::mem::replace(
        &mut child,
        Command::new("true").spawn().unwrap(),
    ));
    let query = format!(
        "http://127.0.0.1:{port}/api/v1/query?query=recsys_http_requests_total{{route=\"/recommendations\",status=\"200\"}}"
    );
    let mut last = Value::Null;
    wait_until("Prometheus to scrape the service", || {
        if let Ok(response) = client().get(&query).send() {
            last = response.json().unwrap_or(Value::Null);
        }
        last["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    let sample = &last["data"]["result"][0];
    // The shipped Prometheus config is valid for this Prometheus.
    let promtool = Path::new(&prometheus).with_file_name("promtool");
    let promtool = if promtool.is_file() {
        promtool
    } else {
        PathBuf::from("promtool")
    };
    let check = Command::new(promtool)
        .args(["check", "config", "--syntax-only"])
        .arg(repo().join("deploy/prometheus/prometheus.yml"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(sample["metric"]["job"], json!("recsys"));
    assert_eq!(sample["value"][1], json!("1"), "{last}");

    // Every dashboard query is valid PromQL for this Prometheus, and the
    // feedback panels' ratios match their series up by variant and source.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/dashboards/recsys.json")).unwrap(),
    )
    .unwrap();
    let query = |expr: &str| -> Value {
        let url = reqwest::Url::parse_with_params(
            &format!("http://127.0.0.1:{port}/api/v1/query"),
            [("query", expr)],
        )
        .unwrap();
        client().get(url).send().unwrap().json().unwrap()
    };
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let answer = query(expr);
            assert_eq!(answer["status"], "success", "{expr}: {answer}");
            if panel["title"].as_str().unwrap().contains("per 1,000 shown") {
                let by = if expr.contains("by (variant)") {
                    ("variant", "default")
                } else {
                    ("source", "popular")
                };
                wait_until("the feedback ratio to have a value", || {
                    query(expr)["data"]["result"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|r| r["metric"][by.0] == by.1)
                });
            }
        }
    }
}

/// A Redis server of this test's own, so that it can be stopped mid-run.
struct OwnRedis {
    child: Child,
    url: String,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        OwnRedis::start_on(free_port())
    }

    /// Start on `port`: a restart keeps the URL the service was given.
    fn start_on(port: u16) -> OwnRedis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/services/up)");
        let url = format!("redis://127.0.0.1:{port}");
        wait_until("redis-server to answer", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        OwnRedis { child, url }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn replicas_share_events_through_the_machines_redis() {
    let scratch = trained();
    let url =
        std::env::var("RECSYS_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let a = Server::start(&scratch, &["--event-store", &url]);
    let b = Server::start(&scratch, &["--event-store", &url]);
    assert_eq!(b.get("/ready").1["event_store"], json!("redis"));
    // A user id no other test or run uses.
    let user =
        -(std::process::id() as i64) * 1000 - Instant::now().elapsed().subsec_nanos() as i64 % 1000;
    let (status, body) = a.post(
        "/events",
        json!({"user_id": user, "item_id": 369447, "event": "view"}),
    );
    assert_eq!(status, 202, "{body}");
    let (_, body) = b.get(&format!("/recommendations?user_id={user}&k=5"));
    assert_eq!(body["new_events"], json!(1), "{body}");
    assert_eq!(body["model"], json!("two_stage"), "{body}");
}

/// A unique negative user id base for this process, so runs sharing a Redis never collide.
fn unique_base() -> i64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as i64;
    -(std::process::id() as i64) * 1_000_000_000 - nanos
}

#[test]
fn replicas_agree_on_variants_and_attribution_through_redis() {
    let scratch = trained();
    let bundle = scratch.bundles()[0].clone();
    let name = format!("test-{}", -unique_base());
    let mut config = std::fs::read_to_string(scratch.config()).unwrap();
    config.push_str(&format!(
        "\n[serve.experiment]\nname = {name:?}\nvariants = [\n  {{ name = \"control\", bundle = {b:?}, share = 1.0 }},\n  {{ name = \"new\", bundle = {r:?}, share = 1.0 }},\n]\n",
        b = bundle.display().to_string(),
        r = bundle.file_name().unwrap().to_str().unwrap(),
    ));
    std::fs::write(scratch.config(), config).unwrap();
    let url =
        std::env::var("RECSYS_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let a = Server::start(&scratch, &["--event-store", &url]);
    let b = Server::start(&scratch, &["--event-store", &url]);
    let ready = a.get("/ready").1;
    assert_eq!(ready["experiment"]["variants"][1]["name"], "new", "{ready}");
    let base = unique_base();
    let mut seen = [0, 0];
    for user in (0..40).map(|i| base - i) {
        let (_, from_a) = a.get(&format!("/recommendations?user_id={user}&k=5"));
        let (_, from_b) = b.get(&format!("/recommendations?user_id={user}&k=5"));
        assert_eq!(
            from_a["variant"], from_b["variant"],
            "replicas split shopper {user}"
        );
        seen[(from_a["variant"] == "new") as usize] += 1;
        if user == base {
            // Shown by replica a, carted through replica b: credited once.
            let item = from_a["recommendations"][4]["item_id"].clone();
            let cart = json!({"user_id": user, "item_id": item, "event": "addtocart"});
            assert_eq!(b.post("/events", cart.clone()).0, 202);
            assert_eq!(a.post("/events", cart).0, 202);
        }
    }
    assert!(
        seen[0] > 0 && seen[1] > 0,
        "both variants get shoppers: {seen:?}"
    );
    let (status, report) = a.get("/experiment");
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        b.get("/experiment").1,
        report,
        "replicas report the same counts"
    );
    let variants = report["variants"].as_array().unwrap();
    let total = |key: &str| {
        variants
            .iter()
            .map(|v| v[key].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(total("shoppers"), 40, "{report}");
    assert_eq!(total("answers"), 80);
    assert_eq!(total("items_shown"), 400);
    assert_eq!(total("attributed_add_to_carts"), 1);
    assert_eq!(report["enough_data"], false);
    // The CLI reads the same report.
    let out = Command::new(env!("CARGO_BIN_EXE_recsys"))
        .args(["experiment", "report", "--url", &a.url, "--json"])
        .output()
        .unwrap();
    let cli: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(cli, report);
    let table = ok(&Command::new(env!("CARGO_BIN_EXE_recsys"))
        .args(["experiment", "report", "--url", &a.url])
        .output()
        .unwrap());
    assert!(table.contains("not enough data yet"), "{table}");
}

#[test]
fn experiment_report_without_a_service_says_where_it_looked() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_recsys"))
        .args(["experiment", "report", "--url", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&url) && err.contains("recsys serve"), "{err}");
}

#[test]
fn redis_going_away_costs_new_events_not_answers() {
    let scratch = trained();
    let redis = OwnRedis::start();
    let server = Server::start(&scratch, &["--event-store", &redis.url]);
    let user = known_user(&server);
    assert_eq!(
        server
            .post(
                "/events",
                json!({"user_id": user, "item_id": 369447, "event": "view"})
            )
            .0,
        202
    );
    assert_eq!(
        server
            .get(&format!("/recommendations?user_id={user}&k=10"))
            .1["new_events"],
        json!(1)
    );

    drop(redis);
    let (status, body) = server.get(&format!("/recommendations?user_id={user}&k=10"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], json!("two_stage"));
    assert_eq!(body["new_events"], json!(0));
    assert_eq!(sources(&body).len(), 10);
    let (status, body) = server.get("/recommendations?user_id=-7&k=4");
    assert_eq!((status, sources(&body)), (200, vec!["popular"; 4]));
    let (status, body) = server.post(
        "/events",
        json!({"user_id": user, "item_id": 1, "event": "view"}),
    );
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("the event was not recorded"));
    let samples = parse_metrics(&server.metrics());
    let errors = |op: &str| {
        samples
            .iter()
            .find(|(n, l, _)| n == "recsys_event_store_errors_total" && l.contains(op))
            .unwrap()
            .2
    };
    assert!(
        errors("read") >= 2.0 && errors("push") >= 1.0,
        "{samples:?}"
    );
    assert!(!server.metrics().contains("status=\"500\""));
}

/// What a client of the service saw while Redis went away and came back.
#[derive(Default)]
struct Tally {
    answers: usize,
    answer_failures: Vec<String>,
    events_accepted: usize,
    events_refused: usize,
    events_other: Vec<String>,
    /// Set when Redis is back; the first event accepted after it is stamped.
    back_at: Option<Instant>,
    first_accepted_after_back: Option<Instant>,
}

#[test]
fn redis_restarting_under_load_keeps_answers_coming_and_events_resume_by_themselves() {
    let scratch = trained();
    let port = free_port();
    let redis = OwnRedis::start_on(port);
    let server = Server::start(&scratch, &["--event-store", &redis.url]);
    let user = known_user(&server);
    let url = server.url.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    // Two clients: one asks for answers, one posts events, both without pause.
    let load: Vec<_> = [false, true]
        .into_iter()
        .map(|posts| {
            let (url, stop, tally) = (url.clone(), stop.clone(), tally.clone());
            std::thread::spawn(move || {
                let client = client();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if posts {
                        let response = client
                            .post(format!("{url}/events"))
                            .json(&json!({"user_id": user, "item_id": 369447, "event": "view"}))
                            .send()
                            .unwrap();
                        let mut tally = tally.lock().unwrap();
                        match response.status().as_u16() {
                            202 => {
                                tally.events_accepted += 1;
                                if tally.back_at.is_some()
                                    && tally.first_accepted_after_back.is_none()
                                {
                                    tally.first_accepted_after_back = Some(Instant::now());
                                }
                            }
                            503 => tally.events_refused += 1,
                            other => tally.events_other.push(format!("{other}")),
                        }
                    } else {
                        let response = client
                            .get(format!("{url}/recommendations?user_id={user}&k=10"))
                            .send()
                            .unwrap();
                        let status = response.status().as_u16();
                        let body: Value = response.json().unwrap_or(Value::Null);
                        let mut tally = tally.lock().unwrap();
                        if status == 200 && sources(&body).len() == 10 {
                            tally.answers += 1;
                        } else {
                            tally.answer_failures.push(format!("{status} {body}"));
                        }
                    }
                }
            })
        })
        .collect();
    let accepted = || tally.lock().unwrap().events_accepted;
    wait_until("events to be accepted", || accepted() > 20);

    // Three outages: Redis stopped, then started again on the same port.
    let refused = || tally.lock().unwrap().events_refused;
    let mut redis = Some(redis);
    let mut recoveries = Vec::new();
    for _ in 0..3 {
        {
            let mut tally = tally.lock().unwrap();
            tally.back_at = None;
            tally.first_accepted_after_back = None;
        }
        drop(redis.take());
        let refused_before = refused();
        wait_until("events to be refused with 503", || {
            refused() > refused_before + 20
        });
        let answers_while_down = tally.lock().unwrap().answers;
        wait_until("answers to keep coming while Redis is down", || {
            tally.lock().unwrap().answers > answers_while_down + 20
        });
        redis = Some(OwnRedis::start_on(port));
        let back = Instant::now();
        tally.lock().unwrap().back_at = Some(back);
        wait_until(
            "events to be accepted again, with no restart of the service",
            || tally.lock().unwrap().first_accepted_after_back.is_some(),
        );
        let accepted_at = tally.lock().unwrap().first_accepted_after_back.unwrap();
        recoveries.push(accepted_at.saturating_duration_since(back).as_millis());
    }
    eprintln!("redis restarts: events accepted again {recoveries:?} ms after Redis answered");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in load {
        client.join().unwrap();
    }
    let tally = tally.lock().unwrap();
    assert!(
        tally.answer_failures.is_empty(),
        "{:?}",
        tally.answer_failures
    );
    assert!(tally.events_other.is_empty(), "{:?}", tally.events_other);
    // The events posted after the restart are in the new Redis and count.
    let (status, body) = server.get(&format!("/recommendations?user_id={user}&k=10"));
    assert_eq!(status, 200, "{body}");
    assert!(body["new_events"].as_u64().unwrap() >= 1, "{body}");
    drop(redis);
}

fn yaml(path: &str) -> serde_yaml::Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

/// Docker cannot run here, so the deploy files are checked against each other
/// and against the binary: every mounted file exists, Prometheus scrapes the
/// service by its compose name and port, Grafana's datasource points at
/// Prometheus, and the service's command line is one `recsys serve` accepts.
#[test]
fn deploy_files_agree_with_each_other_and_with_the_binary() {
    let mut compose = yaml("deploy/docker-compose.yml");
    compose.apply_merge().unwrap();
    let services = compose["services"].as_mapping().unwrap();
    for name in [
        "recsys",
        "redis",
        "prometheus",
        "grafana",
        "postgres",
        "seaweedfs",
        "mlflow",
        "airflow-scheduler",
    ] {
        assert!(
            services.contains_key(name),
            "docker-compose.yml lacks service {name}"
        );
    }
    for (name, service) in services {
        if let Some(dockerfile) = service["build"]["dockerfile"].as_str() {
            assert!(
                repo().join(dockerfile).is_file(),
                "service {name:?} builds from {dockerfile}, which is not in the repository"
            );
        }
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let host = volume.as_str().unwrap().split(':').next().unwrap();
            let path = repo().join("deploy").join(host);
            // Named volumes are Docker's; paths must be in the repository.
            let is_path = host.starts_with('.') || host.starts_with('/');
            assert!(
                !is_path || host == "../artifacts" || path.exists(),
                "service {name:?} mounts {host}, which is not in the repository"
            );
        }
    }
    assert_eq!(
        compose["services"]["recsys"]["build"]["dockerfile"].as_str(),
        Some("deploy/Dockerfile")
    );
    // Docker waits longer than the service drains before it kills.
    let grace: u64 = compose["services"]["recsys"]["stop_grace_period"]
        .as_str()
        .and_then(|g| g.strip_suffix('s'))
        .and_then(|g| g.parse().ok())
        .expect("stop_grace_period in seconds");
    let config: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo().join("config.toml")).unwrap()).unwrap();
    let drain = config["serve"]["drain_seconds"].as_integer().unwrap() as u64;
    assert!(
        grace > drain,
        "stop_grace_period {grace}s <= drain_seconds {drain}"
    );
    let dockerfile = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("USER recsys"),
        "the runtime image runs as non-root"
    );
    assert_eq!(
        dockerfile.matches("FROM ").count(),
        2,
        "multi-stage: build, then runtime"
    );

    // The compose command, minus the program name, parses as `recsys serve`.
    let command: Vec<String> = compose["services"]["recsys"]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(command[..2], ["recsys", "serve"]);
    let scratch = trained();
    let mut args: Vec<String> = command[1..]
        .iter()
        .map(|a| {
            if a == "/srv/recsys/config.toml" {
                scratch.config()
            } else {
                a.clone()
            }
        })
        .collect();
    // Same flags, checked by clap, on a port and store that exist here.
    let at = |flag: &str, args: &[String]| args.iter().position(|a| a == flag).unwrap() + 1;
    let port = at("--port", &args);
    args[port] = "0".into();
    let store = at("--event-store", &args);
    assert!(args[store].starts_with("redis://redis:6379"));
    args[store] = "memory".into();
    let host = at("--host", &args);
    args[host] = "127.0.0.1".into();
    let args: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    let server = Server::start(&scratch, &args);
    assert_eq!(server.get("/health").0, 200);

    let prometheus = yaml("deploy/prometheus/prometheus.yml");
    let job = &prometheus["scrape_configs"][0];
    assert_eq!(job["job_name"].as_str(), Some("recsys"));
    assert_eq!(
        job["static_configs"][0]["targets"][0].as_str(),
        Some("recsys:8000")
    );
    let datasource = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(
        datasource["datasources"][0]["url"].as_str(),
        Some("http://prometheus:9090")
    );
    let dashboards = yaml("deploy/grafana/provisioning/dashboards/recsys.yml");
    assert_eq!(
        dashboards["providers"][0]["options"]["path"].as_str(),
        Some("/var/lib/grafana/dashboards")
    );
}
