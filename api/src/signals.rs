//! Signals of risk and success: the rules of the `signal_rule` table applied to the
//! baseline's figures.
//!
//! A rule names an indicator, a method and a threshold — "persistent absence rising
//! three years running", "suspensions more than 1 per 100 pupils above the region's
//! rate", "the attendance gap for disadvantaged pupils narrower than the region's" —
//! and every threshold is a row, so a region tunes them without a release. The
//! methods are the only code: each compares an area's figures with its own earlier
//! years, or with its *comparator* (the region for a school or an LA, England for a
//! region).
//!
//! Evaluation here is pure: it receives the figures already loaded, each marked with
//! whether disclosure control withholds it from the caller (`graphql::signals` does the
//! loading, under the access policy). A rule that needs a withheld figure is reported
//! `WITHHELD` and says nothing else — not whether it would have been raised, not how
//! far, not the other figures — because even "rising" narrows down a number the caller
//! may not see.

use std::collections::HashMap;

use async_graphql::Enum;
use entities::signal_rule;

use crate::domain::{Polarity, PupilGroup, is_valid_period, stored_enum};

stored_enum! {
    /// Whether a signal warns or reassures.
    SignalKind {
        Risk => "RISK",
        Success => "SUCCESS",
    }
}

stored_enum! {
    /// How a rule compares figures.
    SignalMethod {
        /// The figure rose, by more than the threshold each time, `yearsRunning`
        /// years in a row.
        Rising => "RISING",
        /// The mirror image of `RISING`.
        Falling => "FALLING",
        /// The figure is above its comparator's by more than the threshold.
        AboveComparator => "ABOVE_COMPARATOR",
        /// The figure is below its comparator's by more than the threshold.
        BelowComparator => "BELOW_COMPARATOR",
        /// The gap between disadvantaged pupils and the rest, measured in the direction
        /// that disadvantages them, is wider than the comparator's by more than the
        /// threshold.
        GapWider => "GAP_WIDER",
        /// The mirror image of `GAP_WIDER`.
        GapNarrower => "GAP_NARROWER",
    }
}

stored_enum! {
    /// What came of applying a rule.
    SignalStatus {
        Raised => "RAISED",
        NotRaised => "NOT_RAISED",
        /// A figure the rule needs is not in the baseline (a new school, a year not yet
        /// published).
        NotEnoughData => "NOT_ENOUGH_DATA",
        /// A figure the rule needs is withheld from the caller by disclosure control;
        /// nothing more is said.
        Withheld => "WITHHELD",
    }
}

/// The most years a trend rule may look back.
pub const MAX_YEARS_RUNNING: i32 = 10;

/// A rule, parsed and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub code: String,
    pub kind: SignalKind,
    pub method: SignalMethod,
    pub indicator_code: String,
    /// The pupil group compared (`ALL` when the row says nothing); unused by the gap
    /// methods.
    pub group: PupilGroup,
    /// Year-on-year changes a trend needs; 0 for the other methods.
    pub years_running: u32,
    pub threshold: f64,
    /// The indicator's polarity: which way a gap disadvantages pupils.
    pub polarity: Polarity,
}

impl Rule {
    /// Parses a stored rule. An inconsistent row is an operator's mistake the hub
    /// cannot repair, so it is reported rather than guessed at.
    pub fn from_row(row: &signal_rule::Model, polarity: Polarity) -> Result<Rule, String> {
        let kind = SignalKind::parse(&row.kind)
            .ok_or_else(|| format!("signal rule {}: unknown kind {:?}", row.code, row.kind))?;
        let method = SignalMethod::parse(&row.method)
            .ok_or_else(|| format!("signal rule {}: unknown method {:?}", row.code, row.method))?;
        let group = match &row.pupil_group {
            Some(text) => PupilGroup::parse(text)
                .ok_or_else(|| format!("signal rule {}: unknown pupil group {text:?}", row.code))?,
            None => PupilGroup::All,
        };
        let years_running = match (method, row.years_running) {
            (SignalMethod::Rising | SignalMethod::Falling, Some(n))
                if (1..=MAX_YEARS_RUNNING).contains(&n) =>
            {
                n as u32
            }
            (SignalMethod::Rising | SignalMethod::Falling, other) => {
                return Err(format!(
                    "signal rule {}: a trend needs yearsRunning between 1 and \
                     {MAX_YEARS_RUNNING} (got {other:?})",
                    row.code
                ));
            }
            _ => 0,
        };
        if !row.threshold.is_finite() {
            return Err(format!(
                "signal rule {}: threshold is not a number",
                row.code
            ));
        }
        Ok(Rule {
            code: row.code.clone(),
            kind,
            method,
            indicator_code: row.indicator_code.clone(),
            group,
            years_running,
            threshold: row.threshold,
            polarity,
        })
    }

