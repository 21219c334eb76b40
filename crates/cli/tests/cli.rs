//! The `frontline` binary against the real services (the e2e cluster: nats-server,
//! PostgreSQL, intake, conversation, routing and analytics in-process): a ticket's
//! story told through the CLI, `--json` for scripts, and failures that exit with
//! the documented codes (10 + the gRPC code, 2 for usage).
#![allow(clippy::unwrap_used)]

use std::{process::Output, time::Duration};

use frontline_domain::Role;
use frontline_e2e::{Cluster, SECRET, caller};
use frontline_proto::v1;
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::Command,
};

const BIN: &str = env!("CARGO_BIN_EXE_frontline");

/// The binary, pointed at `cluster` (or at nothing), with no token from the
/// environment of whoever runs the tests.
fn frontline(cluster: Option<&Cluster>) -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "FRONTLINE_TOKEN",
        "FRONTLINE_TOKEN_FILE",
        "FRONTLINE_TENANT",
        "FRONTLINE_CA_FILE",
        "FRONTLINE_CERT_FILE",
        "FRONTLINE_KEY_FILE",
        "FRONTLINE_JWT_SECRET",
    ] {
        cmd.env_remove(var);
    }
    if let Some(c) = cluster {
        cmd.env("FRONTLINE_INTAKE", format!("http://{}", c.intake_addr))
            .env(
                "FRONTLINE_CONVERSATION",
                format!("http://{}", c.conversation_addr),
            )
            .env("FRONTLINE_ROUTING", format!("http://{}", c.routing_addr));
        if let Some(analytics) = c.analytics_addr {
            cmd.env("FRONTLINE_ANALYTICS", format!("http://{analytics}"));
        }
    }
    cmd.kill_on_drop(true);
    cmd
}

/// Runs `frontline <args>` with `token`.
async fn run(cluster: &Cluster, token: &str, args: &[&str]) -> Output {
    frontline(Some(cluster))
        .args(args)
        .env("FRONTLINE_TOKEN", token)
        .output()
        .await
        .unwrap()
}

