//! The register: which schools, trusts and dioceses exist at a given scale, with the
//! fixed characteristics of each school (phase, type, size, latent effects).
//!
//! This is cheap to build even at national scale (~22,000 small structs), so it is built
//! in full before anything is written; the expensive part, simulating pupils, is done
//! school by school afterwards (see `simulate`). Everything here is drawn from one
//! sequential generator with a fixed seed per scale, so the same scale always gives the
//! same register; only each LA's area effect comes from a stream of its own, so that an
//! area looks alike at every scale.

use std::collections::HashSet;
use std::ops::Range;

use chrono::NaiveDate;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::Scale;
use super::random::{Purpose, chance, logistic, logit, normal, stream};
use super::reference::{LOCAL_AUTHORITIES, LocalAuthority, REGIONS, Setting, TEST_LAS};
use crate::domain::{EstablishmentType, PERIODS, Phase};

/// The academic year `PERIODS[0]` starts in; `first_period_is_2021` checks it.
pub const FIRST_PERIOD_START_YEAR: i32 = 2021;

/// The date the demo data describes: the start of the 2026/27 school year.
pub const DATA_DATE: NaiveDate = const_date(2026, 9, 1);

/// Inspections are drawn from the six years before [`DATA_DATE`].
const INSPECTION_WINDOW_START: NaiveDate = const_date(2020, 9, 1);

/// First URN for maintained schools and for academies. Real URNs for academies are
/// younger (higher) than those of the maintained schools they replaced; two counters keep
/// that shape, and the gap is wider than the national number of maintained schools.
const FIRST_MAINTAINED_URN: i32 = 100_001;
const FIRST_ACADEMY_URN: i32 = 136_001;

/// Share of each LA's real school count kept at `Scale::Demo`.
const DEMO_SHARE: f64 = 0.09;
/// Share of each listed LA's real school count kept at `Scale::Test`.
const TEST_SHARE: f64 = 0.05;

const fn const_date(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("invalid constant date"),
    }
}

/// Everything that exists at one scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Register {
    /// Every LA in England, in reference order, including those with no schools at this
    /// scale (their organisations still exist).
    pub las: Vec<LaPlan>,
    pub trusts: Vec<TrustPlan>,
    /// Grouped by LA, in the order of `las`.
    pub schools: Vec<SchoolPlan>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LaPlan {
    pub la: &'static LocalAuthority,
    /// Area effect on outcomes (standard normal; positive is better), fixed per LA so an
    /// area looks the same at every scale.
    pub effect: f64,
    /// This LA's slice of [`Register::schools`].
    pub schools: Range<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrustPlan {
    /// The trust's UID (4–5 digits), its organisation code.
    pub uid: String,
    pub name: String,
    /// Trusts are formed within a region, so this is the region of all their schools.
    pub region: &'static str,
    pub members: usize,
}

/// A school's register entry plus the latent effects the simulation uses.
#[derive(Clone, Debug, PartialEq)]
pub struct SchoolPlan {
    pub urn: i32,
    pub name: String,
    pub phase: Phase,
    pub establishment_type: EstablishmentType,
    pub la: &'static LocalAuthority,
    /// Index of the LA in [`Register::las`] (and in `LOCAL_AUTHORITIES`).
    pub la_index: usize,
    /// The DfE establishment number within the LA; part of the school's pupil numbers.
    pub establishment_number: u16,
    /// Index into [`Register::trusts`]; set exactly for academies and free schools.
    pub trust: Option<usize>,
    /// Diocese code, for church schools.
    pub diocese: Option<&'static str>,
    /// First and last period (indices into `PERIODS`) the school had pupils.
    pub first_period: usize,
    pub last_period: usize,
    /// Pupils the school is sized for; the simulated roll varies around it.
    pub target_roll: u32,
    pub last_inspection: Option<NaiveDate>,
    pub effects: SchoolEffects,
}

/// Standard-normal latent effects of a school.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SchoolEffects {
    /// Positive is better teaching and outcomes.
    pub quality: f64,
    /// Shifts the share of disadvantaged pupils relative to the LA.
    pub disadvantage: f64,
    /// Shifts the share of EAL pupils relative to the LA.
    pub eal: f64,
    /// Positive is worse attendance.
    pub absence: f64,
    /// Positive is a readier use of suspension.
    pub sanctions: f64,
}

