//! Server streams that never buffer without bound: a watcher gets at most
//! [`BUFFER`] unread updates; one that stops reading is cut off with
//! RESOURCE_EXHAUSTED (saying where to resume) instead of holding the server's
//! memory, and one that hangs up ends its producer at once.

use std::time::Duration;

use tokio::sync::mpsc;
use tonic::Status;

/// Updates buffered for one watcher at most.
pub const BUFFER: usize = 256;
/// How long a full buffer waits for its watcher before cutting it off.
const PATIENCE: Duration = Duration::from_secs(2);

/// The receiving half, as a gRPC server stream.
pub type Updates<T> = tokio_stream::wrappers::ReceiverStream<Result<T, Status>>;

/// The sending half of a watcher's stream.
#[derive(Debug)]
pub struct Outbox<T> {
    tx: mpsc::Sender<Result<T, Status>>,
}

/// Why a producer stops.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// The watcher hung up.
    Gone,
    /// The watcher fell [`BUFFER`] updates behind and was cut off.
    CutOff,
}

/// A watcher's stream: the outbox to produce into, the updates to answer with.
pub fn outbox<T>() -> (Outbox<T>, Updates<T>) {
    let (tx, rx) = mpsc::channel(BUFFER);
    (
        Outbox { tx },
        tokio_stream::wrappers::ReceiverStream::new(rx),
    )
}

impl<T> Outbox<T> {
    /// Sends `update`; `resume` says where a cut-off watcher picks up again.
    pub async fn send(&self, update: T, resume: impl FnOnce() -> String) -> Result<(), Stop> {
        let waited = tokio::time::timeout(PATIENCE, async {
            while self.tx.capacity() <= 1 && !self.tx.is_closed() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        if waited.await.is_err() {
            metrics::counter!("frontline_watchers_cut_off_total").increment(1);
            let _ = self.tx.try_send(Err(Status::resource_exhausted(format!(
                "the watcher fell {BUFFER} updates behind; {}",
                resume()
            ))));
            return Err(Stop::CutOff);
        }
        self.tx.send(Ok(update)).await.map_err(|_| Stop::Gone)
    }

    /// Ends the stream with `status`.
    pub async fn fail(&self, status: Status) {
        let _ = self.tx.send(Err(status)).await;
    }

    /// Resolves when the watcher hangs up.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt as _;

    #[tokio::test]
    async fn a_watcher_that_stops_reading_is_cut_off_with_where_to_resume() {
        let (outbox, mut updates) = outbox::<u32>();
        let mut sent = 0;
        let stop = loop {
            match outbox
                .send(sent, || format!("watch again from {sent}"))
                .await
            {
                Ok(()) => sent += 1,
                Err(stop) => break stop,
            }
        };
        assert_eq!(stop, Stop::CutOff);
        assert_eq!(sent as usize, BUFFER - 1);
        drop(outbox);
        let mut last = None;
        while let Some(update) = updates.next().await {
            last = Some(update);
        }
        let status = last.and_then(Result::err).map(|s| s.code());
        assert_eq!(status, Some(tonic::Code::ResourceExhausted));
    }

    #[tokio::test]
    async fn a_watcher_that_hangs_up_stops_the_producer() {
        let (outbox, updates) = outbox::<u32>();
        drop(updates);
        assert_eq!(outbox.send(1, String::new).await, Err(Stop::Gone));
    }
}
