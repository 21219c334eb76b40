//! Routing's agents over gRPC: managers register and update them, agents set their
//! own availability, lists are per tenant, and every refusal has its exact status.
#![allow(clippy::unwrap_used)]

use frontline_domain::Role;
use frontline_e2e::{Cluster, caller, violated_field};
use frontline_proto::v1;
use tonic::Code;

fn skill(area: &str, level: u32) -> v1::Skill {
    v1::Skill {
        product_area: area.into(),
        level,
    }
}

fn profile(name: &str, skills: &[(&str, u32)], tenants: &[&str]) -> v1::AgentProfile {
    v1::AgentProfile {
        display_name: name.into(),
        skills: skills.iter().map(|(a, l)| skill(a, *l)).collect(),
        capacity: 10,
        team: "first-line".into(),
        tenants: tenants.iter().map(ToString::to_string).collect(),
    }
}

fn register(id: &str, profile: v1::AgentProfile) -> v1::RegisterAgentRequest {
    v1::RegisterAgentRequest {
        agent_id: id.into(),
        profile: Some(profile),
    }
}

fn set_status(id: &str, status: v1::AgentStatus) -> v1::SetAgentStatusRequest {
    v1::SetAgentStatusRequest {
        agent_id: id.into(),
        status: status.into(),
    }
}

