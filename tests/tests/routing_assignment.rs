//! Assignment end to end: routing's consumers give every new or reopened ticket to
//! an agent by the rules, record why, keep each agent's load on the log, queue what
//! nobody can take and hand it out as capacity frees — also with two replicas.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use frontline_domain::Role;
use frontline_e2e::{Cluster, caller, submit_request, violated_field};
use frontline_proto::v1;
use tonic::Code;

const TENANT: &str = frontline_e2e::TENANT;

fn profile(skills: &[&str], capacity: u32) -> v1::AgentProfile {
    v1::AgentProfile {
        display_name: "Agent".into(),
        skills: skills
            .iter()
            .map(|a| v1::Skill {
                product_area: (*a).into(),
                level: 3,
            })
            .collect(),
        capacity,
        team: "first-line".into(),
        tenants: vec![TENANT.into()],
    }
}

fn manager() -> frontline_domain::Caller {
    caller("max", Role::Manager, &[TENANT])
}

async fn agent_online(cluster: &Cluster, id: &str, skills: &[&str], capacity: u32) {
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    routing
        .register_agent(v1::RegisterAgentRequest {
            agent_id: id.into(),
            profile: Some(profile(skills, capacity)),
        })
        .await
        .unwrap();
    set_status(cluster, id, v1::AgentStatus::Available).await;
}

async fn set_status(cluster: &Cluster, id: &str, status: v1::AgentStatus) {
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    routing
        .set_agent_status(v1::SetAgentStatusRequest {
            agent_id: id.into(),
            status: status.into(),
        })
        .await
        .unwrap();
}

/// Submits a new ticket for `email` in `area`; returns its id.
async fn submit(cluster: &Cluster, key: &str, email: &str, area: &str) -> String {
    submit_for(cluster, key, email, area).await.0
}

/// Submits a new ticket for `email` in `area`; returns its id and the customer's.
async fn submit_for(cluster: &Cluster, key: &str, email: &str, area: &str) -> (String, String) {
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut request = submit_request(key, email);
    request.product_area = area.into();
    request.subject = format!("About {area}, {key}");
    let answer = intake.submit_ticket(request).await.unwrap().into_inner();
    assert!(answer.created, "{key} opened a new ticket");
    (answer.ticket_id, answer.customer_id)
}

fn set_tier(customer: &str, tier: v1::Tier, named: &str) -> v1::SetCustomerTierRequest {
    v1::SetCustomerTierRequest {
        customer_id: customer.into(),
        tier: tier.into(),
        named_agent_id: named.into(),
    }
}

