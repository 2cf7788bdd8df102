//! Container logs: the monitor reads PID 1's stdout and stderr and appends
//! each line, with its stream and time, to `DIR/container.log`, rotating by
//! size into `container.log.1` (newest) .. `container.log.N`. berthd reads
//! them back for the Logs RPC. The monitor always reads the pipes, so a
//! container never blocks on a full pipe, also while berthd is down.
//!
//! A record is a frame: payload length (u32 LE), time (i64 LE, unix nanos),
//! stream (u8: 1 stdout, 2 stderr), payload (the line, with its newline
//! when it had one). Output is kept byte for byte. Each file starts with a
//! record of stream 0 whose payload (u64 LE) counts the lines written before
//! it, so a reader that finds files missing knows how many lines went.

mod cri;

pub use cri::CriLog;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const LOG_FILE: &str = "container.log";
/// A line longer than this is cut into records of this size.
pub const MAX_LINE: usize = 16 * 1024;
const HEADER: usize = 13;

/// The first record of a file: the count of lines before it.
pub const META: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// How big the log may grow: each file up to `max_size` bytes, `max_files`
/// files in all (the current one included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_size: u64,
    pub max_files: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size: 10 * 1024 * 1024,
            max_files: 3,
        }
    }
}

/// One line of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub time: i64,
    pub stream: u8,
    pub line: Vec<u8>,
}

/// Appends records to the log, rotating by size.
pub struct Writer {
    dir: PathBuf,
    out: BufWriter<File>,
    size: u64,
    limits: Limits,
    /// Lines written to the log so far, in all files.
    lines: u64,
}

impl Writer {
    pub fn open(dir: &Path, limits: Limits) -> io::Result<Writer> {
        let path = dir.join(LOG_FILE);
        let file = File::options().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        let mut w = Writer {
            dir: dir.to_path_buf(),
            out: BufWriter::new(file),
            size,
            limits,
            lines: 0,
        };
        if size == 0 {
            w.record(0, META, &0u64.to_le_bytes())?;
            w.flush()?;
        } else {
            let mut f = File::open(&path)?;
            let (lines, _) = count(&mut f, 0, u64::MAX)?;
            w.lines = lines_before(&mut f)?.unwrap_or(0) + lines;
        }
        Ok(w)
    }

    pub fn write(&mut self, time: i64, stream: u8, line: &[u8]) -> io::Result<()> {
        let len = (HEADER + line.len()) as u64;
        if self.size > 0 && self.size + len > self.limits.max_size {
            self.rotate()?;
        }
        self.record(time, stream, line)?;
        self.lines += 1;
        Ok(())
    }

    fn record(&mut self, time: i64, stream: u8, line: &[u8]) -> io::Result<()> {
        self.out.write_all(&(line.len() as u32).to_le_bytes())?;
        self.out.write_all(&time.to_le_bytes())?;
        self.out.write_all(&[stream])?;
        self.out.write_all(line)?;
        self.size += (HEADER + line.len()) as u64;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// container.log.(i) -> .(i+1), the oldest dropped; container.log ->
    /// .1; a new container.log.
    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let keep = self.limits.max_files.max(1) - 1;
        let name = |i: u32| self.dir.join(format!("{LOG_FILE}.{i}"));
        if keep == 0 {
            std::fs::remove_file(self.dir.join(LOG_FILE))?;
        } else {
            let _ = std::fs::remove_file(name(keep));
            for i in (1..keep).rev() {
                let _ = std::fs::rename(name(i), name(i + 1));
            }
            std::fs::rename(self.dir.join(LOG_FILE), name(1))?;
        }
        let file = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join(LOG_FILE))?;
        self.out = BufWriter::new(file);
        self.size = 0;
        let lines = self.lines;
        self.record(0, META, &lines.to_le_bytes())?;
        self.flush()
    }
}

/// Cuts a stream of bytes into lines (kept with their newline), and lines
/// longer than MAX_LINE into pieces.
#[derive(Default)]
pub struct Splitter {
    buf: Vec<u8>,
}

