//! `frontline follow-feedback`: product feedback from the log, as it lands, for the
//! teams who build the product. A durable consumer per reader (`--durable`), so a
//! team picks up where it stopped; each line is one piece of feedback, readable or
//! (`--json`) one JSON object per line for scripts.

use std::io::Write;

use anyhow::Context as _;
use clap::Args;
use frontline_domain::feedback::{Feedback, FeedbackEvent};
use frontline_eventlog::{ConsumerConfig, EventLog, LogConfig};
use frontline_proto::convert;
use frontline_runtime::config::{KekConfig, NatsConfig};

/// The `follow-feedback` command line.
#[derive(Debug, Args)]
pub struct FollowFeedback {
    /// NATS: URL(s), TLS and credentials, as the services take them.
    #[command(flatten)]
    nats: NatsConfig,
    /// The event log's stream.
    #[arg(long, env = "FRONTLINE_STREAM", default_value = "FRONTLINE")]
    stream: String,
    /// The reader's name, e.g. the team's: a durable consumer that remembers
    /// what it printed. One name per reader (two readers sharing a name split
    /// the feedback between them).
    #[arg(long)]
    durable: String,
    /// Only this product area; repeat for several.
    #[arg(long = "product-area", value_name = "AREA")]
    product_areas: Vec<String>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Stop after this many.
    #[arg(long)]
    limit: Option<usize>,
    /// The key-encryption key, to read the customers' words.
    #[command(flatten)]
    kek: KekConfig,
}

impl FollowFeedback {
    /// Follows the feedback and prints it to stdout.
    pub async fn run(self) -> anyhow::Result<()> {
        let config = LogConfig {
            stream: self.stream,
            kek: Some(self.kek.load().map_err(anyhow::Error::msg)?),
            previous_kek: self.kek.load_previous().map_err(anyhow::Error::msg)?,
            ..Default::default()
        };
        let follow = Follow {
            durable: self.durable,
            product_areas: self.product_areas,
            json: self.json,
            limit: self.limit,
        };
        run(&self.nats, config, &follow, &mut std::io::stdout().lock()).await
    }
}

/// What to follow and how to print it.
#[derive(Debug)]
pub struct Follow {
    /// The reader's durable consumer name.
    pub durable: String,
    /// Only these product areas (all when empty).
    pub product_areas: Vec<String>,
    /// One JSON object per line.
    pub json: bool,
    /// Stop after this many (for scripts and tests); follow forever when `None`.
    pub limit: Option<usize>,
}

/// Follows `frontline.feedback.>` on the log `nats` reaches and prints to `out`.
pub async fn run(
    nats: &NatsConfig,
    config: LogConfig,
    follow: &Follow,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let client = nats
        .connect_once("frontline-cli")
        .await
        .with_context(|| format!("connect to NATS at {}", nats.url))?;
    let log = EventLog::open(client, config).await?;
    let mut consumer = ConsumerConfig::new(follow.durable.clone(), "frontline.feedback.>");
    // A line that could not be printed comes again; nothing is parked. One at a
    // time: a reader stopping after `--limit` leaves nothing delivered and unacked
    // (which would come again only after the ack timeout, out of order).
    consumer.max_deliver = 0;
    consumer.max_ack_pending = 1;
    let mut deliveries = log.subscribe::<FeedbackEvent>(consumer).await?;
    let mut printed = 0;
    while follow.limit.is_none_or(|limit| printed < limit) {
        let Some(delivery) = deliveries.next().await else {
            anyhow::bail!("the feedback consumer ended");
        };
        let delivery = delivery?;
        if let Some(FeedbackEvent::Recorded(f)) = &delivery.event
            && (follow.product_areas.is_empty() || follow.product_areas.contains(&f.product_area))
        {
            let at = delivery
                .envelope
                .occurred_at
                .as_ref()
                .map(convert::millis)
                .unwrap_or_default();
            writeln!(
                out,
                "{}",
                line(f, at, &delivery.envelope.aggregate_id, follow.json)
            )
            .map_err(crate::output::stdout_error)?;
            out.flush().map_err(crate::output::stdout_error)?;
            printed += 1;
        }
        delivery.ack().await?;
    }
    // The acks are on their way; see them out before the process ends.
    log.client().flush().await?;
    Ok(())
}

/// One piece of feedback as a line.
fn line(f: &Feedback, at: i64, id: &str, json: bool) -> String {
    let when = jiff::Timestamp::from_millisecond(at)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let optional = |v: Option<uuid::Uuid>| v.map(|u| u.to_string()).unwrap_or_default();
    if json {
        return serde_json::json!({
            "feedback_id": id,
            "at": when,
            "tenant": f.tenant.as_str(),
            "product_area": f.product_area,
            "body": f.body,
            "customer_id": optional(f.customer_id),
            "ticket_id": optional(f.ticket_id),
        })
        .to_string();
    }
    let mut from = String::new();
    if let Some(ticket) = f.ticket_id {
        from = format!(" (ticket {ticket})");
    }
    format!(
        "{when} {} {}{from}: {}",
        f.tenant.as_str(),
        f.product_area,
        f.body.replace(['\r', '\n'], " ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontline_domain::TenantId;

    #[test]
    fn lines_for_people_and_for_scripts() {
        let f = Feedback {
            tenant: TenantId::parse("tenant", "acme").unwrap_or_default(),
            product_area: "router-x200".into(),
            body: "Make the LED\nblue.".into(),
            customer_id: None,
            ticket_id: None,
        };
        assert_eq!(
            line(&f, 0, "id", false),
            "1970-01-01T00:00:00Z acme router-x200: Make the LED blue."
        );
        let json: serde_json::Value =
            serde_json::from_str(&line(&f, 0, "id", true)).unwrap_or_default();
        assert_eq!(json["product_area"], "router-x200");
        assert_eq!(json["body"], "Make the LED\nblue.");
    }
}
