//! Hostile input for every event decoder: the envelope, each payload type under each
//! kind of personal key, and the whole path a stored message takes to a domain
//! event (`EventLog::decode`'s steps). Arbitrary bytes and mutations of valid
//! encodings (bit flips, truncation, splices, appended and inserted bytes) decode to
//! `Ok` or `Err`, never a panic; whatever decodes re-encodes to the same value.
//!
//! Case counts: `PROPTEST_CASES` (default 256); `make soak` runs 1 000 000.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use frontline_domain::{
    AgentEvent, Assignment, Channel, CustomerEvent, IdentityClaimEvent, IdentityKey, Opening,
    Priority, Role, TenantId, TicketEvent,
    article::{ArticleEvent, Draft},
    assignment::{Rule, Tier, Verdict},
    feedback::{Feedback, FeedbackEvent},
    macros::MacroEvent,
    self_service::{SelfServed, SelfServiceEvent},
    sla::{
        clocks::{Alarm, ClockKind},
        policy::PolicyEvent,
    },
};
use frontline_privacy::{DataKey, Fields, PersonalKey};
use frontline_proto::{
    convert,
    events::{EventCodec, decode_envelope},
    v1,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use prost::Message;
use uuid::Uuid;

/// `PROPTEST_CASES` or 256; failures are kept in `proptest-regressions/`.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// An event of any aggregate.
#[derive(Clone, Debug, PartialEq)]
enum Any {
    Ticket(TicketEvent),
    Customer(CustomerEvent),
    Claim(IdentityClaimEvent),
    Agent(AgentEvent),
    Policy(PolicyEvent),
    Feedback(FeedbackEvent),
    Article(ArticleEvent),
    SelfService(SelfServiceEvent),
    Macro(MacroEvent),
}

macro_rules! any_from {
    ($($variant:ident($event:ty)),* $(,)?) => {
        $(impl From<$event> for Any {
            fn from(e: $event) -> Any {
                Any::$variant(e)
            }
        })*

        impl Any {
            fn event_type(&self) -> String {
                match self {
                    $(Any::$variant(e) => e.event_type(),)*
                }
            }

            fn encode(&self, fields: &Fields<'_>) -> Vec<u8> {
                match self {
                    $(Any::$variant(e) => e.encode_payload(fields),)*
                }
            }

            /// What every aggregate's codec makes of a payload: event types are
            /// disjoint, so at most one of them knows it.
            fn decode_all(
                event_type: &str,
                bytes: &[u8],
                fields: &Fields<'_>,
            ) -> Vec<Result<Option<Any>, String>> {
                vec![$(
                    <$event>::decode_payload(event_type, bytes, fields)
                        .map(|e| e.map(Any::$variant)),
                )*]
            }
        }
    };
}

any_from!(
    Ticket(TicketEvent),
    Customer(CustomerEvent),
    Claim(IdentityClaimEvent),
    Agent(AgentEvent),
    Policy(PolicyEvent),
    Feedback(FeedbackEvent),
    Article(ArticleEvent),
    SelfService(SelfServiceEvent),
    Macro(MacroEvent),
);

fn push(out: &mut Vec<Any>, e: impl Into<Any>) {
    out.push(e.into());
}

/// One event of every type (and of most variants), as the codec's own tests have them.
fn samples() -> &'static [Any] {
    static SAMPLES: OnceLock<Vec<Any>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let mut out = Vec::new();

        push(
            &mut out,
            TicketEvent::Opened(Opening {
                tenant: TenantId::parse("tenant", "acme").unwrap(),
                channel: Channel::Chat,
                customer_id: Uuid::from_u128(7),
                subject: "s".into(),
                body: "hello".into(),
                product_area: "billing".into(),
                priority: Priority::Urgent,
                idempotency_key: "k".into(),
                follow_up_of: None,
            }),
        );
        push(
            &mut out,
            TicketEvent::CustomerMessageAdded {
                body: "b".into(),
                channel: Channel::Email,
                idempotency_key: "k2".into(),
                reopened: true,
            },
        );
        push(
            &mut out,
            TicketEvent::AgentReplied {
                body: "r".into(),
                awaiting_customer: true,
                idempotency_key: None,
            },
        );
        push(
            &mut out,
            TicketEvent::NoteAdded {
                body: "n".into(),
                idempotency_key: Some("x".into()),
            },
        );
        push(
            &mut out,
            TicketEvent::Solved {
                resolution: "done".into(),
                self_served: None,
                idempotency_key: None,
            },
        );
        push(&mut out, TicketEvent::Reopened { reason: "".into() });
        push(
            &mut out,
            TicketEvent::DeclineProposed {
                reason: "We cannot refund.".into(),
                rationale: "Past 90 days.".into(),
            },
        );
        push(&mut out, TicketEvent::DeclineApproved { note: "".into() });
        push(
            &mut out,
            TicketEvent::DeclineRejected {
                note: "Offer a voucher.".into(),
            },
        );
        push(&mut out, TicketEvent::Closed { automatic: true });
        push(
            &mut out,
            TicketEvent::SatisfactionRated {
                score: 2,
                comment: "slow".into(),
                solve: 1,
            },
        );
        push(
            &mut out,
            TicketEvent::FollowUpRaised {
                rating: 9,
                team: "first-line".into(),
                reason: "CSAT 2: slow".into(),
            },
        );
        push(&mut out, TicketEvent::Closed { automatic: false });
        push(
            &mut out,
            TicketEvent::MergedInto {
                target: Uuid::from_u128(2),
                reason: "same router".into(),
            },
        );
        push(
            &mut out,
            TicketEvent::AutoAnswered {
                body: "Try a restart; reply HUMAN for a person.".into(),
                rule: "basic-router".into(),
            },
        );
        push(
            &mut out,
            TicketEvent::CheckInDue {
                agent: "ana".into(),
                solve: 2,
            },
        );
        push(
            &mut out,
            TicketEvent::HumanRequested {
                priority: Priority::High,
            },
        );
        push(
            &mut out,
            TicketEvent::MergedFrom {
                source: Uuid::from_u128(1),
            },
        );
        push(
            &mut out,
            TicketEvent::Unmerged {
                target: Uuid::from_u128(2),
                reason: String::new(),
            },
        );
        push(
            &mut out,
            TicketEvent::UnmergedFrom {
                source: Uuid::from_u128(1),
            },
        );
        push(
            &mut out,
            TicketEvent::Assigned(Assignment {
                agent: "ana".into(),
                rule: Rule::Manual,
                candidates: vec![],
                reason: "hello".into(),
            }),
        );
        push(
            &mut out,
            TicketEvent::Assigned(Assignment {
                agent: "bo".into(),
                rule: Rule::LeastLoaded,
                candidates: vec![
                    ("ana".into(), Verdict::AtCapacity),
                    ("bo".into(), Verdict::Chosen),
                    ("cy".into(), Verdict::NoSkill),
                ],
                reason: String::new(),
            }),
        );
        push(
            &mut out,
            TicketEvent::Queued {
                candidates: vec![("ana".into(), Verdict::Unavailable)],
            },
        );
        push(
            &mut out,
            AgentEvent::TicketTaken {
                ticket: Uuid::from_u128(3),
            },
        );
        push(
            &mut out,
            AgentEvent::TicketReleased {
                ticket: Uuid::from_u128(3),
            },
        );
        let acme = TenantId::parse("tenant", "acme").unwrap();
        push(
            &mut out,
            CustomerEvent::Contacted {
                channel: Channel::Phone,
                tenant: acme.clone(),
                identities_added: vec![
                    IdentityKey::External {
                        system: "shop".into(),
                        id: "42".into(),
                    },
                    IdentityKey::Email("a@b.de".into()),
                    IdentityKey::Phone("+4930123456".into()),
                ],
                facts_recorded: vec![("serial".into(), "SN-1".into())],
                ticket_opened: Some(Uuid::from_u128(9)),
                possible_duplicates: vec![Uuid::from_u128(3)],
            },
        );
        let other = Uuid::from_u128(4);
        push(&mut out, CustomerEvent::LinkedInto { customer_id: other });
        push(&mut out, CustomerEvent::Absorbed { customer_id: other });
        push(&mut out, CustomerEvent::Unlinked { customer_id: other });
        push(
            &mut out,
            IdentityClaimEvent::Claimed {
                tenant: acme,
                identity: IdentityKey::Phone("+4930123456".into()),
                customer_id: other,
            },
        );
        push(
            &mut out,
            IdentityClaimEvent::Released { customer_id: other },
        );
        let profile = frontline_domain::agent::Profile {
            display_name: "Ana Lima".into(),
            skills: [("billing".to_string(), 3), ("router-x200".to_string(), 5)].into(),
            capacity: 10,
            team: "first-line".into(),
            tenants: [TenantId::parse("tenant", "acme").unwrap()].into(),
        };
        push(
            &mut out,
            AgentEvent::Registered {
                agent_id: "ana".into(),
                profile: profile.clone(),
            },
        );
        push(&mut out, AgentEvent::Updated(profile));
        push(
            &mut out,
            AgentEvent::AvailabilityChanged(frontline_domain::Availability::Away),
        );
        push(&mut out, AgentEvent::Deactivated);
        push(
            &mut out,
            CustomerEvent::Forgotten {
                reason: "gdpr-17".into(),
                released_claims: vec![other],
            },
        );
        push(
            &mut out,
            FeedbackEvent::Recorded(Feedback {
                tenant: TenantId::parse("tenant", "acme").unwrap(),
                product_area: "router-x200".into(),
                body: "Make the LED blue.".into(),
                customer_id: Some(Uuid::from_u128(5)),
                ticket_id: None,
            }),
        );
        push(
            &mut out,
            ArticleEvent::Published {
                tenant: TenantId::parse("tenant", "acme").unwrap(),
                revision: 2,
                draft: Draft {
                    slug: "reset-router".into(),
                    product_area: "router-x200".into(),
                    title: "Resetting".into(),
                    body: "Hold the button.".into(),
                },
            },
        );
        push(&mut out, ArticleEvent::Retired { revision: 2 });
        push(
            &mut out,
            SelfServiceEvent::Recorded(SelfServed {
                tenant: TenantId::parse("tenant", "acme").unwrap(),
                article_id: Uuid::from_u128(9),
                revision: 2,
                customer_id: Some(Uuid::from_u128(10)),
            }),
        );
        push(
            &mut out,
            TicketEvent::Solved {
                resolution: String::new(),
                self_served: Some(Uuid::from_u128(9)),
                idempotency_key: None,
            },
        );
        push(
            &mut out,
            MacroEvent::Put {
                tenant: TenantId::parse("tenant", "acme").unwrap(),
                r#macro: frontline_domain::macros::Macro {
                    name: "firmware".into(),
                    body: "Hi {{customer.name}}".into(),
                    status_change: frontline_domain::macros::StatusChange::Solved,
                },
            },
        );
        push(
            &mut out,
            MacroEvent::AnswerRuleSet {
                tenant: TenantId::parse("tenant", "acme").unwrap(),
                product_area: "router-x200".into(),
                macro_name: Some("firmware".into()),
            },
        );
        push(
            &mut out,
            MacroEvent::Removed {
                name: "firmware".into(),
            },
        );
        push(
            &mut out,
            CustomerEvent::NpsRated {
                score: 0,
                comment: "never again".into(),
            },
        );
        push(
            &mut out,
            CustomerEvent::TierSet {
                tier: Tier::Extended,
                named_agent: Some("ana".into()),
            },
        );
        push(
            &mut out,
            CustomerEvent::TierSet {
                tier: Tier::Basic,
                named_agent: None,
            },
        );
        push(
            &mut out,
            TicketEvent::SlaAlarm {
                clock: ClockKind::NextResponse,
                cycle: 4,
                alarm: Alarm::Warning,
                due_at: 1_795_392_000_000,
            },
        );
        push(
            &mut out,
            TicketEvent::SlaAlarm {
                clock: ClockKind::Resolution,
                cycle: 1,
                alarm: Alarm::Breach,
                due_at: 1_795_392_000_123,
            },
        );
        push(
            &mut out,
            TicketEvent::EscalationRaised {
                clock: ClockKind::FirstResponse,
                cycle: 1,
                reason: "first response due in 5 min; nobody free".into(),
                team: "first-line".into(),
                reassign_to: "bo".into(),
            },
        );
        push(&mut out, TicketEvent::TimeLogged { minutes: 15 });
        push(
            &mut out,
            TicketEvent::TimeBudgetExceeded {
                minutes: 75,
                budget: 60,
            },
        );
        let mut policy = frontline_domain::sla::policy::SlaPolicy {
            default_tier: Tier::Basic,
            targets: vec![frontline_domain::sla::policy::TargetRow {
                tier: Tier::Extended,
                priority: Priority::Urgent,
                targets: frontline_domain::sla::policy::Targets {
                    first_response_secs: 60,
                    next_response_secs: 0,
                    resolution_secs: 3600,
                },
            }],
            calendar: Some(frontline_domain::sla::policy::Calendar {
                time_zone: "Europe/Berlin".into(),
                weekly: [
                    Some((540, 1020)),
                    None,
                    None,
                    None,
                    None,
                    None,
                    Some((0, 1440)),
                ],
                holidays: vec!["2026-12-25".into()],
            }),
            warning_percent: 80,
            time_budget_minutes: [0, 60, 120],
            escalation: frontline_domain::sla::policy::Escalation::Raise,
            auto_close_after_secs: 0,
            check_in_after_secs: 0,
        };
        push(
            &mut out,
            PolicyEvent::Set {
                tenant: TenantId::parse("tenant", "acme").unwrap(),
                policy: policy.clone(),
            },
        );
        policy.calendar = None;
        push(
            &mut out,
            PolicyEvent::Set {
                tenant: TenantId::parse("tenant", "acme").unwrap(),
                policy,
            },
        );
        out
    })
}

