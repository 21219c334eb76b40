//! Hostile bearer tokens: `Authenticator::verify` on arbitrary text, on mutations of
//! a valid token, and on tokens signed with the right secret whose header and claims
//! are arbitrary JSON. It never panics, and every refusal is `UNAUTHENTICATED`.
//!
//! Case counts: `PROPTEST_CASES` (default 256); `make soak` runs 1 000 000.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use frontline_domain::{Actor, Caller, Role, TenantId, TenantScope};
use frontline_runtime::ApiError;
use frontline_runtime::auth::{Authenticator, mint};
use jsonwebtoken::{Algorithm, EncodingKey};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Value, json};
use tonic::Code;

const SECRET: &str = "prop-secret";

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn authenticator() -> Authenticator {
    Authenticator::hs256(SECRET)
}

/// A refusal is UNAUTHENTICATED, with a reason; an acceptance names a real caller.
fn check(result: &Result<Caller, ApiError>) -> Result<(), TestCaseError> {
    match result {
        Ok(caller) => prop_assert!(!caller.actor.id.trim().is_empty()),
        Err(e) => {
            prop_assert!(
                matches!(e, ApiError::Unauthenticated(_)),
                "not UNAUTHENTICATED: {e:?}"
            );
            prop_assert_eq!(e.code(), Code::Unauthenticated);
            prop_assert!(!e.to_string().is_empty());
        }
    }
    Ok(())
}

fn valid_token() -> String {
    let caller = Caller::new(
        Actor::new("ana", Role::Agent),
        TenantScope::one(TenantId::parse("tenant", "acme").unwrap()),
    )
    .unwrap();
    mint(SECRET, &caller, Duration::from_secs(3600)).unwrap()
}

/// Signs `header.claims` (any JSON) with `secret`, as HS256.
fn signed(header: &Value, claims: &Value, secret: &str) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

/// Any JSON value, small.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A time claim: near now (either side of every limit), far away, or not a time.
fn time_claim() -> impl Strategy<Value = Value> {
    let now = now() as i64;
    prop_oneof![
        4 => (-200_000i64..200_000).prop_map(move |d| json!(now + d)),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any_json(),
    ]
}

fn text_claim(pool: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => proptest::sample::select(pool).prop_map(Value::from),
        1 => "\\PC{0,20}".prop_map(Value::from),
        1 => any_json(),
    ]
}

fn tenants_claim() -> impl Strategy<Value = Value> {
    let names: &'static [&'static str] = &["acme", "globex", "*", "", "Not A Tenant", "a.b"];
    prop_oneof![
        2 => proptest::sample::select(names).prop_map(Value::from),
        2 => proptest::collection::vec(proptest::sample::select(names), 0..4).prop_map(Value::from),
        1 => any_json(),
    ]
}

/// Claims with each claim present or not, well-formed or not.
fn claims() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(text_claim(&["ana", "", "  ", "bo"])),
        proptest::option::of(text_claim(&[
            "agent",
            "manager",
            "admin",
            "customer_system",
            "root",
            "",
        ])),
        proptest::option::of(time_claim()),
        proptest::option::of(tenants_claim()),
        proptest::option::of(tenants_claim()),
        proptest::option::of(time_claim()),
        proptest::option::of(time_claim()),
        proptest::option::of(any_json()),
        proptest::option::of(any_json()),
    )
        .prop_map(|(sub, role, exp, tenant, tenants, nbf, iat, iss, aud)| {
            let mut claims = serde_json::Map::new();
            for (name, value) in [
                ("sub", sub),
                ("role", role),
                ("exp", exp),
                ("tenant", tenant),
                ("tenants", tenants),
                ("nbf", nbf),
                ("iat", iat),
                ("iss", iss),
                ("aud", aud),
            ] {
                if let Some(value) = value {
                    claims.insert(name.to_string(), value);
                }
            }
            Value::Object(claims)
        })
}