impl SchoolPlan {
    pub fn is_open(&self) -> bool {
        self.last_period == PERIODS.len() - 1
    }

    pub fn open_in(&self, period: usize) -> bool {
        (self.first_period..=self.last_period).contains(&period)
    }

    pub fn region(&self) -> &'static str {
        self.la.region
    }
}

/// How many schools an LA has at a scale.
pub fn school_count(scale: Scale, la: &LocalAuthority) -> usize {
    let share = |fraction: f64| (f64::from(la.schools) * fraction).round() as usize;
    match scale {
        Scale::National => la.schools as usize,
        Scale::Demo => share(DEMO_SHARE).max(1),
        Scale::Test if !TEST_LAS.contains(&la.code) => 0,
        // LAs with fewer than three real schools keep their real count: they are the
        // small-area case disclosure control must handle.
        Scale::Test if la.schools < 3 => la.schools as usize,
        Scale::Test => share(TEST_SHARE).max(3),
    }
}

/// Builds the register for a scale.
pub fn build(scale: Scale) -> Register {
    let mut rng = stream(Purpose::Register, &[scale as u64]);
    let mut urns = UrnSequence {
        maintained: FIRST_MAINTAINED_URN,
        academy: FIRST_ACADEMY_URN,
    };
    let mut las = Vec::with_capacity(LOCAL_AUTHORITIES.len());
    let mut schools = Vec::new();
    let mut academy_in = Vec::new();

    for (la_index, la) in LOCAL_AUTHORITIES.iter().enumerate() {
        let mut area = stream(Purpose::Area, &[la_number(la)]);
        let effect = normal(&mut area);
        // How keen the LA's schools have been to convert, on the logit scale.
        let academisation = 0.5 * normal(&mut area);

        let start = schools.len();
        let mut names = HashSet::new();
        let mut phases = apportion_phases(&mut rng, school_count(scale, la));
        phases.shuffle(&mut rng);
        for (index, phase) in phases.into_iter().enumerate() {
            let draft = draft_school(&mut rng, la, phase, academisation);
            let name = school_name(&mut rng, &draft, &mut names);
            academy_in.push(draft.academy);
            schools.push(SchoolPlan {
                urn: urns.next(draft.academy),
                name,
                phase,
                establishment_type: draft.establishment_type,
                la,
                la_index,
                establishment_number: 2000 + index as u16,
                trust: None,
                diocese: draft.church.map(|church| church.diocese(la)),
                first_period: draft.first_period,
                last_period: draft.last_period,
                target_roll: draft.target_roll,
                last_inspection: draft.last_inspection,
                effects: draft.effects,
            });
        }
        las.push(LaPlan {
            la,
            effect,
            schools: start..schools.len(),
        });
    }

    let trusts = form_trusts(&mut rng, &mut schools, &academy_in);
    Register {
        las,
        trusts,
        schools,
    }
}

/// The LA code as a number, for seeding.
pub fn la_number(la: &LocalAuthority) -> u64 {
    la.code.parse().unwrap_or(0)
}

struct UrnSequence {
    maintained: i32,
    academy: i32,
}

impl UrnSequence {
    fn next(&mut self, academy: bool) -> i32 {
        let counter = if academy {
            &mut self.academy
        } else {
            &mut self.maintained
        };
        *counter += 1;
        *counter - 1
    }
}

/// National phase mix of state-funded schools.
const PHASE_SHARES: [(Phase, f64); 5] = [
    (Phase::Primary, 0.775),
    (Phase::Secondary, 0.16),
    (Phase::AllThrough, 0.01),
    (Phase::Special, 0.04),
    (Phase::AlternativeProvision, 0.015),
];

