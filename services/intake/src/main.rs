//! `frontline-intake`: every channel's way in. See the crate docs for the API.

use std::net::SocketAddr;

use clap::Parser;
use frontline_runtime::config::CommonConfig;

/// Frontline intake: opens and continues tickets from every channel.
#[derive(Debug, Parser)]
#[command(name = "frontline-intake", version, about)]
struct Cli {
    #[command(flatten)]
    common: CommonConfig,

    /// Address to serve gRPC on.
    #[arg(long, env = "FRONTLINE_LISTEN", default_value = "0.0.0.0:50051")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    frontline_intake::service()
        .run_main(cli.common, cli.listen)
        .await?;
    Ok(())
}
