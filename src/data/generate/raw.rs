//! The catalogue as the RetailRocket download has it: a log of property
//! snapshots (`item_properties_part1.csv`, `item_properties_part2.csv`:
//! `timestamp,itemid,property,value`) and `category_tree.csv`
//! (`categoryid,parentid`).
//!
//! Each item gets a first snapshot a week before the events start and one a
//! week after another through the period, like the real files' weekly
//! snapshots. Values change over time so that reading them "as of" a time
//! matters: about 30% of the items are out of stock (or back in) for a few
//! weeks, 3% start in another category and move to their final one at some
//! week, and a price-like property (`790`, `n<cents>.000`) drifts. After the
//! last change every item has the state [`ItemLayout::Flat`] writes, so both
//! layouts describe the same catalogue at the end. A hashed text property
//! (`888`) stands for the many properties recsys reads past.
//!
//! The part files split the snapshots in time (part 1 the earlier half),
//! each written by its own pass over the items; an item's plan comes from
//! its own random stream, so both passes agree.
//!
//! [`ItemLayout::Flat`]: super::ItemLayout::Flat

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Catalogue, Line, DAY_MS, SPAN_DAYS, START_MS};
use crate::fsio::write_file_atomically;
use crate::rng::Rng;

/// Random streams of the per-item plans start here (one stream per item).
const STREAM_RAW: u64 = 4 << 48;
/// Weekly snapshots from a week before the first event to past the last.
const SNAPSHOTS: i64 = SPAN_DAYS / 7 + 2;
/// Share of items out of stock (or in stock) for a stretch of weeks.
const AVAILABILITY_FLIP_SHARE: f64 = 0.3;
/// Share of items that move category once.
const CATEGORY_MOVE_SHARE: f64 = 0.03;
/// The price-like property is restated every this many snapshots.
const PRICE_EVERY: i64 = 4;

/// Time of snapshot `s`.
fn snapshot_ms(s: i64) -> i64 {
    START_MS + (s - 1) * 7 * DAY_MS
}

/// One item's changes over the snapshots.
struct Plan {
    /// Leaf category before `moves_at` (the final one from then on).
    first_leaf: usize,
    moves_at: i64,
    /// Availability is the opposite of the final one in snapshots `[from, to)`.
    flipped: (i64, i64),
    /// Price in cents at the first snapshot, and its change per restatement.
    cents: u64,
    drift: i64,
    /// The `888` text.
    tag: (u64, u64),
}

impl Plan {
    fn of(catalogue: &Catalogue, seed: u64, item: usize) -> Plan {
        let mut rng = Rng::for_stream(seed, STREAM_RAW + item as u64);
        let leaves = catalogue.leaf_raw.len() as u64;
        let final_leaf = catalogue.category_of(item as u32) as usize;
        let (first_leaf, moves_at) = if rng.chance(CATEGORY_MOVE_SHARE) {
            (
                rng.below(leaves) as usize,
                1 + rng.below(SNAPSHOTS as u64 - 1) as i64,
            )
        } else {
            (final_leaf, 0)
        };
        let flipped = if rng.chance(AVAILABILITY_FLIP_SHARE) {
            let from = rng.below(SNAPSHOTS as u64 - 1) as i64;
            // The last snapshot has the final value.
            (from, (from + 1 + rng.below(4) as i64).min(SNAPSHOTS - 1))
        } else {
            (0, 0)
        };
        Plan {
            first_leaf,
            moves_at,
            flipped,
            cents: 500 + rng.below(200_000),
            drift: rng.below(201) as i64 - 100,
            tag: (rng.below(1_000_000), rng.below(1_000_000)),
        }
    }
}

