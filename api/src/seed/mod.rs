//! Deterministic demo data: a plausible England-wide baseline for trying the hub out,
//! for tests, and for load testing.
//!
//! The geography is real (regions, every local authority with its DfE code, dioceses);
//! schools, trusts and pupils are simulated. The same scale and pupil-key secret always
//! produce the same rows, so screenshots, tests and bug reports stay comparable.
//!
//! The pipeline has three stages, each in its own module:
//!
//! - [`reference`]: static real-world reference data and the indicator catalogue;
//! - [`register`]: which schools and trusts exist at a scale (pure, built up front);
//! - [`simulate`]: pupils, school by school, and every figure derived from them (pure);
//! - [`partnership`]: the default signal rules and a few partnership records.
//!
//! This module only orchestrates and writes. It writes everything in one transaction (a
//! half-seeded database would be worse than an empty one) and streams: schools are
//! simulated and written an LA at a time, so even the national scale (~5 million
//! observations) never holds more than a batch of rows in memory. Only the area totals
//! (LA, region, England) are kept for the whole run, and written last.

mod partnership;
mod random;
mod reference;
mod register;
mod simulate;

use std::collections::HashMap;

use chrono::{DateTime, NaiveTime, Utc};
use entities::{indicator, observation, organisation, pupil_record, region, school};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, ConnectionTrait, DatabaseConnection,
    DbErr, EntityTrait, TransactionTrait,
};

pub use crate::config::Scale;
use crate::domain::{OrganisationKind, Polarity, Unit};
use reference::{DIOCESES, LOCAL_AUTHORITIES, Metric, OTHER_PARTNERS, REGIONS};
use register::{DATA_DATE, Register, SchoolPlan};
use simulate::{AreaTotals, ObservationRow, PupilRow, SchoolOutput};

/// Rows written by [`seed`].
#[derive(Debug, Default, Clone)]
pub struct SeedSummary {
    pub regions: u64,
    pub organisations: u64,
    pub schools: u64,
    pub observations: u64,
    pub pupil_records: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("the database already holds data; seed only fills an empty database")]
    NotEmpty,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The two neighbouring LAs whose schools get pupil records: Hampshire (850) and
/// Southampton (852). Pupil-level data is stored for one cross-border pair only: enough
/// to demonstrate pupil-level access and residence-based scope without multiplying the
/// database size by the number of pupils in England.
pub const PUPIL_RECORD_LAS: [&str; 2] = ["850", "852"];

/// Rows per `INSERT` statement. The widest table (`pupil_record`) has 20 columns, so a
/// statement binds at most 20,000 parameters: under SQLite's 32,766 and PostgreSQL's
/// 65,535, and large enough that round trips do not dominate.
const ROWS_PER_INSERT: usize = 1_000;

/// Schools simulated between writes. Bounds memory (a batch's pupil records) while
/// keeping the school inserts multi-row.
const SCHOOLS_PER_BATCH: usize = 50;

/// `updated_at` of every seeded row: a fixed instant, so output is deterministic.
const UPDATED_AT: DateTime<Utc> = DATA_DATE.and_time(NaiveTime::MIN).and_utc();

/// True when the region table has rows.
pub async fn is_seeded(db: &DatabaseConnection) -> Result<bool, DbErr> {
    has_regions(db).await
}

async fn has_regions(db: &impl ConnectionTrait) -> Result<bool, DbErr> {
    Ok(region::Entity::find().one(db).await?.is_some())
}

