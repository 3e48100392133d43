//! Confidential partnership records (issue 23).
//!
//! * `support_request.confidential`: a request marked confidential is seen only by the
//!   two sides and the schools' own LA or trust, never by the inspectorate. Existing
//!   requests were posted to the whole region, so they stay open (`false`).
//! * Buddy pairings are made by request and acceptance: who answered the request and
//!   when (`responded_by`, `responded_at`), and who ended it (`ended_by`). Existing
//!   pairings were made before consent was asked and stay `ACTIVE`, with no answer
//!   recorded.
//!
//! SQLite adds one column per `ALTER TABLE`, so each column is its own statement.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SupportRequest::Table)
                    .add_column(boolean(SupportRequest::Confidential).default(false))
                    .to_owned(),
            )
            .await?;
        for column in [
            string_null(BuddyPairing::RespondedBy),
            timestamp_with_time_zone_null(BuddyPairing::RespondedAt),
            string_null(BuddyPairing::EndedBy),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(BuddyPairing::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            BuddyPairing::EndedBy,
            BuddyPairing::RespondedAt,
            BuddyPairing::RespondedBy,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(BuddyPairing::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(SupportRequest::Table)
                    .drop_column(SupportRequest::Confidential)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum SupportRequest {
    Table,
    Confidential,
}

#[derive(DeriveIden, Clone, Copy)]
enum BuddyPairing {
    Table,
    RespondedBy,
    RespondedAt,
    EndedBy,
}
