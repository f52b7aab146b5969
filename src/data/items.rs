//! Optional item features: category, parent category and availability.
//!
//! The file has the columns `item_id, category_id, parent_id, available`. Only
//! `item_id` must be filled; an empty category, parent or availability means
//! "unknown" and stays `None` rather than becoming a misleading 0.

use std::collections::HashSet;
use std::path::Path;

use super::error::DataError;
use super::ids::IdMap;
use super::table::Table;

/// What is known about one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ItemInfo {
    /// Category id, if known.
    pub category: Option<i64>,
    /// Parent category id, if known.
    pub parent: Option<i64>,
    /// Whether the item is available, if known.
    pub available: Option<bool>,
}

/// Item features by raw item id, as they stood over time.
///
/// A flat item-features file knows one state per item, in force from the
/// beginning; the raw RetailRocket properties ([`super::properties`]) know
/// every change with its time. Training reads the values in force at its
/// cutoff and a label window those at its start: a value that changed later
/// would tell the model about the future.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemFeatures {
    /// Raw item ids, ascending.
    ids: Vec<i64>,
    /// Item `ids[i]`'s states are `states[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<usize>,
    /// `(from_ms, info)`, oldest first per item: `info` is in force from `from_ms` on.
    states: Vec<(i64, ItemInfo)>,
}

impl ItemFeatures {
    /// Features from one state per item, in force from the beginning.
    pub fn constant(by_item: impl IntoIterator<Item = (i64, ItemInfo)>) -> ItemFeatures {
        ItemFeatures::from_states(
            by_item
                .into_iter()
                .map(|(id, info)| (id, i64::MIN, info))
                .collect(),
        )
    }

    /// Features from `(item, from_ms, info)` states in any order; of two states
    /// of one item at one time the later in `states` wins.
    pub fn from_states(mut states: Vec<(i64, i64, ItemInfo)>) -> ItemFeatures {
        // Stable: equal (item, time) keep their order, and the last one wins below.
        states.sort_by_key(|&(id, from, _)| (id, from));
        let mut features = ItemFeatures {
            offsets: vec![0],
            ..ItemFeatures::default()
        };
        for (id, from, info) in states {
            let new_item = features.ids.last() != Some(&id);
            if new_item {
                features.ids.push(id);
                features.offsets.push(features.states.len());
            }
            match features.states.last_mut() {
                Some(last) if !new_item && last.0 == from => last.1 = info,
                _ => features.states.push((from, info)),
            }
            *features.offsets.last_mut().expect("an end per item") = features.states.len();
        }
        features
    }

    /// The raw ids of the items described, ascending.
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    /// Items with at least one state.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no item is described.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// What was known about raw item `id` just before `as_of_ms` (all `None`
    /// for an item with no state before then).
    pub fn as_of(&self, id: i64, as_of_ms: i64) -> ItemInfo {
        let Ok(i) = self.ids.binary_search(&id) else {
            return ItemInfo::default();
        };
        let states = &self.states[self.offsets[i]..self.offsets[i + 1]];
        let before = states.partition_point(|&(from, _)| from < as_of_ms);
        before
            .checked_sub(1)
            .map_or_else(ItemInfo::default, |s| states[s].1)
    }

    /// What was known just before `as_of_ms` about each dense item of `items`.
    pub fn dense(&self, items: &IdMap, as_of_ms: i64) -> Vec<ItemInfo> {
        items
            .raw_ids()
            .iter()
            .map(|&raw| self.as_of(raw, as_of_ms))
            .collect()
    }
}

/// The columns an item-features file must have.
pub const ITEM_COLUMNS: [&str; 4] = ["item_id", "category_id", "parent_id", "available"];

