//! One published figure in tidy (long) form, as in the government's open statistics
//! files. Unique on indicator + period + geographic level + area + pupil group.

use sea_orm::entity::prelude::*;
use sea_orm::{FromQueryResult, QueryResult, Select};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "observation")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub indicator_code: String,
    /// Academic year, `2023/24`.
    pub period: String,
    /// `SCHOOL`, `LA`, `REGION` or `NATIONAL`.
    pub geographic_level: String,
    /// URN, LA code, region code or `E92000001`.
    pub area_code: String,
    /// Set for `SCHOOL` rows so figures join to the register with a real foreign key.
    pub school_urn: Option<i32>,
    pub pupil_group: String,
    /// How many schools the figure is built from (1 at `SCHOOL` level); disclosure
    /// control withholds area figures built from too few. Null when a provider did
    /// not say, which disclosure control treats as too few.
    pub school_count: Option<i32>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub value: Option<f64>,
    pub source_organisation_id: Option<i32>,
    pub sync_run_id: Option<i64>,
    pub updated_at: DateTimeUtc,
    /// Position of the latest write to this figure in the change feed; numbers are
    /// handed out in commit order (see `feed_sequence`).
    pub change_seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::indicator::Entity",
        from = "Column::IndicatorCode",
        to = "super::indicator::Column::Code"
    )]
    Indicator,
    #[sea_orm(
        belongs_to = "super::school::Entity",
        from = "Column::SchoolUrn",
        to = "super::school::Column::Urn"
    )]
    School,
}

impl ActiveModelBehavior for ActiveModel {}

/// A full observation row decoded by column position rather than by name.
///
/// The derived decoder builds each column's name (`format!("{prefix}{column}")`) and
/// looks it up for every value it reads; for the few thousand figures of one dashboard
/// answer that was a seventh of the request's CPU time. Use it only with
/// `Entity::find()` (optionally filtered and ordered), whose select list is every
/// column in declaration order — `Column as usize` is then the position, which the
/// unit test below pins.
pub struct ByPosition(pub Model);

impl FromQueryResult for ByPosition {
    fn from_query_result(res: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        if !pre.is_empty() {
            // Prefixed selects (joins) name their columns: decode by name.
            return Model::from_query_result(res, pre).map(ByPosition);
        }
        let at = |column: Column| column as usize;
        Ok(ByPosition(Model {
            id: res.try_get_by_index(at(Column::Id))?,
            indicator_code: res.try_get_by_index(at(Column::IndicatorCode))?,
            period: res.try_get_by_index(at(Column::Period))?,
            geographic_level: res.try_get_by_index(at(Column::GeographicLevel))?,
            area_code: res.try_get_by_index(at(Column::AreaCode))?,
            school_urn: res.try_get_by_index(at(Column::SchoolUrn))?,
            pupil_group: res.try_get_by_index(at(Column::PupilGroup))?,
            school_count: res.try_get_by_index(at(Column::SchoolCount))?,
            numerator: res.try_get_by_index(at(Column::Numerator))?,
            denominator: res.try_get_by_index(at(Column::Denominator))?,
            value: res.try_get_by_index(at(Column::Value))?,
            source_organisation_id: res.try_get_by_index(at(Column::SourceOrganisationId))?,
            sync_run_id: res.try_get_by_index(at(Column::SyncRunId))?,
            updated_at: res.try_get_by_index(at(Column::UpdatedAt))?,
            change_seq: res.try_get_by_index(at(Column::ChangeSeq))?,
        }))
    }
}

/// Every row a figure query selects, decoded by position (see [`ByPosition`]).
pub async fn all<C: ConnectionTrait>(db: &C, query: Select<Entity>) -> Result<Vec<Model>, DbErr> {
    let rows = query.into_model::<ByPosition>().all(db).await?;
    Ok(rows.into_iter().map(|ByPosition(model)| model).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{DbBackend, Iterable, QueryTrait};

    /// `ByPosition` reads column `c` at position `c as usize`: the select list must be
    /// the columns in declaration order.
    #[test]
    fn select_lists_columns_in_declaration_order() {
        let sql = Entity::find().build(DbBackend::Postgres).to_string();
        let listed = sql
            .trim_start_matches("SELECT ")
            .split(" FROM ")
            .next()
            .unwrap_or_default()
            .to_owned();
        let expected: Vec<String> = Column::iter()
            .enumerate()
            .map(|(i, column)| {
                assert_eq!(column as usize, i, "{column:?}");
                format!(r#""observation"."{}""#, column.to_string())
            })
            .collect();
        assert_eq!(listed, expected.join(", "));
    }
}
