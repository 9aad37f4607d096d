//! Progress of a task, for a person at a terminal and for a batch log alike: a bar when stderr is
//! a terminal; otherwise plain lines (`hellaswag 120/400 3.1 items/s eta 1m30s`): one when the
//! task starts (with its place in the run: `task 2 of 57`), one every 30 s while it runs, even
//! when no item has finished since (a 7B model on a CPU can take minutes over one chunk), and
//! one at the end, so that a nightly job, Slurm or Kubernetes log shows a run is alive; a task
//! the journal already holds whole gets one line. Nothing with `--quiet`.

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a log line is written while a task runs.
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

/// A task's place in its run: the `index`-th (from 1) of `of`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskPosition {
    pub index: usize,
    pub of: usize,
}

impl TaskPosition {
    pub const ALONE: TaskPosition = TaskPosition { index: 1, of: 1 };
}

/// Where log lines go: stderr, or a buffer in tests.
type Sink = Arc<Mutex<dyn Write + Send>>;

/// One task's progress.
pub struct Progress {
    counts: Arc<Mutex<Counts>>,
    bar: Option<ProgressBar>,
    /// Log mode: the sink and the thread that writes a line every `LOG_EVERY`.
    log: Option<(Sink, Heartbeat)>,
}

/// What a log line reports.
struct Counts {
    name: String,
    total: usize,
    done: usize,
    /// Items already done when this invocation started (a resumed run), not counted in the rate.
    resumed: usize,
    started: Instant,
}

/// The thread that writes a line every interval until its sender is dropped.
struct Heartbeat {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    pub fn start(mode: ProgressMode, name: &str, position: TaskPosition, total: usize, done: usize) -> Self {
        let sink: Sink = Arc::new(Mutex::new(std::io::stderr()));
        Self::start_with(mode, name, position, total, done, sink, LOG_EVERY)
    }

    fn start_with(
        mode: ProgressMode,
        name: &str,
        position: TaskPosition,
        total: usize,
        done: usize,
        sink: Sink,
        every: Duration,
    ) -> Self {
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
        let counts = Arc::new(Mutex::new(Counts {
            name: name.to_string(),
            total,
            done,
            resumed: done,
            started: Instant::now(),
        }));
        let log = (mode == ProgressMode::Log).then(|| {
            let place = match position.of {
                1 => String::new(),
                of => format!(", task {} of {of}", position.index),
            };
            if total == 0 {
                write_line(&sink, &format!("{name} has no items{place}"));
                return (sink, Heartbeat::none());
            }
            if done == total {
                write_line(&sink, &format!("{name} {done}/{total} done earlier{place}"));
                return (sink, Heartbeat::none());
            }
            let resumed = match done {
                0 => String::new(),
                done => format!(" ({done} done earlier)"),
            };
            write_line(&sink, &format!("{name} {done}/{total} starting{resumed}{place}"));
            let heartbeat = Heartbeat::every(every, Arc::clone(&counts), Arc::clone(&sink));
            (sink, heartbeat)
        });
        Self { counts, bar, log }
    }

    pub fn advance(&mut self, items: usize) {
        lock(&self.counts).done += items;
        if let Some(bar) = &self.bar {
            bar.inc(items as u64);
        }
    }

    pub fn finish(mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some((sink, mut heartbeat)) = self.log.take() {
            // Stopped before the counts are locked: its thread may be waiting for them.
            heartbeat.stop();
            let counts = lock(&self.counts);
            if counts.resumed < counts.total {
                let line = format!("{} done in {}", counts.line(), clock(counts.started.elapsed()));
                write_line(&sink, &line);
            }
        }
    }
}

impl Counts {
    /// `name done/total rate eta T`: the rate as items/s, or as time per item where an item
    /// takes more than 10 s (a 7B model), and none before the first item of this run.
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
        let rate = if counted == 0 || rate == 0.0 {
            String::new()
        } else if rate < 0.1 {
            format!(" {} per item", clock(Duration::from_secs_f64(1.0 / rate)))
        } else if rate < 1.0 {
            format!(" {rate:.2} items/s")
        } else {
            format!(" {rate:.1} items/s")
        };
        format!("{} {}/{}{rate}{eta}", self.name, self.done, self.total)
    }
}

impl Heartbeat {
    fn none() -> Self {
        Self {
            stop: None,
            thread: None,
        }
    }

