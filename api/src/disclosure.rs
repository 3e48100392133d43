//! Disclosure control: which figures a caller may not see, decided so that nothing the
//! caller can obtain pins a withheld figure down.
//!
//! Figures are linked by addition. A region's figure is the sum of its LAs', England's
//! the sum of the regions', an area's `ALL` figure the sum of its `DISADVANTAGED` and
//! `NOT_DISADVANTAGED` figures (numerators and denominators alike); periods do not add.
//! Withholding one figure on its own protects nothing: its parent minus its published
//! siblings gives it back. So protection is decided over a whole [`Table`] — every
//! figure of one indicator and period at every level of the hierarchy, with the pupil
//! groups that add up — never over the rows one answer happens to hold, and a figure is
//! withheld or shown the same way on every path that can return it.
//!
//! Three steps, as statistical agencies do it for hierarchical tables:
//!
//! 1. **Primary suppression.** A count, or a rate whose numerator or denominator, below
//!    `DISCLOSURE_MIN_COUNT` (default 5) is withheld, and so is a figure built from
//!    fewer than `DISCLOSURE_MIN_SCHOOLS` (default 3) schools. The rule is applied to
//!    the part of the figure the caller *cannot already see*: a caller with SCHOOL scope
//!    over some of an area's schools learns the rest of the area by subtraction, so the
//!    rest must itself pass the thresholds. A caller who sees every school of an area
//!    knows the area exactly ([`Status::Known`]) and is shown it.
//! 2. **Complementary suppression.** A relation (total = sum of parts) with exactly one
//!    unknown figure gives that figure away, so the smallest figure still shown in it is
//!    withheld too, repeatedly.
//! 3. **Audit.** Step 2 is a heuristic: chains of relations can still determine a
//!    figure (a "bridge" between two blocks of withheld cells). The published figures
//!    form a linear system; a withheld figure is disclosed exactly when its unit vector
//!    lies in the row space of that system. [`audit`] decides this with exact integer
//!    elimination, and every figure it finds determined takes one more complementary
//!    cell with it, until none is.
//!
//! Withheld figures carry the reason code `c` and nothing else: no numerator,
//! denominator or school count, and no hint of which rule applied, since that too would
//! narrow the value.
//!
//! Ad hoc groupings of schools (`aggregate`) are outside this stored structure; they are
//! protected by cell-key perturbation instead (see [`perturbation`]).

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, LazyLock};

use crate::config::Disclosure;
use crate::domain::Unit;

/// DfE symbol of a confidential (withheld) figure.
pub const CONFIDENTIAL: &str = "c";

/// The counts behind a figure, or behind the part of it a caller cannot see.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    /// Schools the counts cover; `None` when unknown (treated as too few).
    pub schools: Option<i64>,
}

impl Counts {
    /// What is left of these counts once `seen` (a part of them) is taken away. A part
    /// with nothing in a count takes nothing off it; a whole with nothing in a count
    /// stays unknown.
    pub fn less(&self, seen: &Counts) -> Counts {
        fn minus<T: std::ops::Sub<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a - b),
                (a, None) => a,
                (None, Some(_)) => None,
            }
        }
        Counts {
            numerator: minus(self.numerator, seen.numerator),
            denominator: minus(self.denominator, seen.denominator),
            schools: minus(self.schools, seen.schools),
        }
    }

    /// Adds a part to these counts (a missing count on either side adds nothing).
    pub fn add(&mut self, part: &Counts) {
        fn plus<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            }
        }
        self.numerator = plus(self.numerator, part.numerator);
        self.denominator = plus(self.denominator, part.denominator);
        self.schools = Some(self.schools.unwrap_or(0) + part.schools.unwrap_or(0));
    }

    /// The figures a reader could count people from, for this unit. A score total
    /// (Attainment 8 summed over pupils) is not a count of anyone; its cohort is.
    fn head_counts(&self, unit: Unit) -> [Option<f64>; 2] {
        match unit {
            Unit::Count => [self.numerator, Some(f64::INFINITY)],
            Unit::Percent | Unit::RatePer100 => [self.numerator, self.denominator],
            Unit::Score => [self.denominator, Some(f64::INFINITY)],
        }
    }

    /// Size used to pick the smallest complementary cell.
    fn size(&self) -> f64 {
        self.denominator.or(self.numerator).unwrap_or(0.0)
    }
}

