//! `frontline`: the command-line client of Frontline's services — submit, reply,
//! note, solve, show and watch tickets; agents, the queue, tiers, metrics and a
//! live `top` — plus operations: mint tokens, generate and rotate the
//! key-encryption key, rebuild read models, follow product feedback.
//!
//! One file per command under `cmd/`; [`client`] connects (addresses, token, TLS),
//! [`output`] prints (readable, or `--json`), [`exit`] maps failures to exit codes.
//! See `docs/cli.md`.

mod client;
mod cmd;
mod exit;
mod output;

use std::process::ExitCode;

use clap::Parser;

/// Frontline command-line client. Exit codes: 0 done, 2 usage, 10 + the gRPC code
/// when a service refuses (15 NOT_FOUND, 17 PERMISSION_DENIED, 24 UNAVAILABLE, 26
/// UNAUTHENTICATED, ...), 1 anything else.
#[derive(Debug, Parser)]
#[command(
    name = "frontline",
    version,
    about,
    after_help = "Exit codes: 0 done; 2 usage (bad arguments, no token); 10 + the gRPC status \
                  code when a service refuses (13 INVALID_ARGUMENT, 15 NOT_FOUND, 17 \
                  PERMISSION_DENIED, 24 UNAVAILABLE also when unreachable, 26 \
                  UNAUTHENTICATED, ...); 1 anything else. See docs/cli.md."
)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if exit::broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(exit::report(&e)),
    }
}
