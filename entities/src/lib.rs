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

// Partnership records (issue 7).
pub mod buddy_pairing;
pub mod inspection_expert;
pub mod peer_review;
pub mod peer_review_action;
pub mod peer_review_participant;
pub mod self_evaluation;
pub mod self_evaluation_partner;
pub mod self_evaluation_review;
pub mod self_evaluation_version;
pub mod signal_rule;
pub mod support_offer;
pub mod support_offer_region;
pub mod support_request;
pub mod support_request_region;
pub mod support_request_school;

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

    pub use super::buddy_pairing::Entity as BuddyPairing;
    pub use super::inspection_expert::Entity as InspectionExpert;
    pub use super::peer_review::Entity as PeerReview;
    pub use super::peer_review_action::Entity as PeerReviewAction;
    pub use super::peer_review_participant::Entity as PeerReviewParticipant;
    pub use super::self_evaluation::Entity as SelfEvaluation;
    pub use super::self_evaluation_partner::Entity as SelfEvaluationPartner;
    pub use super::self_evaluation_version::Entity as SelfEvaluationVersion;
    pub use super::signal_rule::Entity as SignalRule;
    pub use super::support_offer::Entity as SupportOffer;
    pub use super::support_request::Entity as SupportRequest;
    pub use super::support_request_school::Entity as SupportRequestSchool;
}
