//! A candidate run against a baseline run: can they be compared, and did anything get worse?
//!
//! 1. Comparability. The runs' identities ([`RunIdentity`], identity.json) must agree on every field but the model *path* and the backend: model hash, every data file
//!    hash, tasks, shots, limit, seed, attention, shard and any field added later. Otherwise the
//!    status is "cannot compare", with every difference listed.
//! 2. Mode. When the two runs are the same deterministic computation — identical identity
//!    (backend included), identical run.json `config` except `out`, `batch_size`, `threads`, `quiet` and
//!    the `model`/`data_dir` paths (their contents are compared by hash), and the same clean
//!    harness git commit (not `unknown`, not `-dirty`) — every per-item value must agree within
//!    `deterministic_tolerance`; any difference is a "deterministic mismatch".
//! 3. Otherwise, per task × metric: when both runs have per-item values on the same doc_ids, a
//!    paired test ([`crate::stats::paired_test`]: McNemar's exact test for 0/1 scores, the paired
//!    t-test otherwise); a regression is "candidate worse and p < alpha". Without per-item values
//!    on the same items (e.g. MMLU group rows), the aggregate may drop by at most
//!    `tolerance_points` percentage points.
//!
//! Higher is better for every metric except those named in `lower_is_better`.
//! Exit codes ([`RegressReport::exit_code`]): 0 no regression, 1 regression, 2 cannot compare.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::aggregate::agree;
use crate::identity::{NOT_BLOCKING, RunIdentity};
use crate::run_dir::{RunDir, ScoreRow, write_atomic};
use crate::stats::{PairedResult, PairedTest, paired_test};

/// run.json `config` keys that do not change what is computed.
const CONFIG_KEYS_IGNORED: [&str; 6] = ["out", "batch_size", "threads", "quiet", "model", "data_dir"];

/// Thresholds of [`compare_runs`].
#[derive(Clone, Debug, PartialEq)]
pub struct RegressOptions {
    /// Significance level of the paired tests (default 0.01).
    pub alpha: f64,
    /// Largest allowed drop of an aggregate, in percentage points, where no paired test is
    /// possible (default 1.0).
    pub tolerance_points: f64,
    /// Largest allowed per-item difference in deterministic mode (default 1e-9).
    pub deterministic_tolerance: f64,
    /// Metrics where lower is better (default none).
    pub lower_is_better: Vec<String>,
}

impl Default for RegressOptions {
    fn default() -> Self {
        Self {
            alpha: 0.01,
            tolerance_points: 1.0,
            deterministic_tolerance: 1e-9,
            lower_is_better: Vec::new(),
        }
    }
}

/// The overall outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    NoRegression,
    Regression,
    CannotCompare,
}

/// How one task × metric was judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// A paired test on per-item values (see [`Comparison::paired`]).
    Paired,
    /// The aggregate against `tolerance_points`.
    Tolerance,
    /// Deterministic mode: exact agreement required.
    Exact,
    /// Nothing to compare (the row exists on one side only).
    None,
}

/// The verdict for one task × metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Improved,
    Regression,
    DeterministicMismatch,
    /// In the baseline, not in the candidate: counts as a regression.
    MissingInCandidate,
    /// In the candidate only: reported, not judged.
    NewInCandidate,
}

impl Verdict {
    pub fn is_regression(self) -> bool {
        matches!(
            self,
            Verdict::Regression | Verdict::DeterministicMismatch | Verdict::MissingInCandidate
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Improved => "improved",
            Verdict::Regression => "REGRESSION",
            Verdict::DeterministicMismatch => "DETERMINISTIC MISMATCH",
            Verdict::MissingInCandidate => "MISSING IN CANDIDATE",
            Verdict::NewInCandidate => "new in candidate",
        }
    }
}

/// One task × metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub task: String,
    pub metric: String,
    /// Aggregate values from scores.csv (fractions).
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    pub n_baseline: Option<usize>,
    pub n_candidate: Option<usize>,
    /// `(candidate − baseline) · 100`.
    pub delta_points: Option<f64>,
    pub method: Method,
    /// The paired test, wherever both runs have per-item values on the same doc_ids (also in
    /// deterministic mode, for information).
    pub paired: Option<PairedResult>,
    pub verdict: Verdict,
    pub note: String,
}

