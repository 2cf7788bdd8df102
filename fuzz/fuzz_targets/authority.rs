//! The unix socket's HTTP/2 rewriter on arbitrary input, fed in chunks of
//! any size. Nothing may panic. A connection it passes through comes out
//! byte for byte; otherwise every header block it writes is in frames of
//! at most 16,384 bytes, decodes with a fresh HPACK decoder (it never
//! leaves state in the server's) and carries an :authority the HTTP/2
//! layer accepts. Header lists a client encodes with its dynamic table
//! come out field for field, only an unusable authority changed. berth's
//! HPACK decoder and an independent one (loona-hpack) agree on every block
//! both decode.

#![no_main]

use libfuzzer_sys::fuzz_target;
use loona_hpack::{Decoder, Encoder};

#[path = "../../server/daemon/authority.rs"]
mod authority;
#[path = "../../server/daemon/hpack.rs"]
mod hpack;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the rewriter wrote, whether it took everything, and whether it
/// was passing the connection through at the end.
fn rewrite(input: &[u8], chunk: usize) -> (Vec<u8>, bool, bool) {
    let mut r = authority::Rewriter::new(64 << 10);
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        if r.feed(piece, &mut out).is_err() {
            return (out, false, r.passing_through());
        }
    }
    (out, true, r.passing_through())
}

/// The header blocks written, decoded; frames of other kinds are skipped.
fn blocks(mut out: &[u8]) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    assert!(out.starts_with(PREFACE) || out.len() < PREFACE.len());
    out = out.get(PREFACE.len()..).unwrap_or_default();
    let mut found = Vec::new();
    let mut fragment = Vec::new();
    while out.len() >= 9 {
        let len = usize::from(out[0]) << 16 | usize::from(out[1]) << 8 | usize::from(out[2]);
        let (kind, flags) = (out[3], out[4]);
        let Some(payload) = out.get(9..9 + len) else { break };
        out = &out[9 + len..];
        if kind != 0x1 && kind != 0x9 {
            continue;
        }
        assert!(len <= 16_384, "a header frame of {len} bytes");
        assert_eq!(flags & 0x8, 0, "padding written");
        let skip = if kind == 0x1 && flags & 0x20 != 0 { 5 } else { 0 };
        fragment.extend_from_slice(&payload[skip..]);
        if flags & 0x4 != 0 {
            let mut fresh = Decoder::new();
            fresh.set_max_allowed_table_size(0);
            let fields = fresh.decode(&fragment).expect("a block that decodes alone");
            for (name, value) in &fields {
                if name == b":authority" {
                    http::uri::Authority::try_from(&value[..]).expect("a usable authority");
                }
            }
            found.push(fields);
            fragment.clear();
        }
    }
    found
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);

    // The bytes as one header block, to both decoders.
    let mut ours = Vec::new();
    let decoded = hpack::Decoder::new(4096).decode(rest, |n, v| ours.push((n.to_vec(), v.to_vec())));
    let mut other = Decoder::new();
    other.set_max_allowed_table_size(4096);
    if let (Ok(()), Ok(theirs)) = (decoded, other.decode(rest)) {
        assert_eq!(ours, theirs, "the two HPACK decoders disagree");
    }

    // The bytes as frames after the preface.
    let mut input = PREFACE.to_vec();
    input.extend_from_slice(rest);
    let (out, ok, passing) = rewrite(&input, chunk);
    match ok && passing {
        true => assert_eq!(out, input, "a connection passed through was changed"),
        false => drop(blocks(&out)),
    }

    // The bytes as header fields (name and value split at NUL bytes) a
    // client sends in three requests, indexing what it can.
    let parts: Vec<&[u8]> = rest.split(|&b| b == 0).collect();
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = parts
        .chunks_exact(2)
        .map(|p| (p[0].to_vec(), p[1].to_vec()))
        .collect();
    fields.push((b":authority".to_vec(), parts[0].to_vec()));
    let mut encoder = Encoder::new();
    let mut input = PREFACE.to_vec();
    for stream in [1, 3, 5] {
        let block = encoder.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])));
        input.extend(frame(0x1, 0x4, stream, &block));
    }
    let (out, ok, passing) = rewrite(&input, chunk);
    let size: usize = fields.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
    if size > 64 << 10 {
        return;
    }
    assert!(ok, "a well-formed connection was refused");
    let usable = |v: &[u8]| http::uri::Authority::try_from(v).is_ok();
    let needs = fields
        .iter()
        .any(|(n, v)| n == b":authority" && !usable(v));
    if !needs {
        assert!(passing && out == input, "a connection that needed nothing was changed");
        return;
    }
    let expected: Vec<_> = fields
        .iter()
        .map(|(n, v)| match n == b":authority" && !usable(v) {
            true => (n.clone(), b"localhost".to_vec()),
            false => (n.clone(), v.clone()),
        })
        .collect();
    assert_eq!(blocks(&out), vec![expected; 3]);
});
