//! `pg push`: a Parquet or CSV file into a table, all or nothing.
//!
//! Everything happens in one transaction: creating the table from the file's
//! schema, `COPY … FROM STDIN (FORMAT binary)` of the rows, and for
//! `--if-exists replace` the swap with the old table. A failure anywhere — a
//! value the server rejects, a lost connection, Ctrl-C — rolls all of it back,
//! so readers see the old table or the new one, never half of either.
//!
//! Replacing builds the new table under a staging name next to the old one
//! and swaps it in (drop + rename) just before the commit. The old table stays
//! readable while the rows are copied; it is locked only for the swap.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::{CsvReadOptions, DataFrame, ParquetReader, SerReader};
use postgres::Client;

use super::binary::{self, ColumnEncoder};
use super::catalog::find_table;
use super::{quote_ident, sql_error, PgError, PgType, TableName};

/// Bytes of encoded rows handed to the connection at a time.
const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// What to do when the table already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfExists {
    /// Stop with [`PgError::TableExists`].
    Fail,
    /// Drop it and create it anew from the file, in the same transaction.
    Replace,
    /// Add the file's rows; its columns must exist in the table (matched by name).
    Append,
}

/// What [`push_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// Rows copied in.
    pub rows: u64,
    /// `created`, `replaced` or `appended to`.
    pub action: &'static str,
}

/// Copy the rows of `file` (`.parquet` or `.csv`) into `table`.
pub fn push_file(
    client: &mut Client,
    file: &Path,
    table: &TableName,
    if_exists: IfExists,
) -> Result<Pushed> {
    let frame = read_file(file)?;
    for name in frame.get_column_names() {
        check_column_name(name)?;
    }

    let mut transaction = client
        .transaction()
        .map_err(sql_error)
        .context("starting a transaction")?;
    let existing = find_table(&mut transaction, table)?;
    let (target, targets, action, swap) = match (existing, if_exists) {
        (Some(_), IfExists::Fail) => {
            return Err(PgError::TableExists {
                table: table.to_string(),
            }
            .into())
        }
        (Some(info), IfExists::Append) => {
            let mut targets = Vec::new();
            let mut missing = Vec::new();
            for name in frame.get_column_names() {
                match info.columns.iter().find(|c| c.name == name.as_str()) {
                    Some(column) => targets.push(column.kind.clone()),
                    None => missing.push(format!("`{name}`")),
                }
            }
            if !missing.is_empty() {
                anyhow::bail!(
                    "table {table} has no column {} (it has: {}); nothing was appended",
                    missing.join(", "),
                    info.columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            (table.clone(), targets, "appended to", None)
        }
        (Some(info), IfExists::Replace) => {
            if !info.is_table() {
                return Err(PgError::NotATable {
                    table: table.to_string(),
                    kind: info.kind,
                }
                .into());
            }
            // Next to the old table, wherever `search_path` found it, so the
            // rename keeps the table in its schema.
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            let staging = TableName::in_catalog_schema(
                &info.schema,
                &format!("recsys_push_{}_{stamp}", std::process::id()),
            );
            let old = TableName::in_catalog_schema(&info.schema, table.table());
            let targets = file_types(&frame)?;
            create_table(&mut transaction, &staging, &frame, &targets)?;
            (staging.clone(), targets, "replaced", Some((staging, old)))
        }
        (None, _) => {
            let targets = file_types(&frame)?;
            create_table(&mut transaction, table, &frame, &targets)?;
            (table.clone(), targets, "created", None)
        }
    };

    let encoders: Vec<ColumnEncoder> = frame
        .columns()
        .iter()
        .zip(&targets)
        .map(|(column, target)| {
            ColumnEncoder::new(column.as_materialized_series(), target).map_err(|what| {
                anyhow::anyhow!("{}: column `{}` {what}", file.display(), column.name())
            })
        })
        .collect::<Result<_>>()?;
    let columns: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|n| quote_ident(n))
        .collect();
    let copy = format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        target.quoted(),
        columns.join(", ")
    );
    let rows = copy_rows(&mut transaction, &copy, &encoders, frame.height())
        .with_context(|| format!("copying the rows of {} into {table}", file.display()))?;

    if let Some((staging, old)) = swap {
        transaction
            .batch_execute(&format!(
                "DROP TABLE {}; ALTER TABLE {} RENAME TO {}",
                old.quoted(),
                staging.quoted(),
                quote_ident(table.table())
            ))
            .map_err(sql_error)
            .with_context(|| format!("swapping the new rows into {table}"))?;
    }
    transaction
        .commit()
        .map_err(sql_error)
        .with_context(|| format!("committing the push into {table}"))?;
    Ok(Pushed { rows, action })
}

