//! Attach: a connection to the attach socket its monitor serves while a
//! container runs (monitor/wire.rs has the frames). With `start`, the
//! connection is made once the start is recorded and before the monitor
//! goes on to read PID 1's output, so the attacher has it from the first
//! byte, as `docker start -a`.

use super::container::{Container, IfUnsaved, Note};
use super::error::{failed, Error, Result};
use super::{Runtime, Status};
use crate::monitor::wire;
use berth::pb::Action;
use std::path::Path;
use std::sync::Arc;

/// An attacher's connection, and how the container was made.
pub struct Attached {
    pub socket: tokio::net::UnixStream,
    /// The container's full id.
    pub id: String,
    pub tty: bool,
    pub stdin_open: bool,
}

impl Runtime {
    pub async fn attach(self: &Arc<Self>, key: &str, start: bool) -> Result<Attached> {
        let c = self.find(key)?;
        let mut connected = None;
        if start {
            self.start_then(key, |c| {
                connected = Some(connect(c)?);
                Ok(())
            })
            .await?;
        }
        let _op = c.op.lock().await;
        let socket = match connected {
            Some(socket) => socket,
            None => {
                let status = c.state().record.status;
                match status {
                    Status::Running | Status::Paused => connect(&c)?,
                    _ => {
                        return Err(Error::FailedPrecondition(format!(
                            "container {} is not running: start it, or attach with start",
                            c.name()
                        )))
                    }
                }
            }
        };
        let socket = std_to_tokio(socket).map_err(|e| failed("attach", e))?;
        self.journal(&c, Note::new(Action::Attach))?;
        tracing::info!(container = %c.id, "attached");
        let spec = c.spec();
        Ok(Attached {
            socket,
            tty: spec.tty.is_some(),
            stdin_open: spec.stdin_open,
            id: c.id.clone(),
        })
    }

    /// Resolves once the daemon begins to shut down: attached streams end
    /// then, and the containers run on.
    pub fn shutting_down(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.clone();
        async move { crate::shutdown::shutting_down(&mut rx).await }
    }

    /// An attacher of container `id` read its detach keys: a detach event.
    pub fn detached(&self, id: &str) {
        let Ok(c) = self.find(id) else { return };
        if let Err(e) = self.journal(&c, Note::new(Action::Detach)) {
            tracing::warn!(container = %c.id, error = %e, "cannot journal the detach");
        }
    }

    fn journal(&self, c: &Container, note: Note) -> Result<()> {
        c.transition(&mut c.state(), &self.bus, IfUnsaved::Keep, |_| vec![note])
    }
}

impl Runtime {
    /// Has the monitor of running container `key` reopen its CRI log (the
    /// kubelet renamed it): output read after this returns goes to a new
    /// file at its path.
    pub async fn reopen_log(&self, key: &str) -> Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let c = self.find(key)?;
        if c.spec().cri_log.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "container {} has no CRI log",
                c.name()
            )));
        }
        if !c.state().record.status.is_running() {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                c.name()
            )));
        }
        let mut sock = std_to_tokio(connect(&c)?)
            .map_err(|e| failed(format!("reopen the log of {}", c.name()), e))?;
        let asked = async {
            let mut frame = Vec::new();
            wire::frame(wire::REOPEN_LOG, &[], &mut frame);
            sock.write_all(&frame).await?;
            let (mut frames, mut buf) = (wire::Frames::default(), vec![0u8; 64 << 10]);
            loop {
                while let Some((kind, _)) = frames
                    .next()
                    .map_err(|_| std::io::Error::other("a frame from the monitor is too long"))?
                {
                    if kind == wire::LOG_REOPENED {
                        return Ok(());
                    }
                }
                match sock.read(&mut buf).await? {
                    0 => return Err(std::io::Error::other("the container exited")),
                    n => frames.push(&buf[..n]),
                }
            }
        };
        match tokio::time::timeout(std::time::Duration::from_secs(10), asked).await {
            Ok(r) => r.map_err(|e| failed(format!("reopen the log of {}", c.name()), e)),
            Err(_) => Err(Error::Internal(format!(
                "the monitor of {} did not reopen its log within 10 s",
                c.name()
            ))),
        }
    }
}

