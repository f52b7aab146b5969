//! `recsys generate`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::data::generate::{generate, GenerateSpec, ItemLayout, OutputFormat};

/// File format of generated events.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// `events.csv`.
    Csv,
    /// `events.parquet`.
    Parquet,
}

/// How the catalogue is written.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LayoutArg {
    /// `item_features.csv`, one row per item.
    Flat,
    /// The RetailRocket download's files: `item_properties_part1.csv`,
    /// `item_properties_part2.csv` (values changing over time) and `category_tree.csv`.
    RetailrocketRaw,
}

/// Arguments of `recsys generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of visitors.
    #[arg(long, default_value_t = 1_407_580)]
    pub users: usize,
    /// Number of items.
    #[arg(long, default_value_t = 235_061)]
    pub items: usize,
    /// Number of events.
    #[arg(long, default_value_t = 2_756_101)]
    pub events: usize,
    /// Random seed: the same seed writes the same files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Format of the events file.
    #[arg(long, value_enum, default_value_t = FormatArg::Csv)]
    pub format: FormatArg,
    /// How the catalogue is written (`retailrocket-raw`: train with `[data]
    /// item_properties` and `category_tree`).
    #[arg(long, value_enum, default_value_t = LayoutArg::Flat)]
    pub layout: LayoutArg,
}

pub(super) fn run(args: GenerateArgs) -> Result<()> {
    let spec = GenerateSpec {
        users: args.users,
        items: args.items,
        events: args.events,
        seed: args.seed,
    };
    let format = match args.format {
        FormatArg::Csv => OutputFormat::Csv,
        FormatArg::Parquet => OutputFormat::Parquet,
    };
    let started = std::time::Instant::now();
    let layout = match args.layout {
        LayoutArg::Flat => ItemLayout::Flat,
        LayoutArg::RetailrocketRaw => ItemLayout::RetailRocketRaw,
    };
    let summary = generate(&spec, &args.out, format, layout)?;
    let [views, carts, buys] = summary.kind_counts;
    eprintln!(
        "wrote {} events ({views} views, {carts} add-to-carts, {buys} transactions) by {} visitors on {} items in {:.1}s",
        summary.events,
        summary.visitors,
        summary.items,
        started.elapsed().as_secs_f64()
    );
    println!("{}", summary.events_path.display());
    for path in &summary.item_files {
        println!("{}", path.display());
    }
    Ok(())
}
