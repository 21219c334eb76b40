//! Every aggregate's `decide` on arbitrary commands (valid and not), from arbitrary
//! callers, against the histories earlier commands built: it never panics, and a
//! refusal is a `DomainError` with a reason (each variant maps to one precise gRPC
//! code in `frontline_runtime::error`, none of them INTERNAL or UNKNOWN).
//!
//! `properties.rs` checks the rules of tickets (the core commands), contacts,
//! identity claims and assignment; this file covers every command of every
//! aggregate for "never panics, refuses precisely".
//!
//! Case counts: `PROPTEST_CASES` (default 256); `make soak` runs 1 000 000.
#![allow(clippy::unwrap_used)]

use frontline_domain::{
    Actor, Aggregate, Availability, Caller, Channel, CustomerCommand, DomainError, IdentityKey,
    Opening, Priority, Recorded, Role, TenantId, TenantScope, Ticket, TicketCommand, UnixMillis,
    agent::{Agent, AgentCommand, Profile, Take},
    article::{Article, ArticleCommand, Draft},
    assignment::{Rule, Tier, Verdict},
    feedback::{Feedback, ProductFeedback},
    macros::{Macro, MacroBook, MacroCommand, StatusChange},
    self_service::SelfService,
    sla::{
        clocks::{Alarm, ClockKind},
        policy::{Calendar, Escalation, PolicyRecord, SlaPolicy, TargetRow, Targets},
    },
    ticket::Assignment,
};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use uuid::Uuid;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

const ROLES: [Role; 4] = [
    Role::CustomerSystem,
    Role::Agent,
    Role::Manager,
    Role::Admin,
];
const CHANNELS: [Channel; 5] = [
    Channel::Email,
    Channel::Chat,
    Channel::Phone,
    Channel::Web,
    Channel::Api,
];
const PRIORITIES: [Priority; 4] = [
    Priority::Low,
    Priority::Normal,
    Priority::High,
    Priority::Urgent,
];
const TIERS: [Tier; 3] = [Tier::Basic, Tier::Standard, Tier::Extended];
const RULES: [Rule; 6] = [
    Rule::NamedAgent,
    Rule::KnowsCustomer,
    Rule::LeastLoaded,
    Rule::Queued,
    Rule::Manual,
    Rule::Escalated,
];
const VERDICTS: [Verdict; 7] = [
    Verdict::Chosen,
    Verdict::NotTheTenants,
    Verdict::Inactive,
    Verdict::Unavailable,
    Verdict::NoSkill,
    Verdict::AtCapacity,
    Verdict::Passed,
];
const CLOCKS: [ClockKind; 3] = [
    ClockKind::FirstResponse,
    ClockKind::NextResponse,
    ClockKind::Resolution,
];
const IDS: [Uuid; 3] = [Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3)];
const T0: UnixMillis = 1_795_392_000_000;

// --- values, mostly valid, sometimes not ----------------------------------------

fn tenant() -> impl Strategy<Value = TenantId> {
    select(&["acme", "globex"][..]).prop_map(|t| TenantId::parse("tenant", t).unwrap())
}

fn actor() -> impl Strategy<Value = Actor> {
    (select(&["ana", "bo", "", " "][..]), select(&ROLES[..])).prop_map(|(id, r)| Actor::new(id, r))
}

fn uuid() -> impl Strategy<Value = Uuid> {
    prop_oneof![4 => select(&IDS[..]), 1 => any::<u128>().prop_map(Uuid::from_u128)]
}

/// Text of every kind: short, empty, blank, control characters, too long, any.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z0-9 ]{1,20}",
        1 => Just(String::new()),
        1 => Just(" \t\n".to_string()),
        1 => Just("a\u{0}b\u{202e}".to_string()),
        1 => (1usize..3).prop_map(|n| "x".repeat(40_000 * n)),
        2 => "\\PC{0,30}",
    ]
}

/// A name or key: from a small pool, so repeats are common.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => select(&["billing", "router-x200", "k1", "k2", "reset"][..]).prop_map(str::to_string),
        1 => text(),
    ]
}

