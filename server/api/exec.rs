//! Exec and ExecSync: a process's stdin, stdout and stderr over gRPC.
//! Output is read in chunks as it comes and sent in order per stream; the
//! exit is the last message, after all output. A client that goes away
//! ends the process, unless it was detached.

use super::attach::Detacher;
use super::convert::terminal_size;
use crate::runtime::{ExecProcess, Running, Runtime};
use crate::spec::parse_signal;
use berth::pb::{self, exec_request::Input, exec_response::Output};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Status, Streaming};

pub type ExecStream = Pin<Box<dyn Stream<Item = Result<pb::ExecResponse, Status>> + Send>>;

const CHUNK: usize = 32 << 10;

fn process(p: Option<pb::ExecProcess>) -> Result<ExecProcess, Status> {
    let p = p.ok_or_else(|| Status::invalid_argument("exec needs a process"))?;
    Ok(ExecProcess {
        args: p.args,
        env: p.env,
        working_dir: p.working_dir,
        user: p.user,
        privileged: p.privileged,
        stdin: p.stdin,
        detach: p.detach,
        tty: p.tty.then(|| terminal_size(p.size.unwrap_or_default())),
        timeout: None,
    })
}

async fn start(
    rt: &Arc<Runtime>,
    ops: &tokio::runtime::Handle,
    id: String,
    p: ExecProcess,
) -> Result<Running, Status> {
    let rt = rt.clone();
    ops.spawn(async move { rt.exec(&id, p).await })
        .await
        .map_err(|e| Status::internal(format!("exec failed: {e}")))?
        .map_err(Status::from)
}

fn out(o: Output) -> Result<pb::ExecResponse, Status> {
    Ok(pb::ExecResponse { output: Some(o) })
}

/// Sends what `r` produces as `wrap`ped messages until its end. Once no
/// one reads them (the client detached, or went away and the process is
/// being killed), the output is read and dropped: the process never
/// blocks on it, and a terminal's master stays open.
async fn pump<R: AsyncRead + Unpin>(
    mut r: R,
    tx: mpsc::Sender<Result<pb::ExecResponse, Status>>,
    wrap: fn(Vec<u8>) -> Output,
) {
    let mut buf = vec![0u8; CHUNK];
    let mut reading = true;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) if reading => {
                reading = tx.send(out(wrap(buf[..n].to_vec()))).await.is_ok();
            }
            Ok(_) => {}
        }
    }
}

