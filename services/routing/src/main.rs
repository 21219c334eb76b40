//! `frontline-routing`: the agents routing assigns tickets to.

use std::net::SocketAddr;

use clap::Parser;
use frontline_runtime::config::CommonConfig;

/// Frontline routing: agents, their skills, capacity and availability.
#[derive(Debug, Parser)]
#[command(name = "frontline-routing", version, about)]
struct Cli {
    #[command(flatten)]
    common: CommonConfig,

    /// Address to serve gRPC on.
    #[arg(long, env = "FRONTLINE_LISTEN", default_value = "0.0.0.0:50053")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    frontline_routing::service()
        .run_main(cli.common, cli.listen)
        .await?;
    Ok(())
}
