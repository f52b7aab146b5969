//! End-to-end tests of the `recsys` binary: one test binary, a module per area.

mod airflow;
mod api_fuzz;
mod cli;
mod faults;
mod pg;
mod s3;
mod serve;
mod tracking;
