//! Paired comparisons of two runs scored on the same items.
//!
//! - 0/1 per-item scores (acc, acc_norm, exact_match): McNemar's exact test (McNemar 1947; the
//!   exact, binomial form as in Fagerland, Lydersen & Laake 2013, "The McNemar test for binary
//!   matched-pairs data"): only the discordant pairs carry information; under H0 each discordant
//!   pair is equally likely to go either way, so with b + c discordant pairs
//!   `p = min(1, 2·P[X ≤ min(b, c)])`, `X ~ Binomial(b + c, 1/2)`, and `p = 1` when `b + c = 0`.
//! - Other per-item scores (pass@k estimates, partial credit): the paired t-test on the differences
//!   `d_i = candidate_i − baseline_i`: `t = mean(d) / (sd(d) / √n)` with the sample standard
//!   deviation (ddof = 1), `df = n − 1`, two-sided `p = P[|T_df| ≥ |t|] = I_{df/(df+t²)}(df/2, 1/2)`
//!   (Abramowitz & Stegun 26.7.1 with 26.5.27), where `I_x(a, b)` is the regularized incomplete
//!   beta function.
//!
//! `I_x(a, b)` is computed here by its continued fraction (A&S 26.5.8, evaluated with the modified
//! Lentz method) rather than with the `statrs` crate: it is forty lines, it keeps this crate free of
//! a numerical library and its transitive dependencies, and the tests pin it against closed forms.

use crate::aggregate::mean_and_stderr;

/// Which paired test produced a [`PairedResult`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PairedTest {
    /// McNemar's exact test. `b`: items the baseline got right and the candidate got wrong;
    /// `c`: items the baseline got wrong and the candidate got right.
    McNemar { b: usize, c: usize },
    /// Paired t-test with `df = n − 1` degrees of freedom.
    PairedT { t: f64, df: f64 },
}

/// The outcome of comparing two runs' per-item values on the same items.
#[derive(Clone, Debug, PartialEq)]
pub struct PairedResult {
    pub test: PairedTest,
    /// Number of paired items.
    pub n: usize,
    pub mean_baseline: f64,
    pub mean_candidate: f64,
    /// `mean(candidate − baseline)`: positive means the candidate scores higher.
    pub mean_difference: f64,
    /// Standard error of the mean difference, `sd(d) / √n` (ddof = 1); NaN when n < 2.
    pub stderr_difference: f64,
    /// Two-sided p-value; NaN when the test is undefined (n < 2 for the t-test).
    pub p_value: f64,
}

/// McNemar's exact two-sided p-value for `b` and `c` discordant pairs:
/// `min(1, 2·P[X ≤ min(b, c)])` with `X ~ Binomial(b + c, 1/2)`; 1 when `b + c = 0`.
///
/// The tail is summed from its largest term down, `P[X ≤ m] = pmf(m)·Σ_{k≤m} pmf(k)/pmf(m)`, with
/// `pmf(k−1)/pmf(k) = k / (n − k + 1)` and `ln pmf(m) = Σ_{j=1..m} ln((n − m + j)/j) − n·ln 2`,
/// so nothing overflows or underflows for any n.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let m = b.min(c);
    let (nf, mf) = (n as f64, m as f64);
    let mut ratio_sum = 0.0;
    let mut term = 1.0;
    for k in (0..=m).rev() {
        ratio_sum += term;
        if k == 0 || term < 1e-300 {
            break;
        }
        term *= k as f64 / (nf - k as f64 + 1.0);
    }
    let ln_choose: f64 = (1..=m).map(|j| ((nf - mf + j as f64) / j as f64).ln()).sum();
    let tail = (ln_choose - nf * std::f64::consts::LN_2).exp() * ratio_sum;
    (2.0 * tail).min(1.0)
}

/// True when every value is exactly 0 or 1, i.e. McNemar applies.
pub fn is_binary(values: &[f64]) -> bool {
    values.iter().all(|&v| v == 0.0 || v == 1.0)
}

/// Paired comparison of 0/1 scores with McNemar's exact test (see [`mcnemar_exact`]).
///
/// Panics if the slices differ in length; values other than 0 and 1 count as their truth value
/// (non-zero = correct), so callers should check [`is_binary`] first (as [`paired_test`] does).
pub fn mcnemar_paired(baseline: &[f64], candidate: &[f64]) -> PairedResult {
    assert_eq!(
        baseline.len(),
        candidate.len(),
        "paired samples must have the same length"
    );
    let (mut b, mut c) = (0, 0);
    for (&x, &y) in baseline.iter().zip(candidate) {
        match (x != 0.0, y != 0.0) {
            (true, false) => b += 1,
            (false, true) => c += 1,
            _ => {}
        }
    }
    PairedResult {
        test: PairedTest::McNemar { b, c },
        p_value: mcnemar_exact(b, c),
        ..differences(baseline, candidate)
    }
}

