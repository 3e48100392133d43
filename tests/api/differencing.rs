//! An attacker in the test suite: for one caller, gather everything the hub will give
//! it about one indicator and period — every stored area figure at every level and in
//! every pupil group, every figure of its own SCHOOL scope, and every exact cell of
//! `aggregate` under every grouping — write down the linear system those published
//! values satisfy, and check that no withheld figure is determined by it.
//!
//! The unknowns are the school figures (one numerator per school and pupil group; the
//! denominators obey the same relations and are published or withheld together). An
//! area figure is the sum of its schools', `ALL` is `DISADVANTAGED` plus
//! `NOT_DISADVANTAGED` in every school (true of the test data, which is the worst case
//! for the defender), and the school register is public. A withheld area figure is
//! disclosed exactly when its row vector lies in the row space of the published
//! relations; decided here with exact rational elimination, independently of the hub's
//! own audit. Perturbed `aggregate` cells satisfy no exact relation and are left out.

use std::collections::{BTreeMap, BTreeSet};

use hub_tests::TestHub;
use serde_json::{Value, json};

const GROUPS: [&str; 6] = [
    "ALL",
    "DISADVANTAGED",
    "NOT_DISADVANTAGED",
    "SEN_SUPPORT",
    "EHCP",
    "CHILDREN_IN_CARE",
];
const PERIOD: &str = "2024/25";

/// A school of the public register.
struct School {
    urn: i64,
    la: String,
    region: String,
    trust: Option<String>,
    phase: String,
}

async fn register(hub: &TestHub) -> Vec<School> {
    let mut schools = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = hub
            .query(
                None,
                r#"query($after: String) { schools(first: 100, after: $after) {
                    pageInfo { hasNextPage endCursor }
                    edges { node { urn phase localAuthority { code } region { code } trust { code } } } } }"#,
                json!({ "after": after }),
            )
            .await;
        let page = &body["data"]["schools"];
        for edge in page["edges"].as_array().expect("schools") {
            let node = &edge["node"];
            schools.push(School {
                urn: node["urn"].as_i64().unwrap(),
                la: node["localAuthority"]["code"].as_str().unwrap().to_owned(),
                region: node["region"]["code"].as_str().unwrap().to_owned(),
                trust: node["trust"]["code"].as_str().map(str::to_owned),
                phase: node["phase"].as_str().unwrap().to_owned(),
            });
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return schools;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

/// Every figure `observations` returns to the caller for one indicator and period.
async fn observations(hub: &TestHub, token: &str, indicator: &str) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = hub
            .query(
                Some(token),
                r#"query($i: String!, $p: String!, $after: String) {
                    observations(filter: { indicatorCodes: [$i], periodFrom: $p, periodTo: $p }, first: 100, after: $after) {
                    pageInfo { hasNextPage endCursor }
                    edges { node { level areaCode pupilGroup numerator suppressed schoolCount } } } }"#,
                json!({ "i": indicator, "p": PERIOD, "after": after }),
            )
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        let page = &body["data"]["observations"];
        nodes.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"].clone()),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

