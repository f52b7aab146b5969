//! Writing files and directories so that a crash never leaves half of one.
//!
//! Everything recsys writes goes to a temporary name in the destination's own
//! directory (same filesystem, so the final rename is atomic) and is renamed into
//! place only once complete. On error the temporary is removed and whatever was
//! at the destination before is untouched.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

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
        fill(&tmp)?;
        fs::rename(&tmp, dest)
            .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
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
}
