//! The improvement partnership: signal rules (thresholds as data), self-evaluations
//! with their versions and named partners, peer reviews with participants and agreed
//! actions, requests and offers of support, the inspection expert directory and buddy
//! pairings.
//!
//! Every record that is shared "with the region" carries the region code it was made
//! in, so the access policy can filter lists with one indexed comparison instead of a
//! join through the organisation table. Child rows (versions, partners, participants,
//! actions, schools of a request) go with their parent.

use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SignalRule::Table)
                    .col(pk_auto(SignalRule::Id))
                    .col(string(SignalRule::Code))
                    .col(string(SignalRule::Name))
                    .col(text(SignalRule::Description))
                    .col(string(SignalRule::Kind))
                    .col(string(SignalRule::Method))
                    .col(string(SignalRule::IndicatorCode))
                    .col(string_null(SignalRule::PupilGroup))
                    .col(integer_null(SignalRule::YearsRunning))
                    .col(double(SignalRule::Threshold))
                    .col(boolean(SignalRule::Active))
                    .col(timestamp_with_time_zone(SignalRule::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SignalRule::Table, SignalRule::IndicatorCode)
                            .to(Indicator::Table, Indicator::Code),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            SignalRule::Table,
            "ux_signal_rule_code",
            &[SignalRule::Code],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SelfEvaluation::Table)
                    .col(pk_auto(SelfEvaluation::Id))
                    .col(integer(SelfEvaluation::OrganisationId))
                    .col(string(SelfEvaluation::RegionCode))
                    .col(string(SelfEvaluation::Period))
                    .col(string(SelfEvaluation::AreaLevel))
                    .col(string(SelfEvaluation::AreaCode))
                    .col(string(SelfEvaluation::Status))
                    .col(string_null(SelfEvaluation::Audience))
                    .col(integer(SelfEvaluation::CurrentVersion))
                    .col(timestamp_with_time_zone_null(SelfEvaluation::SharedAt))
                    .col(timestamp_with_time_zone_null(SelfEvaluation::ReviewedAt))
                    .col(integer_null(SelfEvaluation::ReviewedByOrganisationId))
                    .col(text_null(SelfEvaluation::ReviewComment))
                    .col(string(SelfEvaluation::CreatedBy))
                    .col(timestamp_with_time_zone(SelfEvaluation::CreatedAt))
                    .col(timestamp_with_time_zone(SelfEvaluation::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SelfEvaluation::Table, SelfEvaluation::OrganisationId)
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SelfEvaluation::Table, SelfEvaluation::RegionCode)
                            .to(Region::Table, Region::Code),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                SelfEvaluation::Table,
                                SelfEvaluation::ReviewedByOrganisationId,
                            )
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            SelfEvaluation::Table,
            "ix_self_evaluation_organisation",
            &[SelfEvaluation::OrganisationId, SelfEvaluation::Period],
            false,
        )
        .await?;
        index(
            manager,
            SelfEvaluation::Table,
            "ix_self_evaluation_region",
            &[SelfEvaluation::RegionCode, SelfEvaluation::Status],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SelfEvaluationVersion::Table)
                    .col(pk_auto(SelfEvaluationVersion::Id))
                    .col(integer(SelfEvaluationVersion::SelfEvaluationId))
                    .col(integer(SelfEvaluationVersion::Version))
                    .col(string(SelfEvaluationVersion::Title))
                    .col(json(SelfEvaluationVersion::Content))
                    .col(string(SelfEvaluationVersion::EditedBy))
                    .col(timestamp_with_time_zone(SelfEvaluationVersion::EditedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                SelfEvaluationVersion::Table,
                                SelfEvaluationVersion::SelfEvaluationId,
                            )
                            .to(SelfEvaluation::Table, SelfEvaluation::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            SelfEvaluationVersion::Table,
            "ux_self_evaluation_version",
            &[
                SelfEvaluationVersion::SelfEvaluationId,
                SelfEvaluationVersion::Version,
            ],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SelfEvaluationPartner::Table)
                    .col(integer(SelfEvaluationPartner::SelfEvaluationId))
                    .col(integer(SelfEvaluationPartner::OrganisationId))
                    .primary_key(
                        Index::create()
                            .col(SelfEvaluationPartner::SelfEvaluationId)
                            .col(SelfEvaluationPartner::OrganisationId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                SelfEvaluationPartner::Table,
                                SelfEvaluationPartner::SelfEvaluationId,
                            )
                            .to(SelfEvaluation::Table, SelfEvaluation::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                SelfEvaluationPartner::Table,
                                SelfEvaluationPartner::OrganisationId,
                            )
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // "Shared with my organisation" is the visibility subquery.
        index(
            manager,
            SelfEvaluationPartner::Table,
            "ix_self_evaluation_partner_organisation",
            &[SelfEvaluationPartner::OrganisationId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PeerReview::Table)
                    .col(pk_auto(PeerReview::Id))
                    .col(integer(PeerReview::ReviewedOrganisationId))
                    .col(string(PeerReview::RegionCode))
                    .col(string(PeerReview::Format))
                    .col(string(PeerReview::Theme))
                    .col(string(PeerReview::Title))
                    .col(date(PeerReview::StartsOn))
                    .col(date(PeerReview::EndsOn))
                    .col(text_null(PeerReview::Findings))
                    .col(string(PeerReview::Status))
                    .col(timestamp_with_time_zone_null(PeerReview::SharedAt))
                    .col(string(PeerReview::CreatedBy))
                    .col(timestamp_with_time_zone(PeerReview::CreatedAt))
                    .col(timestamp_with_time_zone(PeerReview::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PeerReview::Table, PeerReview::ReviewedOrganisationId)
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(PeerReview::Table, PeerReview::RegionCode)
                            .to(Region::Table, Region::Code),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            PeerReview::Table,
            "ix_peer_review_region",
            &[PeerReview::RegionCode, PeerReview::SharedAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PeerReviewParticipant::Table)
                    .col(integer(PeerReviewParticipant::PeerReviewId))
                    .col(integer(PeerReviewParticipant::OrganisationId))
                    .col(string(PeerReviewParticipant::Role))
                    .primary_key(
                        Index::create()
                            .col(PeerReviewParticipant::PeerReviewId)
                            .col(PeerReviewParticipant::OrganisationId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                PeerReviewParticipant::Table,
                                PeerReviewParticipant::PeerReviewId,
                            )
                            .to(PeerReview::Table, PeerReview::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                PeerReviewParticipant::Table,
                                PeerReviewParticipant::OrganisationId,
                            )
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            PeerReviewParticipant::Table,
            "ix_peer_review_participant_organisation",
            &[PeerReviewParticipant::OrganisationId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PeerReviewAction::Table)
                    .col(pk_auto(PeerReviewAction::Id))
                    .col(integer(PeerReviewAction::PeerReviewId))
                    .col(text(PeerReviewAction::Description))
                    .col(integer(PeerReviewAction::OwnerOrganisationId))
                    .col(string_null(PeerReviewAction::OwnerName))
                    .col(date(PeerReviewAction::DueOn))
                    .col(string(PeerReviewAction::Status))
                    .col(timestamp_with_time_zone_null(PeerReviewAction::CompletedAt))
                    .col(timestamp_with_time_zone(PeerReviewAction::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PeerReviewAction::Table, PeerReviewAction::PeerReviewId)
                            .to(PeerReview::Table, PeerReview::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                PeerReviewAction::Table,
                                PeerReviewAction::OwnerOrganisationId,
                            )
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            PeerReviewAction::Table,
            "ix_peer_review_action_review",
            &[PeerReviewAction::PeerReviewId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SupportOffer::Table)
                    .col(pk_auto(SupportOffer::Id))
                    .col(integer(SupportOffer::OrganisationId))
                    .col(string(SupportOffer::RegionCode))
                    .col(string(SupportOffer::Theme))
                    .col(string(SupportOffer::Title))
                    .col(text(SupportOffer::Detail))
                    .col(string(SupportOffer::Capacity))
                    .col(string(SupportOffer::Status))
                    .col(string(SupportOffer::CreatedBy))
                    .col(timestamp_with_time_zone(SupportOffer::CreatedAt))
                    .col(timestamp_with_time_zone(SupportOffer::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SupportOffer::Table, SupportOffer::OrganisationId)
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SupportOffer::Table, SupportOffer::RegionCode)
                            .to(Region::Table, Region::Code),
                    )
                    .to_owned(),
            )
            .await?;
        // Matching: open offers of a region on a theme.
        index(
            manager,
            SupportOffer::Table,
            "ix_support_offer_match",
            &[
                SupportOffer::RegionCode,
                SupportOffer::Theme,
                SupportOffer::Status,
            ],
            false,
        )
        .await?;
        index(
            manager,
            SupportOffer::Table,
            "ix_support_offer_organisation",
            &[SupportOffer::OrganisationId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SupportRequest::Table)
                    .col(pk_auto(SupportRequest::Id))
                    .col(integer(SupportRequest::OrganisationId))
                    .col(string(SupportRequest::RegionCode))
                    .col(string(SupportRequest::Theme))
                    .col(string(SupportRequest::Urgency))
                    .col(string(SupportRequest::Title))
                    .col(text(SupportRequest::Detail))
                    .col(string(SupportRequest::Status))
                    .col(integer_null(SupportRequest::OfferId))
                    .col(string(SupportRequest::CreatedBy))
                    .col(timestamp_with_time_zone(SupportRequest::CreatedAt))
                    .col(timestamp_with_time_zone(SupportRequest::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SupportRequest::Table, SupportRequest::OrganisationId)
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SupportRequest::Table, SupportRequest::RegionCode)
                            .to(Region::Table, Region::Code),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SupportRequest::Table, SupportRequest::OfferId)
                            .to(SupportOffer::Table, SupportOffer::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            SupportRequest::Table,
            "ix_support_request_match",
            &[
                SupportRequest::RegionCode,
                SupportRequest::Theme,
                SupportRequest::Status,
            ],
            false,
        )
        .await?;
        index(
            manager,
            SupportRequest::Table,
            "ix_support_request_organisation",
            &[SupportRequest::OrganisationId],
            false,
        )
        .await?;
        // An offer helps one request: two concurrent matches of the same offer cannot
        // both commit. NULLs (unmatched requests) do not collide on either backend.
        index(
            manager,
            SupportRequest::Table,
            "ux_support_request_offer",
            &[SupportRequest::OfferId],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SupportRequestSchool::Table)
                    .col(integer(SupportRequestSchool::SupportRequestId))
                    .col(integer(SupportRequestSchool::SchoolUrn))
                    .primary_key(
                        Index::create()
                            .col(SupportRequestSchool::SupportRequestId)
                            .col(SupportRequestSchool::SchoolUrn),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                SupportRequestSchool::Table,
                                SupportRequestSchool::SupportRequestId,
                            )
                            .to(SupportRequest::Table, SupportRequest::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SupportRequestSchool::Table, SupportRequestSchool::SchoolUrn)
                            .to(School::Table, School::Urn),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            SupportRequestSchool::Table,
            "ix_support_request_school_urn",
            &[SupportRequestSchool::SchoolUrn],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(InspectionExpert::Table)
                    .col(pk_auto(InspectionExpert::Id))
                    .col(integer(InspectionExpert::OrganisationId))
                    .col(string(InspectionExpert::RegionCode))
                    .col(string(InspectionExpert::Name))
                    .col(string(InspectionExpert::JobTitle))
                    .col(string_null(InspectionExpert::Phase))
                    .col(text(InspectionExpert::Expertise))
                    .col(string(InspectionExpert::Availability))
                    .col(string_null(InspectionExpert::AvailabilityNote))
                    .col(string_null(InspectionExpert::Email))
                    .col(string_null(InspectionExpert::Phone))
                    .col(string(InspectionExpert::CreatedBy))
                    .col(timestamp_with_time_zone(InspectionExpert::CreatedAt))
                    .col(timestamp_with_time_zone(InspectionExpert::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(InspectionExpert::Table, InspectionExpert::OrganisationId)
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(InspectionExpert::Table, InspectionExpert::RegionCode)
                            .to(Region::Table, Region::Code),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            InspectionExpert::Table,
            "ix_inspection_expert_region",
            &[InspectionExpert::RegionCode, InspectionExpert::Availability],
            false,
        )
        .await?;
        index(
            manager,
            InspectionExpert::Table,
            "ix_inspection_expert_organisation",
            &[InspectionExpert::OrganisationId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(BuddyPairing::Table)
                    .col(pk_auto(BuddyPairing::Id))
                    .col(integer(BuddyPairing::SchoolUrn))
                    .col(integer(BuddyPairing::ExpertId))
                    .col(string(BuddyPairing::Status))
                    .col(date(BuddyPairing::StartsOn))
                    .col(date_null(BuddyPairing::EndsOn))
                    .col(text_null(BuddyPairing::Notes))
                    .col(string(BuddyPairing::CreatedBy))
                    .col(timestamp_with_time_zone(BuddyPairing::CreatedAt))
                    .col(timestamp_with_time_zone(BuddyPairing::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(BuddyPairing::Table, BuddyPairing::SchoolUrn)
                            .to(School::Table, School::Urn),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(BuddyPairing::Table, BuddyPairing::ExpertId)
                            .to(InspectionExpert::Table, InspectionExpert::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            BuddyPairing::Table,
            "ix_buddy_pairing_school",
            &[BuddyPairing::SchoolUrn],
            false,
        )
        .await?;
        index(
            manager,
            BuddyPairing::Table,
            "ix_buddy_pairing_expert",
            &[BuddyPairing::ExpertId],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            BuddyPairing::Table.into_iden(),
            InspectionExpert::Table.into_iden(),
            SupportRequestSchool::Table.into_iden(),
            SupportRequest::Table.into_iden(),
            SupportOffer::Table.into_iden(),
            PeerReviewAction::Table.into_iden(),
            PeerReviewParticipant::Table.into_iden(),
            PeerReview::Table.into_iden(),
            SelfEvaluationPartner::Table.into_iden(),
            SelfEvaluationVersion::Table.into_iden(),
            SelfEvaluation::Table.into_iden(),
            SignalRule::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

// Tables this migration refers to but does not create.

#[derive(DeriveIden, Clone, Copy)]
enum Region {
    Table,
    Code,
}

#[derive(DeriveIden, Clone, Copy)]
enum Organisation {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum School {
    Table,
    Urn,
}

#[derive(DeriveIden, Clone, Copy)]
enum Indicator {
    Table,
    Code,
}

// Tables this migration creates.

#[derive(DeriveIden, Clone, Copy)]
enum SignalRule {
    Table,
    Id,
    Code,
    Name,
    Description,
    Kind,
    Method,
    IndicatorCode,
    PupilGroup,
    YearsRunning,
    Threshold,
    Active,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SelfEvaluation {
    Table,
    Id,
    OrganisationId,
    RegionCode,
    Period,
    AreaLevel,
    AreaCode,
    Status,
    Audience,
    CurrentVersion,
    SharedAt,
    ReviewedAt,
    ReviewedByOrganisationId,
    ReviewComment,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SelfEvaluationVersion {
    Table,
    Id,
    SelfEvaluationId,
    Version,
    Title,
    Content,
    EditedBy,
    EditedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SelfEvaluationPartner {
    Table,
    SelfEvaluationId,
    OrganisationId,
}

#[derive(DeriveIden, Clone, Copy)]
enum PeerReview {
    Table,
    Id,
    ReviewedOrganisationId,
    RegionCode,
    Format,
    Theme,
    Title,
    StartsOn,
    EndsOn,
    Findings,
    Status,
    SharedAt,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PeerReviewParticipant {
    Table,
    PeerReviewId,
    OrganisationId,
    Role,
}

#[derive(DeriveIden, Clone, Copy)]
enum PeerReviewAction {
    Table,
    Id,
    PeerReviewId,
    Description,
    OwnerOrganisationId,
    OwnerName,
    DueOn,
    Status,
    CompletedAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SupportOffer {
    Table,
    Id,
    OrganisationId,
    RegionCode,
    Theme,
    Title,
    Detail,
    Capacity,
    Status,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SupportRequest {
    Table,
    Id,
    OrganisationId,
    RegionCode,
    Theme,
    Urgency,
    Title,
    Detail,
    Status,
    OfferId,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SupportRequestSchool {
    Table,
    SupportRequestId,
    SchoolUrn,
}

#[derive(DeriveIden, Clone, Copy)]
enum InspectionExpert {
    Table,
    Id,
    OrganisationId,
    RegionCode,
    Name,
    JobTitle,
    Phase,
    Expertise,
    Availability,
    AvailabilityNote,
    Email,
    Phone,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum BuddyPairing {
    Table,
    Id,
    SchoolUrn,
    ExpertId,
    Status,
    StartsOn,
    EndsOn,
    Notes,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}