/// Fills an empty database. Deterministic: the same scale and secret always produce the
/// same rows (the secret only affects pupil keys).
///
/// `progress` receives short human-readable lines as the work proceeds.
pub async fn seed(
    db: &DatabaseConnection,
    scale: Scale,
    pupil_key_secret: &[u8],
    progress: &(dyn Fn(&str) + Sync),
) -> Result<SeedSummary, SeedError> {
    let txn = db.begin().await?;
    // Checked inside the transaction so two racing seeds cannot both pass; the loser
    // fails on the region key instead of writing a second copy.
    if has_regions(&txn).await? {
        return Err(SeedError::NotEmpty);
    }
    let register = register::build(scale);
    let regions = insert_regions(&txn).await?;
    progress(&format!("regions: {regions}"));
    let indicators = insert_indicators(&txn).await?;
    progress(&format!("indicators: {indicators}"));
    let organisations = insert_organisations(&txn, &register).await?;
    progress(&format!(
        "organisations: {}",
        thousands(organisations.len() as u64)
    ));

    let total_schools = register.schools.len();
    progress(&format!("schools: {}", thousands(total_schools as u64)));
    let mut totals = AreaTotals::default();
    let mut observations = Batch::default();
    let mut pupils = Batch::default();
    let mut done = 0;
    let mut next_report = 1;
    // Seeded figures take the first change-feed positions, in insertion order, so a
    // partner reading the feed from the start receives the whole baseline.
    let mut feed = FeedPositions::default();
    for la in &register.las {
        for batch in register.schools[la.schools.clone()].chunks(SCHOOLS_PER_BATCH) {
            let outputs: Vec<SchoolOutput> = batch
                .iter()
                .map(|school| {
                    simulate::run_school(school, la.effect, pupil_key_secret, &mut totals)
                })
                .collect();
            let schools = batch
                .iter()
                .zip(&outputs)
                .map(|(plan, output)| {
                    school_model(plan, output.pupils_on_roll, &register, &organisations)
                })
                .collect::<Result<Vec<_>, DbErr>>()?;
            insert_all(&txn, schools).await?;
            // Figures and records follow their schools, which now exist for the
            // foreign keys.
            for output in outputs {
                for row in output.observations {
                    observations
                        .push(&txn, observation_model(row, feed.next()))
                        .await?;
                }
                for row in output.pupil_records {
                    pupils.push(&txn, pupil_record_model(row)).await?;
                }
            }
            done += batch.len();
        }
        // Report about every tenth of the way.
        if done > 0 && done * 10 >= next_report * total_schools {
            next_report = done * 10 / total_schools + 1;
            progress(&format!(
                "schools {}/{}: observations {}, pupil records {}",
                thousands(done as u64),
                thousands(total_schools as u64),
                thousands(observations.written + observations.rows.len() as u64),
                thousands(pupils.written + pupils.rows.len() as u64),
            ));
        }
    }

    for row in totals.rows() {
        observations
            .push(&txn, observation_model(row, feed.next()))
            .await?;
    }
    observations.flush(&txn).await?;
    pupils.flush(&txn).await?;
    feed.save(&txn).await?;
    let summary = SeedSummary {
        regions,
        organisations: organisations.len() as u64,
        schools: total_schools as u64,
        observations: observations.written,
        pupil_records: pupils.written,
    };
    progress(&format!(
        "observations: {} ({} for LAs, regions and England)",
        thousands(summary.observations),
        thousands(totals.row_count() as u64)
    ));
    progress(&format!(
        "pupil records: {}",
        thousands(summary.pupil_records)
    ));
    let partnership = partnership::seed(&txn, UPDATED_AT).await?;
    progress(&format!(
        "signal rules: {}; partnership demo records: {}",
        partnership.signal_rules, partnership.records
    ));

    txn.commit().await?;
    crate::db::analyze(db, &[]).await?;
    progress("planner statistics refreshed");
    Ok(summary)
}

/// Buffers rows of one table and writes them `ROWS_PER_INSERT` at a time.
struct Batch<A> {
    rows: Vec<A>,
    written: u64,
}

impl<A> Default for Batch<A> {
    fn default() -> Self {
        Batch {
            rows: Vec::with_capacity(ROWS_PER_INSERT),
            written: 0,
        }
    }
}

