//! The audit log: who touched pupil-level data, when, through which operation, and how
//! much of it.
//!
//! DESIGN.md (Access) requires every read at PUPIL level to be written to the audit log,
//! so that a data controller can answer "who has seen this child's record, and why"
//! after the fact. The log is only worth that if it is complete, so the rule here is
//! that recording is part of the request, not a side effect of it: [`record`] returns an
//! error, and a resolver that cannot audit fails instead of returning data that nobody
//! would know was shown.
//!
//! Events describe the caller as the hub authenticated it (the token's subject, the
//! organisation read from the database, the roles it accepted), never anything the
//! client sent in the request, so a client cannot misattribute its own reads.

use chrono::Utc;
use entities::audit_event;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ConnectionTrait, EntityTrait};

use crate::domain::{AccessLevel, AuditAction};
use crate::error::{Error, Result};
use crate::identity::Principal;

/// One audit event, before it is written.
///
/// Built from a [`Principal`] so that who, for whom and in which roles is always filled
/// in the same way; the rest (what was done, at which level, to which scope, how many
/// rows) is said by the caller of [`record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    subject: String,
    organisation_id: i32,
    roles: String,
    action: AuditAction,
    level: AccessLevel,
    operation_name: Option<String>,
    scope: String,
    row_count: i64,
}

impl AuditEvent {
    /// An event by `principal`: `action` on data at `level`, within `scope` (what the
    /// request asked for, e.g. `school:852001` or `la:852`). No operation name and no
    /// rows until said otherwise.
    pub fn new(
        principal: &Principal,
        action: AuditAction,
        level: AccessLevel,
        scope: impl Into<String>,
    ) -> Self {
        AuditEvent {
            subject: principal.subject.clone(),
            organisation_id: principal.organisation.id,
            // All the roles the request ran with, since any of them may be the one that
            // granted access; one column keeps the log a flat, appendable table.
            roles: principal
                .roles
                .iter()
                .map(|role| role.as_str())
                .collect::<Vec<_>>()
                .join(","),
            action,
            level,
            operation_name: None,
            scope: scope.into(),
            row_count: 0,
        }
    }

    /// A read of data at `level`.
    pub fn read(principal: &Principal, level: AccessLevel, scope: impl Into<String>) -> Self {
        Self::new(principal, AuditAction::Read, level, scope)
    }

    /// The GraphQL operation's name, when the document named one: it tells an auditor
    /// which screen or report of a client made the request.
    pub fn operation(mut self, name: Option<&str>) -> Self {
        self.operation_name = name.map(str::to_owned);
        self
    }

    /// How many rows the request read or wrote.
    pub fn rows(mut self, count: usize) -> Self {
        self.row_count = i64::try_from(count).unwrap_or(i64::MAX);
        self
    }
}

/// Writes one event, timestamped now.
///
/// Generic over the connection so that a write can record its event inside its own
/// transaction: the change and its audit record then commit or roll back together.
pub async fn record<C: ConnectionTrait>(conn: &C, event: AuditEvent) -> Result<()> {
    let row = audit_event::ActiveModel {
        id: NotSet,
        occurred_at: Set(Utc::now()),
        subject: Set(event.subject),
        organisation_id: Set(event.organisation_id),
        role: Set(event.roles),
        action: Set(event.action.as_str().to_owned()),
        access_level: Set(event.level.as_str().to_owned()),
        operation_name: Set(event.operation_name),
        scope: Set(event.scope),
        row_count: Set(event.row_count),
    };
    let written = audit_event::Entity::insert(row)
        .exec_without_returning(conn)
        .await?;
    if written == 1 {
        Ok(())
    } else {
        Err(Error::Internal(format!(
            "audit event not written ({written} rows)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use entities::organisation;

    use super::*;
    use crate::domain::{OrganisationKind, Role};

    #[test]
    fn an_event_names_the_caller_and_all_its_roles() {
        let principal = Principal {
            subject: "alice".into(),
            organisation: organisation::Model {
                id: 7,
                kind: OrganisationKind::LocalAuthority.as_str().into(),
                code: "852".into(),
                name: "Southampton".into(),
                region_code: None,
            },
            kind: OrganisationKind::LocalAuthority,
            roles: vec![Role::LaOfficer, Role::Analyst],
        };
        let event = AuditEvent::read(&principal, AccessLevel::Pupil, "la:852")
            .operation(Some("Caseload"))
            .rows(12);
        assert_eq!(event.subject, "alice");
        assert_eq!(event.organisation_id, 7);
        assert_eq!(event.roles, "LA_OFFICER,ANALYST");
        assert_eq!(event.action, AuditAction::Read);
        assert_eq!(event.level, AccessLevel::Pupil);
        assert_eq!(event.operation_name.as_deref(), Some("Caseload"));
        assert_eq!(event.scope, "la:852");
        assert_eq!(event.row_count, 12);
    }
}
