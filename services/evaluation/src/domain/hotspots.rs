//! Hot spots: a count against its baseline, with a floor and a Poisson
//! test so that a handful of requests is not called a trend.

/// P(X ≥ k) for X ~ Poisson(λ).
pub fn poisson_tail(k: i64, lambda: f64) -> f64 {
    if k <= 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    if lambda > 400.0 {
        // Normal approximation with continuity correction.
        let z = (k as f64 - 0.5 - lambda) / lambda.sqrt();
        return 0.5 * erfc(z / std::f64::consts::SQRT_2);
    }
    // 1 - P(X ≤ k-1); e^-λ stays above f64's floor for λ ≤ 400.
    let mut term = (-lambda).exp();
    let mut below = 0.0;
    for i in 0..k {
        below += term;
        term *= lambda / (i + 1) as f64;
        if term == 0.0 && i as f64 > lambda {
            break;
        }
    }
    (1.0 - below).clamp(0.0, 1.0)
}

/// Complementary error function (Numerical Recipes' erfcc, |ε| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Significance a rise must reach.
pub const ALPHA: f64 = 0.01;

/// Whether `count` rises over `baseline`: at least `floor` requests, above
/// the baseline, and unlikely (p < [`ALPHA`]) were the baseline the rate.
pub fn rising(count: i64, baseline: f64, floor: i64) -> (bool, f64) {
    let p = poisson_tail(count, baseline);
    (count >= floor && count as f64 > baseline && p < ALPHA, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poisson_tail_matches_known_values() {
        // P(X ≥ 1 | 1) = 1 - e^-1.
        assert!((poisson_tail(1, 1.0) - 0.632_120_56).abs() < 1e-6);
        // P(X ≥ 10 | 4) = 0.008132.
        assert!((poisson_tail(10, 4.0) - 0.008_132).abs() < 1e-5);
        assert_eq!(poisson_tail(0, 3.0), 1.0);
        // Large λ: the approximation, P(X ≥ 1100 | 1000) ≈ 0.00080.
        assert!((poisson_tail(1100, 1000.0) - 0.000_80).abs() < 0.000_2);
    }

    #[test]
    fn five_requests_are_not_a_trend_but_forty_over_twelve_are() {
        assert!(!rising(5, 0.0, 10).0, "under the floor");
        assert!(rising(40, 12.0, 10).0);
        assert!(!rising(15, 12.0, 10).0, "within chance");
        assert!(!rising(8, 20.0, 5).0, "falling");
    }
}
