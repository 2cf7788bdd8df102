//! The HTTP/2 stream a unix-socket client sends, with an `:authority` the
//! HTTP/2 layer accepts.
//!
//! grpcurl, grpcio (Python, C++), grpc-java and others send the socket's
//! path ("/run/berth/berth.sock") as a request's `:authority` when they
//! dial a unix socket. That is no URI authority, and the server's HTTP/2
//! layer answers such a request with RST_STREAM(PROTOCOL_ERROR). Nothing
//! in berth reads the authority, so an unusable one is taken to mean the
//! local host: this rewriter sits between the socket and the HTTP/2 layer
//! and replaces it with "localhost" before the request is judged.
//!
//! It is sans-I/O (bytes in, bytes out) so the fuzz target drives it
//! directly. Frames pass through untouched except header blocks (HEADERS
//! and its CONTINUATIONs), which are decoded with the client's HPACK
//! state. The connection's first block decides the rest:
//! - it needs no change (berth's own client, grpc-go, grpc-js): it goes
//!   on as it came, and so does everything after it, unread. (A client
//!   that later sends an unusable authority meets the HTTP/2 layer's
//!   refusal, as it would without this.)
//! - its authority is replaced: from then on every block is encoded again,
//!   as literals without indexing, so the HTTP/2 layer's own decoder never
//!   has a dynamic table to keep in step with the client's. The frames it
//!   writes are at most 16,384 bytes, the size every HTTP/2 peer accepts.
//!
//! A stream that does not begin with the HTTP/2 preface passes through as
//! it is.

use super::hpack::{self, Decoder};

/// The client connection preface (RFC 9113, 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The frame size every peer must accept (SETTINGS_MAX_FRAME_SIZE's
/// initial value): the largest frame written.
const MAX_FRAME: usize = 16_384;
/// The HPACK dynamic table the server allows its clients
/// (SETTINGS_HEADER_TABLE_SIZE, left at its initial value).
const TABLE_SIZE: usize = 4_096;
/// What an unusable authority becomes.
const LOCALHOST: &[u8] = b"localhost";

