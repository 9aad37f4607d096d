//! `run.json`: everything about a run beyond its identity — the options as given, the model's
//! resolved shape, the machine, the harness build, timings, memory and truncation counts.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::run_dir::write_json;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// The run's options (flags merged over the config file), as `--config` reads them.
    pub config: Value,
    pub resolved_tasks: Vec<String>,
    pub attention: String,
    pub backend: String,
    pub model: ModelRecord,
    pub data_sha256: BTreeMap<String, String>,
    pub harness_version: String,
    pub harness_git: String,
    pub machine: Machine,
    pub started: String,
    pub finished: String,
    pub seconds_this_invocation: f64,
    pub attention_resolved: AttentionRecord,
    /// How the weights were held (materialized at load, streamed per layer, or streamed with
    /// decode steps from the stored form; in which precision, against how much memory); absent
    /// in runs made before weights could stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    /// The largest resident memory of any invocation of this run (Linux VmHWM).
    pub peak_rss_bytes: Option<u64>,
    /// Per task: items whose prompt was cut on the left to fit the model's length.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub truncated: BTreeMap<String, usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelRecord {
    /// As given: a path or a hub id.
    pub path: String,
    /// As scores.csv names it (`org/name` for a hub id).
    pub name: String,
    pub sha256: String,
    /// Each file of the checkpoint with its sha256.
    pub files: Value,
    /// The decoder's configuration, as the model crate prints it.
    pub config: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AttentionRecord {
    pub num_layers: usize,
    pub num_heads: usize,
    pub native_kv_heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// The window every layer shares (None: full attention, or layers differ).
    pub window: Option<usize>,
    /// Per layer, where the layers' windows differ (`swa:W@even`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_windows: Option<Vec<Option<usize>>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    pub os: String,
    pub arch: String,
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub hostname: Option<String>,
}

impl Machine {
    pub fn this() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        });
        Self {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu_model,
            hostname: std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string()),
        }
    }
}

impl RunRecord {
    pub const FILE: &'static str = "run.json";

    pub fn write(&self, dir: &Path) -> Result<()> {
        write_json(&dir.join(Self::FILE), &serde_json::to_value(self)?)
    }

    /// `peak_rss_bytes` of an earlier invocation recorded in `dir/run.json`, if any.
    pub fn earlier_peak_rss(dir: &Path) -> Option<u64> {
        let text = std::fs::read_to_string(dir.join(Self::FILE)).ok()?;
        serde_json::from_str::<Value>(&text)
            .ok()?
            .get("peak_rss_bytes")?
            .as_u64()
    }
}

/// The peak resident memory of this process (Linux `VmHWM`); None where /proc is not available.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// A UTC timestamp as RFC 3339 (no dependency for one format).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Unix seconds of a `YYYY-MM-DDTHH:MM:SSZ` timestamp (as [`utc_now`] writes it).
pub fn unix_seconds(timestamp: &str) -> Option<f64> {
    let b = timestamp.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| timestamp.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let seconds = num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    // Days from civil (Howard Hinnant's algorithm, the inverse of `civil_date`).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + seconds) as f64)
}

/// (year, month, day) of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_date(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_and_dates_civil() {
        let now = utc_now();
        assert_eq!(now.len(), 20);
        assert!(now.starts_with("20") && now.ends_with('Z'));
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(20_786), (2026, 11, 29));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(unix_seconds("2026-11-29T07:59:25Z"), Some(1_795_939_165.0));
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(unix_seconds("2026-11-29 07:59:25"), None);
    }
}