/// Two-sided paired t-test on `candidate_i − baseline_i` (see the module docs).
///
/// Degenerate cases: n < 2 gives p = NaN; when every difference is the same value (sd = 0) the
/// p-value is 1 if that value is 0 and 0 otherwise.
pub fn paired_t_test(baseline: &[f64], candidate: &[f64]) -> PairedResult {
    assert_eq!(
        baseline.len(),
        candidate.len(),
        "paired samples must have the same length"
    );
    let base = differences(baseline, candidate);
    let n = baseline.len();
    let df = n as f64 - 1.0;
    let (t, p_value) = if n < 2 {
        (f64::NAN, f64::NAN)
    } else if base.stderr_difference == 0.0 {
        if base.mean_difference == 0.0 {
            (0.0, 1.0)
        } else {
            (base.mean_difference.signum() * f64::INFINITY, 0.0)
        }
    } else {
        let t = base.mean_difference / base.stderr_difference;
        (t, student_t_two_sided(t, df))
    };
    PairedResult {
        test: PairedTest::PairedT { t, df },
        p_value,
        ..base
    }
}

/// McNemar when both sides are 0/1 scores, the paired t-test otherwise.
pub fn paired_test(baseline: &[f64], candidate: &[f64]) -> PairedResult {
    if is_binary(baseline) && is_binary(candidate) {
        mcnemar_paired(baseline, candidate)
    } else {
        paired_t_test(baseline, candidate)
    }
}

/// Means and the mean difference with its standard error; the test fields are placeholders.
fn differences(baseline: &[f64], candidate: &[f64]) -> PairedResult {
    let d: Vec<f64> = baseline.iter().zip(candidate).map(|(x, y)| y - x).collect();
    let (mean_difference, stderr_difference) = mean_and_stderr(&d);
    PairedResult {
        test: PairedTest::PairedT {
            t: f64::NAN,
            df: f64::NAN,
        },
        n: d.len(),
        mean_baseline: mean_and_stderr(baseline).0,
        mean_candidate: mean_and_stderr(candidate).0,
        mean_difference,
        stderr_difference,
        p_value: f64::NAN,
    }
}

/// Two-sided tail of Student's t: `P[|T_df| ≥ |t|] = I_{df/(df+t²)}(df/2, 1/2)` (A&S 26.7.1).
pub fn student_t_two_sided(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// The regularized incomplete beta function `I_x(a, b) = B(x; a, b) / B(a, b)` for a, b > 0 and
/// 0 ≤ x ≤ 1. Uses the continued fraction (A&S 26.5.8) where it converges fast,
/// `x < (a + 1)/(a + b + 2)`, and the symmetry `I_x(a, b) = 1 − I_{1−x}(b, a)` elsewhere.
pub fn regularized_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if a <= 0.0 || b <= 0.0 || !(0.0..=1.0).contains(&x) {
        return f64::NAN;
    }
    if x == 0.0 || x == 1.0 {
        return x;
    }
    // x^a (1−x)^b / B(a, b), in logs.
    let ln_front = a * x.ln() + b * (-x).ln_1p() - ln_beta(a, b);
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

/// `ln B(a, b) = ln Γ(a) + ln Γ(b) − ln Γ(a + b)`.
fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// The continued fraction of A&S 26.5.8,
/// `1/(1 + d_1/(1 + d_2/(1 + …)))` with `d_{2m+1} = −(a+m)(a+b+m)x / ((a+2m)(a+2m+1))` and
/// `d_{2m} = m(b−m)x / ((a+2m−1)(a+2m))`, evaluated front to back by the modified Lentz method
/// (Lentz 1976; Thompson & Barnett 1986).
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    // f = 1/(1 + d_1/(1 + …)): start Lentz at the first partial denominator.
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0));
    let mut f = d;
    for m in 1..=20_000 {
        let m = m as f64;
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 / guard(1.0 + even * d);
        c = guard(1.0 + even / c);
        f *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 / guard(1.0 + odd * d);
        c = guard(1.0 + odd / c);
        let step = d * c;
        f *= step;
        if (step - 1.0).abs() < EPS {
            break;
        }
    }
    f
}

