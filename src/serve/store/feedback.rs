//! What the service showed each shopper, kept in this process for attribution.
//!
//! When a shopper carts or buys an item the service recommended to them
//! within the attribution window, that event is credited to the answer's
//! variant and to the source that proposed the item — once per item and event
//! kind, however often the item was shown. Memory is bounded like the event
//! store's: at most `items_per_user` remembered items per shopper (the oldest
//! go first, 24 bytes each) and the same LRU bound on shoppers.
//!
//! Experiment tallies (answers, items shown, attributed events, distinct and
//! converted shoppers per variant) are kept here too; the distinct shoppers
//! are exact sets, about 40 bytes per shopper and variant.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use super::Attributed;
use crate::data::EventKind;
use crate::experiment::Tally;

const SHARDS: usize = 16;

/// One remembered item: 24 bytes (variant and source are indexes into the
/// store's small tables of names).
#[derive(Debug, Clone, Copy)]
struct ShownItem {
    item_id: i64,
    /// When it was last shown, ms.
    at_ms: i64,
    variant: u8,
    source: u8,
    /// Event kinds already attributed (bit per [`EventKind`] index).
    attributed: u8,
}

/// Names of variants or sources, each stored once and referred to by index.
#[derive(Debug, Default)]
struct Names<T>(std::sync::RwLock<Vec<T>>);

impl<T: Clone + PartialEq> Names<T> {
    /// The index of `name`, added if new (at most 256 names; later ones share the last).
    fn index(&self, name: &T) -> u8 {
        if let Some(i) = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .position(|n| n == name)
        {
            return i as u8;
        }
        let mut names = self.0.write().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = names.iter().position(|n| n == name) {
            return i as u8;
        }
        if names.len() < 256 {
            names.push(name.clone());
        }
        (names.len() - 1) as u8
    }

    fn get(&self, i: u8) -> T {
        self.0.read().unwrap_or_else(|e| e.into_inner())[i as usize].clone()
    }
}

/// Counts of one variant, with the shopper sets behind the distinct counts.
#[derive(Debug, Default)]
struct TallySets {
    tally: Tally,
    shoppers: HashSet<i64>,
    converted: HashSet<i64>,
}

/// Shown items per shopper and experiment tallies, in memory.
#[derive(Debug)]
pub struct MemoryFeedback {
    shards: Vec<Mutex<LruCache<i64, Vec<ShownItem>>>>,
    items_per_user: usize,
    variants: Names<Arc<str>>,
    sources: Names<&'static str>,
    /// Per (experiment, variant): a handful of entries, scanned without
    /// allocating a key per answer.
    tallies: Mutex<Vec<((String, String), TallySets)>>,
}

/// The entry of (`experiment`, `variant`) in `tallies`, added if new.
fn entry<'a>(
    tallies: &'a mut Vec<((String, String), TallySets)>,
    experiment: &str,
    variant: &str,
) -> &'a mut TallySets {
    let i = match tallies
        .iter()
        .position(|((e, v), _)| e == experiment && v == variant)
    {
        Some(i) => i,
        None => {
            let key = (experiment.to_string(), variant.to_string());
            tallies.push((key, TallySets::default()));
            tallies.len() - 1
        }
    };
    &mut tallies[i].1
}

