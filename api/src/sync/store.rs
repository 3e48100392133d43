//! The SQL a sync runs: multi-row upserts that skip unchanged rows, deletions that
//! leave a record for the change feed, and the feed counter.
//!
//! Written as SQL text rather than through sea-query because the heart of it — "insert,
//! or update only if something differs" — is spelled differently by the two backends
//! (`IS DISTINCT FROM` in PostgreSQL, `IS NOT` in SQLite) and must stay one statement
//! per chunk of rows to be fast. Every value is a bound parameter.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

use super::rows::{Figure, FigureKey, PupilRow};

/// Rows per statement: 14 columns × 1,000 stays under SQLite's 32,766 bound
/// parameters and PostgreSQL's 65,535, and is large enough that round trips do not
/// dominate.
const ROWS_PER_STATEMENT: usize = 1_000;

/// The counter row behind `observation.change_seq`.
const OBSERVATION_FEED: &str = "observation";

/// A multi-row upsert on a table with a natural key.
struct Upsert {
    table: &'static str,
    columns: &'static [&'static str],
    /// The unique key the conflict is detected on.
    key: &'static [&'static str],
    /// Bookkeeping columns (who wrote it, when, its feed position): written with every
    /// change but not compared, so a resent row is recognised as unchanged. Every
    /// other column outside the key is compared (see [`Upsert::compared`]).
    bookkeeping: &'static [&'static str],
}

