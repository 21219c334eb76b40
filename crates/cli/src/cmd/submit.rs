//! `frontline submit`: a customer's contact, as a customer system sends it (intake
//! SubmitTicket): opens a ticket, or continues one with `--continue`.

use clap::Args;
use frontline_proto::v1;

use super::{Channel, Priority, text_or_stdin};
use crate::{client::Global, exit::Usage, output};

/// The `submit` command line.
#[derive(Debug, Args)]
pub struct Submit {
    /// The customer's email address.
    #[arg(long)]
    email: Option<String>,
    /// The customer's phone number, with country code (e.g. +4930123456).
    #[arg(long)]
    phone: Option<String>,
    /// The customer system's own id for the customer (e.g. a CRM id).
    #[arg(long = "customer-ref", value_name = "ID")]
    customer_ref: Option<String>,
    /// The customer system --customer-ref belongs to (staff only; default: the caller).
    #[arg(long, value_name = "SYSTEM", requires = "customer_ref")]
    system: Option<String>,
    /// The subject line (required when opening a ticket).
    #[arg(long, default_value = "")]
    subject: String,
    /// The customer's message; `-` reads it from stdin.
    #[arg(long)]
    body: String,
    /// The channel the contact came through.
    #[arg(long, value_enum, default_value_t = Channel::Api)]
    channel: Channel,
    /// The product area, e.g. router-x200 (required when opening a ticket).
    #[arg(long, default_value = "")]
    product_area: String,
    /// The priority (default: normal).
    #[arg(long, value_enum)]
    priority: Option<Priority>,
    /// A fact the customer gave, as KEY=VALUE; repeat for several.
    #[arg(long = "fact", value_name = "KEY=VALUE", value_parser = fact)]
    facts: Vec<v1::Fact>,
    /// Add the message to this ticket instead of opening a new one.
    #[arg(long = "continue", value_name = "TICKET_ID")]
    continue_ticket_id: Option<String>,
    /// The idempotency key: the same key (on the same channel) never opens a second
    /// ticket, so a failed submit can be repeated with it. Default: a new
    /// `cli-<uuid>`, printed.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    #[command(flatten)]
    global: Global,
}

/// A `KEY=VALUE` fact.
fn fact(arg: &str) -> Result<v1::Fact, String> {
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?} is not KEY=VALUE"))?;
    Ok(v1::Fact {
        key: key.to_string(),
        value: value.to_string(),
    })
}

impl Submit {
    /// Sends the contact and prints the ticket it landed on.
    pub async fn run(self) -> anyhow::Result<()> {
        if self.email.is_none() && self.phone.is_none() && self.customer_ref.is_none() {
            return Err(Usage(
                "who is the customer? give --email, --phone or --customer-ref".into(),
            )
            .into());
        }
        let generated = self.idempotency_key.is_none();
        let key = self
            .idempotency_key
            .unwrap_or_else(|| format!("cli-{}", uuid::Uuid::new_v4()));
        let request = v1::SubmitTicketRequest {
            idempotency_key: key.clone(),
            channel: v1::Channel::from(self.channel).into(),
            customer: Some(v1::CustomerIdentity {
                email: self.email.unwrap_or_default(),
                phone: self.phone.unwrap_or_default(),
                external_id: self.customer_ref.unwrap_or_default(),
                system: self.system.unwrap_or_default(),
            }),
            subject: self.subject,
            body: text_or_stdin(&self.body)?,
            product_area: self.product_area,
            priority: self
                .priority
                .map(|p| v1::Priority::from(p).into())
                .unwrap_or_default(),
            facts: self.facts,
            continue_ticket_id: self.continue_ticket_id.unwrap_or_default(),
        };
        if generated {
            // Before the call: after a failure (UNAVAILABLE says "retry"), the
            // same key repeats the submit without opening a second ticket. stdout
            // is the answer alone.
            eprintln!("idempotency key: {key}");
        }
        let answer = self
            .global
            .intake()
            .await?
            .submit_ticket(request)
            .await?
            .into_inner();
        if self.global.json {
            return output::message(&answer);
        }
        let what = if answer.created {
            "opened"
        } else {
            "continued (or a repeat of this key)"
        };
        output::line(format!(
            "ticket {} {what} ({}, version {})",
            answer.ticket_id,
            output::status(answer.status),
            answer.ticket_version
        ))?;
        output::line(format!("customer {}", answer.customer_id))?;
        output::line(format!("idempotency key {key}"))?;
        for t in &answer.other_open_tickets {
            output::line(format!(
                "other open ticket {} ({}, {}): {}",
                t.ticket_id,
                output::status(t.status),
                output::time(t.opened_at.as_ref()),
                t.subject
            ))?;
        }
        for f in &answer.known_facts {
            output::line(format!("fact {} = {}", f.key, f.value))?;
        }
        Ok(())
    }
}
