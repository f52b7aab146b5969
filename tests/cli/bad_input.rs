//! Every kind of bad input is rejected with a message naming the file (and the
//! line and column where that applies), a non-zero exit, and nothing written.

use super::*;

const HEADER: &str = "timestamp,visitorid,event,itemid,transactionid\n";
const GOOD: &str = "1433193535886,820159,view,369447,\n1433218757551,168685,addtocart,111530,\n";

fn rejects(file_name: &str, contents: &[u8], expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join(file_name);
    std::fs::write(&events, contents).unwrap();
    let s = Scratch::with_events(&events, "");
    let err = failed(&s.run(&["train"]));
    assert!(
        err.contains(&events.display().to_string()),
        "names the file: {err}"
    );
    for e in expect {
        assert!(err.contains(e), "expected `{e}` in: {err}");
    }
    assert!(
        s.bundles().is_empty(),
        "nothing may be written: {:?}",
        s.bundles()
    );
}

#[test]
fn missing_file() {
    let s = Scratch::with_events(Path::new("/nonexistent/events.csv"), "");
    let err = failed(&s.run(&["train"]));
    assert!(
        err.contains("/nonexistent/events.csv") && err.contains("no such file"),
        "{err}"
    );
}

#[test]
fn every_list_length_flag_is_bounded_before_any_data_is_read() {
    // The events file does not exist: the flag is refused first.
    let s = Scratch::with_events(Path::new("/nonexistent/events.csv"), "");
    for args in [
        &["evaluate", "--k", "0"][..],
        &["evaluate", "--k", "4294967296"],
        &["train", "--evaluate", "--k", "10001"],
        &["tune", "--k", "0"],
        &["recommend", "--user-id", "1", "--k=-3"],
        &["export", "--out", "x", "--similar-k", "100000"],
    ] {
        let err = failed(&s.run(args));
        assert!(
            err.contains("must be a list length from 1 to 10000") && !err.contains("no such file"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_directory_is_not_an_events_file() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.csv");
    std::fs::create_dir(&events).unwrap();
    let s = Scratch::with_events(&events, "");
    let err = failed(&s.run(&["train"]));
    assert!(
        err.contains(&events.display().to_string()) && err.contains("is a directory, not a file"),
        "{err}"
    );
    assert!(s.bundles().is_empty());
}

#[test]
fn missing_or_renamed_column() {
    let text = "timestamp,visitor,event,itemid,transactionid\n1,2,view,3,\n";
    rejects(
        "e.csv",
        text.as_bytes(),
        &["missing column `visitorid`", "visitor"],
    );
}

#[test]
fn non_numeric_id() {
    let text = format!("{HEADER}{GOOD}1433218757551,abc,view,111530,\n");
    rejects(
        "e.csv",
        text.as_bytes(),
        &["line 4", "`visitorid`", "`abc` is not an integer"],
    );
}

#[test]
fn non_numeric_timestamp() {
    let text = format!("{HEADER}2015-06-01,1,view,2,\n{GOOD}");
    rejects(
        "e.csv",
        text.as_bytes(),
        &["line 2", "`timestamp`", "`2015-06-01`"],
    );
}

#[test]
fn unknown_event_kind() {
    let text = format!("{HEADER}{GOOD}1433218757551,5,purchase,111530,\n");
    rejects(
        "e.csv",
        text.as_bytes(),
        &["line 4", "`event`", "unknown event kind `purchase`"],
    );
}

#[test]
fn empty_value() {
    let text = format!("{HEADER}{GOOD}1433218757551,5,view,,\n");
    rejects(
        "e.csv",
        text.as_bytes(),
        &["line 4", "`itemid`", "empty value"],
    );
}

#[test]
fn header_only_and_zero_byte_files() {
    rejects("e.csv", HEADER.as_bytes(), &["no data rows"]);
    rejects("e.csv", b"", &[]);
}

#[test]
fn not_csv_or_not_parquet_at_all() {
    rejects(
        "e.csv",
        &[0xff, 0xfe, 0x00, 0x81, 0x00, 0x00, 0x9c, 0x12],
        &[],
    );
    rejects(
        "e.parquet",
        b"this is not parquet",
        &["not a valid Parquet file"],
    );
}

#[test]
fn unsupported_extension() {
    rejects("e.json", b"{}", &["unsupported file type"]);
}

#[test]
fn skip_policy_drops_and_counts_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("e.csv");
    let good = std::fs::read_to_string(repo().join("data/events_u100_i300.csv")).unwrap();
    let mut text = good.clone();
    text.push_str("1441065600000,1,teleport,2,\n1441065600000,x,view,2,\n");
    std::fs::write(&events, text).unwrap();
    let s = Scratch::with_events(&events, "bad_rows = \"skip\"");
    let out = s.run(&["train"]);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("skipped 2 bad rows"), "{err}");
    assert_eq!(s.bundles().len(), 1);
}

#[test]
fn bad_config_values_name_the_key() {
    let s = Scratch::default_data();
    let text = std::fs::read_to_string(s.path("config.toml")).unwrap();
    std::fs::write(
        s.path("config.toml"),
        text.replace("factors = 64", "factors = \"many\""),
    )
    .unwrap();
    let err = failed(&s.run(&["train"]));
    assert!(err.contains("factors"), "{err}");
}

#[test]
fn unknown_protocol_and_bad_cutoff() {
    let s = Scratch::default_data();
    let err = failed(&s.run(&["train", "--protocol", "lenient"]));
    assert!(err.contains("unknown protocol `lenient`"), "{err}");
    let err = failed(&s.run(&["train", "--cutoff", "2030-01-01"]));
    assert!(
        err.contains("leaves no training or no test events"),
        "{err}"
    );
    let err = failed(&s.run(&["train", "--cutoff", "Sept 1"]));
    assert!(err.contains("YYYY-MM-DD"), "{err}");
    assert!(s.bundles().is_empty());
}
