//! `recsys s3` against a real server.
//!
//! The server is SeaweedFS, started by `.ci/services/up` on 127.0.0.1:8333 (or
//! `RECSYS_TEST_S3_ENDPOINT`) with the keys in `.ci/seaweedfs/identities.json`;
//! signatures are checked, so wrong keys fail as they would on AWS. Every test
//! makes its own bucket and removes it at the end. The binary runs with a clean
//! environment, so the machine's own `AWS_*` variables never leak in.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use recsys::storage::s3::{EnvVars, S3Config, S3Overrides, S3Settings, S3Store};

use crate::cli::{failed, ok, Scratch};

pub(crate) const MIB: usize = 1024 * 1024;

/// The test server's address and keys.
pub struct Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

pub fn server() -> Server {
    let endpoint = std::env::var("RECSYS_TEST_S3_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:8333".to_string());
    let host = endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let reachable = host
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    assert!(
        reachable,
        "no S3 server answers at {endpoint}: run `.ci/services/up` (it starts SeaweedFS), \
         or point RECSYS_TEST_S3_ENDPOINT at one"
    );
    let identities = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/seaweedfs/identities.json"),
    )
    .unwrap();
    let identities: serde_json::Value = serde_json::from_str(&identities).unwrap();
    let credentials = &identities["identities"][0]["credentials"][0];
    Server {
        endpoint,
        access_key: credentials["accessKey"].as_str().unwrap().to_string(),
        secret_key: credentials["secretKey"].as_str().unwrap().to_string(),
    }
}

/// A bucket of its own for one test, emptied and removed on drop.
pub(crate) struct Bucket {
    pub(crate) name: String,
    pub(crate) server: Server,
    store: S3Store,
    runtime: tokio::runtime::Runtime,
}

impl Bucket {
    pub(crate) fn new() -> Bucket {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let server = server();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 1_000_000_000;
        let name = format!(
            "recsys-test-{}-{}-{stamp}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let store = store_for(&server, &server.endpoint, &name);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(store.client().create_bucket().bucket(&name).send())
            .unwrap_or_else(|e| panic!("creating bucket {name}: {e:?}"));
        Bucket {
            name,
            server,
            store,
            runtime,
        }
    }

    /// The variables a user would set to reach this bucket.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.server.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.server.secret_key.clone()),
            ("AWS_ENDPOINT_URL", self.server.endpoint.clone()),
            ("S3_BUCKET_NAME", self.name.clone()),
        ]
    }

    /// `recsys s3 ARGS` in `dir`, with this bucket's settings in the environment.
    pub(crate) fn s3(&self, dir: &Path, args: &[&str]) -> Output {
        recsys_s3(dir, &self.env(), args)
    }

    /// Every key in the bucket, read with the SDK directly.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.runtime
            .block_on(self.store.list("", 1000))
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect()
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub(crate) fn unfinished_uploads(&self) -> usize {
        let answer = self
            .runtime
            .block_on(
                self.store
                    .client()
                    .list_multipart_uploads()
                    .bucket(&self.name)
                    .send(),
            )
            .unwrap();
        answer.uploads().len()
    }

    fn put(&self, key: &str, bytes: Vec<u8>) {
        self.runtime
            .block_on(
                self.store
                    .client()
                    .put_object()
                    .bucket(&self.name)
                    .key(key)
                    .body(bytes.into())
                    .send(),
            )
            .unwrap();
    }

    pub(crate) fn etag(&self, key: &str) -> String {
        let head = self
            .runtime
            .block_on(
                self.store
                    .client()
                    .head_object()
                    .bucket(&self.name)
                    .key(key)
                    .send(),
            )
            .unwrap();
        head.e_tag().unwrap_or_default().to_string()
    }
}

impl Drop for Bucket {
    fn drop(&mut self) {
        let client = self.store.client().clone();
        let name = self.name.clone();
        let keys = self.runtime.block_on(self.store.list("", 1000));
        self.runtime.block_on(async move {
            if let Ok(uploads) = client.list_multipart_uploads().bucket(&name).send().await {
                for upload in uploads.uploads() {
                    let _ = client
                        .abort_multipart_upload()
                        .bucket(&name)
                        .key(upload.key().unwrap_or_default())
                        .upload_id(upload.upload_id().unwrap_or_default())
                        .send()
                        .await;
                }
            }
            for object in keys.unwrap_or_default() {
                let _ = client
                    .delete_object()
                    .bucket(&name)
                    .key(&object.key)
                    .send()
                    .await;
            }
            let _ = client.delete_bucket().bucket(&name).send().await;
        });
    }
}

