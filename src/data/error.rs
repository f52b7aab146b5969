//! The errors a data file can raise.
//!
//! Every variant names the file, and where it applies the row and column, so a
//! user can open the file and fix it. Rows are counted the way an editor shows
//! them: for CSV the header is line 1 and the first event is line 2; for Parquet
//! the first record is row 1.

use std::path::PathBuf;

/// Why a data file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file does not exist.
    #[error("{path}: no such file (check the path, or the [data] section of the config)")]
    NotFound {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// The path exists but is a directory (or another non-file).
    #[error("{path}: is a directory, not a file (name the .csv or .parquet file itself)")]
    NotAFile {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// The extension is neither `.csv` nor `.parquet`.
    #[error("{path}: unsupported file type; use a .csv or .parquet file")]
    UnsupportedFormat {
        /// The offending path.
        path: PathBuf,
    },
    /// The file could not be parsed as its format at all.
    #[error("{path}: not a valid {format} file: {detail}")]
    Malformed {
        /// The offending path.
        path: PathBuf,
        /// "CSV" or "Parquet".
        format: &'static str,
        /// What the parser said.
        detail: String,
    },
    /// The file holds no data rows.
    #[error("{path}: the file has no data rows")]
    Empty {
        /// The offending path.
        path: PathBuf,
    },
    /// A required column is absent (or was renamed).
    #[error("{path}: missing column `{column}` (found columns: {found})")]
    MissingColumn {
        /// The offending path.
        path: PathBuf,
        /// The column that is required.
        column: String,
        /// The columns the file has, comma separated.
        found: String,
    },
    /// A value that cannot be used.
    #[error("{path}: {location}, column `{column}`: {problem}")]
    BadValue {
        /// The offending path.
        path: PathBuf,
        /// "line N" for CSV, "row N" for Parquet.
        location: String,
        /// The column of the value.
        column: String,
        /// What is wrong, quoting the value.
        problem: String,
    },
}
