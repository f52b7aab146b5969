//! `recsys serve` fuzzed against its own OpenAPI document by schemathesis.
//!
//! Schemathesis (PyPI, pinned, installed by `.ci/services/schemathesis.sh` into
//! `$RECSYS_CI_CACHE/venv-schemathesis`, or whatever `RECSYS_TEST_ST` names)
//! reads `/openapi.json` from the real binary and sends every operation
//! schema-valid and schema-violating requests: no answer may be a 5xx, every
//! answer must match its documented status, content type and JSON schema,
//! valid requests must be accepted and invalid ones refused. It runs from the
//! repository root, so `schemathesis.toml` (and its hooks) apply.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{free_port, ok, repo, Scratch};

/// The `st` binary, or a panic saying how to install it.
fn schemathesis() -> PathBuf {
    let bin = std::env::var_os("RECSYS_TEST_ST")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("RECSYS_CI_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                        .join(".cache/recsys-ci")
                });
            cache.join("venv-schemathesis/bin/st")
        });
    assert!(
        bin.is_file(),
        "no schemathesis at {}: run .ci/services/up (it installs schemathesis into a venv), \
         or point RECSYS_TEST_ST at an `st` binary",
        bin.display()
    );
    bin
}

/// A running `recsys serve`, killed when dropped.
struct Service {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Service {
    /// Start `recsys serve --config CONFIG` on a free port, with `env`, and
    /// wait until `/ready` answers.
    fn start(dir: &Path, config: &Path, env: &[(&str, &str)]) -> Service {
        let port = free_port();
        let log = dir.join(format!("serve-{port}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_recsys"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .args(["--port", &port.to_string()])
            .env_remove("RECSYS_ADMIN_TOKEN")
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut service = Service {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let http = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ready = http
                .get(format!("{}/ready", service.url))
                .send()
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return service;
            }
            let exited = service.child.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "serve did not become ready ({exited:?}):\n{}",
                service.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run `st run` against this service's document; panic with schemathesis'
    /// report and the service's log unless it found nothing.
    fn fuzz(&mut self, st: &Path, scratch: &Scratch, extra: &[&str]) {
        let out = Command::new(st)
            .arg("run")
            .arg(format!("{}/openapi.json", self.url))
            .args(["--checks", "all", "--max-examples", "100", "--seed", "1"])
            .args(["--no-color", "--request-timeout", "10"])
            .args(extra)
            .current_dir(repo())
            // Hypothesis' own files go to the scratch directory, not the work tree.
            .env("HYPOTHESIS_STORAGE_DIRECTORY", scratch.path("hypothesis"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let alive = self.child.try_wait().unwrap().is_none();
        assert!(
            out.status.success() && alive,
            "schemathesis against {} exited {} (service alive: {alive}):\n{report}\n\
             --- recsys serve\n{}",
            self.url,
            out.status,
            self.log()
        );
        assert!(report.contains("passed"), "{report}");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_service_keeps_to_its_openapi_document_under_schemathesis() {
    let st = schemathesis();
    let scratch = Scratch::default_data();
    ok(&scratch.run(&["train"]));
    let config = scratch.path("config.toml");

    // The shipped settings with an admin token: every route, reloads with the
    // token, and schemathesis' check that a reload without it is refused.
    let mut plain = Service::start(
        scratch.dir.path(),
        &config,
        &[("RECSYS_ADMIN_TOKEN", "fuzz-token")],
    );
    plain.fuzz(
        &st,
        &scratch,
        &["--header", "Authorization: Bearer fuzz-token"],
    );
    drop(plain);

    // An A/A experiment on the same bundle and no token: /experiment's
    // report, the variants in /ready and in every answer, open reloads.
    let bundle = scratch.bundles().pop().expect("train wrote a bundle");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[serve.experiment]\nname = \"fuzz\"\nvariants = [\n  \
         {{ name = \"control\", bundle = {b:?}, share = 0.5 }},\n  \
         {{ name = \"treatment\", bundle = {b:?}, share = 0.5 }},\n]\n",
        b = bundle.display().to_string()
    ));
    let with_experiment = scratch.path("experiment.toml");
    std::fs::write(&with_experiment, text).unwrap();
    let mut ab = Service::start(scratch.dir.path(), &with_experiment, &[]);
    ab.fuzz(&st, &scratch, &[]);
}
