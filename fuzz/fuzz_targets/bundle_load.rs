//! Loading a model bundle whose files were damaged: what `recsys serve`,
//! `evaluate` and `recommend` do with `artifacts/<run-id>/`.
//!
//! A bundle is a directory anyone can edit, and a copy can be truncated, so
//! every file is checked against the others on load. This target trains a
//! small bundle with every model once, then for each input copies it and
//! damages one file:
//!
//! * byte 0 picks the file (`manifest.json`, `config.toml`, each `.npy` array
//!   and each model's files, in name order);
//! * byte 1 picks how: 0 replaces the file with the rest of the input, 1
//!   overwrites it at the offset in bytes 2–3 (u16, little-endian) with the
//!   rest, 2 truncates it at that offset and appends the rest.
//!
//! Loading must then fail with an error, or give an engine that answers: a
//! bundle that loads and then panics on the first request is a finding too.
#![no_main]

use std::path::PathBuf;
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use recsys::engine::{Engine, EngineSettings, Request};

/// The pristine bundle's files (name, bytes) and the copy under test.
struct Copy {
    files: Vec<(String, Vec<u8>)>,
    dir: PathBuf,
    /// The file the previous input damaged, restored before the next.
    damaged: Option<usize>,
}

fn copy() -> &'static Mutex<Copy> {
    static COPY: std::sync::OnceLock<Mutex<Copy>> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let (_, pristine) = recsys_fuzz::tiny_bundle();
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(pristine)
            .expect("listing the bundle")
            .map(|e| {
                let path = e.expect("a bundle entry").path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).expect("reading a bundle file"))
            })
            .collect();
        files.sort();
        let dir = recsys_fuzz::scratch().join("damaged");
        std::fs::create_dir_all(&dir).expect("creating the copy");
        for (name, bytes) in &files {
            std::fs::write(dir.join(name), bytes).expect("copying the bundle");
        }
        Mutex::new(Copy {
            files,
            dir,
            damaged: None,
        })
    })
}

fuzz_target!(
    // Training takes seconds: before the first input, not within its timeout.
    init: {
        copy();
    },
    |data: &[u8]| run(data)
);

fn run(data: &[u8]) {
    let [which, how, rest @ ..] = data else {
        return;
    };
    let mut copy = copy().lock().unwrap();
    if let Some(i) = copy.damaged.take() {
        let (name, bytes) = &copy.files[i];
        std::fs::write(copy.dir.join(name), bytes).expect("restoring a file");
    }
    let i = *which as usize % copy.files.len();
    let original = &copy.files[i].1;
    let damaged = match (how % 3, rest) {
        (0, _) => rest.to_vec(),
        (1, [lo, hi, patch @ ..]) => {
            let at = u16::from_le_bytes([*lo, *hi]) as usize % (original.len() + 1);
            let mut bytes = original[..at].to_vec();
            bytes.extend_from_slice(patch);
            bytes.extend_from_slice(original.get(at + patch.len()..).unwrap_or_default());
            bytes
        }
        (2, [lo, hi, tail @ ..]) => {
            let at = u16::from_le_bytes([*lo, *hi]) as usize % (original.len() + 1);
            let mut bytes = original[..at].to_vec();
            bytes.extend_from_slice(tail);
            bytes
        }
        _ => return,
    };
    std::fs::write(copy.dir.join(&copy.files[i].0), &damaged).expect("damaging a file");
    copy.damaged = Some(i);

    let loaded = Engine::load(&copy.dir, &EngineSettings::default());
    recsys_fuzz::show(&loaded);
    let Ok(engine) = loaded else {
        return;
    };
    // It loaded: it must answer, for a known shopper, an unknown one and items.
    let bundle = engine.bundle();
    let known = bundle.users.raw_ids().first().copied().unwrap_or(1);
    for user in [known, i64::MIN] {
        let _ = engine.answer(&Request::new(user, &[], 10));
    }
    if let (true, Some(&item)) = (engine.has_similar(), bundle.items.raw_ids().first()) {
        let _ = engine.similar(item, 10);
    }
    let _ = engine.popular(10);
}
