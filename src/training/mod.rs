//! The training side: from a config to a saved, evaluated, tracked bundle.
//!
//! * [`prepare`] loads and validates the events, resolves the cutoff and splits;
//! * [`fit`] trains every enabled model on the training part (through the
//!   [`registry`](crate::registry)) and assembles the [`Bundle`](crate::bundle::Bundle);
//! * [`run`] is the whole sequence — prepare, fit, save, evaluate — timed;
//! * [`rolling`] trains and evaluates at several cutoffs and pools the shoppers;
//! * [`tune`] searches the settings on a validation window cut from the training period.
//!
//! The CLI adds printing and experiment tracking around [`run`]; tests and
//! benchmarks call these directly. Nothing below this module (models, rank,
//! bundle, engine) imports it.

pub mod fit;
pub mod prepare;
pub mod rolling;
pub mod run;
pub mod tune;

pub use fit::{fit, fit_with, FitOptions};
pub use prepare::{data_fingerprint, prepare, Prepared};
pub use run::{run, Observer, Quiet, RunSettings, Trained};

#[cfg(test)]
mod suite;
