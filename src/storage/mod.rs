//! Storage tooling: object storage (`s3`) and PostgreSQL (`pg`).
//!
//! These move datasets, bundles and result tables between the machine running
//! `recsys` and the places a shop keeps them. Each backend lives in its own
//! module; the CLI commands in `cli::s3` and `cli::pg` are thin shells over them.

pub mod pg;
pub mod s3;
