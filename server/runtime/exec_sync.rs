//! ExecSync: an exec whose output comes back with its exit, at most
//! `SYNC_LIMIT` bytes of each stream kept; with a timeout, the process is
//! killed when it passes and its end is still awaited.

use super::error::{Error, Result};
use super::exec::ExecProcess;
use super::Runtime;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// At most this much of each stream is kept.
pub const SYNC_LIMIT: usize = 16 << 20;
const CHUNK: usize = 32 << 10;
/// How long after the timeout berthd waits for the helper's kill to
/// close the outputs.
const HELPER_GRACE: Duration = Duration::from_secs(2);

/// How an ExecSync ended.
#[derive(Debug, Default)]
pub struct SyncOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
    pub signal: i32,
    /// Killed at the timeout.
    pub timed_out: bool,
    /// Output beyond the limit was dropped.
    pub truncated: bool,
}

impl Runtime {
    /// Runs `p` in container `key` (no stdin, no terminal, in the
    /// foreground) and returns its output and exit.
    pub async fn exec_sync(
        self: &Arc<Self>,
        key: &str,
        mut p: ExecProcess,
        timeout: Option<Duration>,
    ) -> Result<SyncOutput> {
        p.stdin = false;
        p.detach = false;
        p.tty = None;
        // The helper kills and reaps it at the timeout; berthd kills the
        // helper if its outputs are still open a while after (something
        // it started holds them).
        p.timeout = timeout;
        let started = std::time::Instant::now();
        let mut running = self.exec(key, p).await?;
        let (stdout, stderr) = (running.stdout.take(), running.stderr.take());
        let both = async { tokio::join!(read(stdout), read(stderr)) };
        let (mut timed_out, mut outputs) = (false, None);
        match timeout {
            None => outputs = Some(both.await),
            Some(t) => match tokio::time::timeout(t + HELPER_GRACE, both).await {
                Ok(o) => outputs = Some(o),
                Err(_) => {
                    timed_out = true;
                    running.signal.send(libc::SIGKILL);
                }
            },
        }
        let (exit_code, signal) = running
            .exit
            .await
            .map_err(|_| Error::Internal("the exec's end was not seen".into()))?;
        timed_out |= signal == libc::SIGKILL && timeout.is_some_and(|t| started.elapsed() >= t);
        let ((stdout, t1), (stderr, t2)) = outputs.unwrap_or_default();
        Ok(SyncOutput {
            stdout,
            stderr,
            exit_code,
            signal,
            timed_out,
            truncated: t1 || t2,
        })
    }
}

/// All of `s` is read; at most SYNC_LIMIT bytes kept.
async fn read<R: AsyncRead + Unpin>(s: Option<R>) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    if let Some(mut s) = s {
        let mut buf = vec![0u8; CHUNK];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let room = SYNC_LIMIT.saturating_sub(kept.len());
            truncated |= n > room;
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
    }
    (kept, truncated)
}
