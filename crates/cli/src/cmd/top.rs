//! `frontline top`: a live view of the queue, SLA risk and the agents' load,
//! redrawn every few seconds (plain ANSI: clear the screen, print) until Ctrl-C.

use std::time::Duration;

use clap::Args;
use frontline_proto::v1;

use crate::{client::Global, exit, output};

/// How many queued tickets the view lists.
const QUEUE_ROWS: usize = 10;

/// The `top` command line.
#[derive(Debug, Args)]
pub struct Top {
    /// Seconds between refreshes.
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    every: u64,
    /// Print the view once, without clearing the screen, and end.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    global: Global,
}

impl Top {
    /// Draws the view until Ctrl-C (or once).
    pub async fn run(self) -> anyhow::Result<()> {
        let mut routing = self.global.routing().await?;
        // Metrics need a manager's token and the analytics service: without either
        // the view goes on without them.
        let mut analytics = self.global.analytics().await.ok();
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            let fetch = async {
                let queue = routing
                    .list_queue(v1::ListQueueRequest { page_size: 500 })
                    .await
                    .map(|r| r.into_inner().tickets);
                let agents = routing
                    .list_agents(v1::ListAgentsRequest::default())
                    .await
                    .map(|r| r.into_inner().agents);
                let metrics = match analytics.as_mut() {
                    Some(a) => a
                        .get_metrics(v1::GetMetricsRequest::default())
                        .await
                        .map(|r| r.into_inner().total.unwrap_or_default())
                        .map_err(|s| format!("{}: {}", exit::name(s.code()), s.message())),
                    None => Err(format!(
                        "analytics unreachable at {}",
                        self.global.analytics
                    )),
                };
                (queue, agents, metrics)
            };
            // Ctrl-C ends the view even while a refresh waits on a service that
            // stopped answering.
            let (queue, agents, metrics) = tokio::select! {
                _ = &mut ctrl_c => return Ok(()),
                fetched = fetch => fetched,
            };
            if self.once {
                let (queue, agents) = (queue?, agents?);
                let view = View {
                    queue: &queue,
                    agents: &agents,
                    metrics,
                };
                return output::line(view.render().join("\n"));
            }
            let lines = match (&queue, &agents) {
                (Ok(queue), Ok(agents)) => View {
                    queue,
                    agents,
                    metrics,
                }
                .render(),
                (Err(s), _) | (_, Err(s)) => vec![format!(
                    "routing: {}: {}",
                    exit::name(s.code()),
                    s.message()
                )],
            };
            let header = format!(
                "frontline top  {}  (every {} s; Ctrl-C ends)",
                jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%SZ"),
                self.every
            );
            // Home, clear the screen, draw.
            output::line(format!("\x1b[H\x1b[2J{header}\n\n{}", lines.join("\n")))?;
            tokio::select! {
                _ = &mut ctrl_c => return Ok(()),
                () = tokio::time::sleep(Duration::from_secs(self.every)) => {}
            }
        }
    }
}

/// What one refresh shows.
struct View<'a> {
    queue: &'a [v1::QueuedTicket],
    agents: &'a [v1::Agent],
    metrics: Result<v1::Metrics, String>,
}

impl View<'_> {
    /// The view's lines.
    fn render(&self) -> Vec<String> {
        let count =
            |f: &dyn Fn(&v1::QueuedTicket) -> bool| self.queue.iter().filter(|t| f(t)).count();
        let tiers = [v1::Tier::Extended, v1::Tier::Standard, v1::Tier::Basic]
            .map(|t| {
                format!(
                    "{} {}",
                    output::tier(t as i32),
                    count(&|q| q.tier == t as i32)
                )
            })
            .join(", ");
        let priorities = [
            v1::Priority::Urgent,
            v1::Priority::High,
            v1::Priority::Normal,
            v1::Priority::Low,
        ]
        .map(|p| {
            format!(
                "{} {}",
                output::priority(p as i32),
                count(&|q| q.priority == p as i32)
            )
        })
        .join(", ");
        let oldest = self
            .queue
            .iter()
            .filter_map(|q| q.queued_at.as_ref())
            .min_by_key(|t| (t.seconds, t.nanos));
        let mut lines = vec![format!(
            "QUEUE   {} waiting ({tiers} | {priorities}); oldest waits {}",
            self.queue.len(),
            output::age(oldest)
        )];
        lines.push(match &self.metrics {
            Ok(m) => format!(
                "SLA     {} at risk, {} breached; backlog {}; {:.1} % attained",
                m.at_risk, m.breached, m.backlog, m.sla_attainment_percent
            ),
            Err(e) => format!("SLA     - ({e})"),
        });
        let active: Vec<&v1::Agent> = self.agents.iter().filter(|a| a.active).collect();
        let with = |s: v1::AgentStatus| active.iter().filter(|a| a.status == s as i32).count();
        let load: u32 = active.iter().map(|a| a.load).sum();
        let capacity: u32 = active
            .iter()
            .map(|a| a.profile.as_ref().map_or(0, |p| p.capacity))
            .sum();
        lines.push(format!(
            "AGENTS  {} available, {} away, {} offline; load {load}/{capacity}",
            with(v1::AgentStatus::Available),
            with(v1::AgentStatus::Away),
            with(v1::AgentStatus::Offline)
        ));
        lines.push(String::new());
        lines.push(format!("{:<20} {:<10} {:>9}", "AGENT", "STATUS", "LOAD"));
        for a in &active {
            let capacity = a.profile.as_ref().map_or(0, |p| p.capacity);
            lines.push(format!(
                "{:<20} {:<10} {:>9}  {}",
                a.agent_id,
                output::agent_status(a.status),
                format!("{}/{capacity}", a.load),
                bar(a.load, capacity, 20)
            ));
        }
        lines.push(String::new());
        let mut queue = super::queue::table(self.queue);
        if queue.len() > QUEUE_ROWS + 1 {
            let more = queue.len() - QUEUE_ROWS - 1;
            queue.truncate(QUEUE_ROWS + 1);
            queue.push(format!("  … and {more} more"));
        }
        lines.extend(queue);
        lines
    }
}

/// `[#####.....]`: `load` of `capacity` in `width` cells.
fn bar(load: u32, capacity: u32, width: usize) -> String {
    let filled = if capacity == 0 {
        0
    } else {
        (load.min(capacity) as usize * width).div_ceil(capacity as usize)
    };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_bars() {
        assert_eq!(bar(0, 4, 4), "[....]");
        assert_eq!(bar(1, 4, 4), "[#...]");
        assert_eq!(bar(9, 4, 4), "[####]");
        assert_eq!(bar(1, 0, 2), "[..]");
    }
}
