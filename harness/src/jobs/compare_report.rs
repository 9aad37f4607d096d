//! compare.md and compare.svg from the compare.csv rows (see [`super::compare`]).

use std::fmt::Write as _;

use super::compare::{LONG_CONTEXT, VariantRun};
use super::compare_rows::CompareRow;
use super::compare_svg::{Chart, render_svg};
use crate::options::RunOptions;

/// compare.md: settings, one scores table (variants as columns), one costs table.
/// `is_group` tells group rows (which repeat their members' time) from task rows.
pub fn markdown(
    base: &RunOptions,
    runs: &[VariantRun],
    reference: usize,
    rows: &[CompareRow],
    is_group: &dyn Fn(&str) -> bool,
) -> String {
    let labels: Vec<&str> = runs.iter().map(|r| r.label.as_str()).collect();
    let mut out = header(base, labels[reference]);
    scores_table(&mut out, &labels, reference, rows);
    costs_table(&mut out, runs, rows, is_group);
    kv_table(&mut out, &labels, rows);
    out
}

fn header(base: &RunOptions, reference: &str) -> String {
    let mut out = format!("# Attention variants of {}\n\n", base.model().display());
    let limit = base
        .limit
        .map_or("all items".into(), |l| format!("first {l} items per task"));
    let _ = writeln!(
        out,
        "- tasks: {} ({limit}); backend {}; batch size {}",
        base.tasks().join(", "),
        base.backend(),
        base.batch_size()
    );
    let _ = writeln!(
        out,
        "- reference: `{reference}`; Δ in percentage points; p: two-sided paired test on the same items \
         (McNemar's exact test for 0/1 results, paired t otherwise)"
    );
    let _ = writeln!(
        out,
        "- run folders: variants/<variant>/ (each resumable with `harness eval`)\n"
    );
    out
}

/// `| task | metric | n | <one column per variant> |` with each value, Δ and p.
fn scores_table(out: &mut String, labels: &[&str], reference: usize, rows: &[CompareRow]) {
    out.push_str("## Scores (%)\n\n| task | metric | n |");
    for label in labels {
        let _ = write!(out, " {label} |");
    }
    out.push_str("\n|---|---|---:|");
    out.push_str(&"---:|".repeat(labels.len()));
    out.push('\n');
    for key in row_keys(rows) {
        let cell = |label: &str| {
            rows.iter()
                .find(|r| r.variant == label && (&r.score.task, &r.score.metric) == key)
        };
        let n = cell(labels[reference]).or_else(|| rows.iter().find(|r| (&r.score.task, &r.score.metric) == key));
        let _ = write!(out, "| {} | {} | {} |", key.0, key.1, n.map_or(0, |r| r.score.n));
        for label in labels {
            let _ = write!(out, " {} |", cell(label).map_or("—".to_string(), score_cell));
        }
        out.push('\n');
    }
}

/// `61.0 (+1.5, p=0.21)`: the value, and against the reference its Δ and p.
fn score_cell(row: &CompareRow) -> String {
    let mut text = format!("{:.1}", row.score.value * 100.0);
    if let Some(delta) = row.delta_vs_native {
        let _ = write!(text, " ({:+.1}", delta * 100.0);
        match row.p_value {
            Some(p) => {
                let _ = write!(text, ", p={})", format_p(p));
            }
            None => text.push(')'),
        }
    }
    text
}

/// Per variant: K/V heads, window, KV cache at 32k, peak memory and throughput.
fn costs_table(out: &mut String, runs: &[VariantRun], rows: &[CompareRow], is_group: &dyn Fn(&str) -> bool) {
    out.push_str("\n## Costs\n\n");
    out.push_str("| variant | K/V heads | window | KV cache @ 32k tokens | peak RSS | items/s | tokens/s |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for run in runs {
        let mine: Vec<&CompareRow> = rows.iter().filter(|r| r.variant == run.label).collect();
        let (items, tokens) = throughput(&mine, is_group);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            run.label,
            run.kv.attention.kv_heads,
            run.kv.window_label(),
            human_bytes(run.kv.bytes(LONG_CONTEXT)),
            run.peak_bytes.map_or("—".into(), human_bytes),
            items.map_or("—".into(), |v| format!("{v:.2}")),
            tokens.map_or("—".into(), |v| format!("{v:.0}")),
        );
    }
    let _ = writeln!(
        out,
        "\nKV cache: keys and values of one sequence in f32 (kv_bytes_32k: at {LONG_CONTEXT} tokens). \
         Peak RSS: the variant's eval process (VmHWM). items/s and tokens/s: over the variant's tasks, \
         on this machine; tokens/s counts a shared multiple-choice context once.\n"
    );
}

