//! The rows a sync writes, as clients send them and as they are stored, and the checks
//! between the two.
//!
//! Validation is all-or-nothing per call: every row is checked against the reference
//! data (indicator catalogue, register, LA and region codes) and the writer's
//! [`WriteScope`] before anything is written, and every problem is reported with its
//! row, field and reason. Reasons never repeat a submitted value, so a mistyped pupil
//! number cannot leak through an error message or a log line.

use std::collections::{HashMap, HashSet};

use async_graphql::InputObject;
use entities::{indicator, organisation, region, school};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use serde::Serialize;

use crate::access::WriteScope;
use crate::domain::{
    ENGLAND_CODE, GeographicLevel, OrganisationKind, PupilGroup, SenStatus, Unit, is_valid_period,
};
use crate::error::RowProblem;
use crate::pseudonym;

/// Most rows one bulk call may carry: one transaction each, so a call stays short
/// enough not to hold the feed counter (and its writers' queue) for long.
pub const MAX_ROWS_PER_CALL: usize = 10_000;

/// Most problems reported for one call: enough to fix a file, bounded so a call of
/// 10,000 bad rows does not get a 10,000-entry error.
pub const MAX_PROBLEMS: usize = 100;

/// Tolerance between a submitted value and the one its numerator and denominator give:
/// official statistics round rates to one decimal place.
const VALUE_TOLERANCE: f64 = 0.051;

/// One figure as a client sends it.
#[derive(InputObject, Clone, Debug)]
#[graphql(name = "ObservationInput")]
pub struct FigureInput {
    pub indicator_code: String,
    /// Academic year, `2023/24`.
    pub period: String,
    pub level: GeographicLevel,
    /// URN, LA code, region code or `E92000001`, by `level`.
    pub area_code: String,
    #[graphql(default_with = "PupilGroup::All")]
    pub pupil_group: PupilGroup,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    /// Optional when numerator and denominator are given (it is then computed with
    /// the indicator's multiplier); checked against them when both are.
    pub value: Option<f64>,
    /// Schools the figure sums (1 for a school's own); area figures without it are
    /// treated by disclosure control as built from too few schools.
    pub school_count: Option<i32>,
}

/// A figure's natural key, as a client names it to delete it.
#[derive(InputObject, Clone, Debug)]
#[graphql(name = "ObservationKeyInput")]
pub struct FigureKeyInput {
    pub indicator_code: String,
    pub period: String,
    pub level: GeographicLevel,
    pub area_code: String,
    #[graphql(default_with = "PupilGroup::All")]
    pub pupil_group: PupilGroup,
}

/// One pupil's record for one period at one school, as a client sends it.
#[derive(InputObject, Clone)]
#[graphql(name = "PupilRecordInput")]
pub struct PupilInput {
    /// The raw unique pupil number. Replaced by a keyed hash before anything is stored
    /// or logged; never stored, logged or returned.
    pub pupil_number: String,
    pub period: String,
    pub school_urn: i32,
    /// LA code of the pupil's home address.
    pub home_la_code: String,
    /// 0 is Reception.
    pub year_group: i32,
    pub disadvantaged: bool,
    #[graphql(default_with = "SenStatus::None")]
    pub sen_status: SenStatus,
    #[graphql(default)]
    pub eal: bool,
    #[graphql(default)]
    pub in_care: bool,
    pub sessions_possible: i32,
    pub sessions_missed: i32,
    #[graphql(default)]
    pub suspensions: i32,
    #[graphql(default)]
    pub permanently_excluded: bool,
    #[graphql(default)]
    pub left_for_ehe: bool,
    #[graphql(default)]
    pub missing_education: bool,
    pub ks2_rwm_expected: Option<bool>,
    pub ks4_attainment8: Option<f64>,
    pub ks4_progress8: Option<f64>,
}

/// Never prints the pupil number.
impl std::fmt::Debug for PupilInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PupilInput")
            .field("pupil_number", &"<redacted>")
            .field("period", &self.period)
            .field("school_urn", &self.school_urn)
            .finish_non_exhaustive()
    }
}

/// A figure ready to store.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    pub indicator_code: String,
    pub period: String,
    pub level: GeographicLevel,
    pub area_code: String,
    pub school_urn: Option<i32>,
    pub pupil_group: PupilGroup,
    pub school_count: Option<i32>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub value: Option<f64>,
}