pub async fn exec(
    rt: &Arc<Runtime>,
    ops: &tokio::runtime::Handle,
    mut input: Streaming<pb::ExecRequest>,
) -> Result<ExecStream, Status> {
    let first = input
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("exec needs a start message"))?;
    let Some(Input::Start(s)) = first.input else {
        return Err(Status::invalid_argument(
            "the first exec message must be start",
        ));
    };
    let keys = super::attach::detach_keys(s.process.as_ref().map_or("", |p| &p.detach_keys))?;
    let p = process(s.process)?;
    let detach = p.detach;
    // As Docker's: the keys are looked for on a terminal only.
    let mut detacher = Detacher::new(match p.tty.is_some() && p.stdin {
        true => keys,
        false => Vec::new(),
    });
    let mut running = start(rt, ops, s.id, p).await?;
    let (tx, rx) = mpsc::channel(64);
    let _ = tx.send(out(Output::ExecId(running.id.clone()))).await;
    if detach {
        return Ok(Box::pin(ReceiverStream::new(rx)));
    }
    let signal = running.signal.clone();
    // Stdin: the client's bytes, a close, signals, resizes. A broken
    // client stream ends the process.
    let io = running.io();
    let (mut stdin, output, resizer) = (io.input, io.stdout, io.resizer);
    let input_signal = signal.clone();
    let (detached_tx, detached) = oneshot::channel();
    let detached_note = {
        let rt = rt.clone();
        let (id, container, command) = (
            running.id.clone(),
            running.container.clone(),
            running.command.clone(),
        );
        move || rt.exec_detached(&id, &container, &command)
    };
    let feeding = tokio::spawn(async move {
        loop {
            let msg = match input.message().await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(_) => {
                    input_signal.send(libc::SIGKILL);
                    break;
                }
            };
            match msg.input {
                Some(Input::Stdin(data)) => {
                    let (data, detach) = detacher.feed(&data);
                    if let Some(w) = stdin.as_mut() {
                        if w.write_all(&data).await.and(w.flush().await).is_err() {
                            stdin = None;
                        }
                    }
                    if detach {
                        detached_note();
                        let _ = detached_tx.send(());
                        return;
                    }
                }
                Some(Input::CloseStdin(_)) => stdin = None,
                Some(Input::Signal(s)) => {
                    if let Ok(n) = parse_signal(&s) {
                        input_signal.send(n);
                    }
                }
                Some(Input::Resize(s)) => {
                    if let Some(fd) = &resizer {
                        crate::sys::pty::resize(fd, terminal_size(s));
                    }
                }
                Some(Input::Start(_)) | None => {}
            }
        }
    });
    let outputs = [
        output.map(|r| tokio::spawn(pump(r, tx.clone(), Output::Stdout))),
        io.stderr
            .map(|r| tokio::spawn(pump(r, tx.clone(), Output::Stderr))),
    ];
    tokio::spawn(async move {
        for o in outputs.into_iter().flatten() {
            let _ = o.await;
        }
        let exit = running.exit.await;
        feeding.abort();
        if let Ok((exit_code, signal)) = exit {
            let _ = tx
                .send(out(Output::Exit(pb::ExecExit { exit_code, signal })))
                .await;
        }
    });
    // The client gone: its stream dropped; the process goes with it.
    let watched = ReceiverStream::new(rx);
    Ok(Box::pin(GuardedStream {
        inner: watched,
        signal: Some(signal),
        shutdown: Some(Box::pin(rt.shutting_down())),
        detached: Some(detached),
    }))
}

/// The response stream; dropped before the exit was sent, it kills the
/// process (the client went away). It ends UNAVAILABLE when the daemon
/// shuts down, which then kills the process too: no one could reach it.
/// After the detach keys it ends with `detached`, the process running on.
struct GuardedStream {
    inner: ReceiverStream<Result<pb::ExecResponse, Status>>,
    signal: Option<crate::runtime::Signaller>,
    shutdown: Option<Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
    detached: Option<oneshot::Receiver<()>>,
}

impl Stream for GuardedStream {
    type Item = Result<pb::ExecResponse, Status>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let Some(shutdown) = self.shutdown.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        if shutdown.as_mut().poll(cx).is_ready() {
            self.shutdown = None;
            let closing = Status::unavailable("berthd is shutting down; the exec was ended");
            return std::task::Poll::Ready(Some(Err(closing)));
        }
        if let Some(detached) = self.detached.as_mut() {
            if let std::task::Poll::Ready(r) = std::future::Future::poll(Pin::new(detached), cx) {
                self.detached = None;
                if r.is_ok() {
                    // The last message; the process runs on.
                    (self.signal, self.shutdown) = (None, None);
                    return std::task::Poll::Ready(Some(out(Output::Detached(true))));
                }
            }
        }
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let std::task::Poll::Ready(None) = polled {
            self.signal = None; // ended: the exit was sent
        }
        polled
    }
}

impl Drop for GuardedStream {
    fn drop(&mut self) {
        if let Some(s) = self.signal.take() {
            s.send(libc::SIGKILL);
        }
    }
}

pub async fn exec_sync(
    rt: &Arc<Runtime>,
    ops: &tokio::runtime::Handle,
    r: pb::ExecSyncRequest,
) -> Result<pb::ExecSyncResponse, Status> {
    let p = process(r.process)?;
    let timeout = (r.timeout_seconds > 0).then(|| Duration::from_secs(r.timeout_seconds.into()));
    let rt = rt.clone();
    let out = ops
        .spawn(async move { rt.exec_sync(&r.id, p, timeout).await })
        .await
        .map_err(|e| Status::internal(format!("exec failed: {e}")))??;
    Ok(pb::ExecSyncResponse {
        stdout: out.stdout,
        stderr: out.stderr,
        exit_code: out.exit_code,
        signal: out.signal,
        timed_out: out.timed_out,
        truncated: out.truncated,
    })
}