/// The result of [`compare_runs`].
#[derive(Clone, Debug, PartialEq)]
pub struct RegressReport {
    pub baseline: PathBuf,
    pub candidate: PathBuf,
    pub options: RegressOptions,
    pub status: Status,
    /// Why the runs cannot be compared (empty otherwise).
    pub differences: Vec<String>,
    /// True when exact agreement was required.
    pub deterministic: bool,
    /// Why the runs were (not) treated as one deterministic computation, and other remarks.
    pub notes: Vec<String>,
    pub comparisons: Vec<Comparison>,
}

/// Compares `candidate` against `baseline` (both run directories); see the module docs.
/// Errors only when a run directory cannot be read.
pub fn compare_runs(baseline: &Path, candidate: &Path, options: &RegressOptions) -> Result<RegressReport> {
    // A NaN or out-of-range threshold would make every comparison pass.
    anyhow::ensure!(
        options.alpha > 0.0 && options.alpha < 1.0,
        "alpha must be between 0 and 1, got {}",
        options.alpha
    );
    anyhow::ensure!(
        options.tolerance_points.is_finite() && options.tolerance_points >= 0.0,
        "tolerance_points must be a finite number ≥ 0, got {}",
        options.tolerance_points
    );
    anyhow::ensure!(
        options.deterministic_tolerance.is_finite() && options.deterministic_tolerance >= 0.0,
        "deterministic_tolerance must be a finite number ≥ 0, got {}",
        options.deterministic_tolerance
    );
    let base = RunDir::load(baseline)?;
    let cand = RunDir::load(candidate)?;
    check_lower_is_better(&options.lower_is_better, &base)?;
    let mut report = RegressReport {
        baseline: baseline.to_path_buf(),
        candidate: candidate.to_path_buf(),
        options: options.clone(),
        status: Status::NoRegression,
        differences: Vec::new(),
        deterministic: false,
        notes: Vec::new(),
        comparisons: Vec::new(),
    };
    let (base_id, cand_id) = match (identity_of(&base), identity_of(&cand)) {
        (Ok(b), Ok(c)) => (b, c),
        (b, c) => {
            report.differences.extend(b.err());
            report.differences.extend(c.err());
            report.status = Status::CannotCompare;
            return Ok(report);
        }
    };
    let (blocking, remarks) = identity_differences(&base_id, &cand_id);
    report.notes.extend(remarks.iter().cloned());
    if !blocking.is_empty() {
        report.differences = blocking;
        report.status = Status::CannotCompare;
        return Ok(report);
    }
    let not_deterministic = determinism_obstacles(&base, &cand, &remarks);
    report.deterministic = not_deterministic.is_empty();
    if report.deterministic {
        report.notes.push(format!(
            "same model, data, configuration and clean harness commit: every per-item value must agree within {:e}",
            options.deterministic_tolerance
        ));
    } else {
        report.notes.push(format!(
            "statistical comparison (not one deterministic computation: {})",
            not_deterministic.join("; ")
        ));
    }
    for key in row_keys(&base.rows, &cand.rows) {
        report
            .comparisons
            .push(compare_one(&base, &cand, &key, report.deterministic, options)?);
    }
    report.status = if report.comparisons.iter().any(|c| c.verdict.is_regression()) {
        Status::Regression
    } else {
        Status::NoRegression
    };
    Ok(report)
}

impl RegressReport {
    /// 0: no regression, 1: regression, 2: the runs could not be compared.
    pub fn exit_code(&self) -> i32 {
        match self.status {
            Status::NoRegression => 0,
            Status::Regression => 1,
            Status::CannotCompare => 2,
        }
    }

