//! Port forwarding (`portforward.k8s.io`): over one SPDY connection the
//! client opens a pair of streams per connection it forwards, "data" and
//! "error", with the same requestID and the pod's port; berth connects to
//! that port on loopback inside the pod's network namespace and copies
//! both ways, and a connection it cannot make is told on the error
//! stream. Over WebSocket, the same SPDY bytes are tunneled in binary
//! messages (`SPDY/3.1+portforward.k8s.io`), as newer clients do.

use super::conn::{Conn, Sender, Stream};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{protocol::Role, Message};

pub const PROTOCOL: &str = "portforward.k8s.io";
pub const TUNNELED: &str = "SPDY/3.1+portforward.k8s.io";

/// A stream pair's halves as they arrive.
#[derive(Default)]
struct Pair {
    data: Option<Stream>,
    error: Option<Sender>,
}

/// Serves port forwarding on a SPDY connection until the client ends it.
pub async fn spdy<IO>(io: IO, netns: Option<PathBuf>)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut conn = Conn::new(io);
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    while let Some(s) = conn.accept().await {
        let (Some(id), Some(port)) = (s.headers.get("requestid"), s.headers.get("port")) else {
            tracing::debug!(
                stream = s.id,
                "a port-forward stream without requestID or port"
            );
            continue;
        };
        let (id, port) = (id.to_string(), port.to_string());
        s.out.reply().await;
        let pair = pairs.entry(id.clone()).or_default();
        match s.headers.get("streamtype") {
            Some("data") => pair.data = Some(s),
            Some("error") => pair.error = Some(s.out),
            _ => continue,
        }
        if pair.data.is_some() && pair.error.is_some() {
            let Pair { data, error } = pairs.remove(&id).unwrap_or_default();
            let (Some(data), Some(error)) = (data, error) else {
                continue;
            };
            tokio::spawn(forward(data, error, port, netns.clone()));
        }
    }
    conn.close(Duration::ZERO).await;
}

/// One forwarded connection.
async fn forward(data: Stream, error: Sender, port: String, netns: Option<PathBuf>) {
    let connected = match port.parse::<u16>() {
        Ok(p) if p > 0 => crate::network::netns::connect_local(netns.as_deref(), p)
            .await
            .and_then(|tcp| {
                tcp.set_nonblocking(true)?;
                tokio::net::TcpStream::from_std(tcp)
            })
            .map_err(|e| {
                format!("failed to connect to localhost:{p} in the pod's network namespace: {e}")
            }),
        _ => Err(format!("invalid port {port:?}")),
    };
    let tcp = match connected {
        Ok(tcp) => tcp,
        Err(why) => {
            tracing::debug!(port = %port, error = %why, "port-forward");
            error.send(why.as_bytes()).await;
            error.finish().await;
            data.out.finish().await;
            return;
        }
    };
    let (mut rd, mut wr) = tcp.into_split();
    let Stream {
        data: mut incoming,
        out,
        ..
    } = data;
    let to_pod = async move {
        while let Some(d) = incoming.recv().await {
            if wr.write_all(&d).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    let from_pod = async {
        let mut buf = vec![0u8; 32 << 10];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !out.send(&buf[..n]).await {
                        break;
                    }
                }
            }
        }
        out.finish().await;
    };
    tokio::join!(to_pod, from_pod);
    error.finish().await;
}

/// SPDY tunneled in WebSocket binary messages: the bytes are passed
/// through a pipe to the same server.
pub async fn tunneled<IO>(io: IO, netns: Option<PathBuf>)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    let (mut sink, mut incoming) = ws.split();
    let (ours, theirs) = tokio::io::duplex(64 << 10);
    let (mut pipe_rd, mut pipe_wr) = tokio::io::split(ours);
    let inbound = async move {
        while let Some(Ok(msg)) = incoming.next().await {
            let Message::Binary(b) = msg else {
                if msg.is_close() {
                    break;
                }
                continue;
            };
            if pipe_wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = pipe_wr.shutdown().await;
    };
    let outbound = async move {
        let mut buf = vec![0u8; 32 << 10];
        loop {
            match pipe_rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(buf[..n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    };
    let serving = spdy(theirs, netns);
    tokio::join!(inbound, outbound, serving);
}
