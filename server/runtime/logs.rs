//! The Logs RPC: a container's log read back as a query asks, then (with
//! follow) new lines as the monitor writes them.
//!
//! A reader is a task on the daemon's runtime; file reads happen in
//! bounded chunks on blocking threads, and between them it waits for the
//! log watch or a change of the container, so a follower holds no thread
//! and never polls. `tail` scans record headers from the newest file back,
//! keeping the positions of the last lines only, so memory stays small
//! whatever the size of the log. A follower whose next file was rotated
//! away before it got there is told how many lines it missed.

use super::container::Container;
use super::error::Result;
use super::log_watch::{Following, LogWatch};
use super::Runtime;
use crate::logs::{self, Entry};
use crate::sys::time::now_nanos;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// What a Logs request asks for.
#[derive(Debug, Clone, Default)]
pub struct LogsQuery {
    pub follow: bool,
    pub tail: Option<usize>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub timestamps: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// One line of output as a reader sends it, or (alone) how many lines a
/// follower missed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogLine {
    /// When it was written, if the query asked for timestamps.
    pub time: Option<i64>,
    pub stream: u8,
    pub line: Vec<u8>,
    pub lost_lines: u64,
}

impl LogsQuery {
    fn wants(&self, r: &logs::Record) -> bool {
        let stream = match r.stream {
            logs::STDOUT => self.stdout,
            logs::STDERR => self.stderr,
            _ => false,
        };
        stream && self.since.is_none_or(|t| r.time >= t) && self.until.is_none_or(|t| r.time <= t)
    }

    fn entry(&self, r: logs::Record) -> LogLine {
        LogLine {
            time: self.timestamps.then_some(r.time),
            stream: r.stream,
            line: r.line,
            lost_lines: 0,
        }
    }
}

impl Runtime {
    /// Streams the container's log as `q` asks; with follow, until the
    /// container stops, the client goes away or the daemon shuts down.
    pub fn logs(&self, key: &str, q: LogsQuery) -> Result<mpsc::Receiver<LogLine>> {
        let c = self.find(key)?;
        let (tx, rx) = mpsc::channel(256);
        let reader = Reader {
            c,
            q,
            tx,
            watch: self.log_watch.clone(),
            shutdown: self.shutdown.clone(),
        };
        tokio::spawn(reader.run());
        Ok(rx)
    }
}

/// How much one blocking read takes in.
const CHUNK: u64 = 1 << 20;
/// At most this much is read without a blocking thread.
const INLINE: u64 = 64 << 10;

/// Where a reader is: a file, what came before it, how far it has read.
struct Cursor {
    file: File,
    inode: u64,
    /// Lines written before this file (None: a file without that record).
    before: Option<u64>,
    /// Lines of this file read so far (wanted or not).
    read: u64,
    offset: u64,
    /// Lines the reader had read when it came to this file: if the file
    /// says more came before it, the difference was rotated away.
    expect: Option<u64>,
}

impl Cursor {
    fn open(path: &std::path::Path) -> io::Result<Cursor> {
        let mut file = File::open(path)?;
        let inode = file.metadata()?.ino();
        let before = logs::lines_before(&mut file)?;
        Ok(Cursor {
            file,
            inode,
            before,
            read: 0,
            offset: 0,
            expect: None,
        })
    }

    /// The count of lines up to the end of what was read.
    fn lines(&self) -> Option<u64> {
        self.before.map(|b| b + self.read)
    }
}

/// Reads on from the cursor, about `max` bytes: in place if little is
/// left (just written, so in the page cache), else on a blocking thread.
async fn read(at: Cursor, max: u64) -> io::Result<(Vec<logs::Record>, Cursor)> {
    let left = at.file.metadata()?.len().saturating_sub(at.offset);
    let go = move || {
        let mut at = at;
        let start = at.offset;
        let (records, end) = logs::read_chunk(&mut at.file, at.offset, max)?;
        // A file just made may not have had its first record when opened;
        // once anything of it is read, that record is there.
        if at.before.is_none() && start == 0 && end > 0 {
            at.before = logs::lines_before(&mut at.file)?;
        }
        at.offset = end;
        at.read += records.len() as u64;
        Ok((records, at))
    };
    match left <= INLINE {
        true => go(),
        false => blocking(go).await,
    }
}

