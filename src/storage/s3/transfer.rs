//! Pushing files and directories to a bucket, and pulling them back, safely.
//!
//! * Files below the multipart threshold go up in one PUT; a directory's small
//!   files go up several at a time.
//! * Larger files go up in parts ([`plan_parts`]) read straight from disk, a
//!   bounded number in flight, so memory stays at a few buffers whatever the
//!   file size. If any part fails for good (after the SDK's retries), the
//!   other parts are cancelled and the upload is aborted, so the server keeps
//!   no orphaned parts that would be billed and never seen in a listing. The
//!   same happens when the push is dropped half-way (Ctrl-C, a caller's timeout).
//!   A push killed outright (`kill -9`, a lost machine) cannot abort its own
//!   upload, so the next multipart push of the same key aborts the unfinished
//!   uploads of that key begun before it, once it has completed its own
//!   ([`PushReport::aborted`]).
//! * After every upload the object's size on the server is checked against
//!   the local file.
//! * A pull writes to a temporary name beside the destination and renames it
//!   into place once complete and the right size; a pulled prefix is assembled
//!   in a temporary directory the same way. On failure or interruption nothing
//!   is left behind.

use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use super::{S3Error, S3Store};
use crate::fsio::temp_sibling;

/// S3 allows at most this many parts in one upload.
const MAX_PARTS: u64 = 10_000;
const MIB: u64 = 1024 * 1024;
/// Read buffer for request bodies: large enough that a part is a few hundred
/// reads, small enough that a handful of parts in flight stay well under 100 MiB.
const READ_BUFFER: usize = 256 * 1024;

/// One part of a multipart upload: bytes `offset..offset + len` of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartRange {
    /// S3 part number, from 1.
    pub number: i32,
    /// First byte in the file.
    pub offset: u64,
    /// Bytes in the part.
    pub len: u64,
}

/// Cut `size` bytes into parts of `part_size` (the last one shorter). When that
/// would exceed S3's 10,000 parts, the part size grows, in whole MiB, until it fits.
pub fn plan_parts(size: u64, part_size: u64) -> Vec<PartRange> {
    let needed = size.div_ceil(MAX_PARTS);
    let part_size = part_size.max(needed.div_ceil(MIB) * MIB).max(1);
    (0..size.div_ceil(part_size).max(1))
        .map(|i| PartRange {
            number: i as i32 + 1,
            offset: i * part_size,
            len: part_size.min(size - i * part_size),
        })
        .collect()
}

/// What a push did.
#[derive(Debug, Clone, PartialEq)]
pub struct PushReport {
    /// Keys written, in the order of the local files.
    pub keys: Vec<String>,
    /// Bytes sent.
    pub bytes: u64,
    /// Files that went up in parts.
    pub multipart_files: usize,
    /// Parts uploaded over all multipart files.
    pub parts: usize,
    /// Unfinished multipart uploads of the pushed keys that earlier pushes
    /// left (killed before they could abort them), aborted once this push
    /// had completed the key.
    pub aborted: Vec<LeftUpload>,
    /// Wall time.
    pub elapsed: Duration,
}

/// A multipart upload begun and neither completed nor aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftUpload {
    /// The key it was for.
    pub key: String,
    /// Its id.
    pub upload_id: String,
    /// When it was begun (server time, RFC 3339), if the server said.
    pub initiated: Option<String>,
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq)]
pub struct PullReport {
    /// The file or directory written.
    pub destination: PathBuf,
    /// Objects downloaded.
    pub files: usize,
    /// Bytes received.
    pub bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// A progress bar over bytes (the shared bars count steps).
fn byte_bar(total: u64, what: &str) -> ProgressBar {
    let bar = crate::progress::bar(total, what);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>14} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, eta {eta})",
        )
        .expect("static template is valid")
        .progress_chars("=> "),
    );
    bar
}