/// A header: usually HS256, sometimes another or no algorithm, a kid, crit, junk.
fn header() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            6 => Just(json!("HS256")),
            1 => proptest::sample::select(&["RS256", "ES256", "none", "NoNe", "HS512", ""][..])
                .prop_map(Value::from),
            1 => any_json(),
        ],
        proptest::option::of("\\PC{0,8}"),
        proptest::option::weighted(0.1, any_json()),
        proptest::option::weighted(0.2, any_json()),
    )
        .prop_map(|(alg, kid, crit, extra)| {
            let mut h = serde_json::Map::new();
            h.insert("alg".into(), alg);
            h.insert("typ".into(), json!("JWT"));
            if let Some(kid) = kid {
                h.insert("kid".into(), json!(kid));
            }
            if let Some(crit) = crit {
                h.insert("crit".into(), crit);
            }
            if let Some(extra) = extra {
                h.insert("x".into(), extra);
            }
            Value::Object(h)
        })
}

#[derive(Clone, Debug)]
enum Edit {
    SetChar(usize, char),
    Remove(usize, usize),
    Insert(usize, String),
    Truncate(usize),
    SwapSegments(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<usize>(), prop_oneof![
            "[A-Za-z0-9_.=+/ -]".prop_map(|s| s.chars().next().unwrap()),
            any::<char>(),
        ]).prop_map(|(i, c)| Edit::SetChar(i, c)),
        1 => (any::<usize>(), 1usize..8).prop_map(|(i, n)| Edit::Remove(i, n)),
        1 => (any::<usize>(), "\\PC{1,8}").prop_map(|(i, s)| Edit::Insert(i, s)),
        1 => any::<usize>().prop_map(Edit::Truncate),
        1 => (0usize..3, 0usize..3).prop_map(|(a, b)| Edit::SwapSegments(a, b)),
    ]
}

fn apply(token: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    for e in edits {
        let len = chars.len();
        match e {
            Edit::SetChar(i, c) if len > 0 => chars[i % len] = *c,
            Edit::Remove(i, n) if len > 0 => {
                let at = i % len;
                chars.drain(at..(at + n).min(len));
            }
            Edit::Insert(i, s) => {
                let at = i % (len + 1);
                chars.splice(at..at, s.chars());
            }
            Edit::Truncate(n) => chars.truncate(n % (len + 1)),
            Edit::SwapSegments(a, b) => {
                let text: String = chars.iter().collect();
                let mut parts: Vec<&str> = text.split('.').collect();
                if *a < parts.len() && *b < parts.len() {
                    parts.swap(*a, *b);
                }
                chars = parts.join(".").chars().collect();
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

#[test]
fn prop_the_valid_token_verifies() {
    let caller = authenticator()
        .verify(Some(&format!("Bearer {}", valid_token())))
        .unwrap();
    assert_eq!(caller.actor.id, "ana");
    check(&authenticator().verify(None)).unwrap();
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_arbitrary_authorization_is_unauthenticated(
        prefix in proptest::sample::select(&["", "Bearer ", "bearer ", "Basic ", "Bearer  "][..]),
        text in prop_oneof![
            "\\PC{0,200}",
            "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}",
            "eyJ[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}",
        ],
    ) {
        let result = authenticator().verify(Some(&format!("{prefix}{text}")));
        prop_assert!(result.is_err());
        check(&result)?;
    }

    #[test]
    fn prop_mutated_tokens_are_refused_or_unchanged(
        edits in proptest::collection::vec(edit(), 1..5),
    ) {
        let token = valid_token();
        let mutated = apply(&token, &edits);
        let result = authenticator().verify(Some(&format!("Bearer {mutated}")));
        check(&result)?;
        // What still verifies is the same caller (an edit that changed nothing, or
        // only padding bits of the signature's base64).
        if let Ok(caller) = result {
            prop_assert_eq!(caller.actor.id.as_str(), "ana");
            prop_assert_eq!(caller.actor.role, Role::Agent);
        }
    }

    #[test]
    fn prop_signed_arbitrary_claims_are_accepted_or_unauthenticated(
        header in header(),
        claims in claims(),
        right_secret in proptest::bool::weighted(0.9),
    ) {
        let secret = if right_secret { SECRET } else { "another-secret" };
        let token = signed(&header, &claims, secret);
        let result = authenticator().verify(Some(&format!("Bearer {token}")));
        check(&result)?;
        if let Ok(caller) = result {
            prop_assert!(right_secret, "a token signed with another secret verified");
            prop_assert_eq!(Some(caller.actor.id.as_str()), claims["sub"].as_str());
            prop_assert_eq!(Some(caller.actor.role.as_str()), claims["role"].as_str());
        }
    }
}
