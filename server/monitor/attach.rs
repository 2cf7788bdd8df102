//! Attachers: berthd's Attach calls, connected to `DIR/attach.sock`
//! (wire.rs). Each is sent PID 1's output as the monitor reads it; their
//! STDIN frames go to PID 1's stdin (a pipe, or its terminal).
//!
//! Output a socket will not take yet is kept for it. An attacher more than
//! BEHIND behind holds PID 1's output back (the monitor stops reading it,
//! as a terminal holds back a program that writes faster than it shows)
//! for as long as it keeps taking bytes; one that takes nothing for STALL
//! is cut off, and the output flows again. Stdin is read from attachers
//! only once what was read before has been written, so a process that
//! does not read its stdin holds up its writers and nothing else.

use super::wire::{self, Frames};
use crate::sys::pty;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Output kept for one attacher past which PID 1's output waits for it.
const BEHIND: usize = 4 << 20;
/// How long an attacher BEHIND may take nothing before it is cut off.
pub const STALL: Duration = Duration::from_secs(1);
/// How long the last output and END may take to leave, for all attachers.
const FAREWELL: Duration = Duration::from_secs(2);

/// Listens at `DIR/attach.sock` (replacing a socket left by an earlier
/// run), before PID 1 exists: berthd may connect as soon as it starts.
pub fn listen(dir: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::OpenOptionsExt;
    let fd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)?;
    match std::fs::remove_file(dir.join(wire::SOCKET)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // Root's alone whatever the umask berthd was given: whoever connects
    // reads the container's output and writes its stdin. The monitor is
    // single-threaded, so the umask changes for this bind only.
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(wire::socket_path(&fd));
    nix::sys::stat::umask(umask);
    let listener = bound?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

struct Client {
    sock: UnixStream,
    /// Output not yet taken by the socket.
    out: Vec<u8>,
    frames: Frames,
    /// It sends no more; frames it sent may still wait in `frames`, and
    /// it is still sent output.
    closed: bool,
    /// It cannot be sent more: gone, or cut off.
    gone: bool,
    /// When it last took output, or was not BEHIND.
    progress: Instant,
    /// It asked for the CRI log to be reopened, and waits for the answer.
    reopen: bool,
}

pub struct Attachers {
    id: String,
    socket: PathBuf,
    listener: UnixListener,
    clients: Vec<Client>,
    /// PID 1's stdin (non-blocking); None without stdin_open, or closed.
    stdin: Option<OwnedFd>,
    /// Read from an attacher, not yet written to stdin.
    pending: Vec<u8>,
    /// Close stdin once `pending` is written (stdin_once).
    close_pending: bool,
    stdin_once: bool,
    /// The terminal's master, to resize.
    terminal: Option<OwnedFd>,
}

/// What each polled fd of `interest` is, in order.
#[derive(Clone, Copy)]
enum Slot {
    Listener,
    Stdin,
    Client(usize),
}

impl Attachers {
    pub fn new(
        id: &str,
        dir: &Path,
        listener: UnixListener,
        stdin: Option<OwnedFd>,
        stdin_once: bool,
        terminal: Option<OwnedFd>,
    ) -> Attachers {
        if let Some(fd) = &stdin {
            let _ = rustix::io::ioctl_fionbio(fd, true);
        }
        Attachers {
            id: id.to_string(),
            socket: dir.join(wire::SOCKET),
            listener,
            clients: Vec::new(),
            stdin,
            pending: Vec::new(),
            close_pending: false,
            stdin_once,
            terminal,
        }
    }

    fn slots(&self) -> Vec<Slot> {
        let mut slots = vec![Slot::Listener];
        if !self.pending.is_empty() {
            slots.push(Slot::Stdin);
        }
        slots.extend((0..self.clients.len()).map(Slot::Client));
        slots
    }

    /// The fds to poll and for what, in the order `ready` takes them.
    pub fn interest(&self) -> Vec<(BorrowedFd<'_>, i16)> {
        let reading = self.pending.is_empty();
        self.slots()
            .into_iter()
            .map(|slot| match slot {
                Slot::Listener => (self.listener.as_fd(), libc::POLLIN),
                Slot::Stdin => match &self.stdin {
                    Some(fd) => (fd.as_fd(), libc::POLLOUT),
                    None => (self.listener.as_fd(), 0),
                },
                Slot::Client(i) => {
                    let c = &self.clients[i];
                    let mut events = 0;
                    if reading && !c.closed {
                        events |= libc::POLLIN;
                    }
                    if !c.out.is_empty() && !c.gone {
                        events |= libc::POLLOUT;
                    }
                    // A client that sends no more and has nothing to be
                    // sent is not polled: its hang-up would wake the loop
                    // for nothing.
                    match events == 0 && c.closed {
                        true => (self.listener.as_fd(), 0),
                        false => (c.sock.as_fd(), events),
                    }
                }
            })
            .collect()
    }

    /// Acts on what poll returned for `interest`.
    pub fn ready(&mut self, revents: &[i16]) {
        for (slot, ev) in self.slots().into_iter().zip(revents) {
            match slot {
                Slot::Listener if *ev != 0 => self.accept(),
                Slot::Stdin if *ev != 0 => self.write_stdin(),
                Slot::Client(i) if *ev & libc::POLLOUT != 0 => flush(&mut self.clients[i]),
                _ => {}
            }
            if let Slot::Client(i) = slot {
                if *ev & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                    self.read_client(i);
                }
            }
        }
        self.take_frames();
        self.clients.retain(Client::alive);
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    if sock.set_nonblocking(true).is_ok() {
                        tracing::info!(container = %self.id, "attached");
                        self.clients.push(Client {
                            sock,
                            out: Vec::new(),
                            frames: Frames::default(),
                            closed: false,
                            gone: false,
                            progress: Instant::now(),
                            reopen: false,
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn read_client(&mut self, i: usize) {
        let c = &mut self.clients[i];
        let mut buf = [0u8; 64 << 10];
        match c.sock.read(&mut buf) {
            Ok(0) => c.closed = true,
            Ok(n) => c.frames.push(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => (c.closed, c.gone) = (true, true),
        }
    }

    /// Acts on the frames attachers sent, as long as stdin takes them.
    fn take_frames(&mut self) {
        for i in 0..self.clients.len() {
            while self.pending.is_empty() {
                let frame = match self.clients[i].frames.next() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(wire::TooLong) => {
                        let c = &mut self.clients[i];
                        (c.closed, c.gone, c.frames) = (true, true, Frames::default());
                        let _ = c.sock.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                };
                match frame.0 {
                    wire::REOPEN_LOG => self.clients[i].reopen = true,
                    _ => self.frame(frame),
                }
            }
            let c = &mut self.clients[i];
            if c.closed && self.pending.is_empty() {
                // What is left of a client gone is no whole frame.
                c.frames = Frames::default();
            }
        }
    }

    fn frame(&mut self, (kind, data): (u8, Vec<u8>)) {
        match kind {
            wire::STDIN if self.stdin.is_some() => {
                self.pending = data;
                self.write_stdin();
            }
            wire::CLOSE_STDIN if self.stdin_once => {
                self.close_pending = true;
                self.write_stdin();
            }
            wire::RESIZE => {
                if let (Some(t), Some(size)) = (&self.terminal, wire::parse_size(&data)) {
                    pty::resize(t, size);
                }
            }
            _ => {}
        }
    }

    /// Writes what it can of `pending`; closes stdin if asked and done.
    fn write_stdin(&mut self) {
        let Some(fd) = &self.stdin else {
            self.pending.clear();
            return;
        };
        while !self.pending.is_empty() {
            match rustix::io::write(fd, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => return,
                // The process closed its stdin: what is written is lost,
                // as it would be to a pipe's reader that went away.
                Err(_) => {
                    self.pending.clear();
                    self.stdin = None;
                    return;
                }
            }
        }
        if self.close_pending {
            self.stdin = None;
        }
    }

    /// Whether an attacher asked for the CRI log to be reopened.
    pub fn reopen_asked(&self) -> bool {
        self.clients.iter().any(|c| c.reopen)
    }

    /// Tells those who asked that the CRI log was reopened: output read
    /// from now on goes to the new file.
    pub fn reopened(&mut self) {
        for c in self.clients.iter_mut().filter(|c| c.reopen) {
            c.reopen = false;
            wire::frame(wire::LOG_REOPENED, &[], &mut c.out);
            flush(c);
        }
        self.clients.retain(Client::alive);
    }

    /// Output of PID 1 (`stream`: wire::STDOUT or STDERR) for every
    /// attacher.
    pub fn output(&mut self, stream: u8, data: &[u8]) {
        for c in self.clients.iter_mut().filter(|c| !c.gone) {
            if c.out.len() < BEHIND {
                c.progress = Instant::now();
            }
            wire::frame(stream, data, &mut c.out);
            flush(c);
        }
        self.clients.retain(Client::alive);
    }

    /// Whether an attacher is BEHIND: PID 1's output waits. Cuts off
    /// those that took nothing for STALL first.
    pub fn congested(&mut self) -> bool {
        let id = &self.id;
        let mut congested = false;
        for c in self
            .clients
            .iter_mut()
            .filter(|c| !c.gone && c.out.len() >= BEHIND)
        {
            if c.progress.elapsed() < STALL {
                congested = true;
                continue;
            }
            tracing::warn!(container = %id, behind = c.out.len(), "an attacher takes no output; cutting it off");
            c.out.clear();
            (c.closed, c.gone) = (true, true);
            let _ = c.sock.shutdown(std::net::Shutdown::Both);
        }
        self.clients.retain(Client::alive);
        congested
    }

    /// PID 1 ended so (`exit_code`, `signal`) and its output with it:
    /// END with them for every attacher (one that connected just now
    /// too), after what is left to send; then the socket goes.
    pub fn end(mut self, exit_code: i32, signal: i32) {
        let _ = std::fs::remove_file(&self.socket);
        self.accept();
        drop(self.listener);
        let deadline = Instant::now() + FAREWELL;
        let end = wire::exit(exit_code, signal);
        for mut c in self.clients.into_iter().filter(|c| !c.gone) {
            wire::frame(wire::END, &end, &mut c.out);
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = c.sock.set_nonblocking(false);
            let _ = c
                .sock
                .set_write_timeout(Some(left.max(Duration::from_millis(1))));
            let _ = c.sock.write_all(&c.out);
        }
    }
}

impl Client {
    /// Whether to keep it: it may still be sent output, or has frames to
    /// act on.
    fn alive(&self) -> bool {
        !self.gone || self.frames.partial()
    }
}

/// Sends what the socket takes now of the client's output.
fn flush(c: &mut Client) {
    while !c.out.is_empty() {
        match c.sock.write(&c.out) {
            Ok(n) => {
                c.out.drain(..n);
                c.progress = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => {
                c.out.clear();
                (c.closed, c.gone) = (true, true);
                return;
            }
        }
    }
}