/// Read a whole Parquet or CSV file (chosen by extension).
fn read_file(path: &Path) -> Result<DataFrame> {
    use crate::data::table::Format;
    let format = Format::of(path)?;
    if !path.is_file() {
        anyhow::bail!("{}: no such file", path.display());
    }
    let frame = match format {
        Format::Parquet => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            crate::data::table::catch_reader_panic(|| ParquetReader::new(file).finish())
        }
        // Types are inferred from every row, not a sample, so a late odd
        // value cannot make the created column too narrow. CSV carries no
        // types: integers, floats and booleans are recognised, anything else
        // (dates included) stays text; Parquet keeps every type.
        Format::Csv => crate::data::table::catch_reader_panic(|| {
            CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(None)
                .try_into_reader_with_file_path(Some(path.to_path_buf()))
                .and_then(|reader| reader.finish())
        }),
    };
    frame.with_context(|| format!("reading {}", path.display()))
}

/// Column names go into SQL quoted, so any text is safe; but Postgres would
/// silently cut a long one (two could then clash) and cannot store NUL.
fn check_column_name(name: &str) -> Result<()> {
    if name.is_empty() {
        anyhow::bail!("the file has a column with an empty name; name every column");
    }
    if name.len() > 63 {
        anyhow::bail!(
            "column name `{name}` is {} bytes long; Postgres keeps at most 63",
            name.len()
        );
    }
    if name.contains('\0') {
        anyhow::bail!("column name {name:?} contains a NUL character");
    }
    Ok(())
}

/// The table column types for the file's columns.
fn file_types(frame: &DataFrame) -> Result<Vec<PgType>> {
    frame
        .columns()
        .iter()
        .map(|column| {
            PgType::for_polars(column.dtype()).map_err(|what| {
                PgError::UnsupportedColumn {
                    column: column.name().to_string(),
                    found: column.dtype().to_string(),
                    what,
                }
                .into()
            })
        })
        .collect()
}

fn create_table(
    client: &mut impl postgres::GenericClient,
    table: &TableName,
    frame: &DataFrame,
    types: &[PgType],
) -> Result<()> {
    let columns: Vec<String> = frame
        .get_column_names()
        .iter()
        .zip(types)
        .map(|(name, kind)| format!("{} {}", quote_ident(name), kind.sql_name()))
        .collect();
    client
        .batch_execute(&format!(
            "CREATE TABLE {} ({})",
            table.quoted(),
            columns.join(", ")
        ))
        .map_err(|e| match e.code() {
            Some(&postgres::error::SqlState::DUPLICATE_TABLE) => PgError::TableExists {
                table: table.to_string(),
            }
            .into(),
            _ => sql_error(e).context(format!("creating table {table}")),
        })
}

/// Stream every row through one COPY; returns the rows the server took.
fn copy_rows(
    transaction: &mut postgres::Transaction<'_>,
    copy: &str,
    encoders: &[ColumnEncoder],
    height: usize,
) -> Result<u64> {
    let progress = crate::progress::bar(height as u64, "pushing");
    let result = (|| -> Result<u64> {
        let mut writer = transaction.copy_in(copy).map_err(sql_error)?;
        let mut buffer = Vec::with_capacity(WRITE_CHUNK_BYTES + 4096);
        binary::write_header(&mut buffer);
        let mut rows_in_buffer = 0u64;
        for row in 0..height {
            binary::write_row_start(encoders.len(), &mut buffer);
            for encoder in encoders {
                encoder
                    .write(row, &mut buffer)
                    .map_err(|e| anyhow::anyhow!("row {}: {e}", row + 1))?;
            }
            rows_in_buffer += 1;
            if buffer.len() >= WRITE_CHUNK_BYTES {
                send(&mut writer, &buffer)?;
                buffer.clear();
                progress.inc(rows_in_buffer);
                rows_in_buffer = 0;
            }
        }
        binary::write_trailer(&mut buffer);
        send(&mut writer, &buffer)?;
        progress.inc(rows_in_buffer);
        writer.finish().map_err(sql_error)
    })();
    progress.finish_and_clear();
    result
}

/// Write to the COPY. If the server already gave up on the rows, the write
/// fails with its error (flattened to one message, see [`sql_error`]).
fn send(writer: &mut postgres::CopyInWriter<'_>, bytes: &[u8]) -> Result<()> {
    let Err(e) = writer.write_all(bytes) else {
        return Ok(());
    };
    if !e
        .get_ref()
        .is_some_and(|inner| inner.is::<postgres::Error>())
    {
        return Err(anyhow::Error::new(e).context("sending rows to the server"));
    }
    match e
        .into_inner()
        .map(|inner| inner.downcast::<postgres::Error>())
    {
        Some(Ok(error)) => Err(sql_error(*error)),
        _ => unreachable!("checked to hold a driver error just above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_that_postgres_would_mangle_are_refused() {
        assert!(check_column_name("user id \"quoted\"").is_ok());
        assert!(check_column_name("").is_err());
        assert!(check_column_name(&"c".repeat(64)).is_err());
        assert!(check_column_name("a\0b").is_err());
    }
}
