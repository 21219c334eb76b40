//! The commands, one file each; [`Command`] lists them for clap and runs the one
//! asked for.

use std::io::Read as _;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use frontline_proto::v1;

pub mod agents;
pub mod follow_feedback;
pub mod kek;
pub mod metrics;
pub mod note;
pub mod queue;
pub mod rebuild_read_models;
pub mod reply;
pub mod rotate_kek;
pub mod show;
pub mod solve;
pub mod submit;
pub mod tier;
pub mod token;
pub mod top;
pub mod watch;

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Opens a ticket for a customer, or continues one (intake SubmitTicket).
    Submit(submit::Submit),
    /// Replies to the customer on a ticket (conversation Reply).
    Reply(reply::Reply),
    /// Adds an internal note to a ticket (conversation AddNote).
    Note(note::Note),
    /// Solves a ticket (conversation Solve).
    Solve(solve::Solve),
    /// Shows a ticket and its timeline (GetTicket and GetTicketHistory).
    Show(show::Show),
    /// Follows a ticket live, one line per event, until Ctrl-C (WatchTicket).
    Watch(watch::Watch),
    /// Lists the tenant's agents with their status and load (routing ListAgents).
    Agents(agents::Agents),
    /// Lists the tickets waiting for an agent, next first (routing ListQueue).
    Queue(queue::Queue),
    /// Shows a customer's tier of service, or sets it with `tier set`.
    Tier(tier::Tier),
    /// Support metrics of the tickets opened in a time range (analytics GetMetrics).
    Metrics(metrics::Metrics),
    /// A live view of the queue, SLA risk and the agents' load, redrawn every few
    /// seconds until Ctrl-C.
    Top(top::Top),
    /// Prints a signed bearer token (HS256) for calling the services.
    Token(token::Token),
    /// Prints a new random key-encryption key (base64 of 32 bytes) for
    /// FRONTLINE_KEK / FRONTLINE_KEK_FILE. Keep it safe: losing it loses every
    /// customer's personal data.
    Kek,
    /// Wraps every customer's data key that is still wrapped with the previous
    /// key-encryption key (FRONTLINE_KEK_PREVIOUS) with the new one (FRONTLINE_KEK).
    /// Run it while the services run with both; repeating it is harmless. See the
    /// README, "Personal data".
    RotateKek(rotate_kek::RotateKek),
    /// Rebuilds every analytics read model from the log into a new generation
    /// beside the live one (which keeps serving), then follows it until it is
    /// live. Needs a token of an admin of every tenant (`--tenant '*'`).
    RebuildReadModels(rebuild_read_models::RebuildReadModels),
    /// Prints customers' product feedback as it lands on the log
    /// (`frontline.feedback.>`), from the first not yet seen by `--durable`.
    FollowFeedback(follow_feedback::FollowFeedback),
}

impl Command {
    /// Runs the command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Submit(c) => c.run().await,
            Command::Reply(c) => c.run().await,
            Command::Note(c) => c.run().await,
            Command::Solve(c) => c.run().await,
            Command::Show(c) => c.run().await,
            Command::Watch(c) => c.run().await,
            Command::Agents(c) => c.run().await,
            Command::Queue(c) => c.run().await,
            Command::Tier(c) => c.run().await,
            Command::Metrics(c) => c.run().await,
            Command::Top(c) => c.run().await,
            Command::Token(c) => c.run(),
            Command::Kek => kek::run(),
            Command::RotateKek(c) => c.run().await,
            Command::RebuildReadModels(c) => c.run().await,
            Command::FollowFeedback(c) => c.run().await,
        }
    }
}

/// `text` itself, or everything on stdin when it is `-`.
pub fn text_or_stdin(text: &str) -> anyhow::Result<String> {
    if text != "-" {
        return Ok(text.to_string());
    }
    let mut read = String::new();
    std::io::stdin()
        .read_to_string(&mut read)
        .context("read the text from stdin")?;
    Ok(read)
}

/// A channel on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Channel {
    /// An email.
    Email,
    /// A chat conversation.
    Chat,
    /// A phone call.
    Phone,
    /// A web form.
    Web,
    /// Another system calling the API.
    Api,
}

impl From<Channel> for v1::Channel {
    fn from(c: Channel) -> Self {
        match c {
            Channel::Email => v1::Channel::Email,
            Channel::Chat => v1::Channel::Chat,
            Channel::Phone => v1::Channel::Phone,
            Channel::Web => v1::Channel::Web,
            Channel::Api => v1::Channel::Api,
        }
    }
}

/// A priority on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Priority {
    /// Can wait.
    Low,
    /// The default.
    Normal,
    /// Soon.
    High,
    /// Now.
    Urgent,
}

impl From<Priority> for v1::Priority {
    fn from(p: Priority) -> Self {
        match p {
            Priority::Low => v1::Priority::Low,
            Priority::Normal => v1::Priority::Normal,
            Priority::High => v1::Priority::High,
            Priority::Urgent => v1::Priority::Urgent,
        }
    }
}