/// Per task: its mean sequence length and each variant's KV cache at that length.
fn kv_table(out: &mut String, labels: &[&str], rows: &[CompareRow]) {
    out.push_str("### KV cache at each task's mean sequence length\n\n| task | mean tokens |");
    for label in labels {
        let _ = write!(out, " {label} |");
    }
    out.push_str("\n|---|---:|");
    out.push_str(&"---:|".repeat(labels.len()));
    out.push('\n');
    let mut estimated = false;
    for task in dedup(rows.iter().map(|r| &r.score.task)) {
        let first = rows.iter().find(|r| &r.score.task == task);
        let mean = first.and_then(|r| r.mean_tokens);
        let approx = first.is_some_and(|r| r.tokens_estimated);
        estimated |= approx;
        let _ = write!(
            out,
            "| {task} | {}{} |",
            mean.map_or("—".into(), |m| format!("{m:.0}")),
            if approx { " ≈" } else { "" }
        );
        for label in labels {
            let bytes = rows
                .iter()
                .find(|r| r.variant == *label && &r.score.task == task)
                .and_then(|r| r.kv_bytes);
            let _ = write!(out, " {} |", bytes.map_or("—".into(), human_bytes));
        }
        out.push('\n');
    }
    if estimated {
        out.push_str("\n≈: token counts estimated as text length / 4 (journals without token counts).\n");
    }
}

/// (items/s, tokens/s) over a variant's leaf tasks: Σ n / Σ seconds, Σ tokens / Σ seconds.
fn throughput(rows: &[&CompareRow], is_group: &dyn Fn(&str) -> bool) -> (Option<f64>, Option<f64>) {
    let mut seen: Vec<&str> = Vec::new();
    let (mut n, mut seconds, mut tokens, mut token_seconds) = (0.0, 0.0, 0.0, 0.0);
    for row in rows {
        // One row per task, and only tasks with their own throughput (not group rows, which
        // repeat their members' time).
        if seen.contains(&row.score.task.as_str()) || row.tokens_per_s.is_none() || row.score.seconds <= 0.0 {
            continue;
        }
        if is_group(&row.score.task) {
            continue;
        }
        seen.push(&row.score.task);
        n += row.score.n as f64;
        seconds += row.score.seconds;
        if let Some(rate) = row.tokens_per_s {
            tokens += rate * row.score.seconds;
            token_seconds += row.score.seconds;
        }
    }
    (
        (seconds > 0.0).then(|| n / seconds),
        (token_seconds > 0.0).then(|| tokens / token_seconds),
    )
}

/// The chart: each task's first metric per variant, and each task's items/s per variant.
pub fn svg(runs: &[VariantRun], rows: &[CompareRow]) -> String {
    let mut keys: Vec<(String, String)> = Vec::new();
    for row in rows {
        if !keys.iter().any(|(t, _)| t == &row.score.task) {
            keys.push((row.score.task.clone(), row.score.metric.clone()));
        }
    }
    let series: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
    let find = |label: &str, key: &(String, String)| {
        rows.iter()
            .find(|r| r.variant == label && r.score.task == key.0 && r.score.metric == key.1)
    };
    let scores = Chart {
        title: "Score per task (%, first metric)".into(),
        groups: keys.iter().map(|(t, m)| format!("{t} {m}")).collect(),
        series: series.clone(),
        values: series
            .iter()
            .map(|s| keys.iter().map(|k| find(s, k).map(|r| r.score.value * 100.0)).collect())
            .collect(),
        max: Some(100.0),
    };
    let speed = Chart {
        title: "Items per second per task".into(),
        groups: keys.iter().map(|(t, _)| t.clone()).collect(),
        series: series.clone(),
        values: series
            .iter()
            .map(|s| keys.iter().map(|k| find(s, k).map(|r| r.score.items_per_s)).collect())
            .collect(),
        max: None,
    };
    render_svg(&[scores, speed])
}

fn row_keys(rows: &[CompareRow]) -> Vec<(&String, &String)> {
    dedup(rows.iter().map(|r| (&r.score.task, &r.score.metric)))
}

fn dedup<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn format_p(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// Bytes in binary units.
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    const KIB: f64 = 1024.0;
    if b >= KIB * KIB * KIB {
        format!("{:.2} GiB", b / (KIB * KIB * KIB))
    } else if b >= KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else if b >= KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{bytes} B")
    }
}
