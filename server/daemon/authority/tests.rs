use super::*;
use loona_hpack::Encoder;

/// Header blocks by stream, and the other frames by kind.
type Frames = (Vec<(u32, Fields)>, Vec<(u8, Vec<u8>)>);

fn request(authority: &str, path: &str) -> Fields {
    [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    .iter()
    .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect()
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frame_header(payload.len(), kind, flags, stream.to_be_bytes(), &mut out);
    out.extend_from_slice(payload);
    out
}

/// The header blocks (stream, fields) and other frames (kind, payload) in
/// what the rewriter wrote, decoded as the HTTP/2 layer would.
fn read(mut bytes: &[u8]) -> Frames {
    assert!(bytes.starts_with(PREFACE));
    bytes = &bytes[PREFACE.len()..];
    let mut decoder = loona_hpack::Decoder::new();
    let (mut blocks, mut others, mut fragment) = (Vec::new(), Vec::new(), Vec::new());
    while !bytes.is_empty() {
        let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
        assert!(len <= MAX_FRAME);
        let (kind, flags) = (bytes[3], bytes[4]);
        let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
        let payload = &bytes[HEADER_LEN..HEADER_LEN + len];
        bytes = &bytes[HEADER_LEN + len..];
        match kind {
            HEADERS | CONTINUATION => {
                let skip = if flags & PRIORITY != 0 { 5 } else { 0 };
                assert_eq!(flags & PADDED, 0);
                fragment.extend_from_slice(&payload[skip..]);
                if flags & END_HEADERS != 0 {
                    blocks.push((stream, decoder.decode(&fragment).unwrap()));
                    fragment.clear();
                }
            }
            _ => others.push((kind, payload.to_vec())),
        }
    }
    (blocks, others)
}

/// A connection: the preface, then for each request a HEADERS block and a
/// DATA frame, encoded as a client with a dynamic table would.
fn connection(requests: &[Fields]) -> Vec<u8> {
    let mut encoder = Encoder::new();
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    for (i, fields) in requests.iter().enumerate() {
        let stream = 2 * i as u32 + 1;
        let block = encoder.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])));
        bytes.extend(frame(HEADERS, END_HEADERS, stream, &block));
        bytes.extend(frame(0x0, END_STREAM, stream, b"\0\0\0\0\x02hi"));
    }
    bytes
}

fn rewrite(bytes: &[u8], chunk: usize) -> Result<Vec<u8>, Error> {
    let mut r = Rewriter::new(1 << 20);
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk) {
        r.feed(piece, &mut out)?;
    }
    Ok(out)
}

#[test]
fn a_socket_path_authority_becomes_localhost_in_every_request() {
    let sock = "/run/berth/berth.sock";
    // The second and third requests name the authority by its index in
    // the client's dynamic table.
    let requests = [
        request(sock, "/berth.v1.Containers/List"),
        request(sock, "/berth.v1.Containers/Inspect"),
        request(sock, "/berth.v1.Containers/List"),
    ];
    let bytes = connection(&requests);
    let mut r = Rewriter::new(1 << 20);
    let mut whole = Vec::new();
    r.feed(&bytes, &mut whole).unwrap();
    assert!(!r.passing_through());
    // Read a byte at a time, it is the same.
    assert_eq!(rewrite(&bytes, 1).unwrap(), whole);
    let (blocks, others) = read(&whole);
    assert_eq!(blocks.len(), 3);
    for (i, (stream, fields)) in blocks.iter().enumerate() {
        assert_eq!(*stream, 2 * i as u32 + 1);
        let path = std::str::from_utf8(&requests[i][2].1).unwrap();
        assert_eq!(*fields, request("localhost", path));
    }
    assert_eq!(others.len(), 4);
    assert_eq!(others[1], (0x0, b"\0\0\0\0\x02hi".to_vec()));
    // Whatever the HTTP/2 layer would refuse (an empty one too).
    for odd in ["", "unix:/tmp/a b", "%zz"] {
        let bytes = connection(&[request(odd, "/p")]);
        let (blocks, _) = read(&rewrite(&bytes, 5).unwrap());
        assert_eq!(blocks, [(1, request("localhost", "/p"))]);
    }
}

