//! Attach: PID 1's output as its monitor sends it (monitor/wire.rs), and
//! the client's stdin and resizes to it. The call ends with PID 1's exit,
//! after `detached` (the detach keys, read on a terminal only), or when
//! the client goes; the container runs on in the two last cases.

use super::convert::terminal_size;
use crate::runtime::{AttachOutput, AttachReader, Runtime};
use berth::pb::{self, attach_request::Input, attach_response::Output};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Status, Streaming};

pub type AttachStream = Pin<Box<dyn Stream<Item = Result<pb::AttachResponse, Status>> + Send>>;
type Sender = mpsc::Sender<Result<pb::AttachResponse, Status>>;

/// Docker's default detach keys: ctrl-p, ctrl-q.
const DEFAULT_KEYS: [u8; 2] = [0x10, 0x11];

/// Parses Docker's --detach-keys: "ctrl-p,ctrl-q", each key "ctrl-X"
/// (X one of a-z @ [ \ ] ^ _) or a single character.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("invalid detach keys {s:?}: use keys like \"ctrl-p,ctrl-q\"");
    s.split(',')
        .map(|key| match key.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => match c.as_bytes()[0] {
                b @ b'a'..=b'z' => Ok(b - b'a' + 1),
                b'@' => Ok(0),
                b @ (b'[' | b'\\' | b']' | b'^' | b'_') => Ok(b - b'@'),
                _ => Err(bad()),
            },
            _ if key.len() == 1 && key.is_ascii() => Ok(key.as_bytes()[0]),
            _ => Err(bad()),
        })
        .collect()
}

/// The detach keys a request names (Docker's default if none), or
/// INVALID_ARGUMENT.
pub fn detach_keys(text: &str) -> Result<Vec<u8>, Status> {
    match text {
        "" => Ok(DEFAULT_KEYS.to_vec()),
        k => parse_detach_keys(k).map_err(Status::invalid_argument),
    }
}

/// Finds the detach keys in stdin as it comes, across messages. The bytes
/// of a partial match are held back until the next byte tells.
#[derive(Default)]
pub struct Detacher {
    keys: Vec<u8>,
    held: usize,
}

impl Detacher {
    pub fn new(keys: Vec<u8>) -> Detacher {
        Detacher { keys, held: 0 }
    }

    /// What of `data` goes on to the container, and whether the keys were
    /// read (what follows them is dropped).
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b != self.keys[self.held] {
                out.extend_from_slice(&self.keys[..self.held]);
                self.held = 0;
                if b != self.keys[0] {
                    out.push(b);
                    continue;
                }
            }
            self.held += 1;
            if self.held == self.keys.len() {
                self.held = 0;
                return (out, true);
            }
        }
        (out, false)
    }
}