impl<A: ActiveModelTrait + Send> Batch<A> {
    async fn push(&mut self, db: &impl ConnectionTrait, row: A) -> Result<(), DbErr> {
        self.rows.push(row);
        if self.rows.len() >= ROWS_PER_INSERT {
            self.flush(db).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        let rows = std::mem::replace(&mut self.rows, Vec::with_capacity(ROWS_PER_INSERT));
        self.written += rows.len() as u64;
        A::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
        Ok(())
    }
}

/// Inserts rows in statements of `ROWS_PER_INSERT`; returns how many were written.
async fn insert_all<A: ActiveModelTrait + Send>(
    db: &impl ConnectionTrait,
    rows: Vec<A>,
) -> Result<u64, DbErr> {
    let mut batch = Batch::default();
    for row in rows {
        batch.push(db, row).await?;
    }
    batch.flush(db).await?;
    Ok(batch.written)
}

async fn insert_regions(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let rows = REGIONS.iter().map(|r| region::ActiveModel {
        code: Set(r.code.to_owned()),
        name: Set(r.name.to_owned()),
    });
    insert_all(db, rows.collect()).await
}

async fn insert_indicators(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let rows = Metric::ALL.iter().map(|metric| {
        let def = metric.def();
        indicator::ActiveModel {
            code: Set(def.code.to_owned()),
            name: Set(def.name.to_owned()),
            unit: Set(Unit::as_str(def.unit).to_owned()),
            polarity: Set(Polarity::as_str(def.polarity).to_owned()),
            multiplier: Set(def.multiplier),
            description: Set(def.description.to_owned()),
        }
    });
    insert_all(db, rows.collect()).await
}

/// Organisation ids by natural key `(kind, code)`, as assigned by the database.
struct OrganisationIds(HashMap<(OrganisationKind, String), i32>);

impl OrganisationIds {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, kind: OrganisationKind, code: &str) -> Result<i32, DbErr> {
        self.0
            .get(&(kind, code.to_owned()))
            .copied()
            .ok_or_else(|| {
                DbErr::Custom(format!("seed: organisation {kind}:{code} was not written"))
            })
    }
}

/// Writes every partner organisation, then reads the ids back. Ids are left to the
/// database (rather than chosen here) so that PostgreSQL's sequence stays in step for
/// organisations created later through the API.
async fn insert_organisations(
    db: &impl ConnectionTrait,
    register: &Register,
) -> Result<OrganisationIds, DbErr> {
    let mut rows: Vec<(OrganisationKind, String, String, Option<&str>)> = Vec::new();
    for la in &LOCAL_AUTHORITIES {
        rows.push((
            OrganisationKind::LocalAuthority,
            la.code.to_owned(),
            la.name.to_owned(),
            Some(la.region),
        ));
    }
    for region in &REGIONS {
        let name = format!("Regions Group — {}", region.name);
        rows.push((
            OrganisationKind::RscOffice,
            region.code.to_owned(),
            name,
            Some(region.code),
        ));
    }
    for region in &REGIONS {
        let name = format!("{} inspection team", region.name);
        rows.push((
            OrganisationKind::Inspectorate,
            region.code.to_owned(),
            name,
            Some(region.code),
        ));
    }
    for diocese in &DIOCESES {
        rows.push((
            OrganisationKind::Diocese,
            diocese.code.to_owned(),
            diocese.name.to_owned(),
            Some(diocese.region),
        ));
    }
    for trust in &register.trusts {
        rows.push((
            OrganisationKind::Trust,
            trust.uid.clone(),
            trust.name.clone(),
            Some(trust.region),
        ));
    }
    for school in &register.schools {
        rows.push((
            OrganisationKind::School,
            school.urn.to_string(),
            school.name.clone(),
            Some(school.region()),
        ));
    }
    rows.push((
        OrganisationKind::Hub,
        "HUB".to_owned(),
        "Baseline Hub operations".to_owned(),
        None,
    ));
    for (code, name) in OTHER_PARTNERS {
        rows.push((
            OrganisationKind::Other,
            code.to_owned(),
            name.to_owned(),
            None,
        ));
    }

    let models = rows
        .into_iter()
        .map(|(kind, code, name, region)| organisation::ActiveModel {
            id: NotSet,
            kind: Set(kind.as_str().to_owned()),
            code: Set(code),
            name: Set(name),
            region_code: Set(region.map(str::to_owned)),
        });
    insert_all(db, models.collect()).await?;

    let ids = organisation::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .filter_map(|org| Some(((OrganisationKind::parse(&org.kind)?, org.code), org.id)))
        .collect();
    Ok(OrganisationIds(ids))
}

