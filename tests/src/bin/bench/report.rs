//! The bench's one table and its JSON: a [`Row`] per measurement (its figure, the
//! ceiling measured in the same run, their ratio, the target and whether it was
//! met), and the [`Context`] the run had (machine, server versions, durability,
//! sizes).

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use serde_json::{Value, json};

/// What a row must reach.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// The figure at least this (in the row's unit).
    AtLeast(f64),
    /// The figure at most this (in the row's unit).
    AtMost(f64),
    /// The figure at least this fraction of the ceiling.
    RatioAtLeast(f64),
    /// The figure at most this multiple of the ceiling.
    RatioAtMost(f64),
}

/// One measurement.
#[derive(Clone, Debug)]
pub struct Row {
    pub name: String,
    pub value: f64,
    /// `/s`, `ms`, `µs` or `MB`.
    pub unit: &'static str,
    /// The ceiling (same unit) and what it is.
    pub ceiling: Option<(f64, String)>,
    /// Every one must hold; none: an informational row.
    pub targets: Vec<Target>,
    /// Why the row was not measured at its target's condition (then it is short).
    pub unmet: Option<String>,
}

impl Row {
    /// An informational row (no ceiling, no target yet).
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Row {
            name: name.into(),
            value,
            unit,
            ceiling: None,
            targets: Vec::new(),
            unmet: None,
        }
    }

    /// The ceiling it is compared with, measured in the same run.
    pub fn ceiling(mut self, value: f64, what: impl Into<String>) -> Self {
        self.ceiling = Some((value, what.into()));
        self
    }

    /// A target the row must meet.
    pub fn target(mut self, target: Target) -> Self {
        self.targets.push(target);
        self
    }

    /// The target's condition was not reached (say, the asked rate), so the row
    /// cannot pass.
    pub fn unmet(mut self, why: impl Into<String>) -> Self {
        self.unmet = Some(why.into());
        self
    }

    /// Figure / ceiling.
    pub fn ratio(&self) -> Option<f64> {
        self.ceiling
            .as_ref()
            .filter(|(c, _)| *c > 0.0)
            .map(|(c, _)| self.value / c)
    }

    /// `None` without a target; else whether every target holds.
    pub fn pass(&self) -> Option<bool> {
        if self.targets.is_empty() {
            return None;
        }
        if self.unmet.is_some() {
            return Some(false);
        }
        Some(self.targets.iter().all(|t| match *t {
            Target::AtLeast(x) => self.value >= x,
            Target::AtMost(x) => self.value <= x,
            Target::RatioAtLeast(x) => self.ratio().is_some_and(|r| r >= x),
            Target::RatioAtMost(x) => self.ratio().is_some_and(|r| r <= x),
        }))
    }

    /// Rates compare as a percentage of their ceiling, everything else as a multiple.
    fn percent(&self) -> bool {
        self.unit == "/s"
    }

    fn ratio_text(&self, r: f64) -> String {
        if self.percent() {
            format!("{:.0} %", r * 100.0)
        } else {
            format!("{r:.2}×")
        }
    }

    fn target_text(&self) -> String {
        if self.targets.is_empty() {
            return "—".into();
        }
        self.targets
            .iter()
            .map(|t| match *t {
                Target::AtLeast(x) => format!("≥ {}", quantity(x, self.unit)),
                Target::AtMost(x) => format!("≤ {}", quantity(x, self.unit)),
                Target::RatioAtLeast(x) | Target::RatioAtMost(x) => {
                    let op = if matches!(t, Target::RatioAtLeast(_)) {
                        "≥"
                    } else {
                        "≤"
                    };
                    format!("ratio {op} {}", self.ratio_text(x))
                }
            })
            .collect::<Vec<_>>()
            .join(" and ")
            + &self
                .unmet
                .as_ref()
                .map(|why| format!(" (not measured so: {why})"))
                .unwrap_or_default()
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "ceiling": self.ceiling.as_ref().map(|(c, _)| *c),
            "ceiling_of": self.ceiling.as_ref().map(|(_, w)| w.clone()),
            "ratio": self.ratio(),
            "target": if self.targets.is_empty() { Value::Null } else { self.target_text().into() },
            "pass": self.pass(),
            "unmet": self.unmet,
        })
    }
}