fn get(id: &str) -> v1::GetAgentRequest {
    v1::GetAgentRequest {
        agent_id: id.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_register_agents_who_set_their_own_status() {
    let cluster = Cluster::start().await.unwrap();
    let manager = caller("max", Role::Manager, &["acme"]);
    let mut routing = cluster.routing_as(&manager, None).await.unwrap();

    // Agents for billing, for the router, and for both.
    for (id, skills) in [
        ("bea", vec![("billing", 4)]),
        ("rob", vec![("router-x200", 5)]),
        ("ana", vec![("billing", 2), ("router-x200", 3)]),
    ] {
        let answer = routing
            .register_agent(register(id, profile(id, &skills, &["acme"])))
            .await
            .unwrap()
            .into_inner();
        assert!(answer.created);
        let agent = answer.agent.unwrap();
        assert_eq!(agent.agent_id, id);
        assert_eq!(agent.status, v1::AgentStatus::Offline as i32);
        assert!(agent.active);
    }
    // The same registration again: nothing new.
    let again = routing
        .register_agent(register(
            "bea",
            profile("bea", &[("billing", 4)], &["acme"]),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.created);
    assert_eq!(again.agent.unwrap().version, 1);

    // Ana sets herself available; she may not set Rob's status.
    let ana = caller("ana", Role::Agent, &["acme"]);
    let mut as_ana = cluster.routing_as(&ana, None).await.unwrap();
    let agent = as_ana
        .set_agent_status(set_status("ana", v1::AgentStatus::Available))
        .await
        .unwrap()
        .into_inner()
        .agent
        .unwrap();
    assert_eq!(agent.status, v1::AgentStatus::Available as i32);
    let err = as_ana
        .set_agent_status(set_status("rob", v1::AgentStatus::Available))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // The manager updates Rob (expecting his version), then deactivates Bea.
    let rob = routing
        .update_agent(v1::UpdateAgentRequest {
            agent_id: "rob".into(),
            profile: Some(profile(
                "Rob R.",
                &[("router-x200", 5), ("billing", 1)],
                &["acme"],
            )),
            expected_version: Some(1),
        })
        .await
        .unwrap()
        .into_inner()
        .agent
        .unwrap();
    assert_eq!(rob.profile.unwrap().skills.len(), 2);
    let err = routing
        .update_agent(v1::UpdateAgentRequest {
            agent_id: "rob".into(),
            profile: Some(profile("Rob", &[("router-x200", 5)], &["acme"])),
            expected_version: Some(1),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "stale version");
    routing
        .deactivate_agent(v1::DeactivateAgentRequest {
            agent_id: "bea".into(),
        })
        .await
        .unwrap();
    let err = routing
        .set_agent_status(set_status("bea", v1::AgentStatus::Available))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Lists: acme's active agents in id order, or all of them.
    let list = |include_inactive| v1::ListAgentsRequest { include_inactive };
    let ids =
        |r: v1::ListAgentsResponse| r.agents.into_iter().map(|a| a.agent_id).collect::<Vec<_>>();
    assert_eq!(
        ids(as_ana.list_agents(list(false)).await.unwrap().into_inner()),
        ["ana", "rob"]
    );
    assert_eq!(
        ids(routing.list_agents(list(true)).await.unwrap().into_inner()),
        ["ana", "bea", "rob"]
    );
    // Another tenant sees none of them.
    let globex = caller("gus", Role::Manager, &["globex"]);
    let mut as_globex = cluster.routing_as(&globex, None).await.unwrap();
    assert!(
        ids(as_globex
            .list_agents(list(true))
            .await
            .unwrap()
            .into_inner())
        .is_empty()
    );
    let err = as_globex.get_agent(get("ana")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        as_ana
            .get_agent(get("rob"))
            .await
            .unwrap()
            .into_inner()
            .agent
            .unwrap()
            .profile
            .unwrap()
            .display_name,
        "Rob R."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_status() {
    let cluster = Cluster::start().await.unwrap();
    let manager = caller("max", Role::Manager, &["acme"]);
    let mut routing = cluster.routing_as(&manager, None).await.unwrap();
    routing
        .register_agent(register(
            "ana",
            profile("Ana", &[("billing", 3)], &["acme"]),
        ))
        .await
        .unwrap();

    // Bad fields, named as the request names them.
    let mut bad_level = profile("Ana", &[("billing", 3), ("router-x200", 9)], &["acme"]);
    let mut twice = profile("Ana", &[("billing", 3), ("billing", 2)], &["acme"]);
    let mut no_capacity = profile("Ana", &[("billing", 3)], &["acme"]);
    no_capacity.capacity = 0;
    let mut bad_team = profile("Ana", &[("billing", 3)], &["acme"]);
    bad_team.team = "Team A".into();
    let cases = [
        (
            register("", profile("X", &[("billing", 1)], &["acme"])),
            "agent_id",
        ),
        (
            register("x y", profile("X", &[("billing", 1)], &["acme"])),
            "agent_id",
        ),
        (
            register("cy", profile(" ", &[("billing", 1)], &["acme"])),
            "profile.display_name",
        ),
        (
            register("cy", profile("Cy", &[], &["acme"])),
            "profile.skills",
        ),
        (
            register("cy", profile("Cy", &[("Billing", 1)], &["acme"])),
            "profile.skills[0].product_area",
        ),
        (
            register("cy", std::mem::take(&mut bad_level)),
            "profile.skills[1].level",
        ),
        (
            register("cy", std::mem::take(&mut twice)),
            "profile.skills[1].product_area",
        ),
        (
            register("cy", std::mem::take(&mut no_capacity)),
            "profile.capacity",
        ),
        (
            register("cy", std::mem::take(&mut bad_team)),
            "profile.team",
        ),
        (
            register("cy", profile("Cy", &[("billing", 1)], &[])),
            "profile.tenants",
        ),
        (
            register("cy", profile("Cy", &[("billing", 1)], &["ACME"])),
            "profile.tenants[0]",
        ),
        (
            v1::RegisterAgentRequest {
                agent_id: "cy".into(),
                profile: None,
            },
            "profile",
        ),
    ];
    for (request, field) in cases {
        let err = routing.register_agent(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(violated_field(&err).as_deref(), Some(field), "{err:?}");
    }
    let err = routing
        .set_agent_status(set_status("ana", v1::AgentStatus::Unspecified))
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err).as_deref(), Some("status"));
    let mut zero = profile("Ana", &[("billing", 3)], &["acme"]);
    zero.capacity = 0;
    let err = routing
        .update_agent(v1::UpdateAgentRequest {
            agent_id: "ana".into(),
            profile: Some(zero),
            expected_version: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err).as_deref(), Some("profile.capacity"));
    for err in [
        routing
            .deactivate_agent(v1::DeactivateAgentRequest {
                agent_id: String::new(),
            })
            .await
            .unwrap_err(),
        routing.get_agent(get("a b")).await.unwrap_err(),
    ] {
        assert_eq!(violated_field(&err).as_deref(), Some("agent_id"), "{err:?}");
    }

    // Another profile under a registered id; unknown agents.
    let err = routing
        .register_agent(register(
            "ana",
            profile("Ana", &[("billing", 5)], &["acme"]),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    for err in [
        routing.get_agent(get("nobody")).await.unwrap_err(),
        routing
            .set_agent_status(set_status("nobody", v1::AgentStatus::Away))
            .await
            .unwrap_err(),
        routing
            .deactivate_agent(v1::DeactivateAgentRequest {
                agent_id: "nobody".into(),
            })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
    }

    // Who may: customer systems nothing; agents read and set their own status only;
    // a manager registers only for tenants they cover.
    let shop = caller("shop", Role::CustomerSystem, &["acme"]);
    let mut as_shop = cluster.routing_as(&shop, None).await.unwrap();
    assert_eq!(
        as_shop.get_agent(get("ana")).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        as_shop
            .list_agents(v1::ListAgentsRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let agent = caller("bo", Role::Agent, &["acme"]);
    let mut as_agent = cluster.routing_as(&agent, None).await.unwrap();
    assert_eq!(
        as_agent
            .register_agent(register("bo", profile("Bo", &[("billing", 1)], &["acme"])))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        routing
            .register_agent(register(
                "cy",
                profile("Cy", &[("billing", 1)], &["acme", "globex"])
            ))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    // A token of several tenants names the one to list.
    let both = caller("boss", Role::Admin, &["acme", "globex"]);
    let mut as_both = cluster.routing_as(&both, None).await.unwrap();
    let err = as_both
        .list_agents(v1::ListAgentsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut as_both_acme = cluster.routing_as(&both, Some("acme")).await.unwrap();
    assert_eq!(
        as_both_acme
            .list_agents(v1::ListAgentsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .agents
            .len(),
        1
    );
    // No token at all.
    let mut anonymous = v1::routing_service_client::RoutingServiceClient::connect(format!(
        "http://{}",
        cluster.routing_addr
    ))
    .await
    .unwrap();
    assert_eq!(
        anonymous.get_agent(get("ana")).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}
