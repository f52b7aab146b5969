//! The statistics of an A/B comparison of two conversion rates.
//!
//! The unit is the shopper, because the shopper is what is randomised: a
//! shopper converts when at least one add-to-cart is attributed to the
//! recommendations they were shown. Answers or items shown to one shopper are
//! not independent trials (the same person sees many lists), so a test over
//! them would call noise significant.
//!
//! * [`wilson`] — the 95% Wilson score interval of one rate (well-behaved at
//!   rates near 0 and small counts, where the normal interval goes negative);
//! * [`two_proportion_z`] — the pooled two-proportion z-test of a difference,
//!   two-sided.

/// z of the two-sided 95% level.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The 95% Wilson score interval of `successes` out of `trials`; `(0, 1)` with no trials.
pub fn wilson(successes: u64, trials: u64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z95 * Z95;
    let centre = p + z2 / (2.0 * n);
    let spread = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let denominator = 1.0 + z2 / n;
    // At 0 or all successes the bound is exactly 0 or 1 (rounding aside).
    let low = if successes == 0 {
        0.0
    } else {
        ((centre - spread) / denominator).max(0.0)
    };
    let high = if successes >= trials {
        1.0
    } else {
        ((centre + spread) / denominator).min(1.0)
    };
    (low, high)
}

/// The pooled two-proportion z-test of `b` against `a`, each `(successes,
/// trials)`: `(z, two-sided p-value)`. `None` when a side has no trials or
/// neither side varies (every trial the same outcome): there is nothing to test.
pub fn two_proportion_z(a: (u64, u64), b: (u64, u64)) -> Option<(f64, f64)> {
    let (sa, na) = (a.0 as f64, a.1 as f64);
    let (sb, nb) = (b.0 as f64, b.1 as f64);
    if na == 0.0 || nb == 0.0 {
        return None;
    }
    let pooled = (sa + sb) / (na + nb);
    let variance = pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb);
    if variance <= 0.0 {
        return None;
    }
    let z = (sb / nb - sa / na) / variance.sqrt();
    Some((z, 2.0 * normal_sf(z.abs())))
}

/// `P(Z > x)` for a standard normal `Z`.
pub fn normal_sf(x: f64) -> f64 {
    0.5 * erfc(x / std::f64::consts::SQRT_2)
}

/// The complementary error function, to about 1e-7 relative accuracy
/// (Numerical Recipes' Chebyshev fit, `erfcc`), which is far below what a
/// p-value needs.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tail_matches_tables() {
        // Standard normal table values.
        for (x, p) in [
            (0.0, 0.5),
            (1.0, 0.158_655_25),
            (1.959_964, 0.025),
            (3.0, 0.001_349_9),
        ] {
            assert!(
                (normal_sf(x) - p).abs() < 1e-6,
                "x {x}: {} vs {p}",
                normal_sf(x)
            );
        }
        assert!((normal_sf(-1.0) - (1.0 - 0.158_655_25)).abs() < 1e-6);
    }

    #[test]
    fn z_test_against_a_hand_computation() {
        // 30/1000 against 45/1000: pooled 0.0375, se = sqrt(.0375 * .9625 * .002)
        // = 0.0084963, z = 0.015 / 0.0084963 = 1.76547, p = 2 * sf(1.76547) = 0.07749.
        let (z, p) = two_proportion_z((30, 1000), (45, 1000)).unwrap();
        assert!((z - 1.765_47).abs() < 1e-4, "z {z}");
        assert!((p - 0.077_49).abs() < 1e-4, "p {p}");
        // Symmetric, and identical rates give p = 1.
        let (z2, p2) = two_proportion_z((45, 1000), (30, 1000)).unwrap();
        assert!((z2 + z).abs() < 1e-12 && (p2 - p).abs() < 1e-12);
        // (to erfc's accuracy)
        assert!((two_proportion_z((5, 100), (10, 200)).unwrap().1 - 1.0).abs() < 1e-6);
        assert_eq!(two_proportion_z((0, 0), (1, 2)), None);
        assert_eq!(two_proportion_z((0, 10), (0, 20)), None);
    }

    #[test]
    fn wilson_interval_against_a_hand_computation() {
        // 10 of 100: centre (0.1 + 1.92073/100) / 1.0384146 = 0.114796,
        // spread 1.959964 * sqrt(0.0009 + 0.0000960364) / 1.0384146 = 0.0595751.
        let (lo, hi) = wilson(10, 100);
        assert!((lo - 0.055_22).abs() < 1e-4, "{lo}");
        assert!((hi - 0.174_37).abs() < 1e-4, "{hi}");
        let (lo, hi) = wilson(0, 50);
        assert_eq!(lo, 0.0);
        assert!(hi > 0.0 && hi < 0.1);
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }
}
