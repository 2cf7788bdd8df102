//! An HPACK decoder (RFC 7541) for the authority rewriter: a client's
//! header blocks, decoded with that client's dynamic table. Strings the
//! client Huffman-coded are decoded by httlib-huffman's table decoder.

use std::borrow::Cow;
use std::collections::VecDeque;

/// Why a header block cannot be decoded: a COMPRESSION_ERROR in HTTP/2.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("the block ends inside a field")]
    Truncated,
    #[error("an integer is larger than HPACK allows")]
    Overflow,
    #[error("index {0} is in neither table")]
    Index(usize),
    #[error("a Huffman-coded string does not decode")]
    Huffman,
    #[error("a table size update to {0} exceeds the {1} bytes allowed")]
    TableSize(usize, usize),
    #[error("a table size update after the first field")]
    LateSizeUpdate,
}

/// RFC 7541 Appendix A: the static table, indices 1 to 61.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// A field's name and value, borrowed where they can be.
type Field<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// What an entry costs in the dynamic table besides its bytes (4.1).
const ENTRY_OVERHEAD: usize = 32;

/// One direction's decoding state: the dynamic table.
pub struct Decoder {
    /// Newest first: index 62 is `table[0]`.
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
    /// The most the encoder may set `max_size` to (the server's
    /// SETTINGS_HEADER_TABLE_SIZE).
    allowed: usize,
}

impl Decoder {
    pub fn new(allowed: usize) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: allowed,
            allowed,
        }
    }

    /// Decodes one whole header block, calling `field` with each name and
    /// value in order.
    pub fn decode(
        &mut self,
        block: &[u8],
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), Error> {
        let mut rest = block;
        let mut first = true;
        while let Some(&b) = rest.first() {
            if b & 0x80 != 0 {
                let index = integer(&mut rest, 7)?;
                let (name, value) = self.entry(index)?;
                field(name, value);
            } else if b & 0x40 != 0 {
                let (name, value) = self.literal(&mut rest, 6)?;
                let (name, value) = (name.into_owned(), value.into_owned());
                field(&name, &value);
                self.insert(name, value);
            } else if b & 0x20 != 0 {
                if !first {
                    return Err(Error::LateSizeUpdate);
                }
                let size = integer(&mut rest, 5)?;
                if size > self.allowed {
                    return Err(Error::TableSize(size, self.allowed));
                }
                self.max_size = size;
                self.evict(0);
                continue;
            } else {
                // Without indexing (0000) or never indexed (0001).
                let (name, value) = self.literal(&mut rest, 4)?;
                field(&name, &value);
            }
            first = false;
        }
        Ok(())
    }

    /// A literal field whose name is an index (with a `prefix`-bit
    /// integer) or a string, followed by its value.
    fn literal<'s, 'b: 's>(&'s self, rest: &mut &'b [u8], prefix: u8) -> Result<Field<'s>, Error> {
        let index = integer(rest, prefix)?;
        let name = match index {
            0 => string(rest)?,
            i => Cow::Borrowed(self.entry(i)?.0),
        };
        Ok((name, string(rest)?))
    }

    fn entry(&self, index: usize) -> Result<(&[u8], &[u8]), Error> {
        match index {
            0 => Err(Error::Index(0)),
            i if i <= STATIC.len() => {
                let (n, v) = STATIC[i - 1];
                Ok((n.as_bytes(), v.as_bytes()))
            }
            i => self
                .table
                .get(i - STATIC.len() - 1)
                .map(|(n, v)| (n.as_slice(), v.as_slice()))
                .ok_or(Error::Index(i)),
        }
    }

    /// Adds an entry (4.4): older ones are evicted to make room; one larger
    /// than the table empties it and is not kept.
    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        self.size += size;
        self.table.push_front((name, value));
    }

    /// Evicts the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + ENTRY_OVERHEAD,
                None => break,
            }
        }
    }
}

