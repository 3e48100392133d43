//! Pupil simulation, and every figure derived from it.
//!
//! There is exactly one source of truth: simulated pupils. Each school's pupils are
//! generated year by year; the school's figures are tallies over those pupils; area
//! figures are sums of school figures; pupil records are the same pupils written out.
//! So a dashboard total, a drill-down to schools and a count over pupil records always
//! agree, which is what a demo of a *shared baseline* has to show.
//!
//! Pupils are identified by `(URN, cohort, serial)`, where the cohort is the calendar year
//! they started Reception. Their fixed characteristics come from a random stream seeded
//! by that identity, and each year's outcomes from a stream seeded by identity and
//! period, so a pupil moving up a year keeps their pupil number, key and flags.
//!
//! The model is deliberately simple but tuned to land near published national figures
//! (absence around 6% for most pupils and 10–11% for disadvantaged pupils, suspensions
//! around 11 per 100 in secondary schools, the disadvantage gap in KS2 and KS4), with
//! school and area effects so that places differ. It is demo data: plausible, not real.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::PUPIL_RECORD_LAS;
use super::random::{
    Purpose, chance, logistic, logit, mean_one_lognormal, normal, poisson, stream,
};
use super::reference::{CROSS_BORDER, LONDON, Metric};
use super::register::{FIRST_PERIOD_START_YEAR, SchoolPlan};
use crate::domain::{ENGLAND_CODE, GeographicLevel, PERIODS, Phase, PupilGroup, SenStatus};
use crate::pseudonym::linkage_key;

/// One pupil in one academic year at one school.
#[derive(Clone, Debug, PartialEq)]
pub struct PupilYear {
    /// Calendar year the pupil's cohort started Reception.
    pub cohort: i32,
    /// The pupil's number within the cohort at this school (0–999).
    pub serial: u16,
    /// Index into `PERIODS`.
    pub period: usize,
    /// 0 is Reception.
    pub year_group: i16,
    pub disadvantaged: bool,
    pub sen: SenStatus,
    pub eal: bool,
    pub in_care: bool,
    pub home_la: &'static str,
    pub sessions_possible: i32,
    pub sessions_missed: i32,
    pub suspensions: i32,
    pub permanently_excluded: bool,
    pub left_for_ehe: bool,
    pub missing_education: bool,
    pub ks2_rwm_expected: Option<bool>,
    /// Attainment 8 in tenths of a point, so sums are exact.
    pub attainment8_tenths: Option<i64>,
    /// Progress 8 in hundredths, so sums are exact.
    pub progress8_hundredths: Option<i64>,
}

impl PupilYear {
    /// Pupils missing 10% or more of possible sessions.
    fn persistently_absent(&self) -> bool {
        self.sessions_possible > 0 && self.sessions_missed * 10 >= self.sessions_possible
    }

    /// The groups whose figures this pupil counts towards.
    fn groups(&self) -> impl Iterator<Item = PupilGroup> {
        [
            Some(PupilGroup::All),
            Some(if self.disadvantaged {
                PupilGroup::Disadvantaged
            } else {
                PupilGroup::NotDisadvantaged
            }),
            match self.sen {
                SenStatus::SenSupport => Some(PupilGroup::SenSupport),
                SenStatus::Ehcp => Some(PupilGroup::Ehcp),
                SenStatus::None => None,
            },
            self.in_care.then_some(PupilGroup::ChildrenInCare),
        ]
        .into_iter()
        .flatten()
    }
}

/// A figure before it is placed in an area: integer numerator (in the metric's
/// `numerator_scale` units) and denominator, so that sums over areas are exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Figure {
    pub metric: Metric,
    /// Index into `PERIODS`.
    pub period: usize,
    pub group: PupilGroup,
    pub numerator: i64,
    /// `None` for counts.
    pub denominator: Option<i64>,
}