impl Upsert {
    /// `INSERT … VALUES (…), (…) ON CONFLICT …` for `rows` rows.
    fn sql(&self, backend: DbBackend, rows: usize) -> String {
        let width = self.columns.len();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            self.table,
            self.columns.join(", ")
        );
        for row in 0..rows {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for col in 0..width {
                if col > 0 {
                    sql.push_str(", ");
                }
                match backend {
                    DbBackend::Postgres => sql.push_str(&format!("${}", row * width + col + 1)),
                    _ => sql.push('?'),
                }
            }
            sql.push(')');
        }
        sql.push_str(&self.on_conflict(backend));
        sql
    }

    /// PostgreSQL: `INSERT … SELECT … FROM unnest($1, $2, …) ON CONFLICT …`, one array
    /// per column. The statement is the same whatever the number of rows, so it is
    /// prepared once, and binding a dozen arrays is far cheaper than binding thousands
    /// of scalars. `columns` are the `unnest` columns with their array types; each is
    /// selected as is, or through `NULLIF` when it is a nullable number: sea-query binds
    /// arrays without NULL elements, so NULL travels as a sentinel no real row can
    /// hold (-1 for a URN or count, NaN for a figure, which validation refuses). The
    /// remaining columns are the same for every row and follow as scalar parameters.
    fn unnest_sql(&self, columns: &[(&str, &str)]) -> String {
        let arrays: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| format!("${}::{ty}[]", i + 1))
            .collect();
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let mut scalars = 0;
        let selected: Vec<String> = self
            .columns
            .iter()
            .map(|c| match columns.iter().find(|(name, _)| name == c) {
                Some((_, "float8")) => format!("NULLIF(u.{c}, 'NaN')"),
                Some((_, "int4")) => format!("NULLIF(u.{c}, -1)"),
                Some(_) => format!("u.{c}"),
                None => {
                    scalars += 1;
                    format!("${}", columns.len() + scalars)
                }
            })
            .collect();
        format!(
            "INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS u({}){}",
            self.table,
            self.columns.join(", "),
            selected.join(", "),
            arrays.join(", "),
            names.join(", "),
            self.on_conflict(DbBackend::Postgres)
        )
    }

    /// Columns whose difference means the row changed.
    fn compared(&self) -> Vec<&'static str> {
        self.columns
            .iter()
            .copied()
            .filter(|c| !self.key.contains(c) && !self.bookkeeping.contains(c))
            .collect()
    }

    fn on_conflict(&self, backend: DbBackend) -> String {
        let compared = self.compared();
        let updates: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !self.key.contains(c))
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        let changed = match backend {
            DbBackend::Postgres => format!(
                "({}) IS DISTINCT FROM ({})",
                compared
                    .iter()
                    .map(|c| format!("{}.{c}", self.table))
                    .collect::<Vec<_>>()
                    .join(", "),
                compared
                    .iter()
                    .map(|c| format!("excluded.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => compared
                .iter()
                .map(|c| format!("{t}.{c} IS NOT excluded.{c}", t = self.table))
                .collect::<Vec<_>>()
                .join(" OR "),
        };
        format!(
            " ON CONFLICT ({}) DO UPDATE SET {} WHERE {changed}",
            self.key.join(", "),
            updates.join(", ")
        )
    }
}

const OBSERVATION: Upsert = Upsert {
    table: "observation",
    columns: &[
        "indicator_code",
        "period",
        "geographic_level",
        "area_code",
        "pupil_group",
        "school_urn",
        "school_count",
        "numerator",
        "denominator",
        "value",
        "source_organisation_id",
        "sync_run_id",
        "updated_at",
        "change_seq",
    ],
    key: &[
        "indicator_code",
        "period",
        "geographic_level",
        "area_code",
        "pupil_group",
    ],
    bookkeeping: &[
        "source_organisation_id",
        "sync_run_id",
        "updated_at",
        "change_seq",
    ],
};

const PUPIL_RECORD: Upsert = Upsert {
    table: "pupil_record",
    columns: &[
        "pupil_key",
        "period",
        "school_urn",
        "home_la_code",
        "year_group",
        "disadvantaged",
        "sen_status",
        "eal",
        "in_care",
        "sessions_possible",
        "sessions_missed",
        "suspensions",
        "permanently_excluded",
        "left_for_ehe",
        "missing_education",
        "ks2_rwm_expected",
        "ks4_attainment8",
        "ks4_progress8",
        "updated_at",
    ],
    key: &["pupil_key", "period", "school_urn"],
    bookkeeping: &["updated_at"],
};

/// A statement written once in PostgreSQL's `$n` spelling, given to SQLite as `?n`
/// (its numbered parameters). None of the hub's SQL has a `$` inside a string literal.
pub fn statement(
    backend: DbBackend,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => sql.to_owned(),
        _ => sql.replace('$', "?"),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Takes `count` change-feed positions and returns the first. The `UPDATE` locks the
/// counter row until the transaction ends, so concurrent writers queue here and take
/// their positions in the order they commit (see `sync`'s module docs).
pub async fn take_positions<C: ConnectionTrait>(db: &C, count: usize) -> Result<i64, DbErr> {
    let row = db
        .query_one_raw(statement(
            db.get_database_backend(),
            "UPDATE feed_sequence SET value = value + $1 WHERE name = $2 RETURNING value",
            [(count as i64).into(), OBSERVATION_FEED.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("feed_sequence has no observation row".to_owned()))?;
    let last: i64 = row.try_get("", "value")?;
    Ok(last - count as i64 + 1)
}

/// The last position taken by a committed write. Following the feed from here misses
/// nothing: a write still in flight holds the counter and takes later positions.
pub async fn head<C: ConnectionTrait>(db: &C) -> Result<i64, DbErr> {
    let row = db
        .query_one_raw(statement(
            db.get_database_backend(),
            "SELECT value FROM feed_sequence WHERE name = $1",
            [OBSERVATION_FEED.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("feed_sequence has no observation row".to_owned()))?;
    row.try_get("", "value")
}

/// Sets the counter (after the seed has numbered its rows itself).
pub async fn set_position<C: ConnectionTrait>(db: &C, value: i64) -> Result<(), DbErr> {
    db.execute_raw(statement(
        db.get_database_backend(),
        "UPDATE feed_sequence SET value = $1 WHERE name = $2",
        [value.into(), OBSERVATION_FEED.into()],
    ))
    .await?;
    Ok(())
}

/// Who wrote a set of rows, and when.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    pub source_organisation_id: Option<i32>,
    pub sync_run_id: i64,
    pub at: DateTime<Utc>,
}

/// The figure columns bound as arrays on PostgreSQL, with their types.
const OBSERVATION_ARRAYS: &[(&str, &str)] = &[
    ("indicator_code", "text"),
    ("period", "text"),
    ("geographic_level", "text"),
    ("area_code", "text"),
    ("pupil_group", "text"),
    ("school_urn", "int4"),
    ("school_count", "int4"),
    ("numerator", "float8"),
    ("denominator", "float8"),
    ("value", "float8"),
    ("change_seq", "int8"),
];

/// Figures per PostgreSQL statement: arrays have no parameter limit, but a bounded
/// statement keeps one round trip's memory small.
const FIGURES_PER_ARRAY_STATEMENT: usize = 10_000;

/// Upserts figures, numbering them from `first_position`; returns how many rows were
/// inserted or changed (unchanged rows are not touched and keep their position).
pub async fn upsert_figures<C: ConnectionTrait>(
    db: &C,
    figures: &[Figure],
    first_position: i64,
    stamp: Stamp,
) -> Result<u64, DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        return upsert_figures_unnest(db, figures, first_position, stamp).await;
    }
    let mut written = 0;
    for (chunk_index, chunk) in figures.chunks(ROWS_PER_STATEMENT).enumerate() {
        let base = first_position + (chunk_index * ROWS_PER_STATEMENT) as i64;
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * OBSERVATION.columns.len());
        for (i, f) in chunk.iter().enumerate() {
            values.extend([
                f.indicator_code.clone().into(),
                f.period.clone().into(),
                f.level.as_str().into(),
                f.area_code.clone().into(),
                f.pupil_group.as_str().into(),
                f.school_urn.into(),
                f.school_count.into(),
                f.numerator.into(),
                f.denominator.into(),
                f.value.into(),
                stamp.source_organisation_id.into(),
                Some(stamp.sync_run_id).into(),
                stamp.at.into(),
                (base + i as i64).into(),
            ]);
        }
        written += execute(db, &OBSERVATION, chunk.len(), values).await?;
    }
    Ok(written)
}

async fn upsert_figures_unnest<C: ConnectionTrait>(
    db: &C,
    figures: &[Figure],
    first_position: i64,
    stamp: Stamp,
) -> Result<u64, DbErr> {
    let sql = OBSERVATION.unnest_sql(OBSERVATION_ARRAYS);
    let mut written = 0;
    for (chunk_index, chunk) in figures.chunks(FIGURES_PER_ARRAY_STATEMENT).enumerate() {
        let base = first_position + (chunk_index * FIGURES_PER_ARRAY_STATEMENT) as i64;
        let text = |f: fn(&Figure) -> String| -> Value {
            chunk.iter().map(f).collect::<Vec<String>>().into()
        };
        let int = |f: fn(&Figure) -> Option<i32>| -> Value {
            chunk
                .iter()
                .map(|r| f(r).unwrap_or(-1))
                .collect::<Vec<i32>>()
                .into()
        };
        let number = |f: fn(&Figure) -> Option<f64>| -> Value {
            chunk
                .iter()
                .map(|r| f(r).unwrap_or(f64::NAN))
                .collect::<Vec<f64>>()
                .into()
        };
        let values: Vec<Value> = vec![
            text(|f| f.indicator_code.clone()),
            text(|f| f.period.clone()),
            text(|f| f.level.as_str().to_owned()),
            text(|f| f.area_code.clone()),
            text(|f| f.pupil_group.as_str().to_owned()),
            int(|f| f.school_urn),
            int(|f| f.school_count),
            number(|f| f.numerator),
            number(|f| f.denominator),
            number(|f| f.value),
            (0..chunk.len() as i64)
                .map(|i| base + i)
                .collect::<Vec<i64>>()
                .into(),
            stamp.source_organisation_id.into(),
            Some(stamp.sync_run_id).into(),
            stamp.at.into(),
        ];
        written += db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql.clone(),
                values,
            ))
            .await?
            .rows_affected();
    }
    Ok(written)
}

