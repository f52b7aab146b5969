//! The training side: from a config to a saved, evaluated, tracked bundle.
//!
//! * [`prepare`] loads and validates the events, resolves the cutoff and splits;
//! * [`fit`] trains every enabled model on the training part and assembles the
//!   [`Bundle`](crate::bundle::Bundle).
//!
//! The CLI adds printing and experiment tracking around these; tests and
//! benchmarks call them directly. Nothing below this module (models, rank,
//! bundle, engine) imports it.

pub mod fit;
pub mod prepare;

pub use fit::{fit, fit_with, FitOptions};
pub use prepare::{data_fingerprint, prepare, Prepared};

#[cfg(test)]
mod suite;
