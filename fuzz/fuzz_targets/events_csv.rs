//! The event loader on arbitrary CSV bytes.
//!
//! `recsys train` and `recsys evaluate` read whatever file `[data] events`
//! names; a malformed one must be refused with an error naming the file, the
//! line and the column, never a panic, a hang or a runaway allocation. Both
//! `bad_rows` modes run: `error` stops at the first bad row, `skip` walks
//! every row and keeps the good ones, which must then be sorted and valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recsys::data::{load_events, BadRows};

fuzz_target!(|data: &[u8]| {
    let path = recsys_fuzz::scratch_file("events.csv", data);
    let strict = load_events(&path, BadRows::Error);
    if let Ok(loaded) = load_events(&path, BadRows::Skip) {
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
});
