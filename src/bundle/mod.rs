//! Model bundles: everything a trained run needs to recommend, in one directory.
//!
//! A bundle is `ARTIFACTS/<run-id>/` holding `manifest.json` (what was trained on
//! what data with which settings), the id maps, the training events (every
//! model scores a shopper live from their history plus what they did since),
//! the items' attributes (for the business rules) and each model's arrays as
//! `.npy`.
//! Run ids start with the UTC training time, so the newest bundle is the one with
//! the greatest name. A bundle is built in a temporary directory and renamed into
//! place, so a crash mid-write leaves no half bundle and never touches older ones.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::data::{EventKind, IdMap, ItemInfo, Protocol, TrainSet};
use crate::models::{Als, Covisit, History, Popular, Recommender};
use crate::npy;
use crate::rank::TwoStage;

/// Bumped when the layout changes incompatibly (2: training events and item
/// attributes for live scoring; no precomputed lists).
pub const FORMAT_VERSION: u32 = 2;
/// The file that makes a directory a bundle, written last.
pub const MANIFEST: &str = "manifest.json";

/// What a bundle says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version, [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The bundle's directory name: UTC time of training plus a data fingerprint.
    pub run_id: String,
    /// RFC 3339 time of training.
    pub created_at: String,
    /// recsys version that trained it.
    pub recsys_version: String,
    /// Start of the test window (training used events before it), UTC ms.
    pub cutoff_ms: i64,
    /// Protocol the training data was prepared under.
    pub protocol: Protocol,
    /// Where the events came from and what they were.
    pub data: DataSummary,
    /// Models in the bundle.
    pub models: Vec<String>,
    /// Per-model training facts (seconds, final loss, …).
    pub training: serde_json::Value,
    /// The resolved configuration.
    pub config: Config,
}

/// Facts about the training data, to tell which data a bundle belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// The event file.
    pub events_path: String,
    /// Hash of all loaded events (before the split), hex.
    pub fingerprint: String,
    /// Events loaded.
    pub events: usize,
    /// Training events.
    pub train_events: usize,
    /// Users known to the models.
    pub users: usize,
    /// Items known to the models.
    pub items: usize,
}

/// A loaded (or about to be saved) bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// What it is.
    pub manifest: Manifest,
    /// Users known to the models.
    pub users: IdMap,
    /// Items known to the models.
    pub items: IdMap,
    /// The training events, by user: every shopper's past, for live scoring.
    pub train: Arc<TrainSet>,
    /// Attributes of every item (dense), for the business rules and features.
    pub item_info: Arc<Vec<ItemInfo>>,
    /// The `popular` model, if trained.
    pub popular: Option<Arc<Popular>>,
    /// The `history` model, if trained.
    pub history: Option<Arc<History>>,
    /// The `als` model, if trained.
    pub als: Option<Arc<Als>>,
    /// The `covisit` model, if trained.
    pub covisit: Option<Arc<Covisit>>,
    /// The `two_stage` model, if trained; it shares the single-stage models above.
    pub two_stage: Option<TwoStage>,
}

impl Bundle {
    /// Every model in the bundle, in registry order.
    pub fn models(&self) -> Vec<&dyn Recommender> {
        let mut out: Vec<&dyn Recommender> = Vec::new();
        if let Some(m) = &self.popular {
            out.push(m.as_ref());
        }
        if let Some(m) = &self.history {
            out.push(m.as_ref());
        }
        if let Some(m) = &self.als {
            out.push(m.as_ref());
        }
        if let Some(m) = &self.covisit {
            out.push(m.as_ref());
        }
        if let Some(m) = &self.two_stage {
            out.push(m);
        }
        out
    }

    /// The model called `name`, if the bundle has it.
    pub fn model(&self, name: &str) -> Option<&dyn Recommender> {
        self.models().into_iter().find(|m| m.name() == name)
    }

    /// Write what every bundle holds — id maps, training events, item
    /// attributes — into `dir` (the models' arrays are the registry's:
    /// [`Bundle::save`] writes everything).
    pub(crate) fn save_shared(&self, dir: &Path) -> Result<()> {
        npy::write(
            &dir.join("users.npy"),
            &[self.users.len()],
            self.users.raw_ids(),
        )?;
        npy::write(
            &dir.join("items.npy"),
            &[self.items.len()],
            self.items.raw_ids(),
        )?;
        save_events(&self.train, dir)?;
        save_item_info(&self.item_info, dir)
    }

    /// Read the manifest and the shared parts of the bundle in `dir`, with no
    /// model yet ([`Bundle::load`] reads everything).
    pub(crate) fn load_shared(dir: &Path) -> Result<Bundle> {
        let manifest_path = dir.join(MANIFEST);
        let text = std::fs::read(&manifest_path).with_context(|| {
            format!(
                "{} is not a model bundle (no {MANIFEST}); run `recsys train` first",
                dir.display()
            )
        })?;
        let manifest: Manifest = serde_json::from_slice(&text)
            .with_context(|| format!("reading {}", manifest_path.display()))?;
        if manifest.format_version != FORMAT_VERSION {
            bail!(
                "bundle {} has format version {}, this recsys reads version {FORMAT_VERSION}; retrain it",
                dir.display(),
                manifest.format_version
            );
        }
        let ids = |name: &str| -> Result<IdMap> {
            Ok(IdMap::from_raw(npy::read::<i64>(&dir.join(name))?.1))
        };
        let users = ids("users.npy")?;
        let items = ids("items.npy")?;
        let train = Arc::new(load_events(dir, &users, &items, manifest.cutoff_ms)?);
        let item_info = Arc::new(load_item_info(dir, items.len())?);
        Ok(Bundle {
            manifest,
            users,
            items,
            train,
            item_info,
            popular: None,
            history: None,
            als: None,
            covisit: None,
            two_stage: None,
        })
    }
}