/// Rule 1 for counts: whether they are too small to publish. A count that is needed
/// but missing is treated as small: withholding is the safe side of not knowing.
pub fn primary(unit: Unit, counts: &Counts, thresholds: &Disclosure) -> bool {
    let small_count = counts
        .head_counts(unit)
        .iter()
        .any(|count| count.is_none_or(|n| n < thresholds.min_count));
    let few_schools = counts.schools.is_none_or(|n| n < thresholds.min_schools);
    small_count || few_schools
}

/// Where a figure stands for one caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Published to this caller.
    Shown,
    /// Withheld from this caller.
    Withheld,
    /// The caller can compute it from figures it sees at SCHOOL level: always shown,
    /// and a constant (not an unknown) in the linear system.
    Known,
    /// Not held by the hub, though the area has schools: unknown to everyone.
    Absent,
}

/// One figure of a linked table.
#[derive(Clone, Debug)]
pub struct Cell {
    pub unit: Unit,
    /// What the caller cannot see of the figure by other means: the whole figure for a
    /// caller with no SCHOOL scope in the area, the figure less the caller's own
    /// schools otherwise.
    pub unseen: Counts,
    pub status: Status,
}

impl Cell {
    /// A stored figure; known when no school of it is unseen.
    pub fn figure(unit: Unit, unseen: Counts) -> Cell {
        let status = if unseen.schools == Some(0) {
            Status::Known
        } else {
            Status::Shown
        };
        Cell {
            unit,
            unseen,
            status,
        }
    }

    /// A figure the hub does not hold for an area that has schools.
    pub fn absent(unit: Unit) -> Cell {
        Cell {
            unit,
            unseen: Counts::default(),
            status: Status::Absent,
        }
    }

    pub fn withheld(&self) -> bool {
        self.status == Status::Withheld
    }

    fn unknown(&self) -> bool {
        matches!(self.status, Status::Withheld | Status::Absent)
    }
}

/// `total = sum of parts`, by cell index.
#[derive(Clone, Debug)]
pub struct Relation {
    pub total: usize,
    pub parts: Vec<usize>,
}

impl Relation {
    fn members(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.total).chain(self.parts.iter().copied())
    }
}

/// Every figure of one linked structure and the relations between them. Cells must be
/// listed in a canonical order: ties between equally small cells go to the lower index,
/// which is what makes the outcome the same on every request.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub cells: Vec<Cell>,
    pub relations: Vec<Relation>,
}

/// Decisions already taken, by a 128-bit digest of everything a decision depends on
/// (thresholds, every cell's unit, unseen counts and status, every relation). A
/// decision is a pure function of that input, so a remembered one can never be stale:
/// when a sync changes a figure, or a caller's scope changes what it sees, the digest
/// changes with it. This spares the elimination on the many requests that meet the
/// same tables (every dashboard of one LA, every analyst), across callers.
static DECIDED: LazyLock<Decided> = LazyLock::new(|| Decided {
    keys: (RandomState::new(), RandomState::new()),
    statuses: moka::sync::Cache::builder()
        .weigher(|_, statuses: &Arc<[Status]>| statuses.len().try_into().unwrap_or(u32::MAX))
        // About 8 MiB of remembered statuses (one byte each).
        .max_capacity(8 * 1024 * 1024)
        .build(),
});

struct Decided {
    /// Two independent keys make the digest 128 bits: no collision to fear.
    keys: (RandomState, RandomState),
    statuses: moka::sync::Cache<(u64, u64), Arc<[Status]>>,
}

