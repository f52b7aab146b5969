//! The event loader on arbitrary CSV bytes.
//!
//! `recsys train` and `recsys evaluate` read whatever file `[data] events`
//! names; a malformed one must be refused with an error naming the file, the
//! line and the column, never a panic, a hang or a runaway allocation. Both
//! `bad_rows` modes run: `error` stops at the first bad row, `skip` walks
//! every row and keeps the good ones, which must then be sorted and valid.
//! polars' own panics, which the loader catches and reports as errors, are
//! not findings ([`recsys_fuzz::findings_are_escaping_panics`]).
#![no_main]

use libfuzzer_sys::fuzz_target;
use recsys::data::{load_events, BadRows};

fuzz_target!(
    init: recsys_fuzz::findings_are_escaping_panics(),
    |data: &[u8]| run(data)
);

fn run(data: &[u8]) {
    let path = recsys_fuzz::scratch_file("events.csv", data);
    let strict = load_events(&path, BadRows::Error);
    let skip = load_events(&path, BadRows::Skip);
    recsys_fuzz::show(&strict);
    if let Ok(loaded) = skip {
        let log = &loaded.log;
        assert!(!log.is_empty(), "an empty log is an error, not a result");
        assert!(log.timestamp_ms.iter().all(|&t| t >= 0));
        assert!(
            (1..log.len()).all(|i| (log.visitor[i - 1], log.timestamp_ms[i - 1])
                <= (log.visitor[i], log.timestamp_ms[i]))
        );
        if let Ok(strict) = strict {
            assert_eq!(loaded.skipped_rows, 0);
            assert_eq!(strict.log, loaded.log);
        }
    }
}
