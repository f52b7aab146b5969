//! `recsys pg` against a real PostgreSQL server.
//!
//! The server is the one `.ci/services/up` starts (127.0.0.1:5432, trust auth,
//! database `test`); `RECSYS_TEST_DATABASE_URL` points elsewhere. A server
//! that does not answer fails the tests, with a message saying how to start
//! it: a silent skip would hide that nothing was tested. Every test works in
//! a schema of its own, dropped (with everything in it) when the test ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use polars::prelude::*;

use crate::cli::{failed, ok, repo, Scratch};

/// libpq variables the binary would otherwise pick up from the machine.
const LIBPQ_VARS: [&str; 9] = [
    "DATABASE_URL",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGCONNECT_TIMEOUT",
];

pub(crate) fn database_url() -> String {
    std::env::var("RECSYS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// The test server's URL with one more query parameter.
fn with_param(param: &str) -> String {
    let url = database_url();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

fn sql_client() -> postgres::Client {
    let url = database_url();
    postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {url} does not answer ({e}); start it with `.ci/services/up` \
             (or point RECSYS_TEST_DATABASE_URL at a server)"
        )
    })
}

/// A schema of the test's own, dropped with its tables at the end.
pub(crate) struct TestSchema {
    pub(crate) name: String,
    pub(crate) client: postgres::Client,
    /// Working directory for the binary: empty, so no config.toml is found.
    pub(crate) dir: tempfile::TempDir,
}

