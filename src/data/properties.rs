//! The raw RetailRocket item files: `item_properties_part*.csv` and
//! `category_tree.csv`, read as they are downloaded.
//!
//! The properties files are a log of snapshots, `timestamp,itemid,property,value`:
//! about 20 million rows at RetailRocket's size, of which two properties are
//! used here, `categoryid` (the item's category) and `available` (0 or 1);
//! the other properties' values are hashed strings and numbers whose meaning
//! the shop did not publish, and are read (every row is checked) but not used.
//! `category_tree.csv` (`categoryid,parentid`, the parent empty at a root)
//! gives each category's parent.
//!
//! Values change over time, so the result is an [`ItemFeatures`] timeline:
//! each item's state after each change, from which training takes the values
//! in force at its cutoff. A CSV file is streamed line by line (memory holds
//! only the rows of the two properties used); a Parquet file is read whole by
//! polars, its four columns only.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::error::DataError;
use super::events::BadRows;
use super::items::{ItemFeatures, ItemInfo};
use super::table::{BadCell, Format, Table};

/// The columns a properties file must have.
pub const PROPERTY_COLUMNS: [&str; 4] = ["timestamp", "itemid", "property", "value"];

/// The columns a category tree must have.
pub const TREE_COLUMNS: [&str; 2] = ["categoryid", "parentid"];

/// One change of a used property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Category(i64),
    Available(bool),
}

/// The used rows of one properties file, and what was skipped.
#[derive(Debug, Default)]
struct Read {
    /// `(item, timestamp, change)` in file order.
    changes: Vec<(i64, i64, Change)>,
    rows: usize,
    skipped: usize,
}

/// What loading the raw item files found.
#[derive(Debug, Clone)]
pub struct LoadedProperties {
    /// Each item's category, parent and availability over time.
    pub features: ItemFeatures,
    /// Rows read, over all properties files.
    pub rows: usize,
    /// Rows dropped under [`BadRows::Skip`].
    pub skipped_rows: usize,
    /// Categories in the tree.
    pub categories: usize,
}

/// Read the properties files `paths` (CSV or Parquet, each by its extension)
/// and the category tree `tree`, into each item's state over time.
pub fn load_item_properties(
    paths: &[PathBuf],
    tree: Option<&Path>,
    bad_rows: BadRows,
) -> Result<LoadedProperties, DataError> {
    let parents = match tree {
        Some(path) => load_category_tree(path)?,
        None => HashMap::new(),
    };
    let reads: Vec<Read> = paths
        .par_iter()
        .map(|path| read_properties(path, bad_rows))
        .collect::<Result<_, _>>()?;
    let rows = reads.iter().map(|r| r.rows).sum();
    let skipped_rows = reads.iter().map(|r| r.skipped).sum();
    let mut changes: Vec<(i64, i64, Change)> =
        Vec::with_capacity(reads.iter().map(|r| r.changes.len()).sum());
    for read in reads {
        changes.extend(read.changes);
    }
    // By item, then time; a category and an availability set at one moment
    // are one state, so both are applied before the state is recorded.
    changes.sort_by_key(|&(item, ts, _)| (item, ts));
    let mut states = Vec::with_capacity(changes.len());
    let mut current = ItemInfo::default();
    for (i, &(item, ts, change)) in changes.iter().enumerate() {
        if i == 0 || changes[i - 1].0 != item {
            current = ItemInfo::default();
        }
        match change {
            Change::Category(c) => {
                current.category = Some(c);
                current.parent = parents.get(&c).copied().flatten();
            }
            Change::Available(a) => current.available = Some(a),
        }
        let last_of_moment = changes
            .get(i + 1)
            .is_none_or(|&(next_item, next_ts, _)| next_item != item || next_ts != ts);
        // Snapshots restate unchanged values: only a change makes a state.
        let changed = match states.last() {
            Some(&(last_item, _, last)) => last_item != item || last != current,
            None => true,
        };
        if last_of_moment && changed {
            states.push((item, ts, current));
        }
    }
    drop(changes);
    Ok(LoadedProperties {
        features: ItemFeatures::from_states(states),
        rows,
        skipped_rows,
        categories: parents.len(),
    })
}

/// `category_tree.csv`: each category's parent (`None` at a root).
pub fn load_category_tree(path: &Path) -> Result<HashMap<i64, Option<i64>>, DataError> {
    let table = Table::read(path, &TREE_COLUMNS)?;
    let (category, bad) = table.int_column("categoryid")?;
    if let Some(cell) = bad.first() {
        return Err(table.bad_value("categoryid", cell));
    }
    let (parent, bad) = table.int_column("parentid")?;
    if let Some(cell) = bad.first() {
        return Err(table.bad_value("parentid", cell));
    }
    let mut parents = HashMap::with_capacity(category.len());
    for (record, (c, p)) in category.into_iter().zip(parent).enumerate() {
        let Some(c) = c else {
            return Err(table.bad_value(
                "categoryid",
                &BadCell {
                    record,
                    problem: "empty value".into(),
                },
            ));
        };
        if parents.insert(c, p).is_some() {
            return Err(table.bad_value(
                "categoryid",
                &BadCell {
                    record,
                    problem: format!("category `{c}` appears more than once"),
                },
            ));
        }
    }
    Ok(parents)
}

