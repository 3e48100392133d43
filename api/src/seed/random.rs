//! Reproducible randomness for the generator.
//!
//! Every random draw comes from a [`ChaCha8Rng`] whose seed is derived from *what is
//! being generated* (a school's URN, a pupil's cohort and number, a period), never from
//! the order in which things happen to be generated. So a pupil keeps the same flags and
//! pupil number from one year to the next, and generating one school never disturbs
//! another. ChaCha is used rather than `SmallRng` because its output is specified and
//! stable across platforms and `rand` releases; the demo data must not change under a
//! dependency bump.
//!
//! The few distributions needed (normal, log-normal, Poisson, Bernoulli) are written out
//! here rather than pulled in from `rand_distr`: they are a handful of lines each and
//! their exact algorithms are then part of this crate's reproducibility guarantee.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Distinguishes the purposes random streams are used for, so that equal identifiers in
/// different roles (URN 100001 and cohort 100001, say) never share a stream.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub enum Purpose {
    Register = 1,
    Area = 2,
    Pupil = 3,
    PupilYear = 4,
}

/// A generator seeded from a purpose and a list of identifying numbers.
pub fn stream(purpose: Purpose, ids: &[u64]) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(purpose as u64, ids))
}

/// Folds identifiers into one well-distributed seed using the SplitMix64 finaliser, so
/// that near-identical inputs (consecutive URNs) give unrelated seeds.
fn mix(purpose: u64, ids: &[u64]) -> u64 {
    let mut state = splitmix(purpose ^ 0x5EED_BA5E_11AE_2026);
    for &id in ids {
        state = splitmix(state ^ id);
    }
    state
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// True with probability `p` (values outside 0..=1 saturate rather than panic).
pub fn chance(rng: &mut impl Rng, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut impl Rng) -> f64 {
    // `1 - u` lies in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal multiplier with mean 1 and log-scale spread `sigma`: skewed, never
/// negative, and averaging out to the base rate it multiplies.
pub fn mean_one_lognormal(z: f64, sigma: f64) -> f64 {
    (sigma * z - sigma * sigma / 2.0).exp()
}

/// A Poisson draw. Rates here are small (well under 10), where Knuth's multiplication
/// method is exact and quick; larger rates fall back to a rounded normal approximation.
pub fn poisson(rng: &mut impl Rng, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        let draw = lambda + lambda.sqrt() * normal(rng);
        return draw.round().max(0.0) as u32;
    }
    let limit = (-lambda).exp();
    let mut product: f64 = rng.random();
    let mut count = 0;
    while product > limit {
        product *= rng.random::<f64>();
        count += 1;
    }
    count
}

pub fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = stream(Purpose::Pupil, &[100_001, 2015, 7]).random();
        let b: u64 = stream(Purpose::Pupil, &[100_001, 2015, 7]).random();
        let c: u64 = stream(Purpose::Pupil, &[100_001, 2015, 8]).random();
        let d: u64 = stream(Purpose::PupilYear, &[100_001, 2015, 7]).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn distributions_have_the_right_means() {
        let mut rng = stream(Purpose::Register, &[42]);
        let n = 20_000;
        let normal_mean = (0..n).map(|_| normal(&mut rng)).sum::<f64>() / n as f64;
        assert!(normal_mean.abs() < 0.05, "{normal_mean}");
        let poisson_mean = (0..n).map(|_| poisson(&mut rng, 0.8) as f64).sum::<f64>() / n as f64;
        assert!((poisson_mean - 0.8).abs() < 0.05, "{poisson_mean}");
        let lognormal_mean = (0..n)
            .map(|_| mean_one_lognormal(normal(&mut rng), 0.8))
            .sum::<f64>()
            / n as f64;
        assert!((lognormal_mean - 1.0).abs() < 0.05, "{lognormal_mean}");
    }
}
