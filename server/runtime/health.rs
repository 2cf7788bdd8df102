//! A container's health as its probes find it, with Docker's counting
//! (daemon/health.go): a success makes it healthy and ends the failing
//! streak; a failure counts unless the container is still starting within
//! its start period; `retries` failures in a row make it unhealthy. Kept
//! in the record, so a daemon restart loses no streak.

use crate::spec::Healthcheck;
use berth::pb;
use serde::{Deserialize, Serialize};

/// The probes kept, as Docker keeps them.
pub const LOG_ENTRIES: usize = 5;
/// The output of a probe kept, in bytes ("..." marks a cut).
pub const MAX_OUTPUT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn pb(self) -> pb::HealthStatus {
        match self {
            HealthStatus::Starting => pb::HealthStatus::Starting,
            HealthStatus::Healthy => pb::HealthStatus::Healthy,
            HealthStatus::Unhealthy => pb::HealthStatus::Unhealthy,
        }
    }
}

/// One probe: when it ran (unix nanos), its exit code (-1: timed out or
/// could not run) and output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub start: i64,
    pub end: i64,
    pub exit_code: i32,
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    pub log: Vec<Probe>,
}

impl Health {
    /// At a start: starting, no streak; the probes of earlier runs kept.
    pub fn starting(before: Option<Health>) -> Health {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: before.map(|h| h.log).unwrap_or_default(),
        }
    }

    /// Counts `probe` of the run that started at `started_at`; whether
    /// the status changed.
    pub fn record(&mut self, probe: Probe, check: &Healthcheck, started_at: i64) -> bool {
        let before = self.status;
        if probe.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else {
            let grace = check.start_period_ms as i64 * 1_000_000;
            let starting = self.status == HealthStatus::Starting
                && probe.start.saturating_sub(started_at) < grace;
            if !starting {
                self.failing_streak += 1;
                if self.failing_streak >= check.retries {
                    self.status = HealthStatus::Unhealthy;
                }
            }
        }
        if self.log.len() >= LOG_ENTRIES {
            self.log.drain(..=self.log.len() - LOG_ENTRIES);
        }
        self.log.push(probe);
        self.status != before
    }

    /// When the next probe of the run that started at `started_at` is
    /// due: an interval after the last one of this run ended, or after the
    /// start; the start interval while starting within the start period.
    pub fn next_probe(&self, check: &Healthcheck, started_at: i64) -> i64 {
        let base = self
            .log
            .last()
            .filter(|p| p.start >= started_at)
            .map_or(started_at, |p| p.end);
        let grace = check.start_period_ms as i64 * 1_000_000;
        let interval = match self.status == HealthStatus::Starting
            && base.saturating_sub(started_at) < grace
        {
            true => check.start_interval_ms,
            false => check.interval_ms,
        };
        base.saturating_add(interval as i64 * 1_000_000)
    }

    pub fn pb(&self) -> pb::Health {
        pb::Health {
            status: self.status.pb() as i32,
            failing_streak: self.failing_streak,
            log: self
                .log
                .iter()
                .map(|p| pb::HealthProbe {
                    start: Some(crate::events::timestamp(p.start)),
                    end: Some(crate::events::timestamp(p.end)),
                    exit_code: p.exit_code,
                    output: p.output.clone(),
                })
                .collect(),
        }
    }
}

/// A probe's output as kept: at most MAX_OUTPUT bytes, then "...".
pub fn kept_output(raw: &[u8], cut: bool) -> String {
    let mut out = String::from_utf8_lossy(&raw[..raw.len().min(MAX_OUTPUT)]).into_owned();
    if cut || raw.len() > MAX_OUTPUT {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::HealthAction;

    const S: i64 = 1_000_000_000;

    fn check(retries: u32, start_period_ms: u64) -> Healthcheck {
        Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval_ms: 1000,
            timeout_ms: 1000,
            start_period_ms,
            start_interval_ms: 100,
            retries,
            on_failure: HealthAction::None,
        }
    }

    fn probe(at: i64, exit_code: i32) -> Probe {
        Probe {
            start: at,
            end: at + 1,
            exit_code,
            output: String::new(),
        }
    }

    #[test]
    fn failures_in_a_row_make_it_unhealthy_and_a_success_ends_them() {
        let c = check(2, 0);
        let mut h = Health::starting(None);
        assert!(!h.record(probe(S, 1), &c, 0));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 1));
        assert!(h.record(probe(2 * S, 1), &c, 0));
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert!(h.record(probe(3 * S, 0), &c, 0));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        assert!(!h.record(probe(4 * S, 1), &c, 0));
        assert_eq!(h.status, HealthStatus::Healthy);
    }

    #[test]
    fn the_start_period_does_not_count_failures_but_a_success() {
        let c = check(1, 5000);
        let mut h = Health::starting(None);
        h.record(probe(S, 1), &c, 0);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        // Past it, a failure counts.
        assert!(h.record(probe(6 * S, 1), &c, 0));
        assert_eq!(h.status, HealthStatus::Unhealthy);
        // Healthy once, later failures count even within it.
        let mut h = Health::starting(None);
        h.record(probe(S, 0), &c, 0);
        h.record(probe(2 * S, 1), &c, 0);
        assert_eq!(h.status, HealthStatus::Unhealthy);
    }

    #[test]
    fn keeps_five_probes_and_times_the_next() {
        let c = check(3, 2000);
        let mut h = Health::starting(None);
        assert_eq!(h.next_probe(&c, 10 * S), 10 * S + S / 10);
        for i in 0..7 {
            h.record(probe(11 * S + i, 0), &c, 10 * S);
        }
        assert_eq!(h.log.len(), LOG_ENTRIES);
        assert_eq!(h.log[0].start, 11 * S + 2);
        // Healthy: the interval.
        assert_eq!(h.next_probe(&c, 10 * S), 11 * S + 7 + S);
        // A new run starts from its start, the old probes kept.
        let h = Health::starting(Some(h));
        assert_eq!(h.log.len(), LOG_ENTRIES);
        assert_eq!(h.next_probe(&c, 20 * S), 20 * S + S / 10);
    }

    #[test]
    fn output_is_cut_at_4_kib() {
        assert_eq!(kept_output(b"ok\n", false), "ok\n");
        let big = vec![b'x'; 5000];
        assert_eq!(kept_output(&big, false).len(), MAX_OUTPUT + 3);
    }
}
