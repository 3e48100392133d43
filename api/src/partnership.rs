//! The improvement partnership's vocabulary and rules that do not depend on who asks:
//! themes and judgements, the lifecycles of self-evaluations, peer reviews and support,
//! and the shape of a self-evaluation's text.
//!
//! Partners use the pooled baseline together: they write self-evaluations that pull
//! their key figures live from it, challenge one another in peer reviews, post
//! requests and offers of support, and help schools through their inspection window.
//! Who may read or write each record is the access policy's business (`access`); the
//! GraphQL resolvers (`graphql::self_evaluation`, `peer_review`, `support`,
//! `inspection`) join the two. What is here is pure, so the lifecycles are tested as
//! tables, without a database.

use std::fmt::Display;

use async_graphql::Enum;
use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::config::InspectionCycle;
use crate::domain::stored_enum;
use crate::error::{Error, Result};

stored_enum! {
    /// What a peer review, a request or an offer of support is about. Requests are
    /// matched to offers on it.
    Theme {
        Attendance => "ATTENDANCE",
        BehaviourAndExclusions => "BEHAVIOUR_AND_EXCLUSIONS",
        Send => "SEND",
        Disadvantage => "DISADVANTAGE",
        AlternativeProvision => "ALTERNATIVE_PROVISION",
        ElectiveHomeEducation => "ELECTIVE_HOME_EDUCATION",
        ChildrenMissingEducation => "CHILDREN_MISSING_EDUCATION",
        Curriculum => "CURRICULUM",
        Leadership => "LEADERSHIP",
        Safeguarding => "SAFEGUARDING",
        InspectionReadiness => "INSPECTION_READINESS",
    }
}

stored_enum! {
    /// A self-evaluation section's judgement, on the inspectorate's report-card scale.
    Judgement {
        Exceptional => "EXCEPTIONAL",
        Strong => "STRONG",
        Expected => "EXPECTED",
        NeedsAttention => "NEEDS_ATTENTION",
        UrgentImprovement => "URGENT_IMPROVEMENT",
    }
}

stored_enum! {
    /// Where a self-evaluation is in its life.
    SelfEvaluationStatus {
        /// Only the author's organisation sees it.
        Draft => "DRAFT",
        /// Its audience sees it too.
        Shared => "SHARED",
        /// A partner it was shared with has reviewed it; no more edits. Other partners
        /// it was shared with may still review it, each once.
        Reviewed => "REVIEWED",
    }
}

stored_enum! {
    /// Who a shared self-evaluation is shared with.
    Audience {
        /// The partner organisations named when it was shared.
        Partners => "PARTNERS",
        /// Every partner organisation of the author's region.
        Region => "REGION",
    }
}

stored_enum! {
    /// How a peer review is organised.
    PeerReviewFormat {
        /// Three LAs (or trusts) reviewing one another in turn.
        Triad => "TRIAD",
        /// Reviewers chosen for one theme, such as SEND.
        Thematic => "THEMATIC",
    }
}

stored_enum! {
    PeerReviewStatus {
        Planned => "PLANNED",
        InProgress => "IN_PROGRESS",
        /// Findings recorded; agreed actions may still be added and completed.
        Completed => "COMPLETED",
    }
}

stored_enum! {
    /// An organisation's part in a peer review.
    ParticipantRole {
        Reviewed => "REVIEWED",
        LeadReviewer => "LEAD_REVIEWER",
        Reviewer => "REVIEWER",
    }
}

stored_enum! {
    ActionStatus {
        Open => "OPEN",
        Done => "DONE",
    }
}

stored_enum! {
    /// The shared lifecycle of a request for support and the offer matched with it.
    SupportStatus {
        /// Posted, looking for a match.
        Open => "OPEN",
        /// Paired with an offer (or request); not yet agreed by the offering side.
        Matched => "MATCHED",
        /// Both sides have agreed; the support is under way.
        Agreed => "AGREED",
        /// Finished, or withdrawn before it was matched.
        Closed => "CLOSED",
    }
}

stored_enum! {
    /// How far beyond its own region a request or an offer of support is open.
    SupportReach {
        /// Its own region only.
        Region => "REGION",
        /// Its own region and the neighbouring regions named with it.
        Regions => "REGIONS",
        /// Every region.
        National => "NATIONAL",
    }
}

/// Where a request or an offer of support is open: its home region, and how far
/// beyond it.
#[derive(Clone, Copy, Debug)]
pub struct Reach<'a> {
    pub home: &'a str,
    pub reach: SupportReach,
    /// The regions named with `REGIONS`.
    pub regions: &'a [String],
}

