//! The CRI streaming server's SPDY/3.1 frame decoder on arbitrary input,
//! fed in chunks of any size. Nothing may panic, and no header block may
//! inflate past its limit. Every frame it reads, written again by the
//! encoder, reads back the same through a fresh decoder (header names as
//! the encoder writes them: lower case).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../server/cri/stream/spdy.rs"]
mod spdy;

use spdy::{Decoder, Encoder, Frame, Headers};

fn lowered(f: &Frame) -> Frame {
    let low = |h: &Headers| {
        Headers(
            h.0.iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                .collect(),
        )
    };
    match f {
        Frame::SynStream { stream, fin, headers } => Frame::SynStream {
            stream: *stream,
            fin: *fin,
            headers: low(headers),
        },
        Frame::SynReply { stream, fin, headers } => Frame::SynReply {
            stream: *stream,
            fin: *fin,
            headers: low(headers),
        },
        Frame::Headers { stream, fin, headers } => Frame::Headers {
            stream: *stream,
            fin: *fin,
            headers: low(headers),
        },
        Frame::RstStream { stream, status } => Frame::RstStream {
            stream: stream & 0x7fff_ffff,
            status: *status,
        },
        Frame::GoAway { last, status } => Frame::GoAway {
            last: last & 0x7fff_ffff,
            status: *status,
        },
        other => other.clone(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(cut).max(1);
    let mut dec = Decoder::default();
    let mut frames = Vec::new();
    'feed: for piece in input.chunks(chunk) {
        dec.push(piece);
        loop {
            match dec.next() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    let mut enc = Encoder::default();
    let mut wire = Vec::new();
    let frames: Vec<Frame> = frames
        .iter()
        .filter(|f| !matches!(f, Frame::Other(_)))
        .map(lowered)
        .collect();
    for f in &frames {
        enc.encode(f, &mut wire);
    }
    let mut again = Decoder::default();
    again.push(&wire);
    for f in &frames {
        assert_eq!(again.next().expect("our own frames decode").as_ref(), Some(f));
    }
    assert_eq!(again.next(), Ok(None));
});