/// The change a row of property `property` with `value` makes, if it is a
/// used property; `Err` says what is wrong with the value.
fn change_of(property: &str, value: &str) -> Result<Option<Change>, String> {
    match property {
        "categoryid" => value
            .trim()
            .parse::<i64>()
            .map(|c| Some(Change::Category(c)))
            .map_err(|_| format!("`{value}` is not a category id (an integer)")),
        "available" => match value.trim() {
            "0" => Ok(Some(Change::Available(false))),
            "1" => Ok(Some(Change::Available(true))),
            other => Err(format!("`{other}` is not 0 or 1")),
        },
        _ => Ok(None),
    }
}

fn read_properties(path: &Path, bad_rows: BadRows) -> Result<Read, DataError> {
    match Format::of_file(path)? {
        Format::Csv => read_csv(path, bad_rows),
        Format::Parquet => read_parquet(path, bad_rows),
    }
}

/// A bad row: under [`BadRows::Error`] the error, else counted.
fn bad_row(
    read: &mut Read,
    bad_rows: BadRows,
    error: impl FnOnce() -> DataError,
) -> Result<(), DataError> {
    match bad_rows {
        BadRows::Error => Err(error()),
        BadRows::Skip => {
            read.skipped += 1;
            Ok(())
        }
    }
}

/// Stream a CSV properties file: one line at a time, the line's fields split
/// in place (double-quoted fields may hold commas and `""`).
fn read_csv(path: &Path, bad_rows: BadRows) -> Result<Read, DataError> {
    let malformed = |detail: String| DataError::Malformed {
        path: path.to_path_buf(),
        format: "CSV",
        detail,
    };
    let file = File::open(path).map_err(|e| malformed(e.to_string()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    if reader
        .read_until(b'\n', &mut line)
        .map_err(|e| malformed(e.to_string()))?
        == 0
    {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    split_fields(&line, &mut fields).map_err(|e| malformed(format!("line 1: {e}")))?;
    let header: Vec<String> = fields.iter().map(|f| f.trim().to_string()).collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| DataError::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_string(),
                found: header.join(", "),
            })
    };
    let [ts_at, item_at, property_at, value_at] = [
        column("timestamp")?,
        column("itemid")?,
        column("property")?,
        column("value")?,
    ];
    let mut read = Read::default();
    let mut number = 1usize;
    loop {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .map_err(|e| malformed(format!("after line {number}: {e}")))?
            == 0
        {
            break;
        }
        number += 1;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        read.rows += 1;
        let bad = |column: &str, problem: String| DataError::BadValue {
            path: path.to_path_buf(),
            location: format!("line {number}"),
            column: column.to_string(),
            problem,
        };
        if let Err(e) = split_fields(&line, &mut fields) {
            bad_row(&mut read, bad_rows, || {
                malformed(format!("line {number}: {e}"))
            })?;
            continue;
        }
        let field = |at: usize| fields.get(at).map(|f| f.trim()).unwrap_or("");
        let int = |name: &str, at: usize| -> Result<i64, DataError> {
            match field(at) {
                "" => Err(bad(name, "empty value".into())),
                text => text
                    .parse::<i64>()
                    .map_err(|_| bad(name, format!("`{text}` is not an integer"))),
            }
        };
        let parsed = int("timestamp", ts_at).and_then(|ts| {
            if ts < 0 {
                return Err(bad(
                    "timestamp",
                    format!("`{ts}` is negative; expected milliseconds since 1970-01-01"),
                ));
            }
            let item = int("itemid", item_at)?;
            let change = change_of(field(property_at), field(value_at))
                .map_err(|problem| bad("value", problem))?;
            Ok(change.map(|c| (item, ts, c)))
        });
        match parsed {
            Ok(Some(change)) => read.changes.push(change),
            Ok(None) => {}
            Err(e) => bad_row(&mut read, bad_rows, || e)?,
        }
    }
    if read.rows == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(read)
}

/// Split one CSV line into `fields` (cleared first). Quoted fields may hold
/// commas and doubled quotes; a line break inside quotes is not supported.
fn split_fields(line: &[u8], fields: &mut Vec<String>) -> Result<(), String> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| "not valid UTF-8".to_string())?;
    fields.clear();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(())
}

