//! A unix-socket connection whose incoming bytes go through the authority
//! rewriter before the HTTP/2 layer reads them (authority.rs says why).
//! Writes pass straight through.

use super::authority::Rewriter;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 16 << 10;

pub struct Rewritten<S> {
    inner: S,
    /// None: bytes pass as they are (no longer needed, or
    /// BERTH_UNIX_AUTHORITY_REWRITE=0, for benches/requests.rs to measure
    /// what the rewriter costs).
    rewriter: Option<Rewriter>,
    /// Rewritten bytes the HTTP/2 layer has not read yet, from `at`.
    ready: Vec<u8>,
    at: usize,
    scratch: Box<[u8]>,
}

impl<S> Rewritten<S> {
    pub fn new(inner: S, max_header_list: usize) -> Self {
        Rewritten {
            inner,
            rewriter: enabled().then(|| Rewriter::new(max_header_list)),
            ready: Vec::new(),
            at: 0,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }
}

/// Whether connections are read through the rewriter: yes, unless
/// BERTH_UNIX_AUTHORITY_REWRITE=0.
fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED
        .get_or_init(|| std::env::var_os("BERTH_UNIX_AUTHORITY_REWRITE").is_none_or(|v| v != "0"))
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewritten<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Once the rewriter has nothing more to do (the first header block
        // needed no change) and what it produced is read, it is dropped and
        // reads go straight to the socket.
        let done = this
            .rewriter
            .as_ref()
            .is_some_and(Rewriter::passing_through);
        if done && this.at == this.ready.len() {
            this.rewriter = None;
            this.ready = Vec::new();
            this.scratch = Box::default();
        }
        let Some(rewriter) = this.rewriter.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        // A read that yields only part of a frame header or header block
        // produces nothing yet: read again rather than report an end.
        while this.at == this.ready.len() {
            this.ready.clear();
            this.at = 0;
            let mut scratch = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut scratch))?;
            let read = scratch.filled();
            if read.is_empty() {
                return Poll::Ready(Ok(()));
            }
            rewriter
                .feed(read, &mut this.ready)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        let n = buf.remaining().min(this.ready.len() - this.at);
        buf.put_slice(&this.ready[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewritten<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: Connected> Connected for Rewritten<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}
