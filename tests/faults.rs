//! Faults: `recsys` killed outright (SIGKILL, which no process can catch or
//! clean up after) at seeded random moments, and what survives it (issue 17).
//!
//! * `train`, killed in each phase of a run (load, fit, save): the artifacts
//!   directory holds only bundles that load, the newest of them serves, and the
//!   next run removes every temporary directory the killed runs left, saying so
//!   (but for one killed in the instant between creating its directory and
//!   locking it: empty, it waits for the hour rule of `recsys::fsio`).
//! * `pg push`, killed mid-COPY in each `--if-exists` mode: the table is as it
//!   was (same rows, same checksum, no staging table), the server has ended the
//!   killed session, and the next push goes through.
//! * `s3 push`, killed mid-multipart: no object appears; the upload it left on
//!   the server (a killed process cannot abort it) is aborted by the next push
//!   of the same key, which says so.
//!
//! Each test prints a table of the faults it tried and what survived (`cargo
//! test --release faults -- --nocapture`). In CI they are few and small;
//! `bench/faults.sh` runs the same tests at full size with more kills through
//! these variables:
//!
//! | variable | default | what |
//! | --- | --- | --- |
//! | `RECSYS_FAULTS_SEED` | 17 | seeds every kill moment |
//! | `RECSYS_FAULTS_TRAIN_KILLS` | 3 | kills of `train` at random moments; a tenth as many (at least one) are aimed into its load, and as many into its save |
//! | `RECSYS_FAULTS_CONFIG` | the repository's, on the embedded extract | config `train` runs with (data paths absolute) |
//! | `RECSYS_FAULTS_ROUNDS` | 1 | kills of `pg push` in each mode, and of `s3 push` |

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use polars::prelude::*;
use recsys::bundle::Bundle;
use recsys::fsio::{is_temp_name, LOCK_FILE};
use recsys::rng::Rng;

use crate::cli::{ok, Scratch};
use crate::pg::{command_in, database_url, write_parquet, TestSchema};
use crate::s3::{faulty_proxy, noise, recsys_s3_command, Bucket, Fault, Watch, MIB};

/// The knobs of the module docs, read from the environment.
struct Knobs {
    seed: u64,
    train_kills: usize,
    config: Option<PathBuf>,
    rounds: usize,
}

impl Knobs {
    fn from_env() -> Knobs {
        fn number(name: &str, default: u64) -> u64 {
            match std::env::var(name) {
                Ok(text) => text
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={text} is not a whole number")),
                Err(_) => default,
            }
        }
        Knobs {
            seed: number("RECSYS_FAULTS_SEED", 17),
            train_kills: number("RECSYS_FAULTS_TRAIN_KILLS", 3) as usize,
            config: std::env::var_os("RECSYS_FAULTS_CONFIG").map(PathBuf::from),
            rounds: number("RECSYS_FAULTS_ROUNDS", 1) as usize,
        }
    }
}

/// What each fault did and what survived it, printed as an aligned table.
struct Table {
    title: String,
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(title: impl Into<String>, header: &[&'static str]) -> Table {
        Table {
            title: title.into(),
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }

    /// Print the table; a test that fails prints what it had so far.
    fn print(&self) {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("| {} |", padded.join(" | "))
        };
        let mut out = format!("\n{}\n\n", self.title);
        out.push_str(&line(self.header.clone()));
        out.push('\n');
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&line(rule.iter().map(String::as_str).collect()));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
            out.push('\n');
        }
        println!("{out}");
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print();
        }
    }
}

/// Kill `child` with SIGKILL (a no-op if it has ended) and reap it.
fn kill(child: &mut Child) -> ExitStatus {
    let _ = child.kill();
    child.wait().unwrap()
}

fn was_killed(status: ExitStatus) -> bool {
    status.signal() == Some(9)
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

// ---------------------------------------------------------------- train

/// The temporary directories in the artifacts directory `out`.
fn temp_dirs(out: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().path())
        .filter(|p| is_temp_name(&p.file_name().unwrap().to_string_lossy()))
        .collect()
}

