//! The database at start, and what makes losing it survivable.
//!
//! Each container directory holds `container.json`, a copy of the
//! container's record written when its configuration is (create, update),
//! after the database has it, and again from the database at each start.
//! The database stays the truth; the copies (and the networks' record
//! copies beside their config lists) are what `berthd --rebuild`
//! makes records from when the database is damaged or lost: the
//! configuration from the copy, the state from what runs (a monitor) and
//! the last exit from the monitor's exit file. So losing the database loses
//! at most the event journal, never a container.
//!
//! At start berthd refuses a damaged database, and a missing (or empty)
//! one while container directories exist, saying which file and what to
//! do, rather than starting afresh and forgetting containers that still
//! run. It never deletes a directory of a container it does not know: it
//! sets it aside under `orphaned/` and says so.

use super::container::{Record, Status};
use super::error::{failed, Error, Result};
use super::host::Host;
use crate::monitor::protocol::{container_dir, ExitRecord};
use crate::store::{Batch, Store, Table};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The copy of the record in each container directory.
pub const RECORD_FILE: &str = "container.json";
pub const DATABASE: &str = "berth.redb";
/// Where directories of containers the database does not know go.
pub const ORPHANED: &str = "orphaned";
/// Where a removed container's directory waits to be deleted.
pub const REMOVED: &str = "removed";

/// Takes a removed container's directory out of `containers/` at once
/// (one rename) and deletes it on a thread of its own, after the reply;
/// what a crash leaves under `removed/` goes at the next start
/// (`delete_removed`). Deleted where it is if it cannot be moved.
pub fn discard_dir(root: &Path, dir: &Path, id: &str) {
    let trash = root.join(REMOVED).join(id);
    let moved =
        std::fs::create_dir_all(root.join(REMOVED)).and_then(|()| std::fs::rename(dir, &trash));
    let doomed = match moved {
        Ok(()) => trash,
        Err(e) => {
            tracing::debug!(container = %id, error = %e, "deleting the directory in place");
            dir.to_path_buf()
        }
    };
    let id = id.to_string();
    let spawned = std::thread::Builder::new()
        .name("remove-dir".into())
        .spawn(move || delete_dir(&id, &doomed));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no thread to delete a removed container's directory; it goes at the next start");
    }
}

fn delete_dir(id: &str, dir: &Path) {
    // Left mounted by a monitor that was killed.
    crate::sys::mounts::release_shared_shm(dir);
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(container = %id, error = %e, "cannot remove container directory");
    }
}

/// Deletes what removes left under `removed/` (berthd stopped before
/// their deletion ended), on a thread of its own.
pub fn delete_removed(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root.join(REMOVED)) else {
        return;
    };
    let dirs: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    if dirs.is_empty() {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("remove-dir".into())
        .spawn(move || {
            for (id, dir) in dirs {
                delete_dir(&id, &dir);
            }
        });
}

/// Writes the record's copy into its directory, atomically (a temporary
/// file renamed over it). Not fsynced: the database is durable, and a copy
/// a crash lost is written again from it at the next start.
pub fn write_copy(dir: &Path, r: &Record) -> std::io::Result<()> {
    let data = serde_json::to_vec_pretty(r).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!("{RECORD_FILE}.tmp"));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, dir.join(RECORD_FILE))
}

