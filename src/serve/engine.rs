//! One loaded bundle, shaped for answering requests in microseconds.
//!
//! Everything a request needs is either precomputed in the bundle (personal
//! lists, the popular ranking) or indexed at load: an item's nearest
//! neighbours come from an approximate index over the ALS item factors
//! ([`IvfIndex`]), cached per item once asked for. An [`Engine`] is immutable once built: a reload builds
//! a new one beside it and swaps the pointer, so requests never see a half
//! loaded model.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::store::ServiceEvent;
use crate::bundle::Bundle;
use crate::data::EventKind;
use crate::models::ivf::IvfIndex;
use crate::models::{Recommender, Scored};

/// Neighbours cached per item: enough for the online list of any page size
/// the blend interleaves; `/similar` with a larger k asks the index directly.
const CACHED_NEIGHBOURS: usize = 30;

/// Items sampled at load to measure the index against exact search.
const RECALL_SAMPLE: usize = 200;

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
    /// Share of the exact 10 nearest neighbours the similar-items index finds
    /// (sampled at load; 1 when the catalogue is small enough to search exactly).
    pub similar_recall: Option<f64>,
    bundle: Bundle,
    index: Option<IvfIndex>,
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
        let index = bundle
            .als
            .as_ref()
            .map(|als| IvfIndex::build(&als.item_factors, 42));
        let similar_recall = match (&index, &bundle.als) {
            (Some(index), Some(als)) => {
                Some(index.recall_against_exact(&als.item_factors, 10, RECALL_SAMPLE, 7))
            }
            _ => None,
        };
        let neighbours = match &index {
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
            similar_recall,
            bundle,
            index,
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
        Some(raw(&self.index.as_ref()?.similar_to_row(item, k)))
    }

    /// Whether similar items can be served (the bundle has ALS factors).
    pub fn has_similar(&self) -> bool {
        self.index.is_some()
    }

    fn cached_neighbours(&self, item: u32) -> Option<&[Scored]> {
        let index = self.index.as_ref()?;
        let slot = self.neighbours.get(item as usize)?;
        Some(slot.get_or_init(|| {
            index
                .similar_to_row(item, CACHED_NEIGHBOURS)
                .into_boxed_slice()
        }))
    }
}
