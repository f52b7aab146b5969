//! The Airflow DAGs (`pipelines/airflow/dags/`) run end to end by a real Airflow.
//!
//! Airflow is the pinned install `.ci/services/airflow.sh` makes in
//! `$RECSYS_CI_CACHE/venv-airflow` (`RECSYS_TEST_AIRFLOW` names another
//! `airflow` executable); without it the tests fail and say how to get it. Each
//! test has an `AIRFLOW_HOME` of its own with a sqlite metadata DB, and
//! `airflow dags test` runs a whole DAG run in one process, with the binary
//! under test as `recsys_bin`. Connections and variables come only from the
//! `AIRFLOW_CONN_*` / `AIRFLOW_VAR_*` variables set here: the machine's own
//! `AIRFLOW*`, `AWS_*`, `PG*` and `DATABASE_URL` are removed, so the DAGs can
//! only reach what the connections name. They run against the real PostgreSQL
//! and S3 server the storage tests use, in a schema and a bucket of their own,
//! removed at the end.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use recsys::bundle::Bundle;
use recsys::data::{load_events, BadRows};
use recsys::storage::s3::{EnvVars, S3Config, S3Overrides, S3Settings, S3Store};
use serde_json::{json, Value};

use crate::cli::{ok, repo, Scratch};

/// Where the pipelines keep their objects in the test bucket.
const PREFIX: &str = "pipelines";
/// The service's admin token in the test.
const ADMIN_TOKEN: &str = "airflow-test-token";
/// Longest one `airflow` command may take before the test gives up on it.
const AIRFLOW_TIMEOUT: Duration = Duration::from_secs(300);

/// The `airflow` executable of the venv `.ci/services/airflow.sh` installs.
fn airflow_exe() -> PathBuf {
    let exe = match std::env::var_os("RECSYS_TEST_AIRFLOW") {
        Some(path) => PathBuf::from(path),
        None => {
            let cache = std::env::var_os("RECSYS_CI_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/recsys-ci")
                });
            cache.join("venv-airflow/bin/airflow")
        }
    };
    assert!(
        exe.is_file(),
        "no Airflow at {}: run `.ci/services/up` (it installs Airflow into a venv), \
         or point RECSYS_TEST_AIRFLOW at an `airflow` executable",
        exe.display()
    );
    exe
}

