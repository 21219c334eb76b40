//! `frontline rebuild-read-models`: asks analytics to rebuild every read model
//! from the log, then follows the new generation until it is live.

use std::time::Duration;

use clap::Args;
use frontline_proto::v1;

use crate::{client::Global, output};

/// How often progress is read.
const EVERY: Duration = Duration::from_secs(1);

/// The `rebuild-read-models` command line.
#[derive(Debug, Args)]
pub struct RebuildReadModels {
    /// Start it and return, without following it.
    #[arg(long)]
    no_wait: bool,
    /// Where analytics is, and the token (of an admin of every tenant).
    #[command(flatten)]
    global: Global,
}

impl RebuildReadModels {
    /// Starts (or joins) a rebuild and prints its progress until it is live, unless
    /// `--no-wait`.
    pub async fn run(self) -> anyhow::Result<()> {
        let mut client = self.global.analytics().await?;
        let rebuild = client
            .rebuild_read_models(v1::RebuildReadModelsRequest::default())
            .await?
            .into_inner();
        if self.global.json && self.no_wait {
            return output::message(&rebuild);
        }
        let generation = rebuild.generation;
        if !self.global.json {
            output::line(format!(
                "generation {generation}: {}",
                if rebuild.started {
                    "rebuild started"
                } else {
                    "a rebuild was under way already"
                }
            ))?;
        }
        if self.no_wait {
            return Ok(());
        }
        loop {
            let status = client
                .get_projection_status(v1::GetProjectionStatusRequest::default())
                .await?
                .into_inner();
            let Some(p) = status
                .projections
                .iter()
                .find(|p| p.generation == generation)
            else {
                anyhow::bail!("generation {generation} is gone (another rebuild replaced it?)");
            };
            if p.live {
                if self.global.json {
                    return output::message(&status);
                }
                return output::line(format!(
                    "generation {generation} is live at stream sequence {}",
                    p.applied_sequence
                ));
            }
            let percent = if p.stream_sequence == 0 {
                100.0
            } else {
                100.0 * p.applied_sequence as f64 / p.stream_sequence as f64
            };
            if !self.global.json {
                output::line(format!(
                    "generation {generation}: {} of {} ({percent:.1} %), {} to read",
                    p.applied_sequence, p.stream_sequence, p.pending
                ))?;
            }
            tokio::time::sleep(EVERY).await;
        }
    }
}
