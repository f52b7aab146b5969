//! PostgreSQL tables: look at them, save them to Parquet, publish files into them, drop them.
//!
//! The pipelines keep their tables (events, recommendations, candidates) in
//! Postgres; these functions move them between the database and the Parquet /
//! CSV files the rest of recsys reads, without holding a whole table in memory
//! and without ever leaving the database half-changed.
//!
//! * [`connect`] turns the flag / `[postgres]` / `DATABASE_URL` / libpq
//!   variables into one [`connect::ConnectionSettings`] and opens a connection
//!   (TLS when `sslmode` asks for it, a short connect timeout).
//! * [`TableName`] is the only way a table name reaches SQL: validated
//!   against a strict identifier rule and always quoted.
//! * [`PgType`] maps column types both ways between Postgres and polars.
//! * [`load_table`] streams `COPY (SELECT …) TO STDOUT (FORMAT binary)` into
//!   a Parquet file batch by batch (network, decoding and Parquet encoding
//!   side by side); [`push_file`] creates a table from a file's
//!   schema and `COPY … FROM STDIN (FORMAT binary)`s its rows in, in one
//!   transaction; [`show_table`] and [`drop_table`] do what they say.
//!
//! ```no_run
//! use recsys::storage::pg::{connect, load_table, PgConfig, TableName};
//!
//! let settings = connect::ConnectionSettings::resolve(None, &PgConfig::default(), &|k| std::env::var(k).ok())?;
//! let mut client = connect::connect(&settings)?;
//! let table = TableName::parse("public.events")?;
//! let saved = load_table(&mut client, &settings, &table, std::path::Path::new("data/events.parquet"))?;
//! println!("{} rows", saved.rows);
//! # Ok::<(), anyhow::Error>(())
//! ```

mod binary;
mod catalog;
pub mod connect;
mod ident;
mod load;
mod push;
mod show;
mod types;

use serde::{Deserialize, Serialize};

pub use catalog::{count_rows, drop_table, lookup_table, ColumnInfo, TableInfo};
pub use ident::{quote_ident, TableName};
pub use load::{load_table, Loaded};
pub use push::{push_file, IfExists, Pushed};
pub use show::{show_table, TablePreview};
pub use types::PgType;

/// `[postgres]` of config.toml: where the database is.
///
/// Either `url` (a `postgres://` URL) or the separate fields, or both (the
/// fields then override the URL's parts). Fields left out are filled from the
/// libpq variables (`PGHOST`, `PGUSER`, …) as libpq would.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PgConfig {
    /// Connection URL, e.g. `postgres://user@db.example.com:5432/shop?sslmode=require`.
    /// Not written into bundle manifests, since it may hold a password.
    #[serde(skip_serializing)]
    pub url: Option<String>,
    /// Server host name, IP address, or a Unix-socket directory (starting with `/`).
    pub host: Option<String>,
    /// Server port.
    pub port: Option<u16>,
    /// Role to log in as.
    pub user: Option<String>,
    /// Password; prefer `PGPASSWORD` or a URL kept out of version control.
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// Database name.
    pub dbname: Option<String>,
    /// libpq `sslmode`: `disable`, `allow`, `prefer`, `require`, `verify-ca` or `verify-full`.
    pub sslmode: Option<String>,
    /// Seconds to wait for the server to accept the connection (default 5).
    pub connect_timeout_secs: Option<u64>,
}

impl PgConfig {
    /// True when the section names a server (not only timeouts), so it takes
    /// precedence over `DATABASE_URL`.
    pub fn names_a_server(&self) -> bool {
        self.url.is_some()
            || self.host.is_some()
            || self.port.is_some()
            || self.user.is_some()
            || self.password.is_some()
            || self.dbname.is_some()
    }
}

/// A driver error as one readable message, with the server's detail, hint and
/// position (e.g. the COPY row) when it has them.
///
/// The driver's error repeats its cause in both its message and its source,
/// which would print twice in `recsys: …` chains; this keeps it once.
pub(crate) fn sql_error(error: postgres::Error) -> anyhow::Error {
    let Some(db) = error.as_db_error() else {
        // Non-server errors keep the cause (refused, timed out, bad
        // certificate…) only in their source chain.
        let mut text = error.to_string();
        let mut cause = std::error::Error::source(&error);
        while let Some(inner) = cause {
            text.push_str(&format!(": {inner}"));
            cause = inner.source();
        }
        return anyhow::anyhow!(text);
    };
    let mut text = db.message().to_string();
    if let Some(detail) = db.detail() {
        text.push_str(&format!("; {detail}"));
    }
    if let Some(hint) = db.hint() {
        text.push_str(&format!("; hint: {hint}"));
    }
    if let Some(place) = db.where_() {
        text.push_str(&format!(" ({place})"));
    }
    anyhow::anyhow!(text)
}

/// Why a PostgreSQL operation failed, for the cases a caller may act on.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// A table name that does not pass the identifier rule.
    #[error("invalid table name `{name}`: {reason}; a table name is `table` or `schema.table`, each part made of letters, digits and `_`, not starting with a digit, at most 63 characters")]
    InvalidTableName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The table (or view) does not exist.
    #[error("table {table} does not exist{hint}")]
    TableMissing {
        /// The name as given.
        table: String,
        /// Extra advice, such as a differently-cased name that does exist (may be empty).
        hint: String,
    },
    /// `push --if-exists fail` found the table already there.
    #[error("table {table} already exists; pass --if-exists replace or --if-exists append")]
    TableExists {
        /// The name as given.
        table: String,
    },
    /// The relation exists but is not an ordinary table (a view, say), so it is not dropped.
    #[error("{table} is a {kind}, not a table; recsys only drops tables")]
    NotATable {
        /// The name as given.
        table: String,
        /// What it is instead, e.g. `view`.
        kind: String,
    },
    /// The connection settings cannot be used.
    #[error("bad PostgreSQL connection settings ({source_name}): {problem}")]
    Settings {
        /// Where the bad setting came from, e.g. `DATABASE_URL`.
        source_name: String,
        /// What is wrong.
        problem: String,
    },
    /// The server could not be reached or refused the login.
    #[error("could not connect to PostgreSQL at {target} (settings from {source_name}): {reason}{advice}")]
    Connect {
        /// `user@host:port/database`, without the password.
        target: String,
        /// Where the settings came from.
        source_name: String,
        /// The driver's error, as one message.
        reason: String,
        /// What to check, if anything obvious.
        advice: String,
    },
    /// A column of a file or table whose type has no counterpart on the other side.
    #[error("column `{column}` has type {found}, which {what}")]
    UnsupportedColumn {
        /// Column name.
        column: String,
        /// Its type.
        found: String,
        /// What cannot be done with it, and what to do instead.
        what: String,
    },
    /// The Parquet file does not hold as many rows as the table.
    #[error("saved {saved} rows of {table}, but the table has {expected}; the file was not kept")]
    RowCountMismatch {
        /// The table.
        table: String,
        /// Rows in the table (same snapshot as the copy).
        expected: u64,
        /// Rows found in the written file.
        saved: u64,
    },
}