/// The data key the sealed samples are sealed with, and the event they belong to.
fn live_key() -> &'static PersonalKey {
    static KEY: OnceLock<PersonalKey> = OnceLock::new();
    KEY.get_or_init(|| PersonalKey::Live(DataKey::generate()))
}
const EVENT_ID: &str = "0190f2a0-0000-7000-8000-000000000001";
const OWNER: Uuid = Uuid::from_u128(7);

/// Every kind of key an event is read with.
fn keys() -> [PersonalKey; 3] {
    [
        PersonalKey::Nobody,
        live_key().clone(),
        PersonalKey::Forgotten,
    ]
}

/// Every event type this code knows, and a few it does not.
fn event_types() -> Vec<String> {
    let mut types: Vec<String> = samples().iter().map(Any::event_type).collect();
    types.sort();
    types.dedup();
    types.extend(
        [
            "",
            "frontline.v1.",
            "frontline.v2.TicketOpened",
            "frontline.v1.TicketEscalated",
        ]
        .map(str::to_string),
    );
    types
}

/// One change to an encoding.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Append(Vec<u8>),
    /// A slice of another sample's encoding put in at a position.
    Splice(usize, usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<usize>(), 1usize..8).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => proptest::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Append),
        1 => (any::<usize>(), any::<usize>(), any::<usize>(), 1usize..32)
            .prop_map(|(at, other, from, n)| Mutation::Splice(at, other, from, n)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation], others: &[Vec<u8>]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        match m {
            Mutation::FlipBit(i, b) if len > 0 => bytes[i % len] ^= 1 << b,
            Mutation::SetByte(i, v) if len > 0 => bytes[i % len] = *v,
            Mutation::Truncate(n) => bytes.truncate(n % (len + 1)),
            Mutation::Insert(i, b) => {
                let at = i % (len + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Mutation::Remove(i, n) if len > 0 => {
                let at = i % len;
                bytes.drain(at..(at + n).min(len));
            }
            Mutation::Append(b) => bytes.extend_from_slice(b),
            Mutation::Splice(at, other, from, n) if !others.is_empty() => {
                let other = &others[other % others.len()];
                let from = from % (other.len() + 1);
                let slice = &other[from..(from + n).min(other.len())];
                let at = at % (len + 1);
                bytes.splice(at..at, slice.iter().copied());
            }
            _ => {}
        }
    }
    bytes
}

