//! Writing files and directories so that a crash never leaves half of one.
//!
//! Everything recsys writes goes to a temporary name in the destination's own
//! directory (same filesystem, so the final rename is atomic) and is renamed into
//! place only once complete. On error the temporary is removed and whatever was
//! at the destination before is untouched.
//!
//! A process that is killed cannot remove its temporary, so a killed `recsys
//! train` leaves a hidden `.RUN-ID.tmp-PID-NANOS` directory (65 MB at 175k
//! users) in the artifacts directory. [`remove_stale_temp_dirs`], which `train`
//! calls before writing, removes those of earlier runs. It must never remove
//! one that another process is filling right now (a second `train` into the
//! same directory), so [`create_dir_atomically`] keeps a [`LOCK_FILE`] in its
//! temporary directory, locked for as long as it writes there. The lock is the
//! kernel's (`flock`): it is released when the process ends, however it ends,
//! and unlike a PID it cannot be mistaken for another process that reuses the
//! number (a restarted container's train is often the same PID). The file is
//! locked under another name and renamed to [`LOCK_FILE`], so nobody ever sees
//! it unlocked while its writer lives. A temporary directory is stale when
//!
//! - its lock file is there and nobody holds the lock: its writer has ended,
//!   and the directory goes at once, so a run restarted right after a kill
//!   (a crash loop, a retrying scheduler) already cleans up after it; or
//! - there is no lock to ask (no lock file: a `recsys s3 pull` staging
//!   directory, one from a recsys before locks, one whose writer was killed
//!   in the instant before it locked; or a filesystem that refuses locks), and
//!   nothing in it has changed for an hour: any writer touches its files far
//!   more often than that.
//!
//! A directory whose lock is held is never removed.

use std::fmt;
use std::fs::{self, File, TryLockError};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

/// The file a directory being built by [`create_dir_atomically`] holds
/// locked while it is written; removed before the directory is renamed into
/// place.
pub const LOCK_FILE: &str = ".lock";

/// The name [`LOCK_FILE`] is created and locked under before it is renamed
/// into place: a lock file is never seen unlocked while its writer lives.
const NEW_LOCK_FILE: &str = ".lock-new";

/// How long a temporary directory with no lock to ask must have been left
/// untouched before it counts as stale.
pub const STALE_UNKNOWN: Duration = Duration::from_secs(3600);

/// A temporary sibling path for `dest`, unique to this process.
pub fn temp_sibling(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.tmp-{}-{stamp}", std::process::id()))
}

/// Write `dest` through `fill`, atomically: the file appears complete or not at all.
pub fn write_file_atomically(
    dest: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("creating directory {}", parent.display()))?;
    }
    let tmp = temp_sibling(dest);
    let result = (|| {
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        fill(&mut writer)?;
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("flushing {}", tmp.display()))?;
        fs::rename(&tmp, dest)
            .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Build directory `dest` through `fill` (given the temporary directory to fill),
/// then rename it into place. `dest` must not exist yet.
pub fn create_dir_atomically(dest: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if dest.exists() {
        anyhow::bail!(
            "{} already exists; refusing to overwrite it",
            dest.display()
        );
    }
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("creating directory {}", parent.display()))?;
    }
    let tmp = temp_sibling(dest);
    let result = (|| {
        fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        // Held until this function returns: tells remove_stale_temp_dirs in
        // other processes that someone is writing here.
        let lock = hold_lock(&tmp)?;
        fill(&tmp)?;
        if lock.is_some() {
            // Unlinked, the file stays locked through `lock` until the rename.
            let _ = fs::remove_file(tmp.join(LOCK_FILE));
        }
        fs::rename(&tmp, dest)
            .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Lock a new [`LOCK_FILE`] in `dir`, locked before it appears under that
/// name. `None` on a filesystem without locks: the directory then has no lock
/// file and is judged by its age alone, and still gets written.
fn hold_lock(dir: &Path) -> Result<Option<File>> {
    let fresh = dir.join(NEW_LOCK_FILE);
    let file = File::create(&fresh).with_context(|| format!("creating {}", fresh.display()))?;
    if file.lock().is_err() {
        let _ = fs::remove_file(&fresh);
        return Ok(None);
    }
    let path = dir.join(LOCK_FILE);
    fs::rename(&fresh, &path)
        .with_context(|| format!("renaming {} to {}", fresh.display(), path.display()))?;
    Ok(Some(file))
}

/// Whether `name` is that of a temporary made by [`temp_sibling`]:
/// `.NAME.tmp-PID-NANOS`.
pub fn is_temp_name(name: &str) -> bool {
    let Some((_, suffix)) = name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp-")) else {
        return false;
    };
    suffix.split_once('-').is_some_and(|(pid, stamp)| {
        [pid, stamp]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// A temporary directory of an earlier run, removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedTemp {
    /// Where it was.
    pub path: PathBuf,
    /// The bytes of the files it held.
    pub bytes: u64,
}

impl fmt::Display for RemovedTemp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "removed {} ({}), the temporary directory of a run that did not finish",
            self.path.display(),
            human_bytes(self.bytes)
        )
    }
}

