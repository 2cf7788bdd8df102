//! The health check flags of run and create, as Docker parses them, into
//! the create request's Healthcheck.

use crate::args::HealthArgs;
use crate::Failure;
use berth::pb;

/// The health check the flags give; None if they give none (the image's
/// applies).
pub fn healthcheck(a: &HealthArgs) -> Result<Option<pb::Healthcheck>, Failure> {
    let ms = |flag: &str, v: &Option<String>| -> Result<u64, Failure> {
        v.as_deref().map_or(Ok(0), |v| duration_ms(flag, v))
    };
    let h = pb::Healthcheck {
        test: match &a.health_cmd {
            Some(cmd) => vec!["CMD-SHELL".into(), cmd.clone()],
            None => Vec::new(),
        },
        interval_milliseconds: ms("--health-interval", &a.health_interval)?,
        timeout_milliseconds: ms("--health-timeout", &a.health_timeout)?,
        start_period_milliseconds: ms("--health-start-period", &a.health_start_period)?,
        start_interval_milliseconds: ms("--health-start-interval", &a.health_start_interval)?,
        retries: a.health_retries.unwrap_or(0),
        on_failure: a.health_on_failure.clone().unwrap_or_default(),
    };
    let given = h != pb::Healthcheck::default();
    match (a.no_healthcheck, given) {
        (true, true) => Err(Failure(
            "--no-healthcheck conflicts with --health-* options".into(),
            125,
        )),
        (true, false) => Ok(Some(pb::Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        })),
        (false, given) => Ok(given.then_some(h)),
    }
}

/// A Go duration ("1h2m3.5s", "500ms", "0") in whole milliseconds, at
/// least 1 when not zero.
pub fn duration_ms(flag: &str, v: &str) -> Result<u64, Failure> {
    let bad = || {
        Failure(
            format!(
                "invalid argument {v:?} for {flag}: use a duration such as 30s, 1m30s or 500ms"
            ),
            125,
        )
    };
    if v == "0" {
        return Ok(0);
    }
    let mut rest = v;
    let mut nanos = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let n: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        nanos += n * unit;
    }
    Ok(match nanos {
        n if n <= 0.0 => 0,
        n => ((n / 1e6) as u64).max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_writes_them() {
        let ms = |v| duration_ms("--x", v);
        assert_eq!(ms("30s").unwrap(), 30_000);
        assert_eq!(ms("1m30s").unwrap(), 90_000);
        assert_eq!(ms("1.5s").unwrap(), 1500);
        assert_eq!(ms("250ms").unwrap(), 250);
        assert_eq!(ms("1h").unwrap(), 3_600_000);
        assert_eq!(ms("0").unwrap(), 0);
        for bad in ["30", "s", "1x", "-1s", ""] {
            assert!(ms(bad).is_err() || bad.is_empty(), "{bad}");
        }
    }

    #[test]
    fn no_healthcheck_conflicts_with_the_others() {
        let mut a = HealthArgs {
            no_healthcheck: true,
            ..Default::default()
        };
        let none = healthcheck(&a).unwrap().unwrap();
        assert_eq!(none.test, ["NONE"]);
        a.health_retries = Some(2);
        assert!(healthcheck(&a).is_err());
        assert_eq!(healthcheck(&HealthArgs::default()).unwrap(), None);
    }
}
