//! `frontline-analytics`: read models, ticket search and support metrics.

use std::net::SocketAddr;

use clap::Parser;
use frontline_runtime::config::CommonConfig;

/// Frontline analytics: the log in PostgreSQL read models; search and metrics.
#[derive(Debug, Parser)]
#[command(name = "frontline-analytics", version, about)]
struct Cli {
    #[command(flatten)]
    common: CommonConfig,

    /// Address to serve gRPC on.
    #[arg(long, env = "FRONTLINE_LISTEN", default_value = "0.0.0.0:50054")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    frontline_analytics::service()
        .run_main(cli.common, cli.listen)
        .await?;
    Ok(())
}
