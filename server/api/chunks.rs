//! Archives as streams of chunks: what a client sends (load, import) is
//! read on a blocking thread through a bounded channel, and what a
//! blocking thread writes (save, export) goes out as chunks.

use crate::image::Error;
use berth::pb;
use std::io::{self, Read, Write};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::{Status, Streaming};

/// Chunks of an archive sent to the client.
const CHUNK: usize = 256 << 10;

/// A Write that sends what it is given as chunks on a channel.
pub(super) struct ChunkWriter {
    pub tx: mpsc::Sender<Result<pb::Chunk, Status>>,
    pub buf: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.buf);
        self.tx
            .blocking_send(Ok(pb::Chunk { data }))
            .map_err(|_| io::Error::from_raw_os_error(libc::EPIPE))
    }
}

/// A Read over a client stream's bytes, fed by the async side.
pub(super) struct ChunkReader {
    rx: mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl ChunkReader {
    pub(super) fn new(rx: mpsc::Receiver<Vec<u8>>) -> ChunkReader {
        ChunkReader {
            rx,
            current: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.rx.blocking_recv() {
                Some(c) => (self.current, self.at) = (c, 0),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Feeds a client stream into a blocking job reading it; the job's
/// result. A stream error ends the job's input early.
pub(super) async fn feed<M, T>(
    mut stream: Streaming<M>,
    data: impl Fn(M) -> Vec<u8> + Send + 'static,
    job: impl FnOnce(ChunkReader) -> Result<T, Error> + Send + 'static,
) -> Result<T, Status>
where
    M: Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    let worker = tokio::task::spawn_blocking(move || job(ChunkReader::new(rx)));
    let mut failed = None;
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(m) => {
                if tx.send(data(m)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let result = worker
        .await
        .map_err(|e| Status::internal(format!("operation failed: {e}")))?;
    match failed {
        Some(e) => Err(e),
        None => result.map_err(Status::from),
    }
}
