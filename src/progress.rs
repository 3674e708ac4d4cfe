//! Progress of long work (a first sync of 10,000 records at 10 requests/s takes 17 minutes):
//! a bar on a terminal, and otherwise a log line every few seconds, so that a CI log or a
//! journal shows the run is moving and how far it is.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Below this many steps, work is quick enough to need no progress at all.
const MIN_STEPS: usize = 20;
/// How often the log line comes when there is no terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    what: String,
    total: usize,
    done: AtomicUsize,
    bar: Option<indicatif::ProgressBar>,
    last_log: Mutex<Instant>,
    every: Duration,
    /// How many log lines were written.
    logged: AtomicUsize,
}

impl Progress {
    /// Progress of `total` steps of `what` (e.g. `home.example on tdns`).
    pub fn new(what: impl Into<String>, total: usize) -> Progress {
        Progress::every(what, total, LOG_EVERY)
    }

    /// `new`, with a log line at most once per `every`.
    pub fn every(what: impl Into<String>, total: usize, every: Duration) -> Progress {
        use std::io::IsTerminal;
        let what = what.into();
        let bar = (total >= MIN_STEPS && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            let style = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} changes, {eta} left")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.set_message(format!("applying {what}"));
            bar
        });
        let logged = AtomicUsize::new(0);
        Progress { what, total, done: AtomicUsize::new(0), bar, last_log: Mutex::new(Instant::now()), every, logged }
    }

    /// One more step done.
    pub fn step(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            return;
        }
        if self.total < MIN_STEPS {
            return;
        }
        let Ok(mut last) = self.last_log.lock() else { return };
        if last.elapsed() >= self.every {
            *last = Instant::now();
            self.logged.fetch_add(1, Ordering::Relaxed);
            tracing::info!(what = %self.what, done, total = self.total, "applying: {done} of {} changes", self.total);
        }
    }

    /// How many steps are done.
    pub fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_terminal_a_line_is_logged_at_most_once_per_interval() {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return; // the bar takes the place of the lines
        }
        let often = Progress::every("z on t", 50, Duration::ZERO);
        let rarely = Progress::every("z on t", 50, Duration::from_secs(3600));
        let small = Progress::every("z on t", 5, Duration::ZERO);
        for _ in 0..50 {
            often.step();
            rarely.step();
        }
        for _ in 0..5 {
            small.step();
        }
        assert_eq!((often.done(), often.logged.load(Ordering::Relaxed)), (50, 50));
        assert_eq!(rarely.logged.load(Ordering::Relaxed), 0);
        assert_eq!(small.logged.load(Ordering::Relaxed), 0, "quick work logs no progress");
    }
}