impl MemoryFeedback {
    /// Room for `items_per_user` items of each of at most `max_users` shoppers.
    pub fn new(max_users: usize, items_per_user: usize) -> MemoryFeedback {
        let per_shard = max_users.div_ceil(SHARDS).max(1);
        let cap = NonZeroUsize::new(per_shard).expect("at least one user per shard");
        MemoryFeedback {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(cap)))
                .collect(),
            items_per_user: items_per_user.max(1),
            variants: Names::default(),
            sources: Names::default(),
            tallies: Mutex::new(Vec::new()),
        }
    }

    fn shard(&self, user: i64) -> &Mutex<LruCache<i64, Vec<ShownItem>>> {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(user);
        &self.shards[(hash as usize) % SHARDS]
    }

    /// Remember that `items` (id, source) were shown to `user` at `at_ms` in `variant`.
    pub fn remember(
        &self,
        user: i64,
        variant: &Arc<str>,
        items: &[(i64, &'static str)],
        at_ms: i64,
        window_ms: i64,
    ) {
        let variant = self.variants.index(variant);
        // An answer has few distinct sources: look each up once (the table
        // is shared, and every lookup touches its lock).
        let mut looked_up: [(&str, u8); 4] = [("", 0); 4];
        let mut n_looked_up = 0;
        let mut source_index = |source: &'static str| {
            if let Some(&(_, i)) = looked_up[..n_looked_up].iter().find(|(s, _)| *s == source) {
                return i;
            }
            let i = self.sources.index(&source);
            if n_looked_up < looked_up.len() {
                looked_up[n_looked_up] = (source, i);
                n_looked_up += 1;
            }
            i
        };
        let items: Vec<(i64, u8)> = items
            .iter()
            .map(|&(item, source)| (item, source_index(source)))
            .collect();
        let mut shard = self.shard(user).lock().unwrap_or_else(|e| e.into_inner());
        let shown = shard.get_or_insert_mut(user, || Vec::with_capacity(items.len()));
        shown.retain(|s| at_ms - s.at_ms <= window_ms);
        for (item_id, source) in items {
            match shown.iter_mut().find(|s| s.item_id == item_id) {
                Some(s) => {
                    s.at_ms = at_ms;
                    s.variant = variant;
                    s.source = source;
                }
                None => shown.push(ShownItem {
                    item_id,
                    at_ms,
                    variant,
                    source,
                    attributed: 0,
                }),
            }
        }
        if shown.len() > self.items_per_user {
            // Oldest first out; the order among items of one answer is kept.
            shown.sort_by_key(|s| std::cmp::Reverse(s.at_ms));
            shown.truncate(self.items_per_user);
        }
    }

    /// The credit for `user`'s `kind` event on `item_id` at `at_ms`, if the
    /// item was shown to them within the window and this kind of event on it
    /// has not been credited yet.
    pub fn attribute(
        &self,
        user: i64,
        item_id: i64,
        kind: EventKind,
        at_ms: i64,
        window_ms: i64,
    ) -> Option<Attributed> {
        let mut shard = self.shard(user).lock().unwrap_or_else(|e| e.into_inner());
        let shown = shard.get_mut(&user)?;
        let s = shown.iter_mut().find(|s| s.item_id == item_id)?;
        let bit = 1u8 << (kind as u8);
        let age = at_ms - s.at_ms;
        if !(0..=window_ms).contains(&age) || s.attributed & bit != 0 {
            return None;
        }
        s.attributed |= bit;
        let (variant, source) = (s.variant, s.source);
        drop(shard);
        Some(Attributed {
            variant: self.variants.get(variant).to_string(),
            source: self.sources.get(source).to_string(),
        })
    }

    /// Count one answer of `items` items to `user` in `variant` of `experiment`.
    pub fn tally_answer(&self, experiment: &str, variant: &str, user: i64, items: u64) {
        let mut tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        let t = entry(&mut tallies, experiment, variant);
        t.tally.answers += 1;
        t.tally.items_shown += items;
        if t.shoppers.insert(user) {
            t.tally.shoppers += 1;
        }
    }

    /// Count an attributed `kind` event of `user` in `variant` of `experiment`.
    pub fn tally_attributed(&self, experiment: &str, variant: &str, user: i64, kind: EventKind) {
        let mut tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        let t = entry(&mut tallies, experiment, variant);
        match kind {
            EventKind::AddToCart => {
                t.tally.attributed_add_to_carts += 1;
                if t.converted.insert(user) {
                    t.tally.converted_shoppers += 1;
                }
            }
            EventKind::Transaction => t.tally.attributed_transactions += 1,
            EventKind::View => {}
        }
    }

    /// The tallies of `variants` in `experiment`, in order.
    pub fn tallies(&self, experiment: &str, variants: &[&str]) -> Vec<Tally> {
        let tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        variants
            .iter()
            .map(|v| {
                tallies
                    .iter()
                    .find(|((e, name), _)| e == experiment && name == v)
                    .map(|(_, t)| t.tally)
                    .unwrap_or_default()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: i64 = 30 * 60_000;

    #[test]
    fn shown_then_carted_is_credited_once_per_kind() {
        let f = MemoryFeedback::new(100, 50);
        let a: Arc<str> = "a".into();
        f.remember(7, &a, &[(1, "als"), (2, "history")], 1_000, WINDOW);
        let got = f
            .attribute(7, 2, EventKind::AddToCart, 2_000, WINDOW)
            .unwrap();
        assert_eq!(
            (got.variant.as_str(), got.source.as_str()),
            ("a", "history")
        );
        // The second cart of the same item is not credited again; buying it is.
        assert!(f
            .attribute(7, 2, EventKind::AddToCart, 3_000, WINDOW)
            .is_none());
        assert!(f
            .attribute(7, 2, EventKind::Transaction, 3_000, WINDOW)
            .is_some());
        // Not shown, or shown to someone else: nothing.
        assert!(f
            .attribute(7, 3, EventKind::AddToCart, 3_000, WINDOW)
            .is_none());
        assert!(f
            .attribute(8, 1, EventKind::AddToCart, 3_000, WINDOW)
            .is_none());
        // Outside the window: nothing.
        assert!(f
            .attribute(7, 1, EventKind::AddToCart, 1_000 + WINDOW + 1, WINDOW)
            .is_none());
    }

    #[test]
    fn memory_is_bounded_per_user_newest_kept() {
        let f = MemoryFeedback::new(100, 3);
        let a: Arc<str> = "a".into();
        f.remember(1, &a, &[(1, "als"), (2, "als")], 0, WINDOW);
        f.remember(1, &a, &[(3, "als"), (4, "als")], 10, WINDOW);
        // The oldest answer's lower-ranked item went first.
        assert!(f
            .attribute(1, 2, EventKind::AddToCart, 20, WINDOW)
            .is_none());
        assert!(f
            .attribute(1, 1, EventKind::AddToCart, 20, WINDOW)
            .is_some());
        assert!(f
            .attribute(1, 4, EventKind::AddToCart, 20, WINDOW)
            .is_some());
        assert_eq!(std::mem::size_of::<ShownItem>(), 24);
    }

    #[test]
    fn tallies_count_distinct_shoppers() {
        let f = MemoryFeedback::new(100, 3);
        f.tally_answer("e", "a", 1, 10);
        f.tally_answer("e", "a", 1, 10);
        f.tally_answer("e", "a", 2, 5);
        f.tally_attributed("e", "a", 2, EventKind::AddToCart);
        f.tally_attributed("e", "a", 2, EventKind::AddToCart);
        let t = f.tallies("e", &["a", "b"]);
        assert_eq!(t[0].shoppers, 2);
        assert_eq!(t[0].answers, 3);
        assert_eq!(t[0].items_shown, 25);
        assert_eq!(t[0].attributed_add_to_carts, 2);
        assert_eq!(t[0].converted_shoppers, 1);
        assert_eq!(t[1], Tally::default());
    }
}
