//! One loaded bundle, shaped for answering requests in microseconds.
//!
//! Everything a request needs is either precomputed in the bundle (personal
//! lists, the popular ranking) or computed once and cached here (an item's
//! nearest neighbours). An [`Engine`] is immutable once built: a reload builds
//! a new one beside it and swaps the pointer, so requests never see a half
//! loaded model.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::store::ServiceEvent;
use crate::bundle::Bundle;
use crate::data::EventKind;
use crate::models::{Recommender, Scored};

/// Neighbours cached per item: enough for the online list of any page size
/// the blend interleaves; `/similar` with a larger k is computed directly.
const CACHED_NEIGHBOURS: usize = 30;

/// Items `events` show the shopper carted or bought: not worth recommending again.
pub fn carted(events: &[ServiceEvent]) -> Vec<i64> {
    let mut items: Vec<i64> = events
        .iter()
        .filter(|e| e.kind != EventKind::View)
        .map(|e| e.item_id)
        .collect();
    items.sort_unstable();
    items.dedup();
    items
}

/// A bundle ready to serve.
pub struct Engine {
    /// The bundle's run id.
    pub version: String,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// The model that ranked the personal lists, if the bundle has them.
    pub offline_model: Option<String>,
    /// Unix time of training.
    pub created_unix: f64,
    /// Unix time of loading.
    pub loaded_unix: f64,
    /// Seconds loading took.
    pub load_seconds: f64,
    bundle: Bundle,
    neighbours: Vec<OnceLock<Box<[Scored]>>>,
    popular: Vec<(i64, f32)>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("version", &self.version)
            .field("path", &self.path)
            .finish()
    }
}

impl Engine {
    /// Load the bundle in `dir` and index it; `popular_len` popular items are
    /// kept for filling answers (the largest k a client may ask for).
    pub fn load(dir: &Path, popular_len: usize) -> Result<Engine> {
        let start = Instant::now();
        let bundle = Bundle::load(dir)?;
        let mut engine = Engine::from_bundle(bundle, dir, popular_len)?;
        engine.load_seconds = start.elapsed().as_secs_f64();
        Ok(engine)
    }

    /// Index an already loaded `bundle` (read from `dir`).
    pub fn from_bundle(bundle: Bundle, dir: &Path, popular_len: usize) -> Result<Engine> {
        let start = Instant::now();
        let created_unix = chrono::DateTime::parse_from_rfc3339(&bundle.manifest.created_at)
            .map(|t| t.timestamp_millis() as f64 / 1000.0)
            .with_context(|| format!("reading created_at of bundle {}", dir.display()))?;
        let popular = bundle
            .popular
            .as_ref()
            .map(|p| {
                p.recommend(None, popular_len)
                    .into_iter()
                    .map(|(item, score)| (bundle.items.raw(item), score))
                    .collect()
            })
            .unwrap_or_default();
        let neighbours = match &bundle.als {
            Some(_) => (0..bundle.items.len()).map(|_| OnceLock::new()).collect(),
            None => Vec::new(),
        };
        Ok(Engine {
            version: bundle.manifest.run_id.clone(),
            path: dir.to_path_buf(),
            offline_model: bundle.offline.as_ref().map(|o| o.model.clone()),
            created_unix,
            loaded_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            load_seconds: start.elapsed().as_secs_f64(),
            bundle,
            neighbours,
            popular,
        })
    }

    /// The popular ranking, best first, raw ids.
    pub fn popular(&self) -> &[(i64, f32)] {
        &self.popular
    }

    /// Whether the bundle's training data has `user_id`.
    pub fn knows_user(&self, user_id: i64) -> bool {
        self.bundle.users.get(user_id).is_some()
    }

