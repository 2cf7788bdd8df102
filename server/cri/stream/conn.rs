//! A SPDY/3.1 connection, server side, over any byte stream: the client's
//! new streams come out of `accept`, each with its headers and a channel
//! of its data (closed at the client's FIN or reset, or the connection's
//! end); what the server sends goes through one writer task, in order.
//! Pings are answered. There is no flow control: Kubernetes' clients
//! neither send nor obey window updates.

use super::spdy::{Decoder, Encoder, Frame, Headers, MAX_DATA};
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Frames queued for the writer before a sender waits.
const QUEUE: usize = 64;
/// Data frames a stream's reader may be behind before the connection's
/// reading waits for it.
const STREAM_QUEUE: usize = 32;
/// The largest DATA frame sent.
const CHUNK: usize = 32 << 10;

/// A stream the client opened.
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    /// The client's data, until it finishes its side.
    pub data: mpsc::Receiver<Vec<u8>>,
    pub out: Sender,
}

/// Sends on one stream.
#[derive(Clone)]
pub struct Sender {
    id: u32,
    frames: mpsc::Sender<Option<Frame>>,
}

impl Sender {
    /// SYN_REPLY: the stream is accepted.
    pub async fn reply(&self) {
        let reply = Frame::SynReply {
            stream: self.id,
            fin: false,
            headers: Headers::default(),
        };
        let _ = self.frames.send(Some(reply)).await;
    }

    /// Sends `data`, in frames of at most 32 KiB. False once the
    /// connection is gone.
    pub async fn send(&self, data: &[u8]) -> bool {
        for chunk in data.chunks(CHUNK.min(MAX_DATA)) {
            let frame = Frame::Data {
                stream: self.id,
                fin: false,
                data: chunk.to_vec(),
            };
            if self.frames.send(Some(frame)).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Ends the server's side of the stream (an empty DATA with FIN).
    pub async fn finish(&self) {
        let fin = Frame::Data {
            stream: self.id,
            fin: true,
            data: Vec::new(),
        };
        let _ = self.frames.send(Some(fin)).await;
    }
}

pub struct Conn {
    incoming: mpsc::Receiver<Stream>,
    frames: mpsc::Sender<Option<Frame>>,
    reader: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

impl Conn {
    pub fn new<IO>(io: IO) -> Conn
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (frames, queued) = mpsc::channel(QUEUE);
        let (new_streams, incoming) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(write_frames(wr, queued));
        let reader = tokio::spawn(read_frames(rd, frames.clone(), new_streams));
        Conn {
            incoming,
            frames,
            reader,
            writer,
        }
    }

    /// The next stream the client opens; None once it can open no more.
    pub async fn accept(&mut self) -> Option<Stream> {
        self.incoming.recv().await
    }

    /// Ends the connection: GOAWAY after everything queued, the write side
    /// shut, then the client's own close awaited (at most `linger`), so
    /// that nothing it still sends resets what it has yet to read.
    pub async fn close(self, linger: Duration) {
        let Conn {
            incoming,
            frames,
            mut reader,
            writer,
        } = self;
        drop(incoming);
        let goaway = Frame::GoAway { last: 0, status: 0 };
        let _ = frames.send(Some(goaway)).await;
        let _ = frames.send(None).await;
        let _ = writer.await;
        if tokio::time::timeout(linger, &mut reader).await.is_err() {
            reader.abort();
        }
    }
}

async fn write_frames<W: AsyncWrite>(wr: W, mut queued: mpsc::Receiver<Option<Frame>>) {
    let mut wr = std::pin::pin!(wr);
    let mut enc = Encoder::default();
    let mut buf = Vec::with_capacity(CHUNK + 64);
    // None (or every sender gone): the server is done.
    while let Some(Some(frame)) = queued.recv().await {
        buf.clear();
        enc.encode(&frame, &mut buf);
        // Whatever else is queued goes in the same write.
        let mut closing = false;
        while buf.len() < CHUNK {
            match queued.try_recv() {
                Ok(Some(f)) => enc.encode(&f, &mut buf),
                Ok(None) => {
                    closing = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            return;
        }
        if closing {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

async fn read_frames<R: AsyncRead>(
    rd: R,
    frames: mpsc::Sender<Option<Frame>>,
    new_streams: mpsc::Sender<Stream>,
) {
    let mut rd = std::pin::pin!(rd);
    let mut dec = Decoder::default();
    let mut open: HashMap<u32, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let frame = match dec.next() {
            Ok(Some(f)) => f,
            Ok(None) => match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    dec.push(&buf[..n]);
                    continue;
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "a SPDY client sent what does not parse");
                return;
            }
        };
        match frame {
            Frame::SynStream {
                stream,
                fin,
                headers,
            } => {
                let (tx, data) = mpsc::channel(STREAM_QUEUE);
                if !fin {
                    open.insert(stream, tx);
                }
                let out = Sender {
                    id: stream,
                    frames: frames.clone(),
                };
                let s = Stream {
                    id: stream,
                    headers,
                    data,
                    out,
                };
                if new_streams.send(s).await.is_err() {
                    let reset = Frame::RstStream {
                        stream,
                        status: super::spdy::REFUSED_STREAM,
                    };
                    let _ = frames.send(Some(reset)).await;
                }
            }
            Frame::Data { stream, fin, data } => {
                if let Some(tx) = open.get(&stream) {
                    if !data.is_empty() {
                        // A reader that is gone no longer wants it.
                        let _ = tx.send(data).await;
                    }
                }
                if fin {
                    open.remove(&stream);
                }
            }
            Frame::RstStream { stream, .. } => {
                open.remove(&stream);
            }
            Frame::Ping(id) => {
                let _ = frames.send(Some(Frame::Ping(id))).await;
            }
            Frame::GoAway { .. } => return,
            Frame::Headers {
                stream, fin: true, ..
            } => {
                open.remove(&stream);
            }
            Frame::SynReply { .. } | Frame::Headers { .. } | Frame::Other(_) => {}
        }
    }
}