impl Figure {
    fn to_row(
        self,
        level: GeographicLevel,
        area_code: String,
        school_urn: Option<i32>,
        school_count: i32,
    ) -> ObservationRow {
        let def = self.metric.def();
        let numerator = self.numerator as f64 / def.numerator_scale as f64;
        let denominator = self.denominator.map(|d| d as f64);
        let value = match denominator {
            Some(d) => round4(numerator / d * def.multiplier),
            None => numerator,
        };
        ObservationRow {
            indicator_code: def.code,
            period: PERIODS[self.period],
            level,
            area_code,
            school_urn,
            school_count,
            group: self.group,
            numerator,
            denominator,
            value,
        }
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// An `observation` row, minus the columns the seed always leaves empty or fixed.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservationRow {
    pub indicator_code: &'static str,
    pub period: &'static str,
    pub level: GeographicLevel,
    pub area_code: String,
    pub school_urn: Option<i32>,
    /// How many schools the figure sums (1 for a school's own figure).
    pub school_count: i32,
    pub group: PupilGroup,
    pub numerator: f64,
    pub denominator: Option<f64>,
    pub value: f64,
}

/// A `pupil_record` row, minus the id and timestamp.
#[derive(Clone, Debug, PartialEq)]
pub struct PupilRow {
    pub pupil_key: String,
    pub period: &'static str,
    pub school_urn: i32,
    pub home_la_code: &'static str,
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

/// Everything generated for one school.
#[derive(Clone, Debug, PartialEq)]
pub struct SchoolOutput {
    /// Pupils in the school's last open year: the register's roll.
    pub pupils_on_roll: i32,
    pub observations: Vec<ObservationRow>,
    /// Empty unless the school is in one of the pupil-record LAs.
    pub pupil_records: Vec<PupilRow>,
}

/// Simulates one school and derives its rows, adding its figures to the area totals.
/// `area_effect` is the school's LA effect (`LaPlan::effect`).
pub fn run_school(
    school: &SchoolPlan,
    area_effect: f64,
    secret: &[u8],
    totals: &mut AreaTotals,
) -> SchoolOutput {
    let pupils = simulate_school(school, area_effect);
    let figures = school_figures(&pupils);
    totals.add(school, &figures);
    let pupils_on_roll = pupils
        .iter()
        .filter(|p| p.period == school.last_period)
        .count() as i32;
    let urn = school.urn;
    let observations = figures
        .iter()
        .map(|f| f.to_row(GeographicLevel::School, urn.to_string(), Some(urn), 1))
        .collect();
    let pupil_records = if PUPIL_RECORD_LAS.contains(&school.la.code) {
        pupils
            .iter()
            .map(|p| pupil_row(school, p, secret))
            .collect()
    } else {
        Vec::new()
    };
    SchoolOutput {
        pupils_on_roll,
        observations,
        pupil_records,
    }
}

fn pupil_row(school: &SchoolPlan, pupil: &PupilYear, secret: &[u8]) -> PupilRow {
    let upn = pupil_number(
        school.la.code,
        school.establishment_number,
        pupil.cohort,
        pupil.serial,
    );
    PupilRow {
        pupil_key: linkage_key(secret, &upn),
        period: PERIODS[pupil.period],
        school_urn: school.urn,
        home_la_code: pupil.home_la,
        year_group: pupil.year_group,
        disadvantaged: pupil.disadvantaged,
        sen_status: pupil.sen,
        eal: pupil.eal,
        in_care: pupil.in_care,
        sessions_possible: pupil.sessions_possible,
        sessions_missed: pupil.sessions_missed,
        suspensions: pupil.suspensions,
        permanently_excluded: pupil.permanently_excluded,
        left_for_ehe: pupil.left_for_ehe,
        missing_education: pupil.missing_education,
        ks2_rwm_expected: pupil.ks2_rwm_expected,
        ks4_attainment8: pupil.attainment8_tenths.map(|t| t as f64 / 10.0),
        ks4_progress8: pupil.progress8_hundredths.map(|h| h as f64 / 100.0),
    }
}

/// A synthetic unique pupil number in the real format: a check letter, then the LA code,
/// establishment number, two-digit year of allocation and a three-digit serial. The check
/// letter uses the DfE algorithm (digits weighted 2–13, modulo 23), so the numbers look
/// and validate like real ones. Unique because no two schools in an LA share an
/// establishment number and cohorts in range differ in their last two digits.
pub fn pupil_number(la_code: &str, establishment: u16, cohort: i32, serial: u16) -> String {
    let digits = format!(
        "{la_code:0>3}{establishment:04}{:02}{serial:03}",
        cohort.rem_euclid(100)
    );
    let sum: u32 = digits
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b.wrapping_sub(b'0')) * (i as u32 + 2))
        .sum();
    let check = char::from(b"ABCDEFGHJKLMNPQRTUVWXYZ"[(sum % 23) as usize]);
    format!("{check}{digits}")
}

