//! Model bundles: everything a trained run needs to recommend, in one directory.
//!
//! A bundle is `ARTIFACTS/<run-id>/` holding `manifest.json` (what was trained on
//! what data with which settings), the id maps, the training events (every
//! model scores a shopper live from their history plus what they did since),
//! the items' attributes (for the business rules) and each model's arrays as
//! `.npy`.
//! Run ids start with the UTC training time, so the newest bundle is the one with
//! the greatest name. A bundle is built in a temporary directory and renamed into
//! place, so a crash mid-write leaves no half bundle and never touches older ones;
//! the temporary directories a killed run leaves behind are hidden (their names
//! start with a dot), never taken for bundles, and removed by the next
//! `recsys train` ([`crate::fsio::remove_stale_temp_dirs`]).
//!
//! Loading checks every file against the others — array shapes against the id
//! maps, the factor tables against each other and the manifest — because a
//! bundle is a directory anyone can edit: a file that was truncated, replaced
//! or hand-edited is refused with an [`inconsistent`] error naming the file and
//! what does not fit, never served as garbage or left to panic later.

use std::fmt;
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
            .map_err(|e| inconsistent(dir, format!("{MANIFEST} is not a manifest: {e}")))?;
        if manifest.format_version != FORMAT_VERSION {
            bail!(
                "bundle {} has format version {}, this recsys reads version {FORMAT_VERSION}; retrain it",
                dir.display(),
                manifest.format_version
            );
        }
        let (users, items, train, item_info) = as_inconsistent(dir, || {
            let users = load_ids(dir, "users.npy", "user")?;
            let items = load_ids(dir, "items.npy", "item")?;
            let train = Arc::new(load_events(dir, &users, &items, manifest.cutoff_ms)?);
            let item_info = Arc::new(load_item_info(dir, items.len())?);
            Ok((users, items, train, item_info))
        })?;
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
    let offsets: Vec<usize> = column::<u64>(dir, "events_user_offsets.npy")?
        .into_iter()
        .map(|o| o as usize)
        .collect();
    let kinds = column::<u8>(dir, "events_kinds.npy")?
        .into_iter()
        .map(|k| {
            EventKind::from_index(k).ok_or_else(|| {
                inconsistent(
                    dir,
                    format!("events_kinds.npy holds event kind {k}, which is no kind of event"),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    TrainSet::from_parts(
        users.clone(),
        items.clone(),
        offsets,
        column::<u32>(dir, "events_items.npy")?,
        column::<i64>(dir, "events_timestamps.npy")?,
        kinds,
        cutoff_ms,
    )
    .map_err(|e| {
        inconsistent(
            dir,
            format!("the training events (events_*.npy) do not fit users.npy and items.npy: {e}"),
        )
    })
}

/// The 1-D array `name` in bundle `dir`.
fn column<T: npy::Element>(dir: &Path, name: &str) -> Result<Vec<T>> {
    let (shape, values) = npy::read::<T>(&dir.join(name))?;
    if shape.len() != 1 {
        return Err(inconsistent(
            dir,
            format!("{name} has shape {shape:?}, expected one column"),
        ));
    }
    Ok(values)
}

/// The id map stored in `name`, whose ids must all differ (a repeated id
/// would leave every later row of the models' tables one off).
fn load_ids(dir: &Path, name: &str, what: &str) -> Result<IdMap> {
    let raw = column::<i64>(dir, name)?;
    let map = IdMap::from_raw(raw.iter().copied());
    if map.len() != raw.len() {
        let mut seen = std::collections::HashSet::with_capacity(raw.len());
        let repeated = raw.iter().find(|&&id| !seen.insert(id)).copied();
        return Err(inconsistent(
            dir,
            format!(
                "{name} lists {what} id {} more than once",
                repeated.unwrap_or_default()
            ),
        ));
    }
    Ok(map)
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
        return Err(inconsistent(
            dir,
            format!(
                "item_attributes.npy has shape {shape:?}, expected [{n_items}, 3] for the {n_items} items of items.npy"
            ),
        ));
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

/// A bundle whose files cannot be read as what they should be, or do not fit
/// together: `what` names the file and the disagreement.
#[derive(Debug)]
struct Inconsistent {
    dir: PathBuf,
    what: String,
}

impl fmt::Display for Inconsistent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bundle {} is inconsistent: {}; it is corrupt or was edited by hand: \
             retrain it with `recsys train`, or restore it from a copy",
            self.dir.display(),
            self.what
        )
    }
}

impl std::error::Error for Inconsistent {}

/// The error for bundle `dir` whose files do not fit together or cannot be read
/// as what they should be; `what` names the file and what is wrong with it.
pub(crate) fn inconsistent(dir: &Path, what: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Inconsistent {
        dir: dir.to_path_buf(),
        what: what.to_string(),
    })
}

/// Run `read` (which reads files of bundle `dir`), turning a failure into an
/// [`inconsistent`] error unless it is one already or the filesystem refused
/// (a file that cannot be opened for lack of permission is not a corrupt one).
/// A missing file is inconsistency: the manifest says the bundle has it.
pub(crate) fn as_inconsistent<T>(dir: &Path, read: impl FnOnce() -> Result<T>) -> Result<T> {
    read().map_err(|err| {
        let io_failure = err
            .root_cause()
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() != std::io::ErrorKind::NotFound);
        if err.is::<Inconsistent>() || io_failure {
            err
        } else {
            inconsistent(dir, format!("{err:#}"))
        }
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, EngineSettings};

    /// The test bundle saved afresh, with `corrupt` applied to its directory;
    /// returns the loading error as the user sees it (`recsys: {err:#}`).
    fn load_error(corrupt: impl FnOnce(&Path, &Bundle)) -> String {
        let bundle = test_bundle();
        let root = tempfile::tempdir().unwrap();
        let saved = bundle.save(root.path()).unwrap();
        corrupt(&saved, bundle);
        let err = format!("{:#}", Bundle::load(&saved).unwrap_err());
        // What serve, evaluate and recommend load: refused alike, no panic.
        let engine_err = Engine::load(&saved, &EngineSettings::default()).unwrap_err();
        assert_eq!(format!("{engine_err:#}"), err);
        assert!(
            err.contains(&saved.display().to_string())
                && err.contains("corrupt or was edited by hand")
                && err.contains("retrain it with `recsys train`, or restore it from a copy"),
            "{err}"
        );
        err
    }

    #[test]
    fn a_factor_table_whose_shape_overflows_is_refused() {
        // items × 2^62 values of 4 bytes wrap to zero bytes: with unchecked
        // arithmetic the empty body matched, and serving read far past the data.
        let err = load_error(|dir, bundle| {
            let shape = format!("({}, {})", bundle.items.len(), 1u64 << 62);
            npy::write_raw(&dir.join("als_item_factors.npy"), "<f4", &shape, &[]);
        });
        assert!(
            err.contains("als_item_factors.npy is not a valid .npy array")
                && err.contains("more elements than any array can hold"),
            "{err}"
        );
    }

    #[test]
    fn factor_tables_of_different_widths_are_refused() {
        let err = load_error(|dir, bundle| {
            let n = bundle.items.len();
            npy::write(
                &dir.join("als_item_factors.npy"),
                &[n, 8],
                &vec![0.1f32; n * 8],
            )
            .unwrap();
        });
        let dim = test_bundle().als.as_ref().unwrap().user_factors.dim;
        assert_ne!(dim, 8);
        assert!(
            err.contains(&format!(
                "als_item_factors.npy has 8 factors per item, als_user_factors.npy has {dim} per user"
            )),
            "{err}"
        );
    }

    #[test]
    fn arrays_that_do_not_fit_the_id_maps_are_refused() {
        type Corrupt = Box<dyn Fn(&Path, &Bundle)>;
        let cases: [(&str, Corrupt); 6] = [
            (
                "als_user_factors.npy has 3 rows, users.npy has",
                Box::new(|dir, bundle| {
                    let f = &bundle.als.as_ref().unwrap().user_factors;
                    let data = &f.data[..3 * f.dim];
                    npy::write(&dir.join("als_user_factors.npy"), &[3, f.dim], data).unwrap();
                }),
            ),
            (
                "als_user_factors.npy holds values that are not finite numbers",
                Box::new(|dir, bundle| {
                    let f = &bundle.als.as_ref().unwrap().user_factors;
                    let mut data = f.data.clone();
                    data[5] = f32::NAN;
                    npy::write(&dir.join("als_user_factors.npy"), &[f.rows, f.dim], &data).unwrap();
                }),
            ),
            (
                "users.npy lists user id",
                Box::new(|dir, bundle| {
                    let mut ids = bundle.users.raw_ids().to_vec();
                    ids[1] = ids[0];
                    npy::write(&dir.join("users.npy"), &[ids.len()], &ids).unwrap();
                }),
            ),
            (
                "item_attributes.npy has shape [2, 3]",
                Box::new(|dir, _| {
                    npy::write(&dir.join("item_attributes.npy"), &[2, 3], &[0i64; 6]).unwrap();
                }),
            ),
            (
                "events_items.npy is not a valid .npy array: shape (7,) needs 28 bytes",
                Box::new(|dir, _| {
                    npy::write_raw(&dir.join("events_items.npy"), "<u4", "(7,)", &[])
                }),
            ),
            (
                "history_scores.npy: No such file",
                Box::new(|dir, _| std::fs::remove_file(dir.join("history_scores.npy")).unwrap()),
            ),
        ];
        for (needle, corrupt) in cases {
            let err = load_error(corrupt);
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn resolving_never_takes_a_temporary_directory_for_a_bundle() {
        let bundle = test_bundle();
        let root = tempfile::tempdir().unwrap();
        // Only a run's temporary directory, complete but not yet renamed (or
        // left by a killed run): not a bundle to serve.
        let tmp = root.path().join(".99991231T000000Z-abc.tmp-1-2");
        std::fs::create_dir(&tmp).unwrap();
        std::fs::write(tmp.join(MANIFEST), b"{}").unwrap();
        let err = format!("{:#}", resolve(root.path()).unwrap_err());
        assert!(err.contains("no model bundle in"), "{err}");
        // Beside a real bundle, the real one is chosen.
        let saved = bundle.save(root.path()).unwrap();
        assert_eq!(resolve(root.path()).unwrap(), saved);
    }
}
