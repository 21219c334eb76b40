//! `frontline watch`: a ticket's events as they happen (conversation WatchTicket),
//! one line each, until Ctrl-C.

use clap::Args;
use frontline_proto::v1;

use crate::{client::Global, output};

/// The `watch` command line.
#[derive(Debug, Args)]
pub struct Watch {
    /// The ticket (UUID).
    ticket_id: String,
    /// Start after this version: 0 replays every event first, the current version
    /// shows only what comes next.
    #[arg(long, value_name = "VERSION", default_value_t = 0)]
    from_version: u64,
    #[command(flatten)]
    global: Global,
}

impl Watch {
    /// Prints every update until Ctrl-C or the service ends the stream. With
    /// `--json`, one JSON object (a TicketUpdate) per line.
    pub async fn run(self) -> anyhow::Result<()> {
        let mut updates = self
            .global
            .conversation()
            .await?
            .watch_ticket(v1::WatchTicketRequest {
                ticket_id: self.ticket_id,
                from_version: self.from_version,
            })
            .await?
            .into_inner();
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            let update = tokio::select! {
                _ = &mut ctrl_c => return Ok(()),
                update = updates.message() => update?,
            };
            let Some(update) = update else {
                return Ok(());
            };
            if self.global.json {
                output::message_line(&update)?;
            } else {
                output::line(line(&update))?;
            }
        }
    }
}

/// One update: time, version, actor, status after it, what happened.
fn line(u: &v1::TicketUpdate) -> String {
    let mut line = format!(
        "{}  v{:<3} {:<28} [{}] {}",
        output::time(u.occurred_at.as_ref()),
        u.version,
        output::actor(u.actor.as_ref()),
        output::status(u.status),
        u.summary
    );
    if let Some(m) = u.messages.first() {
        line.push_str(&format!(": \"{}\"", output::excerpt(&m.body, 60)));
    }
    line
}
