//! The `recsys` binary: parse arguments, run, report errors.

use std::process::ExitCode;

use clap::Parser;

// The service keeps many small long-lived allocations (recent events and
// shown items per shopper) beside every request's short-lived buffers; glibc's
// allocator fragments under that mix (its `_int_malloc` took 6% of the service's
// CPU with feedback tracking on). mimalloc's size-segregated pages do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = recsys::cli::Cli::parse();
    match recsys::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `recsys … | head` closing the pipe is not a failure.
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("recsys: {err:#}");
            ExitCode::FAILURE
        }
    }
}