/// The exact cells of `aggregate` under one grouping: `(schools in the cell, group,
/// numerator)`.
async fn exact_aggregate_cells(
    hub: &TestHub,
    token: &str,
    indicator: &str,
    group_by: &[&str],
    register: &[School],
) -> Vec<(Vec<usize>, String, f64)> {
    let body = hub
        .query(
            Some(token),
            r#"query($i: String!, $p: String!, $by: [AggregateDimension!]!, $g: [PupilGroup!]) {
                aggregate(indicatorCode: $i, periods: [$p], groupBy: $by, pupilGroups: $g) {
                cells { pupilGroup regionCode localAuthority { code } trust { code } phase numerator suppressed perturbed schoolCount } } }"#,
            json!({
                "i": indicator, "p": PERIOD, "by": group_by,
                "g": if group_by.contains(&"PUPIL_GROUP") { json!(GROUPS) } else { Value::Null },
            }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let mut cells = Vec::new();
    for cell in body["data"]["aggregate"]["cells"].as_array().unwrap() {
        if cell["suppressed"] == true {
            assert!(
                cell["numerator"].is_null() && cell["schoolCount"].is_null(),
                "{cell}"
            );
            continue;
        }
        if cell["perturbed"] == true {
            continue;
        }
        let matches = |s: &School| {
            (!group_by.contains(&"REGION") || cell["regionCode"] == s.region.as_str())
                && (!group_by.contains(&"LOCAL_AUTHORITY")
                    || cell["localAuthority"]["code"] == s.la.as_str())
                && (!group_by.contains(&"TRUST")
                    || cell["trust"]["code"].as_str() == s.trust.as_deref())
                && (!group_by.contains(&"PHASE") || cell["phase"] == s.phase.as_str())
        };
        let members: Vec<usize> = (0..register.len())
            .filter(|&i| matches(&register[i]))
            .collect();
        cells.push((
            members,
            cell["pupilGroup"].as_str().unwrap().to_owned(),
            cell["numerator"].as_f64().unwrap(),
        ));
    }
    cells
}

/// Exact rationals, enough for elimination over small integer systems.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Q(i128, i128);

impl Q {
    const ZERO: Q = Q(0, 1);
    fn new(n: i128, d: i128) -> Q {
        let g = gcd(n.abs(), d.abs()).max(1);
        let s = if d < 0 { -1 } else { 1 };
        Q(s * n / g, s * d / g)
    }
    fn sub(self, o: Q) -> Q {
        Q::new(self.0 * o.1 - o.0 * self.1, self.1 * o.1)
    }
    fn mul(self, o: Q) -> Q {
        Q::new(self.0 * o.0, self.1 * o.1)
    }
    fn div(self, o: Q) -> Q {
        Q::new(self.0 * o.1, self.1 * o.0)
    }
    fn is_zero(self) -> bool {
        self.0 == 0
    }
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Row echelon basis of the published relations, reduced as rows arrive.
#[derive(Default)]
struct RowSpace {
    /// Rows, each with its pivot column (the first non-zero entry, equal to 1).
    rows: Vec<(usize, BTreeMap<usize, Q>)>,
}

impl RowSpace {
    /// `v` reduced against the basis: zero exactly when `v` lies in the row space.
    fn reduce(&self, mut v: BTreeMap<usize, Q>) -> BTreeMap<usize, Q> {
        for (pivot, row) in &self.rows {
            if let Some(&factor) = v.get(pivot) {
                for (&c, &x) in row {
                    let entry = v.entry(c).or_insert(Q::ZERO);
                    *entry = entry.sub(factor.mul(x));
                }
                v.retain(|_, x| !x.is_zero());
            }
        }
        v
    }

    fn add(&mut self, v: BTreeMap<usize, Q>) {
        let v = self.reduce(v);
        let Some((&pivot, &lead)) = v.iter().next() else {
            return;
        };
        let row: BTreeMap<usize, Q> = v.iter().map(|(&c, &x)| (c, x.div(lead))).collect();
        // Keep the basis reduced: clear the new pivot from the rows already held.
        for (_, other) in &mut self.rows {
            if let Some(&factor) = other.get(&pivot) {
                for (&c, &x) in &row {
                    let entry = other.entry(c).or_insert(Q::ZERO);
                    *entry = entry.sub(factor.mul(x));
                }
                other.retain(|_, x| !x.is_zero());
            }
        }
        self.rows.push((pivot, row));
    }

    fn contains(&self, v: BTreeMap<usize, Q>) -> bool {
        self.reduce(v).is_empty()
    }
}

/// The sum of the given schools' figures in one group, as a row over the unknowns.
fn sum_row(schools: impl IntoIterator<Item = usize>, group: usize) -> BTreeMap<usize, Q> {
    schools
        .into_iter()
        .map(|s| (s * GROUPS.len() + group, Q(1, 1)))
        .collect()
}

fn group_index(group: &str) -> usize {
    GROUPS
        .iter()
        .position(|g| *g == group)
        .expect("known group")
}

fn area_schools<'a>(
    register: &'a [School],
    level: &'a str,
    code: &'a str,
) -> impl Iterator<Item = usize> + 'a {
    (0..register.len()).filter(move |&i| match level {
        "LA" => register[i].la == code,
        "REGION" => register[i].region == code,
        "NATIONAL" => true,
        _ => false,
    })
}

