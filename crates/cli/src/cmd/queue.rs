//! `frontline queue`: the tickets waiting for an agent, in the order they will be
//! assigned (routing ListQueue).

use clap::Args;
use frontline_proto::v1;

use crate::{client::Global, output};

/// The `queue` command line.
#[derive(Debug, Args)]
pub struct Queue {
    /// At most this many tickets, 1 to 500 (default 100).
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: u32,
    #[command(flatten)]
    global: Global,
}

impl Queue {
    /// Lists the queue, next first.
    pub async fn run(self) -> anyhow::Result<()> {
        let answer = self
            .global
            .routing()
            .await?
            .list_queue(v1::ListQueueRequest {
                page_size: self.limit,
            })
            .await?
            .into_inner();
        if self.global.json {
            return output::message(&answer);
        }
        for line in table(&answer.tickets) {
            output::line(line)?;
        }
        Ok(())
    }
}

/// The queue as a table with a header.
pub fn table(tickets: &[v1::QueuedTicket]) -> Vec<String> {
    let mut lines = vec![format!(
        "{:>3}  {:<36}  {:<8}  {:<8}  {:<20}  {:<20}  {}",
        "#", "TICKET", "TIER", "PRIORITY", "AREA", "WAITING SINCE", "FOR"
    )];
    for (i, t) in tickets.iter().enumerate() {
        lines.push(format!(
            "{:>3}  {:<36}  {:<8}  {:<8}  {:<20}  {:<20}  {}",
            i + 1,
            t.ticket_id,
            output::tier(t.tier),
            output::priority(t.priority),
            t.product_area,
            output::time(t.queued_at.as_ref()),
            output::age(t.queued_at.as_ref())
        ));
    }
    lines
}