/// Its stdout, after checking it succeeded.
fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Its stdout as JSON, after checking it succeeded.
fn json(out: &Output) -> serde_json::Value {
    let stdout = ok(out);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Its exit code and stderr, after checking stdout stayed empty.
fn failed(out: &Output) -> (i32, String) {
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A token minted by `frontline token`.
async fn token(role: &str, subject: &str) -> String {
    let out = frontline(None)
        .args(["token", "--role", role, "--subject", subject])
        .args(["--tenant", "acme", "--secret", SECRET])
        .output()
        .await
        .unwrap();
    ok(&out).trim().to_string()
}

/// The word after `label` in `text` (e.g. the id after "ticket").
fn after<'a>(text: &'a str, label: &str) -> &'a str {
    let start = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {text}"))
        + label.len();
    text[start..].split_whitespace().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_story_through_the_cli() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    let shop = token("customer_system", "web-shop").await;
    let manager = token("manager", "max").await;
    // The agent's token goes through a file, as `--out` writes it.
    let dir = tempfile::tempdir().unwrap();
    let agent_file = dir.path().join("ana.jwt");
    let out = frontline(None)
        .args(["token", "--subject", "ana", "--tenant", "acme"])
        .env("FRONTLINE_JWT_SECRET", SECRET)
        .arg("--out")
        .arg(&agent_file)
        .output()
        .await
        .unwrap();
    assert!(ok(&out).is_empty());
    let agent_file = agent_file.to_str().unwrap().to_string();
    let agent = |args: &[&str]| {
        let mut cmd = frontline(Some(&cluster));
        cmd.args(args).env("FRONTLINE_TOKEN_FILE", &agent_file);
        cmd
    };

    // A customer writes in.
    let out = run(
        &cluster,
        &shop,
        &[
            "submit",
            "--email",
            "ana.customer@example.com",
            "--subject",
            "Router keeps rebooting",
            "--body",
            "Since the update my router restarts every hour.",
            "--channel",
            "email",
            "--product-area",
            "router-x200",
            "--fact",
            "serial=SN-42",
        ],
    )
    .await;
    let stdout = ok(&out);
    assert!(stdout.contains(" opened (new, version 1)"), "{stdout}");
    assert!(stdout.contains("idempotency key cli-"), "{stdout}");
    assert!(stdout.contains("fact serial = SN-42"), "{stdout}");
    let id = after(&stdout, "ticket ").to_string();
    let customer = after(&stdout, "customer ").to_string();

    // The same key again opens nothing new; with --json stdout is the answer alone.
    let key = after(&stdout, "idempotency key ").to_string();
    let out = run(
        &cluster,
        &shop,
        &[
            "submit",
            "--email",
            "ana.customer@example.com",
            "--subject",
            "Router keeps rebooting",
            "--body",
            "Since the update my router restarts every hour.",
            "--channel",
            "email",
            "--product-area",
            "router-x200",
            "--idempotency-key",
            &key,
            "--json",
        ],
    )
    .await;
    let again = json(&out);
    assert_eq!(again["ticketId"], id.as_str());
    assert_eq!(again["customerId"], customer.as_str());
    assert!(again.get("created").is_none(), "{again}");

    // An agent reads it, replies, notes (from stdin) and solves it.
    let stdout = ok(&run_cmd(agent(&["show", &id])).await);
    assert!(stdout.contains("Router keeps rebooting"), "{stdout}");
    assert!(stdout.contains("opened via email"), "{stdout}");
    assert!(stdout.contains("web-shop (customer_system)"), "{stdout}");

    let stdout = ok(&run_cmd(agent(&[
        "reply",
        &id,
        "Which firmware do you run?",
        "--pending",
    ]))
    .await);
    assert!(
        stdout.contains(&format!("ticket {id}: replied (pending, version")),
        "{stdout}"
    );

    let mut note = agent(&["note", &id, "-"]);
    note.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = note.spawn().unwrap();
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"Known issue with 2.1\n").await.unwrap();
    }
    let stdout = ok(&child.wait_with_output().await.unwrap());
    assert!(stdout.contains("noted (pending, version"), "{stdout}");

    let reply = json(&run_cmd(agent(&["reply", &id, "Anything else?", "--json"])).await);
    assert_eq!(reply["change"]["ticketId"], id.as_str());
    assert_eq!(reply["change"]["recorded"], true);

    let stdout = ok(&run_cmd(agent(&["solve", &id, "--resolution", "Firmware 2.2"])).await);
    assert!(stdout.contains("solved (solved, version"), "{stdout}");

    // The timeline tells the story, in order.
    let stdout = ok(&run_cmd(agent(&["show", &id])).await);
    assert!(stdout.contains("[solved]"), "{stdout}");
    let at = |what: &str| {
        stdout
            .find(what)
            .unwrap_or_else(|| panic!("no {what:?} in {stdout}"))
    };
    assert!(at("opened via email") < at("replied, waiting on the customer"));
    assert!(at("replied, waiting on the customer") < at("added an internal note"));
    assert!(at("added an internal note") < at("TicketSolved"));
    assert!(at("\"Which firmware do you run?\"") < at("\"Known issue with 2.1\""));
    assert!(stdout.contains("ana (agent)"), "{stdout}");
    assert!(stdout.contains("TicketSolved"), "{stdout}");

    // --json: the ticket and its events, canonical JSON.
    let shown = json(&run_cmd(agent(&["show", &id, "--json"])).await);
    assert_eq!(shown["ticket"]["ticketId"], id.as_str());
    assert_eq!(shown["ticket"]["status"], "TICKET_STATUS_SOLVED");
    assert_eq!(shown["ticket"]["channel"], "CHANNEL_EMAIL");
    let types: Vec<&str> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["eventType"].as_str())
        .collect();
    for t in [
        "frontline.v1.TicketOpened",
        "frontline.v1.AgentReplied",
        "frontline.v1.TicketSolved",
    ] {
        assert!(types.contains(&t), "{types:?}");
    }

    // watch: every event so far, then live; Ctrl-C ends it cleanly.
    let mut watch = agent(&["watch", &id]);
    watch.stdout(std::process::Stdio::piped());
    let mut child = watch.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("[solved]");
            seen.push(line);
            if done {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("watch printed only {seen:?}"));
    assert!(seen[0].contains("v1 "), "{seen:?}");
    assert!(
        seen.iter().any(|l| l.contains("Anything else?")),
        "{seen:?}"
    );
    assert!(seen.last().unwrap().contains("[solved] solved"), "{seen:?}");
    let pid = child.id().unwrap().to_string();
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");

    // Routing: agents, the queue, the customer's tier (set by a manager).
    let mut routing = cluster
        .routing_as(&caller("max", Role::Manager, &["acme"]), None)
        .await
        .unwrap();
    routing
        .register_agent(v1::RegisterAgentRequest {
            agent_id: "ana".into(),
            profile: Some(v1::AgentProfile {
                display_name: "Ana".into(),
                skills: vec![v1::Skill {
                    product_area: "router-x200".into(),
                    level: 3,
                }],
                capacity: 5,
                team: "first-line".into(),
                tenants: vec!["acme".into()],
            }),
        })
        .await
        .unwrap();
    let stdout = ok(&run(&cluster, &manager, &["agents"]).await);
    assert!(stdout.contains("AGENT"), "{stdout}");
    assert!(stdout.contains("ana"), "{stdout}");
    assert!(stdout.contains("router-x200:3"), "{stdout}");
    let agents = json(&run_cmd(agent(&["agents", "--json"])).await);
    assert_eq!(agents["agents"][0]["agentId"], "ana");
    assert_eq!(agents["agents"][0]["status"], "AGENT_STATUS_OFFLINE");

    let stdout = ok(&run_cmd(agent(&["queue"])).await);
    assert!(stdout.contains("TICKET"), "{stdout}");
    json(&run_cmd(agent(&["queue", "--json"])).await);

    let stdout = ok(&run_cmd(agent(&["tier", &customer])).await);
    assert!(
        stdout.contains(&format!("customer {customer}: ")),
        "{stdout}"
    );
    let stdout = ok(&run(
        &cluster,
        &manager,
        &["tier", "set", &customer, "extended", "--named-agent", "ana"],
    )
    .await);
    assert!(stdout.contains("extended, named agent ana"), "{stdout}");
    let tier = json(&run_cmd(agent(&["tier", &customer, "--json"])).await);
    assert_eq!(tier["tier"]["tier"], "TIER_EXTENDED");
    assert_eq!(tier["tier"]["namedAgentId"], "ana");

    // Analytics: metrics for managers; top puts routing and analytics together.
    let stdout = ok(&run(&cluster, &manager, &["metrics"]).await);
    assert!(stdout.contains("tickets"), "{stdout}");
    let metrics = json(
        &run(
            &cluster,
            &manager,
            &["metrics", "--group-by", "channel", "--json"],
        )
        .await,
    );
    assert!(metrics["asOf"].is_string(), "{metrics}");
    let stdout = ok(&run(&cluster, &manager, &["top", "--once"]).await);
    assert!(stdout.contains("QUEUE"), "{stdout}");
    assert!(stdout.contains("SLA"), "{stdout}");
    assert!(stdout.contains("ana"), "{stdout}");

    // Failures: the gRPC code in the exit code and on stderr, stdout empty.
    let unknown = uuid::Uuid::new_v4().to_string();
    let (code, stderr) = failed(&run_cmd(agent(&["show", &unknown, "--json"])).await);
    assert_eq!(code, 15, "{stderr}");
    assert!(stderr.starts_with("error: NOT_FOUND: "), "{stderr}");
    let (code, stderr) = failed(&run(&cluster, "not-a-jwt", &["show", &id]).await);
    assert_eq!(code, 26, "{stderr}");
    assert!(stderr.starts_with("error: UNAUTHENTICATED: "), "{stderr}");
    let (code, stderr) = failed(&run(&cluster, &shop, &["agents"]).await);
    assert_eq!(code, 17, "{stderr}");
    assert!(stderr.starts_with("error: PERMISSION_DENIED: "), "{stderr}");
    let (code, stderr) = failed(&run_cmd(agent(&["reply", &id, ""])).await);
    assert_eq!(code, 13, "{stderr}");
    assert!(stderr.starts_with("error: INVALID_ARGUMENT: "), "{stderr}");
    let (code, stderr) = failed(&run_cmd(agent(&["reply", &id, "Still there?"])).await);
    assert_eq!(code, 19, "{stderr}");
    assert!(
        stderr.starts_with("error: FAILED_PRECONDITION: "),
        "{stderr}"
    );

    cluster.shutdown().await;
}