/// Check that `out` holds only complete bundles (each loads; those in
/// `checked` were loaded before and are not read again) and temporary
/// directories; returns the bundles' paths, oldest first.
fn complete_bundles(out: &Path, checked: &mut BTreeSet<PathBuf>) -> Vec<PathBuf> {
    let mut bundles = Vec::new();
    for entry in std::fs::read_dir(out).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if is_temp_name(&name) {
            assert!(path.is_dir(), "{} is not a directory", path.display());
            continue;
        }
        if !checked.contains(&path) {
            if let Err(e) = Bundle::load(&path) {
                panic!("{} is not a complete bundle: {e:#}", path.display());
            }
            checked.insert(path.clone());
        }
        bundles.push(path);
    }
    bundles.sort();
    bundles
}

/// `recsys train` of the scratch config into `out`, its stdout and stderr
/// going to `LOG.out` and `LOG.err` in the scratch directory.
fn train_command(scratch: &Scratch, out: &Path, log: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recsys"));
    command
        .args(["train", "--config", &scratch.config(), "--out"])
        .arg(out)
        .current_dir(scratch.dir.path())
        .stdin(Stdio::null())
        .stdout(File::create(scratch.path(&format!("{log}.out"))).unwrap())
        .stderr(File::create(scratch.path(&format!("{log}.err"))).unwrap());
    command
}

/// When to kill a run.
#[derive(Clone, Copy)]
enum Aim {
    /// This long after it starts.
    After(Duration),
    /// This long after it begins writing its bundle's files.
    IntoSave(Duration),
}

/// What watching a run from outside saw: when it had loaded the data, begun
/// writing its bundle's files, finished the bundle, and ended (by the kill or
/// by itself); which phase a kill found it in; and how many temporary
/// directories of earlier runs it removed as it started.
#[derive(Default)]
struct Watched {
    loaded: Option<Duration>,
    saving: Option<Duration>,
    saved: Option<Duration>,
    ended: Duration,
    phase: &'static str,
    removed: usize,
}

/// Whether a run has begun writing its bundle's own files into a temporary
/// directory (one not in `before`) — past the lock file, into the data.
fn writing(out: &Path, before: &BTreeSet<PathBuf>) -> bool {
    temp_dirs(out).difference(before).any(|dir| {
        std::fs::read_dir(dir).into_iter().flatten().any(|e| {
            let name = e.unwrap().file_name();
            !name.to_string_lossy().starts_with(LOCK_FILE)
        })
    })
}

