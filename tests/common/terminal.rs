//! A real terminal for the CLI: a pty whose far side is the CLI's stdin,
//! stdout, stderr and controlling terminal, as a user's shell has; the
//! test types on its near side and reads what it shows.

use super::*;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;

pub struct Terminal {
    pty: OwnedFd,
    far: String,
    /// The far side held open, so that the near side reads on between
    /// two CLIs instead of ending.
    _held: std::fs::File,
    shown: String,
    rx: mpsc::Receiver<Vec<u8>>,
    writer: std::fs::File,
}

fn winsize(rows: u16, cols: u16) -> rustix::termios::Winsize {
    rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Terminal {
    /// A new terminal of 24x80.
    pub fn new() -> Terminal {
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        let pty = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&pty).unwrap();
        unlockpt(&pty).unwrap();
        let far = ptsname(&pty, Vec::new()).unwrap();
        rustix::termios::tcsetwinsize(&pty, winsize(24, 80)).unwrap();
        // What the terminal shows, read by a thread.
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let mut reader = std::fs::File::from(pty.as_fd().try_clone_to_owned().unwrap());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        let writer = std::fs::File::from(pty.as_fd().try_clone_to_owned().unwrap());
        let far = far.to_string_lossy().into_owned();
        let held = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(&far)
                .unwrap()
        };
        Terminal {
            pty,
            _held: held,
            far,
            shown: String::new(),
            rx,
            writer,
        }
    }

    /// Runs the CLI with `args` in this terminal.
    pub fn run(&self, d: &Daemon, args: &[&str]) -> Child {
        let open_far = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&self.far)
                .unwrap()
        };
        let mut cmd = Command::new(berth_cli());
        cmd.args(["--host", &d.host()])
            .args(args)
            .stdin(open_far())
            .stdout(open_far())
            .stderr(open_far());
        in_terminal(&mut cmd);
        cmd.spawn().unwrap()
    }

    /// Waits until the terminal has shown `want` since the last `clear`.
    pub fn until(&mut self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.shown.contains(want) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.shown.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => panic!("{want:?} never shown; the terminal shows {:?}", self.shown),
            }
        }
    }

    /// Forgets what was shown.
    pub fn clear(&mut self) {
        while let Ok(b) = self.rx.try_recv() {
            self.shown.push_str(&String::from_utf8_lossy(&b));
        }
        self.shown.clear();
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn type_in(&mut self, keys: &[u8]) {
        self.writer.write_all(keys).unwrap();
    }

    /// Resizes the terminal (the CLI gets SIGWINCH) and types `stty size`
    /// until the container's terminal says the new size.
    pub fn resize_and_check(&mut self, rows: u16, cols: u16) {
        rustix::termios::tcsetwinsize(&self.pty, winsize(rows, cols)).unwrap();
        let want = format!("{rows} {cols}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.clear();
            self.type_in(b"stty size\r");
            std::thread::sleep(Duration::from_millis(200));
            while let Ok(b) = self.rx.try_recv() {
                self.shown.push_str(&String::from_utf8_lossy(&b));
            }
            if self.shown.contains(&want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the new size never arrived: {:?}",
                self.shown
            );
        }
    }

    /// The terminal's modes: (local, input).
    pub fn modes(&self) -> (rustix::termios::LocalModes, rustix::termios::InputModes) {
        let t = rustix::termios::tcgetattr(&self.pty).unwrap();
        (t.local_modes, t.input_modes)
    }
}