/// Every encoding of every sample: in the clear and sealed.
fn encodings() -> &'static [Vec<u8>] {
    static ENCODINGS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    ENCODINGS.get_or_init(|| {
        let sealed = Fields::new(live_key(), EVENT_ID);
        samples()
            .iter()
            .flat_map(|e| [e.encode(&Fields::clear()), e.encode(&sealed)])
            .collect()
    })
}

/// Decodes a payload with every codec, checks the answers are consistent, and that
/// what decodes re-encodes to the same value; returns the decoded event, if any.
fn check_payload(
    event_type: &str,
    bytes: &[u8],
    fields: &Fields<'_>,
) -> Result<Option<Any>, TestCaseError> {
    let answers = Any::decode_all(event_type, bytes, fields);
    let known: Vec<&Result<Option<Any>, String>> =
        answers.iter().filter(|a| !matches!(a, Ok(None))).collect();
    prop_assert!(
        known.len() <= 1,
        "{event_type} known to several codecs: {known:?}"
    );
    let Some(Ok(Some(event))) = known.first().copied() else {
        if let Some(Err(reason)) = known.first() {
            prop_assert!(!reason.is_empty());
        }
        return Ok(None);
    };
    prop_assert_eq!(event.event_type(), event_type);
    // Round trip in the clear: decode(encode(x)) == x and encode(decode(encode(x))) == encode(x).
    let clear = event.encode(&Fields::clear());
    let again = Any::decode_all(event_type, &clear, &Fields::clear());
    let back: Vec<&Any> = again
        .iter()
        .filter_map(|a| a.as_ref().ok()?.as_ref())
        .collect();
    prop_assert_eq!(
        back.as_slice(),
        &[event],
        "clear round trip of {}",
        event_type
    );
    prop_assert_eq!(back[0].encode(&Fields::clear()), clear);
    // And sealed.
    let sealing = Fields::new(live_key(), "round-trip");
    let sealed = event.encode(&sealing);
    let again = Any::decode_all(event_type, &sealed, &sealing);
    let back: Vec<&Any> = again
        .iter()
        .filter_map(|a| a.as_ref().ok()?.as_ref())
        .collect();
    prop_assert_eq!(
        back.as_slice(),
        &[event],
        "sealed round trip of {}",
        event_type
    );
    Ok(Some(event.clone()))
}

