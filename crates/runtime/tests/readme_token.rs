//! The README's token example works exactly as written: its claims, with a current
//! `exp`, signed with the services' secret, are accepted as the caller they say.
#![allow(clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use frontline_domain::{Role, TenantId};
use frontline_runtime::auth::Authenticator;

#[test]
fn the_readme_token_example_is_accepted() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let example = readme
        .lines()
        .find(|l| l.starts_with(r#"{"sub":"web-shop""#))
        .expect("the README shows a token's claims");
    let mut claims: serde_json::Value = serde_json::from_str(example).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    claims["exp"] = (now + 3600).into();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"readme-secret"),
    )
    .unwrap();
    let caller = Authenticator::hs256("readme-secret")
        .verify(Some(&format!("Bearer {token}")))
        .unwrap();
    assert_eq!(caller.actor.id, "web-shop");
    assert_eq!(caller.actor.role, Role::CustomerSystem);
    assert_eq!(
        caller.tenants.single(),
        Some(&TenantId::parse("tenant", "acme").unwrap())
    );
}
