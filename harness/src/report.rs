//! The summary table a person reads at the end of a run (the files are the reports crate's).

use reports::run_dir::ScoreRow;

/// The table a person reads at the end of a run.
pub fn summary_table(rows: &[ScoreRow]) -> String {
    let width = rows.iter().map(|r| r.task.len()).max().unwrap_or(4).max(4);
    let metric_width = rows.iter().map(|r| r.metric.len()).max().unwrap_or(6).max(6);
    let mut out = format!(
        "{:<width$}  {:>5}  {:>6}  {:<metric_width$} {:>7}  {:>7}  {:>8}\n",
        "task", "shots", "n", "metric", "value", "stderr", "items/s"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<width$}  {:>5}  {:>6}  {:<metric_width$} {:>7.4}  {:>7.4}  {:>8.2}\n",
            r.task, r.shots, r.n, r.metric, r.value, r.stderr, r.items_per_s
        ));
    }
    out
}
