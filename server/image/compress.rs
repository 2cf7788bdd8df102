//! Layer and archive streams: their compression told by their first
//! bytes (gzip, zstd or none), and the decompressed stream bounded, so a
//! decompression bomb stops at the limit.

use std::io::{self, BufRead, BufReader, Read};

/// How a stream is compressed, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// The OCI layer media type.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// The stream decompressed as its first bytes say, limited to `max`
/// bytes out.
pub fn decompressed<'a, R: Read + 'a>(r: R, max: u64) -> io::Result<Box<dyn Read + 'a>> {
    let mut r = BufReader::with_capacity(256 << 10, r);
    let head = r.fill_buf()?;
    let out: Box<dyn Read + 'a> = match Compression::detect(head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        Compression::None => Box::new(r),
    };
    Ok(Box::new(Bounded {
        inner: out,
        left: max,
    }))
}

/// Fails a read past `left` bytes.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::FileTooLarge,
                "the layer expands beyond the daemon's --max-layer-size",
            )
        })?;
        Ok(n)
    }
}
