//! `frontline`: a small command-line client. For now it mints bearer tokens for
//! local use (`frontline token --role agent --subject ana --tenant acme`),
//! generates key-encryption keys (`frontline kek`), rotates the one in use
//! (`frontline rotate-kek`), rebuilds analytics' read models
//! (`frontline rebuild-read-models`) and follows product feedback from the log
//! (`frontline follow-feedback`).

mod feedback;
mod rebuild;

use std::{collections::BTreeSet, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use frontline_domain::{Actor, Caller, Role, TenantId, TenantScope};
use frontline_privacy::NatsKeyStore;
use frontline_runtime::config::KekConfig;

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
    /// Wraps every customer's data key that is still wrapped with the previous
    /// key-encryption key (FRONTLINE_KEK_PREVIOUS) with the new one (FRONTLINE_KEK).
    /// Run it while the services run with both; repeating it is harmless. See the
    /// README, "Personal data".
    RotateKek {
        /// NATS server URL(s), comma-separated.
        #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        /// The event log's stream (its keys live in `<stream>_KEYS`).
        #[arg(long, env = "FRONTLINE_STREAM", default_value = "FRONTLINE")]
        stream: String,
        /// The new key and the previous one.
        #[command(flatten)]
        kek: KekConfig,
    },
    /// Rebuilds every analytics read model from the log into a new generation
    /// beside the live one (which keeps serving), then follows it until it is
    /// live. Needs a token of an admin of every tenant (`--tenant '*'`).
    RebuildReadModels {
        /// The analytics service.
        #[arg(
            long,
            env = "FRONTLINE_ANALYTICS",
            default_value = "http://127.0.0.1:50054"
        )]
        analytics: String,
        /// A bearer token of an admin of every tenant.
        #[arg(long, env = "FRONTLINE_TOKEN", hide_env_values = true)]
        token: String,
        /// Start it and return, without following it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Prints customers' product feedback as it lands on the log
    /// (`frontline.feedback.>`), from the first not yet seen by `--durable`.
    FollowFeedback {
        /// NATS server URL.
        #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        /// The event log's stream.
        #[arg(long, env = "FRONTLINE_STREAM", default_value = "FRONTLINE")]
        stream: String,
        /// The reader's name, e.g. the team's: a durable consumer that remembers
        /// what it printed. One name per reader (two readers sharing a name split
        /// the feedback between them).
        #[arg(long)]
        durable: String,
        /// Only this product area; repeat for several.
        #[arg(long = "product-area", value_name = "AREA")]
        product_areas: Vec<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
        /// The key-encryption key, to read the customers' words.
        #[command(flatten)]
        kek: KekConfig,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
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
        Command::RotateKek {
            nats_url,
            stream,
            kek,
        } => rotate(&nats_url, &stream, &kek).await?,
        Command::RebuildReadModels {
            analytics,
            token,
            no_wait,
        } => rebuild::run(&analytics, &token, !no_wait).await?,
        Command::FollowFeedback {
            nats_url,
            stream,
            durable,
            product_areas,
            json,
            limit,
            kek,
        } => {
            let config = frontline_eventlog::LogConfig {
                stream,
                kek: Some(kek.load().map_err(anyhow::Error::msg)?),
                previous_kek: kek.load_previous().map_err(anyhow::Error::msg)?,
                ..Default::default()
            };
            let follow = feedback::Follow {
                durable,
                product_areas,
                json,
                limit,
            };
            feedback::run(&nats_url, config, &follow, &mut std::io::stdout().lock()).await?;
        }
    }
    Ok(())
}

/// Wraps the stream's data keys with the new KEK.
async fn rotate(nats_url: &str, stream: &str, keks: &KekConfig) -> anyhow::Result<()> {
    let kek = keks.load().map_err(anyhow::Error::msg)?;
    let previous = keks.load_previous().map_err(anyhow::Error::msg)?.context(
        "set FRONTLINE_KEK_PREVIOUS (or FRONTLINE_KEK_PREVIOUS_FILE) to the key being replaced",
    )?;
    let bucket = frontline_eventlog::LogConfig {
        stream: stream.to_string(),
        ..Default::default()
    }
    .key_bucket();
    let client = async_nats::connect(nats_url)
        .await
        .with_context(|| format!("connect to NATS at {nats_url}"))?;
    let js = async_nats::jetstream::new(client);
    js.get_key_value(&bucket)
        .await
        .with_context(|| format!("no key bucket {bucket}: is FRONTLINE_STREAM right?"))?;
    let store = NatsKeyStore::open(&js, &bucket, 1, kek, Some(previous)).await?;
    let done = store.rotate().await?;
    println!(
        "{bucket}: {} wrapped with the new key, {} already were, {} destroyed; \
         FRONTLINE_KEK_PREVIOUS can go now",
        done.rewrapped, done.current, done.destroyed
    );
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
