//! `frontline metrics`: support metrics over the tickets opened in a time range,
//! in total and per group (analytics GetMetrics).

use clap::{Args, ValueEnum};
use frontline_proto::v1;

use crate::{client::Global, output};

/// The `metrics` command line.
#[derive(Debug, Args)]
pub struct Metrics {
    /// Tickets opened from this moment (RFC 3339, or a UTC day YYYY-MM-DD); default:
    /// the beginning.
    #[arg(long, value_name = "TIME", value_parser = moment)]
    from: Option<prost_types::Timestamp>,
    /// Tickets opened before this moment (same forms); default: no end.
    #[arg(long, value_name = "TIME", value_parser = moment)]
    to: Option<prost_types::Timestamp>,
    /// Also group the tickets by this.
    #[arg(long, value_enum, value_name = "GROUP")]
    group_by: Option<GroupBy>,
    /// Compute as the read models were at this moment (same forms); default: now.
    #[arg(long, value_name = "TIME", value_parser = moment)]
    as_of: Option<prost_types::Timestamp>,
    #[command(flatten)]
    global: Global,
}

/// How to group on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum GroupBy {
    /// The customer's tier.
    Tier,
    /// The product area.
    ProductArea,
    /// The agent holding the ticket.
    Agent,
    /// The channel it was opened through.
    Channel,
    /// The UTC day it was opened.
    Day,
}

impl From<GroupBy> for v1::MetricsGroupBy {
    fn from(g: GroupBy) -> Self {
        match g {
            GroupBy::Tier => v1::MetricsGroupBy::Tier,
            GroupBy::ProductArea => v1::MetricsGroupBy::ProductArea,
            GroupBy::Agent => v1::MetricsGroupBy::Agent,
            GroupBy::Channel => v1::MetricsGroupBy::Channel,
            GroupBy::Day => v1::MetricsGroupBy::Day,
        }
    }
}

/// An RFC 3339 moment, or a day (its UTC midnight).
fn moment(arg: &str) -> Result<prost_types::Timestamp, String> {
    let at = match arg.parse::<jiff::Timestamp>() {
        Ok(at) => at,
        Err(_) => arg
            .parse::<jiff::civil::Date>()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
            .map(|z| z.timestamp())
            .map_err(|_| {
                format!("{arg:?} is neither RFC 3339 (2025-06-01T12:00:00Z) nor a day (2025-06-01)")
            })?,
    };
    Ok(prost_types::Timestamp {
        seconds: at.as_second(),
        nanos: at.subsec_nanosecond(),
    })
}

impl Metrics {
    /// Fetches and prints the metrics.
    pub async fn run(self) -> anyhow::Result<()> {
        let range = (self.from.is_some() || self.to.is_some()).then_some(v1::TimeRange {
            from: self.from,
            to: self.to,
        });
        let answer = self
            .global
            .analytics()
            .await?
            .get_metrics(v1::GetMetricsRequest {
                range,
                group_by: self
                    .group_by
                    .map(|g| v1::MetricsGroupBy::from(g).into())
                    .unwrap_or_default(),
                as_of: self.as_of,
            })
            .await?
            .into_inner();
        if self.global.json {
            return output::message(&answer);
        }
        output::line(format!(
            "as of {}{}",
            output::time(answer.as_of.as_ref()),
            if answer.business_hours {
                " (durations in business hours)"
            } else {
                ""
            }
        ))?;
        let total = answer.total.unwrap_or_default();
        for line in summary(&total) {
            output::line(line)?;
        }
        if !answer.groups.is_empty() {
            output::line("")?;
            output::line(format!(
                "{:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10} {:>6}",
                "GROUP",
                "TICKETS",
                "SOLVED",
                "BACKLOG",
                "AT RISK",
                "BREACHED",
                "SLA %",
                "1ST RESP",
                "CSAT"
            ))?;
            for g in &answer.groups {
                let m = g.metrics.clone().unwrap_or_default();
                output::line(format!(
                    "{:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10.1} {:>10} {:>6.2}",
                    g.key,
                    m.tickets,
                    m.solved,
                    m.backlog,
                    m.at_risk,
                    m.breached,
                    m.sla_attainment_percent,
                    duration(m.first_response.as_ref().map(|d| d.p50_seconds)),
                    m.csat_average
                ))?;
            }
        }
        Ok(())
    }
}

/// The totals, a line each.
fn summary(m: &v1::Metrics) -> Vec<String> {
    let stats = |d: Option<&v1::DurationStats>| match d {
        Some(d) if d.count > 0 => format!(
            "p50 {}, p90 {} ({} tickets)",
            duration(Some(d.p50_seconds)),
            duration(Some(d.p90_seconds)),
            d.count
        ),
        _ => "-".into(),
    };
    vec![
        format!(
            "tickets          {} ({} solved, {} backlog)",
            m.tickets, m.solved, m.backlog
        ),
        format!(
            "SLA              {:.1} % attained, {} breached, {} at risk",
            m.sla_attainment_percent, m.breached, m.at_risk
        ),
        format!("first response   {}", stats(m.first_response.as_ref())),
        format!("resolution       {}", stats(m.resolution.as_ref())),
        format!("reopen rate      {:.1} %", m.reopen_rate_percent),
        format!("time logged      {} minutes", m.minutes_logged),
        format!(
            "CSAT             {:.2} ({} answers)",
            m.csat_average, m.csat_responses
        ),
        format!(
            "NPS              {:.1} ({} answers)",
            m.nps, m.nps_responses
        ),
        format!(
            "declines         {} proposed, {} approved",
            m.declines_proposed, m.declines_approved
        ),
    ]
}

/// Seconds as `42s`, `12m`, `3.5h` or `2.1d`; `-` when unknown.
fn duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 60.0 => format!("{s:.0}s"),
        Some(s) if s < 3600.0 => format!("{:.0}m", s / 60.0),
        Some(s) if s < 86_400.0 => format!("{:.1}h", s / 3600.0),
        Some(s) => format!("{:.1}d", s / 86_400.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_and_durations() {
        assert_eq!(moment("1970-01-02").map(|t| t.seconds), Ok(86_400));
        assert_eq!(moment("1970-01-01T00:01:00Z").map(|t| t.seconds), Ok(60));
        assert!(moment("yesterday").is_err());
        assert_eq!(duration(Some(90.0)), "2m");
        assert_eq!(duration(Some(5400.0)), "1.5h");
    }
}