impl Decided {
    fn digest(&self, table: &Table, thresholds: &Disclosure) -> (u64, u64) {
        let hash = |state: &RandomState| {
            let mut h = state.build_hasher();
            thresholds.min_count.to_bits().hash(&mut h);
            thresholds.min_schools.hash(&mut h);
            for cell in &table.cells {
                cell.unit.hash(&mut h);
                cell.unseen.numerator.map(f64::to_bits).hash(&mut h);
                cell.unseen.denominator.map(f64::to_bits).hash(&mut h);
                cell.unseen.schools.hash(&mut h);
                cell.status.hash(&mut h);
            }
            for relation in &table.relations {
                relation.total.hash(&mut h);
                relation.parts.hash(&mut h);
            }
            h.finish()
        };
        (hash(&self.keys.0), hash(&self.keys.1))
    }
}

/// Decides which cells of `table` are withheld (steps 1–3 of the module doc), or
/// recalls the decision taken for an identical table.
pub fn protect(table: &mut Table, thresholds: &Disclosure) {
    let digest = DECIDED.digest(table, thresholds);
    if let Some(statuses) = DECIDED.statuses.get(&digest) {
        for (cell, status) in table.cells.iter_mut().zip(statuses.iter()) {
            cell.status = *status;
        }
        return;
    }
    decide(table, thresholds);
    let statuses: Arc<[Status]> = table.cells.iter().map(|c| c.status).collect();
    DECIDED.statuses.insert(digest, statuses);
}

