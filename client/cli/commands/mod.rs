//! One file per verb family; each takes the parsed arguments and a client
//! and returns the exit code.

pub mod archive;
pub mod attach;
pub mod events;
pub mod exec;
pub mod flags;
pub mod health;
pub mod image_list;
pub mod images;
pub mod inspect;
pub mod lifecycle;
pub mod logs;
pub mod network;
pub mod pull;
pub mod request;
pub mod signals;
pub mod system;

use crate::Failure;

pub fn key_value(s: &str, what: &str) -> Result<(String, String), Failure> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(Failure(format!("invalid {what} {s:?}: use KEY=VALUE"), 125)),
    }
}

/// Runs `f` for each container, printing the name on success like Docker;
/// fails (exit 1) if any failed.
pub async fn each<F, Fut>(containers: &[String], mut f: F) -> Result<u8, Failure>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    let mut failed = false;
    for c in containers {
        match f(c.clone()).await {
            Ok(()) => crate::output::outln!("{c}"),
            Err(s) => {
                eprintln!("Error response from daemon: {}", s.message());
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}

/// The daemon is shutting down, restarting or gone: UNAVAILABLE, or the
/// connection broke under a call (a daemon killed mid-stream). A call the
/// client's connection had queued when the connection closed ends
/// CANCELLED ("operation was canceled: connection closed"); berthd never
/// answers CANCELLED itself.
pub fn unavailable(s: &tonic::Status) -> bool {
    let m = s.message();
    let broken = || m.contains("transport error") || m.contains("h2 protocol error");
    match s.code() {
        tonic::Code::Unavailable => true,
        tonic::Code::Unknown | tonic::Code::Internal => broken(),
        tonic::Code::Cancelled => m.contains("connection"),
        _ => false,
    }
}

pub enum Since {
    Seq(u64),
    Time(prost_types::Timestamp),
}

/// A seq (digits only), an RFC 3339 time or a duration ago.
pub fn parse_since(s: &str) -> Result<Since, Failure> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(Since::Seq)
            .map_err(|_| Failure(format!("invalid seq {s:?}"), 125));
    }
    parse_time(s).map(Since::Time)
}

/// An RFC 3339 time or a duration ago ("10m", "1h30m").
pub fn parse_time(s: &str) -> Result<prost_types::Timestamp, Failure> {
    let t = humantime::parse_rfc3339_weak(s)
        .or_else(|_| {
            humantime::parse_duration(s).map(|d| std::time::SystemTime::now() - d)
        })
        .map_err(|_| {
            Failure(
                format!("invalid time {s:?}: use an RFC 3339 time (2026-11-22T08:00:00Z) or a duration (10m)"),
                125,
            )
        })?;
    Ok(prost_types::Timestamp::from(t))
}

#[cfg(test)]
mod tests {
    use super::unavailable;
    use tonic::{Code, Status};

    #[test]
    fn a_broken_connection_is_unavailable_an_answer_is_not() {
        let gone = [
            Status::unavailable("error trying to connect"),
            Status::unknown("transport error"),
            Status::internal("h2 protocol error: connection reset"),
            Status::new(Code::Cancelled, "operation was canceled: connection closed"),
            Status::new(
                Code::Cancelled,
                "operation was canceled: connection was not ready",
            ),
        ];
        for s in gone {
            assert!(unavailable(&s), "{s:?}");
        }
        let answers = [
            Status::not_found("no such container: w"),
            Status::unknown("exec failed"),
            Status::new(Code::Cancelled, "canceled"),
        ];
        for s in answers {
            assert!(!unavailable(&s), "{s:?}");
        }
    }
}