fn store_for(server: &Server, endpoint: &str, bucket: &str) -> S3Store {
    let env = EnvVars::from_pairs([
        ("AWS_ACCESS_KEY_ID", server.access_key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", server.secret_key.as_str()),
        ("AWS_ENDPOINT_URL", endpoint),
        ("S3_BUCKET_NAME", bucket),
    ]);
    S3Store::new(S3Settings::resolve(&S3Overrides::default(), &S3Config::default(), &env).unwrap())
}

/// `recsys s3 ARGS` in `dir` with exactly the variables `env` (and PATH).
fn recsys_s3(dir: &Path, env: &[(&str, String)], args: &[&str]) -> Output {
    recsys_s3_command(dir, env, args).output().unwrap()
}

/// The command [`recsys_s3`] runs, for a test that starts it and stops it.
pub(crate) fn recsys_s3_command(dir: &Path, env: &[(&str, String)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recsys"));
    command
        .arg("s3")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    command
}

/// Stderr of a failed run, checked to be one `recsys: …` message, not an SDK dump.
fn error_message(out: &Output) -> String {
    let stderr = failed(out);
    assert!(stderr.starts_with("recsys: "), "{stderr}");
    for dump in ["ServiceError", "DispatchFailure", "ErrorMetadata", "{ "] {
        assert!(
            !stderr.contains(dump),
            "debug output in the message: {stderr}"
        );
    }
    stderr
}

/// Deterministic bytes that do not compress or repeat.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Relative path → contents of every file under `root`.
fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path.strip_prefix(root).unwrap().to_path_buf(), bytes));
            }
        }
    }
    files.sort();
    files
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A TCP proxy in front of the S3 server that breaks transfers on purpose: once
/// `limit` bytes have gone through in the watched direction (all connections
/// together), any connection that moves more than 64 KiB further that way is
/// cut, or stalls. Small requests (listing, aborting) still get through.
pub(crate) struct FaultyProxy {
    pub(crate) endpoint: String,
    pub(crate) forwarded: Arc<AtomicU64>,
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Watch {
    Uploads,
    Downloads,
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Fault {
    /// Close the connection.
    Cut,
    /// Stop forwarding, as a hung server would.
    Stall,
}

pub(crate) fn faulty_proxy(upstream: &str, watch: Watch, limit: u64, fault: Fault) -> FaultyProxy {
    let upstream: SocketAddr = upstream
        .trim_start_matches("http://")
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let forwarded = Arc::new(AtomicU64::new(0));
    let total = forwarded.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(upstream) else {
                continue;
            };
            let pump = |from: TcpStream, to: TcpStream, watched: bool, total: Arc<AtomicU64>| {
                move || {
                    let (mut from, mut to) = (from, to);
                    let mut buffer = vec![0u8; 64 * 1024];
                    let mut past_limit = 0u64;
                    loop {
                        let n = match from.read(&mut buffer) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n as u64,
                        };
                        if watched {
                            if total.fetch_add(n, Ordering::SeqCst) >= limit {
                                past_limit += n;
                            }
                            if past_limit > 64 * 1024 {
                                if fault == Fault::Stall {
                                    std::thread::sleep(Duration::from_secs(60));
                                }
                                break;
                            }
                        }
                        if to.write_all(&buffer[..n as usize]).is_err() {
                            break;
                        }
                    }
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                }
            };
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(pump(client, server, watch == Watch::Uploads, total.clone()));
            std::thread::spawn(pump(s2, c2, watch == Watch::Downloads, total.clone()));
        }
    });
    FaultyProxy {
        endpoint,
        forwarded,
    }
}