    /// The report for people: settings, differences or notes, and one table row per task × metric.
    pub fn markdown(&self) -> String {
        let mut out = String::from("# Regression report\n\n");
        let status = match self.status {
            Status::NoRegression => "no regression",
            Status::Regression => "REGRESSION",
            Status::CannotCompare => "cannot compare",
        };
        let _ = writeln!(out, "- baseline: `{}`", self.baseline.display());
        let _ = writeln!(out, "- candidate: `{}`", self.candidate.display());
        let _ = writeln!(out, "- status: **{status}** (exit code {})", self.exit_code());
        if self.status == Status::CannotCompare {
            out.push_str("\n## Why the runs cannot be compared\n\n");
            for difference in &self.differences {
                let _ = writeln!(out, "- {difference}");
            }
            return out;
        }
        let _ = writeln!(
            out,
            "- rules: {}",
            if self.deterministic {
                format!(
                    "deterministic, per-item values must agree within {:e}",
                    self.options.deterministic_tolerance
                )
            } else {
                format!(
                    "regression = candidate worse and p < {} (paired test on the same doc_ids); \
                     without per-item results, a drop of more than {} points",
                    self.options.alpha, self.options.tolerance_points
                )
            }
        );
        for note in &self.notes {
            let _ = writeln!(out, "- note: {note}");
        }
        out.push_str(
            "\n| task | metric | n | baseline % | candidate % | Δ points | test | p-value | verdict | note |\n\
             |---|---|---:|---:|---:|---:|---|---:|---|---|\n",
        );
        for c in &self.comparisons {
            let n = match (c.n_baseline, c.n_candidate) {
                (Some(a), Some(b)) if a == b => a.to_string(),
                (a, b) => format!("{}/{}", opt(a), opt(b)),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                c.task,
                c.metric,
                n,
                percent(c.baseline),
                percent(c.candidate),
                c.delta_points.map_or("—".into(), |d| format!("{d:+.2}")),
                method_label(c),
                c.paired.as_ref().map_or("—".into(), |p| format_p(p.p_value)),
                c.verdict.label(),
                c.note.replace('|', "/"),
            );
        }
        out
    }

    /// One CSV row per task × metric (header only when the runs could not be compared):
    /// `task,metric,n_baseline,n_candidate,baseline,candidate,delta_points,method,p_value,verdict,note`,
    /// values as fractions, the delta in percentage points.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record([
            "task",
            "metric",
            "n_baseline",
            "n_candidate",
            "baseline",
            "candidate",
            "delta_points",
            "method",
            "p_value",
            "verdict",
            "note",
        ])?;
        for c in &self.comparisons {
            let number = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
            writer.write_record([
                c.task.clone(),
                c.metric.clone(),
                c.n_baseline.map_or(String::new(), |n| n.to_string()),
                c.n_candidate.map_or(String::new(), |n| n.to_string()),
                number(c.baseline),
                number(c.candidate),
                number(c.delta_points),
                method_label(c),
                number(c.paired.as_ref().map(|p| p.p_value)),
                c.verdict.label().to_string(),
                c.note.clone(),
            ])?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        write_atomic(path, &bytes).with_context(|| format!("{}: cannot write the comparison CSV", path.display()))
    }
}

/// Every metric `lower_is_better` names is one the baseline reports: a misspelt one would leave
/// its direction reversed in silence. (A candidate that can be compared has the same tasks.)
pub fn check_lower_is_better(names: &[String], baseline: &RunDir) -> Result<()> {
    match names.iter().find(|m| !baseline.rows.iter().any(|r| &r.metric == *m)) {
        Some(unknown) => anyhow::bail!(
            "lower_is_better names `{unknown}`, a metric {} does not report",
            baseline.path.join("scores.csv").display()
        ),
        None => Ok(()),
    }
}

