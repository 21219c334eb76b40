//! Bearer-token authentication: HS256 JWTs whose `sub` is the actor id and whose
//! `role` is one of `customer_system`, `agent`, `manager`, `admin`.
//!
//! The interceptor puts the caller's [`Actor`] into the request's extensions;
//! handlers read it with [`actor`]. Health and reflection stay open.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use frontline_domain::{Actor, Role};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use tonic::{Request, Status};

use crate::ApiError;

/// Token claims.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The actor id.
    pub sub: String,
    /// The actor's role.
    pub role: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch (optional).
    #[serde(default)]
    pub iat: u64,
}

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// Signing failed.
    #[error("cannot sign token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    /// An empty subject or secret.
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

/// Mints a token for `actor`, valid for `ttl`.
pub fn mint(secret: &str, actor: &Actor, ttl: Duration) -> Result<String, MintError> {
    if secret.is_empty() {
        return Err(MintError::Empty("secret"));
    }
    if actor.id.trim().is_empty() {
        return Err(MintError::Empty("subject"));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let claims = Claims {
        sub: actor.id.clone(),
        role: actor.role.as_str().to_string(),
        iat: now,
        exp: now + ttl.as_secs(),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// Checks bearer tokens; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator")
    }
}

impl Authenticator {
    /// An authenticator for tokens signed with `secret`.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        Authenticator {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// The actor a `Bearer` authorization value names, or `UNAUTHENTICATED`.
    pub fn verify(&self, authorization: Option<&str>) -> Result<Actor, ApiError> {
        let refuse = |why: String| ApiError::Unauthenticated(why);
        let header =
            authorization.ok_or_else(|| refuse("missing authorization: Bearer <token>".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| refuse("authorization must be: Bearer <token>".into()))?;
        let data = jsonwebtoken::decode::<Claims>(token.trim(), &self.key, &self.validation)
            .map_err(|e| refuse(format!("invalid token: {e}")))?;
        let role = Role::parse(&data.claims.role)
            .ok_or_else(|| refuse(format!("unknown role {:?}", data.claims.role)))?;
        if data.claims.sub.trim().is_empty() {
            return Err(refuse("token has an empty subject".into()));
        }
        Ok(Actor::new(data.claims.sub, role))
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = match request.metadata().get("authorization") {
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| ApiError::Unauthenticated("authorization is not ASCII".into()))?,
            ),
            None => None,
        };
        let actor = self.verify(header)?;
        request.extensions_mut().insert(actor);
        Ok(request)
    }
}

/// The authenticated caller of a request that went through [`Authenticator`].
pub fn actor<T>(request: &Request<T>) -> Result<Actor, ApiError> {
    request
        .extensions()
        .get::<Actor>()
        .cloned()
        .ok_or_else(|| ApiError::Unauthenticated("request was not authenticated".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_and_bad_ones_do_not() {
        let actor = Actor::new("ana", Role::Agent);
        let token = mint("s3cret", &actor, Duration::from_secs(60)).unwrap();
        let auth = Authenticator::new("s3cret");
        assert_eq!(
            auth.verify(Some(&format!("Bearer {token}"))).unwrap(),
            actor
        );
        let wrong = Authenticator::new("other");
        for header in [None, Some("Basic abc"), Some("Bearer nope")] {
            let err = auth.verify(header).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated);
        }
        let err = wrong.verify(Some(&format!("Bearer {token}"))).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn expired_tokens_are_refused() {
        let claims = Claims {
            sub: "ana".into(),
            role: "agent".into(),
            iat: 1,
            exp: 2,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        let err = Authenticator::new("k")
            .verify(Some(&format!("Bearer {token}")))
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }
}