impl Reach<'_> {
    pub fn includes(&self, region: &str) -> bool {
        self.home == region
            || match self.reach {
                SupportReach::Region => false,
                SupportReach::Regions => self.regions.iter().any(|r| r == region),
                SupportReach::National => true,
            }
    }
}

/// Whether a request and an offer can meet: either is open to the other's region. A
/// request opened to the North West can take a North West offer made for its own
/// region, and a national offer can meet any request.
pub fn within_reach(request: &Reach<'_>, offer: &Reach<'_>) -> bool {
    request.includes(offer.home) || offer.includes(request.home)
}

/// The most regions a request or an offer may be opened to by name (there are nine).
pub const MAX_REACH_REGIONS: usize = 8;

/// The regions named for a reach, checked: some (and only) for `REGIONS`, each a region
/// (`known`), never the home region, each once.
pub fn reach_regions(
    reach: SupportReach,
    home: &str,
    regions: Vec<String>,
    known: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    if reach != SupportReach::Regions {
        if !regions.is_empty() {
            return Err(Error::bad_input(format!(
                "openTo names regions only with reach REGIONS, not {reach}"
            )));
        }
        return Ok(regions);
    }
    let mut named: Vec<String> = Vec::with_capacity(regions.len());
    for code in regions {
        let code = code.trim().to_owned();
        if !known(&code) {
            return Err(Error::bad_input(format!(
                "openTo: {code:?} is not a region"
            )));
        }
        if code != home && !named.contains(&code) {
            named.push(code);
        }
    }
    if named.is_empty() {
        return Err(Error::bad_input(
            "reach REGIONS needs openTo: at least one region besides its own",
        ));
    }
    if named.len() > MAX_REACH_REGIONS {
        return Err(Error::bad_input(format!(
            "openTo names at most {MAX_REACH_REGIONS} regions"
        )));
    }
    Ok(named)
}

stored_enum! {
    Urgency {
        Low => "LOW",
        Medium => "MEDIUM",
        High => "HIGH",
    }
}

stored_enum! {
    /// Whether someone in the inspection expert directory can be called on now.
    Availability {
        Available => "AVAILABLE",
        Limited => "LIMITED",
        Unavailable => "UNAVAILABLE",
    }
}

stored_enum! {
    /// A buddy pairing is made by request and acceptance: the school's side asks, the
    /// buddy's side answers, and either side ends it.
    PairingStatus {
        /// Asked for by the school's side; waiting for the buddy's side.
        Requested => "REQUESTED",
        /// Accepted by the buddy's side: under way.
        Active => "ACTIVE",
        /// Turned down by the buddy's side.
        Declined => "DECLINED",
        /// Ended by either side (or withdrawn before it was answered).
        Ended => "ENDED",
    }
}

stored_enum! {
    /// Where a school stands in the inspection cycle on a given day.
    InspectionWindowStatus {
        /// Its window has opened; the inspection is not yet overdue.
        InWindow => "IN_WINDOW",
        /// Past its due date.
        Overdue => "OVERDUE",
        /// No inspection on the register (a new school): it may be called at any time.
        NeverInspected => "NEVER_INSPECTED",
    }
}

/// When a school's inspection window opens, and when the inspection is due (the last
/// day it is not overdue), counted from its last inspection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InspectionDates {
    pub opens_on: NaiveDate,
    pub due_by: NaiveDate,
}

impl InspectionDates {
    pub fn after(last: NaiveDate, cycle: &InspectionCycle) -> Option<InspectionDates> {
        let opens_after = cycle.cycle_months - cycle.window_months;
        Some(InspectionDates {
            opens_on: last.checked_add_months(Months::new(opens_after))?,
            due_by: last.checked_add_months(Months::new(cycle.cycle_months))?,
        })
    }

    /// The status on `as_of`; `None` before the window opens.
    pub fn status(&self, as_of: NaiveDate) -> Option<InspectionWindowStatus> {
        if as_of > self.due_by {
            Some(InspectionWindowStatus::Overdue)
        } else if as_of >= self.opens_on {
            Some(InspectionWindowStatus::InWindow)
        } else {
            None
        }
    }
}

/// Bounds on the last inspection date that put a school in each status on `as_of`,
/// for filtering the register in SQL with the same answers as
/// [`InspectionDates::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowBounds {
    /// Last inspected on or before this day: the window is open (or overdue).
    pub opened: NaiveDate,
    /// Last inspected on or before this day: overdue.
    pub overdue: NaiveDate,
}

