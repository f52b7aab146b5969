//! `pg load`: a whole table to one Parquet file, streamed.
//!
//! The table is read with `COPY (SELECT …) TO STDOUT (FORMAT binary)` — one
//! pass, no cursor round trips, no text formatting on the server — and goes
//! through three stages running side by side, joined by bounded channels so
//! memory stays at a few batches whatever the table's size:
//!
//! 1. the network (this thread, an asynchronous connection): COPY data is
//!    gathered into 1 MiB chunks. The blocking client would pay a full trip
//!    through its runtime for every row — Postgres sends one message per
//!    row — which cost more than the rest of the work together;
//! 2. the decoder: rows are decoded into polars columns, a batch at a time;
//! 3. the writer: each batch is encoded as one Parquet row group.
//!
//! The row count is taken, and a snapshot exported, in a read-only
//! REPEATABLE READ transaction of the caller's connection; the COPY runs on
//! the asynchronous connection in a transaction that imports that snapshot,
//! so count and rows see the same data. The file is written under a
//! temporary name, its row count read back from its footer and checked
//! against the table's, and only then renamed into place.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::{anyhow, Context, Result};
use futures_util::StreamExt;
use polars::prelude::{
    Column, DataFrame, Field, ParquetCompression, ParquetReader, ParquetWriter, PlSmallStr, Schema,
    SerReader,
};
use postgres::{Client, IsolationLevel};

use super::binary::{ColumnDecoder, Parsed, RowParser};
use super::catalog::{count_rows, lookup_table};
use super::connect::{connect_async, ConnectionSettings};
use super::{quote_ident, sql_error, PgError, TableName};

/// Bytes of COPY data handed from the network to the decoder at a time.
const CHUNK_BYTES: usize = 1 << 20;
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
///
/// `client` is connected with `settings`, which are used again for the
/// second, asynchronous connection that streams the rows.
pub fn load_table(
    client: &mut Client,
    settings: &ConnectionSettings,
    table: &TableName,
    dest: &Path,
) -> Result<Loaded> {
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
    let snapshot: String = transaction
        .query_one("SELECT pg_catalog.pg_export_snapshot()", &[])
        .map_err(sql_error)
        .context("exporting the transaction's snapshot")?
        .get(0);

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
        let source = CopySource {
            settings,
            snapshot: &snapshot,
            copy: &copy,
        };
        let copied = stream_to_parquet(source, &mut decoders, &schema, &file, &progress)
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

/// Where the rows come from: a COPY run in an exported snapshot.
struct CopySource<'a> {
    settings: &'a ConnectionSettings,
    snapshot: &'a str,
    copy: &'a str,
}

impl CopySource<'_> {
    /// Stream the COPY into `chunks` (blocking this thread on a small Tokio
    /// runtime); stops quietly if the decoder hangs up. On an error the
    /// channel just closes early, which the decoder notices.
    fn run(&self, chunks: &mpsc::SyncSender<Vec<u8>>) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the network runtime")?;
        runtime.block_on(async {
            let client = connect_async(self.settings).await?;
            // The snapshot id is generated by the server, but quote it anyway.
            client
                .batch_execute(&format!(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
                    self.snapshot.replace('\'', "''")
                ))
                .await
                .map_err(sql_error)
                .context("joining the snapshot of the row count")?;
            let stream = client.copy_out(self.copy).await.map_err(sql_error)?;
            let mut stream = std::pin::pin!(stream);
            let mut chunk = Vec::with_capacity(CHUNK_BYTES + (64 << 10));
            while let Some(message) = stream.next().await {
                chunk.extend_from_slice(&message.map_err(sql_error)?);
                if chunk.len() >= CHUNK_BYTES {
                    let full = std::mem::replace(
                        &mut chunk,
                        Vec::with_capacity(CHUNK_BYTES + (64 << 10)),
                    );
                    if chunks.send(full).is_err() {
                        // The decoder stopped; its error is the one to report.
                        return Ok(());
                    }
                }
            }
            if !chunk.is_empty() && chunks.send(chunk).is_err() {
                return Ok(());
            }
            client
                .batch_execute("COMMIT")
                .await
                .map_err(sql_error)
                .context("ending the copy's transaction")
        })
    }
}

/// Run the three stages (network here, decoder and writer on their own
/// threads); returns the number of rows written.
///
/// A stage whose downstream hangs up stops without an error of its own, so
/// the error reported is the one that started it: the writer's, else the
/// network's, else the decoder's.
fn stream_to_parquet(
    source: CopySource<'_>,
    decoders: &mut [ColumnDecoder],
    schema: &Schema,
    file: &File,
    progress: &indicatif::ProgressBar,
) -> Result<u64> {
    let mut writer = ParquetWriter::new(BufWriter::with_capacity(1 << 20, file))
        // zstd (polars' default): cost about the same here as snappy or
        // lz4, measured, for a file a third smaller.
        .with_compression(ParquetCompression::Zstd(None))
        .batched(schema)
        .context("starting the Parquet file")?;
    // A few chunks and two batches in flight at most.
    let (send_chunk, receive_chunk) = mpsc::sync_channel::<Vec<u8>>(8);
    let (send_batch, receive_batch) = mpsc::sync_channel::<DataFrame>(1);
    std::thread::scope(|scope| {
        let writing = scope.spawn(move || -> Result<()> {
            for batch in receive_batch {
                writer
                    .write_batch(&batch)
                    .context("writing a Parquet row group")?;
            }
            // Writes the footer and flushes the buffer into the file.
            writer.finish().context("finishing the Parquet file")?;
            Ok(())
        });
        let decoding = scope.spawn(move || -> Result<u64> {
            let mut parser = RowParser::new();
            let mut total = 0u64;
            let (mut rows, mut bytes) = (0usize, 0usize);
            // The channel closes early if the network stage fails; it reports why.
            for chunk in receive_chunk {
                parser.feed(chunk);
                loop {
                    let parsed = parser
                        .next_row(decoders)
                        .map_err(|problem| anyhow!("row {}: {problem}", total + rows as u64 + 1))?;
                    match parsed {
                        Parsed::Row(row_bytes) => {
                            rows += 1;
                            bytes += row_bytes;
                            if rows == BATCH_ROWS || bytes >= BATCH_BYTES {
                                if !send_batch_of(decoders, rows, &send_batch)? {
                                    return Ok(total);
                                }
                                progress.inc(rows as u64);
                                total += rows as u64;
                                (rows, bytes) = (0, 0);
                            }
                        }
                        Parsed::NeedMore => break,
                        Parsed::End => {
                            if rows > 0 && send_batch_of(decoders, rows, &send_batch)? {
                                progress.inc(rows as u64);
                                total += rows as u64;
                            }
                            return Ok(total);
                        }
                    }
                }
            }
            anyhow::bail!("the COPY stream ended before its end marker")
        });
        let network = source.run(&send_chunk);
        drop(send_chunk);
        let decoded = decoding
            .join()
            .map_err(|_| anyhow!("the decoder thread panicked"))?;
        let written = writing
            .join()
            .map_err(|_| anyhow!("the Parquet writer thread panicked"))?;
        written?;
        network?;
        decoded
    })
}

/// Hand the decoded rows to the writer as one batch; false if the writer
/// has stopped (its error is the one to report).
fn send_batch_of(
    decoders: &mut [ColumnDecoder],
    rows: usize,
    send: &mpsc::SyncSender<DataFrame>,
) -> Result<bool> {
    let columns: Vec<Column> = decoders.iter_mut().map(|d| d.take_batch()).collect();
    let batch = DataFrame::new(rows, columns)?;
    Ok(send.send(batch).is_ok())
}
