//! The container's output: PID 1's stdout and stderr (or its terminal)
//! into its log and to its attachers.

use super::attach::Attachers;
use super::protocol::Config;
use super::wire;
use crate::logs;
use crate::sys::{fds, time::now_nanos};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long output is still read after PID 1 exited, in case something
/// outside the container holds the pipes open.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);
/// How often a held-back output looks again at the attachers behind.
const CONGESTED_POLL: Duration = Duration::from_millis(100);

/// Lines into the log; a write error drops output rather than blocking
/// the container.
struct Log<'a> {
    id: &'a str,
    writer: Option<logs::Writer>,
    /// The CRI's copy, if it has one.
    cri: Option<logs::CriLog>,
    splitters: [logs::Splitter; 2],
    failed: bool,
}

const STREAMS: [u8; 2] = [logs::STDOUT, logs::STDERR];
const WIRE: [u8; 2] = [wire::STDOUT, wire::STDERR];

impl Log<'_> {
    fn push(&mut self, i: usize, data: &[u8]) {
        let (writer, cri, failed, id) =
            (&mut self.writer, &mut self.cri, &mut self.failed, self.id);
        let last = data.is_empty();
        let mut write = |line: &[u8]| {
            let time = now_nanos();
            record(writer, failed, id, time, STREAMS[i], line);
            if let Some(c) = cri {
                if let Err(e) = c.write(time, STREAMS[i], line, last) {
                    tracing::warn!(container = %id, error = %e, "cannot write the CRI log; dropping it");
                    *cri = None;
                }
            }
        };
        match last {
            true => self.splitters[i].finish(&mut write),
            false => self.splitters[i].push(data, &mut write),
        }
    }

    fn flush(&mut self) {
        if let Some(w) = &mut self.writer {
            let _ = w.flush();
        }
        if let Some(c) = &mut self.cri {
            let _ = c.flush();
        }
    }

    /// The CRI log opened again at its path (the kubelet renamed it).
    fn reopen(&mut self) {
        if let Some(c) = &mut self.cri {
            if let Err(e) = c.reopen() {
                tracing::warn!(container = %self.id, error = %e, "cannot reopen the CRI log; dropping it");
                self.cri = None;
            }
        }
    }
}

fn record(
    writer: &mut Option<logs::Writer>,
    failed: &mut bool,
    id: &str,
    time: i64,
    stream: u8,
    line: &[u8],
) {
    let Some(w) = writer else { return };
    if let Err(e) = w.write(time, stream, line) {
        if !*failed {
            tracing::warn!(container = %id, error = %e, "cannot write the log; dropping output");
            *failed = true;
        }
    }
}

/// One of PID 1's outputs: a pipe, or its terminal (logged as stdout).
pub struct Source {
    pub fd: OwnedFd,
    /// 0: stdout, 1: stderr.
    pub stream: usize,
}

/// The CRI log, if the container has one: opened (made) before the start
/// is reported, so that it is there once the start returns.
pub fn cri_log(config: &Config) -> Option<logs::CriLog> {
    if config.spec.cri_log.is_empty() {
        return None;
    }
    logs::CriLog::open(Path::new(&config.spec.cri_log))
        .map_err(|e| tracing::warn!(container = %config.id, error = %e, "cannot open the CRI log"))
        .ok()
}

/// Copies PID 1's output into the log and to the attachers until PID 1
/// has exited and its outputs are closed, or DRAIN_AFTER_EXIT after it
/// exited; returns the attachers, to be told how PID 1 ended.
pub fn pump(
    dir: &Path,
    config: &Config,
    sources: Vec<Source>,
    pidfd: &OwnedFd,
    mut attach: Attachers,
    cri: Option<logs::CriLog>,
) -> Attachers {
    let writer = logs::Writer::open(dir, config.log)
        .map_err(|e| tracing::warn!(container = %config.id, error = %e, "cannot open the log"))
        .ok();
    let mut log = Log {
        id: &config.id,
        writer,
        cri,
        splitters: Default::default(),
        failed: false,
    };
    let mut open: Vec<Option<Source>> = sources.into_iter().map(Some).collect();
    let mut exited_at: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // An attacher behind holds the output back (attach.rs): it is not
        // read, and the drain after exit waits too.
        let congested = attach.congested();
        if let (true, Some(t)) = (congested, exited_at.as_mut()) {
            *t = Instant::now();
        }
        let timeout = match exited_at {
            _ if congested => Some(CONGESTED_POLL),
            None => None,
            Some(_) if open.iter().all(Option::is_none) => break,
            Some(t) => match DRAIN_AFTER_EXIT.saturating_sub(t.elapsed()) {
                left if left.is_zero() => break,
                left => Some(left + Duration::from_millis(1)),
            },
        };
        let which: Vec<usize> = match congested {
            true => Vec::new(),
            false => (0..open.len()).filter(|i| open[*i].is_some()).collect(),
        };
        let revents = {
            let mut interest: Vec<_> = which
                .iter()
                .filter_map(|i| open[*i].as_ref().map(|s| (s.fd.as_fd(), libc::POLLIN)))
                .collect();
            if exited_at.is_none() {
                interest.push((pidfd.as_fd(), libc::POLLIN));
            }
            interest.extend(attach.interest());
            match fds::poll(&interest, timeout) {
                Ok(r) => r,
                Err(_) => break,
            }
        };
        let (outputs, rest) = revents.split_at(which.len());
        let rest = match exited_at {
            None => {
                if rest[0] != 0 {
                    exited_at = Some(Instant::now());
                }
                &rest[1..]
            }
            Some(_) => rest,
        };
        // Attachers first: one that connected before PID 1 started is
        // there for its first byte.
        attach.ready(rest);
        if attach.reopen_asked() {
            log.flush();
            log.reopen();
            attach.reopened();
        }
        for (&i, _) in which.iter().zip(outputs).filter(|(_, r)| **r != 0) {
            let Some(source) = &open[i] else { continue };
            let got = match nix::unistd::read(&source.fd, &mut buf) {
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
                Ok(0) | Err(_) => 0,
                Ok(n) => n,
            };
            let stream = source.stream;
            log.push(stream, &buf[..got]);
            if got == 0 {
                open[i] = None;
            } else {
                attach.output(WIRE[stream], &buf[..got]);
            }
        }
        log.flush();
    }
    for i in 0..2 {
        log.push(i, &[]);
    }
    log.flush();
    attach
}