/// Write the raw files into `out_dir`; returns the two properties files and
/// the category tree, in that order.
pub(super) fn write(catalogue: &Catalogue, seed: u64, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let half = SNAPSHOTS / 2;
    let mut paths = Vec::new();
    for (part, snapshots) in [(1, 0..half), (2, half..SNAPSHOTS)] {
        let path = out_dir.join(format!("item_properties_part{part}.csv"));
        write_file_atomically(&path, |w| {
            w.write_all(b"timestamp,itemid,property,value\n")?;
            let mut buf = Vec::with_capacity(1 << 16);
            for &item in &catalogue.by_raw_id {
                let plan = Plan::of(catalogue, seed, item as usize);
                for s in snapshots.clone() {
                    rows(catalogue, item as usize, &plan, s, &mut buf);
                }
                if buf.len() >= 1 << 16 {
                    w.write_all(&buf)?;
                    buf.clear();
                }
            }
            w.write_all(&buf)?;
            Ok(())
        })
        .with_context(|| format!("writing {}", path.display()))?;
        paths.push(path);
    }
    let path = out_dir.join("category_tree.csv");
    write_file_atomically(&path, |w| {
        w.write_all(b"categoryid,parentid\n")?;
        let mut tree: Vec<(u32, Option<u32>)> = catalogue
            .leaf_raw
            .iter()
            .zip(&catalogue.leaf_parent)
            .map(|(&leaf, &parent)| (leaf, Some(catalogue.parent_raw[parent as usize])))
            .chain(catalogue.parent_raw.iter().map(|&p| (p, None)))
            .collect();
        tree.sort_unstable();
        for (category, parent) in tree {
            match parent {
                Some(p) => writeln!(w, "{category},{p}")?,
                None => writeln!(w, "{category},")?,
            }
        }
        Ok(())
    })
    .with_context(|| format!("writing {}", path.display()))?;
    paths.push(path);
    Ok(paths)
}

/// Item `item`'s rows of snapshot `s`, appended to `buf`.
fn rows(catalogue: &Catalogue, item: usize, plan: &Plan, s: i64, buf: &mut Vec<u8>) {
    let ts = snapshot_ms(s) as u64;
    let id = catalogue.raw_id[item] as u64;
    let mut line = Line::new();
    let mut row = |property: &[u8], value: &mut dyn FnMut(&mut Line)| {
        line.num(ts)
            .text(b",")
            .num(id)
            .text(b",")
            .text(property)
            .text(b",");
        value(&mut line);
        line.text(b"\n").flush_into(buf);
    };
    if s == 0 || s == plan.moves_at {
        let leaf = if s < plan.moves_at {
            plan.first_leaf
        } else {
            catalogue.category_of(item as u32) as usize
        };
        row(b"categoryid", &mut |l| {
            l.num(catalogue.leaf_raw[leaf] as u64);
        });
    }
    let available = catalogue.available[item] != (plan.flipped.0..plan.flipped.1).contains(&s);
    row(b"available", &mut |l| {
        l.text(if available { b"1" } else { b"0" });
    });
    if s % PRICE_EVERY == 0 {
        let cents = (plan.cents as i64 + plan.drift * (s / PRICE_EVERY)).max(1) as u64;
        row(b"790", &mut |l| {
            l.text(b"n").num(cents).text(b".000");
        });
    }
    if s == 0 {
        row(b"888", &mut |l| {
            l.num(plan.tag.0).text(b" ").num(plan.tag.1);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::{generate, GenerateSpec, ItemLayout, OutputFormat};
    use crate::data::{load_item_features, load_item_properties, BadRows};

    #[test]
    fn the_raw_files_end_in_the_flat_files_state_and_change_before() {
        let spec = GenerateSpec {
            users: 300,
            items: 1_000,
            events: 3_000,
            seed: 3,
        };
        let dir = tempfile::tempdir().unwrap();
        let flat = generate(
            &spec,
            &dir.path().join("flat"),
            OutputFormat::Csv,
            ItemLayout::Flat,
        )
        .unwrap();
        let raw = generate(
            &spec,
            &dir.path().join("raw"),
            OutputFormat::Csv,
            ItemLayout::RetailRocketRaw,
        )
        .unwrap();
        // The same events either way.
        assert_eq!(
            std::fs::read(&flat.events_path).unwrap(),
            std::fs::read(&raw.events_path).unwrap()
        );
        let names: Vec<String> = raw
            .item_files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "item_properties_part1.csv",
                "item_properties_part2.csv",
                "category_tree.csv"
            ]
        );
        let features = load_item_features(&flat.item_files[0]).unwrap();
        let loaded = load_item_properties(
            &raw.item_files[..2],
            Some(&raw.item_files[2]),
            BadRows::Error,
        )
        .unwrap();
        assert_eq!(loaded.features.len(), features.len());
        let end = i64::MAX;
        let ids = features.ids().to_vec();
        let mut changed = 0;
        for &id in &ids {
            assert_eq!(
                loaded.features.as_of(id, end),
                features.as_of(id, end),
                "item {id}"
            );
            let middle = super::snapshot_ms(super::SNAPSHOTS / 2) + 1;
            changed += usize::from(loaded.features.as_of(id, middle) != features.as_of(id, end));
        }
        // About a third of the items differ at some week; at any one week fewer.
        assert!(
            changed > ids.len() / 50 && changed < ids.len() / 2,
            "{changed} of {}",
            ids.len()
        );
    }
}
