use super::*;
use crate::domain::{GeographicLevel, PupilGroup};
use std::time::Instant;

#[test]
#[ignore]
fn calibrate() {
    let scale = match std::env::var("SCALE").as_deref() {
        Ok("national") => Scale::National,
        Ok("test") => Scale::Test,
        _ => Scale::Demo,
    };
    let t = Instant::now();
    let register = register::build(scale);
    println!(
        "register: {} schools, {} trusts in {:?}",
        register.schools.len(),
        register.trusts.len(),
        t.elapsed()
    );
    let single = register.trusts.iter().filter(|t| t.members == 1).count();
    println!("single-academy trusts {single}");
    let mut totals = AreaTotals::default();
    let mut obs = 0usize;
    let mut pupils = 0usize;
    let mut rolls = 0i64;
    for s in &register.schools {
        let out = simulate::run_school(s, register.las[s.la_index].effect, b"x", &mut totals);
        obs += out.observations.len();
        pupils += out.pupil_records.len();
        rolls += out.pupils_on_roll as i64;
    }
    println!(
        "simulated in {:?}: school obs {obs}, area obs {}, pupil records {pupils}, total roll {rolls}",
        t.elapsed(),
        totals.row_count()
    );
    for r in totals
        .rows()
        .filter(|r| r.level == GeographicLevel::National)
    {
        if matches!(
            r.group,
            PupilGroup::All
                | PupilGroup::Disadvantaged
                | PupilGroup::NotDisadvantaged
                | PupilGroup::Ehcp
        ) {
            println!(
                "{:26} {} {:18} {:>10.3}  (n={:?})",
                r.indicator_code,
                r.period,
                r.group.as_str(),
                r.value,
                r.denominator
            );
        }
    }
    for r in totals.rows().filter(|r| {
        r.level == GeographicLevel::La
            && r.period == "2024/25"
            && r.group == PupilGroup::All
            && (r.indicator_code == "attendance_rate" || r.indicator_code == "ks4_attainment8")
    }) {
        print!("{}:{}={:.1} ", r.area_code, &r.indicator_code[..4], r.value);
    }
    println!();
}
