//! `frontline-routing`: the agents routing assigns tickets to.

use std::net::SocketAddr;

use clap::Parser;
use frontline_runtime::config::CommonConfig;

/// Frontline routing: agents, and which agent has each ticket, and why.
#[derive(Debug, Parser)]
#[command(name = "frontline-routing", version, about)]
struct Cli {
    #[command(flatten)]
    common: CommonConfig,

    /// Address to serve gRPC on.
    #[arg(long, env = "FRONTLINE_LISTEN", default_value = "0.0.0.0:50053")]
    listen: SocketAddr,

    /// How long after handling a customer an agent still counts as the one who knows
    /// them (assignment rule 2), in hours.
    #[arg(long, env = "FRONTLINE_AFFINITY_WINDOW_HOURS", default_value_t = 720)]
    affinity_window_hours: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = frontline_routing::Settings {
        affinity_window: i64::from(cli.affinity_window_hours) * 3_600_000,
    };
    frontline_routing::service_with(settings)
        .run_main(cli.common, cli.listen)
        .await?;
    Ok(())
}