/// `EventLog::decode`'s steps on a message body: the envelope, the key its
/// `sealed_for` names (here: the sample owner's, or none), the payload, the actor's
/// role and the time. Never panics; `Err` is a corrupt event.
fn check_message(body: &[u8]) -> Result<(), TestCaseError> {
    let Ok(envelope) = decode_envelope(body) else {
        return Ok(());
    };
    // The envelope round-trips through its encoding.
    let encoded = envelope.encode_to_vec();
    prop_assert_eq!(decode_envelope(&encoded).unwrap(), envelope.clone());
    let key = match envelope.sealed_for.as_str() {
        "" => PersonalKey::Nobody,
        raw => match Uuid::parse_str(raw) {
            Ok(owner) if owner == OWNER => live_key().clone(),
            Ok(_) => PersonalKey::Forgotten,
            Err(_) => return Ok(()),
        },
    };
    let fields = Fields::new(&key, &envelope.event_id);
    if check_payload(&envelope.event_type, &envelope.payload, &fields).is_err() {
        return Err(TestCaseError::fail("payload check failed"));
    }
    let actor = envelope.actor.clone().unwrap_or_default();
    let _role: Option<Role> = convert::from_wire::<v1::Role, Role>(actor.role);
    let _at = envelope.occurred_at.as_ref().map(convert::millis);
    Ok(())
}

