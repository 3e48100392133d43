//! Static reference data: the real geography the demo data hangs on, and the indicator
//! catalogue.
//!
//! Regions, local authorities (with their DfE three-digit codes, current boundaries) and
//! dioceses are real, so that a partner looking at the demo recognises their own patch.
//! The per-LA figures are approximations chosen to make areas differ in the ways people
//! expect (school counts, deprivation, English as an additional language, how rural the
//! area is); they are not official statistics and nothing depends on their precision.

use crate::domain::{Polarity, Unit};

/// An English region (ONS code and name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub code: &'static str,
    pub name: &'static str,
}

const NE: &str = "E12000001";
const NW: &str = "E12000002";
const YH: &str = "E12000003";
const EM: &str = "E12000004";
const WM: &str = "E12000005";
const EE: &str = "E12000006";
const LO: &str = "E12000007";
/// London's region code; London's disadvantaged pupils do notably better than elsewhere.
pub const LONDON: &str = LO;
const SE: &str = "E12000008";
const SW: &str = "E12000009";

pub const REGIONS: [Region; 9] = [
    Region {
        code: NE,
        name: "North East",
    },
    Region {
        code: NW,
        name: "North West",
    },
    Region {
        code: YH,
        name: "Yorkshire and The Humber",
    },
    Region {
        code: EM,
        name: "East Midlands",
    },
    Region {
        code: WM,
        name: "West Midlands",
    },
    Region {
        code: EE,
        name: "East of England",
    },
    Region {
        code: LO,
        name: "London",
    },
    Region {
        code: SE,
        name: "South East",
    },
    Region {
        code: SW,
        name: "South West",
    },
];

/// What kind of place an LA is. Drives school sizes and how many tiny rural primaries it
/// has; inner London is kept apart because its schools and pupils differ markedly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    InnerLondon,
    OuterLondon,
    /// Metropolitan boroughs and urban unitary authorities.
    Urban,
    /// Shire counties and largely rural unitary authorities.
    Shire,
}

/// A local authority with the characteristics the simulation draws on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocalAuthority {
    /// The DfE three-digit LA code, e.g. `852`.
    pub code: &'static str,
    pub name: &'static str,
    /// ONS code of the region.
    pub region: &'static str,
    /// Approximate number of state-funded schools (all phases, special and AP included).
    pub schools: u32,
    /// Approximate share of pupils who are disadvantaged.
    pub disadvantaged: f64,
    /// Approximate share of pupils with English as an additional language.
    pub eal: f64,
    pub setting: Setting,
    /// Code of the Church of England diocese covering most of the LA.
    pub ce_diocese: &'static str,
    /// Code of the Roman Catholic diocese covering most of the LA.
    pub rc_diocese: &'static str,
}

#[allow(clippy::too_many_arguments)]
const fn la(
    code: &'static str,
    name: &'static str,
    region: &'static str,
    schools: u32,
    disadvantaged: f64,
    eal: f64,
    setting: Setting,
    ce_diocese: &'static str,
    rc_diocese: &'static str,
) -> LocalAuthority {
    LocalAuthority {
        code,
        name,
        region,
        schools,
        disadvantaged,
        eal,
        setting,
        ce_diocese,
        rc_diocese,
    }
}

use Setting::{InnerLondon as IL, OuterLondon as OL, Shire as SH, Urban as UR};

