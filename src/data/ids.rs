//! Raw shop ids ↔ dense indices.
//!
//! RetailRocket ids are sparse 64-bit numbers; matrices and factor tables want
//! `0..n`. An [`IdMap`] assigns dense indices in first-seen order and maps both ways.

use std::collections::HashMap;

/// A two-way map between raw ids (`visitorid`, `itemid`) and dense `u32` indices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdMap {
    raw: Vec<i64>,
    index: HashMap<i64, u32>,
}

impl IdMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// A map over `raw` ids in the given order; duplicates keep their first index.
    pub fn from_raw(raw: impl IntoIterator<Item = i64>) -> Self {
        let mut map = IdMap::new();
        for id in raw {
            map.insert(id);
        }
        map
    }

    /// The dense index of `raw`, assigning the next one if it is new.
    pub fn insert(&mut self, raw: i64) -> u32 {
        let next = self.raw.len() as u32;
        *self.index.entry(raw).or_insert_with(|| {
            self.raw.push(raw);
            next
        })
    }

    /// The dense index of `raw`, if known.
    pub fn get(&self, raw: i64) -> Option<u32> {
        self.index.get(&raw).copied()
    }

    /// The raw id at dense index `idx`. Panics if out of range.
    pub fn raw(&self, idx: u32) -> i64 {
        self.raw[idx as usize]
    }

    /// All raw ids, in dense-index order.
    pub fn raw_ids(&self) -> &[i64] {
        &self.raw
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// True when no id is known.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways_in_first_seen_order() {
        let map = IdMap::from_raw([900, 5, 900, 77]);
        assert_eq!(map.len(), 3);
        assert_eq!(map.get(900), Some(0));
        assert_eq!(map.get(5), Some(1));
        assert_eq!(map.get(77), Some(2));
        assert_eq!(map.get(6), None);
        assert_eq!(map.raw(2), 77);
        assert_eq!(map.raw_ids(), &[900, 5, 77]);
    }
}