impl TestSchema {
    pub(crate) fn new(test: &str) -> TestSchema {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "recsys_test_{}_{}_{test}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut client = sql_client();
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .unwrap();
        TestSchema {
            name,
            client,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `schema.table`, as given to `--table-name`.
    pub(crate) fn table(&self, table: &str) -> String {
        format!("{}.{table}", self.name)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Run `recsys pg ARGS --database-url <test server>` with no libpq variables set.
    pub(crate) fn pg(&self, args: &[&str]) -> Output {
        let url = database_url();
        let mut all = vec!["pg"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--database-url", &url]);
        run_in(self.dir.path(), &all, &[])
    }

    pub(crate) fn exec(&mut self, sql: &str) {
        self.client
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub(crate) fn count(&mut self, table: &str) -> i64 {
        self.client
            .query_one(&format!("SELECT count(*) FROM {}", self.table(table)), &[])
            .unwrap()
            .get(0)
    }

    pub(crate) fn exists(&mut self, table: &str) -> bool {
        self.client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&self.table(table)])
            .unwrap()
            .get(0)
    }

    /// `column type` of every column, as Postgres prints the types.
    fn column_types(&mut self, table: &str) -> Vec<String> {
        self.client
            .query(
                "SELECT attname::text || ' ' || format_type(atttypid, atttypmod) \
                 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 \
                 AND NOT attisdropped ORDER BY attnum",
                &[&self.table(table)],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    pub(crate) fn tables(&mut self) -> Vec<String> {
        self.client
            .query(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
                &[&self.name],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let _ = self
            .client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

/// Run the binary in `dir` with the libpq variables removed and `env` set.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command_in(dir, args, env).output().unwrap()
}

/// The command [`run_in`] runs, for a test that starts it and stops it.
pub(crate) fn command_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recsys"));
    command.args(args).current_dir(dir).stdin(Stdio::null());
    for var in LIBPQ_VARS {
        command.env_remove(var);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

pub(crate) fn write_parquet(path: &Path, frame: &mut DataFrame) {
    let file = std::fs::File::create(path).unwrap();
    ParquetWriter::new(file).finish(frame).unwrap();
}

fn read_parquet(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

/// Every type `pg load` maps, with nulls in each column.
fn all_types_frame() -> DataFrame {
    let micros = |values: [Option<i64>; 3], zone: Option<TimeZone>| {
        Int64Chunked::from_iter_options("".into(), values.into_iter())
            .into_datetime(TimeUnit::Microseconds, zone)
            .into_series()
    };
    let amount = Int128Chunked::from_iter_options(
        "amount".into(),
        [Some(1234i128), None, Some(-5)].into_iter(),
    )
    .into_decimal_unchecked(12, 2)
    .into_series();
    let day =
        Int32Chunked::from_iter_options("day".into(), [Some(16_587), Some(-1), None].into_iter())
            .into_date()
            .into_series();
    DataFrame::new(
        3,
        vec![
            Series::new("small".into(), [Some(1i16), None, Some(i16::MIN)]).into(),
            Series::new("medium".into(), [Some(i32::MAX), Some(-7), None]).into(),
            Series::new("big".into(), [None, Some(i64::MIN), Some(355_908i64)]).into(),
            Series::new("ratio".into(), [Some(1.5f32), None, Some(-0.1f32)]).into(),
            Series::new("score".into(), [Some(0.1f64), Some(1e-300), None]).into(),
            amount.into(),
            Series::new(
                "name".into(),
                [Some("émile \"quoted\", comma"), Some(""), None],
            )
            .into(),
            Series::new("flag".into(), [Some(true), None, Some(false)]).into(),
            micros(
                [Some(1_433_221_332_117_123), None, Some(-86_400_000_001)],
                None,
            )
            .with_name("seen_at".into())
            .into(),
            micros(
                [None, Some(0), Some(946_684_800_000_000)],
                Some(TimeZone::UTC),
            )
            .with_name("paid_at".into())
            .into(),
            day.into(),
        ],
    )
    .unwrap()
}

fn assert_same_frame(got: &DataFrame, expected: &DataFrame) {
    assert_eq!(got.schema(), expected.schema(), "schemas differ");
    assert!(
        got.equals_missing(expected),
        "rows differ\n--- expected\n{expected}\n--- got\n{got}"
    );
}

#[test]
fn a_parquet_file_pushed_and_loaded_back_keeps_rows_types_and_nulls() {
    let mut db = TestSchema::new("round_trip");
    let mut frame = all_types_frame();
    let file = db.path("all_types.parquet");
    write_parquet(&file, &mut frame);
    let table = db.table("all_types");

    let out = ok(&db.pg(&[
        "push",
        "--file",
        file.to_str().unwrap(),
        "--table-name",
        &table,
    ]));
    assert!(
        out.contains("created table") && out.contains("3 rows"),
        "{out}"
    );
    assert_eq!(
        db.column_types("all_types"),
        [
            "small smallint",
            "medium integer",
            "big bigint",
            "ratio real",
            "score double precision",
            "amount numeric(12,2)",
            "name text",
            "flag boolean",
            "seen_at timestamp without time zone",
            "paid_at timestamp with time zone",
            "day date",
        ]
    );
    // What a SQL user sees: the values themselves, nulls as NULL, '' kept apart from NULL.
    let row = db
        .client
        .query_one(
            &format!(
                "SELECT amount::text, seen_at::text, day::text, name IS NULL, name = '' \
                 FROM {table} WHERE small IS NULL"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0), None);
    assert_eq!(row.get::<_, Option<String>>(1), None);
    assert_eq!(row.get::<_, String>(2), "1969-12-31");
    assert_eq!(row.get::<_, Option<bool>>(3), Some(false));
    assert_eq!(row.get::<_, Option<bool>>(4), Some(true));
    let first = db
        .client
        .query_one(
            &format!("SELECT amount::text, seen_at::text FROM {table} WHERE small = 1"),
            &[],
        )
        .unwrap();
    assert_eq!(first.get::<_, String>(0), "12.34");
    assert_eq!(first.get::<_, String>(1), "2015-06-02 05:02:12.117123");

    let save_dir = db.path("out");
    let out = ok(&db.pg(&[
        "load",
        "--table-name",
        &table,
        "--save-dir",
        save_dir.to_str().unwrap(),
    ]));
    let saved = save_dir.join(format!("{table}.parquet"));
    assert!(out.contains("saved 3 rows"), "{out}");
    assert_same_frame(&read_parquet(&saved), &frame);
    // Only the file itself: the temporary name is gone.
    assert_eq!(std::fs::read_dir(&save_dir).unwrap().count(), 1);
}

#[test]
fn loading_maps_other_types_to_text_and_keeps_an_empty_tables_schema() {
    let mut db = TestSchema::new("other_types");
    let table = db.table("misc");
    db.exec(&format!(
        "CREATE TABLE {table} (id integer, code uuid, doc jsonb, total numeric, \
         short varchar(5), fixed char(3), at time);
         INSERT INTO {table} VALUES (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{\"k\": [1, 2]}}', \
         12345678901234567890.5, 'abc', 'x', '13:45:01.5'), (2, NULL, NULL, NULL, NULL, NULL, NULL)"
    ));
    let out = db.pg(&["load", "--table-name", &table, "--save-dir", "."]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`code`: uuid is saved as text"), "{stderr}");
    assert!(
        stderr.contains("`total`: numeric without a precision"),
        "{stderr}"
    );
    let frame = read_parquet(&db.path(&format!("{table}.parquet")));
    let dtypes: Vec<DataType> = frame.dtypes();
    assert_eq!(
        dtypes,
        [
            DataType::Int32,
            DataType::String,
            DataType::String,
            DataType::Float64,
            DataType::String,
            DataType::String,
            DataType::Time,
        ]
    );
    let code = frame.column("code").unwrap().str().unwrap().get(0);
    assert_eq!(code, Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
    let total = frame.column("total").unwrap().f64().unwrap().get(0);
    assert_eq!(total, Some(12345678901234567890.5));
    assert_eq!(
        frame.column("fixed").unwrap().str().unwrap().get(0),
        Some("x  ")
    );
    assert_eq!(frame.column("doc").unwrap().null_count(), 1);

    let empty = db.table("empty");
    db.exec(&format!(
        "CREATE TABLE {empty} (a bigint, b text, c timestamptz)"
    ));
    ok(&db.pg(&["load", "--table-name", &empty, "--save-dir", "."]));
    let frame = read_parquet(&db.path(&format!("{empty}.parquet")));
    assert_eq!(frame.height(), 0);
    assert_eq!(
        frame.dtypes(),
        [
            DataType::Int64,
            DataType::String,
            DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        ]
    );
}

#[test]
fn a_failed_push_leaves_the_database_as_it_was() {
    let mut db = TestSchema::new("atomic");
    let table = db.table("recs");
    let good = db.path("good.csv");
    std::fs::write(
        &good,
        "user_id,item_id,score\n1,10,0.5\n1,11,0.25\n2,10,0.75\n",
    )
    .unwrap();
    ok(&db.pg(&[
        "push",
        "--file",
        good.to_str().unwrap(),
        "--table-name",
        &table,
    ]));
    let before = db.column_types("recs");

    // Replace with a file whose second row the server rejects (text cannot hold NUL):
    // the error names the row, and the old table is intact.
    let mut bad = DataFrame::new(
        3,
        vec![
            Series::new("user_id".into(), [7i64, 8, 9]).into(),
            Series::new("label".into(), ["fine", "nul\0byte", "never reached"]).into(),
        ],
    )
    .unwrap();
    let bad_file = db.path("bad.parquet");
    write_parquet(&bad_file, &mut bad);
    let err = failed(&db.pg(&[
        "push",
        "--file",
        bad_file.to_str().unwrap(),
        "--table-name",
        &table,
        "--if-exists",
        "replace",
    ]));
    assert!(err.contains("0x00") && err.contains("line 2"), "{err}");
    assert_eq!(db.count("recs"), 3);
    assert_eq!(db.column_types("recs"), before);
    assert_eq!(db.tables(), ["recs"], "no staging table is left behind");

    // --if-exists fail (the default) on an existing table.
    let err = failed(&db.pg(&[
        "push",
        "--file",
        good.to_str().unwrap(),
        "--table-name",
        &table,
    ]));
    assert!(
        err.contains("already exists") && err.contains("--if-exists"),
        "{err}"
    );
    assert_eq!(db.count("recs"), 3);

    // Append rows whose `score` is text: rejected before anything is copied.
    let wrong = db.path("wrong.csv");
    std::fs::write(&wrong, "user_id,item_id,score\n3,12,0.1\n3,13,high\n").unwrap();
    let err = failed(&db.pg(&[
        "push",
        "--file",
        wrong.to_str().unwrap(),
        "--table-name",
        &table,
        "--if-exists",
        "append",
    ]));
    assert!(err.contains("`score`"), "{err}");
    assert_eq!(db.count("recs"), 3);

    // A new table from a bad file is not left half-made.
    let err = failed(&db.pg(&[
        "push",
        "--file",
        bad_file.to_str().unwrap(),
        "--table-name",
        &db.table("fresh"),
    ]));
    assert!(err.contains("0x00"), "{err}");
    assert!(!db.exists("fresh"));
}

#[test]
fn append_adds_rows_and_replace_swaps_the_table() {
    let mut db = TestSchema::new("modes");
    let table = db.table("recs");
    let first_file = db.path("first.csv");
    std::fs::write(&first_file, "user_id,item_id\n1,10\n2,20\n").unwrap();
    let more = db.path("more.csv");
    // Columns in another order, and a subset is fine too: matched by name.
    std::fs::write(&more, "item_id,user_id\n30,3\n40,4\n50,5\n").unwrap();
    ok(&db.pg(&[
        "push",
        "--file",
        first_file.to_str().unwrap(),
        "--table-name",
        &table,
    ]));
    let out = ok(&db.pg(&[
        "push",
        "--file",
        more.to_str().unwrap(),
        "--table-name",
        &table,
        "--if-exists",
        "append",
    ]));
    assert!(
        out.contains("appended to table") && out.contains("3 rows"),
        "{out}"
    );
    assert_eq!(db.count("recs"), 5);
    let sum: i64 = db
        .client
        .query_one(
            &format!("SELECT sum(user_id * item_id)::bigint FROM {table}"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(sum, 10 + 40 + 90 + 160 + 250);

    let other = db.path("other.csv");
    std::fs::write(&other, "sku,price\nA-1,9.99\n").unwrap();
    let out = ok(&db.pg(&[
        "push",
        "--file",
        other.to_str().unwrap(),
        "--table-name",
        &table,
        "--if-exists",
        "replace",
    ]));
    assert!(out.contains("replaced table"), "{out}");
    assert_eq!(db.count("recs"), 1);
    assert_eq!(
        db.column_types("recs"),
        ["sku text", "price double precision"]
    );
    assert_eq!(db.tables(), ["recs"]);

    // Appending a column the table does not have names it.
    let err = failed(&db.pg(&[
        "push",
        "--file",
        first_file.to_str().unwrap(),
        "--table-name",
        &table,
        "--if-exists",
        "append",
    ]));
    assert!(err.contains("no column `user_id`, `item_id`"), "{err}");

    // A name without a schema, found through search_path in the second of two
    // schemas: replaced where it is, not created in the first one.
    let mut first = TestSchema::new("modes_first");
    let url = with_param(&format!(
        "options=-c%20search_path%3D{},{}",
        first.name, db.name
    ));
    ok(&run_in(
        db.dir.path(),
        &[
            "pg",
            "push",
            "--file",
            first_file.to_str().unwrap(),
            "--table-name",
            "recs",
            "--if-exists",
            "replace",
            "--database-url",
            &url,
        ],
        &[],
    ));
    assert_eq!(
        db.column_types("recs"),
        ["user_id bigint", "item_id bigint"]
    );
    assert_eq!(db.count("recs"), 2);
    assert!(
        first.tables().is_empty(),
        "nothing was created in {}",
        first.name
    );
}

#[test]
fn show_prints_the_first_rows_the_count_and_the_types() {
    let db = TestSchema::new("show");
    let table = db.table("events");
    let file = db.path("events.csv");
    std::fs::write(
        &file,
        "visitorid,event,itemid\n257597,view,355908\n111016,addtocart,7\n3,view,\n",
    )
    .unwrap();
    ok(&db.pg(&[
        "push",
        "--file",
        file.to_str().unwrap(),
        "--table-name",
        &table,
    ]));
    let out = ok(&db.pg(&["show", "--table-name", &table, "--limit", "2"]));
    let expected_head = format!("{table} (table): 3 rows, 3 columns");
    assert!(out.starts_with(&expected_head), "{out}");
    assert!(out.contains(" visitorid | bigint\n"), "{out}");
    assert!(out.contains(" event     | text\n"), "{out}");
    assert!(out.contains(" visitorid | event     | itemid\n"), "{out}");
    assert!(out.contains("    257597 | view      | 355908\n"), "{out}");
    assert!(out.contains("    111016 | addtocart |      7\n"), "{out}");
    assert!(
        !out.contains("     3 | view"),
        "limit 2 shows two rows\n{out}"
    );
    assert!(out.trim_end().ends_with("(2 of 3 rows)"), "{out}");
}

#[test]
fn drop_asks_on_a_terminal_refuses_without_one_and_drops_with_yes() {
    let mut db = TestSchema::new("drop");
    let table = db.table("old");
    db.exec(&format!(
        "CREATE TABLE {table} (a int); INSERT INTO {table} VALUES (1)"
    ));

    let err = failed(&db.pg(&["drop", "--table-name", &table]));
    assert!(
        err.contains("not a terminal") && err.contains("--yes"),
        "{err}"
    );
    assert!(db.exists("old"));

    // On a terminal (`script` gives the command one) the answer decides.
    let dir = db.dir.path().to_path_buf();
    let on_terminal = |answer: &str| {
        let command = format!(
            "{} pg drop --table-name {table} --database-url {}",
            env!("CARGO_BIN_EXE_recsys"),
            database_url()
        );
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(&dir)
            .envs(LIBPQ_VARS.iter().map(|v| (v, "")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("`script` (util-linux) runs a command on a pseudo-terminal");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said_no = on_terminal("n\n");
    assert!(
        said_no.contains("(1 rows)")
            && said_no.contains("[y/N]")
            && said_no.contains("was not dropped"),
        "{said_no}"
    );
    assert!(db.exists("old"));

    let out = ok(&db.pg(&["drop", "--table-name", &table, "--yes"]));
    assert!(out.contains(&format!("dropped table {table}")), "{out}");
    assert!(!db.exists("old"));
    db.exec(&format!("CREATE TABLE {table} (a int)"));
    let said_yes = on_terminal("y\n");
    assert!(
        said_yes.contains(&format!("dropped table {table}")),
        "{said_yes}"
    );
    assert!(!db.exists("old"));

    // Views are not tables: not dropped.
    let view = db.table("v");
    db.exec(&format!("CREATE VIEW {view} AS SELECT 1 AS one"));
    let err = failed(&db.pg(&["drop", "--table-name", &view, "--yes"]));
    assert!(err.contains("is a view, not a table"), "{err}");
    assert!(db.exists("v"));
}

#[test]
fn hostile_table_names_are_rejected_before_any_sql() {
    let mut db = TestSchema::new("hostile");
    let users = db.table("users");
    db.exec(&format!(
        "CREATE TABLE {users} (id int); INSERT INTO {users} VALUES (1)"
    ));
    let file = db.path("x.csv");
    std::fs::write(&file, "a\n1\n").unwrap();
    let hostile = [
        format!("events; DROP TABLE {users}"),
        "x\" OR \"1".to_string(),
        format!("{}.users.extra", db.name),
        "1st".to_string(),
        String::new(),
    ];
    for name in &hostile {
        for args in [
            vec!["show", "--table-name", name],
            vec!["load", "--table-name", name],
            vec!["drop", "--table-name", name, "--yes"],
            vec![
                "push",
                "--file",
                file.to_str().unwrap(),
                "--table-name",
                name,
            ],
        ] {
            let err = failed(&db.pg(&args));
            assert!(
                err.contains(&format!("invalid table name `{name}`")),
                "{args:?}: {err}"
            );
        }
    }
    assert_eq!(db.count("users"), 1);
    assert_eq!(db.tables(), ["users"]);
}

#[test]
fn a_missing_table_is_named() {
    let mut db = TestSchema::new("missing");
    let table = db.table("nope");
    for args in [
        vec!["show", "--table-name", &table],
        vec!["load", "--table-name", &table, "--save-dir", "out"],
        vec!["drop", "--table-name", &table, "--yes"],
    ] {
        let err = failed(&db.pg(&args));
        assert!(
            err.contains(&format!("table {table} does not exist")),
            "{args:?}: {err}"
        );
    }
    assert!(!db.path("out").exists() || std::fs::read_dir(db.path("out")).unwrap().count() == 0);

    // A name that differs only in case gets a suggestion.
    db.exec(&format!("CREATE TABLE {} (a int)", db.table("events")));
    let err = failed(&db.pg(&["show", "--table-name", &db.table("Events")]));
    assert!(
        err.contains("did you mean") && err.contains(&db.table("events")),
        "{err}"
    );
}

#[test]
fn an_unreachable_server_fails_fast_naming_host_and_port() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = failed(&run_in(
        dir.path(),
        &[
            "pg",
            "show",
            "--table-name",
            "events",
            "--database-url",
            "postgres://postgres@127.0.0.1:1/test",
        ],
        &[],
    ));
    assert!(
        err.contains("could not connect to PostgreSQL at postgres@127.0.0.1:1/test"),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "{err}");
    // Same from the libpq variables, which the message names as the source.
    let err = failed(&run_in(
        dir.path(),
        &["pg", "show", "--table-name", "events"],
        &[
            ("PGHOST", "127.0.0.1"),
            ("PGPORT", "1"),
            ("PGUSER", "postgres"),
        ],
    ));
    assert!(err.contains("127.0.0.1:1") && err.contains("PG*"), "{err}");
    // A port that accepts the connection but never answers: given up on
    // after the connect timeout instead of hanging.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!(
        "postgres://postgres@127.0.0.1:{}/test",
        silent.local_addr().unwrap().port()
    );
    let err = failed(&run_in(
        dir.path(),
        &["pg", "show", "--table-name", "events"],
        &[("DATABASE_URL", &silent_url), ("PGCONNECT_TIMEOUT", "1")],
    ));
    let expected = format!("127.0.0.1:{}", silent.local_addr().unwrap().port());
    assert!(
        err.contains(&expected) && err.contains("DATABASE_URL") && err.contains("within 1 s"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn the_connection_comes_from_the_config_or_the_environment() {
    let mut db = TestSchema::new("settings");
    let table = db.table("t");
    db.exec(&format!(
        "CREATE TABLE {table} (a int); INSERT INTO {table} VALUES (42)"
    ));
    let url = database_url();
    let show = ["pg", "show", "--table-name", &table];

    // DATABASE_URL alone (no config.toml in the directory).
    let out = ok(&run_in(db.dir.path(), &show, &[("DATABASE_URL", &url)]));
    assert!(out.contains("1 rows"), "{out}");

    // The default config.toml's [postgres] beats a wrong DATABASE_URL.
    std::fs::write(
        db.path("config.toml"),
        format!("[postgres]\nurl = {url:?}\n"),
    )
    .unwrap();
    let wrong = [("DATABASE_URL", "postgres://postgres@127.0.0.1:1/test")];
    ok(&run_in(db.dir.path(), &show, &wrong));

    // A config named on the command line must exist.
    let err = failed(&run_in(
        db.dir.path(),
        &[
            "pg",
            "show",
            "--table-name",
            &table,
            "--config",
            "absent.toml",
        ],
        &[("DATABASE_URL", &url)],
    ));
    assert!(
        err.contains("absent.toml") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn tls_follows_sslmode() {
    let mut db = TestSchema::new("tls");
    let table = db.table("t");
    db.exec(&format!("CREATE TABLE {table} (a int)"));
    let ssl_on = db
        .client
        .query_one("SHOW ssl", &[])
        .unwrap()
        .get::<_, String>(0)
        == "on";
    let with_mode = |mode: &str| {
        let url = with_param(&format!("sslmode={mode}"));
        run_in(
            db.dir.path(),
            &["pg", "show", "--table-name", &table, "--database-url", &url],
            &[],
        )
    };
    if ssl_on {
        // Encrypted; the server's (self-signed) certificate is not checked in this mode.
        ok(&with_mode("require"));
        // Checked, the test server's certificate is refused: Debian's snakeoil
        // certificate names the machine, not 127.0.0.1 (or is not trusted at all).
        let err = failed(&with_mode("verify-full"));
        assert!(err.to_lowercase().contains("certificate"), "{err}");
    } else {
        let err = failed(&with_mode("require"));
        assert!(err.contains("could not connect"), "{err}");
    }
    ok(&with_mode("disable"));
}

#[test]
fn the_events_table_from_postgres_trains() {
    let db = TestSchema::new("events");
    let table = db.table("events");
    let csv = repo().join("data/events_u100_i300.csv");
    let out = ok(&db.pg(&[
        "push",
        "--file",
        csv.to_str().unwrap(),
        "--table-name",
        &table,
    ]));
    assert!(out.contains("created table"), "{out}");
    let save_dir = db.path("data");
    ok(&db.pg(&[
        "load",
        "--table-name",
        &table,
        "--save-dir",
        save_dir.to_str().unwrap(),
    ]));
    let parquet = save_dir.join(format!("{table}.parquet"));
    let original = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .try_into_reader_with_file_path(Some(csv))
        .unwrap()
        .finish()
        .unwrap();
    let loaded = read_parquet(&parquet);
    assert_eq!(loaded.shape(), original.shape());
    assert_eq!(loaded.get_column_names(), original.get_column_names());

    let scratch = Scratch::with_events(&parquet, "");
    let out = ok(&scratch.run(&["train"]));
    assert!(!out.is_empty());
    assert_eq!(scratch.bundles().len(), 1, "one bundle written");
}
