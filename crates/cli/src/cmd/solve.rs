//! `frontline solve`: marks a ticket solved (conversation Solve).

use clap::Args;
use frontline_proto::v1;

use super::text_or_stdin;
use crate::{client::Global, output};

/// The `solve` command line.
#[derive(Debug, Args)]
pub struct Solve {
    /// The ticket (UUID).
    ticket_id: String,
    /// How it was solved (internal; may be empty); `-` reads it from stdin.
    #[arg(long, default_value = "")]
    resolution: String,
    /// Fail with ABORTED unless the ticket is at this version.
    #[arg(long, value_name = "VERSION")]
    expected_version: Option<u64>,
    #[command(flatten)]
    global: Global,
}

impl Solve {
    /// Solves the ticket.
    pub async fn run(self) -> anyhow::Result<()> {
        let request = v1::SolveRequest {
            ticket_id: self.ticket_id,
            resolution: text_or_stdin(&self.resolution)?,
            expected_version: self.expected_version,
        };
        let answer = self
            .global
            .conversation()
            .await?
            .solve(request)
            .await?
            .into_inner();
        if self.global.json {
            return output::message(&answer);
        }
        output::line(output::change("solved", answer.change.as_ref()))
    }
}