fn decide(table: &mut Table, thresholds: &Disclosure) {
    for cell in &mut table.cells {
        if cell.status == Status::Shown && primary(cell.unit, &cell.unseen, thresholds) {
            cell.status = Status::Withheld;
        }
    }
    loop {
        if complete_singletons(table) {
            continue;
        }
        let determined = match audit(table) {
            Ok(determined) => determined,
            Err(Overflow) => {
                // Elimination outgrew its integers (never seen on real tables): fail
                // closed rather than publish a figure that was not proven safe.
                for cell in &mut table.cells {
                    if cell.status == Status::Shown {
                        cell.status = Status::Withheld;
                    }
                }
                return;
            }
        };
        let mut changed = false;
        for cell in determined {
            if let Some(next) = smallest_shown(table, |r| r.members().any(|m| m == cell)) {
                table.cells[next].status = Status::Withheld;
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

/// Step 2: in each relation with exactly one unknown cell, and that one withheld,
/// withholds the smallest cell still shown. Returns whether anything changed.
fn complete_singletons(table: &mut Table) -> bool {
    let mut changed = false;
    for r in 0..table.relations.len() {
        let relation = &table.relations[r];
        let mut unknown = relation.members().filter(|&m| table.cells[m].unknown());
        let (Some(only), None) = (unknown.next(), unknown.next()) else {
            continue;
        };
        if !table.cells[only].withheld() {
            continue;
        }
        let members: BTreeSet<usize> = relation.members().collect();
        if let Some(next) = smallest(table, members) {
            table.cells[next].status = Status::Withheld;
            changed = true;
        }
    }
    changed
}

/// The smallest shown cell among those of the relations `pick` selects.
fn smallest_shown(table: &Table, pick: impl Fn(&Relation) -> bool) -> Option<usize> {
    let members: BTreeSet<usize> = table
        .relations
        .iter()
        .filter(|r| pick(r))
        .flat_map(|r| r.members())
        .collect();
    smallest(table, members)
}

fn smallest(table: &Table, candidates: BTreeSet<usize>) -> Option<usize> {
    candidates
        .into_iter()
        .filter(|&i| table.cells[i].status == Status::Shown)
        .min_by(|&a, &b| {
            let size = |i: usize| table.cells[i].unseen.size();
            size(a).total_cmp(&size(b)).then(a.cmp(&b))
        })
}

/// Integers in elimination grew past `i64` (see [`protect`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

/// Step 3: the withheld cells whose value the shown and known cells determine.
///
/// Unknowns are the withheld and absent cells; each relation is one equation over them
/// (shown and known cells are constants). The equations are brought to reduced row
/// echelon form with exact, fraction-free integer elimination (each row divided by the
/// gcd of its entries, so entries stay small). An unknown is determined exactly when
/// its column holds a pivot whose row has no other non-zero entry: every solution of
/// the system then gives it the same value.
pub fn audit(table: &Table) -> Result<Vec<usize>, Overflow> {
    let unknowns: Vec<usize> = (0..table.cells.len())
        .filter(|&i| table.cells[i].unknown())
        .collect();
    if unknowns.is_empty() {
        return Ok(Vec::new());
    }
    let column = |cell: usize| unknowns.binary_search(&cell).ok();
    let mut rows: Vec<Vec<i64>> = Vec::new();
    for relation in &table.relations {
        let mut row = vec![0i64; unknowns.len()];
        let mut any = false;
        for (cell, coefficient) in
            std::iter::once((relation.total, 1)).chain(relation.parts.iter().map(|&p| (p, -1)))
        {
            if let Some(c) = column(cell) {
                row[c] += coefficient;
                any = true;
            }
        }
        if any {
            rows.push(row);
        }
    }
    let pivots = reduce(&mut rows)?;
    Ok(pivots
        .into_iter()
        .filter(|&(row, _)| rows[row].iter().filter(|&&x| x != 0).count() == 1)
        .map(|(_, col)| unknowns[col])
        .filter(|&cell| table.cells[cell].withheld())
        .collect())
}

/// Reduced row echelon form over the integers; returns `(row, column)` of each pivot.
fn reduce(rows: &mut [Vec<i64>]) -> Result<Vec<(usize, usize)>, Overflow> {
    let columns = rows.first().map_or(0, Vec::len);
    let mut pivots = Vec::new();
    let mut rank = 0;
    for col in 0..columns {
        let Some(found) = (rank..rows.len()).find(|&r| rows[r][col] != 0) else {
            continue;
        };
        rows.swap(rank, found);
        let pivot_row = rows[rank].clone();
        let pivot = pivot_row[col];
        for (r, row) in rows.iter_mut().enumerate() {
            let factor = row[col];
            if r == rank || factor == 0 {
                continue;
            }
            for (x, &p) in row.iter_mut().zip(&pivot_row) {
                *x = x
                    .checked_mul(pivot)
                    .and_then(|a| factor.checked_mul(p).and_then(|b| a.checked_sub(b)))
                    .ok_or(Overflow)?;
            }
            normalise(row);
        }
        pivots.push((rank, col));
        rank += 1;
        if rank == rows.len() {
            break;
        }
    }
    Ok(pivots)
}

fn normalise(row: &mut [i64]) {
    let g = row.iter().fold(0u64, |g, &x| gcd(g, x.unsigned_abs()));
    if g > 1 {
        for x in row.iter_mut() {
            *x /= g as i64;
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Cell-key perturbation for ad hoc tables, after the method of the ONS flexible table
/// builder (Census 2021) and the ABS TableBuilder.
///
/// Every school carries a secret *record key*; a cell's key is the sum of its schools'
/// record keys, so a cell is a function of *which schools it holds*, not of the query
/// that produced it: the same schools reached through any grouping or filter get the
/// same key and therefore the same small noise, and asking again or another way does
/// not average the noise out. Differencing two cells yields the difference of their
/// noises, not the figure between them. Record keys are a keyed hash of the URN under a
/// hub secret, computed in SQL (`record_key_sql`), so a cell's key costs one `SUM`.
pub mod perturbation {
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    use crate::domain::Unit;

    /// A prime below 2³¹: record keys are `(urn × a + b) mod P`.
    const P: i64 = 2_147_483_629;

    /// Noise added to a count, by a cell key's position in 0..16: mean 0, at most ±2,
    /// variance 1.125 (the shape of the ONS table: mostly small, never large).
    const NOISE: [i64; 16] = [-2, -2, -1, -1, -1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2];

    /// The secret the record keys are made with.
    #[derive(Clone, Copy, Debug)]
    pub struct CellKeys {
        a: i64,
        b: i64,
        salt: u64,
    }

    impl CellKeys {
        /// Keys derived from a hub secret (never from anything a caller sends).
        pub fn new(secret: &[u8]) -> CellKeys {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
            mac.update(b"baseline-hub cell keys v1");
            let digest = mac.finalize().into_bytes();
            let word = |i: usize| u64::from_le_bytes(digest[i..i + 8].try_into().unwrap());
            CellKeys {
                a: 1 + (word(0) % (P as u64 - 1)) as i64,
                b: (word(8) % P as u64) as i64,
                salt: word(16),
            }
        }

        /// SQL for one school's record key, over a column holding its URN. The
        /// products stay below 2⁵² for any URN under 2²⁰, so no engine overflows.
        pub fn record_key_sql(&self, urn_column: &str) -> String {
            format!("(({urn_column} % 1048576) * {} + {}) % {P}", self.a, self.b)
        }

        /// The noise for one quantity of a cell: `cell_key` is the SQL sum of the
        /// cell's record keys, `what` names the figure and quantity (indicator,
        /// period, pupil group, numerator or denominator) so the quantities of one
        /// cell get independent noise.
        pub fn noise(&self, cell_key: i64, what: &str) -> i64 {
            let mut h: u64 = self.salt ^ (cell_key.rem_euclid(P) as u64);
            for byte in what.bytes() {
                h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
            h ^= h >> 29;
            h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            h ^= h >> 32;
            NOISE[(h % NOISE.len() as u64) as usize]
        }

        /// Perturbed numerator and denominator of a cell. Counts and cohorts move by
        /// whole units; a score total moves as if its cohort had gained or lost a
        /// pupil of average score. Never below zero.
        pub fn perturb(
            &self,
            unit: Unit,
            cell_key: i64,
            what: &str,
            numerator: Option<f64>,
            denominator: Option<f64>,
        ) -> (Option<f64>, Option<f64>) {
            let n = self.noise(cell_key, &format!("{what}/numerator")) as f64;
            let d = self.noise(cell_key, &format!("{what}/denominator")) as f64;
            let moved = |x: f64, by: f64| (x + by).max(0.0);
            match unit {
                Unit::Score => {
                    let mean = match (numerator, denominator) {
                        (Some(s), Some(c)) if c > 0.0 => s / c,
                        _ => 0.0,
                    };
                    (
                        numerator.map(|s| moved(s, d * mean)),
                        denominator.map(|c| moved(c, d)),
                    )
                }
                _ => (
                    numerator.map(|x| moved(x, n)),
                    denominator.map(|x| moved(x, d)),
                ),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn noise_is_a_function_of_the_cell_and_small() {
            let keys = CellKeys::new(b"secret");
            let mut seen = std::collections::BTreeSet::new();
            for key in 0..2_000 {
                let n = keys.noise(key, "x");
                assert_eq!(n, keys.noise(key, "x"));
                assert!((-2..=2).contains(&n));
                seen.insert(n);
            }
            assert_eq!(seen.len(), 5, "every noise value occurs");
            let other = CellKeys::new(b"another secret");
            assert!((0..64).any(|k| keys.noise(k, "x") != other.noise(k, "x")));
        }

        #[test]
        fn perturbed_counts_stay_non_negative() {
            let keys = CellKeys::new(b"secret");
            for key in 0..500 {
                let (n, d) = keys.perturb(Unit::Percent, key, "x", Some(0.0), Some(1.0));
                assert!(n.unwrap() >= 0.0 && d.unwrap() >= 0.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Disclosure = Disclosure {
        min_count: 5.0,
        min_schools: 3,
        key: [0; 32],
    };

    fn rate(numerator: f64, denominator: f64) -> Cell {
        Cell::figure(
            Unit::Percent,
            Counts {
                numerator: Some(numerator),
                denominator: Some(denominator),
                schools: Some(10),
            },
        )
    }

    fn relation(total: usize, parts: &[usize]) -> Relation {
        Relation {
            total,
            parts: parts.to_vec(),
        }
    }

    fn withheld(table: &Table) -> Vec<usize> {
        (0..table.cells.len())
            .filter(|&i| table.cells[i].withheld())
            .collect()
    }

    #[test]
    fn small_numerators_denominators_and_school_counts_are_withheld() {
        let counts = |n, d, s| Counts {
            numerator: Some(n),
            denominator: Some(d),
            schools: Some(s),
        };
        assert!(primary(Unit::Percent, &counts(4.0, 100.0, 9), &T));
        assert!(primary(Unit::Percent, &counts(40.0, 4.0, 9), &T));
        assert!(!primary(Unit::Percent, &counts(5.0, 100.0, 9), &T));
        assert!(primary(Unit::Percent, &counts(50.0, 100.0, 2), &T));
        assert!(
            !primary(Unit::Score, &counts(2.5, 40.0, 9), &T),
            "a score total is not a head count"
        );
        assert!(primary(Unit::Count, &counts(3.0, 0.0, 9), &T));
        let unknown_schools = Counts {
            schools: None,
            ..counts(50.0, 100.0, 9)
        };
        assert!(primary(Unit::Percent, &unknown_schools, &T));
    }

    #[test]
    fn what_the_caller_sees_is_taken_off_before_the_thresholds() {
        let area = Counts {
            numerator: Some(60.0),
            denominator: Some(600.0),
            schools: Some(12),
        };
        let own = Counts {
            numerator: Some(58.0),
            denominator: Some(580.0),
            schools: Some(10),
        };
        let rest = area.less(&own);
        assert_eq!(rest.schools, Some(2));
        assert!(primary(Unit::Percent, &rest, &T), "two unseen schools");
        let all = area.less(&area);
        assert_eq!(Cell::figure(Unit::Percent, all).status, Status::Known);
    }

    #[test]
    fn a_lone_withheld_part_takes_the_next_smallest_with_it() {
        // 0 = 1 + 2 + 3 + 4; cell 1 is small.
        let mut table = Table {
            cells: vec![
                rate(72.0, 300.0),
                rate(3.0, 90.0),
                rate(40.0, 80.0),
                rate(20.0, 60.0),
                rate(9.0, 70.0),
            ],
            relations: vec![relation(0, &[1, 2, 3, 4])],
        };
        protect(&mut table, &T);
        assert_eq!(withheld(&table), vec![1, 3]);
    }

    #[test]
    fn a_remembered_decision_follows_its_input() {
        let table = |small: f64| Table {
            cells: vec![
                rate(172.0, 3000.0),
                rate(small, 900.0),
                rate(40.0, 800.0),
                rate(20.0, 600.0),
                rate(9.0, 700.0),
            ],
            relations: vec![relation(0, &[1, 2, 3, 4])],
        };
        let (mut first, mut again, mut changed) = (table(3.0), table(3.0), table(103.0));
        protect(&mut first, &T);
        protect(&mut again, &T);
        protect(&mut changed, &T);
        assert_eq!(withheld(&first), vec![1, 3]);
        assert_eq!(withheld(&again), withheld(&first));
        assert_eq!(
            withheld(&changed),
            Vec::<usize>::new(),
            "a new count, a new decision"
        );
    }

    #[test]
    fn a_cell_the_caller_knows_is_a_constant_not_a_cover() {
        // Region 0 = LA 1 (the caller's own, known) + LA 2 (small). Withholding LA 2
        // alone would leave it as region minus the caller's own LA: the region goes.
        let mut own = rate(50.0, 500.0);
        own.status = Status::Known;
        let mut table = Table {
            cells: vec![rate(52.0, 520.0), own, rate(2.0, 20.0)],
            relations: vec![relation(0, &[1, 2])],
        };
        protect(&mut table, &T);
        assert_eq!(withheld(&table), vec![0, 2]);
    }

    #[test]
    fn an_absent_figure_keeps_its_relation_open() {
        let mut table = Table {
            cells: vec![
                rate(72.0, 300.0),
                rate(3.0, 90.0),
                Cell::absent(Unit::Percent),
                rate(20.0, 60.0),
            ],
            relations: vec![relation(0, &[1, 2, 3])],
        };
        protect(&mut table, &T);
        assert_eq!(withheld(&table), vec![1]);
    }

    #[test]
    fn a_bridge_between_two_blocks_is_caught_by_the_audit() {
        // Two relations that share cell 2: 0 = 1 + 2 and 3 = 2 + 4, with 0 and 3
        // published. Withholding {1, 2, 4} passes the singleton rule in each relation
        // (two unknowns each), but a third relation 5 = 1 + 4 then gives
        // 1 + 4 = 0 + 3 - 2·2 ⇒ cell 2 = (0 + 3 - 5) / 2: determined.
        let mut table = Table {
            cells: vec![
                rate(100.0, 1000.0),
                rate(3.0, 400.0),
                rate(50.0, 600.0),
                rate(100.0, 1000.0),
                rate(3.0, 400.0),
                rate(6.0, 800.0),
            ],
            relations: vec![
                relation(0, &[1, 2]),
                relation(3, &[2, 4]),
                relation(5, &[1, 4]),
            ],
        };
        for i in [1, 2, 4] {
            table.cells[i].status = Status::Withheld;
        }
        assert_eq!(audit(&table), Ok(vec![1, 2, 4]));
        protect(&mut table, &T);
        assert_eq!(audit(&table), Ok(vec![]));
    }

    #[test]
    fn the_pupil_group_split_and_the_hierarchy_are_protected_together() {
        // Rows: region, LA a, LA b; columns: ALL, DISADVANTAGED, NOT_DISADVANTAGED.
        // Cell index = 3 × row + column. LA a's disadvantaged figure is small.
        let n = |all, dis| {
            [
                rate(all, all * 10.0),
                rate(dis, dis * 10.0),
                rate(all - dis, (all - dis) * 10.0),
            ]
        };
        let mut cells = Vec::new();
        cells.extend(n(200.0, 60.0));
        cells.extend(n(90.0, 3.0));
        cells.extend(n(110.0, 57.0));
        let mut relations = Vec::new();
        for group in 0..3 {
            relations.push(relation(group, &[3 + group, 6 + group]));
        }
        for area in 0..3 {
            relations.push(relation(3 * area, &[3 * area + 1, 3 * area + 2]));
        }
        let mut table = Table { cells, relations };
        protect(&mut table, &T);
        assert!(table.cells[4].withheld());
        assert_eq!(audit(&table), Ok(vec![]));
        let hidden = withheld(&table);
        assert!(hidden.len() >= 4, "a 2×2 block at least: {hidden:?}");
    }

    /// Generated hierarchies (England → regions → LAs, each with the disadvantaged
    /// split), some LAs known to the caller: after [`protect`], no withheld cell may lie
    /// in the row space of the published relations. Checked by an independent solver:
    /// exact rational elimination over `f64`-free fractions, with the shown and known
    /// cells' equations added one unit vector at a time.
    mod generated {
        use super::*;
        use proptest::prelude::*;

        /// Row-space membership over the rationals, as fractions of `i128`.
        fn in_row_space(rows: &[Vec<i128>], target: &[i128]) -> bool {
            type Q = (i128, i128);
            fn norm((n, d): Q) -> Q {
                let g = {
                    let (mut a, mut b) = (n.abs(), d.abs());
                    while b != 0 {
                        (a, b) = (b, a % b);
                    }
                    a.max(1)
                };
                let s = if d < 0 { -1 } else { 1 };
                (s * n / g, s * d / g)
            }
            let width = target.len();
            let mut basis: Vec<(usize, Vec<Q>)> = Vec::new();
            let reduce = |basis: &[(usize, Vec<Q>)], v: &mut Vec<Q>| {
                for (pivot, row) in basis {
                    let f = v[*pivot];
                    if f.0 != 0 {
                        for c in 0..width {
                            let (a, b) = (v[c], row[c]);
                            v[c] = norm((a.0 * b.1 * f.1 - f.0 * b.0 * a.1, a.1 * b.1 * f.1));
                        }
                    }
                }
            };
            for row in rows {
                let mut v: Vec<Q> = row.iter().map(|&x| (x, 1)).collect();
                reduce(&basis, &mut v);
                if let Some(p) = (0..width).find(|&c| v[c].0 != 0) {
                    let lead = v[p];
                    let v: Vec<Q> = v
                        .iter()
                        .map(|&(n, d)| norm((n * lead.1, d * lead.0)))
                        .collect();
                    for (_, other) in basis.iter_mut() {
                        let f = other[p];
                        if f.0 != 0 {
                            for c in 0..width {
                                let (a, b) = (other[c], v[c]);
                                other[c] =
                                    norm((a.0 * b.1 * f.1 - f.0 * b.0 * a.1, a.1 * b.1 * f.1));
                            }
                        }
                    }
                    basis.push((p, v));
                }
            }
            let mut t: Vec<Q> = target.iter().map(|&x| (x, 1)).collect();
            reduce(&basis, &mut t);
            t.iter().all(|q| q.0 == 0)
        }

        /// (regions of (LAs of (all, disadvantaged, schools, known))).
        fn england() -> impl Strategy<Value = Vec<Vec<(u32, u32, i64, bool)>>> {
            let la = (0u32..400, 0u32..100, 1i64..6, prop::bool::weighted(0.15))
                .prop_map(|(all, dis, schools, known)| (all, dis.min(all), schools, known));
            prop::collection::vec(prop::collection::vec(la, 1..6), 1..4)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            #[test]
            fn no_withheld_cell_is_determined(regions in england()) {
                // Per area: counts [all, disadvantaged, not disadvantaged] and schools,
                // whole and as the caller sees them (its known LAs), as the read path
                // works them out.
                #[derive(Clone, Copy, Default)]
                struct Area { counts: [i64; 3], schools: i64, seen: [i64; 3], seen_schools: i64 }
                let mut areas: Vec<Area> = vec![Area::default()];
                let mut children: Vec<Vec<usize>> = vec![Vec::new()];
                for las in &regions {
                    let region = areas.len();
                    areas.push(Area::default());
                    children.push(Vec::new());
                    children[0].push(region);
                    for &(all, dis, schools, known) in las {
                        let counts = [all as i64, dis as i64, (all - dis) as i64];
                        let la = areas.len();
                        areas.push(Area::default());
                        children.push(Vec::new());
                        children[region].push(la);
                        for a in [0, region, la] {
                            for (g, count) in counts.iter().enumerate() {
                                areas[a].counts[g] += count;
                                if known {
                                    areas[a].seen[g] += count;
                                }
                            }
                            areas[a].schools += schools;
                            if known {
                                areas[a].seen_schools += schools;
                            }
                        }
                    }
                }
                let mut table = Table::default();
                for area in &areas {
                    for g in 0..3 {
                        let whole = Counts { numerator: Some(area.counts[g] as f64), denominator: None, schools: Some(area.schools) };
                        let seen = Counts { numerator: Some(area.seen[g] as f64), denominator: None, schools: Some(area.seen_schools) };
                        table.cells.push(Cell::figure(Unit::Count, whole.less(&seen)));
                    }
                }
                for (a, kids) in children.iter().enumerate() {
                    for g in 0..3 {
                        if !kids.is_empty() {
                            table.relations.push(Relation { total: 3 * a + g, parts: kids.iter().map(|k| 3 * k + g).collect() });
                        }
                    }
                    table.relations.push(Relation { total: 3 * a, parts: vec![3 * a + 1, 3 * a + 2] });
                }
                protect(&mut table, &T);

                // The attacker's equations over all cells: each relation, and a unit
                // vector for every cell it can read.
                let n = table.cells.len();
                let mut rows: Vec<Vec<i128>> = Vec::new();
                for r in &table.relations {
                    let mut row = vec![0i128; n];
                    row[r.total] += 1;
                    for &p in &r.parts {
                        row[p] -= 1;
                    }
                    rows.push(row);
                }
                for (i, cell) in table.cells.iter().enumerate() {
                    if matches!(cell.status, Status::Shown | Status::Known) {
                        let mut row = vec![0i128; n];
                        row[i] = 1;
                        rows.push(row);
                    }
                    if cell.status == Status::Shown {
                        prop_assert!(!primary(cell.unit, &cell.unseen, &T), "cell {i} shown though small");
                    }
                }
                for (i, cell) in table.cells.iter().enumerate() {
                    if cell.withheld() {
                        let mut target = vec![0i128; n];
                        target[i] = 1;
                        prop_assert!(!in_row_space(&rows, &target), "cell {i} is determined: {:?}", table.cells.iter().map(|c| c.status).collect::<Vec<_>>());
                    }
                }
            }
        }
    }
}