/// A valid stored message for each sample, as `EventLog::append` writes it.
fn envelopes() -> &'static [Vec<u8>] {
    static ENVELOPES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    ENVELOPES.get_or_init(|| {
        let sealed = Fields::new(live_key(), EVENT_ID);
        samples()
            .iter()
            .enumerate()
            .flat_map(|(i, e)| {
                [
                    (e.encode(&Fields::clear()), String::new()),
                    (e.encode(&sealed), OWNER.to_string()),
                ]
                .map(|(payload, sealed_for)| {
                    v1::EventEnvelope {
                        event_id: EVENT_ID.into(),
                        aggregate_type: "ticket".into(),
                        aggregate_id: Uuid::from_u128(i as u128).to_string(),
                        aggregate_version: i as u64 + 1,
                        event_type: e.event_type(),
                        occurred_at: Some(convert::timestamp(1_795_392_000_123)),
                        actor: Some(v1::Actor {
                            id: "ana".into(),
                            role: v1::Role::from(Role::Agent).into(),
                        }),
                        correlation_id: "c".into(),
                        causation_id: "d".into(),
                        schema_version: 1,
                        payload,
                        sealed_for,
                    }
                    .encode_to_vec()
                })
            })
            .collect()
    })
}

#[test]
fn prop_samples_cover_every_event_type_and_decode() {
    // The samples are valid: every encoding decodes to its sample, sealed and clear.
    let sealed = Fields::new(live_key(), EVENT_ID);
    for e in samples() {
        for fields in [Fields::clear(), sealed] {
            let back = check_payload(&e.event_type(), &e.encode(&fields), &fields).unwrap();
            assert_eq!(back.as_ref(), Some(e));
        }
    }
    for body in envelopes() {
        check_message(body).unwrap();
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_arbitrary_payloads_never_panic(
        event_type in prop_oneof![
            4 => proptest::sample::select(event_types()),
            1 => "\\PC{0,40}",
        ],
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        key in 0usize..3,
    ) {
        let key = &keys()[key];
        check_payload(&event_type, &bytes, &Fields::new(key, EVENT_ID))?;
    }

    #[test]
    fn prop_mutated_payloads_never_panic(
        sample in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 0..6),
        key in 0usize..3,
        other_type in any::<Option<prop::sample::Index>>(),
    ) {
        let all = encodings();
        let i = sample.index(all.len());
        let bytes = mutate(all[i].clone(), &mutations, all);
        let types = event_types();
        // Its own type, or (sometimes) another's: a payload under the wrong name.
        let event_type = match other_type {
            Some(t) => types[t.index(types.len())].clone(),
            None => samples()[i / 2].event_type(),
        };
        let key = &keys()[key];
        check_payload(&event_type, &bytes, &Fields::new(key, EVENT_ID))?;
    }

    #[test]
    fn prop_arbitrary_envelopes_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        check_message(&body)?;
    }

    #[test]
    fn prop_mutated_envelopes_never_panic(
        sample in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 0..6),
    ) {
        let all = envelopes();
        let body = mutate(all[sample.index(all.len())].clone(), &mutations, all);
        check_message(&body)?;
    }

    #[test]
    fn prop_envelopes_with_any_fields_never_panic(
        event_type in proptest::sample::select(event_types()),
        sample in any::<prop::sample::Index>(),
        sealed_for in prop_oneof![Just(String::new()), Just(OWNER.to_string()), "\\PC{0,40}"],
        seconds in any::<i64>(),
        nanos in any::<i32>(),
        role in any::<i32>(),
        event_id in prop_oneof![Just(EVENT_ID.to_string()), "\\PC{0,40}"],
    ) {
        let payloads = encodings();
        let body = v1::EventEnvelope {
            event_id,
            event_type,
            occurred_at: Some(prost_types::Timestamp { seconds, nanos }),
            actor: Some(v1::Actor { id: "a".into(), role }),
            payload: payloads[sample.index(payloads.len())].clone(),
            sealed_for,
            ..Default::default()
        }
        .encode_to_vec();
        check_message(&body)?;
    }
}