/// The withheld area figures the caller can work out, as `level area group`, and how
/// many were withheld in all.
async fn disclosed(hub: &TestHub, token: &str, indicator: &str) -> (Vec<String>, usize) {
    let register = register(hub).await;
    let mut space = RowSpace::default();
    // ALL = DISADVANTAGED + NOT_DISADVANTAGED in every school.
    let (all, dis, not) = (
        group_index("ALL"),
        group_index("DISADVANTAGED"),
        group_index("NOT_DISADVANTAGED"),
    );
    for s in 0..register.len() {
        let base = s * GROUPS.len();
        space.add(BTreeMap::from([
            (base + all, Q(1, 1)),
            (base + dis, Q(-1, 1)),
            (base + not, Q(-1, 1)),
        ]));
    }
    let mut withheld = Vec::new();
    for node in observations(hub, token, indicator).await {
        let level = node["level"].as_str().unwrap();
        let code = node["areaCode"].as_str().unwrap();
        let group = group_index(node["pupilGroup"].as_str().unwrap());
        let row = if level == "SCHOOL" {
            let urn: i64 = code.parse().unwrap();
            let s = register
                .iter()
                .position(|s| s.urn == urn)
                .expect("registered");
            sum_row([s], group)
        } else {
            sum_row(area_schools(&register, level, code), group)
        };
        if node["suppressed"] == true {
            assert!(
                node["numerator"].is_null() && node["schoolCount"].is_null(),
                "{node}"
            );
            withheld.push((format!("{level} {code} {}", GROUPS[group]), row));
        } else {
            space.add(row);
        }
    }
    for group_by in [
        &[][..],
        &["REGION"],
        &["LOCAL_AUTHORITY"],
        &["TRUST"],
        &["PHASE"],
        &["LOCAL_AUTHORITY", "PHASE"],
        &["TRUST", "LOCAL_AUTHORITY"],
        &["REGION", "PHASE", "PUPIL_GROUP"],
        &["LOCAL_AUTHORITY", "PUPIL_GROUP"],
        &["TRUST", "PUPIL_GROUP"],
    ] {
        for (members, group, _) in
            exact_aggregate_cells(hub, token, indicator, group_by, &register).await
        {
            space.add(sum_row(members, group_index(&group)));
        }
    }
    let count = withheld.len();
    let found = withheld
        .into_iter()
        .filter(|(_, row)| space.contains(row.clone()))
        .map(|(name, _)| name)
        .collect();
    (found, count)
}

/// The trust with schools in the most LAs: its officer knows part of each.
fn most_spread_trust(register: &[School]) -> &str {
    let mut spread: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for school in register {
        if let Some(trust) = &school.trust {
            spread.entry(trust).or_default().insert(&school.la);
        }
    }
    spread
        .into_iter()
        .max_by_key(|(code, las)| (las.len(), std::cmp::Reverse(*code)))
        .map(|(code, _)| code)
        .expect("the test data has trusts")
}

/// Returns how many figures were withheld from the caller (none of them recoverable).
async fn assert_nothing_disclosed(hub: &TestHub, who: &str, token: &str) -> usize {
    let catalogue = hub.query(None, "{ indicators { code } }", json!({})).await;
    let indicators: Vec<String> = catalogue["data"]["indicators"]
        .as_array()
        .expect("the indicator catalogue is public")
        .iter()
        .map(|i| i["code"].as_str().unwrap().to_owned())
        .collect();
    let mut found = BTreeSet::new();
    let mut withheld = 0;
    for indicator in &indicators {
        let (cells, count) = disclosed(hub, token, indicator).await;
        withheld += count;
        for cell in cells {
            found.insert(format!("{indicator} {cell}"));
        }
    }
    assert!(
        found.is_empty(),
        "{who} can work out {} of {withheld} withheld figures: {found:?}",
        found.len()
    );
    withheld
}

#[tokio::test]
async fn an_analyst_cannot_work_out_a_withheld_figure() {
    let hub = TestHub::spawn().await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "ANALYST");
    let withheld = assert_nothing_disclosed(&hub, "an analyst", &token).await;
    assert!(withheld > 0, "the test data has small cells to protect");
}

#[tokio::test]
async fn la_officers_cannot_work_out_their_neighbours_withheld_figures() {
    let hub = TestHub::spawn().await;
    for la in ["852", "850", "202"] {
        let token = hub.token_for(&format!("LOCAL_AUTHORITY:{la}"), "LA_OFFICER");
        assert_nothing_disclosed(&hub, &format!("LA {la}'s officer"), &token).await;
    }
}

#[tokio::test]
async fn a_trust_officer_cannot_work_out_a_withheld_figure() {
    let hub = TestHub::spawn().await;
    let register = register(&hub).await;
    let trust = most_spread_trust(&register);
    let token = hub.token_for(&format!("TRUST:{trust}"), "TRUST_OFFICER");
    assert_nothing_disclosed(&hub, &format!("trust {trust}'s officer"), &token).await;
}

#[tokio::test]
async fn an_anonymous_caller_gets_no_figures_at_all() {
    let hub = TestHub::spawn().await;
    let body = hub
        .query(
            None,
            r#"{ observations(filter: { level: LA }, first: 5) { edges { node { value } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
}

#[tokio::test]
async fn an_officer_who_sees_every_school_of_its_la_sees_the_la_exactly() {
    let hub = TestHub::spawn().await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    for node in observations(&hub, &token, "suspension_rate").await {
        if node["level"] == "LA" && node["areaCode"] == "852" {
            assert_eq!(node["suppressed"], false, "{node}");
            assert!(node["numerator"].is_number(), "{node}");
        }
    }
}

/// A small deterministic generator (SplitMix64), so that each seed of the generated
/// datasets below is the same dataset on every run.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max`.
    fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }
}

