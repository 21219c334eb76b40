//! Macros: a tenant's canned answers with placeholders filled from what the
//! customer already told us, so nobody asks twice and nothing goes out blank.
//!
//! One aggregate per tenant, the macro book (`frontline.macros.<id>`): admins put
//! and remove macros by name. A body names placeholders as `{{namespace.key}}`:
//! `customer.email`, `customer.phone`, `customer.name` (the fact `name`),
//! `facts.<key>` (any fact), `ticket.subject`, `ticket.id`, `agent.id`. Unknown
//! namespaces are refused when the macro is put; a placeholder with no value when
//! it is applied refuses the whole macro, naming what it needs.
//!
//! The book also holds the basic tier's answer rules: per product area, the macro
//! that answers a new basic-tier ticket automatically (a rule names a macro of
//! the book; a macro a rule names cannot be removed).

use std::collections::BTreeMap;

use crate::{
    Action, Actor, Aggregate, Customer, DomainError, IdentityKey, Recorded, TenantId,
    actor::authorize, limits, ticket::TicketStatus,
};

/// Most macros a tenant keeps.
pub const MAX_MACROS: usize = 500;
/// Most characters in a macro's name.
pub const MAX_NAME_CHARS: usize = 64;

/// What applying a macro does to the ticket besides replying.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StatusChange {
    /// Nothing: the ticket is open after the reply.
    #[default]
    None,
    /// The reply waits on the customer: pending.
    Pending,
    /// The reply solves the ticket.
    Solved,
}

impl StatusChange {
    /// The status the ticket ends in, for messages.
    pub fn status(self) -> TicketStatus {
        match self {
            StatusChange::None => TicketStatus::Open,
            StatusChange::Pending => TicketStatus::Pending,
            StatusChange::Solved => TicketStatus::Solved,
        }
    }
}

/// A macro.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Macro {
    /// Its name, unique in the tenant (`[a-z0-9_-]`).
    pub name: String,
    /// The body with placeholders.
    pub body: String,
    /// What applying it does to the ticket's status.
    pub status_change: StatusChange,
}

/// A tenant's macros.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MacroBook {
    /// Events applied.
    pub version: u64,
    /// The tenant.
    pub tenant: TenantId,
    /// Macros by name.
    pub macros: BTreeMap<String, Macro>,
    /// Answer rules: product area → the macro answering its basic-tier tickets.
    pub answer_rules: BTreeMap<String, String>,
}

/// What admins ask of the book.
#[derive(Clone, Debug, PartialEq)]
pub enum MacroCommand {
    /// Put (create or replace) a macro.
    Put(Macro),
    /// Remove a macro by name.
    Remove(String),
    /// Set (or, with `None`, clear) the answer rule of a product area.
    SetAnswerRule {
        /// The product area.
        product_area: String,
        /// The macro answering its new basic-tier tickets.
        macro_name: Option<String>,
    },
}

/// What happened to the book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MacroEvent {
    /// A macro was put (created or replaced).
    Put {
        /// The tenant.
        tenant: TenantId,
        /// The macro.
        r#macro: Macro,
    },
    /// A macro was removed.
    Removed {
        /// Its name.
        name: String,
    },
    /// A product area's answer rule was set or cleared.
    AnswerRuleSet {
        /// The tenant.
        tenant: TenantId,
        /// The product area.
        product_area: String,
        /// The macro; `None`: no automated answer.
        macro_name: Option<String>,
    },
}

/// What a placeholder's value comes from.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// The customer's email, if known.
    pub email: Option<String>,
    /// The customer's phone, if known.
    pub phone: Option<String>,
    /// Every fact of the person.
    pub facts: BTreeMap<String, String>,
    /// The ticket's subject.
    pub subject: String,
    /// The ticket's id.
    pub ticket_id: String,
    /// The agent applying the macro.
    pub agent_id: String,
}

impl Known {
    /// What we know for a ticket (`ticket_id`, `subject`) of the person shown
    /// through `customer`, with the records `linked` into it, replied to by
    /// `agent_id`: their facts (the shown record's win) and first email and phone.
    pub fn of<'a>(
        customer: &'a Customer,
        linked: &'a [Customer],
        (ticket_id, subject): (&str, &str),
        agent_id: &str,
    ) -> Known {
        let identities: Vec<&IdentityKey> = customer
            .identities
            .iter()
            .chain(linked.iter().flat_map(|l| l.identities.iter()))
            .collect();
        let first = |pick: fn(&IdentityKey) -> Option<&String>| {
            identities.iter().find_map(|k| pick(k)).cloned()
        };
        Known {
            email: first(|k| match k {
                IdentityKey::Email(e) => Some(e),
                _ => None,
            }),
            phone: first(|k| match k {
                IdentityKey::Phone(p) => Some(p),
                _ => None,
            }),
            facts: customer.person_facts(linked.iter()),
            subject: subject.to_string(),
            ticket_id: ticket_id.to_string(),
            agent_id: agent_id.to_string(),
        }
    }
}

