//! The item-features loader (`[data] item_features`: category, parent,
//! availability) on arbitrary bytes.
//!
//! Input starting with the Parquet magic `PAR1` is written as a `.parquet`
//! file, anything else as `.csv`, so both readers see the item columns. A bad
//! file must be an error naming the file and the row, never a panic (polars'
//! panics, which the loader catches and reports, are not findings:
//! [`recsys_fuzz::findings_are_escaping_panics`]).
#![no_main]

use libfuzzer_sys::fuzz_target;
use recsys::data::load_item_features;

fuzz_target!(
    init: recsys_fuzz::findings_are_escaping_panics(),
    |data: &[u8]| run(data)
);

fn run(data: &[u8]) {
    let name = if data.starts_with(b"PAR1") {
        "items.parquet"
    } else {
        "items.csv"
    };
    let path = recsys_fuzz::scratch_file(name, data);
    recsys_fuzz::show(&load_item_features(&path));
}
