//! Traces end to end: an OTLP receiver started here collects the spans of one
//! submit as it travels — intake's call, routing's assignment, analytics'
//! projection — and they form one trace, each consumer's span a child of the span
//! that appended the event it handles.
//!
//! The services share this process, so they share one tracer (one resource,
//! `service.name = frontline-e2e`); every span Frontline opens also names its
//! service in `frontline.service`, which is how the spans are told apart here.
#![allow(clippy::unwrap_used)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use frontline_domain::Role;
use frontline_e2e::{Cluster, caller, submit_request};
use frontline_proto::v1;
use frontline_runtime::telemetry::{self, LogFormat, TracingConfig};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{KeyValue, any_value::Value},
    trace::v1::Span,
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

const TENANT: &str = frontline_e2e::TENANT;

/// An OTLP/gRPC trace receiver keeping every span it is sent.
#[derive(Clone, Debug, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
}

/// A span with its resource's `service.name`.
#[derive(Clone, Debug)]
struct Received {
    resource_service: String,
    span: Span,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self
            .spans
            .lock()
            .map_err(|_| Status::internal("receiver poisoned"))?;
        for resource_spans in request.into_inner().resource_spans {
            let resource_service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| attr(&r.attributes, "service.name"))
                .unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push(Received {
                    resource_service: resource_service.clone(),
                    span,
                });
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves the receiver on an ephemeral port; returns its endpoint.
    async fn start(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        format!("http://{addr}")
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }
}

/// A string or integer attribute, as text.
fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The spans of one trace, with lookups by what the test needs.
struct Trace(Vec<Span>);

impl Trace {
    fn of(received: &[Received], trace_id: &str) -> Trace {
        Trace(
            received
                .iter()
                .filter(|r| hex(&r.span.trace_id) == trace_id)
                .map(|r| r.span.clone())
                .collect(),
        )
    }

    /// The spans called `name` by `service` whose attributes hold `with`.
    fn find(&self, service: &str, name: &str, with: &[(&str, &str)]) -> Vec<&Span> {
        self.0
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| attr(&s.attributes, "frontline.service").as_deref() == Some(service))
            .filter(|s| {
                with.iter()
                    .all(|(k, v)| attr(&s.attributes, k).as_deref() == Some(*v))
            })
            .collect()
    }

    fn one(&self, service: &str, name: &str, with: &[(&str, &str)]) -> &Span {
        let found = self.find(service, name, with);
        assert_eq!(
            found.len(),
            1,
            "one {name} of {service} with {with:?} in the trace; spans: {}",
            self.describe()
        );
        found[0]
    }

    fn parent(&self, span: &Span) -> Option<&Span> {
        self.0.iter().find(|s| s.span_id == span.parent_span_id)
    }

    /// Whether `span` descends from `ancestor`.
    fn descends(&self, span: &Span, ancestor: &Span) -> bool {
        let mut at = span;
        while let Some(parent) = self.parent(at) {
            if parent.span_id == ancestor.span_id {
                return true;
            }
            at = parent;
        }
        false
    }

    fn describe(&self) -> String {
        self.0
            .iter()
            .map(|s| {
                format!(
                    "\n  {} {} (parent {}) {:?} {:?}",
                    hex(&s.span_id),
                    s.name,
                    hex(&s.parent_span_id),
                    attr(&s.attributes, "frontline.service"),
                    attr(&s.attributes, "event_type"),
                )
            })
            .collect()
    }
}