/// `1234567.8` → `1 234 568` (thin groups of three, as in the docs).
pub fn group(n: f64) -> String {
    let digits = format!("{:.0}", n.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    if n < 0.0 { format!("-{out}") } else { out }
}

/// A figure with its unit.
pub fn quantity(value: f64, unit: &str) -> String {
    match unit {
        "/s" => format!("{}/s", group(value)),
        "ms" if value >= 100.0 => format!("{value:.0} ms"),
        "ms" => format!("{value:.2} ms"),
        "µs" => format!("{value:.1} µs"),
        "MB" => format!("{value:.1} MB"),
        _ => format!("{value} {unit}"),
    }
}

/// What the run was: the machine, the servers, the durability, the sizes.
#[derive(Debug, Default)]
pub struct Context {
    pub started_at: String,
    pub quick: bool,
    pub cores: usize,
    pub cpu_model: String,
    pub nats_version: String,
    pub nats_durability: String,
    pub postgres_version: String,
    /// Name → value, in the order given.
    pub sizes: Vec<(&'static str, String)>,
    pub elapsed_secs: f64,
}

impl Context {
    /// Cores (`available_parallelism`) and the CPU's model name.
    pub fn machine() -> (usize, String) {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, m)| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        (cores, model)
    }

    fn to_json(&self) -> Value {
        let sizes: serde_json::Map<String, Value> = self
            .sizes
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_string(),
                    // Integers as integers, other numbers as numbers, the rest as text.
                    v.parse::<u64>()
                        .map(Value::from)
                        .unwrap_or_else(|_| v.parse::<f64>().map_or(v.clone().into(), Value::from)),
                )
            })
            .collect();
        json!({
            "started_at": self.started_at,
            "mode": if self.quick { "quick" } else { "full" },
            "cores": self.cores,
            "cpu_model": self.cpu_model,
            "nats_server": self.nats_version,
            "nats_durability": self.nats_durability,
            "postgres": self.postgres_version,
            "sizes": sizes,
            "elapsed_secs": self.elapsed_secs,
        })
    }
}

/// The whole run.
#[derive(Debug, Default)]
pub struct Report {
    pub context: Context,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// The table, with the context as its header (Markdown, so it pastes into docs).
    pub fn table(&self) -> String {
        let c = &self.context;
        let mut out = String::new();
        let mode = if c.quick {
            "QUICK run (small sizes: figures indicative only)"
        } else {
            "full run"
        };
        let _ = writeln!(out, "Frontline bench, {mode}, {}", c.started_at);
        let _ = writeln!(out, "- machine: {} cores, {}", c.cores, c.cpu_model);
        let _ = writeln!(
            out,
            "- nats-server {} (file store, {}{}); {}",
            c.nats_version,
            c.nats_durability,
            if c.nats_durability.ends_with("always") {
                ": fsync before every ack, as deploy/nats/values.yaml"
            } else {
                ": NOT the deployment's durability (sync_interval: always)"
            },
            c.postgres_version
        );
        let sizes: Vec<String> = c.sizes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "- sizes: {}", sizes.join(", "));
        let _ = writeln!(out, "- took {:.0} s", c.elapsed_secs);
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.name.clone(),
                    quantity(r.value, r.unit),
                    r.ceiling.as_ref().map_or("—".into(), |(v, what)| {
                        format!("{} ({what})", quantity(*v, r.unit))
                    }),
                    r.ratio().map_or("—".into(), |x| r.ratio_text(x)),
                    r.target_text(),
                    match r.pass() {
                        None => "—",
                        Some(true) => "pass",
                        Some(false) => "short",
                    }
                    .into(),
                ]
            })
            .collect();
        let header = [
            "row",
            "figure",
            "ceiling (same run)",
            "ratio",
            "target",
            "pass",
        ];
        let width = |i: usize| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..6).map(width).collect();
        let line = |cols: &[String]| {
            let padded: Vec<String> = cols
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                .collect();
            format!("| {} |", padded.join(" | "))
        };
        out.push('\n');
        let _ = writeln!(out, "{}", line(&header.map(String::from)));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let _ = writeln!(out, "|-{}-|", rule.join("-|-"));
        for row in &cells {
            let _ = writeln!(out, "{}", line(row));
        }
        out
    }

    /// Writes `bench-<timestamp>.json` and `latest.json` into `dir`; returns the first.
    pub fn write_json(&self, dir: &Path, stamp: &str) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let json = json!({
            "context": self.context.to_json(),
            "rows": self.rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&json)?;
        let path = dir.join(format!("bench-{stamp}.json"));
        std::fs::write(&path, &text)?;
        std::fs::write(dir.join("latest.json"), &text)?;
        Ok(path)
    }
}