fn opening() -> impl Strategy<Value = Opening> {
    (
        tenant(),
        select(&CHANNELS[..]),
        uuid(),
        text(),
        text(),
        name(),
        select(&PRIORITIES[..]),
        name(),
        proptest::option::of(uuid()),
    )
        .prop_map(
            |(tenant, channel, customer_id, subject, body, product_area, priority, key, follow)| {
                Opening {
                    tenant,
                    channel,
                    customer_id,
                    subject,
                    body,
                    product_area,
                    priority,
                    idempotency_key: key,
                    follow_up_of: follow,
                }
            },
        )
}

fn candidates() -> impl Strategy<Value = Vec<(String, Verdict)>> {
    proptest::collection::vec((name(), select(&VERDICTS[..])), 0..4)
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..200, 1 => any::<u64>()]
}

fn time() -> impl Strategy<Value = UnixMillis> {
    prop_oneof![4 => (0i64..10_000_000).prop_map(|d| T0 + d), 1 => any::<i64>()]
}

fn ticket_command() -> BoxedStrategy<TicketCommand> {
    use TicketCommand as C;
    let messages = prop_oneof![
        (uuid(), text(), select(&CHANNELS[..]), name()).prop_map(
            |(customer_id, body, channel, key)| {
                C::AddCustomerMessage {
                    customer_id,
                    body,
                    channel,
                    idempotency_key: key,
                }
            }
        ),
        (text(), any::<bool>(), proptest::option::of(name())).prop_map(
            |(body, awaiting_customer, key)| {
                C::Reply {
                    body,
                    awaiting_customer,
                    idempotency_key: key,
                }
            }
        ),
        (text(), proptest::option::of(name())).prop_map(|(body, key)| C::AddNote {
            body,
            idempotency_key: key
        }),
        text().prop_map(|resolution| C::Solve { resolution }),
        text().prop_map(|reason| C::Reopen { reason }),
        (text(), text()).prop_map(|(body, rule)| C::AutoAnswer { body, rule }),
        Just(C::RequestHuman),
        (uuid(), any::<bool>(), proptest::option::of(name())).prop_map(
            |(article_id, article_live, key)| {
                C::SelfServe {
                    article_id,
                    article_live,
                    idempotency_key: key,
                }
            }
        ),
    ];
    let routing = prop_oneof![
        (name(), select(&RULES[..]), candidates(), text()).prop_map(
            |(agent, rule, candidates, reason)| {
                C::Assign(Assignment {
                    agent,
                    rule,
                    candidates,
                    reason,
                })
            }
        ),
        candidates().prop_map(|candidates| C::Queue { candidates }),
        (select(&CLOCKS[..]), number(), any::<bool>(), time()).prop_map(
            |(clock, cycle, breach, due_at)| {
                C::RecordAlarm {
                    clock,
                    cycle,
                    alarm: if breach {
                        Alarm::Breach
                    } else {
                        Alarm::Warning
                    },
                    due_at,
                }
            }
        ),
        (select(&CLOCKS[..]), number(), text(), name(), name()).prop_map(
            |(clock, cycle, reason, team, reassign_to)| C::Escalate {
                clock,
                cycle,
                reason,
                team,
                reassign_to
            }
        ),
        number().prop_map(|m| C::LogTime { minutes: m as u32 }),
        number().prop_map(|b| C::FlagBudget { budget: b as u32 }),
        name().prop_map(|agent| C::DueCheckIn { agent }),
        proptest::option::of(time()).prop_map(|after| C::Close { after }),
    ];
    let review = prop_oneof![
        (text(), text()).prop_map(|(reason, rationale)| C::ProposeDecline { reason, rationale }),
        text().prop_map(|note| C::ApproveDecline { note }),
        text().prop_map(|note| C::RejectDecline { note }),
        (prop_oneof![0u8..=10, any::<u8>()], text())
            .prop_map(|(score, comment)| C::RateSatisfaction { score, comment }),
        (number(), name(), text()).prop_map(|(rating, team, reason)| C::RaiseFollowUp {
            rating,
            team,
            reason
        }),
    ];
    prop_oneof![
        1 => opening().prop_map(C::Open).boxed(),
        6 => messages.boxed(),
        4 => routing.boxed(),
        3 => review.boxed(),
    ]
    .boxed()
}

