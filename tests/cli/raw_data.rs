//! The raw RetailRocket layout (`item_properties_part*.csv`, `category_tree.csv`)
//! trained on directly.

use std::collections::HashMap;
use std::path::Path;

use recsys::bundle::Bundle;

use super::{failed, ok, Scratch};

/// Generate `--layout LAYOUT` data (500 items) into `dir`.
fn generate(s: &Scratch, dir: &Path, layout: &str) {
    ok(&s.run(&[
        "generate",
        "--users",
        "3000",
        "--items",
        "500",
        "--events",
        "60000",
        "--seed",
        "3",
        "--layout",
        layout,
        "--out",
        &dir.display().to_string(),
    ]));
}

/// A config training on the raw files in `raw`.
fn raw_config(s: &Scratch, raw: &Path) {
    std::fs::write(
        s.path("config.toml"),
        format!(
            "[data]\nevents = {:?}\nitem_properties = [{:?}, {:?}]\ncategory_tree = {:?}\n\
             [split]\ncutoff = \"2015-09-01\"\n[artifacts]\ndir = \"artifacts\"\n",
            raw.join("events.csv"),
            raw.join("item_properties_part1.csv"),
            raw.join("item_properties_part2.csv"),
            raw.join("category_tree.csv"),
        ),
    )
    .unwrap();
}

#[test]
fn the_raw_layout_trains_with_the_values_in_force_at_the_cutoff() {
    let s = Scratch::default_data();
    let (raw, flat) = (s.path("raw"), s.path("flat"));
    generate(&s, &raw, "retailrocket-raw");
    generate(&s, &flat, "flat");
    for name in [
        "item_properties_part1.csv",
        "item_properties_part2.csv",
        "category_tree.csv",
    ] {
        assert!(raw.join(name).is_file(), "{name} missing");
    }
    assert!(!raw.join("item_features.csv").exists());
    raw_config(&s, &raw);
    let out = s.run(&["train"]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("item features for 500 items"), "{stderr}");

    // The flat file holds every item's state at the end of the data; the
    // bundle must hold the state at the cutoff, which differs for some items.
    let end: HashMap<i64, (i64, i64, i64)> =
        std::fs::read_to_string(flat.join("item_features.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let v: Vec<i64> = l.split(',').map(|x| x.parse().unwrap()).collect();
                (v[0], (v[1], v[2], v[3]))
            })
            .collect();
    let tree: HashMap<i64, Option<i64>> = std::fs::read_to_string(raw.join("category_tree.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (c, p) = l.split_once(',').unwrap();
            (c.parse().unwrap(), p.parse().ok())
        })
        .collect();
    let bundle = Bundle::load(&s.bundles()[0]).unwrap();
    let (mut same, mut differ) = (0, 0);
    for (dense, info) in bundle.item_info.iter().enumerate() {
        let raw_id = bundle.items.raw_ids()[dense];
        let category = info
            .category
            .expect("every item has a category by the cutoff");
        assert_eq!(
            info.parent, tree[&category],
            "item {raw_id}: parent from the tree"
        );
        let now = (
            category,
            info.parent.unwrap_or(-1),
            i64::from(info.available.unwrap()),
        );
        if now == end[&raw_id] {
            same += 1;
        } else {
            differ += 1;
        }
    }
    assert!(
        differ > 0 && same > 4 * differ,
        "{same} as at the end, {differ} not"
    );
    ok(&s.run(&["evaluate", "--json"]));
}

#[test]
fn a_bad_properties_row_is_an_error_naming_the_file_line_and_column() {
    let s = Scratch::default_data();
    let raw = s.path("raw");
    generate(&s, &raw, "retailrocket-raw");
    let part2 = raw.join("item_properties_part2.csv");
    let mut text = std::fs::read_to_string(&part2).unwrap();
    text.push_str("1441065600000,12,available,maybe\n");
    let line = text.lines().count();
    std::fs::write(&part2, text).unwrap();
    raw_config(&s, &raw);
    let err = failed(&s.run(&["train"]));
    assert!(
        err.contains(&format!(
            "item_properties_part2.csv: line {line}, column `value`: `maybe` is not 0 or 1"
        )),
        "{err}"
    );
    assert!(s.bundles().is_empty());

    // Both kinds of item description at once is a config error, before any data is read.
    let config = std::fs::read_to_string(s.path("config.toml")).unwrap();
    let both = config.replace("[data]\n", "[data]\nitem_features = \"items.csv\"\n");
    std::fs::write(s.path("config.toml"), both).unwrap();
    let err = failed(&s.run(&["train"]));
    assert!(
        err.contains("sets both `item_features` and `item_properties`"),
        "{err}"
    );
}
