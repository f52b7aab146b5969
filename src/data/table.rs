//! Reading a CSV or Parquet file into typed columns, with row-precise errors.
//!
//! polars does the parsing (fast, multi-threaded). CSV is read with every column
//! as text and then cast, so that a value polars cannot convert is found again
//! and reported with its line number and column instead of a generic parse error.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::error::DataError;

/// The on-disk formats recsys reads, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated text with a header line.
    Csv,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    /// The format of `path`, which must be an existing file (a directory or a
    /// missing path is named as such).
    pub fn of_file(path: &Path) -> Result<Format, DataError> {
        if path.is_dir() {
            return Err(DataError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let format = Format::of(path)?;
        if !path.is_file() {
            return Err(DataError::NotFound {
                path: path.to_path_buf(),
            });
        }
        Ok(format)
    }

    /// The format of `path`, from its extension.
    pub fn of(path: &Path) -> Result<Format, DataError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("csv") => Ok(Format::Csv),
            Some("parquet") | Some("pq") => Ok(Format::Parquet),
            _ => Err(DataError::UnsupportedFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Run one of polars' file readers, turning a panic into an error.
///
/// polars' Parquet reader panics on some damaged files instead of failing
/// (a footer field of the wrong thrift type, a page that claims to reach past
/// the end of the file: found by `fuzz/`); a damaged input file must be an
/// error naming it, as every other bad file is, not a crash.
pub fn catch_reader_panic<T>(read: impl FnOnce() -> PolarsResult<T>) -> PolarsResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|panic| {
        Err(PolarsError::ComputeError(
            format!(
                "the reader gave up on it (polars panicked: {})",
                panic_message(&*panic)
            )
            .into(),
        ))
    })
}

/// What a caught panic said.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no reason given".to_string())
}

/// A data file loaded into memory, ready to hand out validated columns.
pub struct Table {
    path: PathBuf,
    format: Format,
    frame: DataFrame,
}

/// A bad cell found while converting a column: its 0-based record index and why.
#[derive(Debug, Clone)]
pub struct BadCell {
    /// 0-based record index (not counting a header).
    pub record: usize,
    /// Human-readable problem, quoting the value.
    pub problem: String,
}