#[test]
fn a_connection_whose_first_block_needs_nothing_passes_as_it_came() {
    for authority in ["localhost", "berth.example:8080", "[::1]:1"] {
        let bytes = connection(&[request(authority, "/x"), request("/later.sock", "/y")]);
        let mut r = Rewriter::new(1 << 20);
        let mut out = Vec::new();
        for piece in bytes.chunks(7) {
            r.feed(piece, &mut out).unwrap();
        }
        // Byte for byte, the later block too: the HTTP/2 layer judges it.
        assert_eq!(out, bytes);
        assert!(r.passing_through());
    }
    // No :authority at all needs nothing either.
    let mut fields = request("x", "/p");
    fields.remove(3);
    let bytes = connection(&[fields]);
    assert_eq!(rewrite(&bytes, 3).unwrap(), bytes);
}

#[test]
fn padding_priority_and_continuations_are_read() {
    let mut encoder = Encoder::new();
    let fields = request("/tmp/x.sock", "/y");
    let block = encoder.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])));
    let (a, b) = block.split_at(block.len() / 2);
    let mut payload = vec![3]; // pad length
    payload.extend_from_slice(&[0x80, 0, 0, 0, 16]); // exclusive dependency on 0, weight 16
    payload.extend_from_slice(a);
    payload.extend_from_slice(&[0, 0, 0]);
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(HEADERS, END_STREAM | PADDED | PRIORITY, 5, &payload));
    bytes.extend(frame(CONTINUATION, END_HEADERS, 5, b));
    let out = rewrite(&bytes, 3).unwrap();
    let (blocks, _) = read(&out);
    assert_eq!(blocks, [(5, request("localhost", "/y"))]);
    let flags = out[PREFACE.len() + 4];
    assert_eq!(flags, END_STREAM | PRIORITY | END_HEADERS);
    assert_eq!(
        &out[PREFACE.len() + HEADER_LEN..][..5],
        &[0x80, 0, 0, 0, 16]
    );
}

#[test]
fn a_large_block_is_split_into_frames_the_server_accepts() {
    let mut fields = request("/s", "/z");
    fields.push((b"x-big".to_vec(), vec![b'a'; 40_000]));
    let bytes = connection(std::slice::from_ref(&fields));
    let out = rewrite(&bytes, 1000).unwrap();
    let (blocks, _) = read(&out);
    fields[3].1 = b"localhost".to_vec();
    assert_eq!(blocks, [(1, fields)]);
}

#[test]
fn what_is_not_http2_passes_through() {
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(rewrite(get, 2).unwrap(), get);
    // A stream that stops partway through the preface is held.
    let mut r = Rewriter::new(1024);
    let mut out = Vec::new();
    r.feed(&PREFACE[..10], &mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn bad_blocks_end_the_connection() {
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(HEADERS, END_HEADERS, 1, &[0xff, 0xff, 0xff, 0x7f]));
    assert!(matches!(rewrite(&bytes, 64), Err(Error::Compression(_))));

    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(CONTINUATION, END_HEADERS, 1, &[0x82]));
    assert_eq!(
        rewrite(&bytes, 64),
        Err(Error::Protocol("CONTINUATION without HEADERS"))
    );

    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(HEADERS, 0, 1, &[0x82]));
    bytes.extend(frame(0x0, 0, 1, b"x"));
    assert!(matches!(rewrite(&bytes, 64), Err(Error::Protocol(_))));

    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(HEADERS, PADDED, 1, &[9, 0x82]));
    assert!(matches!(rewrite(&bytes, 64), Err(Error::Protocol(_))));

    // An indexed field repeated expands past the limit: refused, however
    // small the block on the wire.
    let mut encoder = Encoder::new();
    let mut block = encoder.encode([(&b"x-a"[..], &[b'v'; 3000][..])]);
    block.extend(std::iter::repeat_n(0xbe, 200)); // index 62: the entry just added
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(HEADERS, END_HEADERS, 1, &block));
    let mut r = Rewriter::new(64 << 10);
    assert_eq!(
        r.feed(&bytes, &mut Vec::new()),
        Err(Error::TooLarge(64 << 10))
    );
}
