//! Bearer-token authentication: JWTs naming who calls (`sub`, `role`) and the
//! tenants they act in (`tenant` or `tenants`).
//!
//! Claims: `sub` (the actor id), `role` (`customer_system`, `agent`, `manager`,
//! `admin`) and `exp` are required; `nbf` and `iat` are checked when present; `iss`
//! and `aud` are required and checked when configured. A token names exactly one of
//! `tenant` (one name) or `tenants` (a list, or `"*"` for every tenant, admins
//! only); the scope must suit the role ([`Caller::new`]). A token may not live
//! longer than the configured maximum ([`TokenConfig::max_lifetime_secs`]).
//!
//! Keys: HS256 with the shared secret; RS256 and ES256 with public keys from a PEM
//! file or a JWKS file (by `kid`). The token's header picks the algorithm, but each
//! algorithm only ever verifies with a key of its own kind: an HS256 token is only
//! checked against the secret, never against public-key bytes; `alg: none` and
//! every other algorithm are refused.
//!
//! The interceptor puts the [`Caller`] into the request's extensions; handlers read
//! it with [`caller`]. Health and reflection stay open. Every refusal is
//! `UNAUTHENTICATED` with the reason.

use std::{
    collections::{BTreeSet, HashSet},
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use frontline_domain::{Actor, Caller, Role, TenantId, TenantScope};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse},
};
use tonic::{Request, Status};

use crate::{ApiError, config::TokenConfig};

/// Clock skew tolerated, in seconds, on `exp`, `nbf`, `iat` and the `exp - now`
/// lifetime check.
pub const LEEWAY_SECS: u64 = 30;

/// The `tenants` claim: a list of tenant names, or `"*"` (every tenant, admins only).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Tenants {
    /// One string: `"*"` (a single name is accepted too).
    One(String),
    /// A list of names, or `["*"]`.
    Many(Vec<String>),
}

/// The `aud` claim: one audience or several.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

/// Token claims. Optional claims are left out of a minted token when `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The actor id (required, not blank).
    pub sub: String,
    /// The actor's role (required).
    pub role: String,
    /// Expiry, seconds since the epoch (required).
    pub exp: u64,
    /// The one tenant the caller acts in; exactly one of `tenant` and `tenants`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Several tenants, or `"*"`; exactly one of `tenant` and `tenants`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Tenants>,
    /// Not before, seconds since the epoch (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the epoch (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Issuer (required when an issuer is configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience (required when an audience is configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
}

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// Signing failed.
    #[error("cannot sign token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    /// An empty subject, secret or tenant set.
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