fn school_model(
    plan: &SchoolPlan,
    pupils_on_roll: i32,
    register: &Register,
    ids: &OrganisationIds,
) -> Result<school::ActiveModel, DbErr> {
    let trust_id = match plan.trust.and_then(|t| register.trusts.get(t)) {
        Some(trust) => Some(ids.get(OrganisationKind::Trust, &trust.uid)?),
        None => None,
    };
    let diocese_id = match plan.diocese {
        Some(code) => Some(ids.get(OrganisationKind::Diocese, code)?),
        None => None,
    };
    Ok(school::ActiveModel {
        urn: Set(plan.urn),
        name: Set(plan.name.clone()),
        phase: Set(plan.phase.as_str().to_owned()),
        establishment_type: Set(plan.establishment_type.as_str().to_owned()),
        la_id: Set(ids.get(OrganisationKind::LocalAuthority, plan.la.code)?),
        trust_id: Set(trust_id),
        diocese_id: Set(diocese_id),
        region_code: Set(plan.region().to_owned()),
        is_open: Set(plan.is_open()),
        pupils_on_roll: Set(pupils_on_roll),
        last_inspection_date: Set(plan.last_inspection),
    })
}

/// Hands out change-feed positions to seeded figures and records the last one.
#[derive(Default)]
struct FeedPositions {
    last: i64,
}

impl FeedPositions {
    fn next(&mut self) -> i64 {
        self.last += 1;
        self.last
    }

    async fn save(&self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        crate::sync::store::set_position(db, self.last).await
    }
}

fn observation_model(row: ObservationRow, change_seq: i64) -> observation::ActiveModel {
    observation::ActiveModel {
        id: NotSet,
        indicator_code: Set(row.indicator_code.to_owned()),
        period: Set(row.period.to_owned()),
        geographic_level: Set(row.level.as_str().to_owned()),
        area_code: Set(row.area_code),
        school_urn: Set(row.school_urn),
        school_count: Set(Some(row.school_count)),
        pupil_group: Set(row.group.as_str().to_owned()),
        numerator: Set(Some(row.numerator)),
        denominator: Set(row.denominator),
        value: Set(Some(row.value)),
        source_organisation_id: Set(None),
        sync_run_id: Set(None),
        updated_at: Set(UPDATED_AT),
        change_seq: Set(change_seq),
    }
}