    /// Whether the rule compares the area with its comparator.
    pub fn uses_comparator(&self) -> bool {
        !matches!(self.method, SignalMethod::Rising | SignalMethod::Falling)
    }

    /// The pupil groups whose figures it reads.
    pub fn groups(&self) -> Vec<PupilGroup> {
        match self.method {
            SignalMethod::GapWider | SignalMethod::GapNarrower => {
                vec![PupilGroup::Disadvantaged, PupilGroup::NotDisadvantaged]
            }
            _ => vec![self.group],
        }
    }

    /// The academic years it reads for `period`, oldest first; `None` if `period` is
    /// not an academic year or the look-back runs before year 0.
    pub fn periods(&self, period: &str) -> Option<Vec<String>> {
        (0..=self.years_running)
            .rev()
            .map(|back| earlier_period(period, back))
            .collect()
    }

    /// The figures it needs, in the order [`evaluate`] reads them.
    fn needs(&self, period: &str) -> Option<Vec<(Side, PupilGroup, String)>> {
        let current = || period.to_owned();
        Some(match self.method {
            SignalMethod::Rising | SignalMethod::Falling => self
                .periods(period)?
                .into_iter()
                .map(|p| (Side::Area, self.group, p))
                .collect(),
            SignalMethod::AboveComparator | SignalMethod::BelowComparator => vec![
                (Side::Area, self.group, current()),
                (Side::Comparator, self.group, current()),
            ],
            SignalMethod::GapWider | SignalMethod::GapNarrower => vec![
                (Side::Area, PupilGroup::Disadvantaged, current()),
                (Side::Area, PupilGroup::NotDisadvantaged, current()),
                (Side::Comparator, PupilGroup::Disadvantaged, current()),
                (Side::Comparator, PupilGroup::NotDisadvantaged, current()),
            ],
        })
    }
}

/// The academic year `back` years before `period` (`2024/25`, 2 → `2022/23`).
pub fn earlier_period(period: &str, back: u32) -> Option<String> {
    if !is_valid_period(period) {
        return None;
    }
    let start: u32 = period[..4].parse().ok()?;
    let start = start.checked_sub(back)?;
    Some(format!("{start:04}/{:02}", (start + 1) % 100))
}

/// Which side of a comparison a figure is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The area the signals are about.
    Area,
    /// What it is compared with.
    Comparator,
}

/// One loaded figure, as evaluation sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figure {
    /// The observation's id, so the caller can return the rows behind a signal.
    pub id: i64,
    pub value: Option<f64>,
    /// Withheld from this caller by disclosure control.
    pub withheld: bool,
}

/// The loaded figures, by side, indicator, pupil group and period.
pub type Figures = HashMap<(Side, String, PupilGroup, String), Figure>;

/// The result of one rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: SignalStatus,
    /// How far the comparison went: the smallest year-on-year change in the rule's
    /// direction, or the difference from the comparator (of figures or of gaps). Null
    /// unless the rule could be evaluated.
    pub measure: Option<f64>,
    /// Ids of the figures behind it; none when `WITHHELD`.
    pub figures: Vec<i64>,
}

/// Applies one rule to the figures for `period`.
pub fn evaluate(rule: &Rule, period: &str, figures: &Figures) -> Outcome {
    let not_enough = |ids| Outcome {
        status: SignalStatus::NotEnoughData,
        measure: None,
        figures: ids,
    };
    let Some(needs) = rule.needs(period) else {
        return not_enough(Vec::new());
    };
    let mut ids = Vec::with_capacity(needs.len());
    let mut values = Vec::with_capacity(needs.len());
    let mut missing = false;
    for (side, group, p) in needs {
        match figures.get(&(side, rule.indicator_code.clone(), group, p)) {
            Some(figure) if figure.withheld => {
                return Outcome {
                    status: SignalStatus::Withheld,
                    measure: None,
                    figures: Vec::new(),
                };
            }
            Some(Figure {
                id,
                value: Some(value),
                ..
            }) => {
                ids.push(*id);
                values.push(*value);
            }
            _ => missing = true,
        }
    }
    if missing {
        return not_enough(ids);
    }
    let measure = round(measure(rule, &values));
    Outcome {
        status: if measure > rule.threshold {
            SignalStatus::Raised
        } else {
            SignalStatus::NotRaised
        },
        measure: Some(measure),
        figures: ids,
    }
}

