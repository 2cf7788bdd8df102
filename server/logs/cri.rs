//! The CRI's log format, written beside berth's own log when a container
//! has a `cri_log` path (the kubelet's log_path): a line per piece of
//! output, `2026-12-05T08:04:05.289970727Z stdout F text`, with `P` for
//! a line cut short (MAX_LINE) and `F` for one that ends (with its
//! newline, or the last one without). Not rotated here: the kubelet
//! renames the file and asks for a reopen, which makes a new one.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct CriLog {
    path: PathBuf,
    out: BufWriter<File>,
}

impl CriLog {
    /// Opens (appends to) `path`, making its directory if needed.
    pub fn open(path: &Path) -> io::Result<CriLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(CriLog {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 << 10, file),
        })
    }

    /// A piece of output: `line` as the splitter gave it; `last` when it
    /// is what was left at the end of the stream.
    pub fn write(&mut self, time: i64, stream: u8, line: &[u8], last: bool) -> io::Result<()> {
        let (text, tag) = match line.strip_suffix(b"\n") {
            Some(text) => (text, "F"),
            None if last => (line, "F"),
            None => (line, "P"),
        };
        let stream = match stream {
            super::STDERR => "stderr",
            _ => "stdout",
        };
        write!(self.out, "{} {stream} {tag} ", timestamp(time))?;
        self.out.write_all(text)?;
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes, closes and opens the path again (a new file if the old
    /// one was renamed away).
    pub fn reopen(&mut self) -> io::Result<()> {
        let _ = self.out.flush();
        *self = CriLog::open(&self.path)?;
        Ok(())
    }
}

/// RFC 3339 with nanoseconds, in UTC.
pub fn timestamp(nanos: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(nanos.max(0) as u64);
    humantime::format_rfc3339_nanos(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_in_the_cri_format() {
        let dir = std::env::temp_dir().join(format!("berth-cri-log-{}", std::process::id()));
        let path = dir.join("sub/c.log");
        let mut log = CriLog::open(&path).unwrap();
        let t = 1_764_921_845_289_970_727;
        log.write(t, super::super::STDOUT, b"hello\n", false)
            .unwrap();
        log.write(t, super::super::STDERR, b"cut", false).unwrap();
        log.write(t, super::super::STDERR, b"end", true).unwrap();
        log.flush().unwrap();
        std::fs::rename(&path, dir.join("old")).unwrap();
        log.reopen().unwrap();
        log.write(t, super::super::STDOUT, b"new\n", false).unwrap();
        log.flush().unwrap();
        let old = std::fs::read_to_string(dir.join("old")).unwrap();
        assert_eq!(
            old,
            "2025-12-05T08:04:05.289970727Z stdout F hello\n\
             2025-12-05T08:04:05.289970727Z stderr P cut\n\
             2025-12-05T08:04:05.289970727Z stderr F end\n"
        );
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!(new, "2025-12-05T08:04:05.289970727Z stdout F new\n");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