/// Runs a prepared command.
async fn run_cmd(mut cmd: Command) -> Output {
    cmd.output().await.unwrap()
}

#[tokio::test]
async fn usage_errors_exit_2_and_say_what_is_missing() {
    // No token anywhere.
    let out = frontline(None)
        .args(["show", "some-ticket"])
        .output()
        .await
        .unwrap();
    let (code, stderr) = failed(&out);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.starts_with("error: no token"), "{stderr}");
    assert!(stderr.contains("--token"), "{stderr}");
    // A token file that is not there.
    let out = frontline(None)
        .args(["show", "some-ticket", "--token-file", "/nonexistent/token"])
        .output()
        .await
        .unwrap();
    let (code, stderr) = failed(&out);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/token"), "{stderr}");
    // Missing arguments (clap).
    let out = frontline(None).args(["reply"]).output().await.unwrap();
    assert_eq!(failed(&out).0, 2);
}

#[tokio::test]
async fn an_unreachable_service_is_unavailable() {
    // Port 1 on loopback: nothing listens there.
    let out = frontline(None)
        .args(["show", "some-ticket", "--token", "t"])
        .args(["--conversation", "http://127.0.0.1:1"])
        .output()
        .await
        .unwrap();
    let (code, stderr) = failed(&out);
    assert_eq!(code, 24, "{stderr}");
    assert!(
        stderr.starts_with("error: UNAVAILABLE: cannot connect to conversation"),
        "{stderr}"
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM
/// files in `dir`.
fn test_pki(dir: &std::path::Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "CLI test CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for (name, san, usage) in [
        ("server", "127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth),
        (
            "client",
            "frontline-cli",
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
    ] {
        let mut params = CertificateParams::new(vec![san.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, san);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls_with_the_ca_and_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    test_pki(dir.path());
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let mut cluster = Cluster::bare().await.unwrap();
    let mut config = cluster.config().unwrap();
    config.tls.cert_file = Some(dir.path().join("server.pem"));
    config.tls.key_file = Some(dir.path().join("server-key.pem"));
    config.tls.client_ca_file = Some(dir.path().join("ca.pem"));
    let addr = cluster
        .serve_config(frontline_intake::service(), config)
        .await
        .unwrap();
    let shop = token("customer_system", "web-shop").await;
    let submit = |tls: &[String]| {
        let mut cmd = frontline(None);
        cmd.args([
            "submit",
            "--email",
            "tls@example.com",
            "--subject",
            "Over TLS",
        ])
        .args(["--body", "Hello", "--product-area", "billing", "--json"])
        .args(["--idempotency-key", "over-tls"])
        .args(["--intake", &format!("https://{addr}")])
        .args(tls)
        .env("FRONTLINE_TOKEN", &shop);
        cmd
    };
    let with_certs = [
        "--ca-file".to_string(),
        file("ca.pem"),
        "--cert-file".to_string(),
        file("client.pem"),
        "--key-file".to_string(),
        file("client-key.pem"),
    ];
    // The server may still be starting: a few tries (nothing here is about time).
    let mut answer = None;
    for _ in 0..300 {
        let out = run_cmd(submit(&with_certs)).await;
        if out.status.code() != Some(24) {
            answer = Some(out);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let opened = json(&answer.expect("intake over TLS never answered"));
    assert!(opened["ticketId"].is_string(), "{opened}");
    // The same from the environment.
    let out = run_cmd({
        let mut cmd = submit(&[]);
        cmd.env("FRONTLINE_CA_FILE", file("ca.pem"))
            .env("FRONTLINE_CERT_FILE", file("client.pem"))
            .env("FRONTLINE_KEY_FILE", file("client-key.pem"));
        cmd
    })
    .await;
    assert_eq!(json(&out)["ticketId"], opened["ticketId"]);
    // Without the client certificate the server refuses the handshake.
    let (code, stderr) = failed(&run_cmd(submit(&with_certs[..2])).await);
    assert_ne!(code, 0, "{stderr}");
    cluster.shutdown().await;
}