/// Splits `n` schools into phases: whole quotas first, then the remaining places drawn
/// in proportion to the fractional parts. This keeps every LA close to the national mix
/// while rare phases (all-through, AP) still appear at the right rate overall rather than
/// being rounded away in every small LA.
fn apportion_phases(rng: &mut ChaCha8Rng, n: usize) -> Vec<Phase> {
    let mut phases = Vec::with_capacity(n);
    let mut remainders = Vec::with_capacity(PHASE_SHARES.len());
    for (phase, share) in PHASE_SHARES {
        let quota = share * n as f64;
        phases.extend(std::iter::repeat_n(phase, quota.floor() as usize));
        remainders.push((phase, quota.fract()));
    }
    while phases.len() < n {
        let total: f64 = remainders.iter().map(|(_, r)| r).sum();
        let mut pick = rng.random::<f64>() * total;
        let mut chosen = 0;
        for (i, (_, remainder)) in remainders.iter().enumerate() {
            chosen = i;
            if pick < *remainder {
                break;
            }
            pick -= remainder;
        }
        phases.push(remainders[chosen].0);
        remainders[chosen].1 = 0.0;
    }
    phases
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Church {
    England,
    Catholic,
}

impl Church {
    fn diocese(self, la: &LocalAuthority) -> &'static str {
        match self {
            Church::England => la.ce_diocese,
            Church::Catholic => la.rc_diocese,
        }
    }
}

/// A school's characteristics before it is named and numbered.
struct Draft {
    phase: Phase,
    church: Option<Church>,
    academy: bool,
    establishment_type: EstablishmentType,
    first_period: usize,
    last_period: usize,
    target_roll: u32,
    last_inspection: Option<NaiveDate>,
    effects: SchoolEffects,
}

fn draft_school(
    rng: &mut ChaCha8Rng,
    la: &LocalAuthority,
    phase: Phase,
    academisation: f64,
) -> Draft {
    // Shares of church schools and academies by phase, roughly as in England.
    let (ce_share, rc_share, academy_share) = match phase {
        Phase::Primary => (0.25, 0.10, 0.40),
        Phase::Secondary => (0.06, 0.09, 0.80),
        Phase::AllThrough => (0.05, 0.03, 0.80),
        Phase::Special => (0.0, 0.0, 0.45),
        Phase::AlternativeProvision => (0.0, 0.0, 0.40),
    };
    let draw: f64 = rng.random();
    let church = if draw < ce_share {
        Some(Church::England)
    } else if draw < ce_share + rc_share {
        Some(Church::Catholic)
    } else {
        None
    };
    let academy = chance(rng, logistic(logit(academy_share) + academisation));

    let establishment_type = match (phase, academy) {
        (Phase::Special, true) => EstablishmentType::AcademySpecial,
        (Phase::Special, false) => EstablishmentType::CommunitySpecial,
        (Phase::AlternativeProvision, true) => EstablishmentType::AcademyAlternativeProvision,
        (Phase::AlternativeProvision, false) => EstablishmentType::PupilReferralUnit,
        (_, true) => {
            // Sponsored academies replaced struggling schools, so are commoner in
            // deprived areas; free schools are new and almost never church schools.
            let sponsored = (0.12 + 0.6 * (la.disadvantaged - 0.15)).clamp(0.08, 0.35);
            let draw: f64 = rng.random();
            if church.is_none() && draw < 0.06 {
                EstablishmentType::FreeSchool
            } else if draw < 0.06 + sponsored {
                EstablishmentType::AcademySponsorLed
            } else {
                EstablishmentType::AcademyConverter
            }
        }
        (_, false) => match church {
            Some(Church::Catholic) => EstablishmentType::VoluntaryAided,
            Some(Church::England) if chance(rng, 0.5) => EstablishmentType::VoluntaryAided,
            Some(Church::England) => EstablishmentType::VoluntaryControlled,
            None if chance(rng, 0.12) => EstablishmentType::Foundation,
            None => EstablishmentType::Community,
        },
    };

    let last = PERIODS.len() - 1;
    let (mut first_period, mut last_period) = (0, last);
    // Some recent free schools opened during the years covered and fill up from their
    // entry year; about 3% of schools closed (amalgamations, falling rolls).
    let new_school = establishment_type == EstablishmentType::FreeSchool
        && matches!(phase, Phase::Primary | Phase::Secondary)
        && chance(rng, 0.4);
    if new_school {
        first_period = rng.random_range(1..=last);
    } else if chance(rng, 0.03) {
        last_period = rng.random_range(0..last);
    }

    let target_roll = target_roll(rng, phase, la.setting);
    let last_inspection = inspection_date(rng, first_period, last_period);

    let disadvantage = normal(rng);
    let mut quality = 0.9 * normal(rng) - 0.3 * disadvantage;
    if establishment_type == EstablishmentType::AcademySponsorLed {
        quality -= 0.2;
    }
    let effects = SchoolEffects {
        quality,
        disadvantage,
        eal: normal(rng),
        absence: 0.8 * normal(rng) - 0.4 * quality,
        sanctions: normal(rng),
    };
    Draft {
        phase,
        church,
        academy,
        establishment_type,
        first_period,
        last_period,
        target_roll,
        last_inspection,
        effects,
    }
}