impl WindowBounds {
    pub fn on(as_of: NaiveDate, cycle: &InspectionCycle) -> Option<WindowBounds> {
        Some(WindowBounds {
            opened: latest_start(as_of, cycle.cycle_months - cycle.window_months)?,
            overdue: latest_start(as_of.pred_opt()?, cycle.cycle_months)?,
        })
    }
}

/// The latest day `d` with `d + months <= until`. Adding months clamps to the end of
/// shorter months (31 January + 1 month is 28 February), so subtracting is not its exact
/// inverse; stepping forward a few days from the subtraction finds the true bound.
fn latest_start(until: NaiveDate, months: u32) -> Option<NaiveDate> {
    let mut day = until.checked_sub_months(Months::new(months))?;
    while let Some(next) = day.succ_opt()
        && next.checked_add_months(Months::new(months))? <= until
    {
        day = next;
    }
    Some(day)
}

/// A lifecycle: the moves a record's status may make. Anything not listed is refused.
pub trait Lifecycle: Copy + Eq + Display + 'static {
    const MOVES: &'static [(Self, Self)];
}

impl Lifecycle for SelfEvaluationStatus {
    const MOVES: &'static [(Self, Self)] = &[
        (Self::Draft, Self::Shared),
        // Withdrawn for more work: the audience loses sight of it until shared again.
        (Self::Shared, Self::Draft),
        (Self::Shared, Self::Reviewed),
    ];
}

impl Lifecycle for PeerReviewStatus {
    const MOVES: &'static [(Self, Self)] = &[
        (Self::Planned, Self::InProgress),
        (Self::InProgress, Self::Completed),
    ];
}

impl Lifecycle for SupportStatus {
    const MOVES: &'static [(Self, Self)] = &[
        (Self::Open, Self::Matched),
        // Withdrawn before anyone took it up.
        (Self::Open, Self::Closed),
        (Self::Matched, Self::Agreed),
        // The offering side declined: both go back to looking.
        (Self::Matched, Self::Open),
        (Self::Agreed, Self::Closed),
    ];
}

impl Lifecycle for PairingStatus {
    const MOVES: &'static [(Self, Self)] = &[
        (Self::Requested, Self::Active),
        (Self::Requested, Self::Declined),
        // Withdrawn by the school's side, or ended unanswered by either side.
        (Self::Requested, Self::Ended),
        (Self::Active, Self::Ended),
    ];
}

/// Checks one move of the status of `record` `id` (e.g. `self-evaluation` 4). An illegal move is the client's mistake,
/// so it is `BAD_USER_INPUT`, and the message names the move and what is possible
/// instead — a client can show it as it is.
pub fn check_move<S: Lifecycle>(record: &str, id: i32, from: S, to: S) -> Result<()> {
    if S::MOVES.contains(&(from, to)) {
        return Ok(());
    }
    let possible: Vec<String> = S::MOVES
        .iter()
        .filter(|(a, _)| *a == from)
        .map(|(_, b)| b.to_string())
        .collect();
    let instead = if possible.is_empty() {
        format!("{from} is final")
    } else {
        format!("from {from} it can move to {}", possible.join(" or "))
    };
    Err(Error::bad_input(format!(
        "cannot move {record} {id} from {from} to {to}: {instead}"
    )))
}

/// The longest title of any partnership record.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest free text (narrative, findings, detail).
pub const MAX_TEXT_CHARS: usize = 20_000;
/// The longest short text (a name, a heading, a note).
pub const MAX_SHORT_CHARS: usize = 500;
/// Bounds on a self-evaluation's parts, so one document cannot grow without limit.
pub const MAX_SECTIONS: usize = 40;
pub const MAX_PRIORITIES: usize = 20;
pub const MAX_KEY_INDICATORS: usize = 20;

/// Required text, trimmed: empty or too long is a `BAD_USER_INPUT` naming the field.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::bad_input(format!("{field} is required")));
    }
    if value.chars().count() > max_chars {
        return Err(Error::bad_input(format!(
            "{field} is longer than {max_chars} characters"
        )));
    }
    Ok(value.to_owned())
}

/// Optional text, trimmed; blank counts as absent.
pub fn optional_text(field: &str, value: Option<&str>, max_chars: usize) -> Result<Option<String>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => required_text(field, v, max_chars).map(Some),
        None => Ok(None),
    }
}

/// A self-evaluation's text as stored in one version: the sections, the priorities and
/// the *codes* of its key indicators. The figures themselves are never stored; they
/// are read from the baseline whenever the evaluation is read, under the reader's
/// access.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    pub sections: Vec<Section>,
    pub priorities: Vec<String>,
    pub key_indicators: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    pub heading: String,
    /// A [`Judgement`]'s stored text; absent for sections that only describe.
    pub judgement: Option<String>,
    pub narrative: String,
}