    /// A line with the counts and the time so far every `every`, until stopped.
    fn every(every: Duration, counts: Arc<Mutex<Counts>>, sink: Sink) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let line = {
                    let counts = lock(&counts);
                    format!("{}, {} in", counts.line(), clock(counts.started.elapsed()))
                };
                write_line(&sink, &line);
            }
        });
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A task that fails mid-way stops its heartbeat too.
impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The counts stay readable after a panic elsewhere: they are plain numbers.
fn lock<T: ?Sized>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A progress line; one that cannot be written (a closed stderr) is dropped, where eprintln!
/// would panic.
fn write_line(sink: &Sink, line: &str) {
    let _ = writeln!(lock(sink), "{line}");
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

    /// A log-mode progress writing into a buffer, its lines read back.
    fn logged(
        position: TaskPosition,
        total: usize,
        done: usize,
        every: Duration,
        work: impl FnOnce(&mut Progress, &dyn Fn() -> usize),
    ) -> Vec<String> {
        let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
        let mut progress = Progress::start_with(
            ProgressMode::Log,
            "mmlu_anatomy",
            position,
            total,
            done,
            buffer.clone(),
            every,
        );
        let read = || String::from_utf8(lock(&buffer).clone()).unwrap();
        work(&mut progress, &|| read().lines().count());
        progress.finish();
        read().lines().map(str::to_string).collect()
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(clock(Duration::from_secs(6)), "6s");
        assert_eq!(clock(Duration::from_secs(245)), "4m05s");
        assert_eq!(clock(Duration::from_secs(3723)), "1h02m03s");
    }

    #[test]
    fn log_lines_count_rate_without_resumed_items() {
        let mut p = Progress::start(ProgressMode::Quiet, "hellaswag", TaskPosition::ALONE, 400, 100);
        lock(&p.counts).started -= Duration::from_secs(10);
        p.advance(20);
        let line = lock(&p.counts).line();
        assert!(line.starts_with("hellaswag 120/400 2.0 items/s eta 2m"), "{line}");
    }

    /// A 7B subject of five items takes minutes an item: "0.00 items/s" would say nothing.
    #[test]
    fn slow_items_are_timed_per_item() {
        let mut p = Progress::start(ProgressMode::Quiet, "mmlu_sociology", TaskPosition::ALONE, 5, 0);
        lock(&p.counts).started -= Duration::from_secs(420);
        assert_eq!(lock(&p.counts).line(), "mmlu_sociology 0/5");
        p.advance(2);
        let line = lock(&p.counts).line();
        assert!(line.starts_with("mmlu_sociology 2/5 3m30s per item eta 10m3"), "{line}");
    }

    #[test]
    fn a_log_gets_lines_while_no_item_finishes() {
        let place = TaskPosition { index: 2, of: 57 };
        let lines = logged(place, 5, 0, Duration::from_millis(20), |progress, lines_so_far| {
            // The start line and two heartbeats, however slowly a busy machine schedules them.
            let deadline = Instant::now() + Duration::from_secs(30);
            while lines_so_far() < 3 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            progress.advance(5);
        });
        assert_eq!(lines[0], "mmlu_anatomy 0/5 starting, task 2 of 57");
        let waiting: Vec<&String> = lines.iter().filter(|l| l.starts_with("mmlu_anatomy 0/5, ")).collect();
        assert!(waiting.len() >= 2, "{lines:?}");
        assert!(waiting.iter().all(|l| l.ends_with("s in")), "{lines:?}");
        let last = lines.last().unwrap();
        assert!(
            last.starts_with("mmlu_anatomy 5/5 ") && last.contains(" done in "),
            "{lines:?}"
        );
    }

    #[test]
    fn a_task_the_journal_holds_whole_gets_one_line() {
        let place = TaskPosition { index: 3, of: 57 };
        let lines = logged(place, 5, 5, Duration::from_millis(1), |_, _| {
            std::thread::sleep(Duration::from_millis(20));
        });
        assert_eq!(lines, ["mmlu_anatomy 5/5 done earlier, task 3 of 57"]);
        // A shard may leave a task no items at all.
        let lines = logged(place, 0, 0, Duration::from_millis(1), |_, _| {});
        assert_eq!(lines, ["mmlu_anatomy has no items, task 3 of 57"]);
    }

    #[test]
    fn a_resumed_task_alone_in_its_run_says_what_was_done_before() {
        let lines = logged(TaskPosition::ALONE, 400, 100, LOG_EVERY, |progress, _| {
            progress.advance(300)
        });
        assert_eq!(lines[0], "mmlu_anatomy 100/400 starting (100 done earlier)");
        assert_eq!(lines.len(), 2, "{lines:?}");
    }
}
