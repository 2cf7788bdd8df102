//! Health checks as configured: Docker's HEALTHCHECK (the image's, under
//! the request's field by field), its defaults, and what berth does when a
//! container becomes unhealthy.

use super::Error;
use serde::{Deserialize, Serialize};

pub const DEFAULT_INTERVAL_MS: u64 = 30_000;
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_START_INTERVAL_MS: u64 = 5_000;
pub const DEFAULT_RETRIES: u32 = 3;

/// A health check, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// ["CMD", executable, args...] or ["CMD-SHELL", command], as given.
    pub test: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub start_period_ms: u64,
    pub start_interval_ms: u64,
    pub retries: u32,
    #[serde(default)]
    pub on_failure: HealthAction,
}

/// What berth does when a container becomes unhealthy (Podman's
/// --health-on-failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthAction {
    #[default]
    None,
    Kill,
    Restart,
    Stop,
}

impl HealthAction {
    pub fn name(self) -> &'static str {
        match self {
            HealthAction::None => "none",
            HealthAction::Kill => "kill",
            HealthAction::Restart => "restart",
            HealthAction::Stop => "stop",
        }
    }
}

/// A health check's fields as a request or an image gives them (0 and
/// empty: not given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthRequest {
    pub test: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub start_period_ms: u64,
    pub start_interval_ms: u64,
    pub retries: u32,
    pub on_failure: String,
}

impl HealthRequest {
    /// This request's fields, the image's where it gives none.
    pub fn over(self, image: HealthRequest) -> HealthRequest {
        let or = |a: u64, b: u64| if a == 0 { b } else { a };
        HealthRequest {
            test: match self.test.is_empty() {
                true => image.test,
                false => self.test,
            },
            interval_ms: or(self.interval_ms, image.interval_ms),
            timeout_ms: or(self.timeout_ms, image.timeout_ms),
            start_period_ms: or(self.start_period_ms, image.start_period_ms),
            start_interval_ms: or(self.start_interval_ms, image.start_interval_ms),
            retries: if self.retries == 0 {
                image.retries
            } else {
                self.retries
            },
            on_failure: self.on_failure,
        }
    }

    /// The health check, or None if there is none (no test, or NONE).
    pub fn validate(self) -> Result<Option<Healthcheck>, Error> {
        let on_failure = match self.on_failure.as_str() {
            "" | "none" => HealthAction::None,
            "kill" => HealthAction::Kill,
            "restart" => HealthAction::Restart,
            "stop" => HealthAction::Stop,
            other => return Err(Error::HealthOnFailure(other.into())),
        };
        let bad = |why| Err(Error::Healthcheck(self.test.join(" ").as_str().into(), why));
        match self.test.first().map(String::as_str) {
            None | Some("NONE") if self.test.len() <= 1 => return Ok(None),
            Some("CMD") if self.test.len() >= 2 && !self.test[1].is_empty() => {}
            Some("CMD-SHELL") if self.test.len() >= 2 && !self.test[1].is_empty() => {}
            Some("CMD" | "CMD-SHELL") => return bad("give the command to run"),
            _ => {
                return bad(
                    "use [\"CMD\", executable, args...], [\"CMD-SHELL\", command] or [\"NONE\"]",
                )
            }
        }
        if self.test.iter().any(|a| a.contains('\0')) {
            return bad("it must not hold NUL");
        }
        let or = |v: u64, d: u64| if v == 0 { d } else { v };
        Ok(Some(Healthcheck {
            test: self.test,
            interval_ms: or(self.interval_ms, DEFAULT_INTERVAL_MS),
            timeout_ms: or(self.timeout_ms, DEFAULT_TIMEOUT_MS),
            start_period_ms: self.start_period_ms,
            start_interval_ms: or(self.start_interval_ms, DEFAULT_START_INTERVAL_MS),
            retries: if self.retries == 0 {
                DEFAULT_RETRIES
            } else {
                self.retries
            },
            on_failure,
        }))
    }
}

impl Healthcheck {
    /// What a probe runs: CMD's executable and arguments, CMD-SHELL's
    /// command through /bin/sh -c.
    pub fn argv(&self) -> Vec<String> {
        match self.test[0].as_str() {
            "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), self.test[1..].join(" ")],
            _ => self.test[1..].to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(t: &[&str]) -> HealthRequest {
        HealthRequest {
            test: t.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_request_goes_over_the_image_field_by_field() {
        let image = HealthRequest {
            interval_ms: 5000,
            retries: 7,
            ..test(&["CMD", "check"])
        };
        let mine = HealthRequest {
            interval_ms: 1000,
            ..Default::default()
        };
        let h = mine.over(image).validate().unwrap().unwrap();
        assert_eq!(h.test, ["CMD", "check"]);
        assert_eq!((h.interval_ms, h.retries), (1000, 7));
        assert_eq!(h.timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(h.argv(), ["check"]);
        // NONE turns the image's off.
        let none = test(&["NONE"]).over(test(&["CMD", "check"]));
        assert_eq!(none.validate(), Ok(None));
        assert_eq!(HealthRequest::default().validate(), Ok(None));
    }

    #[test]
    fn a_shell_command_runs_through_sh() {
        let h = test(&["CMD-SHELL", "curl -f localhost || exit 1"])
            .validate()
            .unwrap()
            .unwrap();
        assert_eq!(h.argv(), ["/bin/sh", "-c", "curl -f localhost || exit 1"]);
    }

    #[test]
    fn bad_forms_are_refused() {
        for t in [
            &["CMD"][..],
            &["CMD-SHELL", ""],
            &["RUN", "x"],
            &["NONE", "x"],
        ] {
            assert!(test(t).validate().is_err(), "{t:?}");
        }
        let mut r = test(&["CMD", "x"]);
        r.on_failure = "explode".into();
        assert!(r.validate().is_err());
    }
}