/// `bytes` for a person: `65.2 MB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Who writes into a temporary directory, as far as its lock tells.
enum Writer {
    /// Someone holds the lock.
    Alive,
    /// The lock file is there and free: its writer has ended.
    Gone,
    /// No lock file, or a filesystem that cannot lock.
    Unknown,
}

fn writer_of(dir: &Path) -> Writer {
    let Ok(file) = File::open(dir.join(LOCK_FILE)) else {
        return Writer::Unknown;
    };
    match file.try_lock() {
        // Released when `file` is dropped, at once.
        Ok(()) => Writer::Gone,
        Err(TryLockError::WouldBlock) => Writer::Alive,
        Err(TryLockError::Error(_)) => Writer::Unknown,
    }
}

/// The bytes of the files under `path` and the newest modification time of
/// it and everything under it (symbolic links are not followed).
fn size_and_newest(path: &Path) -> (u64, SystemTime) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return (0, SystemTime::UNIX_EPOCH);
    };
    let mut newest = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let mut bytes = if meta.is_file() { meta.len() } else { 0 };
    if meta.is_dir() {
        for entry in fs::read_dir(path).into_iter().flatten().flatten() {
            let (b, t) = size_and_newest(&entry.path());
            bytes += b;
            newest = newest.max(t);
        }
    }
    (bytes, newest)
}

/// Remove the stale temporary directories that [`create_dir_atomically`] left
/// in `dir` when its process was killed (see the module docs for what counts
/// as stale and why a directory another process is writing is safe). Returns
/// each one found, removed or the error removing it; a `dir` that cannot be
/// listed (it does not exist yet) has none.
pub fn remove_stale_temp_dirs(dir: &Path) -> Vec<Result<RemovedTemp>> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let now = SystemTime::now();
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || !is_temp_name(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let quiet_for = match writer_of(&path) {
            Writer::Alive => continue,
            Writer::Gone => Duration::ZERO,
            Writer::Unknown => STALE_UNKNOWN,
        };
        let (bytes, newest) = size_and_newest(&path);
        // A time in the future (a clock set back) is as good as now.
        let untouched = now.duration_since(newest).unwrap_or_default();
        if untouched < quiet_for {
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => found.push(Ok(RemovedTemp { path, bytes })),
            // Another run's cleanup got there first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => found.push(Err(anyhow::Error::new(e).context(format!(
                "removing {}, the temporary directory of a run that did not finish",
                path.display()
            )))),
        }
    }
    found
}