/// Run `jobs` with at most `limit` in flight. On the first failure the others
/// are cancelled (dropping their requests) and awaited before the error is
/// returned, so nothing of them is still running afterwards.
async fn run_bounded<T, F>(
    jobs: impl IntoIterator<Item = F>,
    limit: usize,
) -> Result<Vec<T>, S3Error>
where
    T: Send + 'static,
    F: Future<Output = Result<T, S3Error>> + Send + 'static,
{
    let mut jobs = jobs.into_iter();
    let mut running = JoinSet::new();
    let mut results = Vec::new();
    loop {
        while running.len() < limit.max(1) {
            match jobs.next() {
                Some(job) => {
                    running.spawn(job);
                }
                None => break,
            }
        }
        let Some(joined) = running.join_next().await else {
            return Ok(results);
        };
        let outcome = match joined {
            Ok(outcome) => outcome,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => unreachable!("only this function cancels its tasks: {join}"),
        };
        match outcome {
            Ok(value) => results.push(value),
            Err(err) => {
                running.abort_all();
                while running.join_next().await.is_some() {}
                return Err(err);
            }
        }
    }
}

/// The last segment of a key (`a/b/c.npy` → `c.npy`).
fn key_basename(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// `root`'s files, recursively, with their `/`-separated paths relative to `root`, sorted.
fn walk(root: &Path) -> Result<Vec<(PathBuf, String, u64)>, S3Error> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| S3Error::local("reading directory", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| S3Error::local("reading directory", &dir, e))?;
            let path = entry.path();
            let file_type = entry
                .file_type()
                .map_err(|e| S3Error::local("reading", &path, e))?;
            let meta = std::fs::metadata(&path).map_err(|e| S3Error::local("reading", &path, e))?;
            if meta.is_dir() {
                if file_type.is_symlink() {
                    // Following directory links could loop or leave the tree.
                    return Err(S3Error::BadLocalPath {
                        path,
                        problem: "is a link to a directory; push its target on its own".into(),
                    });
                }
                pending.push(path);
            } else if meta.is_file() {
                let relative = path
                    .strip_prefix(root)
                    .expect("walked paths are under the root")
                    .components()
                    .map(|c| c.as_os_str().to_str())
                    .collect::<Option<Vec<&str>>>()
                    .ok_or_else(|| S3Error::BadLocalPath {
                        path: path.clone(),
                        problem: "has a name that is not UTF-8, which an S3 key must be".into(),
                    })?
                    .join("/");
                found.push((path, relative, meta.len()));
            }
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

/// The local path an object under `prefix` is written to, refusing keys that
/// would land outside the destination (`..`, absolute paths).
fn local_path_for(root: &Path, prefix: &str, key: &str) -> Result<PathBuf, S3Error> {
    let relative = Path::new(&key[prefix.len()..]);
    let safe = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if !safe || relative.as_os_str().is_empty() {
        return Err(S3Error::BadLocalPath {
            path: relative.to_path_buf(),
            problem: format!("object `{key}` cannot be written inside the destination directory"),
        });
    }
    Ok(root.join(relative))
}

/// A temporary file or directory, removed on drop unless [`Temporary::keep`] was
/// called: a failed or interrupted download leaves nothing behind.
struct Temporary {
    path: PathBuf,
    kept: bool,
}

impl Temporary {
    fn new(path: PathBuf) -> Temporary {
        Temporary { path, kept: false }
    }

    /// The transfer completed and the path was renamed into place.
    fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let _ = match self.path.is_dir() {
            true => std::fs::remove_dir_all(&self.path),
            false => std::fs::remove_file(&self.path),
        };
    }
}

/// Aborts a multipart upload when the future driving it is dropped half-way
/// (Ctrl-C in the CLI, a caller's timeout): otherwise the parts already sent
/// would stay on the server, invisible and billed. Failures are handled, and
/// reported, by the upload itself, which disarms this first.
struct AbortOnDrop {
    store: S3Store,
    key: String,
    upload_id: String,
    armed: bool,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        use tokio::runtime::{Handle, RuntimeFlavor};
        if !self.armed {
            return;
        }
        // Waiting inside a drop needs a multi-threaded runtime; elsewhere the
        // best left to do is to leave the upload for the server's lifecycle rules.
        let Ok(handle) = Handle::try_current() else {
            return;
        };
        if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
            return;
        }
        let abort = self
            .store
            .client
            .abort_multipart_upload()
            .bucket(&self.store.settings.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send();
        tokio::task::block_in_place(|| handle.block_on(async { abort.await.is_ok() }));
    }
}