fn target_roll(rng: &mut ChaCha8Rng, phase: Phase, setting: Setting) -> u32 {
    let spread = |rng: &mut ChaCha8Rng, median: f64, sigma: f64, min: f64, max: f64| {
        (median * (sigma * normal(rng)).exp())
            .clamp(min, max)
            .round() as u32
    };
    match phase {
        Phase::Primary => {
            // Shire counties keep many small village schools; London has none.
            let (tiny_share, median) = match setting {
                Setting::Shire => (0.16, 200.0),
                Setting::Urban => (0.03, 300.0),
                Setting::OuterLondon => (0.0, 400.0),
                Setting::InnerLondon => (0.0, 330.0),
            };
            if chance(rng, tiny_share) {
                rng.random_range(12..60)
            } else {
                spread(rng, median, 0.4, 60.0, 700.0)
            }
        }
        Phase::Secondary => spread(rng, 1000.0, 0.3, 400.0, 2000.0),
        Phase::AllThrough => spread(rng, 1300.0, 0.25, 800.0, 2000.0),
        Phase::Special => spread(rng, 110.0, 0.4, 40.0, 200.0),
        Phase::AlternativeProvision => spread(rng, 40.0, 0.45, 10.0, 80.0),
    }
}

/// Last inspection within six years of the data date, while the school was open; new
/// schools are not inspected in their first two years and a few others have no date on
/// the register.
fn inspection_date(
    rng: &mut ChaCha8Rng,
    first_period: usize,
    last_period: usize,
) -> Option<NaiveDate> {
    let from = if first_period == 0 {
        INSPECTION_WINDOW_START
    } else {
        NaiveDate::from_ymd_opt(FIRST_PERIOD_START_YEAR + first_period as i32 + 2, 9, 1)?
    };
    let to = if last_period == PERIODS.len() - 1 {
        DATA_DATE
    } else {
        NaiveDate::from_ymd_opt(FIRST_PERIOD_START_YEAR + last_period as i32 + 1, 8, 31)?
    };
    let days = (to - from).num_days();
    if days <= 0 || chance(rng, 0.04) {
        return None;
    }
    from.checked_add_days(chrono::Days::new(rng.random_range(0..days) as u64))
}

// ---------------------------------------------------------------------------------------
// Names

const PLACE_STARTS: [&str; 40] = [
    "Ash", "Beech", "Birch", "Bramble", "Brook", "Castle", "Cedar", "Church", "Clay", "Elm",
    "Fair", "Fern", "Fox", "Green", "Hazel", "Heath", "High", "Holly", "Kings", "Lark", "Long",
    "Marsh", "Meadow", "Mill", "North", "Oak", "Orchard", "Pine", "Queens", "Red", "Rose", "South",
    "Spring", "Stone", "Thorn", "West", "East", "Willow", "Wood", "Yew",
];

