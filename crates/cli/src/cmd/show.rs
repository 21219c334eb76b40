//! `frontline show`: a ticket and its timeline (conversation GetTicket and
//! GetTicketHistory), one line per event.

use clap::Args;
use frontline_proto::v1;

use crate::{client::Global, output};

/// The `show` command line.
#[derive(Debug, Args)]
pub struct Show {
    /// The ticket (UUID).
    ticket_id: String,
    /// Show the ticket as it was after this many events (the timeline stays whole).
    #[arg(long, value_name = "VERSION")]
    as_of_version: Option<u64>,
    #[command(flatten)]
    global: Global,
}

impl Show {
    /// Fetches and prints the ticket and its history. With `--json`, one object:
    /// GetTicketResponse's `ticket` and GetTicketHistoryResponse's `events`.
    pub async fn run(self) -> anyhow::Result<()> {
        let mut client = self.global.conversation().await?;
        let ticket = client
            .get_ticket(v1::GetTicketRequest {
                ticket_id: self.ticket_id.clone(),
                as_of_version: self.as_of_version,
                as_of_time: None,
            })
            .await?
            .into_inner();
        let history = client
            .get_ticket_history(v1::GetTicketHistoryRequest {
                ticket_id: self.ticket_id.clone(),
            })
            .await?
            .into_inner();
        if self.global.json {
            let mut both = output::to_json(&ticket)?;
            if let (Some(object), serde_json::Value::Object(events)) =
                (both.as_object_mut(), output::to_json(&history)?)
            {
                object.extend(events);
            }
            return output::json(&both);
        }
        let Some(t) = ticket.ticket else {
            anyhow::bail!("the service answered without the ticket");
        };
        for line in header(&t) {
            output::line(line)?;
        }
        output::line("")?;
        output::line("Timeline:")?;
        for e in &history.events {
            output::line(timeline_line(e, &t.messages))?;
        }
        Ok(())
    }
}

/// The ticket's facts, a line each.
fn header(t: &v1::Ticket) -> Vec<String> {
    let mut lines = vec![
        format!(
            "Ticket    {}  [{}]  version {}",
            t.ticket_id,
            output::status(t.status),
            t.version
        ),
        format!("Subject   {}", t.subject),
        format!(
            "Customer  {}  (tenant {}, via {})",
            t.customer_id,
            t.tenant,
            output::channel(t.channel)
        ),
        format!(
            "Area      {}  priority {}",
            t.product_area,
            output::priority(t.priority)
        ),
        format!(
            "Assignee  {}",
            if t.assignee.is_empty() {
                "-"
            } else {
                &t.assignee
            }
        ),
        format!(
            "Opened    {}   updated {}",
            output::time(t.opened_at.as_ref()),
            output::time(t.updated_at.as_ref())
        ),
    ];
    if t.solved_at.is_some() {
        lines.push(format!(
            "Solved    {}{}",
            output::time(t.solved_at.as_ref()),
            if t.declined { " (declined)" } else { "" }
        ));
    }
    if t.closed_at.is_some() {
        lines.push(format!("Closed    {}", output::time(t.closed_at.as_ref())));
    }
    if t.reopen_count > 0 {
        lines.push(format!("Reopened  {} times", t.reopen_count));
    }
    if let Some(s) = &t.satisfaction {
        lines.push(format!("Rating    {} of 5  {}", s.score, s.comment));
    }
    if !t.merged_into_ticket_id.is_empty() {
        lines.push(format!("Merged    into {}", t.merged_into_ticket_id));
    }
    if t.personal_data_erased {
        lines.push("Erased    the customer was forgotten".into());
    }
    for f in &t.customer_facts {
        lines.push(format!("Fact      {} = {}", f.key, f.value));
    }
    lines
}

/// One event: time, version, actor, type, what happened, and the start of the
/// message it added (of this ticket's own messages).
fn timeline_line(e: &v1::HistoryEntry, messages: &[v1::Message]) -> String {
    let mut line = format!(
        "{}  v{:<3} {:<28} {:<20} {}",
        output::time(e.occurred_at.as_ref()),
        e.version,
        output::actor(e.actor.as_ref()),
        output::event_type(&e.event_type),
        e.summary
    );
    if let Some(m) = messages
        .iter()
        .find(|m| m.version == e.version && m.ticket_id.is_empty())
    {
        line.push_str(&format!(": \"{}\"", output::excerpt(&m.body, 60)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_line_says_when_who_and_what() {
        let entry = v1::HistoryEntry {
            version: 2,
            event_type: "frontline.v1.AgentReplied".into(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: 60,
                nanos: 0,
            }),
            actor: Some(v1::Actor {
                id: "ana".into(),
                role: v1::Role::Agent.into(),
            }),
            summary: "replied".into(),
            ..Default::default()
        };
        let message = v1::Message {
            version: 2,
            body: "Which firmware?".into(),
            ..Default::default()
        };
        let line = timeline_line(&entry, &[message]);
        assert!(line.starts_with("1970-01-01 00:01:00Z  v2 "), "{line}");
        assert!(line.contains("ana (agent)"), "{line}");
        assert!(line.contains("AgentReplied"), "{line}");
        assert!(line.ends_with("replied: \"Which firmware?\""), "{line}");
    }
}