/// The rule's measure over complete values, in [`Rule::needs`] order.
fn measure(rule: &Rule, v: &[f64]) -> f64 {
    let smallest_change = |sign: f64| {
        v.windows(2)
            .map(|pair| sign * (pair[1] - pair[0]))
            .fold(f64::INFINITY, f64::min)
    };
    // The gap that disadvantages pupils is positive: disadvantaged pupils' figure is
    // higher where lower is better (absence), lower where higher is better.
    let gap = |disadvantaged: f64, others: f64| match rule.polarity {
        Polarity::LowerIsBetter => disadvantaged - others,
        Polarity::HigherIsBetter | Polarity::Neutral => others - disadvantaged,
    };
    match rule.method {
        SignalMethod::Rising => smallest_change(1.0),
        SignalMethod::Falling => smallest_change(-1.0),
        SignalMethod::AboveComparator => v[0] - v[1],
        SignalMethod::BelowComparator => v[1] - v[0],
        SignalMethod::GapWider => gap(v[0], v[1]) - gap(v[2], v[3]),
        SignalMethod::GapNarrower => gap(v[2], v[3]) - gap(v[0], v[1]),
    }
}

/// Published values carry four decimals; so do measures, without binary noise.
fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(method: SignalMethod, threshold: f64) -> Rule {
        Rule {
            code: "r".into(),
            kind: SignalKind::Risk,
            method,
            indicator_code: "pa".into(),
            group: PupilGroup::All,
            years_running: 3,
            threshold,
            polarity: Polarity::LowerIsBetter,
        }
    }

    fn figures(rows: &[(Side, PupilGroup, &str, f64)]) -> Figures {
        rows.iter()
            .enumerate()
            .map(|(i, (side, group, period, value))| {
                (
                    (*side, "pa".to_owned(), *group, (*period).to_owned()),
                    Figure {
                        id: i as i64,
                        value: Some(*value),
                        withheld: false,
                    },
                )
            })
            .collect()
    }

    fn trend(values: [f64; 4]) -> Figures {
        let periods = ["2021/22", "2022/23", "2023/24", "2024/25"];
        let rows: Vec<_> = periods
            .iter()
            .zip(values)
            .map(|(p, v)| (Side::Area, PupilGroup::All, *p, v))
            .collect();
        figures(&rows)
    }

    #[test]
    fn periods_count_back_in_academic_years() {
        assert_eq!(earlier_period("2024/25", 3).as_deref(), Some("2021/22"));
        assert_eq!(earlier_period("2000/01", 1).as_deref(), Some("1999/00"));
        assert_eq!(earlier_period("2024-25", 1), None);
        let r = rule(SignalMethod::Rising, 0.0);
        assert_eq!(
            r.periods("2024/25").unwrap(),
            ["2021/22", "2022/23", "2023/24", "2024/25"]
        );
    }

    #[test]
    fn rising_needs_a_rise_every_year() {
        let r = rule(SignalMethod::Rising, 0.0);
        let raised = evaluate(&r, "2024/25", &trend([10.0, 11.0, 11.5, 13.0]));
        assert_eq!(raised.status, SignalStatus::Raised);
        assert_eq!(raised.measure, Some(0.5));
        assert_eq!(raised.figures, vec![0, 1, 2, 3]);
        let dipped = evaluate(&r, "2024/25", &trend([10.0, 11.0, 10.9, 13.0]));
        assert_eq!(dipped.status, SignalStatus::NotRaised);
        let falling = rule(SignalMethod::Falling, 0.0);
        let down = evaluate(&falling, "2024/25", &trend([13.0, 12.0, 11.0, 10.0]));
        assert_eq!(down.status, SignalStatus::Raised);
        assert_eq!(down.measure, Some(1.0));
    }

    #[test]
    fn the_threshold_is_exclusive() {
        let r = rule(SignalMethod::Rising, 0.5);
        let at = evaluate(&r, "2024/25", &trend([10.0, 11.0, 11.5, 13.0]));
        assert_eq!(at.status, SignalStatus::NotRaised);
    }

    #[test]
    fn a_missing_year_is_not_enough_data() {
        let r = rule(SignalMethod::Rising, 0.0);
        let mut figs = trend([10.0, 11.0, 12.0, 13.0]);
        figs.retain(|k, _| k.3 != "2021/22");
        let outcome = evaluate(&r, "2024/25", &figs);
        assert_eq!(outcome.status, SignalStatus::NotEnoughData);
        assert_eq!(outcome.measure, None);
    }

    #[test]
    fn one_withheld_figure_withholds_everything() {
        let r = rule(SignalMethod::Rising, 0.0);
        let mut figs = trend([10.0, 11.0, 12.0, 13.0]);
        if let Some(f) = figs.get_mut(&(
            Side::Area,
            "pa".to_owned(),
            PupilGroup::All,
            "2022/23".to_owned(),
        )) {
            f.withheld = true;
        }
        let outcome = evaluate(&r, "2024/25", &figs);
        assert_eq!(
            outcome,
            Outcome {
                status: SignalStatus::Withheld,
                measure: None,
                figures: vec![],
            }
        );
    }

    #[test]
    fn comparisons_and_gaps_follow_polarity() {
        use PupilGroup::{All, Disadvantaged as D, NotDisadvantaged as N};
        let above = rule(SignalMethod::AboveComparator, 1.0);
        let figs = figures(&[
            (Side::Area, All, "2024/25", 9.0),
            (Side::Comparator, All, "2024/25", 7.5),
        ]);
        let outcome = evaluate(&above, "2024/25", &figs);
        assert_eq!(
            (outcome.status, outcome.measure),
            (SignalStatus::Raised, Some(1.5))
        );
        let below = rule(SignalMethod::BelowComparator, 0.0);
        assert_eq!(
            evaluate(&below, "2024/25", &figs).status,
            SignalStatus::NotRaised
        );

        // Lower is better (absence): the area's disadvantaged pupils are 6 points
        // worse off, the comparator's 4, so the gap is 2 points wider.
        let gap_figs = figures(&[
            (Side::Area, D, "2024/25", 26.0),
            (Side::Area, N, "2024/25", 20.0),
            (Side::Comparator, D, "2024/25", 24.0),
            (Side::Comparator, N, "2024/25", 20.0),
        ]);
        let wider = rule(SignalMethod::GapWider, 1.0);
        let outcome = evaluate(&wider, "2024/25", &gap_figs);
        assert_eq!(
            (outcome.status, outcome.measure),
            (SignalStatus::Raised, Some(2.0))
        );
        // Higher is better (attainment): the same numbers mean disadvantaged pupils do
        // *better*, so the adverse gap is narrower, not wider.
        let mut attainment = wider.clone();
        attainment.polarity = Polarity::HigherIsBetter;
        assert_eq!(
            evaluate(&attainment, "2024/25", &gap_figs).status,
            SignalStatus::NotRaised
        );
        let mut narrower = attainment;
        narrower.method = SignalMethod::GapNarrower;
        assert_eq!(
            evaluate(&narrower, "2024/25", &gap_figs).status,
            SignalStatus::Raised
        );
    }

    #[test]
    fn inconsistent_rows_are_refused() {
        let row = signal_rule::Model {
            id: 1,
            code: "x".into(),
            name: "x".into(),
            description: String::new(),
            kind: "RISK".into(),
            method: "RISING".into(),
            indicator_code: "pa".into(),
            pupil_group: None,
            years_running: None,
            threshold: 0.0,
            active: true,
            updated_at: chrono::Utc::now(),
        };
        assert!(Rule::from_row(&row, Polarity::LowerIsBetter).is_err());
        let ok = signal_rule::Model {
            years_running: Some(3),
            ..row.clone()
        };
        assert_eq!(
            Rule::from_row(&ok, Polarity::LowerIsBetter)
                .unwrap()
                .years_running,
            3
        );
        let bad_kind = signal_rule::Model {
            kind: "MAYBE".into(),
            ..ok
        };
        assert!(Rule::from_row(&bad_kind, Polarity::LowerIsBetter).is_err());
    }
}