/// Found by `prop_envelopes_with_any_fields_never_panic`: an `occurred_at` (or an
/// SLA alarm's `due_at`) out of range overflowed `convert::millis` (a panic in
/// debug builds, a wrapped time in release). It saturates now.
#[test]
fn prop_regression_out_of_range_times_saturate() {
    use prost::Name;
    use prost_types::Timestamp;
    let at = |seconds, nanos| convert::millis(&Timestamp { seconds, nanos });
    assert_eq!(at(i64::MAX, i32::MAX), i64::MAX);
    assert_eq!(at(i64::MIN, i32::MIN), i64::MIN);
    assert_eq!(at(-9_223_372_036_854_776, 0), i64::MIN);
    assert_eq!(at(1_795_392_000, 123_000_000), 1_795_392_000_123);
    let alarm = v1::SlaWarning {
        clock: 1,
        cycle: 1,
        due_at: Some(Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        }),
    }
    .encode_to_vec();
    let decoded =
        TicketEvent::decode_payload(&v1::SlaWarning::full_name(), &alarm, &Fields::clear());
    assert!(
        matches!(
            decoded,
            Ok(Some(TicketEvent::SlaAlarm {
                due_at: i64::MAX,
                ..
            }))
        ),
        "{decoded:?}"
    );
}

