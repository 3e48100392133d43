//! SeaORM entities for the Baseline Hub tables.
//!
//! These files are deliberately boring: one table per module, columns as stored.
//! Enumerations (organisation kind, school phase, geographic level, pupil group…) are
//! stored as their UPPER_CASE text so that new values never need a migration and the
//! database stays readable with plain SQL; the `api` crate parses them into typed enums
//! at the boundary. The schema itself is owned by the `migration` crate.

pub mod audit_event;
pub mod feed_sequence;
pub mod indicator;
pub mod observation;
pub mod observation_deletion;
pub mod organisation;
pub mod pupil_record;
pub mod region;
pub mod school;
pub mod sharing_agreement;
pub mod sync_run;

pub mod prelude {
    pub use super::audit_event::Entity as AuditEvent;
    pub use super::feed_sequence::Entity as FeedSequence;
    pub use super::indicator::Entity as Indicator;
    pub use super::observation::Entity as Observation;
    pub use super::observation_deletion::Entity as ObservationDeletion;
    pub use super::organisation::Entity as Organisation;
    pub use super::pupil_record::Entity as PupilRecord;
    pub use super::region::Entity as Region;
    pub use super::school::Entity as School;
    pub use super::sharing_agreement::Entity as SharingAgreement;
    pub use super::sync_run::Entity as SyncRun;
}
