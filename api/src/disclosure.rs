//! Disclosure control for AGGREGATE figures, as official statistics do it.
//!
//! Two rules, applied to every area figure before it is cached or leaves the hub:
//!
//! 1. **Primary suppression.** A count, or a rate whose numerator or denominator, below
//!    the threshold (`DISCLOSURE_MIN_COUNT`, default 5) is withheld: it could identify
//!    a handful of pupils. A figure built from fewer schools than
//!    `DISCLOSURE_MIN_SCHOOLS` (default 3) is withheld from callers without SCHOOL
//!    scope over those schools, so a one-school LA or trust cannot be read through an
//!    aggregate.
//! 2. **Complementary suppression.** Cells of a *breakdown* (the LAs of a region, the
//!    disadvantaged / not disadvantaged split of all pupils, the phases of an LA…) add
//!    up to a total the caller can also see. If exactly one cell of a breakdown were
//!    withheld, subtracting the others from the total would recover it, so the
//!    next-smallest cell is withheld too; repeated until no breakdown has exactly one.
//!
//! Breakdowns are always formed over the *whole* table a figure belongs to, never over
//! the rows a query happened to ask for, so the same cell is treated the same way
//! whatever filter or page it is requested through; otherwise asking for the
//! complementary cell on its own would reveal it.
//!
//! Withheld cells carry the reason code `c` (confidential), as in official statistics;
//! the code does not say which rule applied, since that too would narrow the value.

use crate::config::Disclosure;
use crate::domain::Unit;

/// Reason code of a withheld figure.
pub const CONFIDENTIAL: &str = "c";

/// One aggregate figure, as disclosure control sees it.
#[derive(Clone, Debug)]
pub struct Cell {
    pub unit: Unit,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub value: Option<f64>,
    /// Schools the figure sums; `None` when unknown (treated as too few).
    pub schools: Option<i64>,
    /// Whether the caller holds SCHOOL scope over every one of those schools.
    pub caller_sees_schools: bool,
    /// The outcome: set by [`primary`] and [`protect`].
    pub withheld: bool,
}

impl Cell {
    /// The figures a reader could count people from, for this unit. A score total
    /// (Attainment 8 summed over pupils) is not a count of anyone; its cohort is.
    fn counts(&self) -> [Option<f64>; 2] {
        match self.unit {
            Unit::Count => [self.numerator.or(self.value), Some(f64::INFINITY)],
            Unit::Percent | Unit::RatePer100 => [self.numerator, self.denominator],
            Unit::Score => [self.denominator, Some(f64::INFINITY)],
        }
    }

    /// Size used to pick the "next-smallest" cell.
    fn size(&self) -> f64 {
        self.denominator
            .or(self.numerator)
            .or(self.value)
            .unwrap_or(0.0)
    }
}

/// Rule 1 for one cell. A count the cell needs but does not have is treated as small:
/// withholding is the safe side of not knowing.
pub fn primary(cell: &Cell, thresholds: &Disclosure) -> bool {
    let small_count = cell
        .counts()
        .iter()
        .any(|count| count.is_none_or(|n| n < thresholds.min_count));
    let few_schools =
        !cell.caller_sees_schools && cell.schools.is_none_or(|n| n < thresholds.min_schools);
    small_count || few_schools
}

/// Applies rule 1 to every cell, then rule 2 over the breakdowns (each a list of cell
/// indices whose total the caller can see). Ties between equally small cells go to the
/// lower index, so callers must list cells in a canonical order for the outcome to be
/// the same on every request.
pub fn protect(cells: &mut [Cell], breakdowns: &[Vec<usize>], thresholds: &Disclosure) {
    for cell in cells.iter_mut() {
        cell.withheld = cell.withheld || primary(cell, thresholds);
    }
    loop {
        let mut changed = false;
        for breakdown in breakdowns {
            let withheld = breakdown.iter().filter(|&&i| cells[i].withheld).count();
            if withheld != 1 {
                continue;
            }
            let next = breakdown
                .iter()
                .copied()
                .filter(|&i| !cells[i].withheld)
                .min_by(|&a, &b| cells[a].size().total_cmp(&cells[b].size()).then(a.cmp(&b)));
            if let Some(i) = next {
                cells[i].withheld = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Disclosure = Disclosure {
        min_count: 5.0,
        min_schools: 3,
    };

    fn rate(numerator: f64, denominator: f64) -> Cell {
        Cell {
            unit: Unit::Percent,
            numerator: Some(numerator),
            denominator: Some(denominator),
            value: Some(numerator / denominator * 100.0),
            schools: Some(10),
            caller_sees_schools: false,
            withheld: false,
        }
    }

    #[test]
    fn small_numerators_and_denominators_are_withheld() {
        assert!(primary(&rate(4.0, 100.0), &T));
        assert!(primary(&rate(4.0, 4.0), &T));
        assert!(!primary(&rate(5.0, 100.0), &T));
        let score = Cell {
            unit: Unit::Score,
            numerator: Some(2.5),
            ..rate(0.0, 40.0)
        };
        assert!(!primary(&score, &T), "a score total is not a head count");
        let count = Cell {
            unit: Unit::Count,
            denominator: None,
            ..rate(3.0, 1.0)
        };
        assert!(primary(&count, &T));
    }

    #[test]
    fn few_schools_are_withheld_unless_the_caller_sees_them() {
        let mut cell = rate(50.0, 100.0);
        cell.schools = Some(2);
        assert!(primary(&cell, &T));
        cell.caller_sees_schools = true;
        assert!(!primary(&cell, &T));
        cell.caller_sees_schools = false;
        cell.schools = None;
        assert!(primary(&cell, &T), "unknown school count counts as too few");
    }

    #[test]
    fn a_lone_withheld_cell_takes_the_next_smallest_with_it() {
        let mut cells = vec![
            rate(3.0, 90.0),
            rate(40.0, 80.0),
            rate(20.0, 60.0),
            rate(9.0, 70.0),
        ];
        protect(&mut cells, &[vec![0, 1, 2, 3]], &T);
        let withheld: Vec<bool> = cells.iter().map(|c| c.withheld).collect();
        assert_eq!(withheld, vec![true, false, true, false]);
    }

    #[test]
    fn two_withheld_cells_need_no_more() {
        let mut cells = vec![rate(3.0, 90.0), rate(2.0, 80.0), rate(20.0, 60.0)];
        protect(&mut cells, &[vec![0, 1, 2]], &T);
        assert!(!cells[2].withheld);
    }

    #[test]
    fn protection_spreads_across_crossing_breakdowns() {
        // A 2×2 table: rows {0,1} and {2,3}, columns {0,2} and {1,3}. Cell 0 is small;
        // the row pulls in 1, the column pulls in 2, and then row {2,3} has exactly
        // one withheld cell, so 3 goes too.
        let mut cells = vec![
            rate(1.0, 50.0),
            rate(30.0, 60.0),
            rate(30.0, 70.0),
            rate(30.0, 80.0),
        ];
        let breakdowns = [vec![0, 1], vec![2, 3], vec![0, 2], vec![1, 3]];
        protect(&mut cells, &breakdowns, &T);
        assert!(cells.iter().all(|c| c.withheld));
    }
}
