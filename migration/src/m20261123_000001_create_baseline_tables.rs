//! The baseline: reference tables (region, organisation, school, indicator), figures
//! (observation), pupil-level records, and the governance tables (sharing agreements,
//! audit, sync runs).

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
                    .table(Region::Table)
                    .col(string(Region::Code).primary_key())
                    .col(string(Region::Name))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Organisation::Table)
                    .col(pk_auto(Organisation::Id))
                    .col(string(Organisation::Kind))
                    .col(string(Organisation::Code))
                    .col(string(Organisation::Name))
                    .col(string_null(Organisation::RegionCode))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Organisation::Table, Organisation::RegionCode)
                            .to(Region::Table, Region::Code),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            Organisation::Table,
            "ux_organisation_kind_code",
            &[Organisation::Kind, Organisation::Code],
            true,
        )
        .await?;
        index(
            manager,
            Organisation::Table,
            "ix_organisation_region",
            &[Organisation::RegionCode],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(School::Table)
                    .col(integer(School::Urn).primary_key())
                    .col(string(School::Name))
                    .col(string(School::Phase))
                    .col(string(School::EstablishmentType))
                    .col(integer(School::LaId))
                    .col(integer_null(School::TrustId))
                    .col(integer_null(School::DioceseId))
                    .col(string(School::RegionCode))
                    .col(boolean(School::IsOpen))
                    .col(integer(School::PupilsOnRoll))
                    .col(date_null(School::LastInspectionDate))
                    .foreign_key(
                        ForeignKey::create()
                            .from(School::Table, School::LaId)
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(School::Table, School::TrustId)
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(School::Table, School::DioceseId)
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(School::Table, School::RegionCode)
                            .to(Region::Table, Region::Code),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            School::Table,
            "ix_school_la",
            &[School::LaId],
            false,
        )
        .await?;
        index(
            manager,
            School::Table,
            "ix_school_trust",
            &[School::TrustId],
            false,
        )
        .await?;
        index(
            manager,
            School::Table,
            "ix_school_diocese",
            &[School::DioceseId],
            false,
        )
        .await?;
        index(
            manager,
            School::Table,
            "ix_school_region",
            &[School::RegionCode],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Indicator::Table)
                    .col(string(Indicator::Code).primary_key())
                    .col(string(Indicator::Name))
                    .col(string(Indicator::Unit))
                    .col(string(Indicator::Polarity))
                    .col(double(Indicator::Multiplier))
                    .col(text(Indicator::Description))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SyncRun::Table)
                    .col(big_pk_auto(SyncRun::Id))
                    .col(integer_null(SyncRun::OrganisationId))
                    .col(string(SyncRun::Subject))
                    .col(string(SyncRun::Source))
                    .col(string(SyncRun::Status))
                    .col(string_null(SyncRun::IdempotencyKey))
                    .col(string_null(SyncRun::RequestHash))
                    .col(timestamp_with_time_zone(SyncRun::StartedAt))
                    .col(timestamp_with_time_zone_null(SyncRun::FinishedAt))
                    .col(big_integer(SyncRun::RowsReceived))
                    .col(big_integer(SyncRun::RowsWritten))
                    .col(big_integer(SyncRun::RowsRejected))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SyncRun::Table, SyncRun::OrganisationId)
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            SyncRun::Table,
            "ux_sync_run_idempotency",
            &[SyncRun::OrganisationId, SyncRun::IdempotencyKey],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Observation::Table)
                    .col(big_pk_auto(Observation::Id))
                    .col(string(Observation::IndicatorCode))
                    .col(string(Observation::Period))
                    .col(string(Observation::GeographicLevel))
                    .col(string(Observation::AreaCode))
                    .col(integer_null(Observation::SchoolUrn))
                    .col(string(Observation::PupilGroup))
                    .col(double_null(Observation::Numerator))
                    .col(double_null(Observation::Denominator))
                    .col(double_null(Observation::Value))
                    .col(integer_null(Observation::SourceOrganisationId))
                    .col(big_integer_null(Observation::SyncRunId))
                    .col(timestamp_with_time_zone(Observation::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Observation::Table, Observation::IndicatorCode)
                            .to(Indicator::Table, Indicator::Code),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Observation::Table, Observation::SchoolUrn)
                            .to(School::Table, School::Urn),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Observation::Table, Observation::SourceOrganisationId)
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Observation::Table, Observation::SyncRunId)
                            .to(SyncRun::Table, SyncRun::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The natural key of a figure; also serves filters that lead with the indicator.
        index(
            manager,
            Observation::Table,
            "ux_observation_key",
            &[
                Observation::IndicatorCode,
                Observation::Period,
                Observation::GeographicLevel,
                Observation::AreaCode,
                Observation::PupilGroup,
            ],
            true,
        )
        .await?;
        // Per-school figures (dashboards, nested `School.observations`).
        index(
            manager,
            Observation::Table,
            "ix_observation_school",
            &[
                Observation::SchoolUrn,
                Observation::IndicatorCode,
                Observation::PupilGroup,
                Observation::Period,
            ],
            false,
        )
        .await?;
        // Time series and gap per area.
        index(
            manager,
            Observation::Table,
            "ix_observation_area",
            &[
                Observation::GeographicLevel,
                Observation::AreaCode,
                Observation::IndicatorCode,
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PupilRecord::Table)
                    .col(big_pk_auto(PupilRecord::Id))
                    .col(string(PupilRecord::PupilKey))
                    .col(string(PupilRecord::Period))
                    .col(integer(PupilRecord::SchoolUrn))
                    .col(string(PupilRecord::HomeLaCode))
                    .col(small_integer(PupilRecord::YearGroup))
                    .col(boolean(PupilRecord::Disadvantaged))
                    .col(string(PupilRecord::SenStatus))
                    .col(boolean(PupilRecord::Eal))
                    .col(boolean(PupilRecord::InCare))
                    .col(integer(PupilRecord::SessionsPossible))
                    .col(integer(PupilRecord::SessionsMissed))
                    .col(integer(PupilRecord::Suspensions))
                    .col(boolean(PupilRecord::PermanentlyExcluded))
                    .col(boolean(PupilRecord::LeftForEhe))
                    .col(boolean(PupilRecord::MissingEducation))
                    .col(boolean_null(PupilRecord::Ks2RwmExpected))
                    .col(double_null(PupilRecord::Ks4Attainment8))
                    .col(double_null(PupilRecord::Ks4Progress8))
                    .col(timestamp_with_time_zone(PupilRecord::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PupilRecord::Table, PupilRecord::SchoolUrn)
                            .to(School::Table, School::Urn),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            PupilRecord::Table,
            "ux_pupil_record_key",
            &[
                PupilRecord::PupilKey,
                PupilRecord::Period,
                PupilRecord::SchoolUrn,
            ],
            true,
        )
        .await?;
        index(
            manager,
            PupilRecord::Table,
            "ix_pupil_record_school",
            &[PupilRecord::SchoolUrn, PupilRecord::Period],
            false,
        )
        .await?;
        index(
            manager,
            PupilRecord::Table,
            "ix_pupil_record_home_la",
            &[PupilRecord::HomeLaCode, PupilRecord::Period],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SharingAgreement::Table)
                    .col(pk_auto(SharingAgreement::Id))
                    .col(integer(SharingAgreement::ProviderId))
                    .col(integer(SharingAgreement::ConsumerId))
                    .col(string(SharingAgreement::AccessLevel))
                    .col(text(SharingAgreement::Purpose))
                    .col(date(SharingAgreement::ValidFrom))
                    .col(date(SharingAgreement::ValidTo))
                    .col(string(SharingAgreement::Status))
                    .col(string(SharingAgreement::CreatedBy))
                    .col(timestamp_with_time_zone(SharingAgreement::CreatedAt))
                    .col(timestamp_with_time_zone_null(SharingAgreement::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SharingAgreement::Table, SharingAgreement::ProviderId)
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SharingAgreement::Table, SharingAgreement::ConsumerId)
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            SharingAgreement::Table,
            "ix_sharing_agreement_consumer",
            &[SharingAgreement::ConsumerId],
            false,
        )
        .await?;
        index(
            manager,
            SharingAgreement::Table,
            "ix_sharing_agreement_provider",
            &[SharingAgreement::ProviderId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvent::Table)
                    .col(big_pk_auto(AuditEvent::Id))
                    .col(timestamp_with_time_zone(AuditEvent::OccurredAt))
                    .col(string(AuditEvent::Subject))
                    .col(integer(AuditEvent::OrganisationId))
                    .col(string(AuditEvent::Role))
                    .col(string(AuditEvent::Action))
                    .col(string(AuditEvent::AccessLevel))
                    .col(string_null(AuditEvent::OperationName))
                    .col(text(AuditEvent::Scope))
                    .col(big_integer(AuditEvent::RowCount))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AuditEvent::Table, AuditEvent::OrganisationId)
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            AuditEvent::Table,
            "ix_audit_event_time",
            &[AuditEvent::OccurredAt],
            false,
        )
        .await?;
        index(
            manager,
            AuditEvent::Table,
            "ix_audit_event_org",
            &[AuditEvent::OrganisationId, AuditEvent::OccurredAt],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEvent::Table.into_iden(),
            SharingAgreement::Table.into_iden(),
            PupilRecord::Table.into_iden(),
            Observation::Table.into_iden(),
            SyncRun::Table.into_iden(),
            Indicator::Table.into_iden(),
            School::Table.into_iden(),
            Organisation::Table.into_iden(),
            Region::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Region {
    Table,
    Code,
    Name,
}

#[derive(DeriveIden, Clone, Copy)]
enum Organisation {
    Table,
    Id,
    Kind,
    Code,
    Name,
    RegionCode,
}

#[derive(DeriveIden, Clone, Copy)]
enum School {
    Table,
    Urn,
    Name,
    Phase,
    EstablishmentType,
    LaId,
    TrustId,
    DioceseId,
    RegionCode,
    IsOpen,
    PupilsOnRoll,
    LastInspectionDate,
}

#[derive(DeriveIden, Clone, Copy)]
enum Indicator {
    Table,
    Code,
    Name,
    Unit,
    Polarity,
    Multiplier,
    Description,
}

#[derive(DeriveIden, Clone, Copy)]
enum Observation {
    Table,
    Id,
    IndicatorCode,
    Period,
    GeographicLevel,
    AreaCode,
    SchoolUrn,
    PupilGroup,
    Numerator,
    Denominator,
    Value,
    SourceOrganisationId,
    SyncRunId,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PupilRecord {
    Table,
    Id,
    PupilKey,
    Period,
    SchoolUrn,
    HomeLaCode,
    YearGroup,
    Disadvantaged,
    SenStatus,
    Eal,
    InCare,
    SessionsPossible,
    SessionsMissed,
    Suspensions,
    PermanentlyExcluded,
    LeftForEhe,
    MissingEducation,
    Ks2RwmExpected,
    Ks4Attainment8,
    Ks4Progress8,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SharingAgreement {
    Table,
    Id,
    ProviderId,
    ConsumerId,
    AccessLevel,
    Purpose,
    ValidFrom,
    ValidTo,
    Status,
    CreatedBy,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SyncRun {
    Table,
    Id,
    OrganisationId,
    Subject,
    Source,
    Status,
    IdempotencyKey,
    RequestHash,
    StartedAt,
    FinishedAt,
    RowsReceived,
    RowsWritten,
    RowsRejected,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditEvent {
    Table,
    Id,
    OccurredAt,
    Subject,
    OrganisationId,
    Role,
    Action,
    AccessLevel,
    OperationName,
    Scope,
    RowCount,
}