/// The training events, by user: `events_user_offsets`, `events_items`,
/// `events_timestamps`, `events_kinds`.
fn save_events(train: &TrainSet, dir: &Path) -> Result<()> {
    let offsets: Vec<u64> = train.user_offsets.iter().map(|&o| o as u64).collect();
    npy::write(
        &dir.join("events_user_offsets.npy"),
        &[offsets.len()],
        &offsets,
    )?;
    npy::write(
        &dir.join("events_items.npy"),
        &[train.item.len()],
        &train.item,
    )?;
    npy::write(
        &dir.join("events_timestamps.npy"),
        &[train.timestamp_ms.len()],
        &train.timestamp_ms,
    )?;
    let kinds: Vec<u8> = train.kind.iter().map(|&k| k as u8).collect();
    npy::write(&dir.join("events_kinds.npy"), &[kinds.len()], &kinds)
}

fn load_events(dir: &Path, users: &IdMap, items: &IdMap, cutoff_ms: i64) -> Result<TrainSet> {
    let bad = |what: String| anyhow::anyhow!("bundle {} is inconsistent: {what}", dir.display());
    let offsets: Vec<usize> = npy::read::<u64>(&dir.join("events_user_offsets.npy"))?
        .1
        .into_iter()
        .map(|o| o as usize)
        .collect();
    let kinds = npy::read::<u8>(&dir.join("events_kinds.npy"))?.1;
    let kinds = kinds
        .into_iter()
        .map(|k| EventKind::from_index(k).ok_or_else(|| bad(format!("event kind {k}"))))
        .collect::<Result<Vec<_>>>()?;
    TrainSet::from_parts(
        users.clone(),
        items.clone(),
        offsets,
        npy::read::<u32>(&dir.join("events_items.npy"))?.1,
        npy::read::<i64>(&dir.join("events_timestamps.npy"))?.1,
        kinds,
        cutoff_ms,
    )
    .map_err(|e| bad(format!("training events: {e}")))
}

/// Item attributes as `[category, parent, available]` rows, -1 = unknown.
fn save_item_info(items: &[ItemInfo], dir: &Path) -> Result<()> {
    let mut attributes = Vec::with_capacity(items.len() * 3);
    for info in items {
        attributes.push(info.category.unwrap_or(-1));
        attributes.push(info.parent.unwrap_or(-1));
        attributes.push(info.available.map_or(-1, i64::from));
    }
    npy::write(
        &dir.join("item_attributes.npy"),
        &[items.len(), 3],
        &attributes,
    )
}

fn load_item_info(dir: &Path, n_items: usize) -> Result<Vec<ItemInfo>> {
    let (shape, attributes) = npy::read::<i64>(&dir.join("item_attributes.npy"))?;
    if shape != [n_items, 3] {
        bail!(
            "bundle {} is inconsistent: item attributes do not match the items",
            dir.display()
        );
    }
    let known = |v: i64| (v >= 0).then_some(v);
    Ok(attributes
        .chunks_exact(3)
        .map(|a| ItemInfo {
            category: known(a[0]),
            parent: known(a[1]),
            available: known(a[2]).map(|v| v == 1),
        })
        .collect())
}

/// The bundle directory meant by `path`: `path` itself if it is a bundle, else
/// the newest bundle inside it.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    if path.join(MANIFEST).is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        bail!(
            "no model bundle at {}: run `recsys train` first, or pass --bundle",
            path.display()
        );
    }
    let mut bundles: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("listing {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            !hidden && p.join(MANIFEST).is_file()
        })
        .collect();
    bundles.sort();
    bundles.pop().with_context(|| {
        format!(
            "no model bundle in {}: run `recsys train` first, or pass --bundle",
            path.display()
        )
    })
}

/// A 64-bit fingerprint of a sequence of values, as 16 hex digits.
pub fn fingerprint(words: impl Iterator<Item = u64>) -> String {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for w in words {
        h = (h ^ w).wrapping_mul(0x0000_0100_0000_01B3).rotate_left(29);
    }
    format!("{h:016x}")
}

/// A bundle trained once per test run on the repository's `data/` (popular,
/// history, als), shared by the tests of every module that reads bundles.
#[cfg(test)]
pub(crate) fn test_bundle() -> &'static Bundle {
    static BUNDLE: std::sync::OnceLock<Bundle> = std::sync::OnceLock::new();
    BUNDLE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut config = Config::load(&root.join("config.toml")).unwrap();
        config.models.enabled = vec!["popular".into(), "history".into(), "als".into()];
        config.models.als.iterations = 3;
        let cutoff = config.split.cutoff_rule().unwrap();
        let prepared =
            crate::training::prepare(&config, None, &cutoff, config.split.protocol).unwrap();
        crate::training::fit(&config, &prepared).unwrap()
    })
}