/// The wire forms of the sample agent profile, SLA policy and macro: what requests
/// carry into `convert::*_from_wire`.
fn request_encodings() -> &'static [Vec<u8>] {
    static ENCODINGS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    ENCODINGS.get_or_init(|| {
        let mut all = Vec::new();
        for e in samples() {
            match e {
                Any::Agent(AgentEvent::Registered { profile, .. }) => {
                    all.push(convert::agent_profile(profile).encode_to_vec());
                }
                Any::Policy(PolicyEvent::Set { policy, .. }) => {
                    all.push(convert::sla_policy(policy).encode_to_vec());
                }
                Any::Macro(MacroEvent::Put { r#macro, .. }) => {
                    all.push(convert::macro_wire(r#macro).encode_to_vec());
                }
                _ => {}
            }
        }
        all
    })
}

/// Every request conversion on `bytes` read as its message: `Ok`, or a refusal
/// naming a field of the request (INVALID_ARGUMENT); what converts, converts back.
fn check_requests(bytes: &[u8]) -> Result<(), TestCaseError> {
    let refused = |e: frontline_domain::DomainError| -> Result<(), TestCaseError> {
        prop_assert!(
            matches!(&e, frontline_domain::DomainError::InvalidField { field, .. } if !field.is_empty()),
            "not a field refusal: {e:?}"
        );
        Ok(())
    };
    if let Ok(wire) = v1::AgentProfile::decode(bytes) {
        match convert::agent_profile_from_wire("profile", &wire) {
            Ok(p) => prop_assert_eq!(
                convert::agent_profile_from_wire("profile", &convert::agent_profile(&p)).ok(),
                Some(p)
            ),
            Err(e) => refused(e)?,
        }
    }
    if let Ok(wire) = v1::SlaPolicy::decode(bytes) {
        match convert::sla_policy_from_wire("policy", &wire) {
            Ok(p) => {
                let _ = p.validate();
                prop_assert_eq!(
                    convert::sla_policy_from_wire("policy", &convert::sla_policy(&p)).ok(),
                    Some(p)
                );
            }
            Err(e) => refused(e)?,
        }
    }
    if let Ok(wire) = v1::Macro::decode(bytes) {
        match convert::macro_from_wire(&wire) {
            Ok(m) => prop_assert_eq!(
                convert::macro_from_wire(&convert::macro_wire(&m)).ok(),
                Some(m)
            ),
            Err(e) => refused(e)?,
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_request_conversions_never_panic(
        sample in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 0..6),
        arbitrary in proptest::option::weighted(0.2, proptest::collection::vec(any::<u8>(), 0..128)),
    ) {
        let all = request_encodings();
        let bytes = match arbitrary {
            Some(bytes) => bytes,
            None => mutate(all[sample.index(all.len())].clone(), &mutations, all),
        };
        check_requests(&bytes)?;
    }
}