fn name(field: &str, value: &str) -> Result<(), DomainError> {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if value.is_empty() || value.chars().count() > MAX_NAME_CHARS || !value.chars().all(ok) {
        return Err(DomainError::invalid(
            field,
            format!("1 to {MAX_NAME_CHARS} characters of [a-z0-9_-]"),
        ));
    }
    Ok(())
}

/// The placeholders of `body`, in order: `Err` for an unclosed or unknown one.
fn placeholders(body: &str) -> Result<Vec<&str>, String> {
    let mut found = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "a placeholder is not closed with }}".to_string())?;
        let key = after[..end].trim();
        let known = matches!(
            key,
            "customer.email"
                | "customer.phone"
                | "customer.name"
                | "ticket.subject"
                | "ticket.id"
                | "agent.id"
        ) || key
            .strip_prefix("facts.")
            .is_some_and(|k| limits::fact_key("key", k).is_ok());
        if !known {
            return Err(format!(
                "unknown placeholder {{{{{key}}}}}: use customer.email, customer.phone, \
                 customer.name, facts.<key>, ticket.subject, ticket.id or agent.id"
            ));
        }
        found.push(key);
        rest = &after[end + 2..];
    }
    Ok(found)
}

impl Macro {
    /// Its fields, named as the request's (`macro.body`).
    pub fn validate(&self) -> Result<(), DomainError> {
        name("macro.name", &self.name)?;
        limits::body("macro.body", &self.body)?;
        placeholders(&self.body).map_err(|e| DomainError::invalid("macro.body", e))?;
        Ok(())
    }

    /// The body with every placeholder filled from `known`; refused, naming each
    /// placeholder with no value, when any has none.
    pub fn render(&self, known: &Known) -> Result<String, DomainError> {
        let value = |key: &str| -> Option<String> {
            let v = match key {
                "customer.email" => known.email.clone(),
                "customer.phone" => known.phone.clone(),
                "customer.name" => known.facts.get("name").cloned(),
                "ticket.subject" => Some(known.subject.clone()),
                "ticket.id" => Some(known.ticket_id.clone()),
                "agent.id" => Some(known.agent_id.clone()),
                other => other
                    .strip_prefix("facts.")
                    .and_then(|k| known.facts.get(k).cloned()),
            };
            v.filter(|v| !v.trim().is_empty())
        };
        let keys = placeholders(&self.body).map_err(|e| DomainError::invalid("macro.body", e))?;
        let missing: Vec<String> = keys
            .iter()
            .filter(|k| value(k).is_none())
            .map(|k| format!("{{{{{k}}}}}"))
            .collect();
        if !missing.is_empty() {
            return Err(DomainError::Precondition {
                action: "apply the macro",
                reason: format!(
                    "no known value for {}: ask the customer first",
                    missing.join(", ")
                ),
            });
        }
        let mut out = String::with_capacity(self.body.len());
        let mut rest = self.body.as_str();
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find("}}").unwrap_or(after.len());
            out.push_str(&value(after[..end].trim()).unwrap_or_default());
            rest = after.get(end + 2..).unwrap_or_default();
        }
        out.push_str(rest);
        Ok(out)
    }
}

impl MacroBook {
    /// Decides what `command` by `actor` records for `tenant`: `Ok(None)` when it
    /// changes nothing.
    pub fn decide(
        &self,
        tenant: &TenantId,
        command: &MacroCommand,
        actor: &Actor,
    ) -> Result<Option<MacroEvent>, DomainError> {
        authorize(actor, Action::ManageMacros)?;
        match command {
            MacroCommand::Put(m) => {
                m.validate()?;
                if self.macros.get(&m.name) == Some(m) {
                    return Ok(None);
                }
                if !self.macros.contains_key(&m.name) && self.macros.len() >= MAX_MACROS {
                    return Err(DomainError::Precondition {
                        action: "put a macro",
                        reason: format!("a tenant keeps at most {MAX_MACROS} macros"),
                    });
                }
                Ok(Some(MacroEvent::Put {
                    tenant: tenant.clone(),
                    r#macro: m.clone(),
                }))
            }
            MacroCommand::Remove(n) => {
                name("name", n)?;
                if !self.macros.contains_key(n) {
                    return Err(DomainError::NotFound {
                        kind: "macro",
                        id: n.clone(),
                    });
                }
                if let Some((area, _)) = self.answer_rules.iter().find(|(_, m)| *m == n) {
                    return Err(DomainError::Precondition {
                        action: "remove the macro",
                        reason: format!("the answer rule of {area} names it: clear that first"),
                    });
                }
                Ok(Some(MacroEvent::Removed { name: n.clone() }))
            }
            MacroCommand::SetAnswerRule {
                product_area,
                macro_name,
            } => {
                limits::product_area("product_area", product_area)?;
                if let Some(m) = macro_name {
                    name("macro_name", m)?;
                    if !self.macros.contains_key(m) {
                        return Err(DomainError::NotFound {
                            kind: "macro",
                            id: m.clone(),
                        });
                    }
                }
                if self.answer_rules.get(product_area) == macro_name.as_ref() {
                    return Ok(None);
                }
                Ok(Some(MacroEvent::AnswerRuleSet {
                    tenant: tenant.clone(),
                    product_area: product_area.clone(),
                    macro_name: macro_name.clone(),
                }))
            }
        }
    }
}