const PLACE_ENDS: [&str; 20] = [
    "bank", "bridge", "brook", "bury", "croft", "dale", "field", "ford", "gate", "hill", "hurst",
    "lands", "lea", "mead", "side", "ton", "way", "well", "wood", "worth",
];

const CE_DEDICATIONS: [&str; 30] = [
    "St Mary's",
    "St Peter's",
    "St John's",
    "St Andrew's",
    "St Michael's",
    "St Paul's",
    "St James'",
    "St Nicholas'",
    "St George's",
    "St Margaret's",
    "Holy Trinity",
    "Christ Church",
    "All Saints",
    "St Luke's",
    "St Mark's",
    "St Matthew's",
    "St Thomas'",
    "St Bartholomew's",
    "St Helen's",
    "St Catherine's",
    "St Stephen's",
    "St Lawrence",
    "St Leonard's",
    "St Martin's",
    "St Edmund's",
    "St Anne's",
    "St Barnabas'",
    "St Chad's",
    "St Cuthbert's",
    "St Oswald's",
];

const RC_DEDICATIONS: [&str; 30] = [
    "St Joseph's",
    "Our Lady's",
    "St Patrick's",
    "Sacred Heart",
    "Holy Family",
    "St Anthony's",
    "St Teresa's",
    "St Bernadette's",
    "St Thomas More",
    "St John Fisher",
    "Corpus Christi",
    "Holy Cross",
    "St Francis of Assisi",
    "St Vincent's",
    "St Edward's",
    "Our Lady of Lourdes",
    "St Wilfrid's",
    "St Gregory's",
    "St Augustine's",
    "Christ the King",
    "St Mary's",
    "St Peter's",
    "St Cuthbert Mayne",
    "St Benedict's",
    "St Bede's",
    "St Ambrose",
    "Blessed Sacrament",
    "English Martyrs",
    "St Alban's",
    "St Clare's",
];

fn pick<'a>(rng: &mut ChaCha8Rng, options: &[&'a str]) -> &'a str {
    options[rng.random_range(0..options.len())]
}

/// A made-up English place name such as "Millbrook" or "Foxhill".
fn place(rng: &mut ChaCha8Rng) -> String {
    loop {
        let start = pick(rng, &PLACE_STARTS);
        let end = pick(rng, &PLACE_ENDS);
        // Skip doubled sounds such as "Woodwood" or "Brookbrook".
        if !start.to_ascii_lowercase().ends_with(end) {
            return format!("{start}{end}");
        }
    }
}

/// A plausible name, unique within the LA. Real registers disambiguate the many
/// "St Mary's" schools with the locality, so a clash gets ", <place>" appended.
fn school_name(rng: &mut ChaCha8Rng, draft: &Draft, used: &mut HashSet<String>) -> String {
    let mut name = base_name(rng, draft);
    while used.contains(&name) {
        name = format!("{}, {}", base_name(rng, draft), place(rng));
    }
    used.insert(name.clone());
    name
}