/// `ln Γ(x)` for x > 0 by the Lanczos approximation with g = 7 and nine coefficients
/// (Lanczos 1964; the coefficient set tabulated by Godfrey), relative error below 1e-15;
/// the reflection formula covers x < 1/2.
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Γ(x)Γ(1−x) = π / sin(πx)
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "actual {actual:e}, expected {expected:e} (tolerance {tolerance:e})"
        );
    }

    /// Expected values: python3 -c "import math; n=b+c; m=min(b,c);
    /// print(min(1, 2*sum(math.comb(n,k) for k in range(m+1))/2**n))"
    #[test]
    fn mcnemar_matches_the_exact_binomial_sum() {
        close(mcnemar_exact(10, 2), 0.03857421875, 1e-15); // 2·(1+12+66)/4096
        close(mcnemar_exact(2, 10), 0.03857421875, 1e-15); // symmetric in b, c
        close(mcnemar_exact(0, 5), 0.0625, 1e-15); // 2/32
        close(mcnemar_exact(3, 3), 1.0, 0.0); // clamped at 1
        close(mcnemar_exact(1, 0), 1.0, 0.0);
        close(mcnemar_exact(0, 0), 1.0, 0.0);
        close(mcnemar_exact(15, 9), 0.30745625495910645, 1e-14);
        close(mcnemar_exact(100, 70), 0.02584438758134169, 1e-14);
    }

    #[test]
    fn mcnemar_survives_huge_counts() {
        // Far beyond 2^-1074: the tail must neither underflow to NaN nor exceed 1.
        let p = mcnemar_exact(6_000, 4_000);
        assert!(p > 0.0 && p < 1e-80, "{p:e}");
        close(mcnemar_exact(50_000, 50_000), 1.0, 0.0);
    }

    #[test]
    fn mcnemar_paired_counts_discordant_pairs() {
        let baseline = [1.0, 1.0, 1.0, 0.0, 0.0, 1.0];
        let candidate = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0];
        let r = mcnemar_paired(&baseline, &candidate);
        assert_eq!(r.test, PairedTest::McNemar { b: 2, c: 1 });
        close(r.p_value, 1.0, 0.0); // 2·(1+3)/8 = 1
        close(r.mean_difference, -1.0 / 6.0, 1e-15);
    }

    #[test]
    fn incomplete_beta_matches_closed_forms() {
        for &x in &[0.01, 0.2, 0.5, 0.77, 0.999] {
            close(regularized_incomplete_beta(1.0, 1.0, x), x, 1e-14); // uniform
            close(regularized_incomplete_beta(3.0, 1.0, x), x.powi(3), 1e-14); // I_x(a,1) = x^a
            close(regularized_incomplete_beta(1.0, 4.0, x), 1.0 - (1.0 - x).powi(4), 1e-14);
        }
        close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-14);
        close(ln_gamma(10.0), 362_880f64.ln(), 1e-12); // Γ(10) = 9!
    }

    #[test]
    fn student_t_matches_closed_forms_and_tables() {
        // df = 1 (Cauchy): p = 1 − (2/π)·atan|t|; df = 2: p = 1 − |t|/√(t² + 2).
        close(student_t_two_sided(1.5, 1.0), 0.3743340836219976, 1e-13);
        close(student_t_two_sided(4.0, 1.0), 0.1559582607547385, 1e-13);
        close(student_t_two_sided(1.5, 2.0), 0.2723931248910011, 1e-13);
        close(student_t_two_sided(-4.0, 2.0), 0.05719095841793653, 1e-13);
        // Two-sided critical values from a t table: t_{.975, 9} = 2.262157, t_{.975, 29} = 2.045230,
        // t_{.995, 29} = 2.756386, and the normal limit z_{.975} = 1.959964.
        close(student_t_two_sided(2.262157, 9.0), 0.05, 1e-6);
        close(student_t_two_sided(2.045230, 29.0), 0.05, 1e-6);
        close(student_t_two_sided(2.756386, 29.0), 0.01, 1e-6);
        close(student_t_two_sided(1.959964, 1e7), 0.05, 1e-6);
        close(student_t_two_sided(0.0, 5.0), 1.0, 1e-15);
    }

    /// Expected values from python3's statistics module (mean, stdev) and, for p, Simpson's rule
    /// with 200 000 panels on the t density (math.lgamma for its constant): 1 − 2∫_0^|t| f.
    #[test]
    fn paired_t_matches_a_hand_computation() {
        let baseline = [0.2, 0.5, 0.9, 0.4, 0.7, 0.3, 0.8, 0.6];
        let candidate = [0.3, 0.4, 1.0, 0.6, 0.9, 0.3, 0.9, 0.8];
        let r = paired_t_test(&baseline, &candidate);
        close(r.mean_difference, 0.1, 1e-15);
        close(r.stderr_difference, 0.03779644730092272, 1e-15); // stdev 0.10690449676496976 / √8
        let PairedTest::PairedT { t, df } = r.test else {
            panic!("not a t-test")
        };
        close(t, 2.6457513110645907, 1e-12); // = √7
        close(df, 7.0, 0.0);
        close(r.p_value, 0.03314550026378127, 1e-10);
        // The same data picked automatically: not 0/1, so a t-test.
        assert!(matches!(
            paired_test(&baseline, &candidate).test,
            PairedTest::PairedT { .. }
        ));
    }

    #[test]
    fn paired_t_degenerate_cases() {
        assert_eq!(paired_t_test(&[0.5, 0.5], &[0.5, 0.5]).p_value, 1.0);
        assert_eq!(paired_t_test(&[0.25, 0.5], &[0.5, 0.75]).p_value, 0.0); // constant shift
        assert!(paired_t_test(&[0.2], &[0.3]).p_value.is_nan());
    }
}
