//! The embedded database: one redb file under the daemon root holding a
//! record per container and the event journal, so containers, their exit
//! codes and every event survive a restart of the daemon.
//!
//! A state change and the events that report it are written in one
//! transaction, so after a crash the journal and the records agree.
//!
//! An I/O error (a full disk, say) leaves redb refusing every later write
//! until the database is opened again: the store reopens it before the next
//! operation, so once the cause is gone the daemon carries on by itself. A
//! full filesystem is its own error, naming the filesystem.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");
/// seq -> recorded_at (unix nanos, 8 bytes little endian) ++ encoded event.
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const REFERENCES: TableDefinition<&str, &[u8]> = TableDefinition::new("image_references");
const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");

/// The other tables, each key -> JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Image id -> image record.
    Images,
    /// Reference -> image id.
    References,
    /// Network id -> network record.
    Networks,
}

impl Table {
    fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Table::Images => IMAGES,
            Table::References => REFERENCES,
            Table::Networks => NETWORKS,
        }
    }
}
/// The seq the next event gets; kept even when retention empties the journal.
const NEXT_SEQ: &str = "next_seq";
/// recorded_at of the newest event retention has removed.
const PRUNED_UNTIL: &str = "pruned_until";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open database {path}: {source}")]
    Open { path: String, source: redb::Error },
    #[error("database {0}")]
    Db(String),
    #[error("the filesystem of {fs} is full ({what} {file}): free space there; berthd carries on once there is")]
    Full {
        fs: String,
        what: &'static str,
        file: String,
    },
    #[error("decode record {id}: {source}")]
    Decode {
        id: String,
        source: serde_json::Error,
    },
    #[error("journal entry {0} is corrupt")]
    Corrupt(u64),
}

fn db<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::Db(format!("{what}: {e}"))
}

/// Whether an I/O error means the filesystem (or a quota) is full.
pub fn is_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// The mount point of the filesystem `path` is on (the last directory up
/// from it on the same device).
pub fn filesystem_of(path: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).ok().map(|m| m.dev());
    let mut at = path.to_path_buf();
    while dev(&at).is_none() {
        if !at.pop() {
            return PathBuf::from("/");
        }
    }
    let here = dev(&at);
    while let Some(up) = at.parent() {
        if dev(up) != here {
            break;
        }
        at = up.to_path_buf();
    }
    at
}

/// One journal entry: an encoded event, its seq and when it was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    /// Unix nanoseconds; never decreases with seq.
    pub recorded_at: i64,
    pub data: Vec<u8>,
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(8 + self.data.len());
        v.extend_from_slice(&self.recorded_at.to_le_bytes());
        v.extend_from_slice(&self.data);
        v
    }

    fn decode(seq: u64, raw: &[u8]) -> Result<Entry, Error> {
        let (at, data) = raw.split_at_checked(8).ok_or(Error::Corrupt(seq))?;
        let at = i64::from_le_bytes(at.try_into().map_err(|_| Error::Corrupt(seq))?);
        Ok(Entry {
            seq,
            recorded_at: at,
            data: data.to_vec(),
        })
    }
}

/// What the journal holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Seq of the oldest event held; `next` if none is.
    pub oldest: u64,
    /// Seq the next event gets.
    pub next: u64,
    /// recorded_at of the newest removed event, 0 if none was removed.
    pub pruned_until: i64,
}

/// A transaction's worth of changes: at most one container record and any
/// number of events (in seq order).
#[derive(Debug, Default)]
pub struct Batch {
    record: Option<(String, Option<Vec<u8>>)>,
    rows: Vec<(Table, String, Option<Vec<u8>>)>,
    events: Vec<Entry>,
}

impl Batch {
    pub fn put<T: Serialize>(&mut self, id: &str, record: &T) -> Result<(), Error> {
        let value = serde_json::to_vec(record).map_err(db("encode"))?;
        self.record = Some((id.to_string(), Some(value)));
        Ok(())
    }

    pub fn delete(&mut self, id: &str) {
        self.record = Some((id.to_string(), None));
    }

    /// Writes a row of another table.
    pub fn put_in<T: Serialize>(&mut self, table: Table, key: &str, row: &T) -> Result<(), Error> {
        let value = serde_json::to_vec(row).map_err(db("encode"))?;
        self.rows.push((table, key.to_string(), Some(value)));
        Ok(())
    }

    pub fn delete_in(&mut self, table: Table, key: &str) {
        self.rows.push((table, key.to_string(), None));
    }

    pub fn event(&mut self, entry: Entry) {
        self.events.push(entry);
    }
}

pub struct Store {
    path: PathBuf,
    /// None while it is being (or could not be) opened again.
    db: RwLock<Option<Arc<Database>>>,
    /// Set by an I/O error: the next operation opens the database again.
    failed: AtomicBool,
}

