//! Progress of a task, for a person at a terminal and for a batch log alike: a bar when stderr is
//! a terminal; otherwise plain lines (`hellaswag 120/400 3.1 items/s eta 1m30s`) at the start, at
//! the end and at most every 30 s in between, so that a nightly job, Slurm or Kubernetes log
//! shows a run is alive; nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a log line may be written.
const LOG_EVERY: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    Bar,
    Log,
    Quiet,
}

impl ProgressMode {
    /// A bar on a terminal, log lines elsewhere, nothing when quiet.
    pub fn detect(quiet: bool) -> Self {
        match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => ProgressMode::Quiet,
            (false, true) => ProgressMode::Bar,
            (false, false) => ProgressMode::Log,
        }
    }
}

/// One task's progress.
pub struct Progress {
    name: String,
    total: usize,
    done: usize,
    /// Items already done when this invocation started (a resumed run), not counted in the rate.
    resumed: usize,
    started: Instant,
    last_line: Instant,
    bar: Option<ProgressBar>,
    log: bool,
}

impl Progress {
    pub fn start(mode: ProgressMode, name: &str, total: usize, done: usize) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} items  {per_sec}  eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            bar.set_position(done as u64);
            bar
        });
        let now = Instant::now();
        let progress = Self {
            name: name.to_string(),
            total,
            done,
            resumed: done,
            started: now,
            last_line: now,
            bar,
            log: mode == ProgressMode::Log,
        };
        if progress.log {
            let resumed = if done > 0 {
                format!(" ({done} done earlier)")
            } else {
                String::new()
            };
            eprintln!("{} {done}/{total} starting{resumed}", progress.name);
        }
        progress
    }

    pub fn advance(&mut self, items: usize) {
        self.done += items;
        if let Some(bar) = &self.bar {
            bar.inc(items as u64);
        }
        if self.log && self.last_line.elapsed() >= LOG_EVERY && self.done < self.total {
            eprintln!("{}", self.line());
            self.last_line = Instant::now();
        }
    }

    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.log {
            eprintln!("{} done in {}", self.line(), clock(self.started.elapsed()));
        }
    }

    /// `name done/total rate items/s eta T`.
    fn line(&self) -> String {
        let seconds = self.started.elapsed().as_secs_f64();
        let counted = self.done - self.resumed;
        let rate = if seconds > 0.0 { counted as f64 / seconds } else { 0.0 };
        let eta = if rate > 0.0 && self.done < self.total {
            format!(
                " eta {}",
                clock(Duration::from_secs_f64((self.total - self.done) as f64 / rate))
            )
        } else {
            String::new()
        };
        let rate = if rate < 1.0 {
            format!("{rate:.2}")
        } else {
            format!("{rate:.1}")
        };
        format!("{} {}/{} {rate} items/s{eta}", self.name, self.done, self.total)
    }
}

/// `1h02m03s`, `4m05s`, `6s`.
fn clock(duration: Duration) -> String {
    let s = duration.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(clock(Duration::from_secs(6)), "6s");
        assert_eq!(clock(Duration::from_secs(245)), "4m05s");
        assert_eq!(clock(Duration::from_secs(3723)), "1h02m03s");
    }

    #[test]
    fn log_lines_count_rate_without_resumed_items() {
        let mut p = Progress::start(ProgressMode::Quiet, "hellaswag", 400, 100);
        p.started -= Duration::from_secs(10);
        p.advance(20);
        let line = p.line();
        assert!(line.starts_with("hellaswag 120/400 2.0 items/s eta 2m"), "{line}");
    }
}
