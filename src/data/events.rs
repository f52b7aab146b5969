//! Shopper events in the RetailRocket format.
//!
//! A file has the columns `timestamp` (ms since the Unix epoch, UTC), `visitorid`,
//! `event` (`view`, `addtocart` or `transaction`), `itemid` and, optionally,
//! `transactionid` (unused here). [`load_events`] validates every row, handles
//! exact duplicates and returns an [`EventLog`] sorted by visitor, then time.
//!
//! Duplicates: RetailRocket logs some events twice (same timestamp, visitor, kind
//! and item). Such exact copies carry no extra signal and would double-count in
//! the interaction matrix, so they are collapsed to one and their count reported.
//! The same event repeated at a different time is kept: coming back is signal.

use std::fmt;
use std::path::Path;

use polars::prelude::Int64Chunked;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::DataError;
use super::table::{BadCell, Table};

/// The kind of a shopper event, ordered along the purchase funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The shopper looked at the item page.
    View = 0,
    /// The shopper added the item to the cart: what recsys predicts.
    #[serde(rename = "addtocart")]
    AddToCart = 1,
    /// The shopper bought the item.
    Transaction = 2,
}

impl EventKind {
    /// Every kind, in funnel order.
    pub const ALL: [EventKind; 3] = [
        EventKind::View,
        EventKind::AddToCart,
        EventKind::Transaction,
    ];

    /// The kind named `name` as it appears in RetailRocket files.
    pub fn parse(name: &str) -> Option<EventKind> {
        match name {
            "view" => Some(EventKind::View),
            "addtocart" => Some(EventKind::AddToCart),
            "transaction" => Some(EventKind::Transaction),
            _ => None,
        }
    }

    /// The kind whose discriminant is `index` (0 view, 1 addtocart, 2 transaction).
    pub fn from_index(index: u8) -> Option<EventKind> {
        EventKind::ALL.get(index as usize).copied()
    }

    /// The name used in files and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::View => "view",
            EventKind::AddToCart => "addtocart",
            EventKind::Transaction => "transaction",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with a row that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BadRows {
    /// Reject the whole file at the first bad row (the default: data problems
    /// should be fixed, not hidden).
    #[default]
    Error,
    /// Drop bad rows and report how many were dropped.
    Skip,
}

/// Events with raw shop ids, column by column, sorted by visitor then time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventLog {
    /// Milliseconds since the Unix epoch, UTC.
    pub timestamp_ms: Vec<i64>,
    /// Raw `visitorid`.
    pub visitor: Vec<i64>,
    /// Raw `itemid`.
    pub item: Vec<i64>,
    /// Event kind.
    pub kind: Vec<EventKind>,
}

impl EventLog {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.timestamp_ms.len()
    }

    /// True when there are no events.
    pub fn is_empty(&self) -> bool {
        self.timestamp_ms.is_empty()
    }

    /// An empty log with room for `n` events.
    pub fn with_capacity(n: usize) -> EventLog {
        EventLog {
            timestamp_ms: Vec::with_capacity(n),
            visitor: Vec::with_capacity(n),
            item: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
        }
    }

    /// Append one event (callers sort with [`EventLog::sort_dedup`] afterwards).
    pub fn push(&mut self, timestamp_ms: i64, visitor: i64, kind: EventKind, item: i64) {
        self.timestamp_ms.push(timestamp_ms);
        self.visitor.push(visitor);
        self.kind.push(kind);
        self.item.push(item);
    }

    /// The events for which `keep(index)` is true, in the same order.
    pub fn filter(&self, keep: impl Fn(usize) -> bool + Sync) -> EventLog {
        let idx: Vec<usize> = (0..self.len())
            .into_par_iter()
            .filter(|&i| keep(i))
            .collect();
        self.take(&idx)
    }

    fn take(&self, idx: &[usize]) -> EventLog {
        EventLog {
            timestamp_ms: idx.par_iter().map(|&i| self.timestamp_ms[i]).collect(),
            visitor: idx.par_iter().map(|&i| self.visitor[i]).collect(),
            item: idx.par_iter().map(|&i| self.item[i]).collect(),
            kind: idx.par_iter().map(|&i| self.kind[i]).collect(),
        }
    }

    /// Sort by (visitor, time, item, kind) and collapse exact duplicates;
    /// returns how many duplicates were removed.
    pub fn sort_dedup(&mut self) -> usize {
        let key = |i: usize| {
            (
                self.visitor[i],
                self.timestamp_ms[i],
                self.item[i],
                self.kind[i],
            )
        };
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.par_sort_unstable_by_key(|&i| key(i));
        let before = order.len();
        order.dedup_by_key(|i| key(*i));
        let removed = before - order.len();
        *self = self.take(&order);
        removed
    }

    /// Earliest and latest timestamp, if any event exists.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let min = self.timestamp_ms.par_iter().min()?;
        let max = self.timestamp_ms.par_iter().max()?;
        Some((*min, *max))
    }

    /// Count of events of each kind, in [`EventKind::ALL`] order.
    pub fn kind_counts(&self) -> [usize; 3] {
        let mut counts = [0; 3];
        for k in &self.kind {
            counts[*k as usize] += 1;
        }
        counts
    }
}

