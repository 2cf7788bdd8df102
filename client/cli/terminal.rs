//! This CLI's side of an interactive process (exec -it, run -it,
//! attach): its stdin read on a thread and passed on, its terminal in raw
//! mode while the process has one, and the terminal's size followed.

use berth::pb;
use std::io::Read;
use tokio::sync::mpsc;

const CHUNK: usize = 64 << 10;

/// Reads stdin on a thread until its end, passing each piece through
/// `data`, then `end`. Stops early once the receiver is gone.
pub fn pump_stdin<T: Send + 'static>(tx: mpsc::Sender<T>, data: fn(Vec<u8>) -> T, end: fn() -> T) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; CHUNK];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(data(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.blocking_send(end());
    });
}

/// Sends `resize(size)` each time this CLI's terminal changes size.
pub fn follow_size<T: Send + 'static>(tx: mpsc::Sender<T>, resize: fn(pb::TerminalSize) -> T) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut winch) = signal(SignalKind::window_change()) else {
        return;
    };
    tokio::spawn(async move {
        while winch.recv().await.is_some() {
            if let Some(size) = size() {
                if tx.send(resize(size)).await.is_err() {
                    return;
                }
            }
        }
    });
}

/// This CLI's terminal size (its stdout's), if it has one.
pub fn size() -> Option<pb::TerminalSize> {
    let ws = rustix::termios::tcgetwinsize(rustix::stdio::stdout()).ok()?;
    Some(pb::TerminalSize {
        rows: ws.ws_row.into(),
        cols: ws.ws_col.into(),
    })
}

/// stdin's terminal in raw mode while this lives; put back as it was on
/// drop (at the end, on an error, and on a panic).
pub struct RawMode(rustix::termios::Termios);

impl RawMode {
    pub fn enter() -> Option<RawMode> {
        use rustix::termios::{tcgetattr, tcsetattr, OptionalActions};
        let stdin = rustix::stdio::stdin();
        let saved = tcgetattr(stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(stdin, OptionalActions::Now, &raw).ok()?;
        Some(RawMode(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = rustix::stdio::stdin();
        let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &self.0);
    }
}
