//! Restart policies: whether a run that ended starts again, and after how
//! long. Docker 20.10's rules (restartmanager/, daemon/monitor.go), kept in
//! the record so that a daemon restart changes nothing.

use super::Error;
use serde::{Deserialize, Serialize};

/// The first delay before a restart; it doubles after each restart up to
/// [`MAX_DELAY_MS`], and starts over once a run lasted [`RESET_AFTER_NS`].
pub const FIRST_DELAY_MS: u64 = 100;
pub const MAX_DELAY_MS: u64 = 60_000;
pub const RESET_AFTER_NS: i64 = 10_000_000_000;

/// What happens when a container's process exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// It stays exited.
    #[default]
    No,
    /// It starts again, whatever its exit code.
    Always,
    /// As `Always`, but not after the user stopped it, even across a
    /// host reboot.
    UnlessStopped,
    /// It starts again after a non-zero exit code, at most `max_retries`
    /// times in a row (0: no limit).
    OnFailure { max_retries: u32 },
}

/// How a run ended, as the policy weighs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub exit_code: i32,
    /// The user stopped or killed it (with SIGKILL or its stop signal).
    pub stopped: bool,
    /// Restarts since the user last started it.
    pub restarts: u64,
}

impl RestartPolicy {
    /// The policy of a request: Docker's names ("" is "no") and the
    /// retry limit, which only on-failure takes.
    pub fn parse(name: &str, max_retries: u32) -> Result<RestartPolicy, Error> {
        let policy = match name {
            "" | "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => return Ok(RestartPolicy::OnFailure { max_retries }),
            _ => return Err(Error::RestartPolicy(name.into())),
        };
        match max_retries {
            0 => Ok(policy),
            _ => Err(Error::RestartRetries(name.into())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure { .. } => "on-failure",
        }
    }

    pub fn max_retries(self) -> u32 {
        match self {
            RestartPolicy::OnFailure { max_retries } => max_retries,
            _ => 0,
        }
    }

    pub fn is_no(&self) -> bool {
        *self == RestartPolicy::No
    }

    /// Whether the run that ended starts again while the daemon runs: a
    /// run the user stopped never does.
    pub fn restarts(self, end: Ended) -> bool {
        !end.stopped && self.restarts_at_boot(end)
    }

    /// Whether it starts when the daemon first starts after the host
    /// booted, as Docker starts containers at its own start: `always`
    /// even if the user stopped it, `unless-stopped` unless the user did,
    /// `on-failure` after a failure within its retries.
    pub fn restarts_at_boot(self, end: Ended) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always => true,
            RestartPolicy::UnlessStopped => !end.stopped,
            RestartPolicy::OnFailure { max_retries } => {
                end.exit_code != 0 && (max_retries == 0 || end.restarts < u64::from(max_retries))
            }
        }
    }
}

/// The delay before the next restart, in ms, after one of `last_ms` (0 if
/// none yet) and a run of `ran_ns`: 100 ms, doubled each time up to a
/// minute, 100 ms again after a run of 10 s or more.
pub fn next_delay(last_ms: u64, ran_ns: i64) -> u64 {
    match last_ms {
        _ if ran_ns >= RESET_AFTER_NS => FIRST_DELAY_MS,
        0 => FIRST_DELAY_MS,
        last => last.saturating_mul(2).min(MAX_DELAY_MS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(exit_code: i32, stopped: bool, restarts: u64) -> Ended {
        Ended {
            exit_code,
            stopped,
            restarts,
        }
    }

    #[test]
    fn parses_docker_names() {
        assert_eq!(RestartPolicy::parse("", 0), Ok(RestartPolicy::No));
        assert_eq!(RestartPolicy::parse("no", 0), Ok(RestartPolicy::No));
        assert_eq!(
            RestartPolicy::parse("unless-stopped", 0),
            Ok(RestartPolicy::UnlessStopped)
        );
        assert_eq!(
            RestartPolicy::parse("on-failure", 3),
            Ok(RestartPolicy::OnFailure { max_retries: 3 })
        );
        assert!(RestartPolicy::parse("always", 2).is_err());
        assert!(RestartPolicy::parse("sometimes", 0).is_err());
    }

    #[test]
    fn decides_as_docker() {
        use RestartPolicy::*;
        assert!(!No.restarts(end(1, false, 0)));
        assert!(Always.restarts(end(0, false, 99)));
        assert!(!Always.restarts(end(137, true, 0)));
        assert!(Always.restarts_at_boot(end(137, true, 0)));
        assert!(!UnlessStopped.restarts_at_boot(end(0, true, 0)));
        assert!(UnlessStopped.restarts_at_boot(end(0, false, 0)));
        let twice = OnFailure { max_retries: 2 };
        assert!(!twice.restarts(end(0, false, 0)));
        assert!(twice.restarts(end(3, false, 1)));
        assert!(!twice.restarts(end(3, false, 2)));
        assert!(OnFailure { max_retries: 0 }.restarts(end(3, false, 1000)));
        // On-failure at boot: a failure, even one the user caused.
        assert!(twice.restarts_at_boot(end(143, true, 0)));
    }

    #[test]
    fn backs_off_and_resets() {
        assert_eq!(next_delay(0, 0), 100);
        assert_eq!(next_delay(100, 5), 200);
        assert_eq!(next_delay(51_200, 0), 60_000);
        assert_eq!(next_delay(60_000, 0), 60_000);
        assert_eq!(next_delay(60_000, RESET_AFTER_NS), 100);
    }
}
