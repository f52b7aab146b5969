//! recsys: an e-commerce recommender, from raw shopper events to ranked items.
//!
//! The library is organised by concern; `src/main.rs` is a thin shell around
//! [`cli`].
//!
//! * [`data`] — loading and validating events, the time split, id maps, the
//!   interaction matrix, synthetic data;
//! * [`models`] — the recommenders (`popular`, `history`, `als`) behind one trait;
//! * [`rank`] — the two-stage recommender: candidates, features, GBDT re-ranker;
//! * [`engine`] — the live scoring engine: one answer function for
//!   evaluation, the CLI and the service;
//! * [`eval`] — ranking metrics and the evaluation report;
//! * [`experiment`] — A/B tests between bundles: stable assignment and the
//!   per-variant report with its statistics;
//! * [`training`] — the training side, from config to [`bundle`];
//! * [`bundle`] — versioned model bundles on disk ([`npy`] arrays);
//! * [`registry`] — every model's fit, save and load, one line each;
//! * [`serve`] — the HTTP recommendation service;
//! * [`storage`] — S3 and PostgreSQL tooling;
//! * [`tracking`] — MLflow experiment tracking;
//! * [`config`] — `config.toml`;
//! * [`logging`] — levelled text or JSON logs on stderr;
//! * [`cli`] — the `recsys` commands.
#![deny(missing_docs)]

pub mod bundle;
pub mod cli;
pub mod config;
pub mod data;
pub mod engine;
pub mod eval;
pub mod experiment;
pub mod fsio;
pub mod logging;
pub mod memory;
pub mod models;
pub mod npy;
pub mod progress;
pub mod rank;
pub mod registry;
pub mod rng;
pub mod serve;
pub mod storage;
pub mod tracking;
pub mod training;