/// An event file after loading: the events plus what was done to get them.
#[derive(Debug, Clone)]
pub struct LoadedEvents {
    /// The usable events, sorted by visitor then time.
    pub log: EventLog,
    /// Rows dropped under [`BadRows::Skip`] (always 0 under [`BadRows::Error`]).
    pub skipped_rows: usize,
    /// The first skipped row's problem, to show the user what kind of rows were dropped.
    pub first_skipped: Option<String>,
    /// Exact duplicates collapsed.
    pub duplicates_removed: usize,
}

/// The columns an event file must have.
pub const EVENT_COLUMNS: [&str; 4] = ["timestamp", "visitorid", "event", "itemid"];

/// Read and validate an event file (CSV or Parquet, by extension).
pub fn load_events(path: &Path, bad_rows: BadRows) -> Result<LoadedEvents, DataError> {
    let table = Table::read_typed(path, &["timestamp", "visitorid", "itemid"], &["event"])?;
    let n = table.height();
    // Per record: the first problem found, as (column, cell).
    let mut problems: Vec<(&'static str, BadCell)> = Vec::new();

    let mut int_col = |name: &'static str| -> Result<Int64Chunked, DataError> {
        let (values, bad) = table.int_chunks(name)?;
        let nulls = values.null_count();
        if nulls > bad.len() {
            // Some cells are empty rather than not integers.
            let mut not_integer = vec![false; n];
            for cell in &bad {
                not_integer[cell.record] = true;
            }
            for (record, v) in values.iter().enumerate() {
                if v.is_none() && !not_integer[record] {
                    problems.push((
                        name,
                        BadCell {
                            record,
                            problem: "empty value".to_string(),
                        },
                    ));
                }
            }
        }
        problems.extend(bad.into_iter().map(|c| (name, c)));
        Ok(values)
    };
    let timestamp = int_col("timestamp")?;
    let visitor = int_col("visitorid")?;
    let item = int_col("itemid")?;
    let event_text = table.text_column("event")?;
    let kinds: Vec<Option<EventKind>> = event_text
        .iter()
        .enumerate()
        .map(|(record, name)| {
            let kind = name.and_then(EventKind::parse);
            if kind.is_none() {
                problems.push((
                    "event",
                    BadCell {
                        record,
                        problem: match name {
                            Some(other) => format!(
                                "unknown event kind `{other}` (expected view, addtocart or transaction)"
                            ),
                            None => "empty value".to_string(),
                        },
                    },
                ));
            }
            kind
        })
        .collect();
    for (record, ts) in timestamp.iter().enumerate() {
        if let Some(ts) = ts {
            if ts < 0 {
                problems.push((
                    "timestamp",
                    BadCell {
                        record,
                        problem: format!(
                            "`{ts}` is negative; expected milliseconds since 1970-01-01"
                        ),
                    },
                ));
            }
        }
    }

    problems.sort_by_key(|(_, cell)| cell.record);
    if bad_rows == BadRows::Error {
        if let Some((column, cell)) = problems.first() {
            return Err(table.bad_value(column, cell));
        }
    }
    let first_skipped = problems
        .first()
        .map(|(column, cell)| table.bad_value(column, cell).to_string());
    let mut is_bad = vec![false; n];
    for (_, cell) in &problems {
        is_bad[cell.record] = true;
    }
    let skipped_rows = is_bad.iter().filter(|b| **b).count();
    let mut log = EventLog::with_capacity(n - skipped_rows);
    let rows = timestamp
        .iter()
        .zip(visitor.iter())
        .zip(item.iter())
        .zip(kinds)
        .zip(is_bad);
    for ((((timestamp, visitor), item), kind), bad) in rows {
        if bad {
            continue;
        }
        // Safe: a record without problems has every value present.
        log.push(
            timestamp.unwrap_or_default(),
            visitor.unwrap_or_default(),
            kind.unwrap_or(EventKind::View),
            item.unwrap_or_default(),
        );
    }
    drop(table);
    if log.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    let duplicates_removed = log.sort_dedup();
    Ok(LoadedEvents {
        log,
        skipped_rows,
        first_skipped,
        duplicates_removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn exact_duplicates_collapse_but_repeats_at_other_times_stay() {
        let (_dir, path) = write(
            "timestamp,visitorid,event,itemid,transactionid\n\
             5,1,view,10,\n5,1,view,10,\n6,1,view,10,\n4,2,addtocart,10,\n3,1,transaction,11,7\n",
        );
        let loaded = load_events(&path, BadRows::Error).unwrap();
        assert_eq!(loaded.duplicates_removed, 1);
        assert_eq!(loaded.log.len(), 4);
        // Sorted by visitor, then time.
        assert_eq!(loaded.log.visitor, vec![1, 1, 1, 2]);
        assert_eq!(loaded.log.timestamp_ms, vec![3, 5, 6, 4]);
        assert_eq!(loaded.log.kind_counts(), [2, 1, 1]);
    }

    #[test]
    fn skip_counts_every_bad_row_and_keeps_the_rest() {
        let (_dir, path) = write(
            "timestamp,visitorid,event,itemid\n1,1,view,10\nx,1,view,10\n2,1,buy,10\n3,,view,10\n-4,1,view,9\n5,2,view,11\n",
        );
        let err = load_events(&path, BadRows::Error).unwrap_err().to_string();
        assert!(
            err.contains("line 3") && err.contains("`timestamp`"),
            "{err}"
        );
        let loaded = load_events(&path, BadRows::Skip).unwrap();
        assert_eq!(loaded.skipped_rows, 4);
        assert_eq!(loaded.log.len(), 2);
        assert!(loaded.first_skipped.unwrap().contains("line 3"));
    }

    #[test]
    fn a_parquet_file_that_makes_polars_panic_is_an_error_naming_it() {
        // Minimised by `fuzz/` (events_parquet): a column chunk that claims to
        // reach past the end of the file, on which polars' reader panics.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.parquet");
        std::fs::write(&path, include_bytes!("testdata/page_past_the_end.parquet")).unwrap();
        let err = load_events(&path, BadRows::Skip).unwrap_err().to_string();
        assert!(
            err.contains("events.parquet: not a valid Parquet file")
                && err.contains("polars panicked: range end index"),
            "{err}"
        );
    }

    #[test]
    fn a_parquet_page_declaring_a_negative_count_is_an_error_not_an_abort() {
        // Minimised by `fuzz/` (events_parquet): a data page header claiming
        // -19 values, which polars' reader took for 2^64 - 19 and reserved
        // memory for, aborting the process.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.parquet");
        std::fs::write(
            &path,
            include_bytes!("testdata/negative_page_count.parquet"),
        )
        .unwrap();
        let err = load_events(&path, BadRows::Skip).unwrap_err().to_string();
        assert!(
            err.contains("events.parquet: not a valid Parquet file: row group 1, column")
                && err.contains("a data page declares a negative count (-19 values"),
            "{err}"
        );
    }

    #[test]
    fn a_parquet_footer_declaring_billions_of_booleans_is_an_error_not_a_hang() {
        // Found by `fuzz/` (events_parquet): a footer whose unknown fields hold
        // lists of hundreds of millions of booleans, which polars' reader
        // skipped one by one without reading a byte (minutes under the fuzzer).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.parquet");
        let bytes = include_bytes!("testdata/footer_list_of_booleans.parquet");
        std::fs::write(&path, bytes).unwrap();
        let err = load_events(&path, BadRows::Skip).unwrap_err().to_string();
        assert!(
            err.contains("events.parquet: not a valid Parquet file: its footer declares a list of 777960946 elements, more than its 963 bytes can hold"),
            "{err}"
        );
    }

    #[test]
    fn all_rows_bad_is_an_empty_file() {
        let (_dir, path) = write("timestamp,visitorid,event,itemid\nx,1,view,10\n");
        assert!(matches!(
            load_events(&path, BadRows::Skip),
            Err(DataError::Empty { .. })
        ));
    }
}
