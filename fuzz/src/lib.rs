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

/// A bundle with every model (two_stage and covisit included), trained once
/// per process on `data/` with tiny factor tables and few trees so that its
/// files stay small, and the directory it was saved to.
pub fn tiny_bundle() -> &'static (Bundle, PathBuf) {
    static BUNDLE: OnceLock<(Bundle, PathBuf)> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let mut config = Config::load(&repo_root().join("config.toml")).expect("config.toml");
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
