//! Every score the harness reports is computed here, once: a task's mean and stderr over its
//! items, and a group's aggregate over its member tasks. `harness eval`, `merge` and `compare`
//! all call these, so "merged shards equal the unsharded run" holds by construction.
//!
//! Definitions (lm-evaluation-harness 0.4, `lm_eval/api/metrics.py`, `evaluator.py`):
//! - task: `mean` over per-item values; `mean_stderr` = sample standard deviation (ddof = 1) / √n;
//! - group (`consolidate_group_results`): `aggregate_subtask_metrics(values, sizes,
//!   weight_by_size)` — the mean weighted by member size, or the plain mean of member values when
//!   `weight_by_size` is false — and always `pooled_sample_stderr(stderrs, sizes)`:
//!   `var_i = stderr_i² · n_i`, `pooled_var = Σ (n_i − 1)·var_i / (Σ n_i − k)`,
//!   `stderr = sqrt(pooled_var / Σ n_i)`; `n` is Σ n_i.

use crate::run_dir::ScoreRow;

/// Mean and standard error of the mean (NaN stderr for fewer than two values, NaN mean for none).
pub fn mean_and_stderr(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, f64::NAN);
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (variance / n).sqrt())
}

/// One member's (value, stderr, n).
pub type Part = (f64, f64, usize);

/// A group's (value, stderr) from its members, size-weighted or not (see the module docs).
pub fn group_value(parts: &[Part], weight_by_size: bool) -> (f64, f64) {
    let total: usize = parts.iter().map(|p| p.2).sum();
    if total == 0 {
        return (f64::NAN, f64::NAN);
    }
    let weight = |n: usize| if weight_by_size { n as f64 } else { 1.0 };
    let value = parts.iter().map(|&(v, _, n)| v * weight(n)).sum::<f64>()
        / parts.iter().map(|&(_, _, n)| weight(n)).sum::<f64>();
    let total = total as f64;
    let pooled_var = parts
        .iter()
        .map(|&(_, se, n)| (n as f64 - 1.0) * (se * se * n as f64))
        .sum::<f64>()
        / (total - parts.len() as f64);
    (value, (pooled_var / total).sqrt())
}

/// What every row of one run shares.
#[derive(Clone, Debug, PartialEq)]
pub struct RowLabels {
    pub model: String,
    pub attention: String,
    pub backend: String,
}

/// Equal within `tolerance`; two NaNs agree (an undefined value on both sides).
pub fn agree(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance || (a.is_nan() && b.is_nan())
}

/// A task's row for one metric from its per-item values and the seconds they took.
pub fn task_row(labels: &RowLabels, task: &str, shots: usize, metric: &str, values: &[f64], seconds: f64) -> ScoreRow {
    let (value, stderr) = mean_and_stderr(values);
    ScoreRow {
        model: labels.model.clone(),
        attention: labels.attention.clone(),
        backend: labels.backend.clone(),
        task: task.to_string(),
        shots,
        n: values.len(),
        metric: metric.to_string(),
        value,
        stderr,
        seconds,
        items_per_s: per_second(values.len(), seconds),
    }
}

/// A group to aggregate: its name, member tasks and weighting.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub name: String,
    pub members: Vec<String>,
    pub weight_by_size: bool,
}

/// The rows of `groups` (in that order, each metric its members report, in the order the
/// metrics first appear) from the members' task rows; a group none of whose members has a row
/// for a metric gets no row for it.
pub fn group_rows(task_rows: &[ScoreRow], groups: &[Group]) -> Vec<ScoreRow> {
    let mut metrics: Vec<&str> = Vec::new();
    for row in task_rows {
        if !metrics.contains(&row.metric.as_str()) {
            metrics.push(&row.metric);
        }
    }
    let mut out = Vec::new();
    for group in groups {
        for metric in &metrics {
            let members: Vec<&ScoreRow> = task_rows
                .iter()
                .filter(|r| r.metric == *metric && group.members.contains(&r.task))
                .collect();
            let Some(first) = members.first() else { continue };
            let parts: Vec<Part> = members.iter().map(|r| (r.value, r.stderr, r.n)).collect();
            let (value, stderr) = group_value(&parts, group.weight_by_size);
            let n = members.iter().map(|r| r.n).sum();
            let seconds = members.iter().map(|r| r.seconds).sum();
            out.push(ScoreRow {
                task: group.name.clone(),
                n,
                value,
                stderr,
                seconds,
                items_per_s: per_second(n, seconds),
                ..(*first).clone()
            });
        }
    }
    out
}