/// Mints an HS256 token for `caller`, valid for `ttl`: `iat` is now, and the scope
/// becomes `tenant` (one named tenant) or `tenants` (several, or `"*"`).
pub fn mint(secret: &str, caller: &Caller, ttl: Duration) -> Result<String, MintError> {
    if secret.is_empty() {
        return Err(MintError::Empty("secret"));
    }
    if caller.actor.id.trim().is_empty() {
        return Err(MintError::Empty("subject"));
    }
    let (tenant, tenants) = match &caller.tenants {
        TenantScope::All => (None, Some(Tenants::One("*".into()))),
        TenantScope::Named(set) => match set.iter().collect::<Vec<_>>().as_slice() {
            [] => return Err(MintError::Empty("tenants")),
            [one] => (Some(one.to_string()), None),
            many => (
                None,
                Some(Tenants::Many(many.iter().map(|t| t.to_string()).collect())),
            ),
        },
    };
    let now = now_secs();
    let claims = Claims {
        sub: caller.actor.id.clone(),
        role: caller.actor.role.as_str().to_string(),
        exp: now.saturating_add(ttl.as_secs()),
        tenant,
        tenants,
        iat: Some(now),
        ..Claims::default()
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// Why the token settings cannot be used; the service does not start.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// Neither a secret nor a public key nor a JWKS.
    #[error(
        "no token key configured: set FRONTLINE_JWT_SECRET (HS256), \
         FRONTLINE_JWT_PUBLIC_KEY_FILE (RS256/ES256 public key, PEM) or FRONTLINE_JWKS_FILE"
    )]
    NoKeySource,
    /// A setting given but blank.
    #[error("{0} is set but empty")]
    Empty(&'static str),
    /// A key file could not be read.
    #[error("{setting}: cannot read {path}: {source}")]
    Read {
        /// The environment variable naming the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The PEM file holds no usable public key.
    #[error("FRONTLINE_JWT_PUBLIC_KEY_FILE {path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The JWKS file is not a key set with a usable key.
    #[error("FRONTLINE_JWKS_FILE {path}: {reason}")]
    Jwks {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A public key and the `kid` it is known by (none for a PEM key).
struct PublicKey {
    kid: Option<String>,
    key: DecodingKey,
}

/// The keys and rules tokens are checked against.
struct Rules {
    secret: Option<DecodingKey>,
    rs256: Vec<PublicKey>,
    es256: Vec<PublicKey>,
    issuer: Option<String>,
    audience: Option<String>,
    max_lifetime_secs: u64,
}

/// Checks bearer tokens; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    rules: Arc<Rules>,
    /// The per-caller cap on calls in flight, when set.
    in_flight: Option<Arc<crate::in_flight::InFlightLimit>>,
}

impl fmt::Debug for Authenticator {
    /// Key counts and rules, never key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.rules;
        f.debug_struct("Authenticator")
            .field("hs256", &r.secret.is_some())
            .field("rs256_keys", &r.rs256.len())
            .field("es256_keys", &r.es256.len())
            .field("issuer", &r.issuer)
            .field("audience", &r.audience)
            .field("max_lifetime_secs", &r.max_lifetime_secs)
            .finish()
    }
}

/// The parts of a token header looked at before verifying.
#[derive(serde::Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

impl Authenticator {
    /// An authenticator for HS256 tokens signed with `secret`, with the default rules
    /// (no issuer or audience check, 24 h lifetime cap). For tests and tools; services
    /// use [`Authenticator::from_config`].
    pub fn hs256(secret: &str) -> Self {
        Authenticator {
            rules: Arc::new(Rules {
                secret: Some(DecodingKey::from_secret(secret.as_bytes())),
                rs256: Vec::new(),
                es256: Vec::new(),
                issuer: None,
                audience: None,
                max_lifetime_secs: crate::config::DEFAULT_TOKEN_MAX_LIFETIME_SECS,
            }),
            in_flight: None,
        }
    }

    /// An authenticator from the token settings: reads and checks the key files.
    pub fn from_config(config: &TokenConfig) -> Result<Self, AuthConfigError> {
        let secret = match config.jwt_secret.as_deref() {
            None => None,
            Some(s) if s.trim().is_empty() => {
                return Err(AuthConfigError::Empty("FRONTLINE_JWT_SECRET"));
            }
            Some(s) => Some(DecodingKey::from_secret(s.as_bytes())),
        };
        let issuer = not_blank(config.issuer.as_deref(), "FRONTLINE_TOKEN_ISSUER")?;
        let audience = not_blank(config.audience.as_deref(), "FRONTLINE_TOKEN_AUDIENCE")?;
        if config.jwt_public_key_file.is_none() && config.jwks_file.is_none() && secret.is_none() {
            return Err(AuthConfigError::NoKeySource);
        }
        let mut rs256 = Vec::new();
        let mut es256 = Vec::new();
        if let Some(path) = &config.jwt_public_key_file {
            let pem = read(path, "FRONTLINE_JWT_PUBLIC_KEY_FILE")?;
            let (alg, key) = pem_key(&pem).map_err(|reason| AuthConfigError::Pem {
                path: path.clone(),
                reason,
            })?;
            let key = PublicKey { kid: None, key };
            match alg {
                Algorithm::ES256 => es256.push(key),
                _ => rs256.push(key),
            }
        }
        if let Some(path) = &config.jwks_file {
            let json = read(path, "FRONTLINE_JWKS_FILE")?;
            let (rs, es) = jwks_keys(&json, path).map_err(|reason| AuthConfigError::Jwks {
                path: path.clone(),
                reason,
            })?;
            rs256.extend(rs);
            es256.extend(es);
        }
        Ok(Authenticator {
            rules: Arc::new(Rules {
                secret,
                rs256,
                es256,
                issuer,
                audience,
                max_lifetime_secs: config.max_lifetime_secs,
            }),
            in_flight: None,
        })
    }

    /// Caps each caller at `max` calls in flight (0: no cap); a call over it is
    /// refused with `RESOURCE_EXHAUSTED` before its body is read.
    pub fn with_in_flight_limit(mut self, max: usize) -> Self {
        self.in_flight = (max > 0).then(|| crate::in_flight::InFlightLimit::new(max));
        self
    }

    /// The caller a `Bearer` authorization value names, or `UNAUTHENTICATED`.
    pub fn verify(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let header =
            authorization.ok_or_else(|| refuse("missing authorization: Bearer <token>"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| refuse("authorization must be: Bearer <token>"))?
            .trim();
        let raw = raw_header(token)?;
        if raw.crit.is_some() {
            return Err(refuse("token header has critical extensions (crit)"));
        }
        let alg = match raw.alg.as_str() {
            "HS256" => Algorithm::HS256,
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            none if none.eq_ignore_ascii_case("none") => {
                return Err(refuse("unsigned tokens (alg none) are refused"));
            }
            other => {
                return Err(refuse(format!(
                    "token algorithm {other:?} is not accepted; use HS256, RS256 or ES256"
                )));
            }
        };
        let key = self.key_for(alg, raw.kid.as_deref())?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation(alg))
            .map_err(token_error)?;
        self.caller_of(data.claims, now_secs())
    }

    /// The key that may verify an `alg` token with `kid`: the secret for HS256, a
    /// public key of the algorithm's own kind otherwise.
    fn key_for(&self, alg: Algorithm, kid: Option<&str>) -> Result<&DecodingKey, ApiError> {
        let keys = match alg {
            Algorithm::HS256 => {
                return self.rules.secret.as_ref().ok_or_else(|| {
                    refuse("HS256 tokens are not accepted: no shared secret is configured")
                });
            }
            Algorithm::RS256 => &self.rules.rs256,
            Algorithm::ES256 => &self.rules.es256,
            other => return Err(refuse(format!("token algorithm {other:?} is not accepted"))),
        };
        if keys.is_empty() {
            return Err(refuse(format!(
                "{alg:?} tokens are not accepted: no {alg:?} public key is configured"
            )));
        }
        if let Some(kid) = kid {
            if let Some(key) = keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                return Ok(&key.key);
            }
            // A PEM key has no kid: it verifies tokens whose kid the JWKS does not know.
            let mut unnamed = keys.iter().filter(|k| k.kid.is_none());
            return match (unnamed.next(), unnamed.next()) {
                (Some(key), None) => Ok(&key.key),
                _ => Err(refuse(format!(
                    "no {alg:?} key has the token's kid {kid:?}"
                ))),
            };
        }
        match keys.as_slice() {
            [only] => Ok(&only.key),
            _ => Err(refuse(format!(
                "the token has no kid and {} {alg:?} keys are configured",
                keys.len()
            ))),
        }
    }

    /// What `jsonwebtoken` checks: the signature, `exp` and `nbf` (with leeway),
    /// `iss` and `aud` when configured.
    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.rules.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.rules.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// The caller of verified `claims`, after the checks `jsonwebtoken` does not do.
    fn caller_of(&self, claims: Claims, now: u64) -> Result<Caller, ApiError> {
        let max = self.rules.max_lifetime_secs;
        if let Some(iat) = claims.iat
            && iat > now.saturating_add(LEEWAY_SECS)
        {
            return Err(refuse("token is issued in the future (iat)"));
        }
        let left = claims.exp.saturating_sub(now);
        if left > max.saturating_add(LEEWAY_SECS) {
            return Err(refuse(format!(
                "token lives too long: exp is {left} s away, over the {max} s allowed"
            )));
        }
        if let Some(iat) = claims.iat {
            let lifetime = claims.exp.saturating_sub(iat);
            if lifetime > max {
                return Err(refuse(format!(
                    "token lives too long: exp - iat is {lifetime} s, over the {max} s allowed"
                )));
            }
        }
        if claims.sub.trim().is_empty() {
            return Err(refuse("token has an empty subject (sub)"));
        }
        let role = Role::parse(&claims.role).ok_or_else(|| {
            refuse(format!(
                "unknown role {:?}; use customer_system, agent, manager or admin",
                claims.role
            ))
        })?;
        let scope = tenant_scope(claims.tenant, claims.tenants)?;
        Caller::new(Actor::new(claims.sub, role), scope)
            .map_err(|e| refuse(format!("token refused: {e}")))
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
        let caller = self.verify(header)?;
        if let Some(limit) = &self.in_flight {
            // Held by `crate::handle` until the handler answers.
            let slot = limit.enter(&caller)?;
            request.extensions_mut().insert(Arc::new(slot));
        }
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// The authenticated caller of a request that went through [`Authenticator`].
pub fn caller<T>(request: &Request<T>) -> Result<Caller, ApiError> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| ApiError::Unauthenticated("request was not authenticated".into()))
}

