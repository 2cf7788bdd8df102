//! Wall-clock time as berth stores it: unix nanoseconds.

/// Now, in nanoseconds since the unix epoch (0 if the clock is before it).
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