/// A header list: (name, value) pairs in order.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Why the connection must end: each is a connection error in HTTP/2, so
/// the HTTP/2 layer would have ended it too.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("header block cannot be decoded: {0}")]
    Compression(#[from] hpack::Error),
    #[error("{0}")]
    Protocol(&'static str),
    #[error("header block larger than {0} bytes")]
    TooLarge(usize),
}

enum State {
    /// How many bytes of the preface have been seen.
    Preface(usize),
    /// At a frame boundary.
    Frames,
    /// Inside the payload of a frame that passes through: the bytes left.
    Payload(usize),
    /// Collecting a HEADERS or CONTINUATION frame whole: its payload's
    /// length (its header is held already).
    HeaderFrame(usize),
    /// Not HTTP/2 with prior knowledge: everything passes through.
    Passthrough,
}

/// A header block still waiting for its END_HEADERS.
struct Block {
    stream: [u8; 4],
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    /// Its frames as they came, passed on if nothing changes.
    raw: Vec<u8>,
}

/// One client connection's stream, as the HTTP/2 layer should see it.
pub struct Rewriter {
    state: State,
    /// Bytes of a frame header, or of a whole HEADERS or CONTINUATION
    /// frame, not yet complete.
    partial: Vec<u8>,
    block: Option<Block>,
    decoder: Decoder,
    /// A block was changed: every later one is encoded again.
    rewriting: bool,
    /// The largest decoded header list let through (name and value bytes
    /// plus 32 for each field, as HTTP/2 counts it); a larger one ends the
    /// connection. Set above the HTTP/2 layer's own limit, so that it is
    /// still the one that judges ordinary requests.
    max_list: usize,
}

impl Rewriter {
    pub fn new(max_list: usize) -> Self {
        let decoder = Decoder::new(TABLE_SIZE);
        Rewriter {
            state: State::Preface(0),
            partial: Vec::new(),
            block: None,
            decoder,
            rewriting: false,
            max_list,
        }
    }

    /// Whatever comes next passes as it is: the stream is not HTTP/2, or
    /// its first header block needed no change.
    pub fn passing_through(&self) -> bool {
        matches!(self.state, State::Passthrough)
    }

    /// Takes the next bytes the client sent and appends what the HTTP/2
    /// layer should read to `out`. Bytes of an incomplete frame header or
    /// header block are held until the rest arrives.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        while !input.is_empty() {
            match self.state {
                State::Passthrough => {
                    out.extend_from_slice(input);
                    return Ok(());
                }
                State::Preface(seen) => {
                    let n = (PREFACE.len() - seen).min(input.len());
                    if input[..n] != PREFACE[seen..seen + n] {
                        out.extend_from_slice(&PREFACE[..seen]);
                        self.state = State::Passthrough;
                        continue;
                    }
                    input = &input[n..];
                    self.state = match seen + n {
                        done if done == PREFACE.len() => {
                            out.extend_from_slice(PREFACE);
                            State::Frames
                        }
                        seen => State::Preface(seen),
                    };
                }
                State::Payload(left) => {
                    let n = left.min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = match left - n {
                        0 => State::Frames,
                        left => State::Payload(left),
                    };
                }
                State::Frames => input = self.frame(input, out)?,
                State::HeaderFrame(len) => input = self.collect(len, input, out)?,
            }
        }
        Ok(())
    }

    /// Reads a frame header: passes it through and moves to its payload,
    /// or, for a header block's frame, holds it and collects the payload.
    /// Returns the input not yet used.
    fn frame<'a>(&mut self, input: &'a [u8], out: &mut Vec<u8>) -> Result<&'a [u8], Error> {
        let Some((header, rest)) = self.take(HEADER_LEN, input) else {
            return Ok(&[]);
        };
        let len =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        if header[3] == HEADERS || header[3] == CONTINUATION {
            let held = self.block.as_ref().map_or(0, |b| b.fragment.len());
            if held + len > self.max_list {
                return Err(Error::TooLarge(self.max_list));
            }
            self.partial = header;
            self.state = State::HeaderFrame(len);
            return self.collect(len, rest, out);
        }
        if self.block.is_some() {
            return Err(Error::Protocol(
                "a header block was interrupted by another frame",
            ));
        }
        out.extend_from_slice(&header);
        if len > 0 {
            self.state = State::Payload(len);
        }
        Ok(rest)
    }

    /// Adds to the HEADERS or CONTINUATION frame being collected (`len`
    /// bytes of payload), and reads it once it is whole.
    fn collect<'a>(
        &mut self,
        len: usize,
        input: &'a [u8],
        out: &mut Vec<u8>,
    ) -> Result<&'a [u8], Error> {
        let Some((frame, rest)) = self.take(HEADER_LEN + len, input) else {
            return Ok(&[]);
        };
        self.state = State::Frames;
        self.header_frame(&frame, out)?;
        Ok(rest)
    }

    /// `want` bytes from what is held plus `input`, and the rest of the
    /// input; None (with everything held) while there are not enough.
    fn take<'a>(&mut self, want: usize, input: &'a [u8]) -> Option<(Vec<u8>, &'a [u8])> {
        let n = want.saturating_sub(self.partial.len()).min(input.len());
        self.partial.extend_from_slice(&input[..n]);
        if self.partial.len() < want {
            return None;
        }
        Some((std::mem::take(&mut self.partial), &input[n..]))
    }

    /// A complete HEADERS or CONTINUATION frame.
    fn header_frame(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let (header, payload) = frame.split_at(HEADER_LEN);
        let (kind, flags) = (header[3], header[4]);
        let stream: [u8; 4] = [header[5], header[6], header[7], header[8]];
        let fragment = if kind == HEADERS {
            if self.block.is_some() {
                return Err(Error::Protocol("a header block was interrupted by HEADERS"));
            }
            let (priority, fragment) = headers_payload(flags, payload)?;
            self.block = Some(Block {
                stream,
                end_stream: flags & END_STREAM != 0,
                priority,
                fragment: Vec::new(),
                raw: Vec::new(),
            });
            fragment
        } else {
            match &self.block {
                Some(b) if b.stream == stream => payload,
                Some(_) => return Err(Error::Protocol("CONTINUATION on another stream")),
                None => return Err(Error::Protocol("CONTINUATION without HEADERS")),
            }
        };
        let Some(block) = self.block.as_mut() else {
            return Err(Error::Protocol("CONTINUATION without HEADERS"));
        };
        block.fragment.extend_from_slice(fragment);
        if !self.rewriting {
            block.raw.extend_from_slice(frame);
        }
        if flags & END_HEADERS == 0 {
            return Ok(());
        }
        if let Some(block) = self.block.take() {
            let (fields, changed) = self.decode(&block.fragment)?;
            if !self.rewriting && !changed {
                // Only the first block gets here: nothing was changed
                // before it either.
                out.extend_from_slice(&block.raw);
                self.state = State::Passthrough;
            } else {
                self.rewriting = true;
                write_block(&block, &encode(&fields), out);
            }
        }
        Ok(())
    }

    /// The block's fields in order, with an unusable authority replaced,
    /// and whether one was.
    fn decode(&mut self, fragment: &[u8]) -> Result<(Fields, bool), Error> {
        let mut fields = Vec::new();
        let mut size = 0usize;
        let mut changed = false;
        let max_list = self.max_list;
        self.decoder.decode(fragment, |name, value| {
            size = size.saturating_add(name.len() + value.len() + 32);
            if size <= max_list {
                let value = match unusable_authority(name, value) {
                    true => {
                        changed = true;
                        LOCALHOST.to_vec()
                    }
                    false => value.to_vec(),
                };
                fields.push((name.to_vec(), value));
            }
        })?;
        if size > self.max_list {
            return Err(Error::TooLarge(self.max_list));
        }
        Ok((fields, changed))
    }
}