impl Aggregate for MacroBook {
    type Event = MacroEvent;
    const KIND: &'static str = "macros";
    const SNAPSHOT_SCHEMA: u32 = 1;

    fn version(&self) -> u64 {
        self.version
    }

    fn apply(&mut self, recorded: &Recorded<MacroEvent>) {
        match &recorded.event {
            MacroEvent::Put { tenant, r#macro } => {
                self.tenant = tenant.clone();
                self.macros.insert(r#macro.name.clone(), r#macro.clone());
            }
            MacroEvent::Removed { name } => {
                self.macros.remove(name);
            }
            MacroEvent::AnswerRuleSet {
                tenant,
                product_area,
                macro_name,
            } => {
                self.tenant = tenant.clone();
                match macro_name {
                    Some(m) => self.answer_rules.insert(product_area.clone(), m.clone()),
                    None => self.answer_rules.remove(product_area),
                };
            }
        }
        self.version += 1;
    }

    fn skip_unknown(&mut self) {
        self.version += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Role;

    fn serial() -> Macro {
        Macro {
            name: "firmware".into(),
            body: "Hi {{customer.name}}, router {{ facts.serial_number }} needs firmware 2.1 ({{ticket.subject}}).".into(),
            status_change: StatusChange::Pending,
        }
    }

    fn known() -> Known {
        Known {
            facts: [("name", "Dana"), ("serial_number", "SN-42")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            subject: "Router reboots".into(),
            ..Known::default()
        }
    }

    #[test]
    fn placeholders_are_filled_from_what_we_know() {
        assert_eq!(
            serial().render(&known()).unwrap(),
            "Hi Dana, router SN-42 needs firmware 2.1 (Router reboots)."
        );
    }

    #[test]
    fn a_placeholder_without_a_value_refuses_the_macro_naming_it() {
        let mut k = known();
        k.facts.remove("serial_number");
        k.facts.insert("name".into(), " ".into());
        let err = serial().render(&k).unwrap_err();
        let DomainError::Precondition { reason, .. } = err else {
            panic!("{err:?}")
        };
        assert!(
            reason.contains("{{customer.name}}, {{facts.serial_number}}"),
            "{reason}"
        );
    }

    #[test]
    fn bodies_are_checked_when_put() {
        for body in [
            "Hi {{customer.age}}",
            "Hi {{facts.Bad Key}}",
            "Hi {{customer.name",
        ] {
            let m = Macro {
                body: body.into(),
                ..serial()
            };
            assert!(
                matches!(m.validate(), Err(DomainError::InvalidField { field, .. }) if field == "macro.body"),
                "{body}"
            );
        }
        let m = Macro {
            name: "Firmware!".into(),
            ..serial()
        };
        assert!(
            matches!(m.validate(), Err(DomainError::InvalidField { field, .. }) if field == "macro.name")
        );
    }

    #[test]
    fn admins_put_and_remove() {
        let tenant = TenantId::parse("tenant", "acme").unwrap();
        let admin = Actor::new("root", Role::Admin);
        let mut book = MacroBook::default();
        let put = MacroCommand::Put(serial());
        let event = book.decide(&tenant, &put, &admin).unwrap().unwrap();
        book.apply(&Recorded {
            event,
            actor: admin.clone(),
            at: 1,
        });
        assert_eq!(book.decide(&tenant, &put, &admin), Ok(None));
        let agent = Actor::new("ana", Role::Agent);
        assert!(matches!(
            book.decide(&tenant, &put, &agent),
            Err(DomainError::Forbidden { .. })
        ));
        let rule = MacroCommand::SetAnswerRule {
            product_area: "router-x200".into(),
            macro_name: Some("firmware".into()),
        };
        let event = book.decide(&tenant, &rule, &admin).unwrap().unwrap();
        book.apply(&Recorded {
            event,
            actor: admin.clone(),
            at: 2,
        });
        assert_eq!(book.answer_rules["router-x200"], "firmware");
        let named = MacroCommand::Remove("firmware".into());
        assert!(matches!(
            book.decide(&tenant, &named, &admin),
            Err(DomainError::Precondition { .. })
        ));
        let unknown = MacroCommand::SetAnswerRule {
            product_area: "billing".into(),
            macro_name: Some("nope".into()),
        };
        assert!(matches!(
            book.decide(&tenant, &unknown, &admin),
            Err(DomainError::NotFound { .. })
        ));
        let remove = MacroCommand::Remove("nope".into());
        assert!(matches!(
            book.decide(&tenant, &remove, &admin),
            Err(DomainError::NotFound { .. })
        ));
    }
}
