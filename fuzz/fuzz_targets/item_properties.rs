//! The raw RetailRocket item loader (`[data] item_properties` and
//! `category_tree`) on arbitrary bytes.
//!
//! Input starting with the Parquet magic `PAR1` is written as a `.parquet`
//! properties file, anything else as a `.csv` one (the streamed reader); a
//! small fixed category tree goes beside it. A bad file must be an error
//! naming the file and the row, never a panic (polars' panics, which the
//! loader catches and reports, are not findings:
//! [`recsys_fuzz::findings_are_escaping_panics`]).
#![no_main]

use libfuzzer_sys::fuzz_target;
use recsys::data::{load_item_properties, BadRows};

fuzz_target!(
    init: recsys_fuzz::findings_are_escaping_panics(),
    |data: &[u8]| run(data)
);

fn run(data: &[u8]) {
    let name = if data.starts_with(b"PAR1") {
        "item_properties.parquet"
    } else {
        "item_properties.csv"
    };
    let path = recsys_fuzz::scratch_file(name, data);
    let tree = recsys_fuzz::scratch_file("category_tree.csv", b"categoryid,parentid\n1,\n2,1\n3,1\n");
    // Both ways of handling bad rows: stopping at the first, and skipping them all.
    for bad_rows in [BadRows::Error, BadRows::Skip] {
        recsys_fuzz::show(&load_item_properties(
            std::slice::from_ref(&path),
            Some(&tree),
            bad_rows,
        ));
    }
}
