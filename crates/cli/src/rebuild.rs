//! `frontline rebuild-read-models`: asks analytics to rebuild every read model
//! from the log, then follows the new generation until it is live.

use std::time::Duration;

use anyhow::Context as _;
use frontline_proto::v1::{self, analytics_service_client::AnalyticsServiceClient};
use tonic::{Request, metadata::MetadataValue, transport::Channel};

/// How often progress is read.
const EVERY: Duration = Duration::from_secs(1);

/// Starts (or joins) a rebuild at `endpoint` with `token` (an admin of every
/// tenant) and prints its progress until it is live, when `wait`.
pub async fn run(endpoint: &str, token: &str, wait: bool) -> anyhow::Result<()> {
    let channel = Channel::from_shared(endpoint.to_string())
        .context("--analytics is not a URL")?
        .connect()
        .await
        .with_context(|| format!("connect to analytics at {endpoint}"))?;
    let bearer: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .context("the token is not valid in a header")?;
    let mut client = AnalyticsServiceClient::with_interceptor(channel, move |mut r: Request<()>| {
        r.metadata_mut().insert("authorization", bearer.clone());
        Ok(r)
    });
    let rebuild = client
        .rebuild_read_models(v1::RebuildReadModelsRequest::default())
        .await
        .context("RebuildReadModels")?
        .into_inner();
    let generation = rebuild.generation;
    println!(
        "generation {generation}: {}",
        if rebuild.started {
            "rebuild started"
        } else {
            "a rebuild was under way already"
        }
    );
    if !wait {
        return Ok(());
    }
    loop {
        let status = client
            .get_projection_status(v1::GetProjectionStatusRequest::default())
            .await
            .context("GetProjectionStatus")?
            .into_inner();
        let Some(p) = status
            .projections
            .iter()
            .find(|p| p.generation == generation)
        else {
            anyhow::bail!("generation {generation} is gone (another rebuild replaced it?)");
        };
        if p.live {
            println!(
                "generation {generation} is live at stream sequence {}",
                p.applied_sequence
            );
            return Ok(());
        }
        let percent = if p.stream_sequence == 0 {
            100.0
        } else {
            100.0 * p.applied_sequence as f64 / p.stream_sequence as f64
        };
        println!(
            "generation {generation}: {} of {} ({percent:.1} %), {} to read",
            p.applied_sequence, p.stream_sequence, p.pending
        );
        tokio::time::sleep(EVERY).await;
    }
}
