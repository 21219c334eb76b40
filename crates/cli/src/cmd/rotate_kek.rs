//! `frontline rotate-kek`: wraps every customer's data key with the new
//! key-encryption key.

use anyhow::Context as _;
use clap::Args;
use frontline_privacy::NatsKeyStore;
use frontline_runtime::config::{KekConfig, NatsConfig};

use crate::output;

/// Where the keys are, and the keys.
#[derive(Debug, Args)]
pub struct RotateKek {
    /// NATS: URL(s), TLS and credentials, as the services take them.
    #[command(flatten)]
    nats: NatsConfig,
    /// The event log's stream (its keys live in `<stream>_KEYS`).
    #[arg(long, env = "FRONTLINE_STREAM", default_value = "FRONTLINE")]
    stream: String,
    /// The new key and the previous one.
    #[command(flatten)]
    kek: KekConfig,
}

impl RotateKek {
    /// Wraps the stream's data keys with the new KEK.
    pub async fn run(self) -> anyhow::Result<()> {
        let kek = self.kek.load().map_err(anyhow::Error::msg)?;
        let previous = self.kek.load_previous().map_err(anyhow::Error::msg)?.context(
            "set FRONTLINE_KEK_PREVIOUS (or FRONTLINE_KEK_PREVIOUS_FILE) to the key being replaced",
        )?;
        let bucket = frontline_eventlog::LogConfig {
            stream: self.stream.clone(),
            ..Default::default()
        }
        .key_bucket();
        let client = self
            .nats
            .connect_once("frontline-cli")
            .await
            .with_context(|| format!("connect to NATS at {}", self.nats.url))?;
        let js = async_nats::jetstream::new(client);
        js.get_key_value(&bucket)
            .await
            .with_context(|| format!("no key bucket {bucket}: is FRONTLINE_STREAM right?"))?;
        let store = NatsKeyStore::open(&js, &bucket, 1, kek, Some(previous)).await?;
        let done = store.rotate().await?;
        output::line(format!(
            "{bucket}: {} wrapped with the new key, {} already were, {} destroyed; \
             FRONTLINE_KEK_PREVIOUS can go now",
            done.rewrapped, done.current, done.destroyed
        ))
    }
}
