//! `frontline`: a small command-line client. For now it mints bearer tokens for
//! local use (`frontline token --role agent --subject ana`).

use std::time::Duration;

use clap::{Parser, Subcommand};
use frontline_domain::{Actor, Role};

/// Frontline command-line client.
#[derive(Debug, Parser)]
#[command(name = "frontline", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints a signed bearer token (HS256) for calling the services.
    Token {
        /// Role: customer_system, agent, manager or admin.
        #[arg(long, default_value = "agent")]
        role: String,
        /// The actor id (token subject), e.g. an agent's id.
        #[arg(long)]
        subject: String,
        /// Validity in hours.
        #[arg(long, default_value_t = 12)]
        hours: u64,
        /// The services' signing secret.
        #[arg(long, env = "FRONTLINE_JWT_SECRET", hide_env_values = true)]
        secret: String,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Token {
            role,
            subject,
            hours,
            secret,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown role {role:?}; use customer_system, agent, manager or admin"
                )
            })?;
            let token = frontline_runtime::auth::mint(
                &secret,
                &Actor::new(subject, role),
                Duration::from_secs(hours * 3600),
            )?;
            println!("{token}");
        }
    }
    Ok(())
}
