//! The container's output: PID 1's stdout and stderr into its log.

use super::protocol::Config;
use crate::logs;
use crate::sys::{linux, time::now_nanos};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long output is still read after PID 1 exited, in case something
/// outside the container holds the pipes open.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);

/// Lines into the log; a write error drops output rather than blocking
/// the container.
struct Log<'a> {
    id: &'a str,
    writer: Option<logs::Writer>,
    splitters: [logs::Splitter; 2],
    failed: bool,
}

const STREAMS: [u8; 2] = [logs::STDOUT, logs::STDERR];

impl Log<'_> {
    fn push(&mut self, i: usize, data: &[u8]) {
        let (writer, failed, id) = (&mut self.writer, &mut self.failed, self.id);
        let mut write = |line: &[u8]| record(writer, failed, id, STREAMS[i], line);
        match data.is_empty() {
            true => self.splitters[i].finish(&mut write),
            false => self.splitters[i].push(data, &mut write),
        }
    }

    fn flush(&mut self) {
        if let Some(w) = &mut self.writer {
            let _ = w.flush();
        }
    }
}

fn record(writer: &mut Option<logs::Writer>, failed: &mut bool, id: &str, stream: u8, line: &[u8]) {
    let Some(w) = writer else { return };
    if let Err(e) = w.write(now_nanos(), stream, line) {
        if !*failed {
            tracing::warn!(container = %id, error = %e, "cannot write the log; dropping output");
            *failed = true;
        }
    }
}

/// Copies PID 1's stdout and stderr into the log until PID 1 has exited
/// and the pipes are closed, or DRAIN_AFTER_EXIT after it exited.
pub fn pump(dir: &Path, config: &Config, pipes: [OwnedFd; 2], pidfd: &OwnedFd) {
    let writer = logs::Writer::open(dir, config.log)
        .map_err(|e| tracing::warn!(container = %config.id, error = %e, "cannot open the log"))
        .ok();
    let mut log = Log {
        id: &config.id,
        writer,
        splitters: Default::default(),
        failed: false,
    };
    let mut open: [Option<OwnedFd>; 2] = pipes.map(Some);
    let mut exited_at: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let timeout = match exited_at {
            None => None,
            Some(_) if open.iter().all(Option::is_none) => break,
            Some(t) => match DRAIN_AFTER_EXIT.saturating_sub(t.elapsed()) {
                left if left.is_zero() => break,
                left => Some(left + Duration::from_millis(1)),
            },
        };
        let which: Vec<usize> = (0..2).filter(|i| open[*i].is_some()).collect();
        let mut fds: Vec<_> = which
            .iter()
            .filter_map(|i| open[*i].as_ref().map(|f| f.as_fd()))
            .collect();
        if exited_at.is_none() {
            fds.push(pidfd.as_fd());
        }
        let Ok(ready) = linux::poll_readable(&fds, timeout) else {
            break;
        };
        if ready.get(which.len()).copied().unwrap_or(false) {
            exited_at = Some(Instant::now());
        }
        for (&i, _) in which.iter().zip(&ready).filter(|(_, r)| **r) {
            let Some(fd) = &open[i] else { continue };
            let got = match nix::unistd::read(fd, &mut buf) {
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
                Ok(0) | Err(_) => 0,
                Ok(n) => n,
            };
            log.push(i, &buf[..got]);
            if got == 0 {
                open[i] = None;
            }
        }
        log.flush();
    }
    for i in 0..2 {
        log.push(i, &[]);
    }
    log.flush();
}
