//! Data sync: a change sequence on figures, a record of deleted figures, and what a
//! sync run needs to be retried safely and resumed.
//!
//! * `observation.change_seq` orders every write to a figure. The change feed pages by
//!   it, so it must never be handed out out of commit order: `feed_sequence` is one
//!   counter row that every writing transaction advances (and so locks) before it
//!   writes, which makes transactions take their numbers in the order they commit
//!   (argued in `api/src/sync/mod.rs`). Existing rows are numbered by id.
//! * `observation_deletion` keeps a deleted figure's key and the sequence number of
//!   its deletion, so partners following the feed learn about deletions too.
//! * `sync_run` gains its kind, a count of rows that were already up to date, an error
//!   message for failed runs, and an import checkpoint (byte offset and line of the
//!   last committed row) so an interrupted import resumes where it stopped.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The counter's one row.
const OBSERVATION_FEED: &str = "observation";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Observation::Table)
                    .add_column(big_integer(Observation::ChangeSeq).default(0))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared("UPDATE observation SET change_seq = id")
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_observation_change_seq")
                    .table(Observation::Table)
                    .col(Observation::ChangeSeq)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(FeedSequence::Table)
                    .col(string(FeedSequence::Name).primary_key())
                    .col(big_integer(FeedSequence::Value))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO feed_sequence (name, value) \
             SELECT '{OBSERVATION_FEED}', COALESCE(MAX(change_seq), 0) FROM observation"
        ))
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ObservationDeletion::Table)
                    .col(big_pk_auto(ObservationDeletion::Id))
                    .col(big_integer(ObservationDeletion::ChangeSeq))
                    .col(string(ObservationDeletion::IndicatorCode))
                    .col(string(ObservationDeletion::Period))
                    .col(string(ObservationDeletion::GeographicLevel))
                    .col(string(ObservationDeletion::AreaCode))
                    .col(integer_null(ObservationDeletion::SchoolUrn))
                    .col(string(ObservationDeletion::PupilGroup))
                    .col(big_integer_null(ObservationDeletion::SyncRunId))
                    .col(timestamp_with_time_zone(ObservationDeletion::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ObservationDeletion::Table, ObservationDeletion::SyncRunId)
                            .to(SyncRun::Table, SyncRun::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_observation_deletion_seq")
                    .table(ObservationDeletion::Table)
                    .col(ObservationDeletion::ChangeSeq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_observation_deletion_key")
                    .table(ObservationDeletion::Table)
                    .col(ObservationDeletion::IndicatorCode)
                    .col(ObservationDeletion::Period)
                    .col(ObservationDeletion::GeographicLevel)
                    .col(ObservationDeletion::AreaCode)
                    .col(ObservationDeletion::PupilGroup)
                    .unique()
                    .to_owned(),
            )
            .await?;

        // SQLite adds one column per ALTER TABLE.
        for column in [
            ColumnDef::new(SyncRun::Kind)
                .string()
                .not_null()
                .default("OBSERVATIONS")
                .to_owned(),
            ColumnDef::new(SyncRun::RowsUnchanged)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(SyncRun::Error).text().null().to_owned(),
            ColumnDef::new(SyncRun::CheckpointOffset)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(SyncRun::CheckpointLine)
                .big_integer()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(SyncRun::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ix_sync_run_org_started")
                    .table(SyncRun::Table)
                    .col(SyncRun::OrganisationId)
                    .col(SyncRun::StartedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("ix_sync_run_org_started").to_owned())
            .await?;
        for column in [
            SyncRun::Kind,
            SyncRun::RowsUnchanged,
            SyncRun::Error,
            SyncRun::CheckpointOffset,
            SyncRun::CheckpointLine,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(SyncRun::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(ObservationDeletion::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(FeedSequence::Table).to_owned())
            .await?;
        manager
            .drop_index(Index::drop().name("ux_observation_change_seq").to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Observation::Table)
                    .drop_column(Observation::ChangeSeq)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Observation {
    Table,
    ChangeSeq,
}

#[derive(DeriveIden)]
enum FeedSequence {
    Table,
    Name,
    Value,
}

#[derive(DeriveIden)]
enum ObservationDeletion {
    Table,
    Id,
    ChangeSeq,
    IndicatorCode,
    Period,
    GeographicLevel,
    AreaCode,
    SchoolUrn,
    PupilGroup,
    SyncRunId,
    DeletedAt,
}

#[derive(DeriveIden)]
enum SyncRun {
    Table,
    Id,
    OrganisationId,
    StartedAt,
    Kind,
    RowsUnchanged,
    Error,
    CheckpointOffset,
    CheckpointLine,
}