/// A run's identity; the error says why there is none.
fn identity_of(run: &RunDir) -> std::result::Result<RunIdentity, String> {
    match RunIdentity::read(&run.path) {
        Ok(Some(identity)) => Ok(identity),
        Ok(None) => Err(format!(
            "{}: no identity.json: cannot tell what was run",
            run.path.display()
        )),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// (blocking differences, remarks on non-blocking ones) between two identities.
fn identity_differences(base: &RunIdentity, cand: &RunIdentity) -> (Vec<String>, Vec<String>) {
    let (mut blocking, mut remarks) = (Vec::new(), Vec::new());
    for (key, b, c) in base.differences(cand) {
        if NOT_BLOCKING.contains(&key.as_str()) {
            remarks.push(format!(
                "{key} differs: baseline {} vs candidate {}",
                show(Some(&b)),
                show(Some(&c))
            ));
        } else {
            blocking.push(format!(
                "{key}: baseline {} ≠ candidate {}",
                show(Some(&b)),
                show(Some(&c))
            ));
        }
    }
    (blocking, remarks)
}

/// Why the two runs are not one deterministic computation (empty when they are).
fn determinism_obstacles(base: &RunDir, cand: &RunDir, identity_remarks: &[String]) -> Vec<String> {
    let mut obstacles: Vec<String> = identity_remarks
        .iter()
        .filter(|r| !r.starts_with("model differs"))
        .cloned()
        .collect();
    let (Some(b), Some(c)) = (&base.run, &cand.run) else {
        obstacles.push("run.json missing".into());
        return obstacles;
    };
    let config = |v: &Value| {
        let mut map = v.get("config").and_then(Value::as_object).cloned().unwrap_or_default();
        for key in CONFIG_KEYS_IGNORED {
            map.remove(key);
        }
        map
    };
    let (bc, cc) = (config(b), config(c));
    let keys: BTreeSet<&String> = bc.keys().chain(cc.keys()).collect();
    for key in keys {
        if bc.get(key.as_str()) != cc.get(key.as_str()) {
            obstacles.push(format!(
                "config.{key}: {} vs {}",
                show(bc.get(key.as_str())),
                show(cc.get(key.as_str()))
            ));
        }
    }
    let (bg, cg) = (b.get("harness_git"), c.get("harness_git"));
    match (bg.and_then(Value::as_str), cg.and_then(Value::as_str)) {
        (Some(x), Some(y)) if x == y && x != "unknown" && !x.ends_with("-dirty") => {}
        (Some(x), Some(y)) if x == y => obstacles.push(format!("harness_git {x} does not pin the code")),
        _ => obstacles.push(format!("harness_git: {} vs {}", show(bg), show(cg))),
    }
    obstacles
}

/// (task, metric) pairs: the baseline's in its order, then those only the candidate has.
fn row_keys(base: &[ScoreRow], cand: &[ScoreRow]) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for row in base.iter().chain(cand) {
        let key = (row.task.clone(), row.metric.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

fn compare_one(
    base: &RunDir,
    cand: &RunDir,
    (task, metric): &(String, String),
    deterministic: bool,
    options: &RegressOptions,
) -> Result<Comparison> {
    let (b_row, c_row) = (base.row(task, metric), cand.row(task, metric));
    let mut comparison = Comparison {
        task: task.clone(),
        metric: metric.clone(),
        baseline: b_row.map(|r| r.value),
        candidate: c_row.map(|r| r.value),
        n_baseline: b_row.map(|r| r.n),
        n_candidate: c_row.map(|r| r.n),
        delta_points: b_row.zip(c_row).map(|(b, c)| (c.value - b.value) * 100.0),
        method: Method::None,
        paired: None,
        verdict: Verdict::Ok,
        note: String::new(),
    };
    let (Some(b_row), Some(c_row)) = (b_row, c_row) else {
        comparison.verdict = if b_row.is_some() {
            Verdict::MissingInCandidate
        } else {
            Verdict::NewInCandidate
        };
        return Ok(comparison);
    };
    let b_items = base.per_item(task, metric)?;
    let c_items = cand.per_item(task, metric)?;
    let paired_values = paired_values(&b_items, &c_items);
    if let Ok((bv, cv)) = &paired_values {
        comparison.paired = Some(paired_test(bv, cv));
    }
    if deterministic {
        comparison.method = Method::Exact;
        judge_exact(
            &mut comparison,
            b_row,
            c_row,
            &b_items,
            &c_items,
            &paired_values,
            options,
        );
    } else {
        let sign = if options.lower_is_better.iter().any(|m| m == metric) {
            -1.0
        } else {
            1.0
        };
        judge_statistically(&mut comparison, b_row, c_row, &paired_values, sign, options);
    }
    // An undefined value on one side only is never a pass (against the tolerance a NaN is
    // neither worse nor better).
    if b_row.value.is_finite() != c_row.value.is_finite() {
        let side = if c_row.value.is_finite() {
            "baseline"
        } else {
            "candidate"
        };
        comparison.verdict = Verdict::Regression;
        comparison.note = format!("the {side}'s value is not a number, the other's is");
    }
    Ok(comparison)
}

/// Deterministic mode: per-item values (or, without them, the aggregates) must agree.
/// Paired per-item values on identical doc_id sets, or why there are none.
fn paired_values(
    b_items: &Option<BTreeMap<usize, f64>>,
    c_items: &Option<BTreeMap<usize, f64>>,
) -> std::result::Result<(Vec<f64>, Vec<f64>), String> {
    match (b_items, c_items) {
        (Some(b), Some(c)) if b.keys().eq(c.keys()) && !b.is_empty() => {
            Ok((b.values().copied().collect(), c.values().copied().collect()))
        }
        (Some(b), Some(c)) => {
            let only_b = b.keys().filter(|k| !c.contains_key(k)).count();
            let only_c = c.keys().filter(|k| !b.contains_key(k)).count();
            Err(format!(
                "doc_ids differ ({only_b} only in baseline, {only_c} only in candidate)"
            ))
        }
        (None, None) => Err("no per-item results".to_string()),
        (Some(_), None) => Err("per-item results in the baseline only".to_string()),
        (None, Some(_)) => Err("per-item results in the candidate only".to_string()),
    }
}

/// Statistical mode: the paired test where there is one, else the aggregate against the
/// tolerance. `sign` is -1 for metrics where lower is better.
fn judge_statistically(
    comparison: &mut Comparison,
    b_row: &ScoreRow,
    c_row: &ScoreRow,
    paired_values: &std::result::Result<(Vec<f64>, Vec<f64>), String>,
    sign: f64,
    options: &RegressOptions,
) {
    match (&comparison.paired, paired_values) {
        (Some(paired), _) if !paired.p_value.is_nan() => {
            comparison.method = Method::Paired;
            let better = sign * paired.mean_difference;
            comparison.verdict = if paired.p_value < options.alpha && better < 0.0 {
                Verdict::Regression
            } else if paired.p_value < options.alpha && better > 0.0 {
                Verdict::Improved
            } else {
                Verdict::Ok
            };
        }
        (_, why) => {
            comparison.method = Method::Tolerance;
            let reason = match why {
                Err(reason) => reason.clone(),
                Ok(_) => "paired test undefined (fewer than 2 items)".into(),
            };
            comparison.note = format!("{reason}: tolerance {} points", options.tolerance_points);
            let better = sign * (c_row.value - b_row.value) * 100.0;
            comparison.verdict = if better < -options.tolerance_points {
                Verdict::Regression
            } else if better > options.tolerance_points {
                Verdict::Improved
            } else {
                Verdict::Ok
            };
        }
    }
}

fn judge_exact(
    comparison: &mut Comparison,
    b_row: &ScoreRow,
    c_row: &ScoreRow,
    b_items: &Option<BTreeMap<usize, f64>>,
    c_items: &Option<BTreeMap<usize, f64>>,
    paired_values: &std::result::Result<(Vec<f64>, Vec<f64>), String>,
    options: &RegressOptions,
) {
    let tolerance = options.deterministic_tolerance;
    let mismatch = match (b_items, c_items, paired_values) {
        (Some(b), Some(_), Ok((bv, cv))) => {
            let differing: Vec<usize> = b
                .keys()
                .zip(bv.iter().zip(cv))
                .filter(|(_, (x, y))| !agree(**x, **y, tolerance))
                .map(|(doc, _)| *doc)
                .collect();
            (!differing.is_empty()).then(|| {
                let first: Vec<String> = differing.iter().take(5).map(|d| d.to_string()).collect();
                format!(
                    "{} of {} items differ (doc_ids {}{})",
                    differing.len(),
                    b.len(),
                    first.join(", "),
                    if differing.len() > 5 { ", …" } else { "" }
                )
            })
        }
        (None, None, _) => {
            let same = b_row.n == c_row.n && agree(b_row.value, c_row.value, tolerance);
            (!same).then(|| "aggregates differ (no per-item results)".to_string())
        }
        (_, _, Err(reason)) => Some(reason.clone()),
        (_, _, Ok(_)) => None,
    };
    match mismatch {
        Some(note) => {
            comparison.verdict = Verdict::DeterministicMismatch;
            comparison.note = note;
        }
        None => comparison.verdict = Verdict::Ok,
    }
}

fn method_label(c: &Comparison) -> String {
    let test = c.paired.as_ref().map(|p| match p.test {
        PairedTest::McNemar { b, c } => format!("McNemar (b={b}, c={c})"),
        PairedTest::PairedT { df, .. } => format!("paired t (df={df})"),
    });
    match c.method {
        Method::Paired => test.unwrap_or_default(),
        Method::Tolerance => "tolerance".into(),
        Method::Exact => match test {
            Some(test) => format!("exact; {test}"),
            None => "exact".into(),
        },
        Method::None => "—".into(),
    }
}

fn show(value: Option<&Value>) -> String {
    match value {
        None => "(absent)".into(),
        Some(v) => {
            let text = v.to_string();
            if text.chars().count() > 80 {
                format!("{}…", text.chars().take(80).collect::<String>())
            } else {
                text
            }
        }
    }
}

fn opt(n: Option<usize>) -> String {
    n.map_or("—".into(), |n| n.to_string())
}

fn percent(value: Option<f64>) -> String {
    value.map_or("—".into(), |v| format!("{:.2}", v * 100.0))
}

fn format_p(p: f64) -> String {
    if p.is_nan() {
        "—".into()
    } else if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Writes a run directory with one multiple-choice task (`acc` per item) and returns its path.
    fn write_run(root: &Path, name: &str, acc: &[f64], identity: Value, run: Value) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("samples")).unwrap();
        let n = acc.len();
        let (value, stderr) = crate::aggregate::mean_and_stderr(acc);
        let csv = format!(
            "model,attention,backend,task,shots,n,metric,value,stderr,seconds,items_per_s\n\
             m,native,flex,arc_easy,0,{n},acc,{value},{stderr},1.0,{n}.0\n"
        );
        std::fs::write(dir.join("scores.csv"), csv).unwrap();
        let lines: String = acc
            .iter()
            .enumerate()
            .map(|(doc_id, a)| format!("{}\n", json!({"doc_id": doc_id, "acc": a})))
            .collect();
        std::fs::write(dir.join("samples/arc_easy.jsonl"), lines).unwrap();
        std::fs::write(dir.join("identity.json"), identity.to_string()).unwrap();
        std::fs::write(dir.join("run.json"), run.to_string()).unwrap();
        dir
    }

    fn identity() -> Value {
        json!({"model": "models/m.gguf", "model_sha256": "aaa", "tasks": ["arc_easy"], "shots": 0, "limit": 200,
               "attention": "native", "backend": "flex", "seed": 1234, "data_sha256": {"arc_easy/test.jsonl": "d1"}})
    }

    fn run_json(git: &str, out: &str, batch_size: usize) -> Value {
        json!({"config": {"model": "models/m.gguf", "tasks": ["arc_easy"], "shots": 0, "limit": 200,
                          "batch_size": batch_size, "attention": "native", "backend": "flex", "seed": 1234,
                          "out": out, "data_dir": null},
               "model": {"sha256": "aaa"}, "data_sha256": {"arc_easy/test.jsonl": "d1"},
               "harness_git": git, "attention": "native", "backend": "flex"})
    }

    /// 200 items: the baseline right on the first 120.
    fn baseline_acc() -> Vec<f64> {
        (0..200).map(|i| f64::from(i < 120)).collect()
    }

    #[test]
    fn identical_deterministic_runs_pass_and_any_item_change_is_a_mismatch() {
        let root = tempfile::tempdir().unwrap();
        let acc = baseline_acc();
        let base = write_run(root.path(), "base", &acc, identity(), run_json("abc123", "a", 8));
        let same = write_run(root.path(), "same", &acc, identity(), run_json("abc123", "b", 16));
        let report = compare_runs(&base, &same, &RegressOptions::default()).unwrap();
        assert!(report.deterministic, "{:?}", report.notes);
        assert_eq!(report.status, Status::NoRegression);
        assert_eq!(report.exit_code(), 0);
        assert_eq!(report.comparisons[0].method, Method::Exact);

        // Swap two items: same mean, so only the deterministic check can see it.
        let mut swapped = acc.clone();
        swapped.swap(0, 199);
        let cand = write_run(root.path(), "swapped", &swapped, identity(), run_json("abc123", "c", 8));
        let report = compare_runs(&base, &cand, &RegressOptions::default()).unwrap();
        assert_eq!(report.status, Status::Regression);
        assert_eq!(report.exit_code(), 1);
        let c = &report.comparisons[0];
        assert_eq!(c.verdict, Verdict::DeterministicMismatch);
        assert!(c.note.contains("2 of 200 items differ (doc_ids 0, 199)"), "{}", c.note);
        assert!(report.markdown().contains("DETERMINISTIC MISMATCH"));
    }

    #[test]
    fn a_value_that_is_not_a_number_on_one_side_is_a_regression() {
        let root = tempfile::tempdir().unwrap();
        let acc = baseline_acc();
        let base = write_run(root.path(), "base", &acc, identity(), run_json("abc123", "a", 8));
        let cand = write_run(root.path(), "cand", &acc, identity(), run_json("def456", "b", 8));
        // Without per-item values (compared against the tolerance), one side's value NaN.
        for run in [&base, &cand] {
            std::fs::remove_dir_all(run.join("samples")).unwrap();
        }
        let csv = cand.join("scores.csv");
        let text = std::fs::read_to_string(&csv).unwrap().replace(",0.6,", ",NaN,");
        std::fs::write(&csv, text).unwrap();
        for (b, c, side) in [(&base, &cand, "candidate"), (&cand, &base, "baseline")] {
            let report = compare_runs(b, c, &RegressOptions::default()).unwrap();
            assert_eq!(report.exit_code(), 1, "{side}");
            let note = &report.comparisons[0].note;
            assert!(note.contains(&format!("the {side}'s value is not a number")), "{note}");
        }
    }

    #[test]
    fn statistical_mode_flags_significant_drops_only() {
        let root = tempfile::tempdir().unwrap();
        let acc = baseline_acc();
        let base = write_run(root.path(), "base", &acc, identity(), run_json("abc123", "a", 8));
        // A dirty build: not pinned, so paired tests decide. 12 items lost, 2 gained:
        // McNemar b = 12, c = 2, p = 0.01293 (python: 2*sum(comb(14,k) for k in range(3))/2**14).
        let mut worse = acc.clone();
        for item in worse.iter_mut().take(12) {
            *item = 0.0;
        }
        worse[150] = 1.0;
        worse[151] = 1.0;
        let cand = write_run(
            root.path(),
            "worse",
            &worse,
            identity(),
            run_json("abc123-dirty", "b", 8),
        );
        let report = compare_runs(&base, &cand, &RegressOptions::default()).unwrap();
        assert!(!report.deterministic);
        let c = &report.comparisons[0];
        assert_eq!(c.method, Method::Paired);
        assert_eq!(c.paired.as_ref().unwrap().test, PairedTest::McNemar { b: 12, c: 2 });
        assert!((c.paired.as_ref().unwrap().p_value - 0.0129394531250).abs() < 1e-12);
        // p = 0.0129 is not below the default alpha 0.01 …
        assert_eq!(c.verdict, Verdict::Ok);
        assert_eq!(report.exit_code(), 0);
        // … but is below 0.05.
        let loose = RegressOptions {
            alpha: 0.05,
            ..RegressOptions::default()
        };
        let report = compare_runs(&base, &cand, &loose).unwrap();
        assert_eq!(report.comparisons[0].verdict, Verdict::Regression);
        assert_eq!(report.exit_code(), 1);
        assert!((report.comparisons[0].delta_points.unwrap() + 5.0).abs() < 1e-9);

        // The CSV has one row per task × metric.
        let csv_path = root.path().join("cmp.csv");
        report.write_csv(&csv_path).unwrap();
        let text = std::fs::read_to_string(&csv_path).unwrap();
        assert!(text.starts_with("task,metric,n_baseline,n_candidate,baseline,candidate,delta_points"));
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("arc_easy,acc,200,200,0.6,0.55,")
        );
        assert!(text.contains("REGRESSION"));
    }

    #[test]
    fn different_backends_are_compared_statistically() {
        let root = tempfile::tempdir().unwrap();
        let acc = baseline_acc();
        let base = write_run(root.path(), "base", &acc, identity(), run_json("abc123", "a", 8));
        let mut other = identity();
        other["backend"] = json!("ndarray");
        let mut run = run_json("abc123", "b", 8);
        run["config"]["backend"] = json!("ndarray");
        let mut swapped = acc.clone();
        swapped.swap(0, 199);
        let cand = write_run(root.path(), "cand", &swapped, other, run);
        let report = compare_runs(&base, &cand, &RegressOptions::default()).unwrap();
        assert!(!report.deterministic);
        assert_eq!(report.status, Status::NoRegression);
        assert!(report.notes.iter().any(|n| n.contains("backend differs")));
    }

    #[test]
    fn different_runs_cannot_be_compared_and_every_difference_is_listed() {
        let root = tempfile::tempdir().unwrap();
        let acc = baseline_acc();
        let base = write_run(root.path(), "base", &acc, identity(), run_json("abc123", "a", 8));
        let mut other = identity();
        other["model_sha256"] = json!("bbb");
        other["shots"] = json!(5);
        other["seed"] = json!(1);
        other["data_sha256"]["arc_easy/test.jsonl"] = json!("d2");
        let cand = write_run(root.path(), "cand", &acc, other, run_json("abc123", "b", 8));
        let report = compare_runs(&base, &cand, &RegressOptions::default()).unwrap();
        assert_eq!(report.status, Status::CannotCompare);
        assert_eq!(report.exit_code(), 2);
        assert_eq!(report.differences.len(), 4, "{:?}", report.differences);
        let text = report.markdown();
        for needle in [
            "model_sha256: baseline \"aaa\" ≠ candidate \"bbb\"",
            "shots: baseline 0 ≠ candidate 5",
            "seed",
            "data_sha256[arc_easy/test.jsonl]",
        ] {
            assert!(text.contains(needle), "{needle} not in\n{text}");
        }
    }

    #[test]
    fn aggregates_without_items_use_the_tolerance() {
        let root = tempfile::tempdir().unwrap();
        let acc = baseline_acc();
        let base = write_run(root.path(), "base", &acc, identity(), run_json("abc123", "a", 8));
        let mut fewer = acc.clone();
        for item in fewer.iter_mut().take(3) {
            *item = 0.0; // −1.5 points
        }
        let cand = write_run(root.path(), "cand", &fewer, identity(), run_json("unknown", "b", 8));
        std::fs::remove_dir_all(cand.join("samples")).unwrap();
        let report = compare_runs(&base, &cand, &RegressOptions::default()).unwrap();
        let c = &report.comparisons[0];
        assert_eq!(c.method, Method::Tolerance);
        assert_eq!(c.verdict, Verdict::Regression);
        assert!(c.note.contains("per-item results in the baseline only"), "{}", c.note);
        let lenient = RegressOptions {
            tolerance_points: 2.0,
            ..RegressOptions::default()
        };
        assert_eq!(compare_runs(&base, &cand, &lenient).unwrap().exit_code(), 0);
    }
}
