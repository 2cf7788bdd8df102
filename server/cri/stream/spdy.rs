//! SPDY/3.1 framing (draft-mbelshe-httpbis-spdy-00 with 3.1's flow
//! control frames), as Kubernetes' streaming clients speak it: frames in
//! and out of a byte stream, and the name/value header blocks, compressed
//! by one zlib stream per direction with the protocol's dictionary.
//!
//! Self-contained (std and flate2 only): the fuzz target builds it alone.
//! The decoder never trusts a length: a frame is at most 16 MiB (the
//! format's limit) and a header block inflates to at most 256 KiB.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The largest header block accepted once inflated.
pub const MAX_HEADER_BLOCK: usize = 256 << 10;
/// The most bytes a DATA frame carries (the format's 24-bit length).
pub const MAX_DATA: usize = (1 << 24) - 1;

const VERSION: u16 = 3;
const FLAG_FIN: u8 = 0x01;

/// A frame: the ones a streaming session uses, and the rest as Other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream: u32,
        fin: bool,
        data: Vec<u8>,
    },
    SynStream {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    SynReply {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    Ping(u32),
    GoAway {
        last: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    /// SETTINGS, WINDOW_UPDATE and types the draft does not name: read
    /// and passed over (the clients send no flow control berth must obey).
    Other(u16),
}

/// RST_STREAM status codes used here.
pub const REFUSED_STREAM: u32 = 3;

/// A header block: names (lower case on the wire) and values in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// The first value of `name`, compared without case. A value holding
    /// several (NUL-separated) gives its first.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split('\0').next().unwrap_or(""))
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// A control frame of a version other than 3.
    Version(u16),
    /// A frame too short for its type, or a header block that does not
    /// parse, or inflates beyond MAX_HEADER_BLOCK.
    Malformed(&'static str),
    /// The header block's zlib stream is broken.
    Zlib,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Version(v) => write!(f, "SPDY version {v} (only 3 is spoken)"),
            Error::Malformed(what) => write!(f, "malformed SPDY frame: {what}"),
            Error::Zlib => write!(f, "a SPDY header block does not inflate"),
        }
    }
}

impl std::error::Error for Error {}

/// The dictionary both zlib streams start from (the draft's section
/// 2.6.10.1): these words, each after its length as four bytes, then
/// TAIL as it is.
const WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];
const TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

pub fn dictionary() -> Vec<u8> {
    let mut d = Vec::with_capacity(1424);
    for w in WORDS {
        d.extend_from_slice(&(w.len() as u32).to_be_bytes());
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(TAIL.as_bytes());
    d
}

/// Reads frames from the bytes of one direction of a connection.
pub struct Decoder {
    buf: Vec<u8>,
    inflate: Decompress,
    dictionary: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder {
            buf: Vec::new(),
            inflate: Decompress::new(true),
            dictionary: dictionary(),
        }
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Decoder {
    /// Adds bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, None until one is there. An error is final:
    /// the connection is to be dropped.
    pub fn next(&mut self) -> Result<Option<Frame>, Error> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let len = (be32(&self.buf[4..8]) & 0x00ff_ffff) as usize;
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let head: Vec<u8> = self.buf[..8].to_vec();
        let body: Vec<u8> = self.buf.drain(..8 + len).skip(8).collect();
        let flags = head[4];
        let fin = flags & FLAG_FIN != 0;
        if head[0] & 0x80 == 0 {
            let stream = be32(&head[..4]) & 0x7fff_ffff;
            return Ok(Some(Frame::Data {
                stream,
                fin,
                data: body,
            }));
        }
        let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
        if version != VERSION {
            return Err(Error::Version(version));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let need = |n: usize, what| match body.len() >= n {
            true => Ok(()),
            false => Err(Error::Malformed(what)),
        };
        let stream = || be32(&body[..4]) & 0x7fff_ffff;
        Ok(Some(match kind {
            1 => {
                need(10, "SYN_STREAM")?;
                let headers = self.headers(&body[10..])?;
                Frame::SynStream {
                    stream: stream(),
                    fin,
                    headers,
                }
            }
            2 | 8 => {
                need(4, "SYN_REPLY or HEADERS")?;
                let (stream, headers) = (stream(), self.headers(&body[4..])?);
                match kind {
                    2 => Frame::SynReply {
                        stream,
                        fin,
                        headers,
                    },
                    _ => Frame::Headers {
                        stream,
                        fin,
                        headers,
                    },
                }
            }
            3 => {
                need(8, "RST_STREAM")?;
                Frame::RstStream {
                    stream: stream(),
                    status: be32(&body[4..8]),
                }
            }
            6 => {
                need(4, "PING")?;
                Frame::Ping(be32(&body[..4]))
            }
            7 => {
                need(8, "GOAWAY")?;
                Frame::GoAway {
                    last: stream(),
                    status: be32(&body[4..8]),
                }
            }
            other => Frame::Other(other),
        }))
    }

    /// Inflates a header block (the stream goes on across blocks) and
    /// parses it.
    fn headers(&mut self, block: &[u8]) -> Result<Headers, Error> {
        let mut out = Vec::with_capacity((block.len() * 4).clamp(256, MAX_HEADER_BLOCK));
        let mut input = block;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADER_BLOCK {
                    return Err(Error::Malformed("the header block is too large"));
                }
                out.reserve_exact(out.len().min(MAX_HEADER_BLOCK - out.len()));
            }
            let (before_in, before_out) = (self.inflate.total_in(), self.inflate.total_out());
            let result = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            input = &input[(self.inflate.total_in() - before_in) as usize..];
            let moved =
                self.inflate.total_in() != before_in || self.inflate.total_out() != before_out;
            match result {
                Ok(Status::StreamEnd) => break,
                // All in, and room left: the flush put everything out.
                Ok(_) if input.is_empty() && out.len() < out.capacity() => break,
                Ok(_) if moved || out.len() == out.capacity() => {}
                Ok(_) => return Err(Error::Zlib),
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(&self.dictionary)
                        .map_err(|_| Error::Zlib)?;
                }
                Err(_) => return Err(Error::Zlib),
            }
        }
        parse_block(&out)
    }
}