async fn routing_of(cluster: &Cluster, ticket_id: &str) -> v1::TicketRouting {
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    routing
        .get_ticket_routing(v1::GetTicketRoutingRequest {
            ticket_id: ticket_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .routing
        .unwrap()
}

/// Waits (up to 20 s) until `check` holds for the ticket's routing.
async fn until(
    cluster: &Cluster,
    ticket_id: &str,
    what: &str,
    check: impl Fn(&v1::TicketRouting) -> bool,
) -> v1::TicketRouting {
    for _ in 0..200 {
        let routing = routing_of(cluster, ticket_id).await;
        if check(&routing) {
            return routing;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{ticket_id}: {what}: {:?}",
        routing_of(cluster, ticket_id).await
    );
}

async fn assigned_to(cluster: &Cluster, ticket_id: &str, agent: &str) -> v1::TicketRouting {
    until(cluster, ticket_id, &format!("assigned to {agent}"), |r| {
        r.assignee == agent && !r.waiting
    })
    .await
}

fn last_decision(r: &v1::TicketRouting) -> &v1::RoutingDecision {
    r.decisions.last().unwrap()
}

fn verdicts(d: &v1::RoutingDecision) -> Vec<(String, v1::RoutingVerdict)> {
    d.candidates
        .iter()
        .map(|c| (c.agent_id.clone(), c.verdict()))
        .collect()
}

async fn solve(cluster: &Cluster, agent: &str, ticket_id: &str) {
    let mut conversation = cluster.conversation(agent, Role::Agent).await.unwrap();
    conversation
        .solve(v1::SolveRequest {
            ticket_id: ticket_id.into(),
            resolution: "Done.".into(),
            expected_version: None,
        })
        .await
        .unwrap();
}

async fn load_of(cluster: &Cluster, agent: &str) -> u32 {
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    routing
        .get_agent(v1::GetAgentRequest {
            agent_id: agent.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .agent
        .unwrap()
        .load
}

async fn until_load(cluster: &Cluster, agent: &str, load: u32) {
    for _ in 0..200 {
        if load_of(cluster, agent).await == load {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{agent}'s load never became {load}: {}",
        load_of(cluster, agent).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_go_by_skill_load_and_who_knows_the_customer_with_reasons() {
    let cluster = Cluster::start().await.unwrap();
    agent_online(&cluster, "bea", &["billing"], 10).await;
    agent_online(&cluster, "rob", &["router-x200"], 10).await;
    agent_online(&cluster, "ana", &["billing", "router-x200"], 10).await;

    // Least loaded with the skill; a tie goes by agent id.
    let t1 = submit(&cluster, "t1", "c1@example.com", "billing").await;
    let r1 = assigned_to(&cluster, &t1, "ana").await;
    let d1 = last_decision(&r1);
    assert_eq!(d1.rule(), v1::RoutingRule::LeastLoaded);
    assert_eq!(d1.decided_by, "frontline-routing");
    assert_eq!(
        verdicts(d1),
        vec![
            ("ana".to_string(), v1::RoutingVerdict::Chosen),
            ("bea".to_string(), v1::RoutingVerdict::Passed),
            ("rob".to_string(), v1::RoutingVerdict::NoSkill),
        ]
    );
    let t2 = submit(&cluster, "t2", "c2@example.com", "billing").await;
    assigned_to(&cluster, &t2, "bea").await;
    assert_eq!(load_of(&cluster, "ana").await, 1);

    // Solving lets the agent go; the customer coming back goes to the one who
    // knows them, though another agent is as free.
    solve(&cluster, "ana", &t1).await;
    solve(&cluster, "bea", &t2).await;
    until_load(&cluster, "ana", 0).await;
    until_load(&cluster, "bea", 0).await;
    let t3 = submit(&cluster, "t3", "c2@example.com", "billing").await;
    let r3 = assigned_to(&cluster, &t3, "bea").await;
    assert_eq!(last_decision(&r3).rule(), v1::RoutingRule::KnowsCustomer);

    // Nobody has the skill: the ticket waits, with why, and goes to the first
    // skilled agent who comes online.
    let (t4, c3) = submit_for(&cluster, "t4", "c3@example.com", "modem").await;
    let r4 = until(&cluster, &t4, "queued", |r| r.queued).await;
    let d4 = last_decision(&r4);
    assert_eq!(d4.rule(), v1::RoutingRule::Queued);
    assert!(
        verdicts(d4)
            .iter()
            .all(|(_, v)| *v == v1::RoutingVerdict::NoSkill)
    );
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    let queue = routing
        .list_queue(v1::ListQueueRequest { page_size: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(queue.tickets.len(), 1);
    assert_eq!(queue.tickets[0].ticket_id, t4);
    assert_eq!(queue.tickets[0].product_area, "modem");
    // A basic-tier customer: still a human one step away.
    routing
        .set_customer_tier(set_tier(&c3, v1::Tier::Basic, ""))
        .await
        .unwrap();
    agent_online(&cluster, "mo", &["modem"], 2).await;
    let r4 = assigned_to(&cluster, &t4, "mo").await;
    assert_eq!(r4.tier(), v1::Tier::Basic);
    assert_eq!(last_decision(&r4).rule(), v1::RoutingRule::LeastLoaded);

    // Mo goes offline: nobody else can take the modem ticket, so it waits again;
    // when Mo is back, it is theirs again.
    set_status(&cluster, "mo", v1::AgentStatus::Offline).await;
    until(&cluster, &t4, "back in the queue", |r| r.queued).await;
    until_load(&cluster, "mo", 0).await;
    set_status(&cluster, "mo", v1::AgentStatus::Available).await;
    assigned_to(&cluster, &t4, "mo").await;

    // An extended-tier customer goes to their named agent first, skill or not.
    let (t5, c4) = submit_for(&cluster, "t5", "c4@example.com", "billing").await;
    until(&cluster, &t5, "assigned", |r| !r.waiting).await;
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    let tier = routing
        .get_customer_tier(v1::GetCustomerTierRequest {
            customer_id: c4.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tier
        .unwrap();
    assert_eq!((tier.tier(), tier.default), (v1::Tier::Standard, true));
    let tier = routing
        .set_customer_tier(set_tier(&c4, v1::Tier::Extended, "rob"))
        .await
        .unwrap()
        .into_inner()
        .tier
        .unwrap();
    assert_eq!(
        (tier.tier(), tier.default, tier.named_agent_id.as_str()),
        (v1::Tier::Extended, false, "rob")
    );
    let holder = routing_of(&cluster, &t5).await.assignee;
    solve(&cluster, &holder, &t5).await;
    let t6 = submit(&cluster, "t6", "c4@example.com", "billing").await;
    let r6 = assigned_to(&cluster, &t6, "rob").await;
    assert_eq!(last_decision(&r6).rule(), v1::RoutingRule::NamedAgent);
    solve(&cluster, "rob", &t6).await;
    until_load(&cluster, "rob", 0).await;

    // A manager transfers by hand, with a reason: loads move in one step.
    let moved = routing
        .transfer_ticket(v1::TransferTicketRequest {
            ticket_id: t3.clone(),
            agent_id: "rob".into(),
            reason: "Rob knows this customer's contract".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .routing
        .unwrap();
    assert_eq!(moved.assignee, "rob");
    let by_hand = last_decision(&moved);
    assert_eq!(by_hand.rule(), v1::RoutingRule::Manual);
    assert_eq!(by_hand.decided_by, "max");
    assert_eq!(by_hand.reason, "Rob knows this customer's contract");
    assert_eq!(load_of(&cluster, "bea").await, 0);
    assert_eq!(load_of(&cluster, "rob").await, 1);
    // The same transfer again changes nothing: not the ticket, not the load.
    cluster.routing_settled().await.unwrap();
    let before = cluster.log.last_sequence().await.unwrap();
    let again = routing
        .transfer_ticket(v1::TransferTicketRequest {
            ticket_id: t3.clone(),
            agent_id: "rob".into(),
            reason: "again".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .routing
        .unwrap();
    assert_eq!(again.version, moved.version);
    assert_eq!(cluster.log.last_sequence().await.unwrap(), before);

    // The ticket shows its agent to staff.
    let mut conversation = cluster.conversation("ana", Role::Agent).await.unwrap();
    let ticket = conversation
        .get_ticket(v1::GetTicketRequest {
            ticket_id: t3.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(ticket.assignee, "rob");

    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_hand_refusals_have_their_exact_status() {
    let cluster = Cluster::start().await.unwrap();
    agent_online(&cluster, "ana", &["billing"], 1).await;
    agent_online(&cluster, "bea", &["billing"], 1).await;
    let t1 = submit(&cluster, "t1", "c1@example.com", "billing").await;
    let r1 = until(&cluster, &t1, "assigned", |r| !r.waiting).await;
    let holder = r1.assignee.clone();
    let other = if holder == "ana" { "bea" } else { "ana" };
    let t2 = submit(&cluster, "t2", "c2@example.com", "billing").await;
    until(&cluster, &t2, "assigned", |r| {
        !r.waiting && r.assignee == other
    })
    .await;
    // Both are full now: a third waits.
    let t3 = submit(&cluster, "t3", "c3@example.com", "billing").await;
    until(&cluster, &t3, "queued", |r| r.queued).await;

    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    let assign = |ticket: &str, agent: &str, reason: &str| v1::AssignTicketRequest {
        ticket_id: ticket.into(),
        agent_id: agent.into(),
        reason: reason.into(),
    };
    let code = |r: Result<tonic::Response<v1::AssignTicketResponse>, tonic::Status>| r.unwrap_err();
    // Bad input.
    let e = code(routing.assign_ticket(assign("nope", "ana", "r")).await);
    assert_eq!(
        (e.code(), violated_field(&e).as_deref()),
        (Code::InvalidArgument, Some("ticket_id"))
    );
    let e = code(routing.assign_ticket(assign(&t3, "", "r")).await);
    assert_eq!(
        (e.code(), violated_field(&e).as_deref()),
        (Code::InvalidArgument, Some("agent_id"))
    );
    let e = code(routing.assign_ticket(assign(&t3, "ana", " ")).await);
    assert_eq!(
        (e.code(), violated_field(&e).as_deref()),
        (Code::InvalidArgument, Some("reason"))
    );
    let e = code(
        routing
            .assign_ticket(assign(&t3, "ana", &"x".repeat(501)))
            .await,
    );
    assert_eq!(
        (e.code(), violated_field(&e).as_deref()),
        (Code::InvalidArgument, Some("reason"))
    );
    // Unknown ticket and agent.
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        code(routing.assign_ticket(assign(&unknown, "ana", "r")).await).code(),
        Code::NotFound
    );
    assert_eq!(
        code(routing.assign_ticket(assign(&t3, "zed", "r")).await).code(),
        Code::NotFound
    );
    // Capacity holds by hand too.
    let e = code(routing.assign_ticket(assign(&t3, "ana", "urgent")).await);
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("capacity"), "{e:?}");
    // An assigned ticket is transferred, not assigned; a waiting one assigned.
    let e = code(routing.assign_ticket(assign(&t1, other, "r")).await);
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("TransferTicket"), "{e:?}");
    let e = routing
        .transfer_ticket(v1::TransferTicketRequest {
            ticket_id: t3.clone(),
            agent_id: "ana".into(),
            reason: "r".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("AssignTicket"), "{e:?}");
    // A solved ticket is assigned to nobody.
    solve(&cluster, &holder, &t1).await;
    let e = code(routing.assign_ticket(assign(&t1, &holder, "r")).await);
    assert_eq!(e.code(), Code::FailedPrecondition);
    // Page size.
    let e = routing
        .list_queue(v1::ListQueueRequest { page_size: 501 })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), violated_field(&e).as_deref()),
        (Code::InvalidArgument, Some("page_size"))
    );
    let e = routing
        .get_ticket_routing(v1::GetTicketRoutingRequest {
            ticket_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Tiers: bad input, unknown customer or agent, an agent of another tenant.
    let customer = {
        let mut conversation = cluster.conversation("ana", Role::Agent).await.unwrap();
        conversation
            .get_ticket(v1::GetTicketRequest {
                ticket_id: t3.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .ticket
            .unwrap()
            .customer_id
    };
    for (request, field) in [
        (set_tier("nope", v1::Tier::Basic, ""), "customer_id"),
        (set_tier(&customer, v1::Tier::Unspecified, ""), "tier"),
        (
            set_tier(&customer, v1::Tier::Standard, "ana"),
            "named_agent_id",
        ),
    ] {
        let e = routing.set_customer_tier(request).await.unwrap_err();
        assert_eq!(
            (e.code(), violated_field(&e).as_deref()),
            (Code::InvalidArgument, Some(field))
        );
    }
    let stranger = uuid::Uuid::now_v7().to_string();
    let e = routing
        .set_customer_tier(set_tier(&stranger, v1::Tier::Basic, ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = routing
        .set_customer_tier(set_tier(&customer, v1::Tier::Extended, "zed"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let admin = caller("root", Role::Admin, &["*"]);
    let mut as_admin = cluster.routing_as(&admin, Some(TENANT)).await.unwrap();
    as_admin
        .register_agent(v1::RegisterAgentRequest {
            agent_id: "gil".into(),
            profile: Some(v1::AgentProfile {
                tenants: vec!["globex".into()],
                ..profile(&["billing"], 5)
            }),
        })
        .await
        .unwrap();
    let e = as_admin
        .set_customer_tier(set_tier(&customer, v1::Tier::Extended, "gil"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = routing
        .get_customer_tier(v1::GetCustomerTierRequest {
            customer_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Who may: agents read routing but assign nothing; customer systems neither;
    // another tenant's manager sees no such ticket.
    let agent = caller("ana", Role::Agent, &[TENANT]);
    let mut as_agent = cluster.routing_as(&agent, None).await.unwrap();
    let e = as_agent
        .assign_ticket(assign(&t3, "ana", "r"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    as_agent
        .get_ticket_routing(v1::GetTicketRoutingRequest {
            ticket_id: t3.clone(),
        })
        .await
        .unwrap();
    let shop = caller("web-shop", Role::CustomerSystem, &[TENANT]);
    let mut as_shop = cluster.routing_as(&shop, None).await.unwrap();
    let e = as_shop
        .get_ticket_routing(v1::GetTicketRoutingRequest {
            ticket_id: t3.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = as_shop
        .list_queue(v1::ListQueueRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let elsewhere = caller("gus", Role::Manager, &["globex"]);
    let mut as_gus = cluster.routing_as(&elsewhere, None).await.unwrap();
    let e = as_gus
        .assign_ticket(assign(&t3, "ana", "r"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = as_gus
        .get_ticket_routing(v1::GetTicketRoutingRequest {
            ticket_id: t3.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        as_gus
            .list_queue(v1::ListQueueRequest::default())
            .await
            .unwrap()
            .into_inner()
            .tickets
            .is_empty()
    );

    cluster.shutdown().await;
}

/// 200 tickets at once against 5 agents of capacity 10, with two routing replicas
/// deciding side by side: exactly 50 assigned, nobody above capacity, no ticket
/// assigned twice, 150 waiting in tier, priority and arrival order; freed capacity
/// goes to the head of the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_tickets_five_agents_two_replicas() {
    let mut cluster = Cluster::start().await.unwrap();
    let second = cluster.serve(frontline_routing::service()).await.unwrap();
    cluster.wait_serving(second).await.unwrap();
    let agents = ["a1", "a2", "a3", "a4", "a5"];
    for id in agents {
        agent_online(&cluster, id, &["router-x200"], 10).await;
    }

    let priorities = [
        v1::Priority::Low,
        v1::Priority::Normal,
        v1::Priority::High,
        v1::Priority::Urgent,
    ];
    let intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let submits = (0..200).map(|i| {
        let mut intake = intake.clone();
        async move {
            let mut request = submit_request(&format!("k{i}"), &format!("c{i}@example.com"));
            request.priority = priorities[i % 4].into();
            intake
                .submit_ticket(request)
                .await
                .unwrap()
                .into_inner()
                .ticket_id
        }
    });
    let tickets: Vec<String> = futures::future::join_all(submits).await;
    assert_eq!(tickets.len(), 200);

    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    let mut queue = Vec::new();
    for _ in 0..300 {
        queue = routing
            .list_queue(v1::ListQueueRequest { page_size: 500 })
            .await
            .unwrap()
            .into_inner()
            .tickets;
        let mut loads = 0;
        for id in agents {
            loads += load_of(&cluster, id).await;
        }
        if queue.len() == 150 && loads == 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(queue.len(), 150, "waiting");
    for id in agents {
        assert_eq!(load_of(&cluster, id).await, 10, "{id}'s load");
    }
    // Every ticket has exactly one routing: assigned once, or queued and waiting.
    let mut assigned = 0;
    for id in &tickets {
        let r = routing_of(&cluster, id).await;
        let assignments = r
            .decisions
            .iter()
            .filter(|d| d.rule() != v1::RoutingRule::Queued)
            .count();
        assert!(assignments <= 1, "{id} assigned {assignments} times");
        if assignments == 1 {
            assert!(!r.waiting);
            assigned += 1;
        } else {
            assert!(r.queued, "{id} neither assigned nor queued: {r:?}");
        }
    }
    assert_eq!(assigned, 50);
    // Queue order: urgent first, then by arrival.
    let ranks: Vec<(i32, i64, i32)> = queue
        .iter()
        .map(|t| {
            let at = t.queued_at.unwrap();
            (-t.priority, at.seconds, at.nanos)
        })
        .collect();
    let mut sorted = ranks.clone();
    sorted.sort();
    assert_eq!(ranks, sorted, "queue order");

    // A solve frees capacity: the head of the queue is assigned next.
    let head = queue[0].ticket_id.clone();
    let holder_ticket = tickets
        .iter()
        .find(|t| !queue.iter().any(|q| &q.ticket_id == *t))
        .unwrap()
        .clone();
    let holder = routing_of(&cluster, &holder_ticket).await.assignee;
    solve(&cluster, &holder, &holder_ticket).await;
    assigned_to(&cluster, &head, &holder).await;
    for id in agents {
        assert!(load_of(&cluster, id).await <= 10);
    }

    cluster.shutdown().await;
}
