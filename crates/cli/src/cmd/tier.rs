//! `frontline tier`: a customer's tier of service (routing GetCustomerTier), and
//! `frontline tier set` to change it (SetCustomerTier).

use clap::{Args, Subcommand, ValueEnum};
use frontline_proto::v1;

use crate::{client::Global, output};

/// The `tier` command line: `tier <CUSTOMER_ID>` or `tier set <CUSTOMER_ID> <TIER>`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Tier {
    #[command(subcommand)]
    set: Option<TierCommand>,
    /// The customer (UUID).
    #[arg(required = true)]
    customer_id: Option<String>,
    #[command(flatten)]
    global: Global,
}

/// `tier`'s subcommand.
#[derive(Debug, Subcommand)]
enum TierCommand {
    /// Puts a customer in a tier of service (managers and admins).
    Set(Set),
}

/// The `tier set` command line.
#[derive(Debug, Args)]
struct Set {
    /// The customer (UUID).
    customer_id: String,
    /// The tier.
    #[arg(value_enum)]
    tier: TierName,
    /// The customer's named agent (extended tier only).
    #[arg(long, value_name = "AGENT", default_value = "")]
    named_agent: String,
    #[command(flatten)]
    global: Global,
}

/// A tier on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum TierName {
    /// Automated answers first, a human one step away.
    Basic,
    /// The usual service.
    Standard,
    /// A named agent and proactive check-ins.
    Extended,
}

impl From<TierName> for v1::Tier {
    fn from(t: TierName) -> Self {
        match t {
            TierName::Basic => v1::Tier::Basic,
            TierName::Standard => v1::Tier::Standard,
            TierName::Extended => v1::Tier::Extended,
        }
    }
}

impl Tier {
    /// Reads or sets the tier and prints it.
    pub async fn run(self) -> anyhow::Result<()> {
        if let Some(TierCommand::Set(set)) = self.set {
            let answer = set
                .global
                .routing()
                .await?
                .set_customer_tier(v1::SetCustomerTierRequest {
                    customer_id: set.customer_id,
                    tier: v1::Tier::from(set.tier).into(),
                    named_agent_id: set.named_agent,
                })
                .await?
                .into_inner();
            if set.global.json {
                return output::message(&answer);
            }
            return output::line(describe(answer.tier.as_ref()));
        }
        let answer = self
            .global
            .routing()
            .await?
            .get_customer_tier(v1::GetCustomerTierRequest {
                customer_id: self.customer_id.unwrap_or_default(),
            })
            .await?
            .into_inner();
        if self.global.json {
            return output::message(&answer);
        }
        output::line(describe(answer.tier.as_ref()))
    }
}

/// `customer <id>: extended (named agent ana)`.
fn describe(tier: Option<&v1::CustomerTier>) -> String {
    let Some(t) = tier else {
        return "no tier in the answer".into();
    };
    let mut line = format!("customer {}: {}", t.customer_id, output::tier(t.tier));
    if t.default {
        line.push_str(" (the tenant's default)");
    }
    if !t.named_agent_id.is_empty() {
        line.push_str(&format!(", named agent {}", t.named_agent_id));
    }
    if !t.person_id.is_empty() {
        line.push_str(&format!(", as linked record {}", t.person_id));
    }
    line
}