pub async fn attach(
    rt: &Arc<Runtime>,
    ops: &tokio::runtime::Handle,
    mut input: Streaming<pb::AttachRequest>,
) -> Result<AttachStream, Status> {
    let first = input
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("attach needs a start message"))?;
    let Some(Input::Start(s)) = first.input else {
        return Err(Status::invalid_argument(
            "the first attach message must be start",
        ));
    };
    let keys = detach_keys(&s.detach_keys)?;
    let attached = {
        let (rt, id, start) = (rt.clone(), s.id.clone(), s.start);
        ops.spawn(async move { rt.attach(&id, start).await })
            .await
            .map_err(|e| Status::internal(format!("attach failed: {e}")))?
            .map_err(Status::from)?
    };
    let (stdin, tty, id) = (
        s.stdin && attached.stdin_open,
        attached.tty,
        attached.id.clone(),
    );
    let (rd, mut wr) = attached.split();
    if let (true, Some(size)) = (tty, s.size) {
        let (rows, cols) = terminal_size(size);
        wr.resize(rows, cols).await;
    }
    let (tx, rx) = mpsc::channel(64);
    let (detach_tx, detach_rx) = oneshot::channel();
    let (done_tx, mut done_rx) = oneshot::channel::<()>();
    let shutdown = rt.shutting_down();
    tokio::spawn(async move {
        tokio::select! {
            () = read_output(rd, tx.clone(), detach_rx) => {}
            () = shutdown => {
                let closing = Status::unavailable("berthd is shutting down; the container runs on");
                let _ = tx.send(Err(closing)).await;
            }
        }
        drop(done_tx);
    });
    let rt = rt.clone();
    tokio::spawn(async move {
        // As Docker's: the keys are looked for on a terminal only, so
        // piped bytes pass whatever they hold.
        let mut detacher = Detacher::new(if stdin && tty { keys } else { Vec::new() });
        loop {
            let msg = tokio::select! {
                m = input.message() => m,
                _ = &mut done_rx => return,
            };
            let input = match msg {
                Ok(Some(m)) => m.input,
                // No more input: stdin ends, the output flows on.
                Ok(None) => {
                    if stdin {
                        wr.close_stdin().await;
                    }
                    let _ = done_rx.await;
                    return;
                }
                Err(_) => return,
            };
            match input {
                Some(Input::Stdin(data)) if stdin => {
                    let (data, detach) = detacher.feed(&data);
                    wr.stdin(&data).await;
                    if detach {
                        wr.close_stdin().await;
                        rt.detached(&id);
                        tracing::info!(container = %id, "detached");
                        let _ = detach_tx.send(());
                        return;
                    }
                }
                Some(Input::CloseStdin(true)) if stdin => wr.close_stdin().await,
                Some(Input::Resize(size)) if tty => {
                    let (rows, cols) = terminal_size(size);
                    wr.resize(rows, cols).await
                }
                _ => {}
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// Sends the output on until its end, a detach, or the client's end.
async fn read_output(mut rd: AttachReader, tx: Sender, mut detach: oneshot::Receiver<()>) {
    loop {
        let next = tokio::select! {
            o = rd.next() => o,
            Ok(()) = &mut detach => {
                let detached = Output::Detached(true);
                let _ = tx.send(Ok(pb::AttachResponse { output: Some(detached) })).await;
                return;
            }
        };
        let out = match next {
            AttachOutput::Stdout(data) => Output::Stdout(data),
            AttachOutput::Stderr(data) => Output::Stderr(data),
            AttachOutput::Exit(exit_code, signal) => {
                let exit = Output::Exit(pb::AttachExit { exit_code, signal });
                let _ = tx.send(Ok(pb::AttachResponse { output: Some(exit) })).await;
                return;
            }
            AttachOutput::Broken => {
                let _ = tx
                    .send(Err(Status::internal("attach: a broken frame")))
                    .await;
                return;
            }
            AttachOutput::Cut => {
                let cut = Status::aborted(
                    "attach: cut off by the container's monitor: this attacher took no output \
                     for a second while 4 MiB behind (or the monitor is gone)",
                );
                let _ = tx.send(Err(cut)).await;
                return;
            }
        };
        if tx
            .send(Ok(pb::AttachResponse { output: Some(out) }))
            .await
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_as_docker_writes_them() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q"), Ok(vec![0x10, 0x11]));
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-[,ctrl-_,a"),
            Ok(vec![0, 27, 31, b'a'])
        );
        for bad in ["", "ctrl-", "ctrl-1", "ctrl-pq", "é", "p,,q"] {
            assert!(parse_detach_keys(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn detach_keys_are_found_across_messages_and_partial_matches_pass() {
        let mut d = Detacher::new(DEFAULT_KEYS.to_vec());
        assert_eq!(d.feed(b"ls\r"), (b"ls\r".to_vec(), false));
        // ctrl-p alone is held until the next byte tells.
        assert_eq!(d.feed(&[0x10]), (vec![], false));
        assert_eq!(d.feed(b"x"), (vec![0x10, b'x'], false));
        // ctrl-p ctrl-p ctrl-q: the first goes on, the last two detach.
        assert_eq!(d.feed(&[0x10, 0x10]), (vec![0x10], false));
        assert_eq!(d.feed(&[0x11, b'z']), (vec![], true));
        let mut none = Detacher::new(Vec::new());
        assert_eq!(none.feed(&[0x10, 0x11]), (vec![0x10, 0x11], false));
    }
}
