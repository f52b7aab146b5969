//! `recsys train` recording its runs in a real MLflow server.
//!
//! The server is the PyPI `mlflow` that `.ci/services/mlflow.sh` installs into
//! `$RECSYS_CI_CACHE/venv-mlflow` (or whatever `RECSYS_TEST_MLFLOW` names),
//! started by the test on a free loopback port with a throw-away sqlite store
//! and artifact directory, and stopped when the test ends. Everything is read
//! back through MLflow's REST API, not through recsys' own client, so the
//! test checks what any MLflow user would see.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli::{failed, free_port, ok, Scratch};

/// A running `mlflow server`, stopped (with its worker processes) on drop.
struct MlflowServer {
    child: Child,
    url: String,
    http: reqwest::blocking::Client,
    dir: tempfile::TempDir,
}

impl MlflowServer {
    fn start() -> MlflowServer {
        let bin = std::env::var_os("RECSYS_TEST_MLFLOW")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let cache = std::env::var_os("RECSYS_CI_CACHE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                            .join(".cache/recsys-ci")
                    });
                cache.join("venv-mlflow/bin/mlflow")
            });
        assert!(
            bin.is_file(),
            "no mlflow at {}: run .ci/services/up (it installs MLflow into a venv), \
             or point RECSYS_TEST_MLFLOW at an `mlflow` binary",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(&bin)
            .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
            // One worker starts in half the time of the default four.
            .args(["--workers", "1"])
            .arg("--backend-store-uri")
            .arg(format!(
                "sqlite:///{}",
                dir.path().join("mlflow.db").display()
            ))
            .arg("--artifacts-destination")
            .arg(dir.path().join("artifacts"))
            // No background job runner: nothing here uses it and it forks a dozen processes.
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            // Its own process group, so that drop stops the uvicorn workers too.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut server = MlflowServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            dir,
        };
        server.wait_until_healthy(Duration::from_secs(300));
        server
    }

    fn wait_until_healthy(&mut self, limit: Duration) {
        let started = Instant::now();
        loop {
            let health = self.http.get(format!("{}/health", self.url)).send();
            if health.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("mlflow server exited ({status}):\n{}", self.log_tail());
            }
            assert!(
                started.elapsed() < limit,
                "mlflow server did not answer /health within {limit:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// `GET /api/2.0/mlflow/{route}?{query}`, which must succeed.
    fn get(&self, route: &str, query: &str) -> Value {
        let url = format!("{}/api/2.0/mlflow/{route}?{query}", self.url);
        let response = self.http.get(&url).send().unwrap();
        let status = response.status();
        let text = response.text().unwrap();
        assert!(status.is_success(), "GET {url}: {status}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// `POST /api/2.0/mlflow/{route}`, which must succeed.
    fn post(&self, route: &str, body: Value) -> Value {
        let url = format!("{}/api/2.0/mlflow/{route}", self.url);
        let response = self.http.post(&url).json(&body).send().unwrap();
        let status = response.status();
        let text = response.text().unwrap();
        assert!(status.is_success(), "POST {url}: {status}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// An artifact's bytes, downloaded through the server's artifact proxy.
    fn artifact(&self, experiment_id: &str, run_id: &str, path: &str) -> Vec<u8> {
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{path}",
            self.url
        );
        let response = self.http.get(&url).send().unwrap();
        assert!(
            response.status().is_success(),
            "GET {url}: {}",
            response.status()
        );
        response.bytes().unwrap().to_vec()
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signal = |name: &str| {
            let _ = Command::new("kill")
                .args([name, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Workers that ignored TERM, or the server itself if it is still shutting down.
        signal("-KILL");
        let _ = self.child.wait();
    }
}

/// `recsys train ARGS --config <scratch config>` in the scratch directory,
/// with `MLFLOW_TRACKING_URI` set to `tracking_uri` (or unset).
fn train(scratch: &Scratch, args: &[&str], tracking_uri: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recsys"));
    command
        .arg("train")
        .args(args)
        .arg("--config")
        .arg(scratch.config())
        .current_dir(scratch.dir.path())
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_TRACKING_TOKEN")
        .env_remove("MLFLOW_TRACKING_USERNAME")
        .env_remove("MLFLOW_TRACKING_PASSWORD");
    if let Some(uri) = tracking_uri {
        command.env("MLFLOW_TRACKING_URI", uri);
    }
    command.output().unwrap()
}

/// Append `section` to the scratch config.
fn add_to_config(scratch: &Scratch, section: &str) {
    let path = scratch.path("config.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(section);
    std::fs::write(path, text).unwrap();
}

/// Make the scratch directory a git checkout with one commit; returns its hash.
fn git_commit_all(dir: &Path) -> String {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=recsys",
                "-c",
                "user.email=recsys@localhost",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git is installed");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    git(&["init", "-q"]);
    git(&["add", "config.toml"]);
    git(&["commit", "-q", "-m", "config"]);
    git(&["rev-parse", "HEAD"]).trim().to_string()
}

/// `[{"key": k, "value": v}, …]` as pairs.
fn pairs(list: &Value) -> Vec<(String, Value)> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| (e["key"].as_str().unwrap().to_string(), e["value"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn lookup<'a>(pairs: &'a [(String, Value)], key: &str) -> &'a Value {
    &pairs
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| {
            panic!(
                "`{key}` not recorded; have {:?}",
                pairs.iter().map(|p| &p.0).collect::<Vec<_>>()
            )
        })
        .1
}

#[test]
fn train_records_params_metrics_curves_tags_artifacts_and_a_model_version() {
    let server = MlflowServer::start();
    let scratch = Scratch::default_data();
    // Generous: the server shares two cores with the build and other tests.
    add_to_config(
        &scratch,
        "\n[tracking]\nexperiment = \"recsys-test\"\ntimeout_seconds = 60\n",
    );
    let commit = git_commit_all(scratch.dir.path());
    let out = train(
        &scratch,
        &["--evaluate", "--register", "recsys-test-model"],
        Some(&server.url),
    );
    let stdout = ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(stderr.contains("recorded as MLflow run"), "{stderr}");
    assert!(
        stderr.contains("registered model `recsys-test-model` version 1"),
        "{stderr}"
    );
    let bundles = scratch.bundles();
    assert_eq!(bundles.len(), 1);
    let bundle = &bundles[0];
    assert!(
        stdout.contains(&format!("bundle {}", bundle.display())),
        "{stdout}"
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();

    // The experiment was created and holds exactly this run.
    let experiment = server.get("experiments/get-by-name", "experiment_name=recsys-test");
    let experiment_id = experiment["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let runs = server.post("runs/search", json!({"experiment_ids": [experiment_id]}));
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run_id = runs[0]["info"]["run_id"].as_str().unwrap().to_string();
    let run = server.get("runs/get", &format!("run_id={run_id}"))["run"].clone();
    assert_eq!(run["info"]["status"], "FINISHED");
    assert_eq!(run["info"]["run_name"], manifest["run_id"]);
    assert!(stderr.contains(&run_id), "{stderr}");

    // Params: the resolved config, flattened, plus the command line's choices.
    let params = pairs(&run["data"]["params"]);
    assert_eq!(
        lookup(&params, "models.als.factors"),
        &json!(manifest["config"]["models"]["als"]["factors"].to_string())
    );
    assert_eq!(lookup(&params, "models.als.regularization"), "0.01");
    assert_eq!(
        lookup(&params, "models.two_stage.reranker.num_trees"),
        "300"
    );
    assert_eq!(lookup(&params, "split.protocol"), "strict");
    assert_eq!(lookup(&params, "train.cutoff"), "2015-09-01");
    assert_eq!(lookup(&params, "train.k"), "10");
    assert!(params.len() > 60, "{} params", params.len());

    // Metrics: every model's scores, equal to the evaluation JSON uploaded beside them.
    let metrics = pairs(&run["data"]["metrics"]);
    let report: Value =
        serde_json::from_slice(&server.artifact(&experiment_id, &run_id, "metrics.json")).unwrap();
    for model in ["popular", "history", "als", "two_stage"] {
        for metric in ["precision", "recall", "ndcg", "map", "hit_rate", "coverage"] {
            let logged = lookup(&metrics, &format!("{model}_{metric}_at_10"))
                .as_f64()
                .unwrap();
            let reported = report["models"][model][metric].as_f64().unwrap();
            assert!(
                (logged - reported).abs() < 1e-12,
                "{model}_{metric}_at_10: logged {logged}, evaluation JSON {reported}"
            );
        }
        let seconds = lookup(&metrics, &format!("{model}_seconds"))
            .as_f64()
            .unwrap();
        assert!(seconds >= 0.0, "{model}_seconds = {seconds}");
    }
    assert!(
        lookup(&metrics, "two_stage_precision_at_10")
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(lookup(&metrics, "als_warm_recall_at_10").is_number());
    assert_eq!(
        lookup(&metrics, "eval_users").as_f64().unwrap(),
        report["users"].as_f64().unwrap()
    );
    for stage in ["load", "fit", "evaluate", "total"] {
        assert!(
            lookup(&metrics, &format!("{stage}_seconds"))
                .as_f64()
                .unwrap()
                > 0.0
        );
    }

    // Step metrics: the ALS loss after each iteration, the re-ranker's validation NDCG per tree.
    let history = |key: &str| -> Vec<(i64, f64)> {
        let h = server.get(
            "metrics/get-history",
            &format!("run_id={run_id}&metric_key={key}"),
        );
        let mut points: Vec<(i64, f64)> = h["metrics"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|m| {
                (
                    m["step"].as_i64().unwrap_or(0),
                    m["value"].as_f64().unwrap(),
                )
            })
            .collect();
        points.sort_by_key(|p| p.0);
        points
    };
    let iterations = manifest["config"]["models"]["als"]["iterations"]
        .as_u64()
        .unwrap() as usize;
    let loss = history("als_loss");
    assert_eq!(loss.len(), iterations, "{loss:?}");
    assert_eq!(
        loss.iter().map(|p| p.0).collect::<Vec<_>>(),
        (1..=iterations as i64).collect::<Vec<_>>()
    );
    let curve: Vec<f64> = manifest["training"]["als"]["loss_curve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(loss.iter().map(|p| p.1).collect::<Vec<_>>(), curve);
    assert!(
        loss.last().unwrap().1 < loss[0].1,
        "ALS loss did not fall: {loss:?}"
    );
    let ndcg = history("two_stage_valid_ndcg_at_10");
    assert!(!ndcg.is_empty());
    assert_eq!(
        ndcg.len(),
        manifest["training"]["two_stage"]["valid_curve"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v.is_number())
            .count()
    );
    assert!(ndcg.iter().all(|p| (0.0..=1.0).contains(&p.1)), "{ndcg:?}");

    // Tags: version, data fingerprint, bundle, commit of the working directory.
    let tags = pairs(&run["data"]["tags"]);
    assert_eq!(lookup(&tags, "recsys.version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(
        lookup(&tags, "recsys.data_fingerprint"),
        &manifest["data"]["fingerprint"]
    );
    assert_eq!(lookup(&tags, "recsys.bundle"), &manifest["run_id"]);
    assert_eq!(lookup(&tags, "mlflow.source.git.commit"), commit.as_str());

    // Artifacts: every bundle file, byte for byte.
    let mut files: Vec<PathBuf> = std::fs::read_dir(bundle)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() > 5, "{files:?}");
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let got = server.artifact(&experiment_id, &run_id, &format!("bundle/{name}"));
        assert!(
            got == std::fs::read(file).unwrap(),
            "bundle/{name} differs after upload"
        );
    }

    // The model version points at the uploaded bundle of this run.
    let version = server.get("model-versions/get", "name=recsys-test-model&version=1")
        ["model_version"]
        .clone();
    assert_eq!(version["run_id"], run_id.as_str());
    assert_eq!(
        version["source"],
        format!("{}/bundle", run["info"]["artifact_uri"].as_str().unwrap()).as_str()
    );

    // A training that fails is recorded as a FAILED run, and nothing else is reported.
    let out = train(&scratch, &["--cutoff", "2000-01-01"], Some(&server.url));
    let err = failed(&out);
    assert!(err.contains("leaves no training"), "{err}");
    assert!(!err.contains("warning"), "{err}");
    let runs = server.post("runs/search", json!({"experiment_ids": [experiment_id]}));
    let mut statuses: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["info"]["status"].as_str().unwrap())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["FAILED", "FINISHED"]);
}

#[test]
fn a_tracking_server_that_is_down_or_silent_never_costs_the_bundle() {
    let scratch = Scratch::default_data();
    add_to_config(&scratch, "\n[tracking]\ntimeout_seconds = 1\n");

    // Flags that need a server are refused before any work.
    let err = failed(&train(&scratch, &["--register", "m"], None));
    assert!(
        err.contains("--register m needs a tracking server"),
        "{err}"
    );
    let err = failed(&train(&scratch, &["--require-tracking"], None));
    assert!(err.contains("MLFLOW_TRACKING_URI"), "{err}");
    assert!(scratch.bundles().is_empty());

    // Nobody listens: training finishes, one warning names the reason and the bundle.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = train(&scratch, &["--tracking-uri", &dead], None);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let bundles = scratch.bundles();
    assert_eq!(bundles.len(), 1);
    assert_eq!(stderr.matches("warning").count(), 1, "{stderr}");
    let expected = format!("recsys: warning: experiment tracking at {dead} failed (");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert!(
        stderr.contains(&format!("the bundle is saved at {}", bundles[0].display())),
        "{stderr}"
    );

    // A server that accepts connections but never answers, with tracking
    // required: the bundle is still saved, then train fails with the reason.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_uri = format!("http://{}", silent.local_addr().unwrap());
    let started = Instant::now();
    let out = train(&scratch, &["--require-tracking"], Some(&silent_uri));
    let took = started.elapsed();
    let err = failed(&out);
    let bundles = scratch.bundles();
    assert_eq!(bundles.len(), 2);
    assert!(
        err.contains(&format!(
            "recsys: experiment tracking at {silent_uri} failed ("
        )),
        "{err}"
    );
    assert!(err.contains("no answer within 1 s"), "{err}");
    assert!(
        err.contains(&format!("the bundle is saved at {}", bundles[1].display())),
        "{err}"
    );
    assert!(!err.contains("warning"), "{err}");
    // One timeout, not one per request: training itself takes a few seconds.
    assert!(took < Duration::from_secs(120), "took {took:?}");
    drop(silent);
}

#[test]
fn train_with_tune_records_each_trial_as_a_child_run() {
    let server = MlflowServer::start();
    let scratch = Scratch::default_data();
    add_to_config(
        &scratch,
        "\n[tracking]\nexperiment = \"recsys-tune-test\"\ntimeout_seconds = 60\nlog_bundle = false\n",
    );
    let out = train(
        &scratch,
        &[
            "--tune",
            "--trials",
            "3",
            "--only",
            "models.history.half_life_days",
        ],
        Some(&server.url),
    );
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    let experiment = server.get(
        "experiments/get-by-name",
        "experiment_name=recsys-tune-test",
    );
    let experiment_id = experiment["experiment"]["experiment_id"].as_str().unwrap();
    let runs = server.post("runs/search", json!({"experiment_ids": [experiment_id]}));
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "the training run and 3 trials: {runs:?}");
    let tag = |run: &Value, key: &str| {
        pairs(&run["data"]["tags"])
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    };
    let (children, parents): (Vec<&Value>, Vec<&Value>) = runs
        .iter()
        .partition(|r| tag(r, "mlflow.parentRunId").is_some());
    assert_eq!((children.len(), parents.len()), (3, 1), "{runs:?}");
    let parent_id = parents[0]["info"]["run_id"].clone();
    let mut trials = Vec::new();
    for child in &children {
        assert_eq!(tag(child, "mlflow.parentRunId"), Some(parent_id.clone()));
        assert_eq!(child["info"]["status"], "FINISHED");
        let params = pairs(&child["data"]["params"]);
        trials.push(lookup(&params, "tune.trial").clone());
        assert!(lookup(&params, "models.history.half_life_days").is_string());
        let metrics = pairs(&child["data"]["metrics"]);
        assert!(lookup(&metrics, "two_stage_valid_recall_at_10").is_number());
    }
    trials.sort_by_key(|t| t.as_str().unwrap().to_string());
    assert_eq!(trials, [json!("0"), json!("1"), json!("2")]);
    // Exactly one trial is marked best.
    let best = children
        .iter()
        .filter(|c| tag(c, "recsys.tune.best") == Some(json!("true")))
        .count();
    assert_eq!(best, 1);
}