/// An area's numerator, denominator and school count in one pupil group.
type Sums = (u64, u64, i64);

/// Replaces the indicator's `ALL` / `DISADVANTAGED` / `NOT_DISADVANTAGED` figures for
/// the period with a generated dataset: every school of the register gets new ones
/// (skewed small, so that many cells fall under the thresholds and complementary
/// suppression has work to do), and every LA, region and England figure is rewritten as
/// the sum of its schools', as a publisher's sync would send them.
async fn write_generated_dataset(hub: &TestHub, register: &[School], indicator: &str, seed: u64) {
    let writer = hub.token_for("HUB:HUB", "SYNC_AGENT");
    let mut rng = Generator(seed);
    let mut rows = Vec::new();
    let mut areas: BTreeMap<(&str, String), [Sums; 2]> = BTreeMap::new();
    for school in register {
        // Some schools have one or two disadvantaged pupils, most have more.
        let sizes = [
            if rng.upto(3) == 0 {
                1 + rng.upto(2)
            } else {
                4 + rng.upto(60)
            },
            5 + rng.upto(300),
        ];
        let mut parts = [(0, 0); 2];
        for (part, pupils) in parts.iter_mut().zip(sizes) {
            *part = (rng.upto(pupils.min(12)), pupils);
        }
        let all = (parts[0].0 + parts[1].0, parts[0].1 + parts[1].1);
        for (group, (numerator, denominator)) in [
            ("ALL", all),
            ("DISADVANTAGED", parts[0]),
            ("NOT_DISADVANTAGED", parts[1]),
        ] {
            rows.push(json!({
                "indicatorCode": indicator, "period": PERIOD, "level": "SCHOOL",
                "areaCode": school.urn.to_string(), "pupilGroup": group,
                "numerator": numerator, "denominator": denominator, "schoolCount": 1,
            }));
        }
        for key in [
            ("LA", school.la.clone()),
            ("REGION", school.region.clone()),
            ("NATIONAL", "E92000001".to_owned()),
        ] {
            let sums = areas.entry(key).or_default();
            for (sum, part) in sums.iter_mut().zip(parts) {
                *sum = (sum.0 + part.0, sum.1 + part.1, sum.2 + 1);
            }
        }
    }
    for ((level, code), [dis, not]) in &areas {
        let all = (dis.0 + not.0, dis.1 + not.1, dis.2);
        for (group, (numerator, denominator, schools)) in [
            ("ALL", all),
            ("DISADVANTAGED", *dis),
            ("NOT_DISADVANTAGED", *not),
        ] {
            rows.push(json!({
                "indicatorCode": indicator, "period": PERIOD, "level": level,
                "areaCode": code, "pupilGroup": group,
                "numerator": numerator, "denominator": denominator, "schoolCount": schools,
            }));
        }
    }
    let body = hub
        .query(
            Some(&writer),
            "mutation($input: UpsertObservationsInput!) { upsertObservations(input: $input) { run { rowsReceived } } }",
            json!({ "input": { "rows": rows } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

/// The attacker over generated datasets: for each seed, the figures of one indicator are
/// replaced by a generated dataset and every kind of caller that reads area figures
/// tries to work out what is withheld from it. (An anonymous caller gets no figures:
/// `an_anonymous_caller_gets_no_figures_at_all`.)
#[tokio::test]
async fn no_caller_works_out_a_withheld_figure_in_generated_datasets() {
    const INDICATOR: &str = "suspension_rate";
    let hub = TestHub::spawn().await;
    let register = register(&hub).await;
    let mut callers = vec![
        (
            "an analyst".to_owned(),
            hub.token_for("LOCAL_AUTHORITY:852", "ANALYST"),
        ),
        (
            "LA 852's officer".to_owned(),
            hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER"),
        ),
        (
            "LA 202's officer".to_owned(),
            hub.token_for("LOCAL_AUTHORITY:202", "LA_OFFICER"),
        ),
    ];
    let trust = most_spread_trust(&register);
    callers.push((
        format!("trust {trust}'s officer"),
        hub.token_for(&format!("TRUST:{trust}"), "TRUST_OFFICER"),
    ));
    for seed in 1..=4 {
        write_generated_dataset(&hub, &register, INDICATOR, seed).await;
        for (who, token) in &callers {
            let (found, withheld) = disclosed(&hub, token, INDICATOR).await;
            assert!(
                found.is_empty(),
                "seed {seed}: {who} can work out {} of {withheld} withheld figures: {found:?}",
                found.len()
            );
            if who == "an analyst" {
                assert!(
                    withheld > 0,
                    "seed {seed}: the dataset has small cells to protect"
                );
            }
        }
    }
}
