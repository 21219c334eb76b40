//! `frontline note`: an internal note on a ticket, never shown to the customer
//! (conversation AddNote).

use clap::Args;
use frontline_proto::v1;

use super::text_or_stdin;
use crate::{client::Global, output};

/// The `note` command line.
#[derive(Debug, Args)]
pub struct Note {
    /// The ticket (UUID).
    ticket_id: String,
    /// The note; `-` reads it from stdin.
    body: String,
    /// Fail with ABORTED unless the ticket is at this version.
    #[arg(long, value_name = "VERSION")]
    expected_version: Option<u64>,
    /// A key that records the note once however often it is sent.
    #[arg(long, value_name = "KEY", default_value = "")]
    idempotency_key: String,
    #[command(flatten)]
    global: Global,
}

impl Note {
    /// Adds the note.
    pub async fn run(self) -> anyhow::Result<()> {
        let request = v1::AddNoteRequest {
            ticket_id: self.ticket_id,
            body: text_or_stdin(&self.body)?,
            expected_version: self.expected_version,
            idempotency_key: self.idempotency_key,
        };
        let answer = self
            .global
            .conversation()
            .await?
            .add_note(request)
            .await?
            .into_inner();
        if self.global.json {
            return output::message(&answer);
        }
        output::line(output::change("noted", answer.change.as_ref()))
    }
}