/// Read and validate an item-features file (CSV or Parquet, by extension).
pub fn load_item_features(path: &Path) -> Result<ItemFeatures, DataError> {
    let table = Table::read(path, &ITEM_COLUMNS)?;
    let check = |name: &str| -> Result<Vec<Option<i64>>, DataError> {
        let (values, bad) = table.int_column(name)?;
        match bad.first() {
            Some(cell) => Err(table.bad_value(name, cell)),
            None => Ok(values),
        }
    };
    let item = check("item_id")?;
    let category = check("category_id")?;
    let parent = check("parent_id")?;
    let available = check("available")?;
    let mut by_item = Vec::with_capacity(item.len());
    let mut seen = HashSet::with_capacity(item.len());
    for (record, id) in item.iter().enumerate() {
        let id = id.ok_or_else(|| {
            table.bad_value(
                "item_id",
                &super::table::BadCell {
                    record,
                    problem: "empty value".to_string(),
                },
            )
        })?;
        let available = match available[record] {
            None => None,
            Some(0) => Some(false),
            Some(1) => Some(true),
            Some(other) => {
                return Err(table.bad_value(
                    "available",
                    &super::table::BadCell {
                        record,
                        problem: format!("`{other}` is not 0 or 1"),
                    },
                ))
            }
        };
        let info = ItemInfo {
            category: category[record],
            parent: parent[record],
            available,
        };
        by_item.push((id, info));
        if !seen.insert(id) {
            return Err(table.bad_value(
                "item_id",
                &super::table::BadCell {
                    record,
                    problem: format!("item `{id}` appears more than once"),
                },
            ));
        }
    }
    Ok(ItemFeatures::constant(by_item))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_read_as_of_a_time_and_the_later_of_two_at_one_time_wins() {
        let info = |category: i64| ItemInfo {
            category: Some(category),
            ..ItemInfo::default()
        };
        let f = ItemFeatures::from_states(vec![
            (7, 20, info(3)),
            (5, 10, info(1)),
            (7, 10, info(2)),
            (5, 10, info(4)),
        ]);
        assert_eq!(f.ids(), &[5, 7]);
        assert_eq!(f.as_of(5, 10), ItemInfo::default());
        assert_eq!(f.as_of(5, 11), info(4));
        assert_eq!(f.as_of(7, 15), info(2));
        assert_eq!(f.as_of(7, 21), info(3));
        assert_eq!(f.as_of(6, 100), ItemInfo::default());
        let constant = ItemFeatures::constant([(9, info(8))]);
        assert_eq!(constant.as_of(9, i64::MIN + 1), info(8));
        let mut ids = IdMap::new();
        ids.insert(7);
        ids.insert(9);
        assert_eq!(f.dense(&ids, 15), vec![info(2), ItemInfo::default()]);
    }

    #[test]
    fn a_parquet_file_that_makes_polars_panic_is_an_error_naming_it() {
        // Minimised by `fuzz/` (item_features): a footer whose statistics hold
        // a field of the wrong thrift type, on which polars' reader panics.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("items.parquet");
        std::fs::write(&path, include_bytes!("testdata/thrift_bool_field.parquet")).unwrap();
        let err = load_item_features(&path).unwrap_err().to_string();
        assert!(
            err.contains("items.parquet: not a valid Parquet file")
                && err.contains("polars panicked: thrift bool field"),
            "{err}"
        );
    }

    #[test]
    fn a_parquet_page_declaring_a_negative_count_is_an_error_not_an_abort() {
        // Found by `fuzz/` (item_features): a data page header claiming -11
        // values, for which polars' reader tried to reserve exabytes.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("items.parquet");
        let bytes = include_bytes!("testdata/negative_page_count_items.parquet");
        std::fs::write(&path, bytes).unwrap();
        let err = load_item_features(&path).unwrap_err().to_string();
        assert!(
            err.contains("items.parquet: not a valid Parquet file: row group 0, column `item_id`")
                && err.contains("a data page declares a negative count (-11 values"),
            "{err}"
        );
    }
    #[test]
    fn a_parquet_column_polars_cannot_materialise_is_an_error_not_an_abort() {
        // Found by `fuzz/` (item_features): a file whose column polars reads
        // as Int8 and then panics on turning into a series (this build has
        // no Int8 support), outside the reader.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("items.parquet");
        let bytes = include_bytes!("testdata/int8_column_items.parquet");
        std::fs::write(&path, bytes).unwrap();
        let err = load_item_features(&path).unwrap_err().to_string();
        assert!(
            err.contains("items.parquet: every row, column `")
                && err.contains("its values cannot be read (polars panicked: ")
                && err.contains("Int8"),
            "{err}"
        );
    }

    #[test]
    fn a_parquet_footer_declaring_a_huge_list_is_an_error_not_an_abort() {
        // Found by `fuzz/` (item_features): a footer declaring a list of 591
        // million elements in 1,007 bytes, for which polars' reader reserved
        // tens of gigabytes up front.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("items.parquet");
        let bytes = include_bytes!("testdata/footer_list_too_long.parquet");
        std::fs::write(&path, bytes).unwrap();
        let err = load_item_features(&path).unwrap_err().to_string();
        assert!(
            err.contains("items.parquet: not a valid Parquet file: its footer declares a list of 591777292 elements, more than its 1007 bytes can hold"),
            "{err}"
        );
    }
}