impl Figure {
    pub fn key(&self) -> FigureKey {
        FigureKey {
            indicator_code: self.indicator_code.clone(),
            period: self.period.clone(),
            level: self.level,
            area_code: self.area_code.clone(),
            school_urn: self.school_urn,
            pupil_group: self.pupil_group,
        }
    }
}

/// A figure's natural key (the unique key of `observation`), with the school it
/// belongs to for `SCHOOL` figures.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FigureKey {
    pub indicator_code: String,
    pub period: String,
    pub level: GeographicLevel,
    pub area_code: String,
    pub school_urn: Option<i32>,
    pub pupil_group: PupilGroup,
}

/// A pupil record ready to store: the pupil number already replaced by its key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PupilRow {
    pub pupil_key: String,
    pub period: String,
    pub school_urn: i32,
    pub home_la_code: String,
    pub year_group: i16,
    pub disadvantaged: bool,
    pub sen_status: SenStatus,
    pub eal: bool,
    pub in_care: bool,
    pub sessions_possible: i32,
    pub sessions_missed: i32,
    pub suspensions: i32,
    pub permanently_excluded: bool,
    pub left_for_ehe: bool,
    pub missing_education: bool,
    pub ks2_rwm_expected: Option<bool>,
    pub ks4_attainment8: Option<f64>,
    pub ks4_progress8: Option<f64>,
}

/// The reference data rows are checked against. Loaded once per call (for the schools
/// a call names) or once per import (for the whole register).
pub struct Reference {
    indicators: HashMap<String, indicator::Model>,
    schools: HashMap<i32, school::Model>,
    las: HashSet<String>,
    regions: HashSet<String>,
}

impl Reference {
    /// Everything but the register, plus the schools in `urns` (every school for
    /// `None`).
    pub async fn load<C: ConnectionTrait>(db: &C, urns: Option<&[i32]>) -> Result<Self, DbErr> {
        let indicators = indicator::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|i| (i.code.clone(), i))
            .collect();
        let mut schools = HashMap::new();
        match urns {
            None => schools.extend(
                school::Entity::find()
                    .all(db)
                    .await?
                    .into_iter()
                    .map(|s| (s.urn, s)),
            ),
            Some(urns) => {
                let mut wanted: Vec<i32> = urns.to_vec();
                wanted.sort_unstable();
                wanted.dedup();
                // Bounded IN lists keep every statement under the drivers' bind limits.
                for chunk in wanted.chunks(5_000) {
                    schools.extend(
                        school::Entity::find()
                            .filter(school::Column::Urn.is_in(chunk.iter().copied()))
                            .all(db)
                            .await?
                            .into_iter()
                            .map(|s| (s.urn, s)),
                    );
                }
            }
        }
        let las = organisation::Entity::find()
            .filter(organisation::Column::Kind.eq(OrganisationKind::LocalAuthority.as_str()))
            .all(db)
            .await?
            .into_iter()
            .map(|o| o.code)
            .collect();
        let regions = region::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|r| r.code)
            .collect();
        Ok(Reference {
            indicators,
            schools,
            las,
            regions,
        })
    }

    /// A reference built in memory, for tests that validate without a database.
    #[cfg(test)]
    pub fn in_memory(
        indicators: Vec<indicator::Model>,
        schools: Vec<school::Model>,
        las: &[&str],
        regions: &[&str],
    ) -> Reference {
        Reference {
            indicators: indicators
                .into_iter()
                .map(|i| (i.code.clone(), i))
                .collect(),
            schools: schools.into_iter().map(|s| (s.urn, s)).collect(),
            las: las.iter().map(|c| (*c).to_owned()).collect(),
            regions: regions.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    pub fn is_la(&self, code: &str) -> bool {
        self.las.contains(code)
    }
}

/// Problems found in a call, split by kind: data the hub cannot store, and rows the
/// writer may not write. Either kind stops the whole call.
#[derive(Debug, Default)]
pub struct Problems {
    pub invalid: Vec<RowProblem>,
    pub forbidden: Vec<RowProblem>,
    /// Distinct rows with at least one problem.
    pub rows: HashSet<usize>,
}

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub(super) fn invalid(&mut self, index: usize, field: &'static str, reason: impl Into<String>) {
        self.rows.insert(index);
        if self.invalid.len() < MAX_PROBLEMS {
            self.invalid.push(RowProblem {
                index,
                field,
                reason: reason.into(),
            });
        }
    }

    fn forbidden(&mut self, index: usize, field: &'static str, reason: String) {
        self.rows.insert(index);
        if self.forbidden.len() < MAX_PROBLEMS {
            self.forbidden.push(RowProblem {
                index,
                field,
                reason,
            });
        }
    }

    /// The error a call with these problems ends in: invalid data first (the client
    /// must fix it whatever its scope), then scope.
    pub fn into_error(self) -> crate::error::Error {
        if self.invalid.is_empty() {
            crate::error::Error::ForbiddenRows(self.forbidden)
        } else {
            crate::error::Error::InvalidRows(self.invalid)
        }
    }
}

