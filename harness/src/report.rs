//! Reports: `scores.csv` (one row per task and metric), `run.json` (everything needed to know
//! whether two runs are comparable) and the summary table on stdout. Files are written
//! atomically.

/// scores.csv rows and writers: one definition, in the reports crate that also reads them back.
pub use reports::run_dir::{CSV_COLUMNS, ScoreRow, write_json, write_scores_csv};

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

/// A UTC timestamp as RFC 3339 (no dependency for one format).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What run.json says about the machine.
pub fn machine_info() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("model name"))
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    serde_json::json!({
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_model": cpu,
        "hostname": std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        let now = utc_now();
        assert_eq!(now.len(), 20);
        assert!(now.starts_with("20") && now.ends_with('Z'));
    }
}