impl S3Store {
    /// Upload `local` to `key`. A directory is pushed recursively, each file to
    /// `key/relative/path`. A file pushed to a key ending in `/` keeps its name
    /// under that prefix. Files at or above the multipart threshold go up in parts.
    pub async fn push(&self, local: &Path, key: &str) -> Result<PushReport, S3Error> {
        let started = Instant::now();
        let meta = std::fs::metadata(local).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => S3Error::NoSuchLocalPath {
                path: local.to_path_buf(),
            },
            _ => S3Error::local("reading", local, e),
        })?;
        let uploads: Vec<(PathBuf, String, u64)> = if meta.is_dir() {
            let prefix = key.trim_end_matches('/');
            let files = walk(local)?;
            if files.is_empty() {
                return Err(S3Error::BadLocalPath {
                    path: local.to_path_buf(),
                    problem: "is a directory without files; nothing to push".into(),
                });
            }
            files
                .into_iter()
                .map(|(path, relative, size)| {
                    let key = match prefix {
                        "" => relative,
                        _ => format!("{prefix}/{relative}"),
                    };
                    (path, key, size)
                })
                .collect()
        } else {
            let key = if key.is_empty() || key.ends_with('/') {
                let name = local.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                    S3Error::BadLocalPath {
                        path: local.to_path_buf(),
                        problem: "has no UTF-8 file name to use as the key".into(),
                    }
                })?;
                format!("{key}{name}")
            } else {
                key.to_string()
            };
            vec![(local.to_path_buf(), key, meta.len())]
        };

        let total: u64 = uploads.iter().map(|u| u.2).sum();
        let bar = byte_bar(total, "push");
        let threshold = self.settings.transfer.multipart_threshold;
        let (large, small): (Vec<_>, Vec<_>) =
            uploads.iter().cloned().partition(|u| u.2 >= threshold);

        // Small files: whole files in flight at once. Large files: one at a
        // time, each with its parts in flight.
        let jobs = small.into_iter().map(|(path, key, size)| {
            let store = self.clone();
            let bar = bar.clone();
            async move { store.put_whole(&path, &key, size, &bar).await }
        });
        let result = async {
            run_bounded(jobs, self.settings.transfer.concurrency).await?;
            let mut parts = 0;
            let mut aborted = Vec::new();
            for (path, key, size) in &large {
                let (n, left) = self.put_multipart(path, key, *size, &bar).await?;
                parts += n;
                aborted.extend(left);
            }
            Ok((parts, aborted))
        }
        .await;
        bar.finish_and_clear();
        let (parts, aborted) = result?;
        Ok(PushReport {
            keys: uploads.into_iter().map(|u| u.1).collect(),
            bytes: total,
            multipart_files: large.len(),
            parts,
            aborted,
            elapsed: started.elapsed(),
        })
    }

    /// Check that `key` on the server has `size` bytes.
    async fn verify_size(&self, key: &str, size: u64) -> Result<(), S3Error> {
        let remote = self.object_size(key).await?;
        if remote != size {
            return Err(S3Error::SizeMismatch {
                key: key.to_string(),
                local: size,
                remote,
            });
        }
        Ok(())
    }

    /// A file body of `len` bytes from `offset`, read from disk as it is sent
    /// (and re-read if the SDK retries).
    async fn file_body(path: &Path, offset: u64, len: u64) -> Result<ByteStream, S3Error> {
        ByteStream::read_from()
            .path(path)
            .offset(offset)
            .length(Length::Exact(len))
            .buffer_size(READ_BUFFER)
            .build()
            .await
            .map_err(|e| S3Error::local("reading", path, std::io::Error::other(e)))
    }

    /// One PUT of a whole file, then the size check.
    async fn put_whole(
        &self,
        path: &Path,
        key: &str,
        size: u64,
        bar: &ProgressBar,
    ) -> Result<(), S3Error> {
        let body = Self::file_body(path, 0, size).await?;
        self.client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .content_length(size as i64)
            .body(body)
            .send()
            .await
            .map_err(|e| self.error(e, "upload", Some(key)))?;
        self.verify_size(key, size).await?;
        bar.inc(size);
        Ok(())
    }

    /// The unfinished multipart uploads of exactly `key` (at most a page of
    /// 1,000: a next push aborts any more). Empty when the key pair may not
    /// list uploads or the server cannot: cleaning up is then not ours to do.
    async fn unfinished_uploads(&self, key: &str) -> Result<Vec<LeftUpload>, S3Error> {
        let listed = self
            .client
            .list_multipart_uploads()
            .bucket(&self.settings.bucket)
            .prefix(key)
            .send()
            .await
            .map_err(|e| self.error(e, "list the unfinished multipart uploads of", Some(key)));
        let listed = match listed {
            Ok(listed) => listed,
            Err(S3Error::AccessDenied { .. }) => return Ok(Vec::new()),
            Err(S3Error::Request {
                code: Some(code), ..
            }) if code == "NotImplemented" => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(listed
            .uploads()
            .iter()
            .filter(|u| u.key() == Some(key))
            .filter_map(|u| {
                Some(LeftUpload {
                    key: key.to_string(),
                    upload_id: u.upload_id()?.to_string(),
                    initiated: u
                        .initiated()
                        .and_then(|t| t.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime).ok()),
                })
            })
            .collect())
    }

    /// A multipart upload of `path` to `key`: the number of parts and the
    /// uploads of `key` that earlier pushes left and this one aborted, or an
    /// error after the upload has been aborted.
    async fn put_multipart(
        &self,
        path: &Path,
        key: &str,
        size: u64,
        bar: &ProgressBar,
    ) -> Result<(usize, Vec<LeftUpload>), S3Error> {
        let plan = plan_parts(size, self.settings.transfer.part_size);
        // Listed before this upload begins, so this one is not among them.
        // They are aborted only once this push has completed the key: a
        // failed push leaves things as it found them.
        let left = self.unfinished_uploads(key).await?;
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.settings.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error(e, "start a multipart upload of", Some(key)))?;
        let Some(upload_id) = created.upload_id().map(str::to_string) else {
            return Err(S3Error::Request {
                action: format!("start a multipart upload of `{key}`"),
                endpoint: self.settings.endpoint_name(),
                code: None,
                detail: "the server answered without an upload id".into(),
            });
        };
        let mut abort_on_drop = AbortOnDrop {
            store: self.clone(),
            key: key.to_string(),
            upload_id: upload_id.clone(),
            armed: true,
        };
        let uploaded = async {
            let jobs = plan.iter().map(|&part| {
                let store = self.clone();
                let (path, key, upload_id, bar) = (
                    path.to_path_buf(),
                    key.to_string(),
                    upload_id.clone(),
                    bar.clone(),
                );
                async move { store.put_part(&path, &key, &upload_id, part, &bar).await }
            });
            let mut parts = run_bounded(jobs, self.settings.transfer.concurrency).await?;
            parts.sort_by_key(|p| p.part_number());
            self.client
                .complete_multipart_upload()
                .bucket(&self.settings.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| self.error(e, "complete the multipart upload of", Some(key)))?;
            Ok(())
        }
        .await;
        // From here on this function ends the upload itself, and says how.
        abort_on_drop.armed = false;
        if let Err(first) = uploaded {
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(&self.settings.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
            return Err(match aborted {
                Ok(_) => first,
                Err(e) => S3Error::AbortFailed {
                    first: Box::new(first),
                    key: key.to_string(),
                    upload_id,
                    abort: Box::new(self.error(e, "abort the multipart upload of", Some(key))),
                },
            });
        }
        self.verify_size(key, size).await?;
        let mut aborted = Vec::new();
        for upload in left {
            let done = self
                .client
                .abort_multipart_upload()
                .bucket(&self.settings.bucket)
                .key(key)
                .upload_id(&upload.upload_id)
                .send()
                .await;
            // One that cannot be aborted now (gone already, a transient
            // failure) is left for the next push to find.
            if done.is_ok() {
                aborted.push(upload);
            }
        }
        Ok((plan.len(), aborted))
    }

    /// Upload one part; its ETag is what completing the upload needs.
    async fn put_part(
        &self,
        path: &Path,
        key: &str,
        upload_id: &str,
        part: PartRange,
        bar: &ProgressBar,
    ) -> Result<CompletedPart, S3Error> {
        let body = Self::file_body(path, part.offset, part.len).await?;
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.settings.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part.number)
            .content_length(part.len as i64)
            .body(body)
            .send()
            .await
            .map_err(|e| self.error(e, &format!("upload part {} of", part.number), Some(key)))?;
        bar.inc(part.len);
        Ok(CompletedPart::builder()
            .part_number(part.number)
            .set_e_tag(uploaded.e_tag().map(str::to_string))
            .build())
    }

    /// Download `key` to `local`. If `local` is a directory (or ends in `/`), the
    /// file keeps the key's last segment as its name. A key ending in `/` is a
    /// prefix: every object under it is pulled into the new directory `local`.
    pub async fn pull(&self, key: &str, local: &Path) -> Result<PullReport, S3Error> {
        if key.is_empty() || key.ends_with('/') {
            return self.pull_prefix(key, local).await;
        }
        let started = Instant::now();
        let into_dir = local.is_dir() || local.as_os_str().to_string_lossy().ends_with('/');
        let destination = match into_dir {
            true => local.join(key_basename(key)),
            false => local.to_path_buf(),
        };
        let bar = byte_bar(0, "pull");
        let result = self.download(key, &destination, &bar).await;
        bar.finish_and_clear();
        Ok(PullReport {
            destination,
            files: 1,
            bytes: result?,
            elapsed: started.elapsed(),
        })
    }

    /// Every object under `prefix`, into the directory `local`, which must not exist yet.
    async fn pull_prefix(&self, prefix: &str, local: &Path) -> Result<PullReport, S3Error> {
        let started = Instant::now();
        let objects: Vec<_> = self
            .list(prefix, 1000)
            .await?
            .into_iter()
            // Zero-byte keys ending in `/` are folder markers some consoles create.
            .filter(|o| !o.key.ends_with('/'))
            .collect();
        if objects.is_empty() {
            return Err(S3Error::EmptyPrefix {
                bucket: self.settings.bucket.clone(),
                prefix: prefix.to_string(),
            });
        }
        if local.exists() {
            return Err(S3Error::BadLocalPath {
                path: local.to_path_buf(),
                problem: "already exists; pull a prefix into a new directory".into(),
            });
        }
        if let Some(parent) = local.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| S3Error::local("creating directory", parent, e))?;
        }
        // Removed if anything fails, or if this future is dropped (Ctrl-C).
        let mut staging = Temporary::new(temp_sibling(local));
        let mut targets = Vec::with_capacity(objects.len());
        for object in &objects {
            targets.push((
                object.key.clone(),
                local_path_for(&staging.path, prefix, &object.key)?,
            ));
        }
        let total = objects.iter().map(|o| o.size).sum();
        let bar = byte_bar(total, "pull");
        let result = async {
            std::fs::create_dir(&staging.path)
                .map_err(|e| S3Error::local("creating directory", &staging.path, e))?;
            let jobs = targets.into_iter().map(|(key, path)| {
                let store = self.clone();
                let bar = bar.clone();
                async move { store.download(&key, &path, &bar).await }
            });
            let sizes = run_bounded(jobs, self.settings.transfer.concurrency).await?;
            std::fs::rename(&staging.path, local)
                .map_err(|e| S3Error::local("renaming the downloaded directory to", local, e))?;
            staging.keep();
            Ok(sizes.iter().sum())
        }
        .await;
        bar.finish_and_clear();
        drop(staging);
        Ok(PullReport {
            destination: local.to_path_buf(),
            files: objects.len(),
            bytes: result?,
            elapsed: started.elapsed(),
        })
    }

    /// Stream `key` into a temporary file beside `destination`, check its size,
    /// and rename it into place; the number of bytes written.
    async fn download(
        &self,
        key: &str,
        destination: &Path,
        bar: &ProgressBar,
    ) -> Result<u64, S3Error> {
        let response = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error(e, "download", Some(key)))?;
        let announced = response.content_length().map(|n| n.max(0) as u64);
        if let (Some(len), Some(0)) = (announced, bar.length()) {
            // A single-file pull learns the size only now.
            bar.set_length(len);
        }
        if let Some(parent) = destination.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| S3Error::local("creating directory", parent, e))?;
        }
        // Removed if anything fails, or if this future is dropped (Ctrl-C).
        let mut guard = Temporary::new(temp_sibling(destination));
        let temporary = guard.path.clone();
        let result = async {
            let file = tokio::fs::File::create(&temporary)
                .await
                .map_err(|e| S3Error::local("creating", &temporary, e))?;
            let mut writer = tokio::io::BufWriter::with_capacity(1 << 20, file);
            let mut body = response.body;
            let mut written = 0u64;
            loop {
                let chunk = body.try_next().await.map_err(|e| S3Error::Request {
                    action: format!("download `{key}`"),
                    endpoint: self.settings.endpoint_name(),
                    code: None,
                    detail: format!("the transfer broke off: {e}"),
                })?;
                let Some(chunk) = chunk else { break };
                writer
                    .write_all(&chunk)
                    .await
                    .map_err(|e| S3Error::local("writing", &temporary, e))?;
                written += chunk.len() as u64;
                bar.inc(chunk.len() as u64);
            }
            writer
                .flush()
                .await
                .map_err(|e| S3Error::local("writing", &temporary, e))?;
            writer
                .into_inner()
                .sync_all()
                .await
                .map_err(|e| S3Error::local("flushing", &temporary, e))?;
            if let Some(remote) = announced.filter(|&n| n != written) {
                return Err(S3Error::SizeMismatch {
                    key: key.to_string(),
                    local: written,
                    remote,
                });
            }
            tokio::fs::rename(&temporary, destination)
                .await
                .map_err(|e| S3Error::local("renaming the download to", destination, e))?;
            Ok(written)
        }
        .await;
        if result.is_ok() {
            guard.keep();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers_exactly(parts: &[PartRange], size: u64) {
        let mut next = 0;
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(part.number, i as i32 + 1);
            assert_eq!(part.offset, next);
            next += part.len;
        }
        assert_eq!(next, size);
    }

    #[test]
    fn parts_cover_the_file_with_a_short_last_part() {
        let parts = plan_parts(50 * 1000 * 1000, 5 * MIB);
        assert_eq!(parts.len(), 10);
        assert!(parts[..9].iter().all(|p| p.len == 5 * MIB));
        assert_eq!(parts[9].len, 50 * 1000 * 1000 - 9 * 5 * MIB);
        covers_exactly(&parts, 50 * 1000 * 1000);
    }

    #[test]
    fn exact_multiples_have_no_empty_part() {
        let parts = plan_parts(32 * MIB, 16 * MIB);
        assert_eq!(parts.len(), 2);
        covers_exactly(&parts, 32 * MIB);
    }

    #[test]
    fn huge_files_grow_the_part_size_to_stay_within_ten_thousand_parts() {
        let size = 200 * 1024 * MIB; // 200 GiB at 5 MiB would be 40,960 parts
        let parts = plan_parts(size, 5 * MIB);
        assert!(parts.len() as u64 <= MAX_PARTS);
        assert_eq!(parts[0].len % MIB, 0);
        covers_exactly(&parts, size);
    }

    #[test]
    fn an_empty_file_is_one_empty_part() {
        assert_eq!(
            plan_parts(0, 5 * MIB),
            vec![PartRange {
                number: 1,
                offset: 0,
                len: 0
            }]
        );
    }

    #[test]
    fn keys_cannot_escape_the_destination() {
        let root = Path::new("/tmp/out");
        assert_eq!(
            local_path_for(root, "b/", "b/x/y.npy").unwrap(),
            root.join("x/y.npy")
        );
        assert!(local_path_for(root, "b/", "b/../../etc/passwd").is_err());
        assert!(local_path_for(root, "", "/etc/passwd").is_err());
    }

    #[test]
    fn walking_a_directory_gives_slash_separated_sorted_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub/deeper")).unwrap();
        std::fs::write(dir.path().join("b.txt"), b"bb").unwrap();
        std::fs::write(dir.path().join("sub/deeper/a.txt"), b"a").unwrap();
        let found: Vec<(String, u64)> = walk(dir.path())
            .unwrap()
            .into_iter()
            .map(|(_, relative, size)| (relative, size))
            .collect();
        assert_eq!(
            found,
            vec![
                ("b.txt".to_string(), 2),
                ("sub/deeper/a.txt".to_string(), 1)
            ]
        );
    }

    #[test]
    fn a_failing_job_cancels_the_rest() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let jobs = (0..10).map(|i| {
            let finished = finished.clone();
            async move {
                if i == 1 {
                    return Err(S3Error::NoBucket);
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(i)
            }
        });
        let started = Instant::now();
        let result = runtime.block_on(run_bounded(jobs, 3));
        assert!(matches!(result, Err(S3Error::NoBucket)));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(finished.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}
