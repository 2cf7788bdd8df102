//! The cgroup under which every container's cgroup is made (berthd's
//! --cgroup-parent), made ready once at startup: created, and on cgroup v2
//! with the controllers berth uses enabled in each cgroup above the
//! containers' own.
//!
//! An absolute parent ("/berth", the default) lies below the hierarchy's
//! root. A relative one lies below berthd's own cgroup (v2 only): that is
//! how berthd keeps its containers inside the subtree systemd delegates to
//! its unit. A cgroup with processes of its own cannot pass controllers
//! down (v2's "no internal processes" rule), so berthd lives in a leaf
//! beside the containers' parent ("daemon"): it moves itself there, unless
//! it started there (systemd's DelegateSubgroup=daemon), in which case the
//! relative parent lies beside that leaf. Monitors it starts are born
//! there too. Other processes in its cgroup make enabling controllers fail,
//! with an error that says so.

use super::{Cgroup, Error};
use cgroups_rs::fs::{hierarchies, Cgroup as Inner};
use std::path::{Path, PathBuf};

/// The controllers berth's limits, stats and OOM reports use (io: block
/// I/O in stats and device rates; cpuset: --cpuset-cpus and -mems).
const CONTROLLERS: [&str; 5] = ["cpu", "memory", "pids", "io", "cpuset"];

/// The leaf berthd moves its own processes to when its containers' parent
/// lies below its cgroup.
const DAEMON_LEAF: &str = "daemon";

/// The containers' parent cgroup: a path below the hierarchy's root,
/// without a leading "/".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    path: String,
}

impl Parent {
    /// A parent taken as is, without touching the host (tests, tools).
    pub fn at(path: &str) -> Parent {
        Parent {
            path: path.trim_matches('/').to_string(),
        }
    }

    /// Resolves `requested`, creates it and enables the controllers berth
    /// uses on the way down to it.
    pub fn setup(requested: &str) -> Result<Parent, Error> {
        let bad = |why: String| Error::Parent {
            requested: requested.to_string(),
            why,
        };
        let relative = !requested.starts_with('/');
        let parts: Vec<&str> = requested.split('/').filter(|p| !p.is_empty()).collect();
        if parts.is_empty() {
            return Err(bad("it names no cgroup below the root".into()));
        }
        if parts
            .iter()
            .any(|p| matches!(*p, "." | "..") || p.contains('\0'))
        {
            return Err(bad("it may not contain \".\", \"..\" or NUL".into()));
        }
        let v2 = hierarchies::is_cgroup2_unified_mode();
        if !v2 {
            if relative {
                return Err(bad(
                    "a parent relative to berthd's own cgroup needs cgroup v2".into(),
                ));
            }
            let path = parts.join("/");
            Inner::load(super::hierarchy(), &path)
                .create()
                .map_err(|e| bad(e.to_string()))?;
            return Ok(Parent::at(&path));
        }
        if relative && parts[0] == DAEMON_LEAF {
            return Err(bad(format!(
                "\"{DAEMON_LEAF}\" below berthd's own cgroup is where berthd itself goes"
            )));
        }
        let root = Path::new(hierarchies::UNIFIED_MOUNTPOINT);
        let base = match relative {
            false => String::new(),
            true => {
                let own = own_cgroup().map_err(|e| bad(format!("read /proc/self/cgroup: {e}")))?;
                match own.rsplit_once('/') {
                    // Already in its leaf (systemd's DelegateSubgroup=daemon,
                    // or berthd's own move before a re-exec).
                    Some((base, DAEMON_LEAF)) => base.to_string(),
                    _ if own.is_empty() => own,
                    _ => {
                        leave_for_leaf(&root.join(&own)).map_err(bad)?;
                        own
                    }
                }
            }
        };
        // Controllers berth uses that a cgroup on the way cannot pass on
        // (v2: not delegated), with the first cgroup that lacks them.
        let mut missing: Vec<(&str, String)> = Vec::new();
        let mut dir = root.join(&base);
        let mut steps = vec![dir.clone()];
        for p in &parts {
            dir.push(p);
            steps.push(dir.clone());
        }
        // Each cgroup from the base down passes the controllers on to the
        // next; the parent itself passes them to the containers.
        for (i, dir) in steps.iter().enumerate() {
            if i > 0 {
                create_dir(dir).map_err(|e| bad(format!("create {}: {e}", dir.display())))?;
            }
            let available = read_words(&dir.join("cgroup.controllers"));
            let enabled = read_words(&dir.join("cgroup.subtree_control"));
            for c in CONTROLLERS {
                if missing.iter().any(|(m, _)| *m == c) {
                    continue;
                }
                if !available.iter().any(|a| a == c) {
                    missing.push((c, cgroup_name(root, dir)));
                    continue;
                }
                if enabled.iter().any(|e| e == c) {
                    continue;
                }
                std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}")).map_err(
                    |e| {
                        let why = match e.raw_os_error() {
                            Some(libc::EBUSY) => " (it has processes of its own, and cgroup v2 passes controllers down only from a cgroup without any)".to_string(),
                            _ => String::new(),
                        };
                        bad(format!(
                            "enable the {c} controller in {}: {e}{why}",
                            cgroup_name(root, dir)
                        ))
                    },
                )?;
            }
        }
        for (c, at) in &missing {
            tracing::warn!(controller = %c, cgroup = %at, "controller not delegated to berth: limits that need it are refused");
        }
        let path = steps
            .last()
            .map(|d| cgroup_name(root, d))
            .unwrap_or_default();
        Ok(Parent::at(&path))
    }

    /// The parent's path below the hierarchy's root, without a leading "/".
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Container `id`'s cgroup.
    pub fn cgroup(&self, id: &str) -> Cgroup {
        Cgroup::load(&self.child(id))
    }

    /// The path of container `id`'s cgroup below the hierarchy's root.
    pub fn child(&self, id: &str) -> String {
        format!("{}/{id}", self.path)
    }
}

/// berthd's own cgroup v2 path (without a leading "/"; empty: the root).
fn own_cgroup() -> std::io::Result<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup")?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_matches('/').to_string())
        .ok_or_else(|| std::io::Error::other("no cgroup v2 line"))
}

/// Moves berthd (every thread) into the leaf [`DAEMON_LEAF`] of its own
/// cgroup `dir`, so that `dir` may pass controllers down. Monitors started
/// from then on are born there too.
fn leave_for_leaf(dir: &Path) -> Result<(), String> {
    let leaf = dir.join(DAEMON_LEAF);
    create_dir(&leaf).map_err(|e| format!("create {}: {e}", leaf.display()))?;
    std::fs::write(leaf.join("cgroup.procs"), "0")
        .map_err(|e| format!("move berthd into {}: {e}", leaf.display()))
}

fn create_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

fn read_words(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// `dir` as a cgroup path ("/" for the root).
fn cgroup_name(root: &Path, dir: &Path) -> String {
    let rel: PathBuf = dir.strip_prefix(root).unwrap_or(dir).into();
    format!("/{}", rel.display())
}