/// How each level's codes are written. A figure is stored under the code as sent, and
/// its key (and every aggregate, delete and cache tag) compares that text, so a code that
/// names a known area in another spelling — `+100906` or `00100906` for URN 100906 —
/// would store a second copy of the figure beside the first: counted twice by
/// aggregates, left behind by a delete under the usual code. Only the one spelling the
/// register uses is accepted; the register check follows. The reason describes the form
/// without repeating what was sent.
fn check_canonical(level: GeographicLevel, code: &str) -> Result<(), &'static str> {
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let canonical = match level {
        // At most 9 digits: every URN fits an i32, as the register stores it.
        GeographicLevel::School => digits(code) && !code.starts_with('0') && code.len() <= 9,
        GeographicLevel::La => code.len() == 3 && digits(code),
        GeographicLevel::Region => code.len() == 9 && code.starts_with("E12") && digits(&code[3..]),
        GeographicLevel::National => code == ENGLAND_CODE,
    };
    if canonical {
        return Ok(());
    }
    Err(match level {
        GeographicLevel::School => {
            "a SCHOOL figure's areaCode is a URN written as its digits alone \
             (no sign, spaces or leading zeros), like 100906"
        }
        GeographicLevel::La => "an LA figure's areaCode is a three-digit LA code, like 852",
        GeographicLevel::Region => {
            "a REGION figure's areaCode is a region code written like E12000008"
        }
        GeographicLevel::National => "a NATIONAL figure's areaCode is E92000001",
    })
}

/// Where a figure's area lives: checks the code for its level — its written form, then
/// the register — and returns the school for `SCHOOL` figures.
fn check_area<'r>(
    reference: &'r Reference,
    scope: &WriteScope,
    index: usize,
    level: GeographicLevel,
    area_code: &str,
    problems: &mut Problems,
) -> Option<Option<&'r school::Model>> {
    if let Err(reason) = check_canonical(level, area_code) {
        problems.invalid(index, "areaCode", reason);
        return None;
    }
    let known = match level {
        GeographicLevel::School => {
            let Ok(urn) = area_code.parse::<i32>() else {
                problems.invalid(index, "areaCode", "a SCHOOL figure's areaCode is a URN");
                return None;
            };
            let Some(school) = reference.schools.get(&urn) else {
                problems.invalid(index, "areaCode", "no school with this URN on the register");
                return None;
            };
            if !scope.covers_school(school) {
                problems.forbidden(
                    index,
                    "areaCode",
                    format!("school {urn} is outside {}'s write scope", scope.writer),
                );
                return None;
            }
            return Some(Some(school));
        }
        GeographicLevel::La => reference.las.contains(area_code),
        GeographicLevel::Region => reference.regions.contains(area_code),
        GeographicLevel::National => area_code == ENGLAND_CODE,
    };
    if !known {
        problems.invalid(
            index,
            "areaCode",
            format!("not a known {} code", level.as_str()),
        );
        return None;
    }
    if !scope.covers_area(level, area_code) {
        problems.forbidden(
            index,
            "areaCode",
            format!(
                "{} figures for {area_code} are outside {}'s write scope",
                level.as_str(),
                scope.writer
            ),
        );
        return None;
    }
    Some(None)
}

/// The checks every figure key gets, for writing or deleting: a catalogued indicator,
/// an academic year, an area the writer may write. Returns the indicator and, for
/// `SCHOOL` figures, the school.
fn check_key<'r>(
    reference: &'r Reference,
    scope: &WriteScope,
    index: usize,
    (indicator_code, period, level, area_code): (&str, &str, GeographicLevel, &str),
    problems: &mut Problems,
) -> (
    Option<&'r indicator::Model>,
    Option<Option<&'r school::Model>>,
) {
    let indicator = reference.indicators.get(indicator_code);
    if indicator.is_none() {
        problems.invalid(index, "indicatorCode", "not in the indicator catalogue");
    }
    if !is_valid_period(period) {
        problems.invalid(index, "period", "not an academic year like 2023/24");
    }
    let school = check_area(reference, scope, index, level, area_code, problems);
    (indicator, school)
}