/// Items per second (0 when no time was recorded).
pub fn per_second(n: usize, seconds: f64) -> f64 {
    if seconds > 0.0 { n as f64 / seconds } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> RowLabels {
        RowLabels {
            model: "m".into(),
            attention: "native".into(),
            backend: "flex".into(),
        }
    }

    #[test]
    fn stderr_is_the_sample_standard_deviation_over_root_n() {
        // values 1,0,1,1: mean 0.75, sample var = (3*0.0625 + 0.5625)/3 = 0.25, se = sqrt(0.25/4) = 0.25
        let (mean, se) = mean_and_stderr(&[1.0, 0.0, 1.0, 1.0]);
        assert!((mean - 0.75).abs() < 1e-12 && (se - 0.25).abs() < 1e-12);
        assert!(mean_and_stderr(&[1.0]).1.is_nan() && mean_and_stderr(&[]).0.is_nan());
    }

    #[test]
    fn a_size_weighted_group_equals_its_concatenated_items() {
        let a = [1.0, 0.0, 1.0, 1.0, 0.0];
        let b = [0.0, 0.0, 1.0];
        let (va, sa) = mean_and_stderr(&a);
        let (vb, sb) = mean_and_stderr(&b);
        let (value, se) = group_value(&[(va, sa, a.len()), (vb, sb, b.len())], true);
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        assert!((value - mean_and_stderr(&all).0).abs() < 1e-12);
        let expected = ((4.0 * sa * sa * 5.0 + 2.0 * sb * sb * 3.0) / (8.0 - 2.0) / 8.0f64).sqrt();
        assert!((se - expected).abs() < 1e-12);
        // Unweighted: the plain mean of the two values, the same pooled stderr.
        let (plain, se_plain) = group_value(&[(va, sa, a.len()), (vb, sb, b.len())], false);
        assert!((plain - (va + vb) / 2.0).abs() < 1e-12 && (se_plain - expected).abs() < 1e-12);
    }

    #[test]
    fn mmlu_groups_are_size_weighted_with_pooled_stderr() {
        let row = |task: &str, value: f64, stderr: f64, n: usize| ScoreRow {
            stderr,
            value,
            ..task_row(&labels(), task, 5, "acc", &vec![0.0; n], 1.0)
        };
        let rows = vec![
            row("mmlu_abstract_algebra", 0.5, 0.1, 100),
            row("mmlu_college_physics", 0.25, 0.05, 300),
            row("mmlu_philosophy", 0.8, 0.2, 100),
        ];
        let group = |name: &str, members: &[&str]| Group {
            name: name.into(),
            members: members.iter().map(|m| m.to_string()).collect(),
            weight_by_size: true,
        };
        let groups = [
            group("mmlu_stem", &["mmlu_abstract_algebra", "mmlu_college_physics"]),
            group("mmlu_social_sciences", &["mmlu_econometrics"]),
            group(
                "mmlu",
                &["mmlu_abstract_algebra", "mmlu_college_physics", "mmlu_philosophy"],
            ),
        ];
        let out = group_rows(&rows, &groups);
        let find = |name: &str| out.iter().find(|r| r.task == name).unwrap();
        // STEM: (0.5*100 + 0.25*300) / 400 = 0.3125;
        // pooled stderr: sqrt(((99*0.01*100) + (299*0.0025*300)) / (400-2) / 400).
        let stem = find("mmlu_stem");
        assert_eq!(stem.n, 400);
        assert!((stem.value - 0.3125).abs() < 1e-12);
        let expected = ((99.0 * 0.01 * 100.0 + 299.0 * 0.0025 * 300.0) / 398.0 / 400.0f64).sqrt();
        assert!((stem.stderr - expected).abs() < 1e-12);
        let all = find("mmlu");
        assert_eq!((all.n, all.shots, all.metric.as_str()), (500, 5, "acc"));
        assert!((all.value - 0.41).abs() < 1e-12);
        // A group without member rows gets no row.
        assert!(out.iter().all(|r| r.task != "mmlu_social_sciences"));
    }
}