/// Every local authority in England. Within each region the list walks roughly across
/// the map, so neighbouring entries are usually neighbouring areas: trusts are formed
/// from runs of consecutive schools and so sometimes span adjacent LAs, as real ones do.
#[rustfmt::skip]
pub const LOCAL_AUTHORITIES: [LocalAuthority; 153] = [
    la("929", "Northumberland",                      NE, 170, 0.24, 0.02, SH, "CE-NEW", "RC-HEX"),
    la("392", "North Tyneside",                      NE,  80, 0.24, 0.04, UR, "CE-NEW", "RC-HEX"),
    la("391", "Newcastle upon Tyne",                 NE, 100, 0.38, 0.18, UR, "CE-NEW", "RC-HEX"),
    la("390", "Gateshead",                           NE,  90, 0.31, 0.06, UR, "CE-DUR", "RC-HEX"),
    la("393", "South Tyneside",                      NE,  65, 0.36, 0.05, UR, "CE-DUR", "RC-HEX"),
    la("394", "Sunderland",                          NE, 115, 0.36, 0.06, UR, "CE-DUR", "RC-HEX"),
    la("840", "County Durham",                       NE, 270, 0.31, 0.03, SH, "CE-DUR", "RC-HEX"),
    la("841", "Darlington",                          NE,  45, 0.30, 0.06, UR, "CE-DUR", "RC-HEX"),
    la("805", "Hartlepool",                          NE,  40, 0.40, 0.03, UR, "CE-DUR", "RC-HEX"),
    la("808", "Stockton-on-Tees",                    NE,  80, 0.30, 0.07, UR, "CE-DUR", "RC-HEX"),
    la("806", "Middlesbrough",                       NE,  55, 0.45, 0.15, UR, "CE-YOR", "RC-MID"),
    la("807", "Redcar and Cleveland",                NE,  60, 0.37, 0.02, UR, "CE-YOR", "RC-MID"),

    la("942", "Cumberland",                          NW, 170, 0.27, 0.03, SH, "CE-CAR", "RC-LAN"),
    la("943", "Westmorland and Furness",             NW, 170, 0.19, 0.03, SH, "CE-CAR", "RC-LAN"),
    la("888", "Lancashire",                          NW, 620, 0.25, 0.10, SH, "CE-BLA", "RC-LAN"),
    la("890", "Blackpool",                           NW,  45, 0.45, 0.06, UR, "CE-BLA", "RC-LAN"),
    la("889", "Blackburn with Darwen",               NW,  80, 0.33, 0.42, UR, "CE-BLA", "RC-SAL"),
    la("350", "Bolton",                              NW, 135, 0.32, 0.26, UR, "CE-MAN", "RC-SAL"),
    la("351", "Bury",                                NW,  85, 0.26, 0.15, UR, "CE-MAN", "RC-SAL"),
    la("354", "Rochdale",                            NW,  95, 0.35, 0.25, UR, "CE-MAN", "RC-SAL"),
    la("353", "Oldham",                              NW, 110, 0.36, 0.30, UR, "CE-MAN", "RC-SAL"),
    la("352", "Manchester",                          NW, 205, 0.42, 0.42, UR, "CE-MAN", "RC-SAL"),
    la("355", "Salford",                             NW, 100, 0.38, 0.22, UR, "CE-MAN", "RC-SAL"),
    la("359", "Wigan",                               NW, 130, 0.28, 0.05, UR, "CE-LIV", "RC-LIV"),
    la("342", "St. Helens",                          NW,  70, 0.31, 0.03, UR, "CE-LIV", "RC-LIV"),
    la("340", "Knowsley",                            NW,  60, 0.45, 0.05, UR, "CE-LIV", "RC-LIV"),
    la("343", "Sefton",                              NW, 110, 0.30, 0.04, UR, "CE-LIV", "RC-LIV"),
    la("341", "Liverpool",                           NW, 190, 0.42, 0.15, UR, "CE-LIV", "RC-LIV"),
    la("344", "Wirral",                              NW, 125, 0.32, 0.04, UR, "CE-CHE", "RC-SHR"),
    la("876", "Halton",                              NW,  70, 0.38, 0.03, UR, "CE-CHE", "RC-SHR"),
    la("877", "Warrington",                          NW,  90, 0.22, 0.07, UR, "CE-LIV", "RC-LIV"),
    la("358", "Trafford",                            NW,  95, 0.18, 0.17, UR, "CE-CHE", "RC-SAL"),
    la("356", "Stockport",                           NW, 120, 0.22, 0.11, UR, "CE-CHE", "RC-SHR"),
    la("357", "Tameside",                            NW, 100, 0.33, 0.13, UR, "CE-MAN", "RC-SHR"),
    la("895", "Cheshire East",                       NW, 160, 0.17, 0.06, SH, "CE-CHE", "RC-SHR"),
    la("896", "Cheshire West and Chester",           NW, 165, 0.20, 0.05, SH, "CE-CHE", "RC-SHR"),

    la("815", "North Yorkshire",                     YH, 380, 0.18, 0.04, SH, "CE-YOR", "RC-MID"),
    la("816", "York",                                YH,  65, 0.17, 0.09, UR, "CE-YOR", "RC-MID"),
    la("811", "East Riding of Yorkshire",            YH, 160, 0.18, 0.03, SH, "CE-YOR", "RC-MID"),
    la("810", "Kingston upon Hull, City of",         YH,  95, 0.42, 0.14, UR, "CE-YOR", "RC-MID"),
    la("813", "North Lincolnshire",                  YH,  75, 0.28, 0.09, UR, "CE-LIN", "RC-NOT"),
    la("812", "North East Lincolnshire",             YH,  60, 0.36, 0.05, UR, "CE-LIN", "RC-NOT"),
    la("371", "Doncaster",                           YH, 125, 0.33, 0.10, UR, "CE-SHE", "RC-HAL"),
    la("372", "Rotherham",                           YH, 120, 0.32, 0.11, UR, "CE-SHE", "RC-HAL"),
    la("373", "Sheffield",                           YH, 175, 0.33, 0.21, UR, "CE-SHE", "RC-HAL"),
    la("370", "Barnsley",                            YH,  95, 0.32, 0.04, UR, "CE-SHE", "RC-HAL"),
    la("384", "Wakefield",                           YH, 145, 0.30, 0.09, UR, "CE-LEE", "RC-LEE"),
    la("382", "Kirklees",                            YH, 185, 0.30, 0.25, UR, "CE-LEE", "RC-LEE"),
    la("381", "Calderdale",                          YH, 105, 0.29, 0.18, UR, "CE-LEE", "RC-LEE"),
    la("380", "Bradford",                            YH, 215, 0.35, 0.40, UR, "CE-LEE", "RC-LEE"),
    la("383", "Leeds",                               YH, 290, 0.32, 0.22, UR, "CE-LEE", "RC-LEE"),

    la("925", "Lincolnshire",                        EM, 380, 0.24, 0.08, SH, "CE-LIN", "RC-NOT"),
    la("857", "Rutland",                             EM,  20, 0.12, 0.04, SH, "CE-PET", "RC-NOT"),
    la("940", "North Northamptonshire",              EM, 160, 0.25, 0.12, SH, "CE-PET", "RC-NTH"),
    la("941", "West Northamptonshire",               EM, 180, 0.22, 0.16, SH, "CE-PET", "RC-NTH"),
    la("855", "Leicestershire",                      EM, 290, 0.17, 0.09, SH, "CE-LEI", "RC-NOT"),
    la("856", "Leicester",                           EM, 115, 0.33, 0.52, UR, "CE-LEI", "RC-NOT"),
    la("891", "Nottinghamshire",                     EM, 360, 0.25, 0.07, SH, "CE-SOU", "RC-NOT"),
    la("892", "Nottingham",                          EM, 105, 0.42, 0.30, UR, "CE-SOU", "RC-NOT"),
    la("831", "Derby",                               EM,  95, 0.33, 0.27, UR, "CE-DER", "RC-NOT"),
    la("830", "Derbyshire",                          EM, 420, 0.24, 0.04, SH, "CE-DER", "RC-NOT"),

    la("860", "Staffordshire",                       WM, 410, 0.22, 0.06, SH, "CE-LIC", "RC-BIR"),
    la("861", "Stoke-on-Trent",                      WM,  95, 0.38, 0.22, UR, "CE-LIC", "RC-BIR"),
    la("893", "Shropshire",                          WM, 160, 0.21, 0.04, SH, "CE-LIC", "RC-SHR"),
    la("894", "Telford and Wrekin",                  WM,  80, 0.32, 0.12, UR, "CE-LIC", "RC-SHR"),
    la("336", "Wolverhampton",                       WM, 100, 0.38, 0.30, UR, "CE-LIC", "RC-BIR"),
    la("335", "Walsall",                             WM, 120, 0.38, 0.25, UR, "CE-LIC", "RC-BIR"),
    la("333", "Sandwell",                            WM, 120, 0.40, 0.38, UR, "CE-LIC", "RC-BIR"),
    la("332", "Dudley",                              WM, 105, 0.32, 0.14, UR, "CE-WOR", "RC-BIR"),
    la("330", "Birmingham",                          WM, 440, 0.42, 0.45, UR, "CE-BIR", "RC-BIR"),
    la("334", "Solihull",                            WM,  75, 0.22, 0.13, UR, "CE-BIR", "RC-BIR"),
    la("331", "Coventry",                            WM, 115, 0.35, 0.35, UR, "CE-COV", "RC-BIR"),
    la("937", "Warwickshire",                        WM, 250, 0.20, 0.10, SH, "CE-COV", "RC-BIR"),
    la("885", "Worcestershire",                      WM, 240, 0.21, 0.07, SH, "CE-WOR", "RC-BIR"),
    la("884", "Herefordshire, County of",            WM,  95, 0.21, 0.09, SH, "CE-HER", "RC-CDM"),

    la("926", "Norfolk",                             EE, 430, 0.26, 0.09, SH, "CE-NOR", "RC-EA"),
    la("935", "Suffolk",                             EE, 330, 0.24, 0.09, SH, "CE-STE", "RC-EA"),
    la("873", "Cambridgeshire",                      EE, 260, 0.18, 0.15, SH, "CE-ELY", "RC-EA"),
    la("874", "Peterborough",                        EE,  80, 0.32, 0.38, UR, "CE-PET", "RC-EA"),
    la("822", "Bedford",                             EE,  85, 0.25, 0.25, UR, "CE-STA", "RC-NTH"),
    la("823", "Central Bedfordshire",                EE, 140, 0.18, 0.09, SH, "CE-STA", "RC-NTH"),
    la("821", "Luton",                               EE,  80, 0.33, 0.50, UR, "CE-STA", "RC-NTH"),
    la("919", "Hertfordshire",                       EE, 530, 0.16, 0.17, SH, "CE-STA", "RC-WES"),
    la("881", "Essex",                               EE, 560, 0.21, 0.09, SH, "CE-CHM", "RC-BRW"),
    la("882", "Southend-on-Sea",                     EE,  55, 0.27, 0.15, UR, "CE-CHM", "RC-BRW"),
    la("883", "Thurrock",                            EE,  60, 0.26, 0.20, UR, "CE-CHM", "RC-BRW"),

    la("201", "City of London",                      LO,   1, 0.30, 0.45, IL, "CE-LON", "RC-WES"),
    la("211", "Tower Hamlets",                       LO,  95, 0.45, 0.70, IL, "CE-LON", "RC-WES"),
    la("204", "Hackney",                             LO,  75, 0.40, 0.45, IL, "CE-LON", "RC-WES"),
    la("206", "Islington",                           LO,  60, 0.44, 0.40, IL, "CE-LON", "RC-WES"),
    la("202", "Camden",                              LO,  60, 0.38, 0.50, IL, "CE-LON", "RC-WES"),
    la("213", "Westminster",                         LO,  55, 0.38, 0.65, IL, "CE-LON", "RC-WES"),
    la("207", "Kensington and Chelsea",              LO,  35, 0.34, 0.55, IL, "CE-LON", "RC-WES"),
    la("205", "Hammersmith and Fulham",              LO,  55, 0.36, 0.45, IL, "CE-LON", "RC-WES"),
    la("212", "Wandsworth",                          LO,  80, 0.30, 0.42, IL, "CE-SWK", "RC-SWK"),
    la("208", "Lambeth",                             LO,  80, 0.40, 0.42, IL, "CE-SWK", "RC-SWK"),
    la("210", "Southwark",                           LO, 100, 0.40, 0.45, IL, "CE-SWK", "RC-SWK"),
    la("209", "Lewisham",                            LO,  90, 0.36, 0.33, IL, "CE-SWK", "RC-SWK"),
    la("203", "Greenwich",                           LO,  90, 0.35, 0.40, OL, "CE-SWK", "RC-SWK"),
    la("303", "Bexley",                              LO,  80, 0.22, 0.17, OL, "CE-ROC", "RC-SWK"),
    la("305", "Bromley",                             LO, 100, 0.18, 0.18, OL, "CE-ROC", "RC-SWK"),
    la("306", "Croydon",                             LO, 120, 0.33, 0.42, OL, "CE-SWK", "RC-SWK"),
    la("319", "Sutton",                              LO,  60, 0.18, 0.30, OL, "CE-SWK", "RC-SWK"),
    la("315", "Merton",                              LO,  60, 0.24, 0.42, OL, "CE-SWK", "RC-SWK"),
    la("314", "Kingston upon Thames",                LO,  50, 0.17, 0.38, OL, "CE-SWK", "RC-SWK"),
    la("318", "Richmond upon Thames",                LO,  60, 0.14, 0.25, OL, "CE-LON", "RC-WES"),
    la("313", "Hounslow",                            LO,  85, 0.27, 0.55, OL, "CE-LON", "RC-WES"),
    la("312", "Hillingdon",                          LO, 100, 0.27, 0.45, OL, "CE-LON", "RC-WES"),
    la("307", "Ealing",                              LO, 100, 0.28, 0.55, OL, "CE-LON", "RC-WES"),
    la("310", "Harrow",                              LO,  60, 0.22, 0.60, OL, "CE-LON", "RC-WES"),
    la("304", "Brent",                               LO,  90, 0.30, 0.62, OL, "CE-LON", "RC-WES"),
    la("302", "Barnet",                              LO, 135, 0.24, 0.50, OL, "CE-LON", "RC-WES"),
    la("308", "Enfield",                             LO, 100, 0.35, 0.52, OL, "CE-LON", "RC-WES"),
    la("309", "Haringey",                            LO,  80, 0.36, 0.50, IL, "CE-LON", "RC-WES"),
    la("320", "Waltham Forest",                      LO,  85, 0.30, 0.52, OL, "CE-CHM", "RC-BRW"),
    la("317", "Redbridge",                           LO,  80, 0.22, 0.58, OL, "CE-CHM", "RC-BRW"),
    la("311", "Havering",                            LO,  85, 0.23, 0.18, OL, "CE-CHM", "RC-BRW"),
    la("301", "Barking and Dagenham",                LO,  65, 0.34, 0.48, OL, "CE-CHM", "RC-BRW"),
    la("316", "Newham",                              LO,  95, 0.34, 0.72, IL, "CE-CHM", "RC-BRW"),

    la("886", "Kent",                                SE, 590, 0.24, 0.12, SH, "CE-CAN", "RC-SWK"),
    la("887", "Medway",                              SE, 100, 0.28, 0.14, UR, "CE-ROC", "RC-SWK"),
    la("845", "East Sussex",                         SE, 190, 0.25, 0.08, SH, "CE-CHI", "RC-AB"),
    la("846", "Brighton and Hove",                   SE,  80, 0.26, 0.14, UR, "CE-CHI", "RC-AB"),
    la("938", "West Sussex",                         SE, 290, 0.20, 0.13, SH, "CE-CHI", "RC-AB"),
    la("936", "Surrey",                              SE, 400, 0.13, 0.14, SH, "CE-GFD", "RC-AB"),
    la("850", "Hampshire",                           SE, 530, 0.17, 0.08, SH, "CE-WIN", "RC-PTM"),
    la("852", "Southampton",                         SE,  75, 0.32, 0.25, UR, "CE-WIN", "RC-PTM"),
    la("851", "Portsmouth",                          SE,  65, 0.33, 0.18, UR, "CE-PTM", "RC-PTM"),
    la("921", "Isle of Wight",                       SE,  50, 0.29, 0.04, SH, "CE-PTM", "RC-PTM"),
    la("869", "West Berkshire",                      SE,  80, 0.15, 0.08, SH, "CE-OXF", "RC-PTM"),
    la("870", "Reading",                             SE,  55, 0.25, 0.38, UR, "CE-OXF", "RC-PTM"),
    la("872", "Wokingham",                           SE,  70, 0.12, 0.20, UR, "CE-OXF", "RC-PTM"),
    la("867", "Bracknell Forest",                    SE,  40, 0.17, 0.15, UR, "CE-OXF", "RC-PTM"),
    la("868", "Windsor and Maidenhead",              SE,  65, 0.13, 0.22, UR, "CE-OXF", "RC-NTH"),
    la("871", "Slough",                              SE,  45, 0.24, 0.55, UR, "CE-OXF", "RC-NTH"),
    la("825", "Buckinghamshire",                     SE, 240, 0.15, 0.17, SH, "CE-OXF", "RC-NTH"),
    la("826", "Milton Keynes",                       SE, 120, 0.25, 0.28, UR, "CE-OXF", "RC-NTH"),
    la("931", "Oxfordshire",                         SE, 290, 0.17, 0.15, SH, "CE-OXF", "RC-BIR"),

    la("908", "Cornwall",                            SW, 280, 0.27, 0.04, SH, "CE-TRU", "RC-PLY"),
    la("420", "Isles of Scilly",                     SW,   1, 0.12, 0.02, SH, "CE-TRU", "RC-PLY"),
    la("879", "Plymouth",                            SW,  95, 0.32, 0.07, UR, "CE-EXE", "RC-PLY"),
    la("878", "Devon",                               SW, 370, 0.22, 0.04, SH, "CE-EXE", "RC-PLY"),
    la("880", "Torbay",                              SW,  40, 0.36, 0.04, UR, "CE-EXE", "RC-PLY"),
    la("933", "Somerset",                            SW, 260, 0.24, 0.05, SH, "CE-BAW", "RC-CLI"),
    la("838", "Dorset",                              SW, 150, 0.20, 0.04, SH, "CE-SAL", "RC-PLY"),
    la("839", "Bournemouth, Christchurch and Poole", SW, 100, 0.23, 0.12, UR, "CE-SAL", "RC-PTM"),
    la("865", "Wiltshire",                           SW, 240, 0.18, 0.07, SH, "CE-SAL", "RC-CLI"),
    la("866", "Swindon",                             SW,  80, 0.26, 0.22, UR, "CE-BRI", "RC-CLI"),
    la("916", "Gloucestershire",                     SW, 300, 0.19, 0.08, SH, "CE-GLO", "RC-CLI"),
    la("803", "South Gloucestershire",               SW, 110, 0.18, 0.09, UR, "CE-BRI", "RC-CLI"),
    la("801", "Bristol, City of",                    SW, 160, 0.32, 0.22, UR, "CE-BRI", "RC-CLI"),
    la("802", "North Somerset",                      SW,  80, 0.19, 0.06, UR, "CE-BAW", "RC-CLI"),
    la("800", "Bath and North East Somerset",        SW,  80, 0.17, 0.08, UR, "CE-BAW", "RC-CLI"),
];

