//! Several reviewers of one self-evaluation (issue 23): each partner's review is its
//! own record in `self_evaluation_review`, one per reviewing organisation, naming the
//! version it read. Until now the one review lived on the evaluation itself
//! (`reviewed_at`, `reviewed_by_organisation_id`, `review_comment`); those reviews are
//! copied across, and the columns are left in place, unread, for `down`.

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
                    .table(SelfEvaluationReview::Table)
                    .col(pk_auto(SelfEvaluationReview::Id))
                    .col(integer(SelfEvaluationReview::SelfEvaluationId))
                    .col(integer(SelfEvaluationReview::OrganisationId))
                    .col(integer(SelfEvaluationReview::Version))
                    .col(text(SelfEvaluationReview::Comment))
                    .col(string(SelfEvaluationReview::ReviewedBy))
                    .col(timestamp_with_time_zone(SelfEvaluationReview::ReviewedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                SelfEvaluationReview::Table,
                                SelfEvaluationReview::SelfEvaluationId,
                            )
                            .to(SelfEvaluation::Table, SelfEvaluation::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                SelfEvaluationReview::Table,
                                SelfEvaluationReview::OrganisationId,
                            )
                            .to(Organisation::Table, Organisation::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One review per partner organisation: two officers of the same partner
        // reviewing at once cannot both commit.
        index(
            manager,
            SelfEvaluationReview::Table,
            "ux_self_evaluation_review_organisation",
            &[
                SelfEvaluationReview::SelfEvaluationId,
                SelfEvaluationReview::OrganisationId,
            ],
            true,
        )
        .await?;
        // The reviewer's `sub` was never kept; the copies say so.
        let existing = Query::select()
            .columns([
                SelfEvaluation::Id,
                SelfEvaluation::ReviewedByOrganisationId,
                SelfEvaluation::CurrentVersion,
            ])
            .expr(Func::coalesce([
                Expr::col(SelfEvaluation::ReviewComment),
                Expr::val(""),
            ]))
            .expr(Expr::val("unrecorded"))
            .column(SelfEvaluation::ReviewedAt)
            .from(SelfEvaluation::Table)
            .and_where(Expr::col(SelfEvaluation::ReviewedByOrganisationId).is_not_null())
            .and_where(Expr::col(SelfEvaluation::ReviewedAt).is_not_null())
            .to_owned();
        let copy = Query::insert()
            .into_table(SelfEvaluationReview::Table)
            .columns([
                SelfEvaluationReview::SelfEvaluationId,
                SelfEvaluationReview::OrganisationId,
                SelfEvaluationReview::Version,
                SelfEvaluationReview::Comment,
                SelfEvaluationReview::ReviewedBy,
                SelfEvaluationReview::ReviewedAt,
            ])
            .select_from(existing)
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        manager.exec_stmt(copy).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SelfEvaluationReview::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum SelfEvaluationReview {
    Table,
    Id,
    SelfEvaluationId,
    OrganisationId,
    Version,
    Comment,
    ReviewedBy,
    ReviewedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SelfEvaluation {
    Table,
    Id,
    CurrentVersion,
    ReviewedAt,
    ReviewedByOrganisationId,
    ReviewComment,
}

#[derive(DeriveIden, Clone, Copy)]
enum Organisation {
    Table,
    Id,
}
