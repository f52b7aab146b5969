//! `recsys pg`: look at, save, publish and drop PostgreSQL tables.
//!
//! A thin shell over [`crate::storage::pg`]: it turns flags and the config
//! file into connection settings, validates the table name before anything
//! connects, and owns the one interactive bit, `drop`'s confirmation.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use crate::config::Config;
use crate::storage::pg::{self, connect, IfExists, TableName};

/// Arguments of `recsys pg`.
#[derive(Debug, Args)]
pub struct PgArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PgCommand,
    /// Config file; its `[postgres]` section says where the database is. The
    /// default `config.toml` is optional; a file named here must exist.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Connection URL (`postgres://user:password@host:port/db?sslmode=…`);
    /// beats `[postgres]`, `DATABASE_URL` and the PG* variables.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
}

/// The `recsys pg` subcommands.
#[derive(Debug, Subcommand)]
pub enum PgCommand {
    /// Print a table's first rows, its row count and its column types.
    Show {
        /// `table` or `schema.table`.
        #[arg(long)]
        table_name: String,
        /// How many rows to print.
        #[arg(long, default_value_t = 10)]
        limit: u64,
    },
    /// Save a whole table to SAVE_DIR/TABLE.parquet (streamed; types kept).
    Load {
        /// `table` or `schema.table`.
        #[arg(long)]
        table_name: String,
        /// Directory for the Parquet file.
        #[arg(long, default_value = "data")]
        save_dir: PathBuf,
    },
    /// Create a table from a Parquet or CSV file and copy its rows in, in one transaction.
    Push {
        /// A `.parquet` or `.csv` file (CSV with a header line).
        #[arg(long)]
        file: PathBuf,
        /// `table` or `schema.table`.
        #[arg(long)]
        table_name: String,
        /// What to do if the table exists.
        #[arg(long, value_enum, default_value_t = IfExistsArg::Fail)]
        if_exists: IfExistsArg,
    },
    /// Drop a table, after confirmation on a terminal (or with --yes).
    Drop {
        /// `table` or `schema.table`.
        #[arg(long)]
        table_name: String,
        /// Do not ask; needed when no one is at a terminal to answer.
        #[arg(long)]
        yes: bool,
    },
}

/// `--if-exists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IfExistsArg {
    /// Stop with an error and change nothing.
    Fail,
    /// Replace the table with the file's contents (atomically).
    Replace,
    /// Add the file's rows to the table.
    Append,
}

impl From<IfExistsArg> for IfExists {
    fn from(arg: IfExistsArg) -> IfExists {
        match arg {
            IfExistsArg::Fail => IfExists::Fail,
            IfExistsArg::Replace => IfExists::Replace,
            IfExistsArg::Append => IfExists::Append,
        }
    }
}

pub(super) fn run(args: PgArgs) -> Result<()> {
    let table_text = match &args.command {
        PgCommand::Show { table_name, .. }
        | PgCommand::Load { table_name, .. }
        | PgCommand::Push { table_name, .. }
        | PgCommand::Drop { table_name, .. } => table_name,
    };
    // A bad name is reported before anything connects.
    let table = TableName::parse(table_text)?;
    if let PgCommand::Push { file, .. } = &args.command {
        if !file.is_file() {
            bail!("{}: no such file", file.display());
        }
    }
    let config = read_config(args.config.as_deref())?;
    let settings = connect::ConnectionSettings::resolve(
        args.database_url.as_deref(),
        &config.postgres,
        &|key| std::env::var(key).ok(),
    )?;
    let mut client = connect::connect(&settings)?;

    match args.command {
        PgCommand::Show { limit, .. } => {
            let preview = pg::show_table(&mut client, &table, limit)?;
            print!("{preview}");
        }
        PgCommand::Load { save_dir, .. } => {
            let dest = save_dir.join(format!("{table}.parquet"));
            let loaded = pg::load_table(&mut client, &settings, &table, &dest)?;
            for note in &loaded.notes {
                eprintln!("note: {note}");
            }
            println!(
                "saved {} rows × {} columns of {table} to {}",
                loaded.rows,
                loaded.columns,
                loaded.path.display()
            );
        }
        PgCommand::Push {
            file, if_exists, ..
        } => {
            let pushed = pg::push_file(&mut client, &file, &table, if_exists.into())?;
            println!(
                "{} table {table}: {} rows from {}",
                pushed.action,
                pushed.rows,
                file.display()
            );
        }
        PgCommand::Drop { yes, .. } => {
            let info = pg::lookup_table(&mut client, &table)?;
            if !info.is_table() {
                return Err(pg::PgError::NotATable {
                    table: table.to_string(),
                    kind: info.kind,
                }
                .into());
            }
            if !yes {
                let rows = pg::count_rows(&mut client, &table)?;
                confirm_drop(&table, rows, &settings.target())?;
            }
            pg::drop_table(&mut client, &table)?;
            println!("dropped table {table}");
        }
    }
    Ok(())
}

/// The config named by `--config`, else `config.toml` if present, else defaults
/// (the connection then comes from the environment alone).
fn read_config(flag: Option<&Path>) -> Result<Config> {
    match flag {
        Some(path) => super::load_config(path),
        None if Path::new("config.toml").is_file() => Config::load(Path::new("config.toml")),
        None => Ok(Config::default()),
    }
}

/// Ask on the terminal before dropping; refuse when there is no terminal to ask on.
fn confirm_drop(table: &TableName, rows: u64, target: &str) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "refusing to drop table {table} without confirmation: standard input is not a terminal; pass --yes to drop it"
        );
    }
    let mut stderr = std::io::stderr();
    write!(
        stderr,
        "drop table {table} ({rows} rows) on {target}? this cannot be undone [y/N] "
    )?;
    stderr.flush()?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        bail!("table {table} was not dropped");
    }
    Ok(())
}