/// A Church of England or Roman Catholic diocese. Codes are made up (real dioceses have
/// no standard short code) but stable, so tokens and tests can name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Diocese {
    pub code: &'static str,
    pub name: &'static str,
    /// The region most of the diocese's schools are in; dioceses ignore region borders.
    pub region: &'static str,
}

const fn diocese(code: &'static str, name: &'static str, region: &'static str) -> Diocese {
    Diocese { code, name, region }
}

#[rustfmt::skip]
pub const DIOCESES: [Diocese; 60] = [
    diocese("CE-NEW", "Diocese of Newcastle",                     NE),
    diocese("CE-DUR", "Diocese of Durham",                        NE),
    diocese("CE-CAR", "Diocese of Carlisle",                      NW),
    diocese("CE-BLA", "Diocese of Blackburn",                     NW),
    diocese("CE-MAN", "Diocese of Manchester",                    NW),
    diocese("CE-LIV", "Diocese of Liverpool",                     NW),
    diocese("CE-CHE", "Diocese of Chester",                       NW),
    diocese("CE-YOR", "Diocese of York",                          YH),
    diocese("CE-LEE", "Diocese of Leeds",                         YH),
    diocese("CE-SHE", "Diocese of Sheffield",                     YH),
    diocese("CE-LIN", "Diocese of Lincoln",                       EM),
    diocese("CE-SOU", "Diocese of Southwell and Nottingham",      EM),
    diocese("CE-DER", "Diocese of Derby",                         EM),
    diocese("CE-LEI", "Diocese of Leicester",                     EM),
    diocese("CE-PET", "Diocese of Peterborough",                  EM),
    diocese("CE-BIR", "Diocese of Birmingham",                    WM),
    diocese("CE-COV", "Diocese of Coventry",                      WM),
    diocese("CE-LIC", "Diocese of Lichfield",                     WM),
    diocese("CE-WOR", "Diocese of Worcester",                     WM),
    diocese("CE-HER", "Diocese of Hereford",                      WM),
    diocese("CE-ELY", "Diocese of Ely",                           EE),
    diocese("CE-NOR", "Diocese of Norwich",                       EE),
    diocese("CE-STE", "Diocese of St Edmundsbury and Ipswich",    EE),
    diocese("CE-CHM", "Diocese of Chelmsford",                    EE),
    diocese("CE-STA", "Diocese of St Albans",                     EE),
    diocese("CE-LON", "Diocese of London",                        LO),
    diocese("CE-SWK", "Diocese of Southwark",                     LO),
    diocese("CE-ROC", "Diocese of Rochester",                     SE),
    diocese("CE-CAN", "Diocese of Canterbury",                    SE),
    diocese("CE-CHI", "Diocese of Chichester",                    SE),
    diocese("CE-GFD", "Diocese of Guildford",                     SE),
    diocese("CE-OXF", "Diocese of Oxford",                        SE),
    diocese("CE-WIN", "Diocese of Winchester",                    SE),
    diocese("CE-PTM", "Diocese of Portsmouth",                    SE),
    diocese("CE-SAL", "Diocese of Salisbury",                     SW),
    diocese("CE-BRI", "Diocese of Bristol",                       SW),
    diocese("CE-GLO", "Diocese of Gloucester",                    SW),
    diocese("CE-BAW", "Diocese of Bath and Wells",                SW),
    diocese("CE-EXE", "Diocese of Exeter",                        SW),
    diocese("CE-TRU", "Diocese of Truro",                         SW),
    diocese("RC-HEX", "RC Diocese of Hexham and Newcastle",       NE),
    diocese("RC-LAN", "RC Diocese of Lancaster",                  NW),
    diocese("RC-SAL", "RC Diocese of Salford",                    NW),
    diocese("RC-LIV", "RC Archdiocese of Liverpool",              NW),
    diocese("RC-SHR", "RC Diocese of Shrewsbury",                 NW),
    diocese("RC-MID", "RC Diocese of Middlesbrough",              YH),
    diocese("RC-LEE", "RC Diocese of Leeds",                      YH),
    diocese("RC-HAL", "RC Diocese of Hallam",                     YH),
    diocese("RC-NOT", "RC Diocese of Nottingham",                 EM),
    diocese("RC-NTH", "RC Diocese of Northampton",                EM),
    diocese("RC-BIR", "RC Archdiocese of Birmingham",             WM),
    diocese("RC-CDM", "RC Archdiocese of Cardiff-Menevia",        WM),
    diocese("RC-EA",  "RC Diocese of East Anglia",                EE),
    diocese("RC-BRW", "RC Diocese of Brentwood",                  EE),
    diocese("RC-WES", "RC Archdiocese of Westminster",            LO),
    diocese("RC-SWK", "RC Archdiocese of Southwark",              LO),
    diocese("RC-AB",  "RC Diocese of Arundel and Brighton",       SE),
    diocese("RC-PTM", "RC Diocese of Portsmouth",                 SE),
    diocese("RC-CLI", "RC Diocese of Clifton",                    SW),
    diocese("RC-PLY", "RC Diocese of Plymouth",                   SW),
];