impl Splitter {
    pub fn push(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8])) {
        while let Some(i) = data.iter().position(|b| *b == b'\n') {
            let (line, rest) = data.split_at(i + 1);
            if self.buf.is_empty() {
                line.chunks(MAX_LINE).for_each(&mut *emit);
            } else {
                self.buf.extend_from_slice(line);
                self.buf.chunks(MAX_LINE).for_each(&mut *emit);
                self.buf.clear();
            }
            data = rest;
        }
        self.buf.extend_from_slice(data);
        while self.buf.len() >= MAX_LINE {
            let rest = self.buf.split_off(MAX_LINE);
            emit(&self.buf);
            self.buf = rest;
        }
    }

    /// Emits what is left (a last line without a newline).
    pub fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(&self.buf);
            self.buf.clear();
        }
    }
}

/// The log files of `dir`, oldest first.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix(LOG_FILE)?.strip_prefix('.')?;
            Some((n.parse().ok()?, e.path()))
        })
        .collect();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    let current = dir.join(LOG_FILE);
    if current.exists() {
        out.push(current);
    }
    out
}

/// Reads the complete records of `file` from `offset` on; returns them
/// (lines only, no META records) and the offset after the last complete
/// one.
#[cfg(test)]
pub fn read_from(file: &mut File, offset: u64) -> io::Result<(Vec<Record>, u64)> {
    read_chunk(file, offset, u64::MAX)
}

/// Like `read_from`, reading about `max` bytes at most (always at least one
/// whole record, if there is one).
pub fn read_chunk(file: &mut File, offset: u64, max: u64) -> io::Result<(Vec<Record>, u64)> {
    file.seek(SeekFrom::Start(offset))?;
    let mut r = io::BufReader::with_capacity(64 << 10, file);
    let mut out = Vec::new();
    let mut at = offset;
    while at - offset < max {
        let Some((len, time, stream)) = header(&mut r)? else {
            break;
        };
        let mut line = vec![0; len as usize];
        if !read_full(&mut r, &mut line)? {
            break;
        }
        at += HEADER as u64 + len;
        if stream != META {
            out.push(Record { time, stream, line });
        }
    }
    Ok((out, at))
}

/// The next record's header, or None at the end (or a torn header).
fn header(r: &mut impl Read) -> io::Result<Option<(u64, i64, u8)>> {
    let mut h = [0u8; HEADER];
    if !read_full(r, &mut h)? {
        return Ok(None);
    }
    let len = u32::from_le_bytes(h[0..4].try_into().expect("4 bytes"));
    let time = i64::from_le_bytes(h[4..12].try_into().expect("8 bytes"));
    Ok(Some((len as u64, time, h[12])))
}

/// Fills `buf`; false if the input ended first.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The count of lines written before `file`, from its first record; None
/// for a file without one.
pub fn lines_before(file: &mut File) -> io::Result<Option<u64>> {
    file.seek(SeekFrom::Start(0))?;
    let mut r = io::BufReader::with_capacity(64, file);
    match header(&mut r)? {
        Some((8, _, META)) => {
            let mut n = [0u8; 8];
            Ok(read_full(&mut r, &mut n)?.then(|| u64::from_le_bytes(n)))
        }
        _ => Ok(None),
    }
}

/// Where a record is, and what a query needs to know of it without
/// reading its line.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub offset: u64,
    pub time: i64,
    pub stream: u8,
}

/// Walks the records of `file` from `offset` to `end` (or its end)
/// reading only their headers; calls `each` for every line. Returns the
/// count of lines and the offset after the last complete record.
pub fn scan(
    file: &mut File,
    offset: u64,
    end: u64,
    each: &mut impl FnMut(Entry),
) -> io::Result<(u64, u64)> {
    file.seek(SeekFrom::Start(offset))?;
    let size = file.metadata()?.len().min(end);
    let mut r = io::BufReader::with_capacity(64 << 10, file);
    let (mut at, mut lines) = (offset, 0);
    while at < size {
        let Some((len, time, stream)) = header(&mut r)? else {
            break;
        };
        if at + HEADER as u64 + len > size {
            break;
        }
        r.seek_relative(len as i64)?;
        if stream != META {
            each(Entry {
                offset: at,
                time,
                stream,
            });
            lines += 1;
        }
        at += HEADER as u64 + len;
    }
    Ok((lines, at))
}

