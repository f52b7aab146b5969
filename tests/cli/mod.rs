//! Helpers for running the real binary in a scratch directory.

mod bad_input;
mod end_to_end;
mod experiment;
mod raw_data;
mod replay;
mod rolling;
mod tune;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where `data/` and `config.toml` live).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory with a config whose data points at `events` and whose
/// artifacts stay inside the scratch directory.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    /// A scratch directory using the repository's config with `[data] events` replaced.
    pub fn with_events(events: &Path, extra_data: &str) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::read_to_string(repo().join("config.toml")).unwrap();
        let mut config = String::new();
        let mut in_data = false;
        for line in base.lines() {
            if line.starts_with('[') {
                in_data = line == "[data]";
            }
            if in_data
                && (line.starts_with("events")
                    || line.starts_with("item_features")
                    || line.starts_with("bad_rows"))
            {
                continue;
            }
            config.push_str(line);
            config.push('\n');
            if line == "[data]" {
                config.push_str(&format!("events = {:?}\n", events.display().to_string()));
                config.push_str(&format!(
                    "item_features = {:?}\n",
                    repo().join("data/item_features.csv").display().to_string()
                ));
                config.push_str(extra_data);
                config.push('\n');
            }
        }
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Scratch { dir }
    }

    /// The scratch directory with the repository's default data.
    pub fn default_data() -> Scratch {
        Scratch::with_events(&repo().join("data/events_u100_i300.csv"), "")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config(&self) -> String {
        self.path("config.toml").display().to_string()
    }

    /// Run `recsys ARGS --config <scratch config>`.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if !matches!(args.first(), Some(&"generate")) {
            all.push("--config".into());
            all.push(self.config());
        }
        Command::new(env!("CARGO_BIN_EXE_recsys"))
            .args(&all)
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    /// Bundles written so far.
    pub fn bundles(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.path("artifacts")) {
            Ok(entries) => {
                let mut v: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
                v.sort();
                v
            }
            Err(_) => Vec::new(),
        }
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Stdout of a run that must have succeeded.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Stderr of a run that must have failed.
pub fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "command succeeded but should have failed\n--- stdout\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr.clone()).unwrap()
}