/// The LAs present at `Scale::Test`: the pupil-record pair (Hampshire, Southampton), their
/// neighbours, two London boroughs and the one-school City of London, so that small-area
/// and cross-border cases are exercised by the quickest data set.
pub const TEST_LAS: [&str; 7] = ["850", "852", "851", "921", "212", "202", "201"];

/// Where pupils cross an LA border to go to school: `(school LA, home LA, share of the
/// school LA's pupils who live in the home LA)`. Only the pupil-record LAs are listed,
/// because home LA is only stored on pupil records.
pub const CROSS_BORDER: [(&str, &str, f64); 2] = [("852", "850", 0.08), ("850", "852", 0.03)];

/// Non-statutory partners that hold an organisation row but no schools.
pub const OTHER_PARTNERS: [(&str, &str); 2] = [
    ("RES-01", "Education Policy Research Unit"),
    ("VCS-01", "Alternative Provision Quality Network"),
];

/// The indicators the seed publishes. Each variant's definition is in [`Metric::def`];
/// the order here is the order figures are emitted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    AttendanceRate,
    PersistentAbsenceRate,
    SuspensionRate,
    PermanentExclusionRate,
    EheCount,
    CmeCount,
    Ks2RwmExpectedPct,
    Ks4Attainment8,
    Ks4Progress8,
    DisadvantagedPct,
    EhcpPct,
}

