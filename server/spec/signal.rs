//! Signals by name or number.

use super::Error;

/// Signal names and numbers as Linux knows them (x86_64 and most others).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Parses "KILL", "SIGKILL", "sigkill", "9", "RTMIN+3" into a number.
pub fn parse_signal(s: &str) -> Result<i32, Error> {
    let bad = || Error::Signal(s.into());
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = SIGNALS.iter().find(|(k, _)| *k == name) {
        return Ok(n);
    }
    // Real-time signals: RTMIN is 34 on Linux with glibc, RTMAX 64.
    let rt = |base: i32, rest: &str, sign: i32| -> Result<i32, Error> {
        let off = if rest.is_empty() {
            0
        } else {
            rest.parse::<i32>().map_err(|_| bad())?
        };
        let n = base + sign * off;
        if (34..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(34, rest.strip_prefix('+').unwrap_or(rest), 1);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(64, rest.strip_prefix('-').unwrap_or(rest), -1);
    }
    Err(bad())
}

/// A signal's name as Docker shows it: "SIGTERM", "SIGRTMIN+3"; the
/// number if it has none.
pub fn signal_name(n: i32) -> String {
    match SIGNALS.iter().find(|(_, k)| *k == n) {
        Some((name, _)) => format!("SIG{name}"),
        None if n == 34 => "SIGRTMIN".into(),
        None if (35..=64).contains(&n) => format!("SIGRTMIN+{}", n - 34),
        None => n.to_string(),
    }
}