fn profile() -> impl Strategy<Value = Profile> {
    (
        text(),
        proptest::collection::btree_map(name(), any::<u8>(), 0..4),
        prop_oneof![1u32..5, any::<u32>()],
        name(),
        proptest::collection::btree_set(tenant(), 0..3),
    )
        .prop_map(|(display_name, skills, capacity, team, tenants)| Profile {
            display_name,
            skills,
            capacity,
            team,
            tenants,
        })
}

fn agent_command() -> impl Strategy<Value = AgentCommand> {
    prop_oneof![
        2 => profile().prop_map(AgentCommand::Register),
        1 => profile().prop_map(AgentCommand::Update),
        1 => select(&[Availability::Available, Availability::Away, Availability::Offline][..])
            .prop_map(AgentCommand::SetAvailability),
        1 => Just(AgentCommand::Deactivate),
        3 => (uuid(), tenant(), name(), select(&RULES[..])).prop_map(|(ticket, tenant, product_area, rule)| {
            AgentCommand::Take(Take { ticket, tenant, product_area, rule })
        }),
        2 => uuid().prop_map(|ticket| AgentCommand::Release { ticket }),
    ]
}

fn caller() -> impl Strategy<Value = Caller> {
    (
        actor(),
        prop_oneof![Just(TenantScope::All), tenant().prop_map(TenantScope::one)],
    )
        // A caller that cannot exist (a scope its role may not have) is an admin
        // instead: no rejected cases, so a million of them never hit proptest's
        // reject limit.
        .prop_map(|(actor, scope)| {
            Caller::new(actor.clone(), scope).unwrap_or_else(|_| {
                Caller::new(Actor::new(actor.id, Role::Admin), TenantScope::All).unwrap()
            })
        })
}

fn identity() -> impl Strategy<Value = IdentityKey> {
    prop_oneof![
        text().prop_map(IdentityKey::Email),
        text().prop_map(IdentityKey::Phone),
        (name(), text()).prop_map(|(system, id)| IdentityKey::External { system, id }),
    ]
}

fn customer_command() -> impl Strategy<Value = CustomerCommand> {
    prop_oneof![
        (
            select(&CHANNELS[..]),
            tenant(),
            proptest::collection::vec(identity(), 0..4),
            proptest::collection::vec((name(), text()), 0..4),
            proptest::option::of(uuid()),
            proptest::collection::vec(uuid(), 0..3),
        )
            .prop_map(
                |(channel, tenant, identities, facts, ticket_opened, possible_duplicates)| {
                    CustomerCommand::RecordContact {
                        channel,
                        tenant,
                        identities,
                        facts,
                        ticket_opened,
                        possible_duplicates,
                    }
                }
            ),
        (uuid(), select(&TIERS[..]), proptest::option::of(name())).prop_map(
            |(customer_id, tier, named_agent)| CustomerCommand::SetTier {
                customer_id,
                tier,
                named_agent
            }
        ),
        (uuid(), any::<u8>(), text()).prop_map(|(customer_id, score, comment)| {
            CustomerCommand::RateNps {
                customer_id,
                score,
                comment,
            }
        }),
    ]
}

fn draft() -> impl Strategy<Value = Draft> {
    (name(), name(), text(), text()).prop_map(|(slug, product_area, title, body)| Draft {
        slug,
        product_area,
        title,
        body,
    })
}

fn revision() -> impl Strategy<Value = Option<u32>> {
    proptest::option::of(prop_oneof![4 => 0u32..4, 1 => any::<u32>()])
}

fn article_command() -> impl Strategy<Value = ArticleCommand> {
    prop_oneof![
        3 => (tenant(), draft(), revision()).prop_map(|(tenant, draft, expected_revision)| {
            ArticleCommand::Publish { tenant, draft, expected_revision }
        }),
        1 => (name(), revision()).prop_map(|(slug, expected_revision)| ArticleCommand::Retire {
            slug,
            expected_revision,
        }),
    ]
}

