//! `pg load`: a whole table to one Parquet file, streamed.
//!
//! The table is read with `COPY (SELECT …) TO STDOUT (FORMAT binary)` — one
//! pass, no cursor round trips, no text formatting on the server — and decoded
//! into polars columns a batch of rows at a time. Each batch becomes one
//! Parquet row group, handed to a writer thread while the next batch is
//! decoded, so memory stays at a few batches whatever the table's size.
//!
//! The row count and the copy run in one read-only REPEATABLE READ
//! transaction, so they see the same snapshot; the file is written under a
//! temporary name, its row count read back from its footer and checked
//! against the table's, and only then renamed into place.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::{anyhow, Context, Result};
use polars::prelude::{
    Column, DataFrame, Field, ParquetReader, ParquetWriter, PlSmallStr, Schema, SerReader,
};
use postgres::{Client, IsolationLevel};

use super::binary::{ColumnDecoder, RowReader};
use super::catalog::{count_rows, lookup_table};
use super::{quote_ident, sql_error, PgError, TableName};

/// Rows per batch (and Parquet row group), as polars' own default row group.
const BATCH_ROWS: usize = 256 * 1024;
/// A batch is also cut when its fields add up to this many bytes, so wide
/// text rows do not make a batch huge.
const BATCH_BYTES: usize = 128 << 20;

/// What [`load_table`] saved.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The Parquet file written.
    pub path: PathBuf,
    /// Rows saved (equal to the table's row count).
    pub rows: u64,
    /// Columns saved.
    pub columns: usize,
    /// How some columns were represented, for the user (e.g. `uuid` as text).
    pub notes: Vec<String>,
}

/// Save every row of `table` to the Parquet file `dest`, atomically.
pub fn load_table(client: &mut Client, table: &TableName, dest: &Path) -> Result<Loaded> {
    let mut transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(sql_error)
        .context("starting a read-only transaction")?;
    let info = lookup_table(&mut transaction, table)?;
    if info.columns.is_empty() {
        anyhow::bail!("table {table} has no columns; there is nothing to save");
    }
    let expected = count_rows(&mut transaction, table)?;

    let notes: Vec<String> = info
        .columns
        .iter()
        .filter_map(|c| c.kind.load_note().map(|n| format!("`{}`: {n}", c.name)))
        .collect();
    let select: Vec<String> = info
        .columns
        .iter()
        .map(|c| {
            let name = quote_ident(&c.name);
            if c.kind.copied_as_text() {
                format!("{name}::text")
            } else {
                name
            }
        })
        .collect();
    let copy = format!(
        "COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)",
        select.join(", "),
        table.quoted()
    );
    let schema: Schema = info
        .columns
        .iter()
        .map(|c| Field::new(PlSmallStr::from_str(&c.name), c.kind.polars_dtype()))
        .collect();
    let mut decoders: Vec<ColumnDecoder> = info
        .columns
        .iter()
        .map(|c| ColumnDecoder::new(&c.name, &c.kind, BATCH_ROWS.min(expected as usize + 1)))
        .collect();

    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("creating directory {}", parent.display()))?;
    }
    let tmp = crate::fsio::temp_sibling(dest);
    let progress = crate::progress::bar(expected, "loading");
    let result = (|| -> Result<u64> {
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let reader = transaction
            .copy_out(&copy)
            .map_err(sql_error)
            .with_context(|| format!("starting to copy {table}"))?;
        let copied = stream_to_parquet(reader, &mut decoders, &schema, &file, &progress)
            .with_context(|| format!("copying {table} to {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("flushing {}", tmp.display()))?;
        let saved = ParquetReader::new(File::open(&tmp)?)
            .num_rows()
            .with_context(|| format!("reading back {}", tmp.display()))? as u64;
        if saved != expected || copied != expected {
            return Err(PgError::RowCountMismatch {
                table: table.to_string(),
                expected,
                saved: saved.min(copied),
            }
            .into());
        }
        fs::rename(&tmp, dest)
            .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
        Ok(saved)
    })();
    progress.finish_and_clear();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    let rows = result?;
    transaction
        .commit()
        .map_err(sql_error)
        .context("ending the read transaction")?;
    Ok(Loaded {
        path: dest.to_path_buf(),
        rows,
        columns: info.columns.len(),
        notes,
    })
}

/// Decode the COPY stream in this thread while another thread encodes and
/// writes the previous batch; returns the number of rows written.
fn stream_to_parquet(
    reader: impl std::io::Read,
    decoders: &mut [ColumnDecoder],
    schema: &Schema,
    file: &File,
    progress: &indicatif::ProgressBar,
) -> Result<u64> {
    let mut writer = ParquetWriter::new(BufWriter::with_capacity(1 << 20, file))
        .batched(schema)
        .context("starting the Parquet file")?;
    // Two batches in flight at most: one being encoded, one waiting.
    let (send, receive) = mpsc::sync_channel::<DataFrame>(1);
    std::thread::scope(|scope| {
        let writing = scope.spawn(move || -> Result<()> {
            for batch in receive {
                writer
                    .write_batch(&batch)
                    .context("writing a Parquet row group")?;
            }
            // Writes the footer and flushes the buffer into the file.
            writer.finish().context("finishing the Parquet file")?;
            Ok(())
        });

        let decoding = (|| -> Result<u64> {
            let mut rows = RowReader::new(BufReader::with_capacity(1 << 20, reader))
                .context("reading the COPY header")?;
            let mut total = 0u64;
            loop {
                let (batch_rows, more) = read_batch(&mut rows, decoders, total)?;
                if batch_rows > 0 {
                    total += batch_rows as u64;
                    let columns: Vec<Column> =
                        decoders.iter_mut().map(|d| d.take_batch()).collect();
                    let batch = DataFrame::new(batch_rows, columns)?;
                    if send.send(batch).is_err() {
                        // The writer stopped; its error is the one to report.
                        break;
                    }
                    progress.inc(batch_rows as u64);
                }
                if !more {
                    break;
                }
            }
            Ok(total)
        })();
        drop(send);
        let written = writing
            .join()
            .map_err(|_| anyhow!("the Parquet writer thread panicked"))?;
        written?;
        decoding
    })
}

/// Decode up to one batch of rows; returns the rows read and whether more may follow.
fn read_batch<R: std::io::Read>(
    rows: &mut RowReader<R>,
    decoders: &mut [ColumnDecoder],
    rows_before: u64,
) -> Result<(usize, bool)> {
    let mut count = 0;
    let mut bytes = 0;
    while count < BATCH_ROWS && bytes < BATCH_BYTES {
        match rows.next_row(decoders) {
            Ok(Some(row_bytes)) => {
                count += 1;
                bytes += row_bytes;
            }
            Ok(None) => return Ok((count, false)),
            Err(problem) => anyhow::bail!("row {}: {problem}", rows_before + count as u64 + 1),
        }
    }
    Ok((count, true))
}
