//! logs: a container's output, as it wrote it.

use crate::{Api, Failure};
use berth::pb;

/// `tail`: a number or "all"; `since` and `until`: RFC 3339 times or
/// durations ago.
pub async fn logs(api: &mut Api, q: crate::args::LogsArgs) -> Result<u8, Failure> {
    let tail = match q.tail.as_str() {
        "all" => None,
        n => Some(
            n.parse()
                .map_err(|_| Failure(format!("invalid tail {n:?}: use a number or all"), 125))?,
        ),
    };
    let req = pb::LogsRequest {
        id: q.container,
        follow: q.follow,
        tail,
        since: q.since.as_deref().map(super::parse_time).transpose()?,
        until: q.until.as_deref().map(super::parse_time).transpose()?,
        timestamps: q.timestamps,
        stdout: false,
        stderr: false,
    };
    print(api, req).await?;
    Ok(0)
}

/// Writes log lines to stdout or stderr, as the container wrote them.
pub async fn print(api: &mut Api, req: pb::LogsRequest) -> Result<(), Failure> {
    use std::io::Write;
    let mut stream = api.logs(req).await?.into_inner();
    while let Some(e) = stream.message().await? {
        if e.lost_lines > 0 {
            eprintln!(
                "berth: {} lines were rotated away before they could be shown",
                e.lost_lines
            );
            continue;
        }
        let prefix = e.time.map(|t| format!("{t} ")).unwrap_or_default();
        let written = if e.stream == pb::LogStream::Stderr as i32 {
            let mut err = std::io::stderr().lock();
            err.write_all(prefix.as_bytes())
                .and_then(|()| err.write_all(&e.line))
        } else {
            let mut out = std::io::stdout().lock();
            out.write_all(prefix.as_bytes())
                .and_then(|()| out.write_all(&e.line))
                .and_then(|()| out.flush())
        };
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
            Err(_) => break,
            Ok(()) => {}
        }
    }
    Ok(())
}