fn refuse(reason: impl Into<String>) -> ApiError {
    ApiError::Unauthenticated(reason.into())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The token's header, read before any key is chosen (never trusted beyond that).
fn raw_header(token: &str) -> Result<RawHeader, ApiError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse("malformed token: expected header.claims.signature"));
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| refuse("malformed token header: not base64url"))?;
    serde_json::from_slice(&json).map_err(|e| refuse(format!("malformed token header: {e}")))
}

/// A clear reason for what `jsonwebtoken` refused.
fn token_error(e: jsonwebtoken::errors::Error) -> ApiError {
    refuse(match e.kind() {
        ErrorKind::ExpiredSignature => "token expired (exp)".to_string(),
        ErrorKind::ImmatureSignature => "token is not valid yet (nbf)".to_string(),
        ErrorKind::InvalidSignature => "bad token signature".to_string(),
        ErrorKind::InvalidIssuer => "token is from another issuer (iss)".to_string(),
        ErrorKind::InvalidAudience => "token is for another audience (aud)".to_string(),
        ErrorKind::MissingRequiredClaim(claim) => format!("token has no {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("malformed {claim} claim"),
        ErrorKind::InvalidAlgorithm => "token algorithm does not match the key".to_string(),
        ErrorKind::Json(e) => format!("malformed token claims: {e}"),
        _ => format!("invalid token: {e}"),
    })
}

/// The scope a token's `tenant` / `tenants` claims name.
fn tenant_scope(tenant: Option<String>, tenants: Option<Tenants>) -> Result<TenantScope, ApiError> {
    let parse = |field: &str, raw: &str| {
        TenantId::parse(field, raw).map_err(|e| refuse(format!("token refused: {e}")))
    };
    match (tenant, tenants) {
        (Some(_), Some(_)) => Err(refuse(
            "token names both tenant and tenants; use one of them",
        )),
        (None, None) => Err(refuse("token names no tenant")),
        (Some(t), None) if t == "*" => Err(refuse(
            "\"tenant\": \"*\" is not accepted; every tenant is \"tenants\": \"*\"",
        )),
        (Some(t), None) => Ok(TenantScope::one(parse("tenant", &t)?)),
        (None, Some(Tenants::One(t))) if t == "*" => Ok(TenantScope::All),
        (None, Some(Tenants::One(t))) => Ok(TenantScope::one(parse("tenants", &t)?)),
        (None, Some(Tenants::Many(list))) => {
            if list.is_empty() {
                return Err(refuse("token names no tenant"));
            }
            if list.iter().any(|t| t == "*") {
                return if list.iter().all(|t| t == "*") {
                    Ok(TenantScope::All)
                } else {
                    Err(refuse("\"*\" cannot be listed with named tenants"))
                };
            }
            let set = list
                .iter()
                .map(|t| parse("tenants", t))
                .collect::<Result<BTreeSet<_>, _>>()?;
            Ok(TenantScope::Named(set))
        }
    }
}

fn not_blank(
    value: Option<&str>,
    setting: &'static str,
) -> Result<Option<String>, AuthConfigError> {
    match value {
        Some(v) if v.trim().is_empty() => Err(AuthConfigError::Empty(setting)),
        other => Ok(other.map(str::to_string)),
    }
}

fn read(path: &Path, setting: &'static str) -> Result<Vec<u8>, AuthConfigError> {
    std::fs::read(path).map_err(|source| AuthConfigError::Read {
        setting,
        path: path.to_path_buf(),
        source,
    })
}

/// The public key in a PEM file, and the algorithm it verifies: RS256 for an RSA
/// key, ES256 for a P-256 EC key.
fn pem_key(pem: &[u8]) -> Result<(Algorithm, DecodingKey), String> {
    let text = std::str::from_utf8(pem).map_err(|_| "not a PEM text file".to_string())?;
    let label = text
        .split("-----BEGIN ")
        .nth(1)
        .and_then(|rest| rest.split("-----").next())
        .ok_or_else(|| "no PEM block (-----BEGIN PUBLIC KEY-----)".to_string())?;
    match label {
        "PUBLIC KEY" | "RSA PUBLIC KEY" => {}
        l if l.contains("PRIVATE") => {
            return Err(
                "holds a private key; give its public key (openssl pkey -in key.pem -pubout)"
                    .into(),
            );
        }
        "CERTIFICATE" => {
            return Err(
                "holds a certificate; give its public key (openssl x509 -in cert.pem -pubkey -noout)"
                    .into(),
            );
        }
        other => return Err(format!("holds a {other:?}, not a public key")),
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok((Algorithm::RS256, key));
    }
    let key = DecodingKey::from_ec_pem(pem)
        .map_err(|_| "not an RSA or EC (P-256) public key".to_string())?;
    if !is_p256_point(key.try_get_as_bytes().unwrap_or_default()) {
        return Err("an EC key that is not on P-256 (ES256 only)".into());
    }
    Ok((Algorithm::ES256, key))
}

/// Whether `point` has the length of a SEC1-encoded P-256 point.
fn is_p256_point(point: &[u8]) -> bool {
    matches!(
        (point.len(), point.first()),
        (65, Some(4)) | (33, Some(2 | 3))
    )
}

/// The RS256 and ES256 signing keys of a JWKS. Other keys (encryption keys, other
/// algorithms or curves) are skipped; a set with none usable is an error.
fn jwks_keys(json: &[u8], path: &Path) -> Result<(Vec<PublicKey>, Vec<PublicKey>), String> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(json)
        .map_err(|e| format!("not a JWKS ({{\"keys\": [...]}}): {e}"))?;
    let total = set.keys.len();
    let mut rs256 = Vec::new();
    let mut es256 = Vec::new();
    let mut kids = HashSet::new();
    for (i, value) in set.keys.into_iter().enumerate() {
        let skip = |why: &str| {
            tracing::info!(file = %path.display(), key = i, "JWKS key skipped: {why}");
        };
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(e) => {
                skip(&format!("unreadable: {e}"));
                continue;
            }
        };
        if matches!(
            jwk.common.public_key_use,
            Some(ref u) if *u != PublicKeyUse::Signature
        ) {
            skip("not a signing key");
            continue;
        }
        let declared = jwk.common.key_algorithm;
        let (alg, key) = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) if matches!(declared, None | Some(KeyAlgorithm::RS256)) => {
                let key = DecodingKey::from_jwk(&jwk)
                    .map_err(|e| format!("key {i}: bad RSA key: {e}"))?;
                (Algorithm::RS256, key)
            }
            AlgorithmParameters::EllipticCurve(params)
                if params.curve == EllipticCurve::P256
                    && matches!(declared, None | Some(KeyAlgorithm::ES256)) =>
            {
                let key =
                    DecodingKey::from_jwk(&jwk).map_err(|e| format!("key {i}: bad EC key: {e}"))?;
                if !is_p256_point(key.try_get_as_bytes().unwrap_or_default()) {
                    return Err(format!("key {i}: bad EC key: not a P-256 point"));
                }
                (Algorithm::ES256, key)
            }
            _ => {
                skip("not an RS256 or ES256 key");
                continue;
            }
        };
        let kid = jwk.common.key_id.clone();
        if let Some(kid) = &kid
            && !kids.insert(kid.clone())
        {
            return Err(format!("two keys have kid {kid:?}"));
        }
        let key = PublicKey { kid, key };
        match alg {
            Algorithm::ES256 => es256.push(key),
            _ => rs256.push(key),
        }
    }
    if rs256.is_empty() && es256.is_empty() {
        return Err(format!(
            "none of its {total} keys is an RS256 or ES256 signing key"
        ));
    }
    Ok((rs256, es256))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    const SECRET: &str = "s3cret";

    fn keys_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys")
    }

    fn key_file(name: &str) -> Vec<u8> {
        std::fs::read(keys_dir().join(name)).unwrap()
    }

    fn tenant(name: &str) -> TenantId {
        TenantId::parse("tenant", name).unwrap()
    }

    /// A valid agent of `acme`, for ten minutes.
    fn claims() -> Claims {
        Claims {
            sub: "ana".into(),
            role: "agent".into(),
            exp: now_secs() + 600,
            tenant: Some("acme".into()),
            ..Claims::default()
        }
    }

    fn sign(
        alg: Algorithm,
        key: &EncodingKey,
        kid: Option<&str>,
        claims: &impl serde::Serialize,
    ) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    fn hs(claims: &impl serde::Serialize) -> String {
        sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(SECRET.as_bytes()),
            None,
            claims,
        )
    }

    fn rs(private: &str, kid: Option<&str>, claims: &impl serde::Serialize) -> String {
        let key = EncodingKey::from_rsa_pem(&key_file(private)).unwrap();
        sign(Algorithm::RS256, &key, kid, claims)
    }

    fn es(kid: Option<&str>, claims: &impl serde::Serialize) -> String {
        let key = EncodingKey::from_ec_pem(&key_file("ec_private.pem")).unwrap();
        sign(Algorithm::ES256, &key, kid, claims)
    }

    fn check(auth: &Authenticator, token: &str) -> Result<Caller, ApiError> {
        auth.verify(Some(&format!("Bearer {token}")))
    }

    #[track_caller]
    fn refused(auth: &Authenticator, token: &str, why: &str) {
        match check(auth, token) {
            Err(ApiError::Unauthenticated(reason)) => {
                assert!(reason.contains(why), "{reason:?} does not say {why:?}");
            }
            other => panic!("expected UNAUTHENTICATED ({why}), got {other:?}"),
        }
    }

    fn with_pem(name: &str) -> Authenticator {
        Authenticator::from_config(&TokenConfig {
            jwt_public_key_file: Some(keys_dir().join(name)),
            ..TokenConfig::default()
        })
        .unwrap()
    }

    fn with_jwks() -> Authenticator {
        Authenticator::from_config(&TokenConfig {
            jwks_file: Some(keys_dir().join("jwks.json")),
            ..TokenConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn minted_tokens_verify_and_bad_ones_do_not() {
        let auth = Authenticator::hs256(SECRET);
        let agent = Actor::new("ana", Role::Agent);
        let callers = [
            Caller::in_tenant(Actor::new("shop", Role::CustomerSystem), tenant("acme")),
            Caller::new(
                agent.clone(),
                TenantScope::Named(BTreeSet::from([tenant("a"), tenant("b")])),
            )
            .unwrap(),
            Caller::new(Actor::new("op", Role::Admin), TenantScope::All).unwrap(),
        ];
        for caller in callers {
            let token = mint(SECRET, &caller, Duration::from_secs(60)).unwrap();
            assert_eq!(check(&auth, &token).unwrap(), caller);
        }
        let token = mint(
            SECRET,
            &Caller::in_tenant(agent.clone(), tenant("a")),
            Duration::from_secs(60),
        )
        .unwrap();
        for header in [None, Some("Basic abc"), Some("Bearer nope")] {
            let err = auth.verify(header).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated);
        }
        refused(
            &Authenticator::hs256("other"),
            &token,
            "bad token signature",
        );
        let empty = Caller {
            actor: agent,
            tenants: TenantScope::Named(BTreeSet::new()),
        };
        assert!(matches!(
            mint(SECRET, &empty, Duration::from_secs(60)),
            Err(MintError::Empty("tenants"))
        ));
    }

    #[test]
    fn times_are_checked() {
        let auth = Authenticator::hs256(SECRET);
        let now = now_secs();
        let expired = Claims {
            exp: now - 120,
            iat: Some(now - 600),
            ..claims()
        };
        refused(&auth, &hs(&expired), "expired");
        let too_far = Claims {
            exp: now + 25 * 3600,
            ..claims()
        };
        refused(&auth, &hs(&too_far), "exp is");
        let issued_long_ago = Claims {
            exp: now + 3600,
            iat: Some(now - 24 * 3600),
            ..claims()
        };
        refused(&auth, &hs(&issued_long_ago), "exp - iat");
        let not_yet = Claims {
            nbf: Some(now + 3600),
            ..claims()
        };
        refused(&auth, &hs(&not_yet), "nbf");
        let future_iat = Claims {
            iat: Some(now + 3600),
            ..claims()
        };
        refused(&auth, &hs(&future_iat), "iat");
        // Within the leeway, and a past nbf, are fine.
        let skewed = Claims {
            nbf: Some(now + 10),
            iat: Some(now + 10),
            ..claims()
        };
        assert!(check(&auth, &hs(&skewed)).is_ok());
        // The cap is configurable.
        let short = Authenticator::from_config(&TokenConfig {
            max_lifetime_secs: 300,
            ..TokenConfig::with_secret(SECRET)
        })
        .unwrap();
        refused(&short, &hs(&claims()), "over the 300 s allowed");
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let auth = Authenticator::from_config(&TokenConfig {
            issuer: Some("https://idp.example".into()),
            audience: Some("frontline".into()),
            ..TokenConfig::with_secret(SECRET)
        })
        .unwrap();
        let good = Claims {
            iss: Some("https://idp.example".into()),
            aud: Some(Audience::One("frontline".into())),
            ..claims()
        };
        assert!(check(&auth, &hs(&good)).is_ok());
        let listed = Claims {
            aud: Some(Audience::Many(vec!["other".into(), "frontline".into()])),
            ..good.clone()
        };
        assert!(check(&auth, &hs(&listed)).is_ok());
        let wrong_aud = Claims {
            aud: Some(Audience::One("billing".into())),
            ..good.clone()
        };
        refused(&auth, &hs(&wrong_aud), "aud");
        let wrong_list = Claims {
            aud: Some(Audience::Many(vec!["billing".into()])),
            ..good.clone()
        };
        refused(&auth, &hs(&wrong_list), "aud");
        let wrong_iss = Claims {
            iss: Some("https://evil.example".into()),
            ..good.clone()
        };
        refused(&auth, &hs(&wrong_iss), "iss");
        refused(
            &auth,
            &hs(&Claims {
                aud: None,
                ..good.clone()
            }),
            "no aud claim",
        );
        refused(&auth, &hs(&Claims { iss: None, ..good }), "no iss claim");
        // Unconfigured, they are not checked.
        let open = Authenticator::hs256(SECRET);
        assert!(check(&open, &hs(&wrong_aud)).is_ok());
    }

    #[test]
    fn unsigned_and_unknown_algorithms_are_refused() {
        let auth = Authenticator::hs256(SECRET);
        let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let body = part(serde_json::to_value(claims()).unwrap());
        let none = format!("{}.{body}.", part(json!({"alg": "none", "typ": "JWT"})));
        refused(&auth, &none, "alg none");
        let none_upper = format!("{}.{body}.", part(json!({"alg": "NONE"})));
        refused(&auth, &none_upper, "alg none");
        let hs512 = sign(
            Algorithm::HS512,
            &EncodingKey::from_secret(SECRET.as_bytes()),
            None,
            &claims(),
        );
        refused(&auth, &hs512, "\"HS512\" is not accepted");
        let crit = format!(
            "{}.{body}.sig",
            part(json!({"alg": "HS256", "crit": ["exp"]}))
        );
        refused(&auth, &crit, "crit");
    }

    #[test]
    fn hs256_never_verifies_with_public_key_bytes() {
        // The classic algorithm confusion: HMAC keyed with the public key's PEM.
        let public_pem = key_file("rsa_public.pem");
        let forged = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(&public_pem),
            None,
            &claims(),
        );
        refused(&with_pem("rsa_public.pem"), &forged, "no shared secret");
        let both = Authenticator::from_config(&TokenConfig {
            jwt_public_key_file: Some(keys_dir().join("rsa_public.pem")),
            ..TokenConfig::with_secret(SECRET)
        })
        .unwrap();
        refused(&both, &forged, "bad token signature");
        // And a public-key algorithm never verifies with the secret.
        refused(
            &Authenticator::hs256(SECRET),
            &rs("rsa_private.pem", None, &claims()),
            "no RS256 public key",
        );
    }

    #[test]
    fn rs256_and_es256_verify_with_pem_keys() {
        let rsa = with_pem("rsa_public.pem");
        let caller = check(&rsa, &rs("rsa_private.pem", None, &claims())).unwrap();
        assert_eq!(caller.actor, Actor::new("ana", Role::Agent));
        // A kid the configuration does not know still verifies with the PEM key.
        assert!(check(&rsa, &rs("rsa_private.pem", Some("idp-key-7"), &claims())).is_ok());
        refused(
            &rsa,
            &rs("rsa2_private.pem", None, &claims()),
            "bad token signature",
        );
        refused(&rsa, &es(None, &claims()), "no ES256 public key");

        let ec = with_pem("ec_public.pem");
        assert_eq!(check(&ec, &es(None, &claims())).unwrap(), caller);
        refused(
            &ec,
            &rs("rsa_private.pem", None, &claims()),
            "no RS256 public key",
        );
    }

    #[test]
    fn jwks_keys_are_picked_by_kid() {
        let auth = with_jwks();
        let second = check(&auth, &rs("rsa2_private.pem", Some("rsa-2"), &claims())).unwrap();
        assert_eq!(second.actor.id, "ana");
        assert!(check(&auth, &rs("rsa_private.pem", Some("rsa-1"), &claims())).is_ok());
        refused(
            &auth,
            &rs("rsa2_private.pem", Some("rsa-1"), &claims()),
            "bad token signature",
        );
        refused(
            &auth,
            &rs("rsa_private.pem", Some("nope"), &claims()),
            "kid \"nope\"",
        );
        refused(
            &auth,
            &rs("rsa_private.pem", None, &claims()),
            "no kid and 2 RS256 keys",
        );
        // One EC key: no kid needed.
        assert!(check(&auth, &es(None, &claims())).is_ok());
        assert!(check(&auth, &es(Some("ec-1"), &claims())).is_ok());
        // The EC key's kid never picks an RSA key for an RS256 token.
        refused(
            &auth,
            &rs("rsa_private.pem", Some("ec-1"), &claims()),
            "kid \"ec-1\"",
        );
    }

    #[test]
    fn tenants_and_roles_are_checked() {
        let auth = Authenticator::hs256(SECRET);
        let no_tenant = Claims {
            tenant: None,
            ..claims()
        };
        refused(&auth, &hs(&no_tenant), "token names no tenant");
        refused(
            &auth,
            &hs(&Claims {
                tenants: Some(Tenants::Many(vec![])),
                ..no_tenant.clone()
            }),
            "token names no tenant",
        );
        refused(
            &auth,
            &hs(&Claims {
                tenants: Some(Tenants::Many(vec!["b".into()])),
                ..claims()
            }),
            "both tenant and tenants",
        );
        let two = Some(Tenants::Many(vec!["a".into(), "b".into()]));
        let shop_in_two = Claims {
            role: "customer_system".into(),
            tenants: two.clone(),
            ..no_tenant.clone()
        };
        refused(&auth, &hs(&shop_in_two), "exactly one tenant");
        let agent_everywhere = Claims {
            tenants: Some(Tenants::One("*".into())),
            ..no_tenant.clone()
        };
        refused(&auth, &hs(&agent_everywhere), "only admins");
        refused(
            &auth,
            &hs(&Claims {
                role: "root".into(),
                ..claims()
            }),
            "unknown role",
        );
        refused(
            &auth,
            &hs(&Claims {
                sub: " ".into(),
                ..claims()
            }),
            "empty subject",
        );
        refused(
            &auth,
            &hs(&Claims {
                tenant: Some("Not A Tenant".into()),
                ..claims()
            }),
            "invalid tenant",
        );
        refused(
            &auth,
            &hs(&Claims {
                tenants: Some(Tenants::Many(vec!["*".into(), "a".into()])),
                role: "admin".into(),
                ..no_tenant.clone()
            }),
            "\"*\" cannot be listed",
        );
        refused(
            &auth,
            &hs(&json!({"role": "agent", "tenant": "a", "exp": now_secs() + 60})),
            "sub",
        );

        let agent = check(
            &auth,
            &hs(&Claims {
                tenants: two,
                ..no_tenant.clone()
            }),
        )
        .unwrap();
        assert_eq!(
            agent.tenants,
            TenantScope::Named(BTreeSet::from([tenant("a"), tenant("b")]))
        );
        for all in [Tenants::One("*".into()), Tenants::Many(vec!["*".into()])] {
            let admin = check(
                &auth,
                &hs(&Claims {
                    role: "admin".into(),
                    tenants: Some(all),
                    ..no_tenant.clone()
                }),
            )
            .unwrap();
            assert_eq!(admin.tenants, TenantScope::All);
        }
    }

    #[test]
    fn the_interceptor_puts_the_caller_into_the_request() {
        use tonic::service::Interceptor as _;
        let mut auth = Authenticator::hs256(SECRET);
        let mut request = Request::new(());
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", hs(&claims())).parse().unwrap(),
        );
        let request = auth.call(request).unwrap();
        let caller = caller(&request).unwrap();
        assert_eq!(caller.tenants, TenantScope::one(tenant("acme")));
        assert_eq!(caller.actor, Actor::new("ana", Role::Agent));
        let status = auth.call(Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(super::caller(&Request::new(())).is_err());
    }

    #[test]
    fn key_settings_are_checked_at_start() {
        let err = |config: TokenConfig| Authenticator::from_config(&config).unwrap_err();
        assert!(matches!(
            err(TokenConfig::default()),
            AuthConfigError::NoKeySource
        ));
        assert!(
            err(TokenConfig::default())
                .to_string()
                .contains("FRONTLINE_JWT_SECRET")
        );
        assert!(matches!(
            err(TokenConfig::with_secret(" ")),
            AuthConfigError::Empty("FRONTLINE_JWT_SECRET")
        ));
        assert!(matches!(
            err(TokenConfig {
                audience: Some(String::new()),
                ..TokenConfig::with_secret(SECRET)
            }),
            AuthConfigError::Empty("FRONTLINE_TOKEN_AUDIENCE")
        ));
        let pem = |name: &str| TokenConfig {
            jwt_public_key_file: Some(keys_dir().join(name)),
            ..TokenConfig::default()
        };
        assert!(matches!(
            err(pem("missing.pem")),
            AuthConfigError::Read { .. }
        ));
        let private = err(pem("rsa_private.pem"));
        assert!(
            matches!(&private, AuthConfigError::Pem { reason, .. } if reason.contains("private key")),
            "{private}"
        );
        assert!(matches!(err(pem("jwks.json")), AuthConfigError::Pem { .. }));
        let jwks = |name: &str| TokenConfig {
            jwks_file: Some(keys_dir().join(name)),
            ..TokenConfig::default()
        };
        assert!(matches!(
            err(jwks("rsa_public.pem")),
            AuthConfigError::Jwks { .. }
        ));

        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            path
        };
        let only_enc = write(
            "enc.json",
            r#"{"keys":[{"kty":"RSA","use":"enc","kid":"e","n":"AQAB","e":"AQAB"},{"kty":"oct","k":"c2VjcmV0"}]}"#,
        );
        let e = err(TokenConfig {
            jwks_file: Some(only_enc),
            ..TokenConfig::default()
        });
        assert!(e.to_string().contains("none of its 2 keys"), "{e}");
        let jwks_text = String::from_utf8(key_file("jwks.json")).unwrap();
        let twice = jwks_text.replace("\"rsa-2\"", "\"rsa-1\"");
        let e = err(TokenConfig {
            jwks_file: Some(write("twice.json", &twice)),
            ..TokenConfig::default()
        });
        assert!(e.to_string().contains("two keys have kid \"rsa-1\""), "{e}");
    }

    #[test]
    fn token_settings_parse_from_flags() {
        let config = crate::config::CommonConfig::from_args([
            "--jwt-secret",
            "x",
            "--jwks-file",
            "/etc/frontline/jwks.json",
            "--jwt-public-key-file",
            "/etc/frontline/key.pem",
            "--token-issuer",
            "https://idp.example",
            "--token-audience",
            "frontline",
            "--token-max-lifetime-secs",
            "600",
        ])
        .unwrap();
        let tokens = &config.tokens;
        assert_eq!(tokens.jwt_secret.as_deref(), Some("x"));
        assert_eq!(tokens.max_lifetime_secs, 600);
        assert_eq!(tokens.audience.as_deref(), Some("frontline"));
        assert_eq!(tokens.issuer.as_deref(), Some("https://idp.example"));
        assert!(tokens.jwks_file.is_some() && tokens.jwt_public_key_file.is_some());
        assert!(
            !format!("{config:?}").contains("\"x\""),
            "the secret is redacted"
        );
    }
}
