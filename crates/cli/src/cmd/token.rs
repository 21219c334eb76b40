//! `frontline token`: mints a bearer token for local use.

use std::{collections::BTreeSet, io::Write as _, path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Args;
use frontline_domain::{Actor, Caller, Role, TenantId, TenantScope};

use crate::output;

/// What to put in the token.
#[derive(Debug, Args)]
pub struct Token {
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
    /// Write the token to this file (readable by its owner only) instead of stdout;
    /// use it with --token-file / FRONTLINE_TOKEN_FILE.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

impl Token {
    /// Mints the token and prints (or writes) it.
    pub fn run(self) -> anyhow::Result<()> {
        let role = Role::parse(&self.role).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown role {:?}; use customer_system, agent, manager or admin",
                self.role
            )
        })?;
        let caller = Caller::new(Actor::new(self.subject, role), scope(&self.tenants)?)?;
        let token = frontline_runtime::auth::mint(
            &self.secret,
            &caller,
            Duration::from_secs(self.hours.saturating_mul(3600)),
        )?;
        match &self.out {
            None => output::line(token),
            Some(path) => write_private(path, &format!("{token}\n"))
                .with_context(|| format!("write the token to {}", path.display())),
        }
    }
}

/// Writes `text` to `path`, readable and writable by its owner only.
fn write_private(path: &PathBuf, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    // `mode` applies only to a file it creates: an existing one is made private
    // before the token goes in.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()
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
