//! The progress line of a long run over many databases: finished of total, failed, rate and
//! the time left at that rate, logged at a steady interval (`progress_interval`).

use std::time::{Duration, Instant};

use tracing::info;

pub struct Progress {
    total: usize,
    finished: usize,
    failed: usize,
    started: Instant,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        Progress {
            total,
            finished: 0,
            failed: 0,
            started: Instant::now(),
        }
    }

    pub fn finished(&mut self, ok: bool) {
        self.finished += 1;
        if !ok {
            self.failed += 1;
        }
    }

    pub fn failed(&self) -> usize {
        self.failed
    }

    pub fn log(&self) {
        info!(
            finished = self.finished,
            total = self.total,
            failed = self.failed,
            "{}",
            self.line(self.started.elapsed())
        );
    }

    fn line(&self, elapsed: Duration) -> String {
        let rate = self.finished as f64 / elapsed.as_secs_f64().max(0.001);
        let left = match self.finished {
            0 => "time left unknown".to_string(),
            _ => {
                let secs = (self.total.saturating_sub(self.finished)) as f64 / rate;
                format!(
                    "about {} left",
                    human(Duration::from_secs_f64(secs.min(1e9)))
                )
            }
        };
        format!(
            "progress: {}/{} databases finished, {} failed, {rate:.1}/s, {left}",
            self.finished, self.total, self.failed
        )
    }
}

/// `45s`, `3m 20s`, `2h 05m`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_count_rate_and_time_left() {
        let mut p = Progress::new(1000);
        for i in 0..250 {
            p.finished(i % 100 != 0);
        }
        assert_eq!(
            p.line(Duration::from_secs(10)),
            "progress: 250/1000 databases finished, 3 failed, 25.0/s, about 30s left"
        );
        assert_eq!(
            Progress::new(5).line(Duration::from_secs(1)),
            "progress: 0/5 databases finished, 0 failed, 0.0/s, time left unknown"
        );
        assert_eq!(human(Duration::from_secs(200)), "3m 20s");
        assert_eq!(human(Duration::from_secs(7500)), "2h 05m");
    }
}
