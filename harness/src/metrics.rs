//! Metrics as lm-evaluation-harness 0.4 computes them.
//!
//! - acc and acc_norm per item: `tasks::McItem::predictions` (beside the items they score).
//! - stderr of a mean: sample standard deviation / √n (lm_eval/api/metrics.py `mean_stderr`).
//! - groups (MMLU): means weighted by subtask size, stderr pooled
//!   (lm_eval/api/metrics.py `aggregate_subtask_metrics`, `pooled_sample_stderr`).

/// Mean and its standard error over per-item scores.
pub fn mean_and_stderr(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, f64::NAN);
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (variance / n).sqrt())
}

/// A group's (value, stderr) from its subtasks' (value, stderr, size), weighted by size.
pub fn aggregate_weighted(parts: &[(f64, f64, usize)]) -> (f64, f64) {
    let total: usize = parts.iter().map(|p| p.2).sum();
    if total == 0 {
        return (f64::NAN, f64::NAN);
    }
    let value = parts.iter().map(|(v, _, n)| v * *n as f64).sum::<f64>() / total as f64;
    let denominator = total as f64 - parts.len() as f64;
    let pooled_variance = parts
        .iter()
        .map(|(_, se, n)| (*n as f64 - 1.0) * se * se * *n as f64)
        .sum::<f64>()
        / denominator;
    (value, (pooled_variance / total as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_is_the_sample_standard_deviation_over_root_n() {
        // values 1,0,1,1: mean 0.75, sample var = (3*0.0625 + 0.5625)/3 = 0.25, se = sqrt(0.25/4) = 0.25
        let (mean, se) = mean_and_stderr(&[1.0, 0.0, 1.0, 1.0]);
        assert!((mean - 0.75).abs() < 1e-12 && (se - 0.25).abs() < 1e-12);
    }

    #[test]
    fn pooled_group_stderr_equals_the_concatenated_items() {
        let a = [1.0, 0.0, 1.0, 1.0, 0.0];
        let b = [0.0, 0.0, 1.0];
        let (va, sa) = mean_and_stderr(&a);
        let (vb, sb) = mean_and_stderr(&b);
        let (value, se) = aggregate_weighted(&[(va, sa, a.len()), (vb, sb, b.len())]);
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        let (v_all, _) = mean_and_stderr(&all);
        assert!((value - v_all).abs() < 1e-12);
        // Hand-computed: ((4*0.3*5) + (2*(1/3)*... )): check against the formula's definition.
        let expected = (((5.0 - 1.0) * sa * sa * 5.0 + (3.0 - 1.0) * sb * sb * 3.0) / (8.0 - 2.0) / 8.0f64).sqrt();
        assert!((se - expected).abs() < 1e-12);
    }
}
