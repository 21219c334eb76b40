//! Tenants: every aggregate belongs to one, and a caller acts only inside the
//! tenants its token names.
//!
//! - A customer system's token names exactly one tenant.
//! - Agents, managers and admins may name several; only admins may name all (`*`).
//! - A call that creates something or looks it up by identity acts in one tenant:
//!   the token's only one, or the one the caller names (the `x-tenant` header).
//! - An aggregate of a tenant the caller does not cover is reported as not found,
//!   so its existence is not revealed.

use std::{collections::BTreeSet, fmt};

use crate::{Actor, DomainError, Role};

/// Longest tenant name.
pub const MAX_TENANT_CHARS: usize = 64;

/// A tenant's name: 1 to 64 of lower-case ASCII letters, digits, `-`, `_`, `.`.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    /// Checks a tenant name; `field` names it in the error.
    pub fn parse(field: &str, raw: &str) -> Result<TenantId, DomainError> {
        let ok = !raw.is_empty()
            && raw.chars().count() <= MAX_TENANT_CHARS
            && raw.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
            });
        if ok {
            Ok(TenantId(raw.to_string()))
        } else {
            Err(DomainError::invalid(
                field,
                format!(
                    "a tenant is 1 to {MAX_TENANT_CHARS} of lower-case letters, digits, '-', '_', '.'"
                ),
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the empty name: state that has not been created yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tenants a token covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantScope {
    /// Named tenants (at least one).
    Named(BTreeSet<TenantId>),
    /// Every tenant (`*`, operators only).
    All,
}

impl TenantScope {
    /// One tenant.
    pub fn one(tenant: TenantId) -> TenantScope {
        TenantScope::Named(BTreeSet::from([tenant]))
    }

    /// Whether `tenant` is covered.
    pub fn covers(&self, tenant: &TenantId) -> bool {
        match self {
            TenantScope::Named(set) => set.contains(tenant),
            TenantScope::All => true,
        }
    }

    /// The only tenant, when exactly one is named.
    pub fn single(&self) -> Option<&TenantId> {
        match self {
            TenantScope::Named(set) if set.len() == 1 => set.iter().next(),
            _ => None,
        }
    }
}

/// An authenticated caller: who (recorded on events) and where they may act.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Who, as recorded on events.
    pub actor: Actor,
    /// The tenants the token covers.
    pub tenants: TenantScope,
}

impl Caller {
    /// A caller; refuses scopes a role may not have: a customer system names exactly
    /// one tenant, and only an admin may cover all.
    pub fn new(actor: Actor, tenants: TenantScope) -> Result<Caller, DomainError> {
        match (&tenants, actor.role) {
            (TenantScope::All, Role::Admin) => {}
            (TenantScope::All, role) => {
                return Err(DomainError::invalid(
                    "tenants",
                    format!("only admins may cover every tenant, not {role}"),
                ));
            }
            (TenantScope::Named(set), _) if set.is_empty() => {
                return Err(DomainError::invalid("tenant", "names no tenant"));
            }
            (TenantScope::Named(set), Role::CustomerSystem) if set.len() > 1 => {
                return Err(DomainError::invalid(
                    "tenants",
                    "a customer system belongs to exactly one tenant",
                ));
            }
            _ => {}
        }
        Ok(Caller { actor, tenants })
    }

    /// A caller in one tenant (tests and tools).
    pub fn in_tenant(actor: Actor, tenant: TenantId) -> Caller {
        Caller {
            actor,
            tenants: TenantScope::one(tenant),
        }
    }

    /// Whether the caller may see an aggregate of `tenant`. Callers that may not are
    /// told "not found".
    pub fn sees(&self, tenant: &TenantId) -> bool {
        self.tenants.covers(tenant)
    }

    /// `NotFound` for an aggregate of a tenant the caller does not cover (or one that
    /// does not exist: its tenant is empty), so the answer never tells them apart.
    pub fn check_sees(
        &self,
        kind: &'static str,
        id: &impl fmt::Display,
        tenant: &TenantId,
    ) -> Result<(), DomainError> {
        if self.sees(tenant) {
            Ok(())
        } else {
            Err(DomainError::NotFound {
                kind,
                id: id.to_string(),
            })
        }
    }

    /// The tenant a creating or identity-addressed call acts in: `requested` (the
    /// caller named one) if covered, else the token's only tenant.
    pub fn acting_tenant(&self, requested: Option<&str>) -> Result<TenantId, DomainError> {
        match requested.map(str::trim).filter(|r| !r.is_empty()) {
            Some(raw) => {
                let tenant = TenantId::parse("x-tenant", raw)?;
                if self.tenants.covers(&tenant) {
                    Ok(tenant)
                } else {
                    Err(DomainError::OtherTenant {
                        tenant: tenant.to_string(),
                    })
                }
            }
            None => self.tenants.single().cloned().ok_or_else(|| {
                DomainError::invalid(
                    "x-tenant",
                    "the token covers several tenants: name one in the x-tenant header",
                )
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(name: &str) -> TenantId {
        TenantId::parse("tenant", name).unwrap()
    }

    #[test]
    fn tenant_names_are_checked() {
        for ok in ["acme", "acme-eu", "a.b_c-1"] {
            assert!(TenantId::parse("tenant", ok).is_ok(), "{ok}");
        }
        for bad in ["", "Acme", "a b", "*", "ä", &"a".repeat(65)] {
            assert!(TenantId::parse("tenant", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_by_role() {
        let agent = Actor::new("ana", Role::Agent);
        let shop = Actor::new("shop", Role::CustomerSystem);
        let two = TenantScope::Named(BTreeSet::from([t("a"), t("b")]));
        assert!(Caller::new(agent.clone(), two.clone()).is_ok());
        assert!(Caller::new(shop.clone(), two).is_err());
        assert!(Caller::new(agent, TenantScope::All).is_err());
        assert!(Caller::new(Actor::new("op", Role::Admin), TenantScope::All).is_ok());
        assert!(Caller::new(shop, TenantScope::Named(BTreeSet::new())).is_err());
    }

    #[test]
    fn acting_tenant_is_the_only_one_or_a_covered_named_one() {
        let one = Caller::in_tenant(Actor::new("shop", Role::CustomerSystem), t("a"));
        assert_eq!(one.acting_tenant(None).unwrap(), t("a"));
        assert_eq!(one.acting_tenant(Some("a")).unwrap(), t("a"));
        assert!(matches!(
            one.acting_tenant(Some("b")),
            Err(DomainError::OtherTenant { .. })
        ));
        let all = Caller::new(Actor::new("op", Role::Admin), TenantScope::All).unwrap();
        assert!(matches!(
            all.acting_tenant(None),
            Err(DomainError::InvalidField { .. })
        ));
        assert_eq!(all.acting_tenant(Some("b")).unwrap(), t("b"));
        assert!(all.sees(&t("zz")) && !one.sees(&t("b")));
    }
}