/// Upserts pupil records; returns how many were inserted or changed.
pub async fn upsert_pupils<C: ConnectionTrait>(
    db: &C,
    rows: &[PupilRow],
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut written = 0;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * PUPIL_RECORD.columns.len());
        for r in chunk {
            values.extend([
                r.pupil_key.clone().into(),
                r.period.clone().into(),
                r.school_urn.into(),
                r.home_la_code.clone().into(),
                r.year_group.into(),
                r.disadvantaged.into(),
                r.sen_status.as_str().into(),
                r.eal.into(),
                r.in_care.into(),
                r.sessions_possible.into(),
                r.sessions_missed.into(),
                r.suspensions.into(),
                r.permanently_excluded.into(),
                r.left_for_ehe.into(),
                r.missing_education.into(),
                r.ks2_rwm_expected.into(),
                r.ks4_attainment8.into(),
                r.ks4_progress8.into(),
                at.into(),
            ]);
        }
        written += execute(db, &PUPIL_RECORD, chunk.len(), values).await?;
    }
    Ok(written)
}

async fn execute<C: ConnectionTrait>(
    db: &C,
    upsert: &Upsert,
    rows: usize,
    values: Vec<Value>,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            upsert.sql(backend, rows),
            values,
        ))
        .await?;
    Ok(result.rows_affected())
}