/// Start a run, watch it (every millisecond) and kill it as `aim` says, or
/// let it finish without one. A run that got past loading has removed every
/// temporary directory a killed run left (with a lock file, see
/// `recsys::fsio`) and said so.
fn watch_train(scratch: &Scratch, out: &Path, log: &str, aim: Option<Aim>) -> Watched {
    let before = temp_dirs(out);
    let (out_log, err_log) = (
        scratch.path(&format!("{log}.out")),
        scratch.path(&format!("{log}.err")),
    );
    let says = |path: &Path, what: &str| std::fs::read_to_string(path).unwrap().contains(what);
    let started = Instant::now();
    let mut child = train_command(scratch, out, log).spawn().unwrap();
    let mut seen = Watched::default();
    let status = loop {
        let now = started.elapsed();
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if seen.loaded.is_none() && says(&err_log, "loaded ") {
            seen.loaded = Some(now);
        }
        if seen.saving.is_none() && writing(out, &before) {
            seen.saving = Some(now);
        }
        if seen.saved.is_none() && says(&out_log, "bundle ") {
            seen.saved = Some(now);
        }
        let due = match aim {
            None => false,
            Some(Aim::After(delay)) => now >= delay,
            Some(Aim::IntoSave(delay)) => seen.saving.is_some_and(|s| now >= s + delay),
        };
        if due {
            break kill(&mut child);
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    seen.ended = started.elapsed();
    // Between the last look and the end.
    if seen.loaded.is_none() && says(&err_log, "loaded ") {
        seen.loaded = Some(seen.ended);
    }
    if seen.saved.is_none() && says(&out_log, "bundle ") {
        seen.saved = Some(seen.ended);
    }
    seen.phase = if !was_killed(status) {
        let stderr = std::fs::read_to_string(&err_log).unwrap();
        assert!(status.success(), "{log} failed on its own:\n{stderr}");
        "none: it had finished"
    } else if says(&out_log, "bundle ") {
        "after save"
    } else if temp_dirs(out).difference(&before).next().is_some() {
        "save"
    } else if says(&err_log, "loaded ") {
        "fit"
    } else {
        "load"
    };
    let stderr = std::fs::read_to_string(&err_log).unwrap();
    seen.removed = stderr.matches("recsys: removed ").count();
    if seen.phase != "load" {
        for dir in before.iter().filter(|d| d.join(LOCK_FILE).exists()) {
            let said = format!("recsys: removed {} (", dir.display());
            assert!(stderr.contains(&said), "{log}: no `{said}` in:\n{stderr}");
        }
        let kept = before.iter().filter(|d| d.exists()).count();
        assert_eq!(kept + seen.removed, before.len(), "{log}:\n{stderr}");
    }
    seen
}

/// The first shopper of the event file `config` trains on.
fn a_shopper(config: &Path) -> String {
    let config = recsys::config::Config::load(config).unwrap();
    let text = std::fs::read_to_string(&config.data.events).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = header.iter().position(|h| *h == "visitorid").unwrap();
    lines
        .next()
        .unwrap()
        .split(',')
        .nth(column)
        .unwrap()
        .to_string()
}

#[test]
fn train_killed_at_random_moments_leaves_only_complete_bundles() {
    let knobs = Knobs::from_env();
    let scratch = Scratch::default_data();
    if let Some(config) = &knobs.config {
        std::fs::copy(config, scratch.path("config.toml")).unwrap();
    }
    let out = scratch.path("artifacts");
    let out_text = out.display().to_string();
    let shopper = a_shopper(&scratch.path("config.toml"));
    let mut checked = BTreeSet::new();
    // Kills aimed at the short phases (loading; writing the bundle), a tenth
    // of the random ones each, at least one.
    let aimed = (knobs.train_kills / 10).max(1);
    let mut table = Table::new(
        format!(
            "recsys train killed with SIGKILL (seed {}): {} random moments over a measured run, \
             {aimed} aimed into the load and {aimed} into the save",
            knobs.seed, knobs.train_kills
        ),
        &[
            "fault",
            "killed at",
            "phase",
            "complete bundles (all load)",
            "temp dirs it removed (said)",
            "temp dirs left",
            "newest serves",
        ],
    );

    // A whole run first: a bundle to keep serving, and when each phase ends.
    let reference = watch_train(&scratch, &out, "reference", None);
    let (Some(loaded), Some(saved)) = (reference.loaded, reference.saved) else {
        panic!("the reference run did not load and save");
    };
    // A save of milliseconds may pass between two looks.
    let saving = reference.saving.unwrap_or(saved);
    let run_time = reference.ended;
    table.row(vec![
        "none (reference run)".into(),
        format!(
            "ran {} (loaded at {}, wrote the bundle {} to {})",
            seconds(run_time),
            seconds(loaded),
            seconds(saving),
            seconds(saved)
        ),
        "-".into(),
        complete_bundles(&out, &mut checked).len().to_string(),
        reference.removed.to_string(),
        temp_dirs(&out).len().to_string(),
        "-".into(),
    ]);

    // Spread over the run: random kill i lands at a random moment of its own
    // 1/n-th of it; the aimed ones at random moments of their phase.
    let mut rng = Rng::new(knobs.seed);
    let n = knobs.train_kills;
    // (name, when, the phase it is aimed at, tries left to hit it).
    let mut aims: VecDeque<(String, Aim, Option<&str>, u32)> = (0..n)
        .map(|i| {
            let share = (i as f64 + rng.next_f64()) / n as f64;
            let aim = Aim::After(run_time.mul_f64(share));
            (format!("kill {}", i + 1), aim, None, 0)
        })
        .collect();
    for i in 0..aimed {
        let aim = Aim::After(loaded.mul_f64(0.9 * rng.next_f64()));
        aims.push_back((format!("kill in load {}", i + 1), aim, Some("load"), 2));
    }
    let save_time = saved.saturating_sub(saving);
    for i in 0..aimed {
        let aim = Aim::IntoSave(save_time.mul_f64(0.8 * rng.next_f64()));
        aims.push_back((format!("kill in save {}", i + 1), aim, Some("save"), 2));
    }
    let mut hit = 0;
    while let Some((name, aim, want, tries)) = aims.pop_front() {
        let killed = watch_train(&scratch, &out, &name.replace(' ', "-"), Some(aim));
        let bundles = complete_bundles(&out, &mut checked);
        let newest = bundles.last().expect("the reference run's bundle is kept");
        let answer = ok(&scratch.run(&[
            "recommend",
            "--user-id",
            &shopper,
            "--k",
            "5",
            "--bundle",
            &out_text,
        ]));
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(
            answer["model_version"].as_str(),
            newest.file_name().unwrap().to_str(),
            "the newest complete bundle answers: {answer}"
        );
        assert!(
            !answer["recommendations"].as_array().unwrap().is_empty(),
            "{answer}"
        );
        table.row(vec![
            name.clone(),
            seconds(killed.ended),
            killed.phase.into(),
            bundles.len().to_string(),
            killed.removed.to_string(),
            temp_dirs(&out).len().to_string(),
            format!("yes ({})", newest.file_name().unwrap().to_string_lossy()),
        ]);
        match want {
            Some(phase) if phase == killed.phase => hit += 1,
            // A phase of milliseconds on small data, and no two runs alike:
            // aim earlier into it, at once (the save kills come last, so that
            // the final run finds what the last one left).
            Some(phase) if tries > 0 => {
                let again = match aim {
                    Aim::After(delay) => Aim::After(delay / 2),
                    Aim::IntoSave(delay) => Aim::IntoSave(delay / 2),
                };
                aims.push_front((format!("{name}, again"), again, Some(phase), tries - 1));
            }
            Some(phase) => panic!("kills aimed into the {phase} missed it"),
            None => {}
        }
    }
    assert_eq!(hit, 2 * aimed);

    // The next run cleans up what the last killed one left, at once. A run killed
    // in the instant between creating its directory and locking it leaves one
    // with no lock to ask and nothing in it: that goes after an hour.
    let (locked, unlocked): (Vec<PathBuf>, Vec<PathBuf>) = temp_dirs(&out)
        .into_iter()
        .partition(|dir| dir.join(LOCK_FILE).exists());
    assert!(!locked.is_empty());
    let next = scratch.run(&["train", "--out", &out_text]);
    ok(&next);
    let stderr = String::from_utf8_lossy(&next.stderr);
    for dir in &locked {
        let said = format!("recsys: removed {} (", dir.display());
        assert!(stderr.contains(&said), "no `{said}` in:\n{stderr}");
    }
    let kept: Vec<PathBuf> = temp_dirs(&out).into_iter().collect();
    assert_eq!(kept, unlocked);
    for dir in &kept {
        let files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with(LOCK_FILE))
            .collect();
        assert!(files.is_empty(), "{} holds {files:?}", dir.display());
    }
    let bundles = complete_bundles(&out, &mut checked);
    let evaluated = ok(&scratch.run(&["evaluate", "--k", "10", "--bundle", &out_text]));
    assert!(evaluated.contains("two_stage"), "{evaluated}");
    table.row(vec![
        "none (next run)".into(),
        "-".into(),
        "-".into(),
        bundles.len().to_string(),
        locked.len().to_string(),
        match kept.len() {
            0 => "0".to_string(),
            n => format!("{n} (empty, killed before it locked: kept for an hour)"),
        },
        "yes; evaluate runs on it".into(),
    ]);
    table.print();
}

// ---------------------------------------------------------------- pg push

/// Rows of the file whose push is killed: enough for a COPY of a second or two.
const PG_ROWS: usize = 1_500_000;

/// `rows` rows of an events-like table; `seed` varies the values.
fn pg_frame(rows: usize, seed: i64) -> DataFrame {
    let ids: Vec<i64> = (0..rows as i64).collect();
    let users: Vec<i64> = ids.iter().map(|i| (i * 7919 + seed) % 100_003).collect();
    let scores: Vec<f64> = ids
        .iter()
        .map(|i| ((i * 31 + seed) % 1000) as f64 / 7.0)
        .collect();
    let labels: Vec<String> = ids.iter().map(|i| format!("item-{}", i % 977)).collect();
    DataFrame::new(
        rows,
        vec![
            Series::new("id".into(), ids).into(),
            Series::new("user_id".into(), users).into(),
            Series::new("score".into(), scores).into(),
            Series::new("label".into(), labels).into(),
        ],
    )
    .unwrap()
}

/// Row count and a checksum of every row of `table`, or `None` when it does not exist.
fn pg_contents(schema: &mut TestSchema, table: &str) -> Option<(i64, i64)> {
    if !schema.exists(table) {
        return None;
    }
    let row = schema
        .client
        .query_one(
            &format!(
                "SELECT count(*), coalesce(sum(hashtext(t::text)::bigint), 0)::bigint FROM {} t",
                schema.table(table)
            ),
            &[],
        )
        .unwrap();
    Some((row.get(0), row.get(1)))
}

/// The backend running a COPY into the schema and the rows it has taken.
fn pg_copy_progress(schema: &mut TestSchema) -> Option<(i32, i64)> {
    let pattern = format!("COPY \"{}\".%", schema.name);
    schema
        .client
        .query_opt(
            "SELECT a.pid, p.tuples_processed FROM pg_stat_progress_copy p \
             JOIN pg_stat_activity a ON a.pid = p.pid WHERE a.query LIKE $1",
            &[&pattern],
        )
        .unwrap()
        .map(|row| (row.get(0), row.get(1)))
}

#[test]
fn pg_push_killed_mid_copy_leaves_the_table_as_it_was() {
    let knobs = Knobs::from_env();
    let mut schema = TestSchema::new("faults");
    let old_file = schema.path("old.parquet");
    let big_file = schema.path("big.parquet");
    write_parquet(&old_file, &mut pg_frame(1000, 1));
    write_parquet(&big_file, &mut pg_frame(PG_ROWS, 2));
    let url = database_url();
    let mut rng = Rng::for_stream(knobs.seed, 2);
    let mut table = Table::new(
        format!(
            "recsys pg push of {PG_ROWS} rows killed with SIGKILL mid-COPY (seed {})",
            knobs.seed
        ),
        &[
            "fault",
            "killed at",
            "table afterwards",
            "server session",
            "next push",
        ],
    );
    let mut mid_copy = 0;
    for round in 0..knobs.rounds {
        for mode in ["create", "append", "replace"] {
            let name = format!("events_{mode}_{round}");
            let qualified = schema.table(&name);
            if mode != "create" {
                ok(&schema.pg(&[
                    "push",
                    "--file",
                    old_file.to_str().unwrap(),
                    "--table-name",
                    &qualified,
                ]));
            }
            let before = pg_contents(&mut schema, &name);
            let mut args = vec![
                "pg",
                "push",
                "--file",
                big_file.to_str().unwrap(),
                "--table-name",
                qualified.as_str(),
                "--database-url",
                url.as_str(),
            ];
            if mode != "create" {
                args.extend(["--if-exists", mode]);
            }
            let target = (PG_ROWS as f64 * (0.05 + 0.9 * rng.next_f64())) as i64;
            let mut child = command_in(schema.dir.path(), &args, &[])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut seen = None;
            while child.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "the COPY never got going");
                seen = pg_copy_progress(&mut schema).or(seen);
                if seen.is_some_and(|(_, rows)| rows >= target) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let status = kill(&mut child);
            let killed_at = Instant::now();
            let fault = format!("pg push --if-exists {mode}");
            let Some((pid, rows)) = seen.filter(|_| was_killed(status)) else {
                // It finished first: nothing was killed, the push is whole.
                assert!(status.success(), "{fault} failed on its own");
                table.row(vec![
                    fault,
                    "none: it had finished".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]);
                schema.exec(&format!("DROP TABLE {qualified}"));
                continue;
            };
            mid_copy += 1;
            // The server sees the connection close and rolls back; wait for
            // the session to be gone, so no lock of it is left either.
            loop {
                let alive: i64 = schema
                    .client
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                        &[&pid],
                    )
                    .unwrap()
                    .get(0);
                if alive == 0 {
                    break;
                }
                assert!(
                    killed_at.elapsed() < Duration::from_secs(30),
                    "the killed push's session never ended"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            let ended_in = killed_at.elapsed();
            assert_eq!(
                pg_contents(&mut schema, &name),
                before,
                "{fault}: the table changed"
            );
            let staging: Vec<String> = schema
                .tables()
                .into_iter()
                .filter(|t| !t.starts_with("events_"))
                .collect();
            assert!(staging.is_empty(), "{fault} left {staging:?}");

            // The next run goes through, with nothing of the killed one in the way.
            let next = command_in(schema.dir.path(), &args, &[]).output().unwrap();
            ok(&next);
            let expected = PG_ROWS as i64 + if mode == "append" { 1000 } else { 0 };
            assert_eq!(schema.count(&name), expected);
            table.row(vec![
                fault,
                format!("row {rows} of {PG_ROWS}"),
                match before {
                    None => "does not exist, as before".into(),
                    Some((count, _)) => format!("as before: {count} rows, same checksum"),
                },
                format!(
                    "ended {:.0} ms after the kill",
                    ended_in.as_secs_f64() * 1e3
                ),
                format!("{expected} rows"),
            ]);
        }
    }
    table.print();
    assert!(mid_copy > 0, "no push was killed mid-COPY");
}

// ---------------------------------------------------------------- s3 push

#[test]
fn s3_push_killed_mid_multipart_leaves_nothing_after_the_next_push() {
    let knobs = Knobs::from_env();
    let bucket = Bucket::new();
    let dir = tempfile::tempdir().unwrap();
    let size = 40 * MIB;
    std::fs::write(dir.path().join("big.bin"), noise(size, 11)).unwrap();
    let mut rng = Rng::for_stream(knobs.seed, 3);
    let mut table = Table::new(
        format!(
            "recsys s3 push of 40 MiB in 8 parts killed with SIGKILL mid-upload (seed {})",
            knobs.seed
        ),
        &[
            "fault",
            "killed after",
            "left on the server",
            "next push of the key",
            "afterwards",
        ],
    );
    for round in 0..knobs.rounds {
        let key = format!("faults/{round}/big.bin");
        let args = [
            "push",
            "--local-file-path",
            "big.bin",
            "--s3-file-path",
            key.as_str(),
            "--multipart-threshold-mb",
            "8",
            "--part-size-mb",
            "5",
            "--concurrency",
            "2",
        ];
        // The upload stalls once `limit` bytes have gone through (a moment
        // somewhere in it); the push is killed there, parts on the server.
        let limit = MIB as u64 + rng.below((size - 2 * MIB) as u64);
        let proxy = faulty_proxy(&bucket.server.endpoint, Watch::Uploads, limit, Fault::Stall);
        let mut env = bucket.env();
        env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL", proxy.endpoint.clone()));
        let mut child = recsys_s3_command(dir.path(), &env, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while proxy.forwarded.load(Ordering::SeqCst) < limit {
            assert!(Instant::now() < deadline, "the upload never got going");
            assert!(child.try_wait().unwrap().is_none(), "the push ended");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(300));
        let sent = proxy.forwarded.load(Ordering::SeqCst);
        assert!(was_killed(kill(&mut child)));
        // A killed push cannot abort its upload: its parts stay, unseen by a listing.
        let left = bucket.unfinished_uploads();
        assert_eq!(left, 1, "the killed push's upload");
        assert!(
            !bucket.keys().contains(&key),
            "no object from a killed push"
        );

        let next = bucket.s3(dir.path(), &args);
        ok(&next);
        let stderr = String::from_utf8_lossy(&next.stderr);
        assert!(
            stderr.contains("aborted multipart upload") && stderr.contains(&key),
            "{stderr}"
        );
        assert_eq!(bucket.unfinished_uploads(), 0, "an upload was left");
        assert!(bucket.keys().contains(&key));
        assert!(bucket.etag(&key).trim_matches('"').ends_with("-8"));
        table.row(vec![
            format!("s3 push, round {}", round + 1),
            format!("{:.1} MiB sent", sent as f64 / MIB as f64),
            format!("{left} unfinished upload, no object"),
            "completes; aborts the left upload, says so".into(),
            "0 unfinished uploads; object whole (8 parts)".into(),
        ]);
    }
    table.print();
}