/// An integer with a `prefix`-bit prefix (5.1), taken from the front of
/// `rest`. At most 2^28 or so: larger ones are no size a block can have.
fn integer(rest: &mut &[u8], prefix: u8) -> Result<usize, Error> {
    let (&first, mut tail) = rest.split_first().ok_or(Error::Truncated)?;
    let mask = (1usize << prefix) - 1;
    let mut value = usize::from(first) & mask;
    if value == mask {
        let mut shift = 0;
        loop {
            let (&b, after) = tail.split_first().ok_or(Error::Truncated)?;
            tail = after;
            if shift > 21 {
                return Err(Error::Overflow);
            }
            value += usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    *rest = tail;
    Ok(value)
}

/// A string literal (5.2), Huffman-coded or not, taken from the front of
/// `rest`.
fn string<'b>(rest: &mut &'b [u8]) -> Result<Cow<'b, [u8]>, Error> {
    let huffman = rest.first().is_some_and(|b| b & 0x80 != 0);
    let len = integer(rest, 7)?;
    if len > rest.len() {
        return Err(Error::Truncated);
    }
    let (raw, after) = rest.split_at(len);
    *rest = after;
    if !huffman {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(len * 8 / 5);
    httlib_huffman::decode(raw, &mut out, httlib_huffman::DecoderSpeed::FourBits)
        .map_err(|_| Error::Huffman)?;
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Fields = Vec<(Vec<u8>, Vec<u8>)>;

    fn fields(d: &mut Decoder, block: &[u8]) -> Result<Fields, Error> {
        let mut out = Vec::new();
        d.decode(block, |n, v| out.push((n.to_vec(), v.to_vec())))?;
        Ok(out)
    }

    #[test]
    fn the_static_table_is_the_rfcs() {
        // Checked against another implementation's table.
        let mut other = loona_hpack::Decoder::new();
        for i in 1..=61u8 {
            let ours = fields(&mut Decoder::new(4096), &[0x80 | i]).unwrap();
            assert_eq!(ours, other.decode(&[0x80 | i]).unwrap(), "index {i}");
        }
    }

    #[test]
    fn rfc_7541_appendix_c_4_requests_with_huffman_coding() {
        let mut d = Decoder::new(4096);
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let text = |f: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<(String, String)> {
            f.into_iter()
                .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
                .collect()
        };
        let first = fields(&mut d, &hex("828684418cf1e3c2e5f23a6ba0ab90f4ff")).unwrap();
        let want = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ];
        assert_eq!(text(first), want.map(|(n, v)| (n.into(), v.into())));
        assert_eq!(d.size, 57);
        let second = fields(&mut d, &hex("828684be5886a8eb10649cbf")).unwrap();
        let want = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
            ("cache-control", "no-cache"),
        ];
        assert_eq!(text(second), want.map(|(n, v)| (n.into(), v.into())));
        assert_eq!(d.size, 110);
        let third = fields(
            &mut d,
            &hex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"),
        )
        .unwrap();
        let want = [
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ];
        assert_eq!(text(third), want.map(|(n, v)| (n.into(), v.into())));
        assert_eq!(d.size, 164);
    }

    #[test]
    fn eviction_and_size_updates() {
        let mut d = Decoder::new(100);
        // Each entry costs 1 + 1 + 32 = 34: the third evicts the first.
        for v in [b'a', b'b', b'c'] {
            fields(&mut d, &[0x40, 1, b'n', 1, v]).unwrap();
        }
        assert_eq!(
            fields(&mut d, &[0x80 | 62, 0x80 | 63]).unwrap(),
            [
                (b"n".to_vec(), b"c".to_vec()),
                (b"n".to_vec(), b"b".to_vec())
            ]
        );
        assert_eq!(fields(&mut d, &[0x80 | 64]), Err(Error::Index(64)));
        // A size update to 0 empties the table; past the allowed size, or
        // after a field, it is an error.
        assert!(fields(&mut d, &[0x20]).unwrap().is_empty());
        assert_eq!(fields(&mut d, &[0x80 | 62]), Err(Error::Index(62)));
        assert_eq!(
            fields(&mut d, &[0x3f, 0x46]),
            Err(Error::TableSize(101, 100))
        );
        assert_eq!(fields(&mut d, &[0x82, 0x20]), Err(Error::LateSizeUpdate));
    }

    #[test]
    fn truncated_and_oversized_input_is_an_error() {
        let mut d = Decoder::new(4096);
        assert_eq!(fields(&mut d, &[0x40, 5, b'a']), Err(Error::Truncated));
        assert_eq!(fields(&mut d, &[0xff]), Err(Error::Truncated));
        assert_eq!(
            fields(&mut d, &[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(Error::Overflow)
        );
        assert_eq!(fields(&mut d, &[0x00, 0x81, 0xff, 0]), Err(Error::Huffman));
        assert_eq!(fields(&mut d, &[0x80]), Err(Error::Index(0)));
    }
}
