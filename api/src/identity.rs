//! Who is asking: the identity a verified token gives (`auth` checks the token), and
//! the principal it becomes once its organisation has been read from the database
//! (`admission`). Vocabulary every layer may name — the rate limiter keys budgets by
//! it, the audit log records it, the policy decides on it — without depending on how
//! tokens are verified.

use std::sync::Arc;

use entities::organisation;

use crate::domain::{OrganisationKind, Role};

/// An authenticated user, with their organisation as the database describes it.
#[derive(Clone, Debug)]
pub struct Principal {
    pub subject: String,
    pub organisation: organisation::Model,
    pub kind: OrganisationKind,
    pub roles: Vec<Role>,
}

/// Who is asking. Carried in every request's GraphQL context; the `access` module is
/// the only code that decides what a caller may see.
#[derive(Clone, Debug)]
pub enum Caller {
    Anonymous,
    Principal(Arc<Principal>),
}

impl Caller {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::Anonymous => None,
            Caller::Principal(p) => Some(p),
        }
    }
}

/// A verified token's claims: who, for which organisation (as the token names it), in
/// which roles (sorted, without repeats).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    pub subject: String,
    pub kind: OrganisationKind,
    pub code: String,
    pub roles: Vec<Role>,
}

impl Identity {
    /// The principal, once its organisation has been read.
    pub fn principal(&self, organisation: organisation::Model) -> Principal {
        Principal {
            subject: self.subject.clone(),
            organisation,
            kind: self.kind,
            roles: self.roles.clone(),
        }
    }
}