async fn agent_online(cluster: &Cluster, id: &str, area: &str) {
    let mut routing = cluster
        .routing_as(&caller("max", Role::Manager, &[TENANT]), None)
        .await
        .unwrap();
    routing
        .register_agent(v1::RegisterAgentRequest {
            agent_id: id.into(),
            profile: Some(v1::AgentProfile {
                display_name: id.into(),
                skills: vec![v1::Skill {
                    product_area: area.into(),
                    level: 3,
                }],
                capacity: 10,
                team: "first-line".into(),
                tenants: vec![TENANT.into()],
            }),
        })
        .await
        .unwrap();
    routing
        .set_agent_status(v1::SetAgentStatusRequest {
            agent_id: id.into(),
            status: v1::AgentStatus::Available.into(),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_submit_is_one_trace_from_intake_through_routing_to_analytics() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let telemetry = telemetry::init(
        LogFormat::Text,
        Some(TracingConfig {
            service_name: "frontline-e2e".into(),
            endpoint: Some(endpoint),
            export_delay: Some(Duration::from_millis(100)),
        }),
    )
    .unwrap();
    assert!(
        telemetry.is_tracing(),
        "this test binary installs the only subscriber"
    );

    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    agent_online(&cluster, "ana", "router-x200").await;
    // The agent is known and free before the ticket arrives, so the ticket's own
    // TicketOpened is what routing assigns it in answer to (not a queue drain).
    cluster.routing_settled().await.unwrap();

    // An outside caller with a trace of its own: the call continues it.
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = "00f067aa0ba902b7";
    let mut request = Request::new(submit_request("trace-1", "dana@example.com"));
    let metadata = request.metadata_mut();
    metadata.insert(
        "traceparent",
        format!("00-{trace_id}-{caller_span}-01").parse().unwrap(),
    );
    metadata.insert("x-correlation-id", "corr-trace-1".parse().unwrap());
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let answer = intake.submit_ticket(request).await.unwrap().into_inner();
    assert!(answer.created);
    let subject = format!("frontline.ticket.{}", answer.ticket_id);

    // Assigned, and analytics has it.
    let mut routing = cluster
        .routing_as(&caller("max", Role::Manager, &[TENANT]), None)
        .await
        .unwrap();
    let mut assignee = String::new();
    for _ in 0..200 {
        let routed = routing
            .get_ticket_routing(v1::GetTicketRoutingRequest {
                ticket_id: answer.ticket_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .routing
            .unwrap();
        assignee = routed.assignee;
        if !assignee.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(assignee, "ana");
    cluster.analytics_settled().await.unwrap();

    // A consumer's span ends when its delivery is settled (after the checkpoint
    // moved, or after routing's handler returned): flush until both consumers'
    // spans are in (every span under them ended before them).
    let assigned = [
        ("event_type", "frontline.v1.TicketAssigned"),
        ("subject", subject.as_str()),
    ];
    let opened = [
        ("event_type", "frontline.v1.TicketOpened"),
        ("subject", subject.as_str()),
    ];
    let mut trace = Trace(Vec::new());
    for _ in 0..100 {
        telemetry.flush().await;
        trace = Trace::of(&receiver.spans(), &trace_id);
        let analytics = trace.find("frontline-analytics", "consume analytics-g1", &assigned);
        let routing = trace.find("frontline-routing", "consume routing-tickets", &opened);
        if !analytics.is_empty() && !routing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 1. Intake's call: a server span continuing the caller's trace, with who and
    //    where.
    let call = trace.one(
        "frontline-intake",
        "frontline.v1.IntakeService/SubmitTicket",
        &[],
    );
    assert_eq!(
        hex(&call.parent_span_id),
        caller_span,
        "the caller's span is the parent"
    );
    assert_eq!(call.kind, 2, "SPAN_KIND_SERVER");
    for (key, value) in [
        ("tenant", TENANT),
        ("actor", "web-shop"),
        ("correlation_id", "corr-trace-1"),
        ("rpc.system", "grpc"),
        ("rpc.service", "frontline.v1.IntakeService"),
        ("rpc.method", "SubmitTicket"),
        ("rpc.grpc.status_code", "0"),
    ] {
        assert_eq!(
            attr(&call.attributes, key).as_deref(),
            Some(value),
            "{key} on the call's span"
        );
    }

    // 2. Routing handles TicketOpened in a span whose parent is the span that
    //    appended it (intake's commit of the first contact), inside the call.
    let opened = trace.one("frontline-routing", "consume routing-tickets", &opened);
    assert_eq!(opened.kind, 5, "SPAN_KIND_CONSUMER");
    let opened_by = trace.parent(opened).unwrap_or_else(|| {
        panic!(
            "the appender of TicketOpened is in the trace: {}",
            trace.describe()
        )
    });
    assert!(
        ["eventlog.append", "eventlog.commit"].contains(&opened_by.name.as_str()),
        "TicketOpened's consumer span is a child of an append: {}",
        opened_by.name
    );
    assert_eq!(
        attr(&opened_by.attributes, "frontline.service").as_deref(),
        Some("frontline-intake")
    );
    assert_eq!(opened_by.kind, 4, "SPAN_KIND_PRODUCER");
    assert!(
        trace.descends(opened_by, call),
        "intake appended inside its call: {}",
        trace.describe()
    );

    // 3. The assignment: decided in that consumer span, TicketAssigned committed
    //    (with the agent's load) in a child of it.
    let commits: Vec<&Span> = trace
        .find("frontline-routing", "eventlog.commit", &[])
        .into_iter()
        .filter(|s| s.parent_span_id == opened.span_id)
        .filter(|s| {
            attr(&s.attributes, "subjects").is_some_and(|subjects| subjects.contains(&subject))
        })
        .collect();
    assert_eq!(
        commits.len(),
        1,
        "routing committed the assignment once, inside its handling of TicketOpened: {}",
        trace.describe()
    );
    let assignment = commits[0];

    // 4. Analytics projects TicketAssigned in a span whose parent is routing's
    //    commit: one trace from the caller to the read model.
    let projected = trace.one("frontline-analytics", "consume analytics-g1", &assigned);
    assert_eq!(
        projected.parent_span_id,
        assignment.span_id,
        "analytics' span of TicketAssigned is a child of routing's commit: {}",
        trace.describe()
    );
    // Its transaction: a child of the event's span, or (in a batch led by another
    // event) linked from it.
    let applied = trace.0.iter().any(|s| {
        s.name == "projection.apply"
            && (s.parent_span_id == projected.span_id
                || projected.links.iter().any(|l| l.span_id == s.span_id))
    });
    assert!(
        applied,
        "the projection's transaction is traced: {}",
        trace.describe()
    );
    // And TicketAssigned's other consumers continue the same trace.
    let routing_saw_it = trace.find("frontline-routing", "consume routing-tickets", &assigned);
    assert!(
        routing_saw_it
            .iter()
            .all(|s| s.parent_span_id == assignment.span_id),
        "routing's own handling of TicketAssigned is a child of the commit too"
    );

    // One resource for the process; probes are not traced.
    let received = receiver.spans();
    assert!(
        received
            .iter()
            .all(|r| r.resource_service == "frontline-e2e")
    );
    assert!(
        !received
            .iter()
            .any(|r| r.span.name.starts_with("grpc.health")),
        "health checks open no spans"
    );

    cluster.shutdown().await;
    telemetry.shutdown().await;
}
