//! The attach socket, `DIR/attach.sock`, both halves: the monitor listens
//! on it for as long as PID 1 runs; berthd connects one stream per Attach
//! call. Both ways the bytes are frames: a kind byte, a little-endian u32
//! length, then that many bytes.
//!
//! ```text
//! berthd -> monitor: STDIN data, CLOSE_STDIN, RESIZE rows:u16 cols:u16
//! monitor -> berthd: STDOUT data, STDERR data, ...,
//!                    END exit_code:i32 signal:i32 (PID 1 ended)
//! ```
//!
//! A connection the monitor closes without END was cut off: its reader
//! fell too far behind.

use std::os::fd::AsRawFd;

pub const SOCKET: &str = "attach.sock";

pub const STDIN: u8 = 1;
pub const CLOSE_STDIN: u8 = 2;
pub const RESIZE: u8 = 3;
/// Reopen the CRI log (the kubelet rotated it); answered LOG_REOPENED.
pub const REOPEN_LOG: u8 = 4;

pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const END: u8 = 3;
pub const LOG_REOPENED: u8 = 4;

const HEADER: usize = 5;
/// No frame is larger; a bigger length is a broken peer.
pub const MAX_FRAME: usize = 1 << 20;

/// The path of the socket in the directory open as `dir` (any fd of it):
/// through /proc, so that it fits in a socket address however deep the
/// daemon's root is.
pub fn socket_path(dir: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd())
}

/// Appends one frame to `out`.
pub fn frame(kind: u8, data: &[u8], out: &mut Vec<u8>) {
    debug_assert!(data.len() <= MAX_FRAME);
    out.push(kind);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
}

/// A RESIZE frame's payload.
pub fn size(rows: u16, cols: u16) -> [u8; 4] {
    let (r, c) = (rows.to_le_bytes(), cols.to_le_bytes());
    [r[0], r[1], c[0], c[1]]
}

/// A RESIZE frame's size, if its payload is one.
pub fn parse_size(data: &[u8]) -> Option<(u16, u16)> {
    match data {
        [r0, r1, c0, c1] => Some((
            u16::from_le_bytes([*r0, *r1]),
            u16::from_le_bytes([*c0, *c1]),
        )),
        _ => None,
    }
}

/// An END frame's payload.
pub fn exit(exit_code: i32, signal: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&exit_code.to_le_bytes());
    b[4..].copy_from_slice(&signal.to_le_bytes());
    b
}

/// An END frame's (exit code, signal), if its payload is one.
pub fn parse_exit(data: &[u8]) -> Option<(i32, i32)> {
    let code = i32::from_le_bytes(data.get(..4)?.try_into().ok()?);
    let signal = i32::from_le_bytes(data.get(4..8)?.try_into().ok()?);
    Some((code, signal))
}

/// Frames out of a byte stream read in any pieces.
#[derive(Default)]
pub struct Frames {
    buf: Vec<u8>,
}

/// A frame longer than MAX_FRAME: the peer is not speaking this protocol.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLong;

impl Frames {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole frame, if one has come.
    pub fn next(&mut self) -> Result<Option<(u8, Vec<u8>)>, TooLong> {
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_le_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(TooLong);
        }
        if self.buf.len() < HEADER + len {
            return Ok(None);
        }
        let kind = self.buf[0];
        let data = self.buf[HEADER..HEADER + len].to_vec();
        self.buf.drain(..HEADER + len);
        Ok(Some((kind, data)))
    }

    /// Bytes of an unfinished frame.
    pub fn partial(&self) -> bool {
        !self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_out_whole_whatever_the_pieces() {
        let mut wire = Vec::new();
        frame(STDIN, b"hello", &mut wire);
        frame(CLOSE_STDIN, b"", &mut wire);
        frame(RESIZE, &size(50, 132), &mut wire);
        let mut frames = Frames::default();
        let mut got = Vec::new();
        for b in &wire {
            frames.push(std::slice::from_ref(b));
            while let Some(f) = frames.next().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(
            got,
            vec![
                (STDIN, b"hello".to_vec()),
                (CLOSE_STDIN, vec![]),
                (RESIZE, size(50, 132).to_vec())
            ]
        );
        assert_eq!(parse_size(&got[2].1), Some((50, 132)));
        assert_eq!(parse_exit(&exit(137, 9)), Some((137, 9)));
        assert_eq!(parse_exit(b"short"), None);
        assert!(!frames.partial());
    }

    #[test]
    fn a_frame_too_long_is_refused() {
        let mut frames = Frames::default();
        frames.push(&[STDIN, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(frames.next(), Err(TooLong));
    }
}