fn parse_block(b: &[u8]) -> Result<Headers, Error> {
    let bad = Error::Malformed("a header block");
    let mut at = 0usize;
    let take = |at: &mut usize| -> Result<String, Error> {
        let len = b
            .get(*at..*at + 4)
            .map(be32)
            .ok_or(Error::Malformed("a header block"))?;
        let end = (*at + 4)
            .checked_add(len as usize)
            .ok_or(Error::Malformed("a header block"))?;
        let s = b
            .get(*at + 4..end)
            .ok_or(Error::Malformed("a header block"))?;
        *at = end;
        String::from_utf8(s.to_vec()).map_err(|_| Error::Malformed("a header block"))
    };
    let count = b.get(..4).map(be32).ok_or(bad)?;
    at += 4;
    let mut headers = Vec::new();
    for _ in 0..count {
        let name = take(&mut at)?;
        let value = take(&mut at)?;
        headers.push((name, value));
    }
    Ok(Headers(headers))
}

/// Writes frames for one direction of a connection.
pub struct Encoder {
    deflate: Compress,
}

impl Default for Encoder {
    fn default() -> Encoder {
        let mut deflate = Compress::new(Compression::default(), true);
        deflate
            .set_dictionary(&dictionary())
            .expect("a fresh zlib stream takes a dictionary");
        Encoder { deflate }
    }
}

impl Encoder {
    /// Appends `frame` to `out`. A DATA frame longer than MAX_DATA is the
    /// caller's error (it splits its data).
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        let control = |out: &mut Vec<u8>, kind: u16, flags: u8, body: &[u8]| {
            out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
            out.extend_from_slice(&kind.to_be_bytes());
            out.extend_from_slice(&((flags as u32) << 24 | body.len() as u32).to_be_bytes());
            out.extend_from_slice(body);
        };
        let fin = |f: bool| if f { FLAG_FIN } else { 0 };
        match frame {
            Frame::Data {
                stream,
                fin: f,
                data,
            } => {
                assert!(data.len() <= MAX_DATA, "a DATA frame over 16 MiB");
                out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
                out.extend_from_slice(&((fin(*f) as u32) << 24 | data.len() as u32).to_be_bytes());
                out.extend_from_slice(data);
            }
            Frame::SynStream {
                stream,
                fin: f,
                headers,
            } => {
                let mut body = stream.to_be_bytes().to_vec();
                body.extend_from_slice(&[0; 6]);
                body.extend(self.block(headers));
                control(out, 1, fin(*f), &body);
            }
            Frame::SynReply {
                stream,
                fin: f,
                headers,
            }
            | Frame::Headers {
                stream,
                fin: f,
                headers,
            } => {
                let mut body = stream.to_be_bytes().to_vec();
                body.extend(self.block(headers));
                let kind = if matches!(frame, Frame::SynReply { .. }) {
                    2
                } else {
                    8
                };
                control(out, kind, fin(*f), &body);
            }
            Frame::RstStream { stream, status } => {
                let body = [stream.to_be_bytes(), status.to_be_bytes()].concat();
                control(out, 3, 0, &body);
            }
            Frame::Ping(id) => control(out, 6, 0, &id.to_be_bytes()),
            Frame::GoAway { last, status } => {
                let body = [last.to_be_bytes(), status.to_be_bytes()].concat();
                control(out, 7, 0, &body);
            }
            Frame::Other(kind) => control(out, *kind, 0, &[]),
        }
    }

    fn block(&mut self, headers: &Headers) -> Vec<u8> {
        let mut raw = (headers.0.len() as u32).to_be_bytes().to_vec();
        for (n, v) in &headers.0 {
            for s in [n.to_ascii_lowercase().as_str(), v.as_str()] {
                raw.extend_from_slice(&(s.len() as u32).to_be_bytes());
                raw.extend_from_slice(s.as_bytes());
            }
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        loop {
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("deflate into memory cannot fail");
            input = &input[(self.deflate.total_in() - before) as usize..];
            // Done once all went in and the flush left room to spare.
            if input.is_empty() && out.len() < out.capacity() {
                return out;
            }
            out.reserve(out.capacity().max(64));
        }
    }
}

#[cfg(test)]
mod tests;