/// The count of lines from `offset` to `end` and the offset after them.
pub fn count(file: &mut File, offset: u64, end: u64) -> io::Result<(u64, u64)> {
    scan(file, offset, end, &mut |_| {})
}

/// The record at `offset` (a line).
pub fn read_at(file: &mut File, offset: u64) -> io::Result<Option<Record>> {
    Ok(read_chunk(file, offset, 1)?.0.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_long_lines() {
        let mut s = Splitter::default();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut emit = |l: &[u8]| got.push(l.to_vec());
        s.push(b"a\nb", &mut emit);
        s.push(b"c\n\nd", &mut emit);
        s.finish(&mut emit);
        let long = vec![b'x'; MAX_LINE + 5];
        s.push(&long, &mut emit);
        s.push(b"\n", &mut emit);
        // In one write, with its newline.
        let mut whole = vec![b'y'; 2 * MAX_LINE + 1];
        whole.push(b'\n');
        s.push(&whole, &mut emit);
        assert_eq!(
            got[..4],
            [
                b"a\n".to_vec(),
                b"bc\n".to_vec(),
                b"\n".to_vec(),
                b"d".to_vec()
            ]
        );
        assert_eq!(got[4].len(), MAX_LINE);
        assert_eq!(got[5], b"xxxxx\n");
        assert_eq!((got[6].len(), got[7].len()), (MAX_LINE, MAX_LINE));
        assert_eq!(got[8], b"y\n");
        assert_eq!(got.len(), 9);
    }

    #[test]
    fn writes_rotates_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("berth-logs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let limits = Limits {
            max_size: 100,
            max_files: 3,
        };
        let mut w = Writer::open(&dir, limits).unwrap();
        for i in 0..30 {
            w.write(
                i,
                STDOUT + (i % 2) as u8,
                format!("line {i:02}\n").as_bytes(),
            )
            .unwrap();
        }
        w.flush().unwrap();
        let files = files(&dir);
        assert_eq!(files.len(), 3);
        let mut all = Vec::new();
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() <= 100);
            let (recs, end) = read_from(&mut File::open(f).unwrap(), 0).unwrap();
            assert_eq!(end, std::fs::metadata(f).unwrap().len());
            all.extend(recs);
        }
        // The newest lines, in order, each with its stream and time.
        let last = all.last().unwrap();
        assert_eq!(
            (last.time, last.stream, last.line.as_slice()),
            (29, STDERR, &b"line 29\n"[..])
        );
        for w in all.windows(2) {
            assert_eq!(w[0].time + 1, w[1].time);
        }
        // Each file says how many lines came before it.
        let befores: Vec<Option<u64>> = files
            .iter()
            .map(|f| lines_before(&mut File::open(f).unwrap()).unwrap())
            .collect();
        let counts: Vec<u64> = files
            .iter()
            .map(|f| count(&mut File::open(f).unwrap(), 0, u64::MAX).unwrap().0)
            .collect();
        assert_eq!(befores[2], Some(30 - counts[2]));
        assert_eq!(befores[1], Some(30 - counts[2] - counts[1]));
        // A writer opened again goes on counting.
        drop(w);
        let mut w = Writer::open(&dir, limits).unwrap();
        assert_eq!(w.lines, 30);
        w.write(30, STDOUT, b"line 30\n").unwrap();
        w.flush().unwrap();
        // A torn last record is not returned.
        let cur = dir.join(LOG_FILE);
        let len = std::fs::metadata(&cur).unwrap().len();
        let mut f = File::options().append(true).open(&cur).unwrap();
        f.write_all(&[9, 0, 0, 0, 1]).unwrap();
        let (_, end) = read_from(&mut File::open(&cur).unwrap(), 0).unwrap();
        assert_eq!(end, len);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
