//! `frontline reply`: a public reply to the customer (conversation Reply).

use clap::Args;
use frontline_proto::v1;

use super::text_or_stdin;
use crate::{client::Global, output};

/// The `reply` command line.
#[derive(Debug, Args)]
pub struct Reply {
    /// The ticket (UUID).
    ticket_id: String,
    /// The reply; `-` reads it from stdin.
    body: String,
    /// The reply waits on the customer: the ticket goes to pending.
    #[arg(long)]
    pending: bool,
    /// Fail with ABORTED unless the ticket is at this version.
    #[arg(long, value_name = "VERSION")]
    expected_version: Option<u64>,
    /// A key that records the reply once however often it is sent.
    #[arg(long, value_name = "KEY", default_value = "")]
    idempotency_key: String,
    #[command(flatten)]
    global: Global,
}

impl Reply {
    /// Sends the reply.
    pub async fn run(self) -> anyhow::Result<()> {
        let request = v1::ReplyRequest {
            ticket_id: self.ticket_id,
            body: text_or_stdin(&self.body)?,
            awaiting_customer: self.pending,
            expected_version: self.expected_version,
            idempotency_key: self.idempotency_key,
        };
        let answer = self
            .global
            .conversation()
            .await?
            .reply(request)
            .await?
            .into_inner();
        if self.global.json {
            return output::message(&answer);
        }
        output::line(output::change("replied", answer.change.as_ref()))
    }
}