/// Runs in blocking code.
fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> impl std::future::Future<Output = io::Result<T>> {
    let task = tokio::task::spawn_blocking(f);
    async move { task.await.map_err(io::Error::other)? }
}

struct Reader {
    c: Arc<Container>,
    q: LogsQuery,
    tx: mpsc::Sender<LogLine>,
    watch: Arc<LogWatch>,
    shutdown: watch::Receiver<bool>,
}

impl Reader {
    async fn run(mut self) {
        if let Err(e) = self.stream().await {
            tracing::warn!(container = %self.c.id, error = %e, "cannot read the log");
        }
    }

    async fn send(&self, entry: LogLine) -> bool {
        self.tx.send(entry).await.is_ok()
    }

    async fn stream(&mut self) -> io::Result<()> {
        // Follow from before the first read, so no change is missed.
        let mut following = match self.q.follow {
            true => Some(self.watch.follow(&self.c.dir)?),
            false => None,
        };
        let mut changed = self.c.changed.subscribe();
        // None: the answer is complete already.
        let Some(mut cursor) = self.begin().await? else {
            return Ok(());
        };
        loop {
            if self.tx.is_closed() || *self.shutdown.borrow() {
                return Ok(());
            }
            // Checked before reading: once it is not running, its monitor
            // has written everything.
            let running = {
                let st = self.c.state();
                st.record.status.is_running() && !st.removed
            };
            match cursor.take() {
                None => {
                    // There was no log when the follow began: every line
                    // since is this follower's, read or told of as lost. It
                    // starts at the oldest file kept, and a file that says
                    // lines came before it (rotated away while the follower
                    // had not looked yet) counts them.
                    cursor = first_file(&self.c.dir)?;
                    if let Some(at) = cursor.as_mut() {
                        at.expect = Some(0);
                        continue;
                    }
                }
                Some(at) => {
                    let (at, step) = self.step(at).await?;
                    cursor = Some(at);
                    match step {
                        Step::Read => continue,
                        Step::Gone => return Ok(()),
                        Step::End => {}
                    }
                }
            }
            let Some(follow) = following.as_mut() else {
                return Ok(());
            };
            if !running || self.q.until.is_some_and(|u| u < now_nanos()) {
                return Ok(());
            }
            if !self.more(follow, &mut changed).await {
                return Ok(());
            }
        }
    }

    /// Where reading starts: after the last `tail` lines are sent, or at
    /// the oldest file. None if that was the whole answer.
    async fn begin(&self) -> io::Result<Option<Option<Cursor>>> {
        let dir = self.c.dir.clone();
        let Some(n) = self.q.tail else {
            // A directory listing and an open: cheap enough in place.
            return first_file(&dir).map(Some);
        };
        let q = self.q.clone();
        let (records, cursor) = blocking(move || tail(&dir, &q, n)).await?;
        for r in records {
            if !self.send(self.q.entry(r)).await {
                return Ok(None);
            }
        }
        // Without follow, the last lines are the answer.
        Ok(self.q.follow.then_some(cursor))
    }