// ---------------------------------------------------------------------------------------
// Figures

/// Tallies over the pupils of one group in one year at one school.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    pupils: i64,
    sessions_possible: i64,
    sessions_missed: i64,
    persistent_absentees: i64,
    suspensions: i64,
    exclusions: i64,
    ehe: i64,
    cme: i64,
    year6: i64,
    year6_expected: i64,
    year11: i64,
    attainment8_tenths: i64,
    progress8_hundredths: i64,
    disadvantaged: i64,
    ehcp: i64,
}

impl Tally {
    fn add(&mut self, p: &PupilYear) {
        self.pupils += 1;
        self.sessions_possible += i64::from(p.sessions_possible);
        self.sessions_missed += i64::from(p.sessions_missed);
        self.persistent_absentees += i64::from(p.persistently_absent());
        self.suspensions += i64::from(p.suspensions);
        self.exclusions += i64::from(p.permanently_excluded);
        self.ehe += i64::from(p.left_for_ehe);
        self.cme += i64::from(p.missing_education);
        if let Some(expected) = p.ks2_rwm_expected {
            self.year6 += 1;
            self.year6_expected += i64::from(expected);
        }
        if let (Some(a8), Some(p8)) = (p.attainment8_tenths, p.progress8_hundredths) {
            self.year11 += 1;
            self.attainment8_tenths += a8;
            self.progress8_hundredths += p8;
        }
        self.disadvantaged += i64::from(p.disadvantaged);
        self.ehcp += i64::from(p.sen == SenStatus::Ehcp);
    }

    /// The figures this tally supports: rates only where the denominator is non-zero,
    /// counts whenever the group has pupils (a zero is information), and the context
    /// figures for the whole school only.
    fn figures(&self, period: usize, group: PupilGroup, out: &mut Vec<Figure>) {
        if self.pupils == 0 {
            return;
        }
        let mut push = |metric, numerator, denominator: Option<i64>| {
            if denominator != Some(0) {
                out.push(Figure {
                    metric,
                    period,
                    group,
                    numerator,
                    denominator,
                });
            }
        };
        let attended = self.sessions_possible - self.sessions_missed;
        push(
            Metric::AttendanceRate,
            attended,
            Some(self.sessions_possible),
        );
        push(
            Metric::PersistentAbsenceRate,
            self.persistent_absentees,
            Some(self.pupils),
        );
        push(Metric::SuspensionRate, self.suspensions, Some(self.pupils));
        push(
            Metric::PermanentExclusionRate,
            self.exclusions,
            Some(self.pupils),
        );
        push(Metric::EheCount, self.ehe, None);
        push(Metric::CmeCount, self.cme, None);
        push(
            Metric::Ks2RwmExpectedPct,
            self.year6_expected,
            Some(self.year6),
        );
        push(
            Metric::Ks4Attainment8,
            self.attainment8_tenths,
            Some(self.year11),
        );
        push(
            Metric::Ks4Progress8,
            self.progress8_hundredths,
            Some(self.year11),
        );
        if group == PupilGroup::All {
            push(
                Metric::DisadvantagedPct,
                self.disadvantaged,
                Some(self.pupils),
            );
            push(Metric::EhcpPct, self.ehcp, Some(self.pupils));
        }
    }
}

/// Position of the group in `PupilGroup::ALL`, which lists the variants in declaration
/// order.
fn group_index(group: PupilGroup) -> usize {
    group as usize
}

/// A school's figures for every period and group, derived only from its pupils.
pub fn school_figures(pupils: &[PupilYear]) -> Vec<Figure> {
    let mut tallies = vec![[Tally::default(); PupilGroup::ALL.len()]; PERIODS.len()];
    for pupil in pupils {
        for group in pupil.groups() {
            tallies[pupil.period][group_index(group)].add(pupil);
        }
    }
    let mut figures = Vec::new();
    for (period, by_group) in tallies.iter().enumerate() {
        for (tally, group) in by_group.iter().zip(PupilGroup::ALL) {
            tally.figures(period, *group, &mut figures);
        }
    }
    figures
}

type AreaKey = (GeographicLevel, &'static str, Metric, usize, PupilGroup);

/// Running LA, region and national sums of school figures. Kept as integers so every
/// area figure is the exact sum of the school figures it covers; small enough to hold
/// for the whole country (areas × indicators × periods × groups, ~60,000 entries).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AreaTotals {
    sums: BTreeMap<AreaKey, (i64, Option<i64>, i32)>,
}