fn open_database(path: &Path) -> Result<Database, redb::Error> {
    let database = Database::create(path)?;
    let tx = database.begin_write()?;
    tx.open_table(CONTAINERS)?;
    tx.open_table(EVENTS)?;
    tx.open_table(META)?;
    tx.open_table(IMAGES)?;
    tx.open_table(REFERENCES)?;
    tx.open_table(NETWORKS)?;
    tx.commit()?;
    Ok(database)
}

impl Store {
    /// Opens (or creates) the database at `path`. Fails if another daemon
    /// has it open.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let database = open_database(path).map_err(|source| Error::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Store {
            path: path.to_path_buf(),
            db: RwLock::new(Some(Arc::new(database))),
            failed: AtomicBool::new(false),
        })
    }

    /// The database, opened again first if an I/O error broke it.
    fn db(&self) -> Result<Arc<Database>, Error> {
        if self.failed.load(Ordering::Acquire) {
            self.reopen()?;
        }
        let db = self.db.read().unwrap_or_else(|p| p.into_inner());
        db.clone()
            .ok_or_else(|| Error::Db("the database is being opened again".into()))
    }

    fn reopen(&self) -> Result<(), Error> {
        let mut slot = self.db.write().unwrap_or_else(|p| p.into_inner());
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some(old) = slot.take() {
            // Readers that began before finish with the old handle; redb
            // lets one handle have the file at a time.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while Arc::strong_count(&old) > 1 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            if Arc::strong_count(&old) > 1 {
                *slot = Some(old);
                return Err(Error::Db(
                    "cannot reopen: the database is still in use".into(),
                ));
            }
        }
        match open_database(&self.path) {
            Ok(d) => {
                *slot = Some(Arc::new(d));
                self.failed.store(false, Ordering::Release);
                tracing::info!(path = %self.path.display(), "database opened again after an I/O error");
                Ok(())
            }
            Err(e) => Err(self.error("reopen", e)),
        }
    }

    /// A redb failure: an I/O error marks the database for reopening, and
    /// a full filesystem says which.
    fn error<E: Into<redb::Error>>(&self, what: &'static str, e: E) -> Error {
        let e: redb::Error = e.into();
        match &e {
            redb::Error::Io(io) => {
                self.failed.store(true, Ordering::Release);
                if is_full(io) {
                    return Error::Full {
                        fs: filesystem_of(&self.path).display().to_string(),
                        what: "cannot write",
                        file: self.path.display().to_string(),
                    };
                }
            }
            redb::Error::PreviousIo => self.failed.store(true, Ordering::Release),
            _ => {}
        }
        Error::Db(format!("{what}: {e}"))
    }

    fn err<E: Into<redb::Error>>(&self, what: &'static str) -> impl FnOnce(E) -> Error + '_ {
        move |e| self.error(what, e)
    }

    /// Writes `batches`, in order, in one durable transaction.
    pub fn write_all(&self, batches: &[Batch]) -> Result<(), Error> {
        let tx = self.db()?.begin_write().map_err(self.err("begin"))?;
        {
            let mut table = tx.open_table(CONTAINERS).map_err(self.err("open table"))?;
            let mut events = tx.open_table(EVENTS).map_err(self.err("open table"))?;
            let mut next = None;
            for batch in batches {
                if let Some((id, value)) = &batch.record {
                    match value {
                        Some(v) => table.insert(id.as_str(), v.as_slice()).map(drop),
                        None => table.remove(id.as_str()).map(drop),
                    }
                    .map_err(self.err("write record"))?;
                }
                for (t, key, value) in &batch.rows {
                    let mut rows = tx
                        .open_table(t.definition())
                        .map_err(self.err("open table"))?;
                    match value {
                        Some(v) => rows.insert(key.as_str(), v.as_slice()).map(drop),
                        None => rows.remove(key.as_str()).map(drop),
                    }
                    .map_err(self.err("write row"))?;
                }
                for e in &batch.events {
                    events
                        .insert(e.seq, e.encode().as_slice())
                        .map_err(self.err("append event"))?;
                    next = Some(e.seq + 1);
                }
            }
            if let Some(next) = next {
                let mut meta = tx.open_table(META).map_err(self.err("open table"))?;
                meta.insert(NEXT_SEQ, next)
                    .map_err(self.err("write meta"))?;
            }
        }
        tx.commit().map_err(self.err("commit"))
    }

    /// Every record.
    pub fn load_all<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        let tx = self.db()?.begin_read().map_err(self.err("begin read"))?;
        let table = tx.open_table(CONTAINERS).map_err(self.err("open table"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(self.err("iterate"))? {
            let (k, v) = entry.map_err(self.err("read"))?;
            let record = serde_json::from_slice(v.value()).map_err(|source| Error::Decode {
                id: k.value().to_string(),
                source,
            })?;
            out.push(record);
        }
        Ok(out)
    }

    /// Every row of `table`.
    pub fn load_table<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<(String, T)>, Error> {
        let tx = self.db()?.begin_read().map_err(self.err("begin read"))?;
        let rows = tx
            .open_table(table.definition())
            .map_err(self.err("open table"))?;
        let mut out = Vec::new();
        for entry in rows.iter().map_err(self.err("iterate"))? {
            let (k, v) = entry.map_err(self.err("read"))?;
            let row = serde_json::from_slice(v.value()).map_err(|source| Error::Decode {
                id: k.value().to_string(),
                source,
            })?;
            out.push((k.value().to_string(), row));
        }
        Ok(out)
    }

    pub fn bounds(&self) -> Result<Bounds, Error> {
        let tx = self.db()?.begin_read().map_err(self.err("begin read"))?;
        let events = tx.open_table(EVENTS).map_err(self.err("open table"))?;
        let meta = tx.open_table(META).map_err(self.err("open table"))?;
        bounds(&events, &meta)
    }

    /// Up to `limit` entries with seq greater than `after`, in seq order.
    pub fn read(&self, after: u64, limit: usize) -> Result<Vec<Entry>, Error> {
        let tx = self.db()?.begin_read().map_err(self.err("begin read"))?;
        let events = tx.open_table(EVENTS).map_err(self.err("open table"))?;
        let mut out = Vec::with_capacity(limit.min(4096));
        for item in events
            .range(after.saturating_add(1)..)
            .map_err(self.err("read"))?
            .take(limit)
        {
            let (k, v) = item.map_err(self.err("read"))?;
            out.push(Entry::decode(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Seq of the first event recorded at or after `t`; `next` if none.
    pub fn first_at_or_after(&self, t: i64) -> Result<u64, Error> {
        let tx = self.db()?.begin_read().map_err(self.err("begin read"))?;
        let events = tx.open_table(EVENTS).map_err(self.err("open table"))?;
        let meta = tx.open_table(META).map_err(self.err("open table"))?;
        let b = bounds(&events, &meta)?;
        first_at_or_after(&events, b, t)
    }

    /// Removes events beyond the newest `keep` and those recorded before
    /// `before`, at most `chunk` of them, and returns how many it removed.
    pub fn prune(&self, keep: u64, before: i64, chunk: u64) -> Result<u64, Error> {
        let tx = self.db()?.begin_write().map_err(self.err("begin"))?;
        let removed = {
            let mut events = tx.open_table(EVENTS).map_err(self.err("open table"))?;
            let mut meta = tx.open_table(META).map_err(self.err("open table"))?;
            let b = bounds(&events, &meta)?;
            let by_count = b.next.saturating_sub(keep);
            let by_age = first_at_or_after(&events, b, before)?;
            let end = by_count.max(by_age).min(b.oldest.saturating_add(chunk));
            if end <= b.oldest {
                return Ok(0);
            }
            let last_at = {
                let raw = events
                    .get(end - 1)
                    .map_err(self.err("read"))?
                    .ok_or(Error::Corrupt(end - 1))?;
                Entry::decode(end - 1, raw.value())?.recorded_at
            };
            events
                .retain_in(b.oldest..end, |_, _| false)
                .map_err(self.err("remove events"))?;
            meta.insert(PRUNED_UNTIL, last_at as u64)
                .map_err(self.err("write meta"))?;
            end - b.oldest
        };
        tx.commit().map_err(self.err("commit"))?;
        Ok(removed)
    }
}

fn bounds(
    events: &impl ReadableTable<u64, &'static [u8]>,
    meta: &impl ReadableTable<&'static str, u64>,
) -> Result<Bounds, Error> {
    let get = |key| -> Result<u64, Error> {
        Ok(meta
            .get(key)
            .map_err(db("read meta"))?
            .map(|v| v.value())
            .unwrap_or(0))
    };
    let next = get(NEXT_SEQ)?.max(1);
    let oldest = match events.first().map_err(db("read"))? {
        Some((k, _)) => k.value(),
        None => next,
    };
    Ok(Bounds {
        oldest,
        next,
        pruned_until: get(PRUNED_UNTIL)? as i64,
    })
}

/// Binary search over seq: recorded_at never decreases with seq.
fn first_at_or_after(
    events: &impl ReadableTable<u64, &'static [u8]>,
    b: Bounds,
    t: i64,
) -> Result<u64, Error> {
    let (mut lo, mut hi) = (b.oldest, b.next);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let raw = events
            .get(mid)
            .map_err(db("read"))?
            .ok_or(Error::Corrupt(mid))?;
        if Entry::decode(mid, raw.value())?.recorded_at < t {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

#[cfg(test)]
mod tests;