/// Connects to the monitor of `c`; refused or missing: it is not running
/// (any more).
fn connect(c: &Container) -> Result<std::os::unix::net::UnixStream> {
    match connect_in(&c.dir) {
        Ok(s) => Ok(s),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNREFUSED | libc::ENOENT)) => Err(
            Error::FailedPrecondition(format!("container {} is not running", c.name())),
        ),
        Err(e) => Err(failed(format!("attach to container {}", c.name()), e)),
    }
}

fn connect_in(dir: &Path) -> std::io::Result<std::os::unix::net::UnixStream> {
    use std::os::unix::fs::OpenOptionsExt;
    let fd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)?;
    std::os::unix::net::UnixStream::connect(wire::socket_path(&fd))
}

fn std_to_tokio(s: std::os::unix::net::UnixStream) -> std::io::Result<tokio::net::UnixStream> {
    s.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(s)
}

/// What an attacher reads, in order: PID 1's output, then its end, or
/// the cut of a connection the monitor closed.
#[derive(Debug, PartialEq, Eq)]
pub enum AttachOutput {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// PID 1 ended: (exit code, signal).
    Exit(i32, i32),
    /// The monitor closed the connection without an end: this attacher
    /// took no output for a second while 4 MiB behind, or the monitor is
    /// gone.
    Cut,
    /// The monitor sent what is not a frame.
    Broken,
}

/// The half of an attach that reads the container's output.
pub struct AttachReader {
    rd: tokio::net::unix::OwnedReadHalf,
    frames: wire::Frames,
    buf: Vec<u8>,
}

/// The half that writes to the container: stdin, its close, resizes.
pub struct AttachWriter(tokio::net::unix::OwnedWriteHalf);

impl Attached {
    pub fn split(self) -> (AttachReader, AttachWriter) {
        let (rd, wr) = self.socket.into_split();
        let reader = AttachReader {
            rd,
            frames: wire::Frames::default(),
            buf: vec![0u8; 64 << 10],
        };
        (reader, AttachWriter(wr))
    }
}

impl AttachReader {
    /// The next output; after Exit, Cut or Broken there is no more.
    pub async fn next(&mut self) -> AttachOutput {
        use tokio::io::AsyncReadExt;
        loop {
            match self.frames.next() {
                Ok(Some((wire::STDOUT, data))) => return AttachOutput::Stdout(data),
                Ok(Some((wire::STDERR, data))) => return AttachOutput::Stderr(data),
                Ok(Some((wire::END, data))) => {
                    return match wire::parse_exit(&data) {
                        Some((code, signal)) => AttachOutput::Exit(code, signal),
                        None => AttachOutput::Broken,
                    }
                }
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(wire::TooLong) => return AttachOutput::Broken,
            }
            match self.rd.read(&mut self.buf).await {
                Ok(0) | Err(_) => return AttachOutput::Cut,
                Ok(n) => self.frames.push(&self.buf[..n]),
            }
        }
    }
}

impl AttachWriter {
    async fn send(&mut self, kind: u8, data: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let mut buf = Vec::with_capacity(data.len() + 5);
        for chunk in data.chunks(wire::MAX_FRAME) {
            wire::frame(kind, chunk, &mut buf);
        }
        if data.is_empty() {
            wire::frame(kind, data, &mut buf);
        }
        let _ = self.0.write_all(&buf).await;
    }

    pub async fn stdin(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.send(wire::STDIN, data).await
        }
    }

    /// The attacher's input ended: PID 1's stdin is closed if the
    /// container was made with stdin_once.
    pub async fn close_stdin(&mut self) {
        self.send(wire::CLOSE_STDIN, b"").await
    }

    pub async fn resize(&mut self, rows: u16, cols: u16) {
        self.send(wire::RESIZE, &wire::size(rows, cols)).await
    }
}
