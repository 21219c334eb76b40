//! `frontline agents`: the tenant's agents with status and load (routing ListAgents).

use clap::Args;
use frontline_proto::v1;

use crate::{client::Global, output};

/// The `agents` command line.
#[derive(Debug, Args)]
pub struct Agents {
    /// Include deactivated agents.
    #[arg(long)]
    include_inactive: bool,
    #[command(flatten)]
    global: Global,
}

impl Agents {
    /// Lists the agents, one a line.
    pub async fn run(self) -> anyhow::Result<()> {
        let answer = self
            .global
            .routing()
            .await?
            .list_agents(v1::ListAgentsRequest {
                include_inactive: self.include_inactive,
            })
            .await?
            .into_inner();
        if self.global.json {
            return output::message(&answer);
        }
        for line in table(&answer.agents) {
            output::line(line)?;
        }
        Ok(())
    }
}

/// The agents as a table with a header.
pub fn table(agents: &[v1::Agent]) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<20} {:<10} {:>9}  {:<12} {:<24} {}",
        "AGENT", "STATUS", "LOAD", "TEAM", "NAME", "SKILLS"
    )];
    for a in agents {
        let profile = a.profile.clone().unwrap_or_default();
        let status = if a.active {
            output::agent_status(a.status)
        } else {
            "inactive".into()
        };
        let skills = profile
            .skills
            .iter()
            .map(|s| format!("{}:{}", s.product_area, s.level))
            .collect::<Vec<_>>()
            .join(",");
        lines.push(format!(
            "{:<20} {:<10} {:>9}  {:<12} {:<24} {}",
            a.agent_id,
            status,
            format!("{}/{}", a.load, profile.capacity),
            if profile.team.is_empty() {
                "-"
            } else {
                &profile.team
            },
            profile.display_name,
            skills
        ));
    }
    lines
}