/// The priority fields and the header block fragment of a HEADERS
/// frame's payload, its padding removed.
fn headers_payload(flags: u8, payload: &[u8]) -> Result<(Option<[u8; 5]>, &[u8]), Error> {
    let malformed = Error::Protocol("HEADERS frame shorter than its padding and priority");
    let (pad, mut rest) = match flags & PADDED != 0 {
        true => match payload.split_first() {
            Some((&pad, rest)) => (usize::from(pad), rest),
            None => return Err(malformed),
        },
        false => (0, payload),
    };
    let priority = if flags & PRIORITY != 0 {
        let Some((fields, after)) = rest.split_first_chunk::<5>() else {
            return Err(malformed);
        };
        rest = after;
        Some(*fields)
    } else {
        None
    };
    match rest.len().checked_sub(pad) {
        Some(len) => Ok((priority, &rest[..len])),
        None => Err(malformed),
    }
}

/// An `:authority` that is no URI authority: it becomes "localhost".
fn unusable_authority(name: &[u8], value: &[u8]) -> bool {
    name == b":authority" && http::uri::Authority::try_from(value).is_err()
}

/// The fields as HPACK literals without indexing, with literal names.
fn encode(fields: &Fields) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0);
        for s in [name, value] {
            integer(s.len(), &mut out);
            out.extend_from_slice(s);
        }
    }
    out
}

/// An HPACK integer with a 7-bit prefix and no flag bits (a string's
/// length, not Huffman coded).
fn integer(mut n: usize, out: &mut Vec<u8>) {
    if n < 0x7f {
        out.push(n as u8);
        return;
    }
    out.push(0x7f);
    n -= 0x7f;
    while n >= 0x80 {
        out.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// The block as HEADERS followed by as many CONTINUATIONs as its size
/// needs, none over MAX_FRAME.
fn write_block(block: &Block, encoded: &[u8], out: &mut Vec<u8>) {
    let first_room = MAX_FRAME - block.priority.map_or(0, |p| p.len());
    let (first, mut rest) = encoded.split_at(encoded.len().min(first_room));
    let mut flags = if block.end_stream { END_STREAM } else { 0 };
    if block.priority.is_some() {
        flags |= PRIORITY;
    }
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    let priority = block.priority.as_ref().map_or(&[][..], |p| &p[..]);
    frame_header(
        priority.len() + first.len(),
        HEADERS,
        flags,
        block.stream,
        out,
    );
    out.extend_from_slice(priority);
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(rest.len().min(MAX_FRAME));
        rest = after;
        let flags = if rest.is_empty() { END_HEADERS } else { 0 };
        frame_header(chunk.len(), CONTINUATION, flags, block.stream, out);
        out.extend_from_slice(chunk);
    }
}

fn frame_header(len: usize, kind: u8, flags: u8, stream: [u8; 4], out: &mut Vec<u8>) {
    let len = (len as u32).to_be_bytes();
    out.extend_from_slice(&len[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream);
}

#[cfg(test)]
mod tests;