impl AreaTotals {
    pub fn add(&mut self, school: &SchoolPlan, figures: &[Figure]) {
        let areas = [
            (GeographicLevel::La, school.la.code),
            (GeographicLevel::Region, school.region()),
            (GeographicLevel::National, ENGLAND_CODE),
        ];
        for figure in figures {
            for (level, code) in areas {
                let key = (level, code, figure.metric, figure.period, figure.group);
                let (numerator, denominator, schools) =
                    self.sums
                        .entry(key)
                        .or_insert((0, figure.denominator.map(|_| 0), 0));
                *numerator += figure.numerator;
                *schools += 1;
                if let (Some(total), Some(d)) = (denominator.as_mut(), figure.denominator) {
                    *total += d;
                }
            }
        }
    }

    /// How many area rows [`AreaTotals::rows`] will yield.
    pub fn row_count(&self) -> usize {
        self.sums.len()
    }

    /// The area rows: LA, then region, then national.
    pub fn rows(&self) -> impl Iterator<Item = ObservationRow> + '_ {
        self.sums.iter().map(
            |(&(level, code, metric, period, group), &(numerator, denominator, schools))| {
                Figure {
                    metric,
                    period,
                    group,
                    numerator,
                    denominator,
                }
                .to_row(level, code.to_string(), None, schools)
            },
        )
    }
}

// ---------------------------------------------------------------------------------------
// Simulation

/// The year groups a school teaches. Pupil referral units and AP academies mostly take
/// pupils in their last years of school, so their pupils join late: `joining` gives the
/// share joining at each year group (from `first`), and is `None` where everyone starts in
/// the first year.
struct YearSpan {
    first: i16,
    last: i16,
    joining: Option<&'static [f64]>,
}

const AP_JOINING: [f64; 7] = [0.05, 0.05, 0.08, 0.12, 0.20, 0.25, 0.25];

fn year_span(phase: Phase) -> YearSpan {
    match phase {
        Phase::Primary => YearSpan {
            first: 0,
            last: 6,
            joining: None,
        },
        Phase::Secondary => YearSpan {
            first: 7,
            last: 11,
            joining: None,
        },
        Phase::AllThrough | Phase::Special => YearSpan {
            first: 0,
            last: 11,
            joining: None,
        },
        Phase::AlternativeProvision => YearSpan {
            first: 5,
            last: 11,
            joining: Some(&AP_JOINING),
        },
    }
}

impl YearSpan {
    /// Average number of year groups a pupil of a cohort is on roll for; converts a
    /// target roll into a cohort size.
    fn years_on_roll(&self) -> f64 {
        match self.joining {
            None => f64::from(self.last - self.first + 1),
            Some(shares) => {
                let mut cumulative = 0.0;
                shares
                    .iter()
                    .map(|s| {
                        cumulative += s;
                        cumulative
                    })
                    .sum()
            }
        }
    }

    fn joining_year(&self, rng: &mut ChaCha8Rng) -> i16 {
        let Some(shares) = self.joining else {
            return self.first;
        };
        let mut draw: f64 = rng.random();
        for (offset, share) in shares.iter().enumerate() {
            if draw < *share {
                return self.first + offset as i16;
            }
            draw -= share;
        }
        self.last
    }
}

/// School-wide probabilities and effects, fixed for all of a school's pupils.
struct SchoolContext<'a> {
    school: &'a SchoolPlan,
    area_effect: f64,
    disadvantaged: f64,
    eal: f64,
    in_care: f64,
    /// Mainstream schools, where SEN raises absence and sanctions; in special schools
    /// nearly every pupil has an EHC plan, so it distinguishes nothing.
    mainstream: bool,
    london: bool,
}

impl<'a> SchoolContext<'a> {
    fn new(school: &'a SchoolPlan, area_effect: f64) -> Self {
        let la = school.la;
        // Special schools and AP serve markedly more disadvantaged pupils, fewer EAL.
        let (phase_shift, eal_shift, in_care) = match school.phase {
            Phase::Special => (0.7, -0.5, 0.02),
            Phase::AlternativeProvision => (1.3, -0.5, 0.04),
            _ => (0.0, 0.0, 0.006),
        };
        SchoolContext {
            school,
            area_effect,
            disadvantaged: logistic(
                logit(la.disadvantaged) + 0.55 * school.effects.disadvantage + phase_shift,
            ),
            eal: logistic(logit(la.eal) + 0.7 * school.effects.eal + eal_shift),
            in_care,
            mainstream: matches!(
                school.phase,
                Phase::Primary | Phase::Secondary | Phase::AllThrough
            ),
            london: la.region == LONDON,
        }
    }