fn base_name(rng: &mut ChaCha8Rng, draft: &Draft) -> String {
    let place = place(rng);
    let academy = draft.academy;
    match (draft.phase, draft.church) {
        (Phase::Primary, Some(Church::England)) => {
            let dedication = pick(rng, &CE_DEDICATIONS);
            match rng.random_range(0..4) {
                0 => format!("{place} Church of England Primary School"),
                1 if academy => format!("{dedication} Church of England Primary Academy"),
                1 => format!("{dedication} Church of England Primary School"),
                _ => format!("{dedication} CofE Primary School"),
            }
        }
        (Phase::Primary, Some(Church::Catholic)) => {
            let dedication = pick(rng, &RC_DEDICATIONS);
            match rng.random_range(0..3) {
                0 if academy => format!("{dedication} Catholic Primary Academy"),
                1 => format!("{dedication} RC Primary School"),
                _ => format!("{dedication} Catholic Primary School"),
            }
        }
        (Phase::Primary, None) => match rng.random_range(0..6) {
            0 | 1 if academy => format!("{place} Primary Academy"),
            2 if academy => format!("{place} Academy"),
            3 => format!("{place} Community Primary School"),
            4 => format!("{place} Park Primary School"),
            _ => format!("{place} Primary School"),
        },
        (Phase::Secondary | Phase::AllThrough, Some(Church::England)) => {
            let dedication = pick(rng, &CE_DEDICATIONS);
            if academy {
                format!("{dedication} Church of England Academy")
            } else {
                format!("{dedication} CofE High School")
            }
        }
        (Phase::Secondary | Phase::AllThrough, Some(Church::Catholic)) => {
            let dedication = pick(rng, &RC_DEDICATIONS);
            match rng.random_range(0..3) {
                0 => format!("{dedication} Catholic College"),
                1 => format!("{dedication} Catholic High School"),
                _ => format!("{dedication} Catholic School"),
            }
        }
        (Phase::AllThrough, None) => match rng.random_range(0..3) {
            0 if academy => format!("{place} Academy"),
            1 => format!("{place} All-Through School"),
            _ => format!("{place} School"),
        },
        (Phase::Secondary, None) => match rng.random_range(0..6) {
            0 | 1 if academy => format!("{place} Academy"),
            2 => format!("{place} High School"),
            3 => format!("{place} Community College"),
            4 => format!("{place} College"),
            _ => format!("{place} School"),
        },
        (Phase::Special, _) => match rng.random_range(0..4) {
            0 if academy => format!("{place} Academy"),
            1 => format!("{place} Special School"),
            _ => format!("{place} School"),
        },
        (Phase::AlternativeProvision, _) => match rng.random_range(0..3) {
            0 if academy => format!("{place} Alternative Provision Academy"),
            0 => format!("{place} Pupil Referral Unit"),
            1 => format!("{place} Learning Centre"),
            _ => format!("{place} Centre"),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Trusts

/// Rivers, hills and districts trusts like to name themselves after, per region (in the
/// order of `REGIONS`).
const TRUST_FEATURES: [&[&str]; 9] = [
    &[
        "Tyne",
        "Wear",
        "Tees Valley",
        "Cheviot",
        "Coquet",
        "Derwent",
    ],
    &[
        "Mersey",
        "Pennine",
        "Ribble Valley",
        "Irwell",
        "Fylde",
        "Eden",
        "Lune",
    ],
    &[
        "Aire",
        "Calder",
        "Don Valley",
        "Humber",
        "Wolds",
        "Dales",
        "Ouse",
        "Wharfe",
    ],
    &[
        "Trent",
        "Soar",
        "Nene",
        "Peak",
        "Welland",
        "Sherwood",
        "Charnwood",
    ],
    &[
        "Severn",
        "Avon",
        "Arden",
        "Malvern",
        "Cannock Chase",
        "Wrekin",
        "Black Country",
    ],
    &[
        "Fenland", "Broads", "Stour", "Cam", "Chiltern", "Colne", "Waveney", "Orwell",
    ],
    &[
        "Thames",
        "Lea Valley",
        "Wandle",
        "Ravensbourne",
        "Brent Valley",
        "Crane",
        "Roding",
    ],
    &[
        "Solent",
        "Downs",
        "Weald",
        "Test Valley",
        "Itchen",
        "Medway",
        "Kennet",
        "Meon",
    ],
    &[
        "Tamar",
        "Exe",
        "Mendip",
        "Cotswold",
        "Quantock",
        "Purbeck",
        "Dart",
        "Severn Vale",
    ],
];

const TRUST_WORDS: [&str; 30] = [
    "Inspire",
    "Aspire",
    "Unity",
    "Endeavour",
    "Horizon",
    "Pioneer",
    "Compass",
    "Beacon",
    "Bright Futures",
    "Keystone",
    "Lighthouse",
    "Northstar",
    "Evolve",
    "Harmony",
    "Summit",
    "Spire",
    "Ascend",
    "Elevate",
    "Discovery",
    "Odyssey",
    "Tapestry",
    "Vantage",
    "Meridian",
    "Thrive",
    "Anchor",
    "Cornerstone",
    "Flourish",
    "Pathways",
    "Reach",
    "Sapling",
];

const TRUST_SUFFIXES: [&str; 8] = [
    "Learning Trust",
    "Academy Trust",
    "Education Trust",
    "Multi-Academy Trust",
    "Learning Partnership",
    "Schools Trust",
    "Academies Trust",
    "Partnership Trust",
];

const CATHOLIC_TRUST_PATRONS: [&str; 12] = [
    "St Joseph",
    "Our Lady",
    "Holy Family",
    "St Benedict",
    "St Francis",
    "Emmaus",
    "Corpus Christi",
    "St Teresa",
    "Holy Cross",
    "St Cuthbert",
    "Sacred Heart",
    "St John Bosco",
];

/// Groups academies into trusts, region by region. Catholic academies join Catholic
/// trusts; the rest are split into single-academy trusts and multi-academy trusts taking
/// runs of consecutive academies (so mostly within one LA, sometimes spanning the next).
/// The first academy of each region always stands alone, so every region with academies
/// has at least one single-academy trust at every scale: a case the access rules must get
/// right.
fn form_trusts(
    rng: &mut ChaCha8Rng,
    schools: &mut [SchoolPlan],
    academy: &[bool],
) -> Vec<TrustPlan> {
    let mut trusts = Vec::new();
    let mut names = HashSet::new();
    let mut uid = 2001;
    for (region_index, region) in REGIONS.iter().enumerate() {
        for catholic in [false, true] {
            let members: Vec<usize> = (0..schools.len())
                .filter(|&i| academy[i] && schools[i].region() == region.code)
                .filter(|&i| schools[i].diocese.is_some_and(|d| d.starts_with("RC-")) == catholic)
                .collect();
            let mut next = 0;
            while next < members.len() {
                let first = &schools[members[next]];
                let single_share = if first.phase == Phase::Secondary {
                    0.25
                } else {
                    0.08
                };
                let single = (!catholic && next == 0) || chance(rng, single_share);
                let size = if single { 1 } else { mat_size(rng) }.min(members.len() - next);
                let name = if size == 1 {
                    single_trust_name(first)
                } else {
                    multi_trust_name(rng, region_index, catholic)
                };
                let name = unique_trust_name(name, first.la.name, &mut names);
                for &member in &members[next..next + size] {
                    schools[member].trust = Some(trusts.len());
                }
                trusts.push(TrustPlan {
                    uid: uid.to_string(),
                    name,
                    region: region.code,
                    members: size,
                });
                uid += rng.random_range(1..=9);
                next += size;
            }
        }
    }
    trusts
}

/// Multi-academy trust sizes: mostly small, a long tail up to 40.
fn mat_size(rng: &mut ChaCha8Rng) -> usize {
    let draw: f64 = rng.random();
    if draw < 0.45 {
        rng.random_range(2..=5)
    } else if draw < 0.75 {
        rng.random_range(6..=12)
    } else if draw < 0.93 {
        rng.random_range(13..=25)
    } else {
        rng.random_range(26..=40)
    }
}

fn single_trust_name(school: &SchoolPlan) -> String {
    let stem = school
        .name
        .trim_end_matches(" School")
        .trim_end_matches(" Academy")
        .trim_end_matches(" Primary");
    format!("{stem} Academy Trust")
}

fn multi_trust_name(rng: &mut ChaCha8Rng, region_index: usize, catholic: bool) -> String {
    if catholic {
        let patron = pick(rng, &CATHOLIC_TRUST_PATRONS);
        return match rng.random_range(0..3) {
            0 => format!("{patron} Catholic Multi-Academy Trust"),
            1 => format!("{patron} Catholic Education Trust"),
            _ => format!("{patron} Catholic Academy Trust"),
        };
    }
    let stem = if chance(rng, 0.4) {
        pick(rng, TRUST_FEATURES[region_index])
    } else {
        pick(rng, &TRUST_WORDS)
    };
    format!("{stem} {}", pick(rng, &TRUST_SUFFIXES))
}

fn unique_trust_name(name: String, la_name: &str, used: &mut HashSet<String>) -> String {
    let mut candidate = name.clone();
    let mut n = 2;
    while used.contains(&candidate) {
        candidate = if n == 2 {
            format!("{name} ({la_name})")
        } else {
            format!("{name} ({la_name} {n})")
        };
        n += 1;
    }
    used.insert(candidate.clone());
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn first_period_is_2021() {
        for (i, period) in PERIODS.iter().enumerate() {
            let start = FIRST_PERIOD_START_YEAR + i as i32;
            assert_eq!(*period, format!("{start}/{:02}", (start + 1) % 100));
        }
    }

    #[test]
    fn test_scale_is_small_but_has_the_edge_cases() {
        let register = build(Scale::Test);
        assert_eq!(
            register,
            build(Scale::Test),
            "the register is deterministic"
        );
        let n = register.schools.len();
        assert!((40..=60).contains(&n), "{n} schools");
        assert!(
            register
                .las
                .iter()
                .any(|la| (1..3).contains(&la.schools.len()))
        );
        assert!(register.trusts.iter().any(|t| t.members == 1));
        assert!(register.trusts.iter().any(|t| t.members > 1));
        for code in crate::seed::PUPIL_RECORD_LAS {
            assert!(register.schools.iter().any(|s| s.la.code == code));
        }
    }

    #[test]
    fn register_rules_hold_at_demo_and_national_scale() {
        for (scale, range) in [
            (Scale::Demo, 1_800..=2_200),
            (Scale::National, 21_500..=22_500),
        ] {
            let register = build(scale);
            let schools = &register.schools;
            assert!(
                range.contains(&schools.len()),
                "{scale:?}: {}",
                schools.len()
            );
            assert!(register.las.iter().all(|la| !la.schools.is_empty()));
            assert!(register.las.iter().any(|la| la.schools.len() < 3));
            assert!(register.trusts.iter().any(|t| t.members == 1));
            assert!(
                register
                    .trusts
                    .iter()
                    .all(|t| (1..=40).contains(&t.members))
            );

            let urns: HashSet<_> = schools.iter().map(|s| s.urn).collect();
            assert_eq!(urns.len(), schools.len(), "URNs are unique");
            assert!(
                schools
                    .iter()
                    .all(|s| (100_000..1_000_000).contains(&s.urn))
            );
            let trust_names: HashSet<_> = register.trusts.iter().map(|t| &t.name).collect();
            assert_eq!(trust_names.len(), register.trusts.len());

            let mut per_la: HashMap<_, HashSet<_>> = HashMap::new();
            for school in schools {
                assert!(
                    per_la
                        .entry(school.la.code)
                        .or_default()
                        .insert(&school.name)
                );
                let academy_type = matches!(
                    school.establishment_type,
                    EstablishmentType::AcademyConverter
                        | EstablishmentType::AcademySponsorLed
                        | EstablishmentType::FreeSchool
                        | EstablishmentType::AcademySpecial
                        | EstablishmentType::AcademyAlternativeProvision
                );
                assert_eq!(academy_type, school.trust.is_some(), "{}", school.name);
                if let Some(trust) = school.trust {
                    assert_eq!(register.trusts[trust].region, school.region());
                }
                let church_type = matches!(
                    school.establishment_type,
                    EstablishmentType::VoluntaryAided | EstablishmentType::VoluntaryControlled
                );
                if church_type {
                    assert!(school.diocese.is_some());
                }
                if school.diocese.is_some() {
                    assert!(church_type || academy_type, "{}", school.name);
                }
            }

            let share = |phase| {
                schools.iter().filter(|s| s.phase == phase).count() as f64 / schools.len() as f64
            };
            assert!((0.74..0.81).contains(&share(Phase::Primary)));
            assert!((0.13..0.19).contains(&share(Phase::Secondary)));
            let closed = schools.iter().filter(|s| !s.is_open()).count() as f64;
            assert!((0.01..0.05).contains(&(closed / schools.len() as f64)));
        }
    }
}