/// Write `bytes` to `dest` atomically.
pub fn write_bytes_atomically(dest: &Path, bytes: &[u8]) -> Result<()> {
    write_file_atomically(dest, |w| {
        w.write_all(bytes)
            .with_context(|| format!("writing {}", dest.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_keeps_the_old_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        write_bytes_atomically(&dest, b"old").unwrap();
        let err = write_file_atomically(&dest, |w| {
            w.write_all(b"partial").unwrap();
            anyhow::bail!("disk on fire")
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_directory_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("bundle");
        let err = create_dir_atomically(&dest, |tmp| {
            fs::write(tmp.join("a"), b"x")?;
            anyhow::bail!("crash")
        });
        assert!(err.is_err());
        assert!(!dest.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn temporary_names_are_recognised() {
        let made = temp_sibling(Path::new("artifacts/20150901T000000Z-abc"));
        let name = made.file_name().unwrap().to_string_lossy().into_owned();
        assert!(is_temp_name(&name), "{name}");
        for other in [
            "20150901T000000Z-abc",
            ".hidden",
            ".x.tmp-",
            ".x.tmp-12",
            ".x.tmp-12-",
            ".x.tmp-a-3",
            "x.tmp-1-2",
        ] {
            assert!(!is_temp_name(other), "{other}");
        }
        assert_eq!(human_bytes(999), "999 bytes");
        assert_eq!(human_bytes(65_200_000), "65.2 MB");
    }

    /// A temporary directory named like one `create_dir_atomically` makes, with
    /// `bytes` of data, a lock file when `lock_file`, last touched `age` ago.
    fn temp_dir(root: &Path, name: &str, bytes: usize, lock_file: bool, age: Duration) -> PathBuf {
        let dir = root.join(format!(".{name}.tmp-4242-17"));
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("sub/als_item_factors.npy"), vec![0u8; bytes]).unwrap();
        if lock_file {
            File::create(dir.join(LOCK_FILE)).unwrap();
        }
        let then = SystemTime::now() - age;
        for p in [
            dir.join("sub/als_item_factors.npy"),
            dir.join("sub"),
            dir.clone(),
        ] {
            File::open(&p).unwrap().set_modified(then).unwrap();
        }
        if lock_file {
            File::open(dir.join(LOCK_FILE))
                .unwrap()
                .set_modified(then)
                .unwrap();
        }
        dir
    }

    #[test]
    fn stale_temporary_directories_are_removed_and_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let minutes = |m: u64| Duration::from_secs(60 * m);
        let killed = temp_dir(root.path(), "killed", 1500, true, minutes(5));
        // Its lock is free, so its writer has ended, however recently.
        let just_killed = temp_dir(root.path(), "just-killed", 20, true, Duration::ZERO);
        let ancient = temp_dir(root.path(), "ancient", 10, false, minutes(120));
        // Being written by another process right now: its lock is held.
        let writing = temp_dir(root.path(), "writing", 10, true, minutes(120));
        let held = File::open(writing.join(LOCK_FILE)).unwrap();
        held.lock().unwrap();
        // Just created, its lock file not in place yet; and a lock-less one
        // quiet for minutes only.
        let fresh = temp_dir(root.path(), "fresh", 10, false, Duration::ZERO);
        File::create(fresh.join(NEW_LOCK_FILE)).unwrap();
        let pulling = temp_dir(root.path(), "pulling", 10, false, minutes(5));
        // Neither a temporary nor a directory of ours.
        let bundle = root.path().join("20150901T000000Z-abc");
        fs::create_dir(&bundle).unwrap();
        File::open(&bundle)
            .unwrap()
            .set_modified(SystemTime::now() - minutes(600))
            .unwrap();

        let mut removed: Vec<RemovedTemp> = remove_stale_temp_dirs(root.path())
            .into_iter()
            .map(Result::unwrap)
            .collect();
        removed.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(
            removed,
            [
                RemovedTemp {
                    path: ancient.clone(),
                    bytes: 10
                },
                RemovedTemp {
                    path: just_killed.clone(),
                    bytes: 20
                },
                RemovedTemp {
                    path: killed.clone(),
                    bytes: 1500
                },
            ]
        );
        assert_eq!(
            removed[2].to_string(),
            format!(
                "removed {} (1.5 kB), the temporary directory of a run that did not finish",
                killed.display()
            )
        );
        for gone in [&killed, &just_killed, &ancient] {
            assert!(!gone.exists(), "{}", gone.display());
        }
        for kept in [&writing, &fresh, &pulling, &bundle] {
            assert!(kept.is_dir(), "{}", kept.display());
        }
        // Once its writer has ended, the one it was writing goes too.
        drop(held);
        let removed = remove_stale_temp_dirs(root.path());
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].as_ref().unwrap().path, writing);
        assert!(remove_stale_temp_dirs(&root.path().join("missing")).is_empty());
    }

    #[test]
    fn a_directory_being_built_is_locked_and_the_bundle_has_no_lock_file() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("bundle");
        create_dir_atomically(&dest, |tmp| {
            // Old enough to be removed, were its lock not held.
            File::open(tmp)
                .unwrap()
                .set_modified(SystemTime::now() - STALE_UNKNOWN * 2)
                .unwrap();
            assert!(remove_stale_temp_dirs(root.path()).is_empty());
            assert!(tmp.is_dir());
            fs::write(tmp.join("a"), b"x")?;
            Ok(())
        })
        .unwrap();
        let names: Vec<String> = fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a"]);
    }
}