/// The catalogue entry of a metric, as stored in the `indicator` table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricDef {
    pub code: &'static str,
    pub name: &'static str,
    pub unit: Unit,
    pub polarity: Polarity,
    /// `value = numerator / denominator * multiplier`.
    pub multiplier: f64,
    pub description: &'static str,
    /// Numerators are summed as integers in units of `1 / numerator_scale` (Attainment 8
    /// in tenths, Progress 8 in hundredths, everything else whole pupils, sessions or
    /// events) so that area totals are exact sums of school figures.
    pub numerator_scale: i64,
}

impl Metric {
    pub const ALL: [Metric; 11] = [
        Metric::AttendanceRate,
        Metric::PersistentAbsenceRate,
        Metric::SuspensionRate,
        Metric::PermanentExclusionRate,
        Metric::EheCount,
        Metric::CmeCount,
        Metric::Ks2RwmExpectedPct,
        Metric::Ks4Attainment8,
        Metric::Ks4Progress8,
        Metric::DisadvantagedPct,
        Metric::EhcpPct,
    ];

    pub fn def(self) -> &'static MetricDef {
        &METRIC_DEFS[self as usize]
    }
}

const fn metric(
    code: &'static str,
    name: &'static str,
    unit: Unit,
    polarity: Polarity,
    description: &'static str,
) -> MetricDef {
    let multiplier = match unit {
        Unit::Percent | Unit::RatePer100 => 100.0,
        Unit::Count | Unit::Score => 1.0,
    };
    MetricDef {
        code,
        name,
        unit,
        polarity,
        multiplier,
        description,
        numerator_scale: 1,
    }
}

