//! Support across regions (issue 23): a request or an offer can be opened beyond its
//! region — to named neighbouring regions (`REGIONS`, listed in
//! `support_request_region` / `support_offer_region`) or nationally (`NATIONAL`).
//! Everything posted before stays where it was posted (`REGION`).

use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SupportRequest::Table)
                    .add_column(string(SupportRequest::Reach).default("REGION"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SupportOffer::Table)
                    .add_column(string(SupportOffer::Reach).default("REGION"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SupportRequestRegion::Table)
                    .col(integer(SupportRequestRegion::SupportRequestId))
                    .col(string(SupportRequestRegion::RegionCode))
                    .primary_key(
                        Index::create()
                            .col(SupportRequestRegion::SupportRequestId)
                            .col(SupportRequestRegion::RegionCode),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                SupportRequestRegion::Table,
                                SupportRequestRegion::SupportRequestId,
                            )
                            .to(SupportRequest::Table, SupportRequest::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                SupportRequestRegion::Table,
                                SupportRequestRegion::RegionCode,
                            )
                            .to(Region::Table, Region::Code),
                    )
                    .to_owned(),
            )
            .await?;
        // "Opened to my region" is the visibility subquery.
        index(
            manager,
            SupportRequestRegion::Table,
            "ix_support_request_region_region",
            &[SupportRequestRegion::RegionCode],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(SupportOfferRegion::Table)
                    .col(integer(SupportOfferRegion::SupportOfferId))
                    .col(string(SupportOfferRegion::RegionCode))
                    .primary_key(
                        Index::create()
                            .col(SupportOfferRegion::SupportOfferId)
                            .col(SupportOfferRegion::RegionCode),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                SupportOfferRegion::Table,
                                SupportOfferRegion::SupportOfferId,
                            )
                            .to(SupportOffer::Table, SupportOffer::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SupportOfferRegion::Table, SupportOfferRegion::RegionCode)
                            .to(Region::Table, Region::Code),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            SupportOfferRegion::Table,
            "ix_support_offer_region_region",
            &[SupportOfferRegion::RegionCode],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SupportOfferRegion::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SupportRequestRegion::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SupportOffer::Table)
                    .drop_column(SupportOffer::Reach)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SupportRequest::Table)
                    .drop_column(SupportRequest::Reach)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum SupportRequest {
    Table,
    Id,
    Reach,
}

#[derive(DeriveIden, Clone, Copy)]
enum SupportOffer {
    Table,
    Id,
    Reach,
}

#[derive(DeriveIden, Clone, Copy)]
enum SupportRequestRegion {
    Table,
    SupportRequestId,
    RegionCode,
}

#[derive(DeriveIden, Clone, Copy)]
enum SupportOfferRegion {
    Table,
    SupportOfferId,
    RegionCode,
}

#[derive(DeriveIden, Clone, Copy)]
enum Region {
    Table,
    Code,
}
