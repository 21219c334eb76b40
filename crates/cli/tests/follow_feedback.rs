//! `frontline follow-feedback` against a real nats-server: product feedback
//! recorded on the log is printed, customers' words unsealed with the KEK, only
//! the product areas asked for, and a durable reader resumes where it stopped.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use frontline_domain::{
    Actor, Role, TenantId,
    feedback::{Feedback, ProductFeedback},
    ids,
};
use frontline_eventlog::{CommandOptions, EventLog, EventMeta, LogConfig, execute};
use frontline_privacy::Kek;
use frontline_testkit::NatsServer;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_frontline");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_is_followed_from_the_log() {
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let kek = Kek::generate_base64();
    let config = LogConfig {
        stream: "FEEDBACK".into(),
        kek: Some(Kek::from_base64(&kek).unwrap()),
        ..Default::default()
    };
    let client = async_nats::connect(server.url()).await.unwrap();
    let log = EventLog::open(client, config).await.unwrap();
    let tenant = TenantId::parse("tenant", "acme").unwrap();
    let shop = Actor::new("web-shop", Role::CustomerSystem);
    let record = |key: &str, area: &str, body: &str| {
        let feedback = Feedback {
            tenant: tenant.clone(),
            product_area: area.into(),
            body: body.into(),
            customer_id: Some(Uuid::new_v4()),
            ticket_id: None,
        };
        let id = ids::feedback_id(&tenant, &shop.id, key);
        let (log, shop, key) = (log.clone(), shop.clone(), key.to_string());
        async move {
            let meta = EventMeta {
                actor: shop.clone(),
                correlation_id: key.clone(),
                causation_id: key,
                traceparent: None,
            };
            execute(
                &log,
                &id,
                &meta,
                CommandOptions::default(),
                || 1_000,
                |f: &ProductFeedback, _| f.decide(&feedback, &shop),
            )
            .await
            .unwrap();
        }
    };
    record("f1", "router-x200", "The LED colours are confusing.").await;
    record("f2", "billing", "Invoices should show the VAT id.").await;
    record("f3", "router-x200", "Setup took me an hour.").await;

    let follow = |limit: &str| {
        Command::new(BIN)
            .args(["follow-feedback", "--product-area", "router-x200", "--json"])
            .args(["--durable", "product-team", "--limit", limit])
            .env("NATS_URL", server.url())
            .env("FRONTLINE_STREAM", "FEEDBACK")
            .env("FRONTLINE_KEK", &kek)
            .env_remove("FRONTLINE_KEK_FILE")
            .env_remove("FRONTLINE_KEK_PREVIOUS")
            .env_remove("FRONTLINE_KEK_PREVIOUS_FILE")
            .output()
            .unwrap()
    };
    let out = follow("1");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["body"], "The LED colours are confusing.");
    assert_eq!(lines[0]["tenant"], "acme");

    // The same reader again: it resumes after what it printed, skipping billing.
    record("f4", "router-x200", "Love the new app.").await;
    let out = follow("2");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bodies: Vec<String> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["body"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(bodies, ["Setup took me an hour.", "Love the new app."]);
}