/// A Parquet properties file, read whole (its four columns).
fn read_parquet(path: &Path, bad_rows: BadRows) -> Result<Read, DataError> {
    let table = Table::read_typed(path, &["timestamp", "itemid"], &["property", "value"])?;
    let (timestamp, bad_ts) = table.int_column("timestamp")?;
    let (item, bad_item) = table.int_column("itemid")?;
    let property = table.text_column("property")?;
    let value = table.text_column("value")?;
    let mut problems: Vec<(&str, BadCell)> = bad_ts
        .into_iter()
        .map(|c| ("timestamp", c))
        .chain(bad_item.into_iter().map(|c| ("itemid", c)))
        .collect();
    let mut changes = Vec::new();
    for record in 0..table.height() {
        let (Some(ts), Some(id)) = (timestamp[record], item[record]) else {
            let column = if timestamp[record].is_none() {
                "timestamp"
            } else {
                "itemid"
            };
            problems.push((
                column,
                BadCell {
                    record,
                    problem: "empty value".into(),
                },
            ));
            continue;
        };
        if ts < 0 {
            problems.push((
                "timestamp",
                BadCell {
                    record,
                    problem: format!("`{ts}` is negative; expected milliseconds since 1970-01-01"),
                },
            ));
            continue;
        }
        match change_of(
            property.get(record).unwrap_or(""),
            value.get(record).unwrap_or(""),
        ) {
            Ok(Some(c)) => changes.push((id, ts, c)),
            Ok(None) => {}
            Err(problem) => problems.push(("value", BadCell { record, problem })),
        }
    }
    problems.sort_by_key(|(_, c)| c.record);
    problems.dedup_by_key(|(_, c)| c.record);
    if let (BadRows::Error, Some((column, cell))) = (bad_rows, problems.first()) {
        return Err(table.bad_value(column, cell));
    }
    Ok(Read {
        changes,
        rows: table.height(),
        skipped: problems.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn values_are_read_as_of_a_time_with_the_tree_giving_parents() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "item_properties_part1.csv",
            &format!(
                "timestamp,itemid,property,value\n\
                 {d1},10,categoryid,5\n{d1},10,available,1\n{d1},10,790,n552.000\n\
                 {d3},10,categoryid,6\n{d2},11,888,\"a, b \"\"quoted\"\"\"\n",
                d1 = DAY,
                d2 = 2 * DAY,
                d3 = 3 * DAY
            ),
        );
        let b = write(
            dir.path(),
            "item_properties_part2.csv",
            &format!("timestamp,itemid,property,value\r\n{d2},10,available,0\r\n{d2},11,categoryid,6\r\n", d2 = 2 * DAY),
        );
        let tree = write(
            dir.path(),
            "category_tree.csv",
            "categoryid,parentid\n5,1\n6,\n1,\n",
        );
        let loaded = load_item_properties(&[a, b], Some(&tree), BadRows::Error).unwrap();
        assert_eq!(
            (loaded.rows, loaded.skipped_rows, loaded.categories),
            (7, 0, 3)
        );
        let f = &loaded.features;
        assert_eq!(f.len(), 2);
        // Nothing known before the first snapshot.
        assert_eq!(f.as_of(10, DAY), ItemInfo::default());
        let info = |category, parent, available| ItemInfo {
            category,
            parent,
            available,
        };
        assert_eq!(f.as_of(10, DAY + 1), info(Some(5), Some(1), Some(true)));
        // Availability changed on day 2 (the other file), the category on day 3.
        assert_eq!(
            f.as_of(10, 2 * DAY + 1),
            info(Some(5), Some(1), Some(false))
        );
        assert_eq!(f.as_of(10, 3 * DAY + 1), info(Some(6), None, Some(false)));
        // A value set exactly at the cutoff is not yet in force.
        assert_eq!(f.as_of(10, 3 * DAY), info(Some(5), Some(1), Some(false)));
        assert_eq!(f.as_of(11, 10 * DAY), info(Some(6), None, None));
        assert_eq!(f.as_of(12, 10 * DAY), ItemInfo::default());
    }

    #[test]
    fn bad_rows_name_the_file_line_and_column_or_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "props.csv",
            "timestamp,itemid,property,value\n1,10,categoryid,5\nx,10,888,1\n2,,888,1\n3,10,available,yes\n4,10,categoryid,\"7\n",
        );
        let err = load_item_properties(std::slice::from_ref(&path), None, BadRows::Error)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("props.csv: line 3, column `timestamp`: `x` is not an integer"),
            "{err}"
        );
        let loaded = load_item_properties(&[path], None, BadRows::Skip).unwrap();
        assert_eq!((loaded.rows, loaded.skipped_rows), (5, 4));
        assert_eq!(loaded.features.as_of(10, 10).category, Some(5));

        let missing = write(
            dir.path(),
            "no_value.csv",
            "timestamp,itemid,property\n1,2,3\n",
        );
        let err = load_item_properties(&[missing], None, BadRows::Error)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing column `value`"), "{err}");
        let err = load_item_properties(&[dir.path().join("absent.csv")], None, BadRows::Error)
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent.csv: no such file"), "{err}");
    }

    #[test]
    fn a_category_listed_twice_in_the_tree_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tree = write(dir.path(), "tree.csv", "categoryid,parentid\n5,1\n5,2\n");
        let err = load_category_tree(&tree).unwrap_err().to_string();
        assert!(
            err.contains("line 3, column `categoryid`: category `5` appears more than once"),
            "{err}"
        );
    }
}
