//! Kubernetes' remote command protocols, which carry an exec or attach:
//! over SPDY, one stream per channel the client opens (its `streamType`
//! header: error, stdin, stdout, stderr, resize); over WebSocket, one
//! byte before each message's data naming the channel (0 stdin, 1 stdout,
//! 2 stderr, 3 error, 4 resize; v5's 255 closes one). The error channel
//! carries the end: from v4 on, a JSON metav1.Status (exit code as a
//! NonZeroExitCode cause); before, a message only on failure.

use super::conn::{Conn, Sender, Stream};
use super::session::{Ended, Out, Session};
use futures_util::{SinkExt, StreamExt};
use k8s_cri::v1 as cri;
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;

/// Exec and attach's protocols over SPDY and over WebSocket, newest first.
pub const SPDY_PROTOCOLS: &[&str] = &[
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
pub const WEBSOCKET_PROTOCOLS: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

/// How long a SPDY client has to open its streams.
const STREAM_CREATION: Duration = Duration::from_secs(30);
/// How long the server waits for a client to close after the end.
const LINGER: Duration = Duration::from_secs(5);

/// What the request asked to stream.
pub struct Opts {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

impl Opts {
    pub fn exec(r: &cri::ExecRequest) -> Opts {
        Opts {
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
            tty: r.tty,
        }
    }

    pub fn attach(r: &cri::AttachRequest) -> Opts {
        Opts {
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
            tty: r.tty,
        }
    }
}

/// The protocol's version: 1 for "channel.k8s.io", else its vN.
fn version(protocol: &str) -> u8 {
    protocol
        .strip_prefix('v')
        .and_then(|p| p.split('.').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// What the error channel carries for `ended`, if anything.
fn status(ended: &Ended, version: u8) -> Option<Vec<u8>> {
    let failure = |message: String, reason: &str, details: serde_json::Value| {
        serde_json::json!({
            "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "details": details,
        })
    };
    let (json, text) = match ended {
        Ended::Exit(0) | Ended::Detached => (
            serde_json::json!({"metadata": {}, "status": "Success"}),
            None,
        ),
        Ended::Exit(code) => {
            let message = format!("command terminated with non-zero exit code: exit code {code}");
            let causes = serde_json::json!({"causes": [{"reason": "ExitCode", "message": code.to_string()}]});
            (
                failure(message.clone(), "NonZeroExitCode", causes),
                Some(message),
            )
        }
        Ended::Failed(why) => (
            failure(why.clone(), "InternalError", serde_json::json!({})),
            Some(why.clone()),
        ),
    };
    match version >= 4 {
        true => Some(json.to_string().into_bytes()),
        false => text.map(String::into_bytes),
    }
}

/// Serves one exec or attach on an upgraded connection: the streams or
/// channels the client opens become a Session for `run`, whose end is
/// written on the error channel before the connection closes.
pub async fn serve<IO, F, Fut>(io: IO, websocket: bool, protocol: &str, opts: Opts, run: F)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    F: FnOnce(Session, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = Ended>,
{
    let version = version(protocol);
    match websocket {
        true => websocket_session(io, version, run).await,
        false => spdy_session(io, version, opts, run).await,
    }
}

/// The streams a SPDY client opens, by type.
#[derive(Default)]
struct Opened {
    error: Option<Sender>,
    stdin: Option<Stream>,
    stdout: Option<Sender>,
    stderr: Option<Sender>,
    resize: Option<Stream>,
}

impl Opened {
    fn complete(&self, o: &Opts, version: u8) -> bool {
        self.error.is_some()
            && (!o.stdin || self.stdin.is_some())
            && (!o.stdout || self.stdout.is_some())
            && (!o.stderr || (o.tty && version >= 2) || self.stderr.is_some())
            && (!o.tty || version < 3 || self.resize.is_some())
    }
}

async fn spdy_session<IO, F, Fut>(io: IO, version: u8, opts: Opts, run: F)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    F: FnOnce(Session, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = Ended>,
{
    let mut conn = Conn::new(io);
    let mut opened = Opened::default();
    let accepting = async {
        while !opened.complete(&opts, version) {
            let Some(s) = conn.accept().await else {
                return false;
            };
            s.out.reply().await;
            match s.headers.get("streamtype").unwrap_or("") {
                "error" => opened.error = Some(s.out),
                "stdin" => opened.stdin = Some(s),
                "stdout" => opened.stdout = Some(s.out),
                "stderr" => opened.stderr = Some(s.out),
                "resize" => opened.resize = Some(s),
                other => tracing::debug!(stream = other, "a stream of no known type"),
            }
        }
        true
    };
    match tokio::time::timeout(STREAM_CREATION, accepting).await {
        Ok(true) => {}
        _ => {
            tracing::debug!("a streaming client did not open its streams");
            return conn.close(Duration::ZERO).await;
        }
    }
    let Opened {
        error,
        stdin,
        stdout,
        stderr,
        resize,
    } = opened;
    let (out, mut outputs) = mpsc::channel(64);
    let session = Session {
        stdin: stdin.map(|s| s.data),
        resize: resize.map(|s| sizes(s.data)),
        out,
    };
    let (stdout_, stderr_) = (stdout.clone(), stderr.clone());
    let forwarding = tokio::spawn(async move {
        while let Some(o) = outputs.recv().await {
            let (to, data) = match o {
                Out::Stdout(d) => (&stdout_, d),
                Out::Stderr(d) => (&stderr_, d),
            };
            if let Some(to) = to {
                to.send(&data).await;
            }
        }
    });
    // The client is gone once it can open no more streams.
    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
    let gone: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
        let _ = gone_rx.await;
    });
    let watching = async {
        while conn.accept().await.is_some() {}
        drop(gone_tx);
        std::future::pending::<()>().await
    };
    let ended = tokio::select! {
        e = run(session, gone) => e,
        () = watching => unreachable!("watching never ends"),
    };
    let _ = forwarding.await;
    if let (Some(error), Some(message)) = (&error, status(&ended, version)) {
        error.send(&message).await;
    }
    for s in [error, stdout, stderr].into_iter().flatten() {
        s.finish().await;
    }
    conn.close(LINGER).await;
}

/// Terminal sizes out of the resize channel's JSON objects
/// ({"Width":80,"Height":24}), however the data is cut.
fn sizes(mut data: mpsc::Receiver<Vec<u8>>) -> mpsc::Receiver<(u16, u16)> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Size {
        width: u16,
        height: u16,
    }
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut buf = Vec::new();
        while let Some(d) = data.recv().await {
            buf.extend_from_slice(&d);
            let mut objects = serde_json::Deserializer::from_slice(&buf).into_iter::<Size>();
            let mut used = 0;
            while let Some(s) = objects.next() {
                match s {
                    // A terminal of no size (a client without one) is none.
                    Ok(s) if s.width == 0 || s.height == 0 => used = objects.byte_offset(),
                    Ok(s) => {
                        used = objects.byte_offset();
                        if tx.send((s.height, s.width)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) if e.is_eof() => break,
                    Err(_) => return,
                }
            }
            buf.drain(..used);
        }
    });
    rx
}

/// One size from a WebSocket resize message.
fn size(data: &[u8]) -> Option<(u16, u16)> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    let get = |k: &str| v.get(k)?.as_u64().and_then(|n| u16::try_from(n).ok());
    Some((get("Height")?, get("Width")?)).filter(|&(rows, cols)| rows > 0 && cols > 0)
}

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

async fn websocket_session<IO, F, Fut>(io: IO, version: u8, run: F)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    F: FnOnce(Session, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = Ended>,
{
    let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    let (mut sink, mut incoming) = ws.split();
    let (stdin_tx, stdin) = mpsc::channel::<Vec<u8>>(32);
    let (resize_tx, resize) = mpsc::channel(8);
    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
    // The client's messages, until it closes: its end is its going.
    let reading = tokio::spawn(async move {
        let mut stdin_tx = Some(stdin_tx);
        while let Some(Ok(msg)) = incoming.next().await {
            let Message::Binary(data) = msg else {
                if msg.is_close() {
                    break;
                }
                continue;
            };
            match (data.first(), data.get(1)) {
                (Some(&STDIN), _) => {
                    if let Some(tx) = &stdin_tx {
                        let _ = tx.send(data[1..].to_vec()).await;
                    }
                }
                (Some(&RESIZE), _) => {
                    if let Some(s) = size(&data[1..]) {
                        let _ = resize_tx.send(s).await;
                    }
                }
                (Some(&CLOSE), Some(&STDIN)) if version >= 5 => stdin_tx = None,
                _ => {}
            }
        }
        drop(gone_tx);
        incoming
    });
    let (out, mut outputs) = mpsc::channel(64);
    let session = Session {
        stdin: Some(stdin),
        resize: Some(resize),
        out,
    };
    let gone: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
        let _ = gone_rx.await;
    });
    let running = run(session, gone);
    tokio::pin!(running);
    let ended = loop {
        tokio::select! {
            o = outputs.recv() => {
                let (channel, data) = match o {
                    Some(Out::Stdout(d)) => (STDOUT, d),
                    Some(Out::Stderr(d)) => (STDERR, d),
                    None => break running.await,
                };
                let _ = sink.send(Message::Binary([&[channel][..], &data].concat().into())).await;
            }
            e = &mut running => {
                // What is still queued goes first.
                while let Some(o) = outputs.recv().await {
                    let (channel, data) = match o {
                        Out::Stdout(d) => (STDOUT, d),
                        Out::Stderr(d) => (STDERR, d),
                    };
                    let _ = sink.send(Message::Binary([&[channel][..], &data].concat().into())).await;
                }
                break e;
            }
        }
    };
    if let Some(message) = status(&ended, version) {
        let _ = sink
            .send(Message::Binary([&[ERROR][..], &message].concat().into()))
            .await;
    }
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = sink.send(Message::Close(Some(bye))).await;
    // The client answers the close; its reader then ends.
    if tokio::time::timeout(LINGER, reading).await.is_err() {
        tracing::debug!("a WebSocket client did not close");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_is_written_as_each_version_expects() {
        assert_eq!(version("v4.channel.k8s.io"), 4);
        assert_eq!(version("channel.k8s.io"), 1);
        let ok = String::from_utf8(status(&Ended::Exit(0), 4).unwrap()).unwrap();
        assert_eq!(ok, r#"{"metadata":{},"status":"Success"}"#);
        let v: serde_json::Value =
            serde_json::from_slice(&status(&Ended::Exit(3), 5).unwrap()).unwrap();
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(
            v["details"]["causes"][0],
            serde_json::json!({"reason": "ExitCode", "message": "3"})
        );
        assert_eq!(status(&Ended::Exit(0), 2), None);
        assert!(String::from_utf8(status(&Ended::Exit(3), 2).unwrap())
            .unwrap()
            .contains("exit code 3"));
        assert_eq!(status(&Ended::Detached, 3), None);
    }

    #[tokio::test]
    async fn sizes_come_out_of_json_cut_anywhere() {
        let (tx, data) = mpsc::channel(8);
        let mut out = sizes(data);
        let text = br#"{"Width":80,"Height":24}{"Width":132,"Height":50}"#;
        for piece in text.chunks(7) {
            tx.send(piece.to_vec()).await.unwrap();
        }
        assert_eq!(out.recv().await, Some((24, 80)));
        assert_eq!(out.recv().await, Some((50, 132)));
        assert_eq!(size(br#"{"Width":100,"Height":40}"#), Some((40, 100)));
        assert_eq!(size(b"{}"), None);
        assert_eq!(size(br#"{"Width":0,"Height":0}"#), None);
    }
}
