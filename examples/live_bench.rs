//! `live_bench`: what one live answer costs, measured on a trained bundle.
//!
//! Loads the bundle as the service does (both ALS indexes built, their recall
//! against exact search measured), then times, one shopper at a time on one
//! thread:
//!
//! * ALS fold-in: solving a shopper's factor vector from their training events
//!   (as if they had all arrived since training) — the work a known shopper's
//!   first new click or a new shopper's views cost;
//! * the candidate index: ALS top 50 for that vector from the inner-product
//!   index, against the exact pass over every item;
//! * whole answers (`Engine::answer`, k = 10) of the served model for known
//!   shoppers with nothing new, known shoppers with one new view, and new
//!   shoppers with three views.
//!
//! ```text
//! cargo run --release --example live_bench -- --config config.toml [--bundle DIR] [--shoppers 2000]
//! ```
//!
//! One JSON line per measurement on stdout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::json;

use recsys::config::Config;
use recsys::data::matrix::sum_by_item;
use recsys::data::EventKind;
use recsys::engine::{Engine, EngineSettings, Request, ShopperEvent};
use recsys::models::Filter;
use recsys::rng::Rng;

#[derive(Parser)]
struct Args {
    /// Config (its [rules] and [serve] model, and the artifacts directory).
    #[arg(long)]
    config: PathBuf,
    /// A bundle, or a directory of bundles (its newest); default: the config's artifacts.
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// Shoppers sampled per measurement.
    #[arg(long, default_value_t = 2000)]
    shoppers: usize,
    /// Time whole answers only (for profiling them).
    #[arg(long)]
    answers_only: bool,
}

/// Mean and 99th percentile of `micros`, in microseconds.
fn summary(micros: &mut [f64]) -> serde_json::Value {
    micros.sort_by(f64::total_cmp);
    let n = micros.len().max(1);
    let mean = micros.iter().sum::<f64>() / n as f64;
    let p = |q: f64| {
        micros
            .get(((n as f64 * q) as usize).min(n - 1))
            .copied()
            .unwrap_or(0.0)
    };
    json!({"n": micros.len(), "mean_us": mean, "p50_us": p(0.5), "p99_us": p(0.99)})
}

fn run() -> Result<()> {
    let args = Args::parse();
    let config = Config::load(&args.config)?;
    let dir = recsys::bundle::resolve(&args.bundle.unwrap_or(config.artifacts.dir.clone()))?;
    let started = Instant::now();
    let engine = Engine::load(&dir, &EngineSettings::from_config(&config))?;
    let bundle = engine.bundle();
    println!(
        "{}",
        json!({"event": "load", "bundle": engine.version, "model": engine.model,
               "seconds": started.elapsed().as_secs_f64(),
               "similar_recall_at_10": engine.similar_recall, "candidate_recall_at_50": engine.mips_recall,
               "candidate_index_tuning": bundle.als.as_ref().and_then(|a| a.index()).map(|i| i.tuning.clone())})
    );
    let train = &bundle.train;
    let mut rng = Rng::new(7);
    let users: Vec<u32> = rng
        .sample_sorted(train.users.len(), args.shoppers.min(train.users.len()))
        .into_iter()
        .map(|u| u as u32)
        .collect();

    if let Some(als) = bundle.als.as_ref().filter(|_| !args.answers_only) {
        let weights = &als.config.weights;
        let mut fold = Vec::new();
        let mut search = Vec::new();
        let mut exact = Vec::new();
        let none = Filter::none();
        for &u in &users {
            let cells = sum_by_item(
                train
                    .user_events(u)
                    .map(|e| (train.item[e], weights.of(train.kind[e])))
                    .collect(),
            );
            let t = Instant::now();
            let x = als.fold_in(&cells);
            fold.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            std::hint::black_box(als.top_items(&x, 50, &none));
            search.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            let q = recsys::models::factors::Factors {
                rows: 1,
                dim: x.len(),
                data: x,
            };
            std::hint::black_box(q.top_n_where(&als.item_factors, 50, |_, _| true));
            exact.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let factors = als.item_factors.dim;
        println!(
            "{}",
            json!({"event": "als_fold_in", "factors": factors, "time": summary(&mut fold)})
        );
        println!(
            "{}",
            json!({"event": "als_top50_index", "time": summary(&mut search)})
        );
        println!(
            "{}",
            json!({"event": "als_top50_exact", "time": summary(&mut exact)})
        );
    }

    if let Some(als) = &bundle.als {
        // Items never asked for before: the similar-items index searched, then cached.
        let mut cold = Vec::new();
        for &u in &users {
            let item = train.item[train.user_events(u).start];
            let t = Instant::now();
            std::hint::black_box(als.similar_items(item, 30));
            cold.push(t.elapsed().as_secs_f64() * 1e6);
        }
        println!(
            "{}",
            json!({"event": "similar_30_first_time", "time": summary(&mut cold)})
        );
    }

    if let Some(two_stage) = &bundle.two_stage {
        // Where a known shopper's two_stage answer goes: candidates, features, trees.
        let (mut cand, mut feat, mut trees, mut rows) = (Vec::new(), Vec::new(), Vec::new(), 0);
        for &u in &users {
            let ctx = recsys::models::Context::known(train, u);
            let filter = engine.filter(&ctx, &[], None);
            let t = Instant::now();
            let c = two_stage.candidates(std::slice::from_ref(&ctx), std::slice::from_ref(&filter));
            cand.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            let x = two_stage.context.build(std::slice::from_ref(&ctx), &c);
            feat.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            std::hint::black_box(
                two_stage
                    .booster
                    .predict(&x, recsys::rank::features::n_features()),
            );
            trees.push(t.elapsed().as_secs_f64() * 1e6);
            rows += c.len();
        }
        println!(
            "{}",
            json!({"event": "two_stage_parts", "trees": two_stage.booster.n_trees(),
                   "candidates_per_shopper": rows as f64 / users.len().max(1) as f64,
                   "candidates": summary(&mut cand), "features": summary(&mut feat), "rerank": summary(&mut trees)})
        );
    }

    let items = bundle.items.raw_ids();
    let view = |item: i64, t: i64| ShopperEvent {
        item_id: item,
        kind: EventKind::View,
        timestamp_ms: t,
    };
    let after = train.cutoff_ms + 3_600_000;
    for case in ["known", "known_one_view", "new_three_views"] {
        let mut times = Vec::new();
        for (j, &u) in users.iter().enumerate() {
            let pick = |r: u64| items[(r % items.len() as u64) as usize];
            let events: Vec<ShopperEvent> = match case {
                "known" => Vec::new(),
                "known_one_view" => vec![view(pick(rng.next_u64()), after)],
                _ => (0..3)
                    .map(|i| view(pick(rng.next_u64()), after + i))
                    .collect(),
            };
            let user_id = if case == "new_three_views" {
                -1 - j as i64
            } else {
                bundle.users.raw(u)
            };
            let t = Instant::now();
            let answer = engine.answer(&Request::new(user_id, &events, 10))?;
            times.push(t.elapsed().as_secs_f64() * 1e6);
            std::hint::black_box(answer);
        }
        println!(
            "{}",
            json!({"event": "answer", "case": case, "model": engine.model, "k": 10, "time": summary(&mut times)})
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run().context("live_bench") {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