impl Table {
    /// Read `path` (CSV or Parquet by extension), checking it exists, parses,
    /// has the `required` columns and at least one row.
    pub fn read(path: &Path, required: &[&str]) -> Result<Table, DataError> {
        let format = Format::of_file(path)?;
        let malformed = |e: PolarsError| DataError::Malformed {
            path: path.to_path_buf(),
            format: match format {
                Format::Csv => "CSV",
                Format::Parquet => "Parquet",
            },
            detail: e.to_string(),
        };
        let frame = match format {
            Format::Csv => catch_reader_panic(|| {
                CsvReadOptions::default()
                    .with_has_header(true)
                    .with_infer_schema_length(Some(0))
                    .try_into_reader_with_file_path(Some(path.to_path_buf()))
                    .and_then(|r| r.finish())
            })
            .map_err(malformed)?,
            Format::Parquet => {
                let file = std::fs::File::open(path).map_err(|e| DataError::Malformed {
                    path: path.to_path_buf(),
                    format: "Parquet",
                    detail: e.to_string(),
                })?;
                catch_reader_panic(|| {
                    super::parquet::check(path)?;
                    ParquetReader::new(file).finish()
                })
                .map_err(malformed)?
            }
        };
        let table = Table {
            path: path.to_path_buf(),
            format,
            frame,
        };
        for column in required {
            table.column(column)?;
        }
        if table.frame.height() == 0 {
            return Err(DataError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(table)
    }

    /// [`Table::read`] for a file whose `ints` columns should be integers and
    /// whose `texts` columns text, keeping only those columns: CSV integers are
    /// parsed straight into integer columns, which at 27M rows takes a fifth
    /// of the memory of text columns cast afterwards. A file that does not
    /// parse that way (a bad cell, a missing column) is read again by
    /// [`Table::read`], whose errors say which row and column.
    pub fn read_typed(path: &Path, ints: &[&str], texts: &[&str]) -> Result<Table, DataError> {
        let format = Format::of(path)?;
        if !path.is_file() {
            return Table::read(path, &[ints, texts].concat());
        }
        let names: Vec<PlSmallStr> = ints.iter().chain(texts).map(|&c| c.into()).collect();
        let typed = match format {
            Format::Csv => {
                let schema: Schema = ints
                    .iter()
                    .map(|&c| Field::new(c.into(), DataType::Int64))
                    .chain(
                        texts
                            .iter()
                            .map(|&c| Field::new(c.into(), DataType::String)),
                    )
                    .collect();
                catch_reader_panic(|| {
                    CsvReadOptions::default()
                        .with_has_header(true)
                        .with_infer_schema_length(Some(0))
                        .with_columns(Some(names.into()))
                        .with_schema_overwrite(Some(Arc::new(schema)))
                        .try_into_reader_with_file_path(Some(path.to_path_buf()))
                        .and_then(|r| r.finish())
                })
            }
            Format::Parquet => std::fs::File::open(path)
                .map_err(PolarsError::from)
                .and_then(|file| {
                    catch_reader_panic(|| {
                        super::parquet::check(path)?;
                        ParquetReader::new(file)
                            .with_columns(Some(names.iter().map(|c| c.to_string()).collect()))
                            .finish()
                    })
                }),
        };
        match typed {
            Ok(frame) if frame.height() > 0 => Ok(Table {
                path: path.to_path_buf(),
                format,
                frame,
            }),
            _ => Table::read(path, &[ints, texts].concat()),
        }
    }

    /// The file this table came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of records.
    pub fn height(&self) -> usize {
        self.frame.height()
    }

    /// True when the file has a column called `name`.
    pub fn has_column(&self, name: &str) -> bool {
        self.frame.column(name).is_ok()
    }

    fn column(&self, name: &str) -> Result<&Column, DataError> {
        self.frame
            .column(name)
            .map_err(|_| DataError::MissingColumn {
                path: self.path.clone(),
                column: name.to_string(),
                found: self
                    .frame
                    .get_column_names()
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Where record `record` (0-based) sits in the file, as a user would look for it.
    pub fn location(&self, record: usize) -> String {
        match self.format {
            Format::Csv => format!("line {}", record + 2),
            Format::Parquet => format!("row {}", record + 1),
        }
    }

    /// The error for a bad cell of column `column`.
    pub fn bad_value(&self, column: &str, cell: &BadCell) -> DataError {
        DataError::BadValue {
            path: self.path.clone(),
            location: self.location(cell.record),
            column: column.to_string(),
            problem: cell.problem.clone(),
        }
    }

    /// Column `name` as 64-bit integers. Empty cells are `None`; cells that are
    /// present but not integers are returned in the second vector (record order).
    pub fn int_column(&self, name: &str) -> Result<(Vec<Option<i64>>, Vec<BadCell>), DataError> {
        let (ints, bad) = self.int_chunks(name)?;
        Ok((ints.iter().collect(), bad))
    }

    /// [`Table::int_column`] as polars' column, without a copy when the file
    /// already holds integers.
    pub fn int_chunks(&self, name: &str) -> Result<(Int64Chunked, Vec<BadCell>), DataError> {
        self.guarded(name, || self.int_chunks_unguarded(name))
    }

    /// Run `convert` on column `name`, turning a panic of polars into an
    /// error: a column of a type this build of polars cannot materialise
    /// (a Parquet `Int8` column: found by `fuzz/`) panics instead of failing.
    fn guarded<T>(
        &self,
        name: &str,
        convert: impl FnOnce() -> Result<T, DataError>,
    ) -> Result<T, DataError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(convert)).unwrap_or_else(|panic| {
            Err(DataError::BadValue {
                path: self.path.clone(),
                location: "every row".to_string(),
                column: name.to_string(),
                problem: format!(
                    "its values cannot be read (polars panicked: {})",
                    panic_message(&*panic)
                ),
            })
        })
    }

    fn int_chunks_unguarded(&self, name: &str) -> Result<(Int64Chunked, Vec<BadCell>), DataError> {
        let column = self.column(name)?.as_materialized_series();
        let cast = column
            .cast(&DataType::Int64)
            .map_err(|e| self.cast_error(name, column.dtype(), e))?;
        let ints = cast.i64().expect("cast to Int64 gives Int64").clone();
        let mut bad = Vec::new();
        if ints.null_count() > column.null_count() {
            // Some present values did not convert: find them, with their text.
            let text = column.cast(&DataType::String).ok();
            let text = text.as_ref().and_then(|t| t.str().ok());
            for (record, (orig_null, value)) in column.is_null().iter().zip(ints.iter()).enumerate()
            {
                if orig_null == Some(false) && value.is_none() {
                    let shown = text
                        .and_then(|t| t.get(record))
                        .map(|s| s.to_string())
                        .unwrap_or_default();
                    bad.push(BadCell {
                        record,
                        problem: format!("`{shown}` is not an integer"),
                    });
                }
            }
        }
        Ok((ints, bad))
    }

    /// Column `name` as text (Parquet integer or categorical columns are rendered).
    pub fn text_column(&self, name: &str) -> Result<StringChunked, DataError> {
        self.guarded(name, || {
            let column = self.column(name)?.as_materialized_series();
            let text = column
                .cast(&DataType::String)
                .map_err(|e| self.cast_error(name, column.dtype(), e))?;
            Ok(text.str().expect("cast to String gives String").clone())
        })
    }

    fn cast_error(&self, name: &str, dtype: &DataType, e: PolarsError) -> DataError {
        DataError::BadValue {
            path: self.path.clone(),
            location: "every row".to_string(),
            column: name.to_string(),
            problem: format!("values of type {dtype} cannot be read ({e})"),
        }
    }
}
