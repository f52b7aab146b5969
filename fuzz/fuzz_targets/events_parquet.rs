//! The event loader on arbitrary Parquet bytes.
//!
//! Event files may be Parquet (by extension), and Parquet is a binary format
//! whose footer states lengths and offsets that a damaged or hostile file can
//! set to anything: loading must answer with an error naming the file, never
//! panic, hang or allocate what the footer claims without checking. polars'
//! reader does panic on some such files; the loader catches those panics and
//! reports them as errors, so only a panic escaping the loader is a finding
//! ([`recsys_fuzz::findings_are_escaping_panics`]).
#![no_main]

use libfuzzer_sys::fuzz_target;
use recsys::data::{load_events, BadRows};

fuzz_target!(
    init: recsys_fuzz::findings_are_escaping_panics(),
    |data: &[u8]| run(data)
);

fn run(data: &[u8]) {
    let path = recsys_fuzz::scratch_file("events.parquet", data);
    recsys_fuzz::show(&load_events(&path, BadRows::Error));
    if let Ok(loaded) = load_events(&path, BadRows::Skip) {
        assert!(
            !loaded.log.is_empty(),
            "an empty log is an error, not a result"
        );
    }
}
