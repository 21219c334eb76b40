//! Group commit: atomic batches from concurrent callers committed together.
//!
//! On a single-replica file stream the server syncs every atomic batch to disk
//! before it acknowledges it, one batch at a time (about 1 000–1 500 batches/s on
//! the development machine, whatever their size, against 40 000+ single appends/s).
//! So one task takes every batch waiting when the previous commit returns and
//! commits them as one atomic batch: one disk sync for all of them.
//!
//! Each caller still gets exactly its own outcome:
//! - all land together: each gets the sequences of its events;
//! - the group is refused (one of them lost a race): each is committed again on its
//!   own, so only the loser hears [`LogError::Conflict`];
//! - the log fails: each hears the error.
//!
//! Batches touching the same aggregate never share a group (each event carries its
//! own expected sequence); the later waits for the next round.

use std::collections::VecDeque;

use tokio::sync::{mpsc, oneshot};

use crate::{EventLog, LogError, MAX_BATCH_EVENTS, batch::Committed, store::Outgoing};

/// The handle a log commits through. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct GroupCommit {
    tx: mpsc::UnboundedSender<Waiting>,
}

struct Waiting {
    messages: Vec<Outgoing>,
    reply: oneshot::Sender<Result<Committed, LogError>>,
}

impl GroupCommit {
    /// Starts the committer on `log` (whose own batches it commits directly). It
    /// ends when every handle is gone.
    pub(crate) fn start(log: EventLog) -> GroupCommit {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(log, rx));
        GroupCommit { tx }
    }

    /// Commits `messages` (validated: at most [`MAX_BATCH_EVENTS`], one per subject)
    /// in the next group.
    pub(crate) async fn commit(&self, messages: Vec<Outgoing>) -> Result<Committed, LogError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Waiting { messages, reply })
            .map_err(|_| LogError::Unavailable("the group committer has stopped".into()))?;
        answer
            .await
            .map_err(|_| LogError::Unavailable("the group committer has stopped".into()))?
    }
}

async fn run(mut log: EventLog, mut rx: mpsc::UnboundedReceiver<Waiting>) {
    // The committer's own log must not send to itself.
    log.group = None;
    let mut carried: VecDeque<Waiting> = VecDeque::new();
    loop {
        if carried.is_empty() {
            match rx.recv().await {
                Some(first) => carried.push_back(first),
                None => return,
            }
        }
        while let Ok(more) = rx.try_recv() {
            carried.push_back(more);
        }
        let group = take_group(&mut carried);
        commit_group(&log, group).await;
    }
}

/// The waiting batches that fit in one group: disjoint subjects, within the size
/// limit, in arrival order; the rest stay for the next round.
fn take_group(waiting: &mut VecDeque<Waiting>) -> Vec<Waiting> {
    let mut group: Vec<Waiting> = Vec::new();
    let mut size = 0;
    let mut rest = VecDeque::new();
    while let Some(next) = waiting.pop_front() {
        let overlaps = group.iter().any(|g| {
            g.messages
                .iter()
                .any(|m| next.messages.iter().any(|n| n.subject == m.subject))
        });
        if overlaps || size + next.messages.len() > MAX_BATCH_EVENTS {
            rest.push_back(next);
        } else {
            size += next.messages.len();
            group.push(next);
        }
    }
    *waiting = rest;
    group
}

async fn commit_group(log: &EventLog, mut group: Vec<Waiting>) {
    if group.len() == 1
        && let Some(one) = group.pop()
    {
        let _ = one.reply.send(log.commit_now(one.messages).await);
        return;
    }
    let merged: Vec<Outgoing> = group
        .iter()
        .flat_map(|w| w.messages.iter().cloned())
        .collect();
    match log.commit_now(merged).await {
        Ok(committed) => {
            let mut offset = 0;
            for one in group {
                let n = one.messages.len();
                let sequences = committed.sequences[offset..offset + n].to_vec();
                offset += n;
                let _ = one.reply.send(Ok(Committed { sequences }));
            }
        }
        Err(LogError::Conflict { .. }) => {
            // Someone in the group lost a race: everyone again on their own.
            metrics::counter!("frontline_group_commit_split_total").increment(1);
            let outcomes = futures::future::join_all(
                group.iter().map(|one| log.commit_now(one.messages.clone())),
            )
            .await;
            for (one, outcome) in group.into_iter().zip(outcomes) {
                let _ = one.reply.send(outcome);
            }
        }
        // The log failed (nothing is stored, or the outcome is unknown): every
        // member hears it, as it would alone.
        Err(e) => {
            let why = e.to_string();
            for one in group {
                let _ = one.reply.send(Err(LogError::Unavailable(why.clone())));
            }
        }
    }
}