fn macro_command() -> impl Strategy<Value = MacroCommand> {
    prop_oneof![
        (
            name(),
            text(),
            select(
                &[
                    StatusChange::None,
                    StatusChange::Pending,
                    StatusChange::Solved
                ][..]
            )
        )
            .prop_map(|(name, body, status_change)| MacroCommand::Put(Macro {
                name,
                body,
                status_change
            })),
        name().prop_map(MacroCommand::Remove),
        (name(), proptest::option::of(name())).prop_map(|(product_area, macro_name)| {
            MacroCommand::SetAnswerRule {
                product_area,
                macro_name,
            }
        }),
    ]
}

fn feedback() -> impl Strategy<Value = Feedback> {
    (
        tenant(),
        name(),
        text(),
        proptest::option::of(uuid()),
        proptest::option::of(uuid()),
    )
        .prop_map(
            |(tenant, product_area, body, customer_id, ticket_id)| Feedback {
                tenant,
                product_area,
                body,
                customer_id,
                ticket_id,
            },
        )
}

fn minutes() -> impl Strategy<Value = Option<(u16, u16)>> {
    proptest::option::of(prop_oneof![
        4 => (0u16..720, 720u16..=1440),
        1 => (any::<u16>(), any::<u16>()),
    ])
}

fn policy() -> impl Strategy<Value = SlaPolicy> {
    let secs = || prop_oneof![4 => 0u32..100_000, 1 => any::<u32>()];
    let row = (
        select(&TIERS[..]),
        select(&PRIORITIES[..]),
        secs(),
        secs(),
        secs(),
    )
        .prop_map(|(tier, priority, first, next, resolution)| TargetRow {
            tier,
            priority,
            targets: Targets {
                first_response_secs: first,
                next_response_secs: next,
                resolution_secs: resolution,
            },
        });
    let calendar = (
        prop_oneof![
            3 => select(&["Europe/Berlin", "UTC", "America/New_York"][..]).prop_map(str::to_string),
            1 => text(),
        ],
        proptest::array::uniform7(minutes()),
        proptest::collection::vec(
            prop_oneof![3 => Just("2026-12-25".to_string()), 1 => text()],
            0..3,
        ),
    )
        .prop_map(|(time_zone, weekly, holidays)| Calendar {
            time_zone,
            weekly,
            holidays,
        });
    (
        select(&TIERS[..]),
        proptest::collection::vec(row, 0..4),
        proptest::option::of(calendar),
        prop_oneof![3 => 50u8..100, 1 => any::<u8>()],
        proptest::array::uniform3(secs()),
        any::<bool>(),
        secs(),
        secs(),
    )
        .prop_map(
            |(
                default_tier,
                targets,
                calendar,
                warning_percent,
                budget,
                raise,
                auto_close,
                check_in,
            )| {
                SlaPolicy {
                    default_tier,
                    targets,
                    calendar,
                    warning_percent,
                    time_budget_minutes: budget,
                    escalation: if raise {
                        Escalation::Raise
                    } else {
                        Escalation::Reassign
                    },
                    auto_close_after_secs: auto_close,
                    check_in_after_secs: check_in,
                }
            },
        )
}

// --- the check -------------------------------------------------------------------

/// A refusal says what is wrong. Every variant maps to a precise code
/// (`From<DomainError> for ApiError` has no INTERNAL arm); this match is exhaustive
/// so a new variant is looked at here too.
fn check_refusal(e: &DomainError) -> Result<(), TestCaseError> {
    prop_assert!(!e.to_string().trim().is_empty(), "{e:?} has no message");
    match e {
        DomainError::InvalidField { field, .. } => prop_assert!(!field.is_empty()),
        DomainError::NotFound { .. }
        | DomainError::Precondition { .. }
        | DomainError::Forbidden { .. }
        | DomainError::NotPermitted { .. }
        | DomainError::OtherTenant { .. }
        | DomainError::StaleVersion { .. }
        | DomainError::AlreadyExists(_) => {}
    }
    Ok(())
}