fn read_copy(dir: &Path) -> Option<Record> {
    let data = std::fs::read(dir.join(RECORD_FILE)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// The ids of the container directories that hold a record copy.
fn with_copies(containers: &Path) -> Vec<String> {
    std::fs::read_dir(containers)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(RECORD_FILE).exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// What to do about a database that cannot be used.
fn advice(root: &Path) -> String {
    format!(
        "start berthd once with --rebuild to set it aside and rebuild the container records from {} (the event journal starts anew), or put back a copy of the database",
        root.join("containers").display()
    )
}

/// Opens the store and loads the records, refusing a damaged database
/// and a missing one that the container directories say existed.
pub fn open(root: &Path) -> Result<(Arc<Store>, Vec<Record>)> {
    let path = root.join(DATABASE);
    let empty = std::fs::metadata(&path).map_or(true, |m| m.len() == 0);
    if empty {
        let n = with_copies(&root.join("containers")).len();
        if n > 0 {
            return Err(Error::Internal(format!(
                "the database {} is missing or empty, but {n} containers have directories under this root: {}",
                path.display(),
                advice(root)
            )));
        }
    }
    load(&path).map_err(|e| {
        Error::Internal(format!(
            "the database {} cannot be read ({e}): {}",
            path.display(),
            advice(root)
        ))
    })
}

/// Opens and reads everything needed at start; a panic inside the
/// database code (a damaged file) is an error like any other.
fn load(path: &Path) -> std::result::Result<(Arc<Store>, Vec<Record>), String> {
    let path = path.to_path_buf();
    let loaded = std::panic::catch_unwind(move || -> std::result::Result<_, String> {
        let store = Store::open(&path).map_err(|e| e.to_string())?;
        let records: Vec<Record> = store.load_all().map_err(|e| e.to_string())?;
        store.bounds().map_err(|e| e.to_string())?;
        Ok((Arc::new(store), records))
    });
    match loaded {
        Ok(r) => r,
        Err(_) => Err("the database code failed on it".into()),
    }
}

/// `--rebuild`: sets the database aside (if there is one) and makes a new
/// one with a record for each container directory.
pub fn rebuild(root: &Path, monitors: &HashMap<String, i32>) -> Result<(Arc<Store>, Vec<Record>)> {
    let path = root.join(DATABASE);
    if path.exists() {
        let aside = root.join(format!(
            "{DATABASE}.damaged-{}",
            crate::sys::time::now_nanos() / 1_000_000_000
        ));
        std::fs::rename(&path, &aside)
            .map_err(|e| failed(format!("set {} aside", path.display()), e))?;
        tracing::warn!(database = %aside.display(), "the database was set aside");
    }
    let store = Arc::new(Store::open(&path)?);
    let containers = root.join("containers");
    let networks = crate::network::copies(root);
    let mut records = Vec::new();
    let mut batches = Vec::new();
    for id in with_copies(&containers) {
        let dir = container_dir(root, &id);
        let Some(copy) = read_copy(&dir) else {
            tracing::warn!(container = %id, "unreadable record copy; directory left as it is");
            continue;
        };
        let r = from_copy(copy, &dir, monitors.get(&id).copied(), &networks);
        let mut b = Batch::default();
        b.put(&r.id, &r)?;
        batches.push(b);
        records.push(r);
    }
    for net in &networks {
        let mut b = Batch::default();
        b.put_in(Table::Networks, &net.id, net)?;
        batches.push(b);
    }
    store.write_all(&batches)?;
    tracing::warn!(
        containers = records.len(),
        networks = networks.len(),
        "rebuilt the container and network records from their directories"
    );
    Ok((store, records))
}

/// A record from its copy and what the directory and /proc say now
/// (where it is wired, on `networks`).
fn from_copy(
    mut r: Record,
    dir: &Path,
    monitor: Option<i32>,
    networks: &[crate::network::NetworkRecord],
) -> Record {
    r.stop_deadline = 0;
    r.oom_kills = 0;
    r.networks = Vec::new();
    match (monitor.and_then(pid1_of), ExitRecord::read(dir)) {
        (Some(pid), _) => {
            r.status = Status::Running;
            r.pid = pid;
            r.monitor_pid = monitor.unwrap_or(0);
            r.networks = crate::network::wired_now(dir, networks);
        }
        (None, Some(x)) => {
            r.status = Status::Exited;
            r.pid = 0;
            r.exit_code = x.exit_code;
            r.signal = x.signal;
            r.finished_at = x.finished_at;
            r.oom_killed = x.oom_kills.unwrap_or(0) > 0;
            r.exits = r.exits.max(1);
        }
        (None, None) if r.exits == 0 && r.started_at == 0 => r.status = Status::Created,
        (None, None) => {
            // It ran, and how it ended is not known.
            r.status = Status::Exited;
            r.pid = 0;
            r.exit_code = 255;
            r.exits = r.exits.max(1);
        }
    }
    r
}

/// PID 1 of the container a monitor runs: its child.
fn pid1_of(monitor: i32) -> Option<i32> {
    let children =
        std::fs::read_to_string(format!("/proc/{monitor}/task/{monitor}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// Directories under `containers` without a record: one that never held
/// a container (a create cut short) or whose container was removed (its
/// copy goes first) is deleted; any other is set aside under `orphaned/`,
/// never deleted.
pub fn set_aside_orphans(root: &Path, known: &std::collections::HashSet<String>, host: &dyn Host) {
    let Ok(entries) = std::fs::read_dir(root.join("containers")) else {
        return;
    };
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        if known.contains(&id) {
            continue;
        }
        let _ = host.remove_cgroup(&id);
        if !entry.path().join(RECORD_FILE).exists() {
            tracing::info!(container = %id, "removing the directory of an unrecorded container");
            let _ = std::fs::remove_dir_all(entry.path());
            continue;
        }
        let aside: PathBuf = root.join(ORPHANED).join(&id);
        let moved = std::fs::create_dir_all(root.join(ORPHANED))
            .and_then(|()| std::fs::rename(entry.path(), &aside));
        match moved {
            Ok(()) => {
                tracing::warn!(container = %id, path = %aside.display(), "the database does not know this container: its directory was set aside")
            }
            Err(e) => {
                tracing::error!(container = %id, error = %e, "the database does not know this container, and its directory could not be set aside")
            }
        }
    }
}
