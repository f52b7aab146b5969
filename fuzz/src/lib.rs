//! What the recsys fuzz targets share: a scratch directory for the loaders
//! (they read paths, not bytes) and a small trained bundle.
//!
//! Every loader under test takes a path, so a target writes its input to a
//! file in [`scratch`] (one directory per process, the same file name for
//! every input) and loads that. [`tiny_bundle`] trains every model on the
//! repository's `data/` once per process, with small settings, and saves it:
//! the bundle target damages copies of its files, the service target answers
//! requests from it.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use recsys::bundle::Bundle;
use recsys::config::Config;

/// This process's scratch directory (created on first use), under the
/// system temporary directory and named after the process id.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("recsys-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the scratch directory");
        dir
    })
}

/// Write `bytes` to `name` in [`scratch`] and return its path.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).expect("writing a scratch file");
    path
}

/// The repository root (the parent of this crate).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/ sits in the repository")
}

/// Let panics that the code under test catches pass, so that only those
/// escaping it are findings.
///
/// libfuzzer-sys installs a panic hook that aborts at once, even on a panic
/// that would be caught further up. The data loaders catch the panics of
/// polars' readers on damaged files (`recsys::data::table::catch_reader_panic`)
/// and turn them into errors; with this hook such a panic prints one line and
/// unwinds to that catch, while one that escapes the loader still aborts the
/// process (it cannot unwind out of the fuzzer's entry point), and the
/// sanitizer prints where.
pub fn findings_are_escaping_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("");
        eprintln!("recsys-fuzz: panic at {location}: {message}");
    }));
}

/// With `RECSYS_FUZZ_SHOW` set, print what the code under test answered, as
/// `recsys` would print it: to see the message a user gets for an input
/// (`RECSYS_FUZZ_SHOW=1 TARGET_BINARY INPUT_FILE`).
pub fn show<T, E: std::fmt::Display>(result: &Result<T, E>) {
    static SHOW: OnceLock<bool> = OnceLock::new();
    if *SHOW.get_or_init(|| std::env::var_os("RECSYS_FUZZ_SHOW").is_some()) {
        match result {
            Ok(_) => eprintln!("recsys-fuzz: loaded"),
            Err(err) => eprintln!("recsys-fuzz: {err:#}"),
        }
    }
}

/// A bundle with every model (two_stage and covisit included), trained once
/// per process on `data/` with tiny factor tables and few trees so that its
/// files stay small, and the directory it was saved to.
pub fn tiny_bundle() -> &'static (Bundle, PathBuf) {
    static BUNDLE: OnceLock<(Bundle, PathBuf)> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        // The defaults, not the repository's config.toml: what is fuzzed should
        // not change when someone tunes the shipped settings.
        let mut config = Config::default();
        let data = repo_root().join("data");
        config.data.events = data.join("events_u100_i300.csv");
        config.data.item_features = Some(data.join("item_features.csv"));
        config.split.cutoff = Some("2015-09-01".into());
        let m = &mut config.models;
        m.enabled = ["popular", "history", "als", "covisit", "two_stage"]
            .map(String::from)
            .to_vec();
        m.als.factors = 4;
        m.als.iterations = 2;
        m.two_stage.label_windows = 1;
        m.two_stage.reranker.num_trees = 5;
        let cutoff = config.split.cutoff_rule().expect("cutoff");
        let prepared = recsys::training::prepare(&config, None, &cutoff, config.split.protocol)
            .expect("preparing data/");
        let bundle = recsys::training::fit(&config, &prepared).expect("training");
        let root = scratch().join("bundles");
        std::fs::create_dir_all(&root).expect("creating the bundle root");
        let dir = bundle.save(&root).expect("saving the bundle");
        (bundle, dir)
    })
}