impl Content {
    /// Checks sizes and trims text; `known_indicator` says whether a code is in the
    /// catalogue (a key indicator must refer to a real one).
    pub fn validated(self, known_indicator: impl Fn(&str) -> bool) -> Result<Content> {
        if self.sections.len() > MAX_SECTIONS {
            return Err(Error::bad_input(format!("at most {MAX_SECTIONS} sections")));
        }
        if self.priorities.len() > MAX_PRIORITIES {
            return Err(Error::bad_input(format!(
                "at most {MAX_PRIORITIES} priorities"
            )));
        }
        if self.key_indicators.len() > MAX_KEY_INDICATORS {
            return Err(Error::bad_input(format!(
                "at most {MAX_KEY_INDICATORS} key indicators"
            )));
        }
        let sections = self
            .sections
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                Ok(Section {
                    heading: required_text(
                        &format!("sections[{i}].heading"),
                        &s.heading,
                        MAX_SHORT_CHARS,
                    )?,
                    judgement: match s.judgement {
                        Some(text) if Judgement::parse(&text).is_none() => {
                            return Err(Error::bad_input(format!(
                                "sections[{i}].judgement {text:?} is not a judgement"
                            )));
                        }
                        other => other,
                    },
                    narrative: optional_text(
                        &format!("sections[{i}].narrative"),
                        Some(&s.narrative),
                        MAX_TEXT_CHARS,
                    )?
                    .unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let priorities = self
            .priorities
            .iter()
            .enumerate()
            .map(|(i, p)| required_text(&format!("priorities[{i}]"), p, MAX_SHORT_CHARS))
            .collect::<Result<Vec<_>>>()?;
        let mut key_indicators = Vec::with_capacity(self.key_indicators.len());
        for code in self.key_indicators {
            if !known_indicator(&code) {
                return Err(Error::bad_input(format!(
                    "key indicator {code:?} is not in the indicator catalogue"
                )));
            }
            if !key_indicators.contains(&code) {
                key_indicators.push(code);
            }
        }
        Ok(Content {
            sections,
            priorities,
            key_indicators,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn the_window_opens_a_year_before_the_inspection_is_due() {
        let cycle = InspectionCycle::default();
        let dates = InspectionDates::after(day("2022-10-15"), &cycle).unwrap();
        assert_eq!(dates.opens_on, day("2025-10-15"));
        assert_eq!(dates.due_by, day("2026-10-15"));
        assert_eq!(dates.status(day("2025-10-14")), None);
        assert_eq!(
            dates.status(day("2025-10-15")),
            Some(InspectionWindowStatus::InWindow)
        );
        assert_eq!(
            dates.status(day("2026-10-15")),
            Some(InspectionWindowStatus::InWindow)
        );
        assert_eq!(
            dates.status(day("2026-10-16")),
            Some(InspectionWindowStatus::Overdue)
        );
    }

    #[test]
    fn sql_bounds_agree_with_the_dates_at_every_month_end() {
        let cycle = InspectionCycle {
            cycle_months: 13,
            window_months: 12,
        };
        let mut as_of = day("2026-01-01");
        while as_of < day("2026-04-05") {
            let bounds = WindowBounds::on(as_of, &cycle).unwrap();
            let mut last = day("2024-10-01");
            while last < day("2025-04-05") {
                let status = InspectionDates::after(last, &cycle).unwrap().status(as_of);
                let by_bounds = if last <= bounds.overdue {
                    Some(InspectionWindowStatus::Overdue)
                } else if last <= bounds.opened {
                    Some(InspectionWindowStatus::InWindow)
                } else {
                    None
                };
                assert_eq!(status, by_bounds, "last {last}, as of {as_of}");
                last = last.succ_opt().unwrap();
            }
            as_of = as_of.succ_opt().unwrap();
        }
    }

    #[test]
    fn a_self_evaluation_is_shared_before_it_is_reviewed() {
        use SelfEvaluationStatus as S;
        assert!(check_move("self-evaluation", 1, S::Draft, S::Shared).is_ok());
        assert!(check_move("self-evaluation", 1, S::Shared, S::Reviewed).is_ok());
        assert!(check_move("self-evaluation", 1, S::Shared, S::Draft).is_ok());
        let err = check_move("self-evaluation", 7, S::Draft, S::Reviewed).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadUserInput);
        assert_eq!(
            err.to_string(),
            "cannot move self-evaluation 7 from DRAFT to REVIEWED: from DRAFT it can move to SHARED"
        );
        let err = check_move("self-evaluation", 7, S::Reviewed, S::Shared).unwrap_err();
        assert!(err.to_string().ends_with("REVIEWED is final"), "{err}");
    }

    #[test]
    fn support_runs_open_matched_agreed_closed() {
        use SupportStatus as S;
        for (from, to) in [
            (S::Open, S::Matched),
            (S::Matched, S::Agreed),
            (S::Agreed, S::Closed),
            (S::Open, S::Closed),
            (S::Matched, S::Open),
        ] {
            assert!(
                check_move("support request", 1, from, to).is_ok(),
                "{from} → {to}"
            );
        }
        for (from, to) in [
            (S::Open, S::Agreed),
            (S::Matched, S::Closed),
            (S::Closed, S::Open),
            (S::Agreed, S::Open),
        ] {
            assert!(
                check_move("support request", 1, from, to).is_err(),
                "{from} → {to}"
            );
        }
    }

    #[test]
    fn a_buddy_pairing_is_accepted_before_it_is_active() {
        use PairingStatus as S;
        for (from, to) in [
            (S::Requested, S::Active),
            (S::Requested, S::Declined),
            (S::Requested, S::Ended),
            (S::Active, S::Ended),
        ] {
            assert!(
                check_move("buddy pairing", 1, from, to).is_ok(),
                "{from} → {to}"
            );
        }
        for (from, to) in [
            (S::Declined, S::Active),
            (S::Ended, S::Active),
            (S::Active, S::Requested),
            (S::Active, S::Declined),
        ] {
            assert!(
                check_move("buddy pairing", 1, from, to).is_err(),
                "{from} → {to}"
            );
        }
    }

    #[test]
    fn support_meets_when_either_side_is_open_to_the_others_region() {
        let (se, nw, ldn) = ("E12000008", "E12000002", "E12000007");
        let to_nw = [nw.to_owned()];
        let home = |home| Reach {
            home,
            reach: SupportReach::Region,
            regions: &[],
        };
        let opened = Reach {
            home: se,
            reach: SupportReach::Regions,
            regions: &to_nw,
        };
        let national = Reach {
            home: ldn,
            reach: SupportReach::National,
            regions: &[],
        };
        assert!(within_reach(&home(se), &home(se)));
        assert!(!within_reach(&home(se), &home(nw)));
        assert!(within_reach(&opened, &home(nw)));
        assert!(within_reach(&home(nw), &opened));
        assert!(!within_reach(&opened, &home(ldn)));
        assert!(within_reach(&home(nw), &national));
        let known = |code: &str| code.starts_with("E1200000");
        let named = reach_regions(
            SupportReach::Regions,
            se,
            vec![nw.into(), nw.into(), se.into()],
            known,
        );
        assert_eq!(named.unwrap(), vec![nw.to_owned()]);
        assert!(reach_regions(SupportReach::Regions, se, vec![se.into()], known).is_err());
        assert!(reach_regions(SupportReach::Regions, se, vec!["X".into()], known).is_err());
        assert!(reach_regions(SupportReach::National, se, vec![nw.into()], known).is_err());
        assert!(
            reach_regions(SupportReach::Region, se, vec![], known)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_peer_review_cannot_skip_a_step() {
        use PeerReviewStatus as S;
        assert!(check_move("peer review", 1, S::Planned, S::InProgress).is_ok());
        assert!(check_move("peer review", 1, S::Planned, S::Completed).is_err());
        assert!(check_move("peer review", 1, S::Completed, S::InProgress).is_err());
    }

    #[test]
    fn content_is_trimmed_bounded_and_refers_to_real_indicators() {
        let content = Content {
            sections: vec![Section {
                heading: "  Attendance ".into(),
                judgement: Some("STRONG".into()),
                narrative: "Improving.".into(),
            }],
            priorities: vec!["Reduce persistent absence".into()],
            key_indicators: vec!["attendance_rate".into(), "attendance_rate".into()],
        };
        let known = |code: &str| code == "attendance_rate";
        let checked = content.clone().validated(known).unwrap();
        assert_eq!(checked.sections[0].heading, "Attendance");
        assert_eq!(checked.key_indicators, vec!["attendance_rate".to_owned()]);

        let mut unknown = content.clone();
        unknown.key_indicators = vec!["made_up".into()];
        assert!(unknown.validated(known).is_err());
        let mut blank = content;
        blank.priorities = vec!["  ".into()];
        let err = blank.validated(known).unwrap_err();
        assert_eq!(err.to_string(), "priorities[0] is required");
    }
}