/// Indexed by `Metric as usize`; `metric_defs_follow_the_enum` checks the order.
const METRIC_DEFS: [MetricDef; 11] = [
    metric(
        "attendance_rate",
        "Attendance rate",
        Unit::Percent,
        Polarity::HigherIsBetter,
        "Sessions attended (numerator) as a percentage of possible sessions (denominator).",
    ),
    metric(
        "persistent_absence_rate",
        "Persistent absence rate",
        Unit::Percent,
        Polarity::LowerIsBetter,
        "Pupils who missed 10% or more of their possible sessions (numerator) as a \
         percentage of pupils on roll (denominator).",
    ),
    metric(
        "suspension_rate",
        "Suspension rate",
        Unit::RatePer100,
        Polarity::LowerIsBetter,
        "Suspensions in the year (numerator) per 100 pupils on roll (denominator); one \
         pupil can be suspended more than once.",
    ),
    metric(
        "permanent_exclusion_rate",
        "Permanent exclusion rate",
        Unit::RatePer100,
        Polarity::LowerIsBetter,
        "Permanent exclusions in the year (numerator) per 100 pupils on roll (denominator).",
    ),
    metric(
        "ehe_count",
        "Pupils leaving for elective home education",
        Unit::Count,
        Polarity::Neutral,
        "Number of pupils taken off roll during the year to be educated at home \
         (numerator); no denominator.",
    ),
    metric(
        "cme_count",
        "Children missing education",
        Unit::Count,
        Polarity::LowerIsBetter,
        "Number of pupils who left the roll during the year without a known destination \
         in education (numerator); no denominator.",
    ),
    metric(
        "ks2_rwm_expected_pct",
        "KS2 reading, writing and maths at the expected standard",
        Unit::Percent,
        Polarity::HigherIsBetter,
        "Year 6 pupils meeting the expected standard in reading, writing and maths \
         (numerator) as a percentage of Year 6 pupils (denominator).",
    ),
    MetricDef {
        numerator_scale: 10,
        ..metric(
            "ks4_attainment8",
            "Average Attainment 8 score",
            Unit::Score,
            Polarity::HigherIsBetter,
            "Sum of Year 11 pupils' Attainment 8 scores (numerator) divided by the number \
             of Year 11 pupils (denominator).",
        )
    },
    MetricDef {
        numerator_scale: 100,
        ..metric(
            "ks4_progress8",
            "Average Progress 8 score",
            Unit::Score,
            Polarity::HigherIsBetter,
            "Sum of Year 11 pupils' Progress 8 scores (numerator) divided by the number of \
             Year 11 pupils (denominator); 0 is the national average progress.",
        )
    },
    metric(
        "disadvantaged_pct",
        "Disadvantaged pupils",
        Unit::Percent,
        Polarity::Neutral,
        "Disadvantaged pupils (numerator) as a percentage of pupils on roll (denominator); \
         context for every other figure.",
    ),
    metric(
        "ehcp_pct",
        "Pupils with an education, health and care plan",
        Unit::Percent,
        Polarity::Neutral,
        "Pupils with an EHC plan (numerator) as a percentage of pupils on roll \
         (denominator); context for every other figure.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_cross_references_resolve() {
        let las: HashSet<_> = LOCAL_AUTHORITIES.iter().map(|la| la.code).collect();
        assert_eq!(las.len(), LOCAL_AUTHORITIES.len());
        let dioceses: HashSet<_> = DIOCESES.iter().map(|d| d.code).collect();
        assert_eq!(dioceses.len(), DIOCESES.len());
        let regions: HashSet<_> = REGIONS.iter().map(|r| r.code).collect();
        for la in &LOCAL_AUTHORITIES {
            assert!(regions.contains(la.region), "{}", la.name);
            assert!(dioceses.contains(la.ce_diocese), "{}", la.name);
            assert!(dioceses.contains(la.rc_diocese), "{}", la.name);
            assert!(la.code.len() == 3 && la.code.bytes().all(|b| b.is_ascii_digit()));
        }
        assert!(DIOCESES.iter().all(|d| regions.contains(d.region)));
        for code in TEST_LAS.iter().chain(crate::seed::PUPIL_RECORD_LAS.iter()) {
            assert!(las.contains(code), "{code}");
        }
        for (school_la, home_la, _) in CROSS_BORDER {
            assert!(las.contains(school_la) && las.contains(home_la));
        }
        // Every region has an LA and every diocese has an LA pointing at it.
        for region in &REGIONS {
            assert!(LOCAL_AUTHORITIES.iter().any(|la| la.region == region.code));
        }
        for d in &DIOCESES {
            assert!(
                LOCAL_AUTHORITIES
                    .iter()
                    .any(|la| la.ce_diocese == d.code || la.rc_diocese == d.code),
                "{}",
                d.code
            );
        }
    }

    #[test]
    fn national_school_count_is_realistic() {
        let total: u32 = LOCAL_AUTHORITIES.iter().map(|la| la.schools).sum();
        assert!((21_500..=22_500).contains(&total), "{total}");
    }

    #[test]
    fn metric_defs_follow_the_enum() {
        let codes: Vec<_> = Metric::ALL.iter().map(|m| m.def().code).collect();
        assert_eq!(
            codes,
            [
                "attendance_rate",
                "persistent_absence_rate",
                "suspension_rate",
                "permanent_exclusion_rate",
                "ehe_count",
                "cme_count",
                "ks2_rwm_expected_pct",
                "ks4_attainment8",
                "ks4_progress8",
                "disadvantaged_pct",
                "ehcp_pct",
            ]
        );
        for m in Metric::ALL {
            let def = m.def();
            let expected = match def.unit {
                Unit::Percent | Unit::RatePer100 => 100.0,
                Unit::Count | Unit::Score => 1.0,
            };
            assert_eq!(def.multiplier, expected, "{}", def.code);
        }
    }
}
