//! The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models Trained on
//! Code", eq. 1), as HF evaluate's `code_eval` computes it (`estimate_pass_at_k.estimator`):
//!
//! ```text
//! pass@k = 1 - C(n-c, k) / C(n, k)           (n samples, c of them correct)
//!        = 1 - Π_{i = n-c+1}^{n} (1 - k / i)   (numerically stable; no large binomials)
//! ```
//!
//! and 1.0 when `n - c < k` (every k-subset contains a correct sample).

/// pass@k for one problem with `n` samples of which `c` passed. `None` when `k == 0`, `k > n` or
/// `c > n` (undefined; code_eval omits pass@k when any problem has fewer than k samples).
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    // np.prod(1.0 - k / np.arange(n - c + 1, n + 1)), in the same (ascending) order.
    let prod: f64 = (n - c + 1..=n).map(|i| 1.0 - k as f64 / i as f64).product();
    Some(1.0 - prod)
}

#[cfg(test)]
mod tests {
    use super::pass_at_k;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn matches_hand_computed_binomials() {
        // pass@1 = c / n.
        assert!(close(pass_at_k(1, 1, 1).unwrap(), 1.0));
        assert!(close(pass_at_k(1, 0, 1).unwrap(), 0.0));
        assert!(close(pass_at_k(10, 3, 1).unwrap(), 0.3));
        // n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7.
        assert!(close(pass_at_k(5, 2, 2).unwrap(), 0.7));
        // n=10, c=3, k=5: 1 - C(7,5)/C(10,5) = 1 - 21/252 = 11/12.
        assert!(close(pass_at_k(10, 3, 5).unwrap(), 11.0 / 12.0));
        // n=4, c=1, k=3: 1 - C(3,3)/C(4,3) = 1 - 1/4.
        assert!(close(pass_at_k(4, 1, 3).unwrap(), 0.75));
        // n - c < k: certain.
        assert_eq!(pass_at_k(5, 4, 2), Some(1.0));
        assert_eq!(pass_at_k(3, 3, 3), Some(1.0));
        // No correct sample: 0 for every k.
        assert!(close(pass_at_k(20, 0, 10).unwrap(), 0.0));
    }

    #[test]
    fn large_n_is_stable() {
        // n=200, c=1, k=100: 1 - C(199,100)/C(200,100) = 1 - 100/200 = 0.5 (binomials ~1e58).
        assert!((pass_at_k(200, 1, 100).unwrap() - 0.5).abs() < 1e-12);
        // n=1000, c=10, k=1: c/n.
        assert!((pass_at_k(1000, 10, 1).unwrap() - 0.01).abs() < 1e-12);
    }

    #[test]
    fn undefined_cases() {
        assert_eq!(pass_at_k(5, 1, 0), None);
        assert_eq!(pass_at_k(5, 1, 6), None);
        assert_eq!(pass_at_k(5, 6, 1), None);
    }
}
