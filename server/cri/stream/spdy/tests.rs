use super::*;

#[test]
fn the_dictionary_is_the_drafts() {
    // Its Adler-32, which zlib streams with a preset dictionary carry
    // and Go's spdy framer checks.
    let d = dictionary();
    assert_eq!(d.len(), 1423);
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &d {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    assert_eq!(b << 16 | a, 0xe3c6_a7c2);
}

fn headers(pairs: &[(&str, &str)]) -> Headers {
    Headers(
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    )
}

#[test]
fn frames_round_trip_with_headers_compressed_across_blocks() {
    let frames = vec![
        Frame::SynStream {
            stream: 1,
            fin: false,
            headers: headers(&[("streamtype", "error")]),
        },
        Frame::SynStream {
            stream: 3,
            fin: false,
            headers: headers(&[("streamtype", "stdout"), ("x", "a\0b")]),
        },
        Frame::SynReply {
            stream: 3,
            fin: false,
            headers: Headers::default(),
        },
        Frame::Data {
            stream: 3,
            fin: true,
            data: b"hello".to_vec(),
        },
        Frame::Ping(7),
        Frame::RstStream {
            stream: 5,
            status: 3,
        },
        Frame::GoAway { last: 3, status: 0 },
        Frame::Headers {
            stream: 1,
            fin: true,
            headers: headers(&[("streamtype", "error")]),
        },
    ];
    let mut enc = Encoder::default();
    let mut wire = Vec::new();
    for f in &frames {
        enc.encode(f, &mut wire);
    }
    // Fed a byte at a time: frames come out whole, in order.
    let mut dec = Decoder::default();
    let mut got = Vec::new();
    for b in &wire {
        dec.push(std::slice::from_ref(b));
        while let Some(f) = dec.next().unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got, frames);
    assert_eq!(got[1].clone(), frames[1]);
    if let Frame::SynStream { headers, .. } = &got[1] {
        assert_eq!(headers.get("StreamType"), Some("stdout"));
        assert_eq!(headers.get("x"), Some("a"));
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut dec = Decoder::default();
    // Version 2.
    dec.push(&[0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1]);
    assert_eq!(dec.next(), Err(Error::Version(2)));
    // A SYN_STREAM too short, and one whose block is not zlib.
    let mut dec = Decoder::default();
    dec.push(&[0x80, 0x03, 0x00, 0x01, 0, 0, 0, 2, 0, 1]);
    assert!(matches!(dec.next(), Err(Error::Malformed(_))));
    let mut dec = Decoder::default();
    dec.push(&[
        0x80, 0x03, 0x00, 0x01, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2,
    ]);
    assert_eq!(dec.next(), Err(Error::Zlib));
}

#[test]
fn a_header_block_that_inflates_too_far_is_refused() {
    // A million zero bytes compress to a few KiB.
    let mut deflate = Compress::new(Compression::best(), true);
    deflate.set_dictionary(&dictionary()).unwrap();
    let mut block = Vec::with_capacity(1 << 20);
    deflate
        .compress_vec(&vec![0u8; 1 << 20], &mut block, FlushCompress::Sync)
        .unwrap();
    let mut body = 1u32.to_be_bytes().to_vec();
    body.extend_from_slice(&[0; 6]);
    body.extend(block);
    let mut frame = vec![0x80, 0x03, 0x00, 0x01];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend(body);
    let mut dec = Decoder::default();
    dec.push(&frame);
    assert!(matches!(dec.next(), Err(Error::Malformed(_))));
}