/// Runs `steps` through `decide` and `apply`, checking every refusal; returns the state.
fn run<A: Aggregate, C>(
    steps: &[(C, Actor)],
    mut decide: impl FnMut(&A, &C, &Actor, UnixMillis) -> Result<Option<A::Event>, DomainError>,
) -> Result<A, TestCaseError> {
    let mut state = A::default();
    for (i, (command, actor)) in steps.iter().enumerate() {
        let at = T0 + i as i64 * 60_000;
        match decide(&state, command, actor, at) {
            Ok(Some(event)) => {
                let version = state.version();
                state.apply(&Recorded {
                    event,
                    actor: actor.clone(),
                    at,
                });
                prop_assert_eq!(state.version(), version + 1);
            }
            Ok(None) => {}
            Err(e) => check_refusal(&e)?,
        }
    }
    Ok(state)
}

fn steps<C: std::fmt::Debug>(
    command: impl Strategy<Value = C>,
) -> impl Strategy<Value = Vec<(C, Actor)>> {
    proptest::collection::vec((command, actor()), 0..24)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_decide_ticket_never_panics(
        open in opening(),
        opened_first in proptest::bool::weighted(0.8),
        steps in steps(ticket_command()),
    ) {
        let mut all = Vec::new();
        if opened_first {
            let mut open = open;
            open.subject = "Router".into();
            open.body = "It blinks".into();
            open.idempotency_key = "k-open".into();
            all.push((TicketCommand::Open(open), Actor::new("shop", Role::CustomerSystem)));
        }
        all.extend(steps);
        run::<Ticket, _>(&all, |t, c, a, now| t.decide("t", c, a, now))?;
    }

    #[test]
    fn prop_decide_customer_never_panics(steps in steps(customer_command())) {
        run::<frontline_domain::Customer, _>(&steps, |c, cmd, a, now| c.decide(cmd, a, now))?;
    }

    #[test]
    fn prop_decide_agent_never_panics(
        steps in proptest::collection::vec((agent_command(), caller(), select(&["ana", "bo", "", "a b"][..])), 0..24),
    ) {
        let steps: Vec<_> = steps
            .into_iter()
            .map(|(cmd, caller, id)| {
                let actor = caller.actor.clone();
                ((cmd, caller, id), actor)
            })
            .collect();
        run::<Agent, _>(&steps, |agent, (cmd, caller, id), _, _| agent.decide(id, cmd, caller))?;
    }

    #[test]
    fn prop_decide_article_never_panics(steps in steps(article_command())) {
        run::<Article, _>(&steps, |a, c, actor, _| a.decide(c, actor))?;
    }

    #[test]
    fn prop_decide_macros_never_panic(
        tenant in tenant(),
        steps in steps(macro_command()),
    ) {
        run::<MacroBook, _>(&steps, |book, c, actor, _| book.decide(&tenant, c, actor))?;
    }

    #[test]
    fn prop_decide_feedback_never_panics(steps in steps(feedback())) {
        run::<ProductFeedback, _>(&steps, |f, c, actor, _| f.decide(c, actor))?;
    }

    #[test]
    fn prop_decide_self_service_never_panics(
        article in steps(article_command()),
        served in proptest::collection::vec((uuid(), proptest::option::of(uuid()), actor()), 0..8),
    ) {
        // Self-service names an article in whatever state its history left it.
        let article = run::<Article, _>(&article, |a, c, actor, _| a.decide(c, actor))?;
        let steps: Vec<((Uuid, Option<Uuid>), Actor)> =
            served.into_iter().map(|(id, customer, actor)| ((id, customer), actor)).collect();
        run::<SelfService, _>(&steps, |s, (id, customer), actor, _| {
            s.decide((*id, &article), *customer, actor)
        })?;
    }

    #[test]
    fn prop_decide_policy_never_panics(
        tenant in tenant(),
        steps in proptest::collection::vec((policy(), actor()), 0..6),
    ) {
        run::<PolicyRecord, _>(&steps, |p, c, actor, _| p.decide(&tenant, c, actor))?;
    }
}
