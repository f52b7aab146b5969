//! Optional item features: category, parent category and availability.
//!
//! The file has the columns `item_id, category_id, parent_id, available`. Only
//! `item_id` must be filled; an empty category, parent or availability means
//! "unknown" and stays `None` rather than becoming a misleading 0.

use std::collections::HashMap;
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

/// Item features by raw item id.
#[derive(Debug, Clone, Default)]
pub struct ItemFeatures {
    /// Features keyed by raw `item_id`.
    pub by_item: HashMap<i64, ItemInfo>,
}

impl ItemFeatures {
    /// What is known about each dense item of `items` (unknown items get
    /// [`ItemInfo::default`], all `None`).
    pub fn dense(&self, items: &IdMap) -> Vec<ItemInfo> {
        items
            .raw_ids()
            .iter()
            .map(|raw| self.by_item.get(raw).copied().unwrap_or_default())
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
    let mut by_item = HashMap::with_capacity(item.len());
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
        if by_item.insert(id, info).is_some() {
            return Err(table.bad_value(
                "item_id",
                &super::table::BadCell {
                    record,
                    problem: format!("item `{id}` appears more than once"),
                },
            ));
        }
    }
    Ok(ItemFeatures { by_item })
}

#[cfg(test)]
mod tests {
    use super::*;

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
