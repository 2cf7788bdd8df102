//! An exec or attach session, whatever carries it (SPDY streams or
//! WebSocket channels): the client's stdin and terminal sizes come in on
//! channels, the output goes out on one, in order, and the end is what
//! the transport writes on its error stream. Both run berth's own exec
//! and attach.

use crate::runtime::{AttachOutput, ExecProcess, Runtime};
use k8s_cri::v1 as cri;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Output, for the transport's stdout and stderr.
pub enum Out {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// The client's side of a session.
pub struct Session {
    /// Its stdin, if it sends one: closed when it closes it.
    pub stdin: Option<mpsc::Receiver<Vec<u8>>>,
    /// Terminal sizes (rows, columns), with a terminal.
    pub resize: Option<mpsc::Receiver<(u16, u16)>>,
    pub out: mpsc::Sender<Out>,
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The exec's process exited with this code (128 + signal if killed).
    Exit(i32),
    /// The attach's end: PID 1 exited, or the monitor ended it.
    Detached,
    /// It could not run, or failed: why.
    Failed(String),
}

/// A terminal's size if the client sends none.
const DEFAULT_SIZE: (u16, u16) = (24, 80);
/// How long a terminal's first size is waited for.
const FIRST_SIZE: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs `req`'s command in its container for the session. A client that
/// goes (`gone` resolves first) has the process killed.
pub async fn exec(
    rt: Arc<Runtime>,
    ops: tokio::runtime::Handle,
    req: cri::ExecRequest,
    mut s: Session,
    gone: impl std::future::Future<Output = ()>,
) -> Ended {
    // A client with a terminal sends its size first thing: the process
    // starts at that size rather than being resized once it runs.
    let mut size = DEFAULT_SIZE;
    if let (true, Some(sizes)) = (req.tty, s.resize.as_mut()) {
        if let Ok(Some(first)) = tokio::time::timeout(FIRST_SIZE, sizes.recv()).await {
            size = first;
        }
    }
    let p = ExecProcess {
        args: req.cmd,
        stdin: req.stdin,
        tty: req.tty.then_some(size),
        ..Default::default()
    };
    let id = req.container_id;
    let started = ops.spawn(async move { rt.exec(&id, p).await }).await;
    let mut running = match started {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Ended::Failed(e.to_string()),
        Err(e) => return Ended::Failed(format!("exec failed: {e}")),
    };
    let io = running.io();
    let feeding = tokio::spawn(feed(s.stdin, io.input, s.resize, io.resizer));
    let outputs = [
        io.stdout
            .map(|r| tokio::spawn(pump(r, s.out.clone(), Out::Stdout))),
        io.stderr.map(|r| {
            let r: Box<dyn AsyncRead + Send + Unpin> = Box::new(r);
            tokio::spawn(pump(r, s.out.clone(), Out::Stderr))
        }),
    ];
    drop(s.out);
    let signal = running.signal.clone();
    let ended = async {
        for o in outputs.into_iter().flatten() {
            let _ = o.await;
        }
        running.exit.await
    };
    tokio::pin!(ended, gone);
    let exit = tokio::select! {
        e = &mut ended => e,
        () = &mut gone => {
            signal.send(libc::SIGKILL);
            ended.await
        }
    };
    feeding.abort();
    match exit {
        Ok((code, _)) => Ended::Exit(code),
        Err(_) => Ended::Failed("the exec's end was lost".into()),
    }
}

/// The client's stdin to the process until either ends, and its sizes to
/// the terminal.
async fn feed(
    stdin: Option<mpsc::Receiver<Vec<u8>>>,
    input: Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>,
    resize: Option<mpsc::Receiver<(u16, u16)>>,
    resizer: Option<std::os::fd::OwnedFd>,
) {
    let sizes = async move {
        if let (Some(mut sizes), Some(fd)) = (resize, resizer) {
            while let Some(size) = sizes.recv().await {
                crate::sys::pty::resize(&fd, size);
            }
        }
    };
    let copy = async move {
        if let (Some(mut stdin), Some(mut w)) = (stdin, input) {
            while let Some(data) = stdin.recv().await {
                if w.write_all(&data).await.and(w.flush().await).is_err() {
                    return;
                }
            }
            // Closed: the process reads its end (a terminal's input stays).
        }
    };
    tokio::join!(sizes, copy);
}

/// Sends what `r` produces until its end; once no one takes it, reads
/// and drops it so that the process never blocks on its output.
async fn pump(
    mut r: Box<dyn AsyncRead + Send + Unpin>,
    out: mpsc::Sender<Out>,
    wrap: fn(Vec<u8>) -> Out,
) {
    let mut buf = vec![0u8; 32 << 10];
    let mut sending = true;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) if sending => sending = out.send(wrap(buf[..n].to_vec())).await.is_ok(),
            Ok(_) => {}
        }
    }
}

/// Attaches the session to the container's PID 1 until it exits or the
/// client goes; the container runs on after a client's end.
pub async fn attach(
    rt: Arc<Runtime>,
    ops: tokio::runtime::Handle,
    req: cri::AttachRequest,
    s: Session,
    gone: impl std::future::Future<Output = ()>,
) -> Ended {
    let id = req.container_id;
    let attached = ops.spawn(async move { rt.attach(&id, false).await }).await;
    let attached = match attached {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Ended::Failed(e.to_string()),
        Err(e) => return Ended::Failed(format!("attach failed: {e}")),
    };
    let stdin = req.stdin && attached.stdin_open;
    let (mut rd, mut wr) = attached.split();
    let (mut input, mut sizes) = (s.stdin.filter(|_| stdin), s.resize);
    let feeding = tokio::spawn(async move {
        loop {
            tokio::select! {
                data = async { input.as_mut()?.recv().await }, if input.is_some() => match data {
                    Some(data) => wr.stdin(&data).await,
                    None => {
                        wr.close_stdin().await;
                        input = None;
                    }
                },
                size = async { sizes.as_mut()?.recv().await }, if sizes.is_some() => match size {
                    Some((rows, cols)) => wr.resize(rows, cols).await,
                    None => sizes = None,
                },
                else => return,
            }
        }
    });
    let reading = async move {
        loop {
            let out = match rd.next().await {
                AttachOutput::Stdout(d) => Out::Stdout(d),
                AttachOutput::Stderr(d) => Out::Stderr(d),
                AttachOutput::Exit(..) => return Ended::Detached,
                AttachOutput::Cut => {
                    return Ended::Failed(
                        "cut off by the container's monitor: the client fell too far behind".into(),
                    )
                }
                AttachOutput::Broken => return Ended::Failed("a broken frame".into()),
            };
            if s.out.send(out).await.is_err() {
                return Ended::Detached;
            }
        }
    };
    let ended = tokio::select! {
        e = reading => e,
        () = gone => Ended::Detached,
    };
    feeding.abort();
    ended
}
