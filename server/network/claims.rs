//! What berth's networks and containers hold on this host, whichever
//! daemon made them, under one host-wide lock:
//! - subnets: a file per subnet (IPv4 or IPv6) under /run/berth/subnets
//!   naming the network's config file. A claim whose config file is gone
//!   (its daemon's root removed) is free again.
//! - published host ports: a file per container with published ports
//!   under /run/berth/published naming its network.json, whose ports are
//!   taken while it lists them.
//!
//! /run empties at boot, as the bridges and containers go.

use super::subnet::{self, Subnet};
use super::subnet6::{self, Subnet6};
use super::{io, Error};
use nix::fcntl::{Flock, FlockArg};
use std::fmt::Display;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A subnet of either family, as claims hold it.
pub trait Range: Copy + Display + FromStr {
    fn overlaps(&self, other: &Self) -> bool;
    /// The host's routes of this family.
    fn host_routes() -> Vec<Self>;
}

impl Range for Subnet {
    fn overlaps(&self, other: &Self) -> bool {
        Subnet::overlaps(self, other)
    }
    fn host_routes() -> Vec<Self> {
        subnet::host_routes()
    }
}

impl Range for Subnet6 {
    fn overlaps(&self, other: &Self) -> bool {
        Subnet6::overlaps(self, other)
    }
    fn host_routes() -> Vec<Self> {
        subnet6::host_routes()
    }
}

const DIR: &str = "/run/berth/subnets";

fn lock() -> Result<Flock<std::fs::File>, Error> {
    std::fs::create_dir_all(DIR).map_err(io("create /run/berth/subnets"))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(Path::new(DIR).join(".lock"))
        .map_err(io("open the subnet lock"))?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| Error::Io {
        what: "lock the subnets".into(),
        source: e.into(),
    })
}

const PUBLISHED: &str = "/run/berth/published";

/// Runs `f` under the host-wide lock with the host ports published by
/// containers other than the one whose network.json is `own`, as
/// `ports_of` reads them from theirs. Entries whose network.json is gone
/// are removed.
pub fn with_published<T>(
    own: &Path,
    ports_of: impl Fn(&Path) -> Vec<super::PortSpec>,
    f: impl FnOnce(Vec<super::PortSpec>) -> Result<T, Error>,
) -> Result<T, Error> {
    let _lock = lock()?;
    let mut ports = Vec::new();
    for entry in std::fs::read_dir(PUBLISHED).into_iter().flatten().flatten() {
        let Ok(target) = std::fs::read(entry.path()) else {
            continue;
        };
        let target = PathBuf::from(std::ffi::OsStr::from_bytes(&target));
        if target == own {
            continue;
        }
        match target.exists() {
            true => ports.extend(ports_of(&target)),
            false => {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    f(ports)
}

/// Records that container `id` publishes the ports its network.json at
/// `own` lists (under the lock: within `with_published`'s `f`).
pub fn publish(id: &str, own: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(PUBLISHED).map_err(io("create /run/berth/published"))?;
    std::fs::write(
        Path::new(PUBLISHED).join(id),
        own.as_os_str().as_encoded_bytes(),
    )
    .map_err(io("record the published ports"))
}

/// Forgets container `id`'s published ports, if it is the one at `own`.
pub fn unpublish(id: &str, own: &Path) {
    let Ok(_lock) = lock() else { return };
    let entry = Path::new(PUBLISHED).join(id);
    if std::fs::read(&entry).is_ok_and(|t| t == own.as_os_str().as_encoded_bytes()) {
        let _ = std::fs::remove_file(entry);
    }
}

fn file_of(subnet: impl Display) -> PathBuf {
    Path::new(DIR).join(subnet.to_string().replace('/', "-"))
}

/// The live claims of one family other than `config`'s (under the lock);
/// stale ones, whose config file is gone, are removed.
fn others<S: Range>(config: &Path) -> Vec<S> {
    let Ok(dir) = std::fs::read_dir(DIR) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().replacen('-', "/", 1);
            let subnet: S = name.parse().ok()?;
            let owner = PathBuf::from(std::fs::read_to_string(e.path()).ok()?);
            if !owner.exists() {
                let _ = std::fs::remove_file(e.path());
                return None;
            }
            (owner != config).then_some(subnet)
        })
        .collect()
}

/// Claims `wanted`, or the first free subnet of the pool, for the network
/// whose config file is `config`, and with `v6` (Some) an IPv6 subnet:
/// the one given or a random unique local /64. `write` makes that file
/// while the lock is held. A subnet is taken if another claim or a host
/// route overlaps it.
pub fn claim(
    config: &Path,
    wanted: Option<Subnet>,
    v6: Option<Option<Subnet6>>,
    write: impl FnOnce(Subnet, Option<Subnet6>) -> Result<(), Error>,
) -> Result<(), Error> {
    let _lock = lock()?;
    let exhausted = "no free subnet is left in 172.17-31.0.0/16 and 192.168.0.0/16: give one";
    let subnet = pick(config, wanted, subnet::pool(), exhausted)?;
    let subnet6 = match v6 {
        None => None,
        Some(wanted) => {
            let random = (0..16).map(|_| Subnet6::random_ula());
            Some(pick(
                config,
                wanted,
                random,
                "no free IPv6 subnet was found: give one",
            )?)
        }
    };
    let files: Vec<PathBuf> = std::iter::once(file_of(subnet))
        .chain(subnet6.map(file_of))
        .collect();
    let written = files.iter().try_for_each(|f| {
        std::fs::write(f, config.as_os_str().as_encoded_bytes())
            .map_err(io("write the subnet claim"))
    });
    if let Err(e) = written.and_then(|()| write(subnet, subnet6)) {
        for f in files {
            let _ = std::fs::remove_file(f);
        }
        return Err(e);
    }
    Ok(())
}

/// `wanted` if nothing on the host overlaps it, or the first of `pool`
/// nothing overlaps.
fn pick<S: Range>(
    config: &Path,
    wanted: Option<S>,
    mut pool: impl Iterator<Item = S>,
    exhausted: &str,
) -> Result<S, Error> {
    let taken: Vec<S> = others(config).into_iter().chain(S::host_routes()).collect();
    match wanted {
        Some(w) => match taken.iter().find(|t| t.overlaps(&w)) {
            Some(t) => Err(Error::Conflict(format!(
                "subnet {w} overlaps {t}, in use on this host"
            ))),
            None => Ok(w),
        },
        None => pool
            .find(|p| !taken.iter().any(|t| t.overlaps(p)))
            .ok_or_else(|| Error::Conflict(exhausted.into())),
    }
}

/// Claims a network's subnet again (after a reboot emptied /run): kept if
/// no one else holds it, else a warning.
pub fn reclaim<S: Range>(config: &Path, subnet: S) {
    let Ok(_lock) = lock() else { return };
    if let Some(t) = others::<S>(config).iter().find(|t| t.overlaps(&subnet)) {
        tracing::warn!(%subnet, other = %t, "a network's subnet is claimed by another network");
        return;
    }
    let _ = std::fs::write(file_of(subnet), config.as_os_str().as_encoded_bytes());
}

/// Gives up `config`'s claim on `subnet`.
pub fn release(config: &Path, subnet: impl Display) {
    let Ok(_lock) = lock() else { return };
    let file = file_of(subnet);
    if std::fs::read(&file).is_ok_and(|owner| owner == config.as_os_str().as_encoded_bytes()) {
        let _ = std::fs::remove_file(file);
    }
}