#[test]
fn a_model_bundle_round_trips_byte_exact() {
    let bucket = Bucket::new();
    let scratch = Scratch::default_data();
    ok(&scratch.run(&["train"]));
    let bundle = scratch.bundles().pop().expect("train wrote a bundle");
    let run_id = bundle.file_name().unwrap().to_str().unwrap().to_string();
    let prefix = format!("bundles/{run_id}");

    // The scratch directory holds a config.toml without [s3]: the default
    // config is read and the environment supplies everything.
    let pushed = ok(&bucket.s3(
        scratch.dir.path(),
        &[
            "push",
            "--local-file-path",
            bundle.to_str().unwrap(),
            "--s3-file-path",
            &prefix,
        ],
    ));
    let local = tree(&bundle);
    assert!(
        pushed.starts_with(&format!("pushed {} files from", local.len())),
        "{pushed}"
    );
    let mut expected_keys: Vec<String> = local
        .iter()
        .map(|(p, _)| format!("{prefix}/{}", p.to_str().unwrap()))
        .collect();
    expected_keys.sort();
    assert_eq!(bucket.keys(), expected_keys);

    let pulled = scratch.path("pulled/bundle");
    ok(&bucket.s3(
        scratch.dir.path(),
        &[
            "pull",
            "--s3-file-path",
            &format!("{prefix}/"),
            "--local-file-path",
            pulled.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        tree(&pulled),
        local,
        "pulled bundle differs from the pushed one"
    );
    assert_eq!(entries(&scratch.path("pulled")), vec!["bundle"]);

    // A pulled prefix never overwrites a directory.
    let again = error_message(&bucket.s3(
        scratch.dir.path(),
        &[
            "pull",
            "--s3-file-path",
            &format!("{prefix}/"),
            "--local-file-path",
            pulled.to_str().unwrap(),
        ],
    ));
    assert!(again.contains("already exists"), "{again}");
}

#[test]
fn a_50_mb_file_goes_up_in_parallel_parts_and_comes_back_exact() {
    let bucket = Bucket::new();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    let bytes = noise(50_000_000, 1);
    std::fs::write(&big, &bytes).unwrap();

    let pushed = ok(&bucket.s3(
        dir.path(),
        &[
            "push",
            "--local-file-path",
            big.to_str().unwrap(),
            "--s3-file-path",
            "data/big.bin",
            "--multipart-threshold-mb",
            "8",
            "--part-size-mb",
            "5",
            "--concurrency",
            "4",
        ],
    ));
    // 50,000,000 bytes in 5 MiB parts: nine full parts and a shorter tenth.
    assert!(pushed.contains("multipart in 10 parts"), "{pushed}");
    assert!(pushed.contains("(50000000 bytes)"), "{pushed}");
    // A multipart object's ETag ends in -<number of parts>.
    assert!(
        bucket.etag("data/big.bin").ends_with("-10\""),
        "{}",
        bucket.etag("data/big.bin")
    );
    assert_eq!(bucket.unfinished_uploads(), 0);

    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    // An existing directory as the destination keeps the key's file name.
    ok(&bucket.s3(
        dir.path(),
        &[
            "pull",
            "--s3-file-path",
            "data/big.bin",
            "--local-file-path",
            out_dir.to_str().unwrap(),
        ],
    ));
    assert_eq!(entries(&out_dir), vec!["big.bin"]);
    assert!(
        std::fs::read(out_dir.join("big.bin")).unwrap() == bytes,
        "pulled bytes differ"
    );
}

#[test]
fn a_failed_multipart_upload_is_aborted_and_leaves_no_parts() {
    let bucket = Bucket::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    std::fs::write(&file, noise(30 * MIB, 2)).unwrap();
    // Two 5 MiB parts get through, then every upload is cut.
    let proxy = faulty_proxy(
        &bucket.server.endpoint,
        Watch::Uploads,
        11 * MIB as u64,
        Fault::Cut,
    );
    let mut env = bucket.env();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL", proxy.endpoint.clone()));

    let stderr = error_message(&recsys_s3(
        dir.path(),
        &env,
        &[
            "push",
            "--local-file-path",
            file.to_str().unwrap(),
            "--s3-file-path",
            "big.bin",
            "--multipart-threshold-mb",
            "8",
            "--part-size-mb",
            "5",
            "--concurrency",
            "2",
        ],
    ));
    assert!(stderr.contains("upload part"), "{stderr}");
    assert!(proxy.forwarded.load(Ordering::SeqCst) >= 10 * MIB as u64);
    assert_eq!(
        bucket.unfinished_uploads(),
        0,
        "the failed upload was not aborted"
    );
    assert!(bucket.keys().is_empty());
}

#[test]
fn ctrl_c_during_a_multipart_upload_aborts_it() {
    let bucket = Bucket::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    std::fs::write(&file, noise(30 * MIB, 9)).unwrap();
    // Two parts reach the server, then the upload hangs.
    let proxy = faulty_proxy(
        &bucket.server.endpoint,
        Watch::Uploads,
        11 * MIB as u64,
        Fault::Stall,
    );
    let mut env = bucket.env();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL", proxy.endpoint.clone()));
    let child = recsys_s3_command(
        dir.path(),
        &env,
        &[
            "push",
            "--local-file-path",
            "big.bin",
            "--s3-file-path",
            "big.bin",
            "--multipart-threshold-mb",
            "8",
            "--part-size-mb",
            "5",
            "--concurrency",
            "2",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.forwarded.load(Ordering::SeqCst) < 11 * MIB as u64 {
        assert!(Instant::now() < deadline, "the upload never got going");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        bucket.unfinished_uploads(),
        1,
        "the upload should be under way"
    );
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let stderr = error_message(&child.wait_with_output().unwrap());
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(
        bucket.unfinished_uploads(),
        0,
        "the interrupted upload was not aborted"
    );
    assert!(bucket.keys().is_empty());
}

#[test]
fn a_failed_pull_leaves_nothing_behind() {
    let bucket = Bucket::new();
    bucket.put("data/events.bin", noise(8 * MIB, 3));
    bucket.put("prefix/a.bin", noise(4 * MIB, 4));
    bucket.put("prefix/b.bin", noise(4 * MIB, 5));
    let dir = tempfile::tempdir().unwrap();
    let proxy = faulty_proxy(
        &bucket.server.endpoint,
        Watch::Downloads,
        MIB as u64,
        Fault::Cut,
    );
    let mut env = bucket.env();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL", proxy.endpoint.clone()));

    let stderr = error_message(&recsys_s3(
        dir.path(),
        &env,
        &[
            "pull",
            "--s3-file-path",
            "data/events.bin",
            "--local-file-path",
            "events.bin",
        ],
    ));
    assert!(stderr.contains("data/events.bin"), "{stderr}");
    let stderr = error_message(&recsys_s3(
        dir.path(),
        &env,
        &[
            "pull",
            "--s3-file-path",
            "prefix/",
            "--local-file-path",
            "tree",
        ],
    ));
    assert!(stderr.contains("prefix/"), "{stderr}");
    assert!(
        entries(dir.path()).is_empty(),
        "left behind: {:?}",
        entries(dir.path())
    );
}

#[test]
fn contents_lists_every_key_across_pages() {
    let bucket = Bucket::new();
    let dir = tempfile::tempdir().unwrap();
    let many = dir.path().join("many");
    std::fs::create_dir(&many).unwrap();
    // More than one default page (1000 keys).
    for i in 0..1005 {
        std::fs::write(many.join(format!("{i:04}.txt")), i.to_string()).unwrap();
    }
    ok(&bucket.s3(
        dir.path(),
        &[
            "push",
            "--local-file-path",
            "many",
            "--s3-file-path",
            "many/",
            "--concurrency",
            "16",
        ],
    ));

    let listed = ok(&bucket.s3(dir.path(), &["contents"]));
    let keys: Vec<&str> = listed
        .lines()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    let expected: Vec<String> = (0..1005).map(|i| format!("many/{i:04}.txt")).collect();
    assert_eq!(keys, expected);
    // Each line: last modified, size, key.
    let first: Vec<&str> = listed.lines().next().unwrap().split_whitespace().collect();
    assert!(
        first[0].ends_with('Z') && first[0].contains('T'),
        "{first:?}"
    );
    assert_eq!(first[1], "1");

    let paged = ok(&bucket.s3(
        dir.path(),
        &["contents", "--prefix", "many/09", "--page-size", "7"],
    ));
    assert_eq!(paged.lines().count(), 100);
}

#[test]
fn space_prints_each_size_and_the_total() {
    let bucket = Bucket::new();
    bucket.put("d/a.bin", Vec::new());
    bucket.put("d/b.bin", noise(1536, 6));
    bucket.put("d/c.bin", noise(3 * MIB, 7));
    bucket.put("other.bin", noise(10, 8));
    let dir = tempfile::tempdir().unwrap();

    let out = ok(&bucket.s3(dir.path(), &["space", "--prefix", "d/", "--page-size", "2"]));
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["size", "bytes", "key"]);
    assert_eq!(lines[1], ["0", "B", "0", "d/a.bin"]);
    assert_eq!(lines[2], ["1.5", "KiB", "1536", "d/b.bin"]);
    assert_eq!(lines[3], ["3.0", "MiB", "3145728", "d/c.bin"]);
    assert_eq!(
        out.lines().last().unwrap(),
        format!(
            "total: 3.0 MiB (3147264 bytes) in 3 objects under s3://{}/d/",
            bucket.name
        )
    );
}

#[test]
fn a_dotenv_file_is_read_and_real_variables_win_over_it() {
    let bucket = Bucket::new();
    bucket.put("x.txt", b"x".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let dotenv: String = bucket
        .env()
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    std::fs::write(dir.path().join(".env"), dotenv).unwrap();

    let listed = ok(&recsys_s3(dir.path(), &[], &["contents"]));
    assert!(listed.contains("x.txt"), "{listed}");

    let other = "recsys-test-no-such-bucket";
    let stderr = error_message(&recsys_s3(
        dir.path(),
        &[("S3_BUCKET_NAME", other.to_string())],
        &["contents"],
    ));
    assert!(
        stderr.contains(&format!("bucket `{other}` does not exist")),
        "{stderr}"
    );
}

#[test]
fn flags_beat_the_config_file_which_beats_the_environment() {
    let bucket = Bucket::new();
    bucket.put("x.txt", b"x".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("s3.toml");
    std::fs::write(&config, format!("[s3]\nbucket = {:?}\n", bucket.name)).unwrap();
    let mut env = bucket.env();
    env.retain(|(k, _)| *k != "S3_BUCKET_NAME");
    env.push(("S3_BUCKET_NAME", "recsys-test-env-bucket".to_string()));

    let listed = ok(&recsys_s3(
        dir.path(),
        &env,
        &["contents", "--config", config.to_str().unwrap()],
    ));
    assert!(listed.contains("x.txt"), "{listed}");

    let stderr = error_message(&recsys_s3(
        dir.path(),
        &env,
        &[
            "contents",
            "--config",
            config.to_str().unwrap(),
            "--bucket",
            "recsys-test-flag-bucket",
        ],
    ));
    assert!(stderr.contains("`recsys-test-flag-bucket`"), "{stderr}");

    let stderr = error_message(&recsys_s3(
        dir.path(),
        &env,
        &["contents", "--config", "missing.toml"],
    ));
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

#[test]
fn missing_credentials_say_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = error_message(&recsys_s3(
        dir.path(),
        &[
            ("AWS_ENDPOINT_URL", server().endpoint),
            ("S3_BUCKET_NAME", "any".to_string()),
        ],
        &["contents"],
    ));
    assert!(stderr.contains("no S3 credentials"), "{stderr}");
    assert!(stderr.contains("AWS_ACCESS_KEY_ID"), "{stderr}");
}

#[test]
fn a_wrong_secret_key_names_the_access_key() {
    let bucket = Bucket::new();
    let dir = tempfile::tempdir().unwrap();
    let mut env = bucket.env();
    env.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
    env.push(("AWS_SECRET_ACCESS_KEY", "not-the-secret".to_string()));
    let stderr = error_message(&recsys_s3(dir.path(), &env, &["contents"]));
    assert!(
        stderr.contains(&format!(
            "the secret key is wrong for access key {}",
            bucket.server.access_key
        )),
        "{stderr}"
    );
}

#[test]
fn an_unknown_access_key_is_named() {
    let bucket = Bucket::new();
    let dir = tempfile::tempdir().unwrap();
    let mut env = bucket.env();
    env.retain(|(k, _)| *k != "AWS_ACCESS_KEY_ID");
    env.push(("AWS_ACCESS_KEY_ID", "AKIDNOBODY".to_string()));
    let stderr = error_message(&recsys_s3(dir.path(), &env, &["space"]));
    assert!(
        stderr.contains("access key AKIDNOBODY is not known"),
        "{stderr}"
    );
}

#[test]
fn a_missing_bucket_is_named() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), b"f").unwrap();
    let env = vec![
        ("AWS_ACCESS_KEY_ID", server.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", server.secret_key.clone()),
        ("AWS_ENDPOINT_URL", server.endpoint.clone()),
    ];
    for args in [
        vec!["contents"],
        vec![
            "push",
            "--local-file-path",
            "f.txt",
            "--s3-file-path",
            "f.txt",
        ],
        vec![
            "pull",
            "--s3-file-path",
            "f.txt",
            "--local-file-path",
            "g.txt",
        ],
    ] {
        let mut args = args.clone();
        args.extend(["--bucket", "recsys-test-missing-bucket"]);
        let stderr = error_message(&recsys_s3(dir.path(), &env, &args));
        assert!(
            stderr.contains("bucket `recsys-test-missing-bucket` does not exist"),
            "{args:?}: {stderr}"
        );
    }
    let stderr = error_message(&recsys_s3(dir.path(), &env, &["contents"]));
    assert!(stderr.contains("no bucket given"), "{stderr}");
}

#[test]
fn missing_local_files_and_objects_are_named() {
    let bucket = Bucket::new();
    let dir = tempfile::tempdir().unwrap();
    let stderr = error_message(&bucket.s3(
        dir.path(),
        &[
            "push",
            "--local-file-path",
            "nope.parquet",
            "--s3-file-path",
            "nope.parquet",
        ],
    ));
    assert!(
        stderr.contains("no such local file or directory: nope.parquet"),
        "{stderr}"
    );

    let stderr = error_message(&bucket.s3(
        dir.path(),
        &[
            "pull",
            "--s3-file-path",
            "models/none.npy",
            "--local-file-path",
            "none.npy",
        ],
    ));
    assert!(
        stderr.contains(&format!(
            "no object `models/none.npy` in bucket `{}`",
            bucket.name
        )),
        "{stderr}"
    );
    let stderr = error_message(&bucket.s3(
        dir.path(),
        &[
            "pull",
            "--s3-file-path",
            "models/",
            "--local-file-path",
            "models",
        ],
    ));
    assert!(stderr.contains("no objects under `models/`"), "{stderr}");
    assert!(
        entries(dir.path()).is_empty(),
        "left behind: {:?}",
        entries(dir.path())
    );
}

#[test]
fn a_refused_connection_fails_at_once_and_names_the_endpoint() {
    // Bind and drop: the port is then very likely closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let stderr = error_message(&recsys_s3(
        dir.path(),
        &[
            ("AWS_ACCESS_KEY_ID", server.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", server.secret_key.clone()),
            ("AWS_ENDPOINT_URL", endpoint.clone()),
            ("S3_BUCKET_NAME", "any".to_string()),
        ],
        &["contents"],
    ));
    assert!(
        stderr.contains(&format!("cannot reach the S3 endpoint {endpoint}")),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_endpoint_that_never_accepts_times_out_instead_of_hanging() {
    // A listener whose accept queue is full: the kernel drops further SYNs, so
    // a connect hangs, as with a firewalled host.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let mut held = Vec::new();
    loop {
        match TcpStream::connect_timeout(&address, Duration::from_millis(300)) {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
        assert!(held.len() < 10_000, "the accept queue never filled");
    }
    let endpoint = format!("http://{address}");
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let stderr = error_message(&recsys_s3(
        dir.path(),
        &[
            ("AWS_ACCESS_KEY_ID", server.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", server.secret_key.clone()),
            ("AWS_ENDPOINT_URL", endpoint.clone()),
            ("S3_BUCKET_NAME", "any".to_string()),
        ],
        &["contents"],
    ));
    let elapsed = started.elapsed();
    assert!(
        stderr.contains(&format!("cannot reach the S3 endpoint {endpoint}")),
        "{stderr}"
    );
    assert!(stderr.contains("timed out"), "{stderr}");
    // Three attempts of a 3 s connect timeout, with back-off between them.
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    drop(listener);
}