    /// Secondary-age pupils are treated as secondary wherever they are taught (all-through
    /// schools have both); special and AP have their own patterns.
    fn stage(&self, year_group: i16) -> Stage {
        match self.school.phase {
            Phase::Special => Stage::Special,
            Phase::AlternativeProvision => Stage::AlternativeProvision,
            _ if year_group >= 7 => Stage::Secondary,
            _ => Stage::Primary,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Primary,
    Secondary,
    Special,
    AlternativeProvision,
}

/// A pupil's fixed characteristics and propensities.
struct Pupil {
    serial: u16,
    joins: i16,
    disadvantaged: bool,
    sen: SenStatus,
    eal: bool,
    in_care: bool,
    home_la: &'static str,
    /// Standard-normal latent traits.
    ability: f64,
    absence: f64,
    behaviour: f64,
}

fn new_pupil(ctx: &SchoolContext, span: &YearSpan, cohort: i32, serial: u16) -> Pupil {
    let school = ctx.school;
    let mut rng = stream(
        Purpose::Pupil,
        &[school.urn as u64, cohort as u64, u64::from(serial)],
    );
    // Looked-after children count as disadvantaged, as in the DfE definition.
    let in_care = chance(&mut rng, ctx.in_care);
    let disadvantaged = in_care || chance(&mut rng, ctx.disadvantaged);
    let (support, ehcp) = match school.phase {
        Phase::Special => (0.02, 0.98),
        Phase::AlternativeProvision => (0.45, 0.12),
        _ if disadvantaged => (0.19, 0.045),
        _ => (0.11, 0.025),
    };
    let draw: f64 = rng.random();
    let sen = if draw < ehcp {
        SenStatus::Ehcp
    } else if draw < ehcp + support {
        SenStatus::SenSupport
    } else {
        SenStatus::None
    };
    let eal = chance(&mut rng, ctx.eal);
    let home_la = CROSS_BORDER
        .iter()
        .find(|(school_la, _, _)| *school_la == school.la.code)
        .filter(|(_, _, share)| chance(&mut rng, *share))
        .map_or(school.la.code, |(_, home_la, _)| home_la);
    Pupil {
        serial,
        joins: span.joining_year(&mut rng),
        disadvantaged,
        sen,
        eal,
        in_care,
        home_la,
        ability: normal(&mut rng),
        absence: normal(&mut rng),
        behaviour: normal(&mut rng),
    }
}

/// Every pupil-year at a school, in cohort and serial order, then period.
pub fn simulate_school(school: &SchoolPlan, area_effect: f64) -> Vec<PupilYear> {
    let ctx = SchoolContext::new(school, area_effect);
    let span = year_span(school.phase);
    let mut sizes = stream(Purpose::Pupil, &[school.urn as u64]);
    let base_cohort = f64::from(school.target_roll) / span.years_on_roll();
    let period_start = |period: usize| FIRST_PERIOD_START_YEAR + period as i32;

    let mut pupils = Vec::new();
    let oldest = period_start(school.first_period) - i32::from(span.last);
    let youngest = period_start(school.last_period) - i32::from(span.first);
    for cohort in oldest..=youngest {
        // A school that opened during the years covered fills up from its entry year:
        // cohorts already past it when the school opened never join.
        if school.first_period > 0
            && period_start(school.first_period) - cohort > i32::from(span.first)
        {
            continue;
        }
        let size = (base_cohort * (1.0 + 0.08 * normal(&mut sizes)))
            .round()
            .clamp(1.0, 999.0) as u16;
        for serial in 0..size {
            let pupil = new_pupil(&ctx, &span, cohort, serial);
            for period in (0..PERIODS.len()).filter(|&p| school.open_in(p)) {
                let year_group = (period_start(period) - cohort) as i16;
                if year_group < pupil.joins || year_group > span.last {
                    continue;
                }
                let year = pupil_year(&ctx, &pupil, cohort, period, year_group);
                let left = year.permanently_excluded || year.left_for_ehe || year.missing_education;
                pupils.push(year);
                if left {
                    break;
                }
            }
        }
    }
    pupils
}

/// Absence rises after the pandemic years' disruption and eases gently since.
const PERIOD_ABSENCE: [f64; 5] = [1.16, 1.10, 1.04, 1.00, 0.97];
/// Suspensions have been rising.
const PERIOD_SUSPENSIONS: [f64; 5] = [0.85, 0.95, 1.0, 1.05, 1.08];
/// So has elective home education.
const PERIOD_EHE: [f64; 5] = [0.85, 0.95, 1.0, 1.1, 1.15];
/// KS2 results recovering after the pandemic (logit shift).
const PERIOD_KS2: [f64; 5] = [-0.08, -0.03, 0.0, 0.02, 0.03];

// Adding a period to `PERIODS` must extend the trends above.
const _: () = assert!(
    PERIOD_ABSENCE.len() == PERIODS.len()
        && PERIOD_SUSPENSIONS.len() == PERIODS.len()
        && PERIOD_EHE.len() == PERIODS.len()
        && PERIOD_KS2.len() == PERIODS.len()
);

fn pupil_year(
    ctx: &SchoolContext,
    pupil: &Pupil,
    cohort: i32,
    period: usize,
    year_group: i16,
) -> PupilYear {
    let school = ctx.school;
    let effects = &school.effects;
    let ids = [
        school.urn as u64,
        cohort as u64,
        u64::from(pupil.serial),
        period as u64,
    ];
    let mut rng = stream(Purpose::PupilYear, &ids);
    let stage = ctx.stage(year_group);

    // Absence: a skewed (log-normal) rate around a mean set by group, stage, SEN, school
    // and area; the pupil's own propensity persists from year to year.
    let mut mean_absence = if pupil.disadvantaged { 0.096 } else { 0.053 };
    mean_absence *= match stage {
        Stage::Primary => 0.85,
        Stage::Secondary => 1.2,
        Stage::Special => 1.5,
        Stage::AlternativeProvision => 3.5,
    };
    if ctx.mainstream {
        mean_absence *= match pupil.sen {
            SenStatus::None => 1.0,
            SenStatus::SenSupport => 1.25,
            SenStatus::Ehcp => 1.35,
        };
    }
    if pupil.in_care {
        mean_absence *= 0.9;
    }
    mean_absence *=
        PERIOD_ABSENCE[period] * (0.15 * effects.absence - 0.06 * ctx.area_effect).exp();
    let z = 0.7 * pupil.absence + 0.714 * normal(&mut rng);
    let absence_rate = (mean_absence * mean_one_lognormal(z, 0.8)).min(1.0);

    // Relative risk of sanctions: disadvantage and SEN in mainstream raise it sharply;
    // schools differ in how readily they suspend; a few pupils account for most.
    let mut risk = if pupil.disadvantaged { 3.5 } else { 1.0 };
    if ctx.mainstream {
        risk *= match pupil.sen {
            SenStatus::None => 1.0,
            SenStatus::SenSupport => 2.5,
            SenStatus::Ehcp => 2.0,
        };
    }
    if pupil.in_care {
        risk *= 1.5;
    }
    risk *= mean_one_lognormal(effects.sanctions, 0.5)
        * mean_one_lognormal(pupil.behaviour, 1.1)
        * (-0.1 * ctx.area_effect).exp();
    let (suspension_base, exclusion_base) = match stage {
        Stage::Primary => (0.008, 0.0001),
        Stage::Secondary => (0.054, 0.0013),
        Stage::Special => (0.05, 0.0003),
        // Pupil referral units rarely exclude permanently: they are where excluded
        // pupils go.
        Stage::AlternativeProvision => (0.45, 0.0),
    };
    let suspensions = poisson(
        &mut rng,
        suspension_base * risk * PERIOD_SUSPENSIONS[period],
    );
    let permanently_excluded = chance(&mut rng, (exclusion_base * risk).min(0.5));

    // Leaving the roll: home education and children missing education are both far
    // likelier for pupils who were already missing a lot of school.
    let high_absence = if absence_rate > 0.2 { 3.0 } else { 1.0 };
    let ehe_stage = match stage {
        Stage::Primary => 0.8,
        Stage::Secondary => 1.35,
        Stage::Special => 0.6,
        Stage::AlternativeProvision => 1.5,
    };
    let ehe_sen = match pupil.sen {
        SenStatus::None => 1.0,
        SenStatus::SenSupport => 1.3,
        SenStatus::Ehcp => 1.1,
    };
    let ehe_p = 0.0042 * ehe_stage * ehe_sen * high_absence * PERIOD_EHE[period];
    let left_for_ehe = !permanently_excluded && chance(&mut rng, ehe_p);
    let mut cme_p = 0.002 * high_absence;
    if pupil.disadvantaged {
        cme_p *= 2.0;
    }
    if pupil.in_care {
        cme_p *= 2.0;
    }
    if pupil.eal {
        cme_p *= 1.3;
    }
    let missing_education = !permanently_excluded && !left_for_ehe && chance(&mut rng, cme_p);

    // A full year is about 330 sessions after closures; a pupil who leaves part-way
    // through only had the sessions before they left.
    let mut sessions_possible = (330.0 + 6.0 * normal(&mut rng)).round().clamp(300.0, 380.0);
    if permanently_excluded || left_for_ehe || missing_education {
        sessions_possible = (sessions_possible * rng.random_range(0.15..0.95)).round();
    }
    let sessions_missed = (absence_rate * sessions_possible).round();

    let disadvantaged_in_london = ctx.london && pupil.disadvantaged;
    let ks2_rwm_expected = (year_group == 6).then(|| {
        let mut score = if pupil.disadvantaged { 0.25 } else { 1.15 };
        score +=
            pupil.ability + 0.35 * effects.quality + 0.15 * ctx.area_effect + PERIOD_KS2[period];
        score += match pupil.sen {
            SenStatus::None => 0.0,
            SenStatus::SenSupport => -1.6,
            SenStatus::Ehcp => -3.2,
        };
        // The "London effect": disadvantaged pupils in London do markedly better.
        if disadvantaged_in_london {
            score += 0.35;
        }
        if stage == Stage::AlternativeProvision {
            score -= 1.5;
        }
        chance(&mut rng, logistic(score))
    });

    let (attainment8_tenths, progress8_hundredths) = if year_group == 11 {
        let (mut a8, mut p8) = if pupil.disadvantaged {
            (38.0, -0.39)
        } else {
            (52.0, 0.235)
        };
        let (sen_a8, sen_p8) = match pupil.sen {
            SenStatus::None => (0.0, 0.0),
            SenStatus::SenSupport => (-11.0, -0.45),
            SenStatus::Ehcp => (-22.0, -0.9),
        };
        a8 += sen_a8 + 3.0 * effects.quality + 1.5 * ctx.area_effect;
        p8 += sen_p8 + 0.25 * effects.quality + 0.1 * ctx.area_effect;
        if disadvantaged_in_london {
            a8 += 4.0;
            p8 += 0.3;
        }
        if stage == Stage::AlternativeProvision {
            a8 -= 18.0;
            p8 -= 1.2;
        }
        a8 += 13.0 * pupil.ability + 11.0 * normal(&mut rng);
        p8 += 0.55 * pupil.ability + 0.9 * normal(&mut rng);
        (
            Some((a8.clamp(0.0, 90.0) * 10.0).round() as i64),
            Some((p8.clamp(-5.0, 5.0) * 100.0).round() as i64),
        )
    } else {
        (None, None)
    };

    PupilYear {
        cohort,
        serial: pupil.serial,
        period,
        year_group,
        disadvantaged: pupil.disadvantaged,
        sen: pupil.sen,
        eal: pupil.eal,
        in_care: pupil.in_care,
        home_la: pupil.home_la,
        sessions_possible: sessions_possible as i32,
        sessions_missed: sessions_missed as i32,
        suspensions: suspensions as i32,
        permanently_excluded,
        left_for_ehe,
        missing_education,
        ks2_rwm_expected,
        attainment8_tenths,
        progress8_hundredths,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pupil_numbers_have_the_real_shape_and_check_letter() {
        let upn = pupil_number("852", 2001, 2015, 7);
        assert_eq!(upn.len(), 13);
        assert!(upn[1..].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(&upn[1..], "852200115007");
        // Weighted sum: 8·2+5·3+2·4+2·5+0·6+0·7+1·8+1·9+5·10+0·11+0·12+7·13 = 207;
        // 207 mod 23 = 0, which is "A".
        assert_eq!(&upn[..1], "A");
        assert_ne!(pupil_number("852", 2001, 2015, 8), upn);
    }
}