/// Deletes figures by key and records each deletion at its own feed position, from
/// `first_position`. Returns how many existed (and so were deleted).
pub async fn delete_figures<C: ConnectionTrait>(
    db: &C,
    keys: &[FigureKey],
    first_position: i64,
    stamp: Stamp,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let mut deleted = 0;
    for (i, key) in keys.iter().enumerate() {
        let values: Vec<Value> = vec![
            key.indicator_code.clone().into(),
            key.period.clone().into(),
            key.level.as_str().into(),
            key.area_code.clone().into(),
            key.pupil_group.as_str().into(),
        ];
        let removed = db
            .execute_raw(statement(
                backend,
                "DELETE FROM observation WHERE indicator_code = $1 AND period = $2 \
                 AND geographic_level = $3 AND area_code = $4 AND pupil_group = $5",
                values.clone(),
            ))
            .await?
            .rows_affected();
        if removed == 0 {
            continue;
        }
        deleted += removed;
        let mut tombstone = values;
        tombstone.extend([
            key.school_urn.into(),
            (first_position + i as i64).into(),
            Some(stamp.sync_run_id).into(),
            stamp.at.into(),
        ]);
        db.execute_raw(statement(
            backend,
            "INSERT INTO observation_deletion (indicator_code, period, geographic_level, \
             area_code, pupil_group, school_urn, change_seq, sync_run_id, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (indicator_code, period, \
             geographic_level, area_code, pupil_group) DO UPDATE SET \
             change_seq = excluded.change_seq, sync_run_id = excluded.sync_run_id, \
             deleted_at = excluded.deleted_at",
            tombstone,
        ))
        .await?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_upsert_numbers_parameters_and_compares_as_a_row() {
        let sql = PUPIL_RECORD.sql(DbBackend::Postgres, 2);
        assert!(sql.contains("($20, $21"), "{sql}");
        assert!(sql.ends_with("excluded.ks4_progress8)"), "{sql}");
        assert!(sql.contains("ON CONFLICT (pupil_key, period, school_urn)"));
        assert!(!sql.contains("pupil_key = excluded.pupil_key"));
        assert!(sql.contains("IS DISTINCT FROM"));
    }

    #[test]
    fn postgres_unnest_restores_nulls_and_binds_shared_columns_once() {
        let sql = OBSERVATION.unnest_sql(OBSERVATION_ARRAYS);
        assert!(sql.contains("unnest($1::text[], $2::text[]"), "{sql}");
        assert!(sql.contains("NULLIF(u.school_urn, -1)"), "{sql}");
        assert!(sql.contains("NULLIF(u.numerator, 'NaN')"), "{sql}");
        assert!(sql.contains("u.change_seq"), "{sql}");
        // source organisation, sync run and time follow the 11 arrays.
        assert!(sql.contains("$12, $13, $14"), "{sql}");
        assert!(!sql.contains("$15"), "{sql}");
    }

    #[test]
    fn sqlite_upsert_compares_column_by_column() {
        let sql = OBSERVATION.sql(DbBackend::Sqlite, 1);
        assert_eq!(sql.matches('?').count(), OBSERVATION.columns.len());
        assert!(sql.contains("observation.value IS NOT excluded.value"));
        assert!(!sql.contains("updated_at IS NOT"));
    }
}