/// Checks and normalises figures; `Err` when any row has a problem.
pub fn figures(
    reference: &Reference,
    scope: &WriteScope,
    inputs: Vec<FigureInput>,
) -> Result<Vec<Figure>, Problems> {
    let mut problems = Problems::default();
    let mut seen: HashMap<FigureKey, usize> = HashMap::new();
    let mut out = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        if let Some(figure) = figure(reference, scope, index, input, &mut problems) {
            if let Some(first) = seen.insert(figure.key(), index) {
                problems.invalid(
                    index,
                    "indicatorCode",
                    format!("the same figure as row {first}; send each figure once per call"),
                );
            }
            out.push(figure);
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// One figure; records its problems and returns `None` if it has any.
pub fn figure(
    reference: &Reference,
    scope: &WriteScope,
    index: usize,
    input: FigureInput,
    problems: &mut Problems,
) -> Option<Figure> {
    let (indicator, school) = check_key(
        reference,
        scope,
        index,
        (
            &input.indicator_code,
            &input.period,
            input.level,
            &input.area_code,
        ),
        problems,
    );
    let school_count = match (input.level, input.school_count) {
        (GeographicLevel::School, None | Some(1)) => Some(1),
        (GeographicLevel::School, Some(_)) => {
            problems.invalid(
                index,
                "schoolCount",
                "a SCHOOL figure is built from 1 school",
            );
            None
        }
        (_, Some(n)) if n < 1 => {
            problems.invalid(index, "schoolCount", "must be at least 1");
            None
        }
        (_, n) => n,
    };
    let value = indicator.and_then(|indicator| numbers(index, indicator, &input, problems));
    if problems.rows.contains(&index) {
        return None;
    }
    let (numerator, denominator, value) = value?;
    Some(Figure {
        indicator_code: input.indicator_code,
        period: input.period,
        level: input.level,
        school_urn: school.flatten().map(|s| s.urn),
        area_code: input.area_code,
        pupil_group: input.pupil_group,
        school_count,
        numerator,
        denominator,
        value: Some(value),
    })
}

/// Checks a figure's numbers and works out its value.
fn numbers(
    index: usize,
    indicator: &indicator::Model,
    input: &FigureInput,
    problems: &mut Problems,
) -> Option<(Option<f64>, Option<f64>, f64)> {
    let unit = Unit::parse(&indicator.unit);
    let signed = unit == Some(Unit::Score);
    let mut ok = true;
    for (field, number) in [
        ("numerator", input.numerator),
        ("denominator", input.denominator),
        ("value", input.value),
    ] {
        let Some(n) = number else { continue };
        if !n.is_finite() {
            problems.invalid(index, field, "must be a finite number");
            ok = false;
        } else if n < 0.0 && !(signed && field != "denominator") {
            problems.invalid(index, field, "must not be negative");
            ok = false;
        }
    }
    if input.denominator == Some(0.0) {
        problems.invalid(index, "denominator", "must be above 0");
        ok = false;
    }
    if !ok {
        return None;
    }
    let computed = match (input.numerator, input.denominator, unit) {
        (Some(n), _, Some(Unit::Count)) => Some(n),
        // Rounded as published values are, to four decimal places.
        (Some(n), Some(d), _) => Some((n / d * indicator.multiplier * 10_000.0).round() / 10_000.0),
        _ => None,
    };
    match (input.value, computed) {
        (Some(value), Some(computed)) if (value - computed).abs() > VALUE_TOLERANCE => {
            problems.invalid(
                index,
                "value",
                format!("does not match numerator / denominator (expected about {computed:.1})"),
            );
            None
        }
        (Some(value), _) => Some((input.numerator, input.denominator, value)),
        (None, Some(computed)) => Some((input.numerator, input.denominator, computed)),
        (None, None) => {
            problems.invalid(
                index,
                "value",
                "give a value, or a numerator and denominator",
            );
            None
        }
    }
}

/// Checks figure keys for deletion.
pub fn figure_keys(
    reference: &Reference,
    scope: &WriteScope,
    inputs: Vec<FigureKeyInput>,
) -> Result<Vec<FigureKey>, Problems> {
    let mut problems = Problems::default();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        let (_, school) = check_key(
            reference,
            scope,
            index,
            (
                &input.indicator_code,
                &input.period,
                input.level,
                &input.area_code,
            ),
            &mut problems,
        );
        if problems.rows.contains(&index) {
            continue;
        }
        let key = FigureKey {
            indicator_code: input.indicator_code,
            period: input.period,
            level: input.level,
            school_urn: school.flatten().map(|s| s.urn),
            area_code: input.area_code,
            pupil_group: input.pupil_group,
        };
        if !seen.insert(key.clone()) {
            problems.invalid(index, "indicatorCode", "the same key appears twice");
            continue;
        }
        out.push(key);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Whether text has the shape of a unique pupil number: 13 characters, a letter, 11
/// digits, then a digit or (for temporary numbers) a letter.
pub fn is_pupil_number(text: &str) -> bool {
    let bytes = text.trim().as_bytes();
    bytes.len() == 13
        && bytes[0].is_ascii_alphabetic()
        && bytes[1..12].iter().all(u8::is_ascii_digit)
        && bytes[12].is_ascii_alphanumeric()
}

/// Checks and pseudonymises pupil records; `Err` when any row has a problem.
pub fn pupils(
    reference: &Reference,
    scope: &WriteScope,
    secret: &[u8],
    inputs: Vec<PupilInput>,
) -> Result<Vec<PupilRow>, Problems> {
    let mut problems = Problems::default();
    let mut seen: HashMap<(String, String, i32), usize> = HashMap::new();
    let mut out = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        if !is_pupil_number(&input.pupil_number) {
            // Deliberately vague: the reason must not repeat any part of the number.
            problems.invalid(
                index,
                "pupilNumber",
                "not a unique pupil number (13 characters: a letter, 11 digits, a digit or letter)",
            );
        }
        if !is_valid_period(&input.period) {
            problems.invalid(index, "period", "not an academic year like 2023/24");
        }
        match reference.schools.get(&input.school_urn) {
            None => problems.invalid(
                index,
                "schoolUrn",
                "no school with this URN on the register",
            ),
            Some(school) if !scope.covers_school(school) => problems.forbidden(
                index,
                "schoolUrn",
                format!(
                    "school {} is outside {}'s write scope",
                    school.urn, scope.writer
                ),
            ),
            Some(_) => {}
        }
        if !reference.is_la(&input.home_la_code) {
            problems.invalid(index, "homeLaCode", "not a known LA code");
        }
        if !(0..=14).contains(&input.year_group) {
            problems.invalid(index, "yearGroup", "must be 0 (Reception) to 14");
        }
        if input.sessions_possible < 0 {
            problems.invalid(index, "sessionsPossible", "must not be negative");
        }
        if input.sessions_missed < 0 || input.sessions_missed > input.sessions_possible {
            problems.invalid(
                index,
                "sessionsMissed",
                "must be between 0 and sessionsPossible",
            );
        }
        if input.suspensions < 0 {
            problems.invalid(index, "suspensions", "must not be negative");
        }
        if let Some(a8) = input.ks4_attainment8
            && !(a8.is_finite() && (0.0..=90.0).contains(&a8))
        {
            problems.invalid(index, "ks4Attainment8", "must be between 0 and 90");
        }
        if let Some(p8) = input.ks4_progress8
            && !(p8.is_finite() && (-10.0..=10.0).contains(&p8))
        {
            problems.invalid(index, "ks4Progress8", "must be between -10 and 10");
        }
        if problems.rows.contains(&index) {
            continue;
        }
        let pupil_key = pseudonym::linkage_key(secret, &input.pupil_number);
        if let Some(first) = seen.insert(
            (pupil_key.clone(), input.period.clone(), input.school_urn),
            index,
        ) {
            problems.invalid(
                index,
                "pupilNumber",
                format!("the same pupil, period and school as row {first}"),
            );
            continue;
        }
        out.push(PupilRow {
            pupil_key,
            period: input.period,
            school_urn: input.school_urn,
            home_la_code: input.home_la_code,
            year_group: input.year_group as i16,
            disadvantaged: input.disadvantaged,
            sen_status: input.sen_status,
            eal: input.eal,
            in_care: input.in_care,
            sessions_possible: input.sessions_possible,
            sessions_missed: input.sessions_missed,
            suspensions: input.suspensions,
            permanently_excluded: input.permanently_excluded,
            left_for_ehe: input.left_for_ehe,
            missing_education: input.missing_education,
            ks2_rwm_expected: input.ks2_rwm_expected,
            ks4_attainment8: input.ks4_attainment8,
            ks4_progress8: input.ks4_progress8,
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}
