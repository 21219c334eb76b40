//! `frontline-conversation`: a ticket's lifecycle, state and history.

use std::net::SocketAddr;

use clap::Parser;
use frontline_runtime::config::CommonConfig;

/// Frontline conversation: replies, notes, solve, reopen; tickets and their history.
#[derive(Debug, Parser)]
#[command(name = "frontline-conversation", version, about)]
struct Cli {
    #[command(flatten)]
    common: CommonConfig,

    /// Address to serve gRPC on.
    #[arg(long, env = "FRONTLINE_LISTEN", default_value = "0.0.0.0:50052")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    frontline_conversation::service()
        .run_main(cli.common, cli.listen)
        .await?;
    Ok(())
}