    /// Waits for new output, a change of the container or `until`; false
    /// when the client went away or the daemon shuts down.
    async fn more(&self, follow: &mut Following, changed: &mut watch::Receiver<()>) -> bool {
        let until = async {
            match self.q.until {
                Some(u) => {
                    let left = u.saturating_sub(now_nanos()).max(0) as u64;
                    tokio::time::sleep(std::time::Duration::from_nanos(left)).await
                }
                None => std::future::pending().await,
            }
        };
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            _ = follow.changed.changed() => true,
            _ = changed.changed() => true,
            _ = until => true,
            _ = self.tx.closed() => false,
            _ = async { drop(shutdown.wait_for(|s| *s).await) } => false,
        }
    }

    /// Reads on from `at`: lines sent, a move to the next file, or the end
    /// of the newest file.
    async fn step(&self, at: Cursor) -> io::Result<(Cursor, Step)> {
        let (records, mut at) = read(at, CHUNK).await?;
        if let (Some(had), Some(before)) = (at.expect, at.before) {
            at.expect = None;
            if before > had {
                let lost = before - had;
                tracing::warn!(container = %self.c.id, lost, "a log follower fell behind rotation");
                let entry = LogLine {
                    lost_lines: lost,
                    ..Default::default()
                };
                if !self.send(entry).await {
                    return Ok((at, Step::Gone));
                }
            }
        }
        if !records.is_empty() {
            for r in records.into_iter().filter(|r| self.q.wants(r)) {
                if !self.send(self.q.entry(r)).await {
                    return Ok((at, Step::Gone));
                }
            }
            return Ok((at, Step::Read));
        }
        // The newest file is the one written to: one stat says whether the
        // reader is on it.
        let current = self.c.dir.join(logs::LOG_FILE);
        if std::fs::metadata(current).is_ok_and(|m| m.ino() == at.inode) {
            return Ok((at, Step::End));
        }
        let dir = self.c.dir.clone();
        let inode = at.inode;
        let Some(path) = blocking(move || next_file(&dir, inode)).await? else {
            return Ok((at, Step::End));
        };
        // The file was rotated: what it got before that is read now, then
        // the next one.
        let (rest, at) = read(at, u64::MAX).await?;
        for r in rest.into_iter().filter(|r| self.q.wants(r)) {
            if !self.send(self.q.entry(r)).await {
                return Ok((at, Step::Gone));
            }
        }
        let mut next = match blocking(move || Cursor::open(&path)).await {
            Ok(next) => next,
            // Rotated on meanwhile: look again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((at, Step::Read)),
            Err(e) => return Err(e),
        };
        next.expect = at.lines();
        Ok((next, Step::Read))
    }
}

enum Step {
    /// Lines were read (or a new file opened): read on.
    Read,
    /// At the end of the newest file.
    End,
    /// The client went away.
    Gone,
}

/// A cursor at the start of the oldest file, if there is one.
fn first_file(dir: &std::path::Path) -> io::Result<Option<Cursor>> {
    loop {
        let Some(path) = logs::files(dir).into_iter().next() else {
            return Ok(None);
        };
        match Cursor::open(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            r => return r.map(Some),
        }
    }
}

/// The file after the one with inode `inode`, oldest first; None if that
/// one is the newest. If it is no longer there (rotated away while read),
/// the oldest file left.
fn next_file(dir: &std::path::Path, inode: u64) -> io::Result<Option<PathBuf>> {
    let files = logs::files(dir);
    let inodes: Vec<Option<u64>> = files
        .iter()
        .map(|f| std::fs::metadata(f).ok().map(|m| m.ino()))
        .collect();
    match inodes.iter().position(|i| *i == Some(inode)) {
        Some(i) => Ok(files.get(i + 1).cloned()),
        None => Ok(files.into_iter().next()),
    }
}

/// The last `n` lines the query wants, oldest first, and a cursor at the
/// end of the newest file. Only record headers are read until the lines
/// are known; files older than needed are not read at all.
fn tail(
    dir: &std::path::Path,
    q: &LogsQuery,
    n: usize,
) -> io::Result<(Vec<logs::Record>, Option<Cursor>)> {
    let files = logs::files(dir);
    // Newest file first; for each, the positions of its last wanted lines.
    let mut picked: Vec<(PathBuf, Vec<Entry>)> = Vec::new();
    let mut cursor = None;
    let mut need = n;
    for path in files.iter().rev() {
        let Ok(mut c) = Cursor::open(path) else {
            continue;
        };
        let mut last: VecDeque<Entry> = VecDeque::with_capacity(need.min(4096));
        let (lines, end) = logs::scan(&mut c.file, 0, u64::MAX, &mut |e| {
            let wanted = q.wants(&logs::Record {
                time: e.time,
                stream: e.stream,
                line: Vec::new(),
            });
            if wanted && need > 0 {
                if last.len() == need {
                    last.pop_front();
                }
                last.push_back(e);
            }
        })?;
        if cursor.is_none() {
            c.read = lines;
            c.offset = end;
            cursor = Some(c);
        }
        need -= last.len();
        picked.push((path.clone(), last.into()));
        if need == 0 {
            break;
        }
    }
    let mut out = Vec::with_capacity(n.min(4096));
    for (path, entries) in picked.into_iter().rev() {
        if entries.is_empty() {
            continue;
        }
        let mut f = File::open(&path)?;
        for e in entries {
            if let Some(r) = logs::read_at(&mut f, e.offset)? {
                out.push(r);
            }
        }
    }
    Ok((out, cursor))
}