fn database_url() -> String {
    std::env::var("RECSYS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A number no other test of this process has.
fn unique() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 1_000_000_000;
    format!(
        "{}_{}_{stamp}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Whether an environment variable of the machine could steer the DAGs or
/// recsys somewhere the test did not choose.
fn leaks_in(name: &str) -> bool {
    ["AIRFLOW", "AWS_", "PG", "MLFLOW_"]
        .iter()
        .any(|p| name.starts_with(p))
        || ["DATABASE_URL", "S3_BUCKET_NAME", "RECSYS_ADMIN_TOKEN"].contains(&name)
}

/// A bucket of the test's own on the S3 server, emptied and removed on drop.
struct Bucket {
    name: String,
    endpoint: String,
    access_key: String,
    secret_key: String,
    store: S3Store,
    runtime: tokio::runtime::Runtime,
}

impl Bucket {
    fn new() -> Bucket {
        let crate::s3::Server {
            endpoint,
            access_key,
            secret_key,
        } = crate::s3::server();
        let name = format!("recsys-airflow-{}", unique().replace('_', "-"));
        let env = EnvVars::from_pairs([
            ("AWS_ACCESS_KEY_ID", access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", secret_key.as_str()),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("S3_BUCKET_NAME", name.as_str()),
        ]);
        let settings =
            S3Settings::resolve(&S3Overrides::default(), &S3Config::default(), &env).unwrap();
        let store = S3Store::new(settings);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(store.client().create_bucket().bucket(&name).send())
            .unwrap_or_else(|e| panic!("creating bucket {name}: {e:?}"));
        Bucket {
            name,
            endpoint,
            access_key,
            secret_key,
            store,
            runtime,
        }
    }

    /// The `recsys_s3` connection, in the JSON form Airflow reads from the environment.
    fn connection(&self) -> String {
        json!({
            "conn_type": "aws",
            "login": self.access_key,
            "password": self.secret_key,
            "extra": {
                "endpoint_url": self.endpoint,
                "region_name": "us-east-1",
                "bucket_name": self.name,
            },
        })
        .to_string()
    }

    /// `recsys s3 ARGS` against this bucket.
    fn recsys(&self, args: &[&str]) -> String {
        let out = clean_command(Path::new(env!("CARGO_BIN_EXE_recsys")))
            .arg("s3")
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("S3_BUCKET_NAME", &self.name)
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap();
        ok(&out)
    }

    fn push(&self, local: &Path, key: &str) {
        self.recsys(&[
            "push",
            "--local-file-path",
            local.to_str().unwrap(),
            "--s3-file-path",
            key,
        ]);
    }

    fn pull(&self, key: &str, local: &Path) {
        self.recsys(&[
            "pull",
            "--s3-file-path",
            key,
            "--local-file-path",
            local.to_str().unwrap(),
        ]);
    }

    /// The JSON object at `key`.
    fn json(&self, key: &str) -> Value {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("object.json");
        self.pull(key, &local);
        serde_json::from_str(&std::fs::read_to_string(local).unwrap()).unwrap()
    }

    /// Keys under `prefix`, sorted.
    fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .runtime
            .block_on(self.store.list(prefix, 1000))
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for Bucket {
    fn drop(&mut self) {
        let client = self.store.client().clone();
        let name = self.name.clone();
        let keys = self.runtime.block_on(self.store.list("", 1000));
        self.runtime.block_on(async move {
            for object in keys.unwrap_or_default() {
                let _ = client
                    .delete_object()
                    .bucket(&name)
                    .key(&object.key)
                    .send()
                    .await;
            }
            let _ = client.delete_bucket().bucket(&name).send().await;
        });
    }
}

/// A Postgres schema of the test's own, dropped with its tables on drop.
struct Schema {
    name: String,
    client: postgres::Client,
}

impl Schema {
    fn new() -> Schema {
        let url = database_url();
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {url} does not answer ({e}); start it with `.ci/services/up` \
                 (or point RECSYS_TEST_DATABASE_URL at a server)"
            )
        });
        let name = format!("recsys_airflow_{}", unique());
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap();
        Schema { name, client }
    }

    fn count(&mut self, table: &str) -> usize {
        let n: i64 = self
            .client
            .query_one(&format!("SELECT count(*) FROM {}.{table}", self.name), &[])
            .unwrap()
            .get(0);
        n as usize
    }

    fn models(&mut self) -> Vec<String> {
        self.client
            .query(
                &format!(
                    "SELECT DISTINCT model FROM {}.recommendations ORDER BY 1",
                    self.name
                ),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = self
            .client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

/// `program` with none of the machine's variables that could steer it.
fn clean_command(program: &Path) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if leaks_in(&name.to_string_lossy()) {
            command.env_remove(name);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// An Airflow home of the test's own, and the variables every run gets.
struct Airflow {
    exe: PathBuf,
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
    runs: AtomicUsize,
}

impl Airflow {
    fn new(env: Vec<(&str, String)>) -> Airflow {
        let home = tempfile::tempdir().unwrap();
        let mut all: Vec<(String, String)> = vec![
            ("AIRFLOW_HOME".into(), home.path().display().to_string()),
            (
                "AIRFLOW__CORE__DAGS_FOLDER".into(),
                repo().join("pipelines/airflow/dags").display().to_string(),
            ),
            ("AIRFLOW__CORE__LOAD_EXAMPLES".into(), "False".into()),
            // A retry waits a second, not five minutes, if a test run fails unexpectedly.
            ("AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY".into(), "1".into()),
        ];
        all.extend(env.into_iter().map(|(k, v)| (k.to_string(), v)));
        Airflow {
            exe: airflow_exe(),
            home,
            env: all,
            runs: AtomicUsize::new(0),
        }
    }

    /// Run `program ARGS` (by default `airflow`) with the test's environment
    /// plus `extra`; success and the combined output. Gives up after
    /// [`AIRFLOW_TIMEOUT`].
    fn run_program(
        &self,
        program: &Path,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> (bool, String, String) {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        let log_path = self.home.path().join(format!("run-{n}.log"));
        let out_path = self.home.path().join(format!("run-{n}.out"));
        let log = File::create(&log_path).unwrap();
        let mut command = clean_command(program);
        command
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied())
            .current_dir(self.home.path())
            .stdout(File::create(&out_path).unwrap())
            .stderr(log);
        let started = Instant::now();
        let mut child = command.spawn().unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > AIRFLOW_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} {args:?} still running after {AIRFLOW_TIMEOUT:?}; its log:\n{}",
                    program.display(),
                    tail(&std::fs::read_to_string(&log_path).unwrap_or_default())
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        eprintln!(
            "airflow test: {} {} took {:.1} s",
            program.file_name().unwrap().to_string_lossy(),
            args.join(" "),
            started.elapsed().as_secs_f64()
        );
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
        (status.success(), stdout, stderr)
    }

    /// `airflow ARGS`; the combined output.
    fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> (bool, String) {
        let (success, stdout, stderr) = self.run_program(&self.exe, args, extra);
        (success, stdout + &stderr)
    }

    /// `airflow ARGS`, which must succeed.
    fn ok(&self, args: &[&str], extra: &[(&str, &str)]) -> String {
        let (success, output) = self.run(args, extra);
        assert!(
            success,
            "airflow {args:?} failed; the end of its output:\n{}",
            tail(&output)
        );
        output
    }

    /// `airflow ARGS`, which must fail.
    fn failed(&self, args: &[&str], extra: &[(&str, &str)]) -> String {
        let (success, output) = self.run(args, extra);
        assert!(
            !success,
            "airflow {args:?} succeeded but should have failed:\n{}",
            tail(&output)
        );
        output
    }
}

/// The last lines of a long log.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(120)..].join("\n")
}

/// A loopback HTTP endpoint that answers 200 to everything and keeps the request bodies.
struct Webhook {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Webhook {
    fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let sink = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if let Some(body) = request_body(&stream) {
                    sink.lock().unwrap().push(body);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Webhook { url, bodies }
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap_or(Value::String(b.clone())))
            .collect()
    }
}

/// The body of one HTTP/1.1 request (by its Content-Length).
fn request_body(stream: &TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

/// A running `recsys serve` on a free port, killed on drop.
struct Service {
    child: Child,
    url: String,
}

impl Service {
    fn start(config: &Path, bundles: &Path) -> Service {
        let mut child = clean_command(Path::new(env!("CARGO_BIN_EXE_recsys")))
            .args(["serve", "--port", "0", "--config"])
            .arg(config)
            .arg("--bundle")
            .arg(bundles)
            .env("RECSYS_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(format!(
                        "http://{}",
                        rest.split_whitespace().next().unwrap()
                    ));
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("recsys serve did not start");
        Service { child, url }
    }

    fn version(&self) -> String {
        let ready: Value = reqwest::blocking::get(format!("{}/ready", self.url))
            .unwrap()
            .json()
            .unwrap();
        ready["model_version"].as_str().unwrap().to_string()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_dags_import_cleanly_with_the_expected_task_graphs() {
    let airflow = Airflow::new(Vec::new());
    let python = airflow.exe.with_file_name("python");
    let dags = repo().join("pipelines/airflow/dags");
    let script = repo().join("pipelines/airflow/check_dags.py");
    let (success, stdout, stderr) = airflow.run_program(
        &python,
        &[script.to_str().unwrap(), dags.to_str().unwrap()],
        &[],
    );
    assert!(success, "check_dags.py failed:\n{}", tail(&stderr));
    // Airflow logs to stdout too; the script's answer is the last line.
    let last = stdout.lines().last().unwrap_or_default();
    let found: Value = serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "check_dags.py printed no JSON last ({e}):\n{}",
            tail(&stdout)
        )
    });
    assert_eq!(found["import_errors"], json!({}), "import errors");

    let graph = |dag: &str| -> BTreeMap<String, Vec<String>> {
        let tasks = found["dags"][dag]["tasks"].as_object().unwrap();
        tasks
            .iter()
            .map(|(id, t)| {
                let up = t["upstream"].as_array().unwrap();
                (
                    id.clone(),
                    up.iter().map(|u| u.as_str().unwrap().to_string()).collect(),
                )
            })
            .collect()
    };
    let expected = |edges: &[(&str, &[&str])]| -> BTreeMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(task, up)| (task.to_string(), up.iter().map(|u| u.to_string()).collect()))
            .collect()
    };
    assert_eq!(
        graph("recsys_data_load"),
        expected(&[
            ("extract", &[]),
            ("validate", &["extract"]),
            ("publish", &["validate"]),
            ("cleanup", &["publish"]),
        ])
    );
    assert_eq!(
        graph("recsys_retrain"),
        expected(&[
            ("fetch_snapshot", &[]),
            ("train", &["fetch_snapshot"]),
            ("evaluate_candidate", &["fetch_snapshot", "train"]),
            (
                "evaluate_production",
                &["evaluate_candidate", "fetch_snapshot"]
            ),
            (
                "quality_gate",
                &["evaluate_candidate", "evaluate_production"]
            ),
            ("publish_bundle", &["quality_gate", "train"]),
            ("export_tables", &["publish_bundle"]),
            ("reload_service", &["export_tables", "publish_bundle"]),
            ("cleanup", &["reload_service"]),
        ])
    );
    for (dag, schedule) in [
        ("recsys_data_load", "0 2 * * 6"),
        ("recsys_retrain", "0 4 * * 6"),
    ] {
        let dag = &found["dags"][dag];
        assert_eq!(dag["schedule"], json!(schedule), "weekly, on Saturdays");
        assert_eq!(dag["max_active_runs"], json!(1));
        for (id, task) in dag["tasks"].as_object().unwrap() {
            assert_eq!(task["has_failure_callback"], json!(true), "{id}");
            assert_eq!(task["retry_exponential_backoff"], json!(true), "{id}");
            let retries = if id == "quality_gate" { 0 } else { 2 };
            assert_eq!(
                task["retries"],
                json!(retries),
                "{id}: a worse model stays worse"
            );
        }
    }
    assert_eq!(
        found["dags"]["recsys_data_load"]["params"],
        json!(["source"])
    );
}

#[test]
fn data_load_and_retrain_publish_a_model_and_the_gate_stops_a_worse_one() {
    let bucket = Bucket::new();
    let mut schema = Schema::new();
    let scratch = Scratch::default_data();
    let csv = repo().join("data/events_u100_i300.csv");

    // The raw events: a table in Postgres, and objects in the bucket (one broken).
    let events_table = format!("{}.events", schema.name);
    ok(&scratch.run(&[
        "pg",
        "push",
        "--file",
        csv.to_str().unwrap(),
        "--table-name",
        &events_table,
        "--database-url",
        &database_url(),
    ]));
    bucket.push(&csv, "raw/events.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut broken: Vec<&str> = text.lines().take(50).collect();
    broken.push("1442004589439,abc,view,1");
    std::fs::write(scratch.path("broken.csv"), broken.join("\n") + "\n").unwrap();
    bucket.push(&scratch.path("broken.csv"), "raw/broken.csv");

    // A deliberately worse model: only the shopper's own history.
    let config = std::fs::read_to_string(scratch.path("config.toml")).unwrap();
    let worse: String = config
        .lines()
        .map(|l| {
            if l.starts_with("enabled = ") {
                "enabled = [\"history\"]"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(worse, config);
    std::fs::write(scratch.path("worse.toml"), worse).unwrap();

    // The service, answering from a bundle trained before the pipelines ran.
    let served = scratch.path("served");
    ok(&scratch.run(&["train", "--out", served.to_str().unwrap()]));
    let service = Service::start(&scratch.path("config.toml"), &served);
    let first_version = service.version();
    let webhook = Webhook::start();

    let work = scratch.path("work");
    let airflow = Airflow::new(vec![
        (
            "AIRFLOW_CONN_RECSYS_POSTGRES",
            database_url().replacen("postgres://", "postgresql://", 1),
        ),
        ("AIRFLOW_CONN_RECSYS_S3", bucket.connection()),
        (
            "AIRFLOW_VAR_RECSYS_BIN",
            env!("CARGO_BIN_EXE_recsys").into(),
        ),
        ("AIRFLOW_VAR_RECSYS_CONFIG", scratch.config()),
        ("AIRFLOW_VAR_RECSYS_WORKDIR", work.display().to_string()),
        ("AIRFLOW_VAR_RECSYS_S3_PREFIX", format!("{PREFIX}/")),
        ("AIRFLOW_VAR_RECSYS_EVENTS_TABLE", events_table.clone()),
        ("AIRFLOW_VAR_RECSYS_PG_SCHEMA", schema.name.clone()),
        ("AIRFLOW_VAR_RECSYS_SERVE_URL", service.url.clone()),
        ("AIRFLOW_VAR_RECSYS_ADMIN_TOKEN", ADMIN_TOKEN.into()),
        (
            "AIRFLOW_VAR_RECSYS_SERVE_ARTIFACTS_DIR",
            served.display().to_string(),
        ),
        ("AIRFLOW_VAR_RECSYS_ALERT_WEBHOOK_URL", webhook.url.clone()),
    ]);
    airflow.ok(&["db", "migrate"], &[]);
    let from_s3 = [
        "dags",
        "test",
        "--conf",
        r#"{"source": "s3"}"#,
        "recsys_data_load",
    ];
    let latest = format!("{PREFIX}/snapshots/latest.json");

    // Broken raw events are stopped by validation: nothing is published.
    let output = airflow.failed(
        &from_s3,
        &[("AIRFLOW_VAR_RECSYS_EVENTS_S3_KEY", "raw/broken.csv")],
    );
    assert!(
        output.contains("`abc` is not an integer"),
        "{}",
        tail(&output)
    );
    assert_eq!(
        bucket.keys(&format!("{PREFIX}/snapshots/")),
        Vec::<String>::new()
    );

    // From S3, then from Postgres (the Variable's default source).
    airflow.ok(
        &from_s3,
        &[("AIRFLOW_VAR_RECSYS_EVENTS_S3_KEY", "raw/events.csv")],
    );
    airflow.ok(&["dags", "test", "recsys_data_load"], &[]);
    let snapshots = bucket.keys(&format!("{PREFIX}/snapshots/"));
    assert_eq!(
        snapshots.len(),
        3,
        "two snapshots and the pointer: {snapshots:?}"
    );
    assert!(snapshots[..2]
        .iter()
        .all(|k| k.ends_with("/events.parquet")));
    assert_eq!(
        bucket.json(&latest)["key"],
        json!(snapshots[1]),
        "latest is the newer one"
    );
    let snapshot = scratch.path("snapshot.parquet");
    bucket.pull(&snapshots[1], &snapshot);
    assert_eq!(
        load_events(&snapshot, BadRows::Error).unwrap().log,
        load_events(&csv, BadRows::Error).unwrap().log,
        "the snapshot holds the validated events of the table"
    );

    // Retraining: the first model is promoted, published and served.
    airflow.ok(&["dags", "test", "recsys_retrain"], &[]);
    let production = bucket.json(&format!("{PREFIX}/production/current.json"));
    let run_id = production["run_id"].as_str().unwrap().to_string();
    assert_eq!(production["model"], json!("two_stage"));
    let bundle_keys = bucket.keys(&format!("{PREFIX}/bundles/"));
    assert!(
        bundle_keys.contains(&format!("{PREFIX}/bundles/{run_id}/manifest.json")),
        "{bundle_keys:?}"
    );
    assert_eq!(
        service.version(),
        run_id,
        "the service reloaded the new bundle"
    );
    assert_ne!(first_version, run_id);
    let bundle = Bundle::load(&served.join(&run_id)).unwrap();
    let popular = bundle.popular.as_ref().unwrap().ranked.len().min(30);
    let items = bundle.als.as_ref().unwrap().item_factors.rows;
    // The shoppers active in the last 7 days of training, 30 live-scored items each.
    let recommendations = recsys::engine::export::active_users(&bundle.train, 7).len() * 30;
    let counts = |schema: &mut Schema| {
        [
            schema.count("top_popular"),
            schema.count("similar_items"),
            schema.count("recommendations"),
        ]
    };
    assert_eq!(
        counts(&mut schema),
        [popular, items * 10.min(items - 1), recommendations],
        "rows of top_popular, similar_items, recommendations"
    );
    assert!(recommendations > 0);
    assert_eq!(schema.models(), ["two_stage"]);
    assert!(webhook
        .bodies()
        .iter()
        .all(|b| b["task_id"] == json!("validate")));

    // A worse model is stopped by the gate; production, tables and service stay.
    let output = airflow.failed(
        &["dags", "test", "recsys_retrain"],
        &[(
            "AIRFLOW_VAR_RECSYS_CONFIG",
            scratch.path("worse.toml").to_str().unwrap(),
        )],
    );
    assert!(output.contains("QUALITY GATE FAILED"), "{}", tail(&output));
    assert!(
        output.contains(&format!("production stays {run_id}")),
        "{}",
        tail(&output)
    );
    let after = bucket.json(&format!("{PREFIX}/production/current.json"));
    assert_eq!(after, production, "the production pointer is unchanged");
    assert_eq!(
        bucket.keys(&format!("{PREFIX}/bundles/")),
        bundle_keys,
        "no bundle pushed"
    );
    assert_eq!(
        counts(&mut schema),
        [popular, items * 10.min(items - 1), recommendations]
    );
    assert_eq!(schema.models(), ["two_stage"]);
    assert_eq!(service.version(), run_id);
    let alerts: Vec<Value> = webhook.bodies();
    let tasks: Vec<&str> = alerts
        .iter()
        .map(|b| b["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        tasks,
        ["validate", "quality_gate"],
        "one alert per failed run: {alerts:?}"
    );
    assert!(alerts[1]["text"]
        .as_str()
        .unwrap()
        .contains("recsys_retrain.quality_gate"));
}