fn pupil_record_model(row: PupilRow) -> pupil_record::ActiveModel {
    pupil_record::ActiveModel {
        id: NotSet,
        pupil_key: Set(row.pupil_key),
        period: Set(row.period.to_owned()),
        school_urn: Set(row.school_urn),
        home_la_code: Set(row.home_la_code.to_owned()),
        year_group: Set(row.year_group),
        disadvantaged: Set(row.disadvantaged),
        sen_status: Set(row.sen_status.as_str().to_owned()),
        eal: Set(row.eal),
        in_care: Set(row.in_care),
        sessions_possible: Set(row.sessions_possible),
        sessions_missed: Set(row.sessions_missed),
        suspensions: Set(row.suspensions),
        permanently_excluded: Set(row.permanently_excluded),
        left_for_ehe: Set(row.left_for_ehe),
        missing_education: Set(row.missing_education),
        ks2_rwm_expected: Set(row.ks2_rwm_expected),
        ks4_attainment8: Set(row.ks4_attainment8),
        ks4_progress8: Set(row.ks4_progress8),
        updated_at: Set(UPDATED_AT),
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::OnceLock;

    use super::*;
    use crate::domain::{ENGLAND_CODE, GeographicLevel, PERIODS, PupilGroup};

    const SECRET: &[u8] = b"test-secret";

    /// Everything the seed writes at a scale, generated in memory by the same functions.
    #[derive(Debug, PartialEq)]
    struct Generated {
        register: Register,
        schools: Vec<SchoolOutput>,
        areas: Vec<ObservationRow>,
    }

    fn generate(scale: Scale) -> Generated {
        let register = register::build(scale);
        let mut totals = AreaTotals::default();
        let schools = register
            .schools
            .iter()
            .map(|s| simulate::run_school(s, register.las[s.la_index].effect, SECRET, &mut totals))
            .collect();
        let areas = totals.rows().collect();
        Generated {
            register,
            schools,
            areas,
        }
    }

    /// Test scale, generated once and shared: the crate's own code runs unoptimised in
    /// tests.
    fn test_scale() -> &'static Generated {
        static DATA: OnceLock<Generated> = OnceLock::new();
        DATA.get_or_init(|| generate(Scale::Test))
    }

    fn school_rows(data: &Generated) -> impl Iterator<Item = (&SchoolPlan, &ObservationRow)> {
        data.register
            .schools
            .iter()
            .zip(&data.schools)
            .flat_map(|(plan, out)| out.observations.iter().map(move |row| (plan, row)))
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(&generate(Scale::Test), test_scale());
    }

    #[test]
    fn area_figures_are_sums_of_school_figures() {
        let data = test_scale();
        type Key = (
            GeographicLevel,
            String,
            &'static str,
            &'static str,
            PupilGroup,
        );
        let mut sums: HashMap<Key, (f64, Option<f64>)> = HashMap::new();
        for (plan, row) in school_rows(data) {
            for (level, area) in [
                (GeographicLevel::La, plan.la.code),
                (GeographicLevel::Region, plan.region()),
                (GeographicLevel::National, ENGLAND_CODE),
            ] {
                let key = (
                    level,
                    area.to_owned(),
                    row.indicator_code,
                    row.period,
                    row.group,
                );
                let entry = sums
                    .entry(key)
                    .or_insert((0.0, row.denominator.map(|_| 0.0)));
                entry.0 += row.numerator;
                entry.1 = entry.1.zip(row.denominator).map(|(a, b)| a + b);
            }
        }
        assert_eq!(sums.len(), data.areas.len(), "one area row per covered key");
        for row in &data.areas {
            let key = (
                row.level,
                row.area_code.clone(),
                row.indicator_code,
                row.period,
                row.group,
            );
            let (numerator, denominator) = sums[&key];
            // Counts are exact; Attainment and Progress 8 sums of decimal scores agree to
            // floating-point rounding (they are exact integers internally).
            assert!((row.numerator - numerator).abs() < 1e-6, "{key:?}");
            assert_eq!(row.denominator, denominator, "{key:?}");
            let expected = match denominator {
                Some(d) => {
                    numerator / d
                        * Metric::ALL
                            .iter()
                            .find(|m| m.def().code == row.indicator_code)
                            .map_or(1.0, |m| m.def().multiplier)
                }
                None => numerator,
            };
            assert!((row.value - expected).abs() < 1e-4, "{key:?}");
            assert!(row.school_urn.is_none());
        }
    }

    #[test]
    fn school_rows_cover_open_years_only() {
        let data = test_scale();
        for (plan, output) in data.register.schools.iter().zip(&data.schools) {
            let mut periods_with_rows = HashSet::new();
            for row in &output.observations {
                assert_eq!(row.level, GeographicLevel::School);
                assert_eq!(row.area_code, plan.urn.to_string());
                assert_eq!(row.school_urn, Some(plan.urn));
                if row.indicator_code == Metric::DisadvantagedPct.def().code
                    || row.indicator_code == Metric::EhcpPct.def().code
                {
                    assert_eq!(row.group, PupilGroup::All);
                }
                if let Some(d) = row.denominator {
                    assert!(d > 0.0);
                }
                periods_with_rows.insert(row.period);
            }
            let open: HashSet<_> = (0..PERIODS.len())
                .filter(|&p| plan.open_in(p))
                .map(|p| PERIODS[p])
                .collect();
            assert_eq!(periods_with_rows, open, "{}", plan.name);
            assert!(output.pupils_on_roll > 0);
        }
    }

    #[test]
    fn disadvantaged_pupils_do_worse() {
        let data = test_scale();
        let national = |code: &str, period: &str, group: PupilGroup| {
            data.areas
                .iter()
                .find(|r| {
                    r.level == GeographicLevel::National
                        && r.indicator_code == code
                        && r.period == period
                        && r.group == group
                })
                .map(|r| r.value)
        };
        for period in PERIODS {
            let gap = |metric: Metric| {
                let dis = national(metric.def().code, period, PupilGroup::Disadvantaged);
                let rest = national(metric.def().code, period, PupilGroup::NotDisadvantaged);
                dis.zip(rest).map(|(d, r)| d - r)
            };
            for better in [
                Metric::AttendanceRate,
                Metric::Ks2RwmExpectedPct,
                Metric::Ks4Attainment8,
                Metric::Ks4Progress8,
            ] {
                let gap = gap(better);
                assert!(gap.is_some_and(|g| g < 0.0), "{period} {better:?}: {gap:?}");
            }
            for worse in [Metric::PersistentAbsenceRate, Metric::SuspensionRate] {
                let gap = gap(worse);
                assert!(gap.is_some_and(|g| g > 0.0), "{period} {worse:?}: {gap:?}");
            }
        }
    }

    #[test]
    fn pupil_records_cover_the_border_pair_both_ways() {
        let data = test_scale();
        let mut crossings = HashSet::new();
        let mut years: HashMap<&str, Vec<(&str, i16)>> = HashMap::new();
        for (plan, output) in data.register.schools.iter().zip(&data.schools) {
            if !PUPIL_RECORD_LAS.contains(&plan.la.code) {
                assert!(output.pupil_records.is_empty());
                continue;
            }
            let on_roll = output
                .pupil_records
                .iter()
                .filter(|p| p.period == PERIODS[plan.last_period])
                .count();
            assert_eq!(on_roll as i32, output.pupils_on_roll);
            for record in &output.pupil_records {
                assert_eq!(record.school_urn, plan.urn);
                assert_eq!(record.pupil_key.len(), 64);
                assert_eq!(record.ks2_rwm_expected.is_some(), record.year_group == 6);
                assert_eq!(record.ks4_attainment8.is_some(), record.year_group == 11);
                if record.home_la_code != plan.la.code {
                    crossings.insert((plan.la.code, record.home_la_code));
                }
                years
                    .entry(&record.pupil_key)
                    .or_default()
                    .push((record.period, record.year_group));
            }
        }
        assert!(
            crossings.contains(&("852", "850")),
            "Southampton pupils living in Hampshire"
        );
        assert!(
            crossings.contains(&("850", "852")),
            "Hampshire pupils living in Southampton"
        );
        assert_eq!(crossings.len(), 2);
        // A pupil keeps their key as they move up: one year group per year.
        assert!(years.values().any(|v| v.len() >= 3));
        for history in years.values() {
            for pair in history.windows(2) {
                assert_eq!(pair[1].1 - pair[0].1, 1, "{history:?}");
            }
        }
    }

    #[test]
    fn the_secret_changes_keys_only() {
        let register = register::build(Scale::Test);
        let Some(school) = register.schools.iter().find(|s| s.la.code == "852") else {
            panic!("Southampton has schools at test scale");
        };
        let effect = register.las[school.la_index].effect;
        let a = simulate::run_school(school, effect, b"one", &mut AreaTotals::default());
        let b = simulate::run_school(school, effect, b"two", &mut AreaTotals::default());
        assert_eq!(a.observations, b.observations);
        assert_ne!(a.pupil_records[0].pupil_key, b.pupil_records[0].pupil_key);
        assert_eq!(
            a.pupil_records[0].sessions_missed,
            b.pupil_records[0].sessions_missed
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(470_123), "470,123");
        assert_eq!(thousands(5_123_456), "5,123,456");
    }
}