    /// The first `k` items of `user_id`'s precomputed list (empty if none).
    pub fn offline(&self, user_id: i64, k: usize) -> Vec<(i64, f32)> {
        let (Some(user), Some(lists)) = (self.bundle.users.get(user_id), &self.bundle.offline)
        else {
            return Vec::new();
        };
        lists
            .get(user)
            .map(|list| {
                list.take(k)
                    .map(|(item, score)| (self.bundle.items.raw(item), score))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The online list from `events` (newest first): the latest distinct items
    /// the shopper viewed but has not carted or bought (`seeds` of them, score
    /// 1), then their nearest neighbours taking turns, up to `k`.
    ///
    /// The viewed items themselves lead because on RetailRocket a shopper's own
    /// recent items predict the next add-to-cart better than anything similar
    /// (the `history` model's evaluation shows it).
    pub fn online(&self, events: &[ServiceEvent], seeds: usize, k: usize) -> Vec<(i64, f32)> {
        let done: HashSet<i64> = carted(events).into_iter().collect();
        let mut out: Vec<(i64, f32)> = Vec::with_capacity(k);
        for event in events {
            if out.len() == seeds.min(k) {
                break;
            }
            if !done.contains(&event.item_id) && !out.iter().any(|o| o.0 == event.item_id) {
                out.push((event.item_id, 1.0));
            }
        }
        let lists: Vec<&[Scored]> = out
            .iter()
            .filter_map(|&(raw, _)| self.bundle.items.get(raw))
            .filter_map(|item| self.cached_neighbours(item))
            .collect();
        let longest = lists.iter().map(|l| l.len()).max().unwrap_or(0);
        'fill: for rank in 0..longest {
            for list in &lists {
                if out.len() == k {
                    break 'fill;
                }
                if let Some(&(item, score)) = list.get(rank) {
                    let raw = self.bundle.items.raw(item);
                    if !done.contains(&raw) && !out.iter().any(|o| o.0 == raw) {
                        out.push((raw, score));
                    }
                }
            }
        }
        out
    }

    /// The `k` items most similar to `item_id`, or `None` if the bundle cannot
    /// tell (no ALS model, or an item it has never seen).
    pub fn similar(&self, item_id: i64, k: usize) -> Option<Vec<(i64, f32)>> {
        let item = self.bundle.items.get(item_id)?;
        let raw = |list: &[Scored]| -> Vec<(i64, f32)> {
            list.iter()
                .take(k)
                .map(|&(i, s)| (self.bundle.items.raw(i), s))
                .collect()
        };
        if k <= CACHED_NEIGHBOURS {
            return self.cached_neighbours(item).map(raw);
        }
        let als = self.bundle.als.as_ref()?;
        Some(raw(&als.similar_items(item, k)))
    }

    /// Whether similar items can be served (the bundle has ALS factors).
    pub fn has_similar(&self) -> bool {
        self.bundle.als.is_some()
    }

    fn cached_neighbours(&self, item: u32) -> Option<&[Scored]> {
        let als = self.bundle.als.as_ref()?;
        let slot = self.neighbours.get(item as usize)?;
        Some(slot.get_or_init(|| {
            als.similar_items(item, CACHED_NEIGHBOURS)
                .into_boxed_slice()
        }))
    }

    /// Fill the neighbour cache for the `n` most popular items on a background
    /// thread (one matrix product per batch instead of one per request); stops
    /// early if the engine is dropped by a reload.
    pub fn warm(self: &Arc<Engine>, n: usize) {
        let weak: Weak<Engine> = Arc::downgrade(self);
        let items: Vec<u32> = self
            .bundle
            .popular
            .as_ref()
            .map(|p| p.ranked.iter().take(n).map(|r| r.0).collect())
            .unwrap_or_default();
        if items.is_empty() || !self.has_similar() {
            return;
        }
        std::thread::spawn(move || {
            for batch in items.chunks(512) {
                let Some(engine) = weak.upgrade() else {
                    return;
                };
                let Some(als) = &engine.bundle.als else {
                    return;
                };
                let todo: Vec<u32> = batch
                    .iter()
                    .copied()
                    .filter(|&i| engine.neighbours[i as usize].get().is_none())
                    .collect();
                let lists = als.similar_items_batch(&todo, CACHED_NEIGHBOURS);
                for (item, list) in todo.into_iter().zip(lists) {
                    // A request may have filled it meanwhile; either value is the same.
                    let _ = engine.neighbours[item as usize].set(list.into_boxed_slice());
                }
            }
        });
    }
}
