//! `frontline`: a small command-line client. For now it mints bearer tokens for
//! local use (`frontline token --role agent --subject ana --tenant acme`) and
//! generates key-encryption keys (`frontline kek`).

use std::{collections::BTreeSet, time::Duration};

use clap::{Parser, Subcommand};
use frontline_domain::{Actor, Caller, Role, TenantId, TenantScope};

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
        /// A tenant the caller acts in; repeat for several (not for a
        /// customer_system). `*` covers every tenant (admins only).
        #[arg(long = "tenant", value_name = "TENANT", required = true)]
        tenants: Vec<String>,
        /// Validity in hours (services refuse tokens living longer than
        /// FRONTLINE_TOKEN_MAX_LIFETIME_SECS, 24 h by default).
        #[arg(long, default_value_t = 12)]
        hours: u64,
        /// The services' signing secret.
        #[arg(long, env = "FRONTLINE_JWT_SECRET", hide_env_values = true)]
        secret: String,
    },
    /// Prints a new random key-encryption key (base64 of 32 bytes) for
    /// FRONTLINE_KEK / FRONTLINE_KEK_FILE. Keep it safe: losing it loses every
    /// customer's personal data.
    Kek,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Token {
            role,
            subject,
            tenants,
            hours,
            secret,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown role {role:?}; use customer_system, agent, manager or admin"
                )
            })?;
            let caller = Caller::new(Actor::new(subject, role), scope(&tenants)?)?;
            let token = frontline_runtime::auth::mint(
                &secret,
                &caller,
                Duration::from_secs(hours.saturating_mul(3600)),
            )?;
            println!("{token}");
        }
        Command::Kek => println!("{}", frontline_privacy::Kek::generate_base64()),
    }
    Ok(())
}

/// The scope `--tenant` values name: `*` alone for every tenant, else the names.
fn scope(tenants: &[String]) -> anyhow::Result<TenantScope> {
    if tenants.iter().any(|t| t == "*") {
        anyhow::ensure!(
            tenants.len() == 1,
            "--tenant '*' covers every tenant: give it alone"
        );
        return Ok(TenantScope::All);
    }
    let named = tenants
        .iter()
        .map(|t| TenantId::parse("--tenant", t))
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok(TenantScope::Named(named))
}
