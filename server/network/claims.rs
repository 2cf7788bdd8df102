//! Which subnets berth's networks hold on this host, whichever daemon
//! made them: a file per subnet under /run/berth/subnets naming the
//! network's config file, written under a host-wide lock. A claim whose
//! config file is gone (its daemon's root removed) is free again; /run
//! empties at boot, as the bridges go.

use super::subnet::{self, Subnet};
use super::{io, Error};
use nix::fcntl::{Flock, FlockArg};
use std::path::{Path, PathBuf};

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

fn file_of(subnet: Subnet) -> PathBuf {
    Path::new(DIR).join(subnet.to_string().replace('/', "-"))
}

/// The live claims other than `config`'s.
fn others(config: &Path) -> Vec<Subnet> {
    let Ok(dir) = std::fs::read_dir(DIR) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().replacen('-', "/", 1);
            let subnet: Subnet = name.parse().ok()?;
            let owner = PathBuf::from(std::fs::read_to_string(e.path()).ok()?);
            (owner != config && owner.exists()).then_some(subnet)
        })
        .collect()
}

/// Claims `wanted`, or the first free subnet of the pool, for the network
/// whose config file is `config`; `write` makes that file while the lock
/// is held. A subnet is taken if another claim or a host route overlaps it.
pub fn claim(
    config: &Path,
    wanted: Option<Subnet>,
    write: impl FnOnce(Subnet) -> Result<(), Error>,
) -> Result<Subnet, Error> {
    let _lock = lock()?;
    let taken: Vec<Subnet> = others(config)
        .into_iter()
        .chain(subnet::host_routes())
        .collect();
    let subnet = match wanted {
        Some(w) => match taken.iter().find(|t| t.overlaps(&w)) {
            Some(t) => {
                return Err(Error::Conflict(format!(
                    "subnet {w} overlaps {t}, in use on this host"
                )))
            }
            None => w,
        },
        None => subnet::pool()
            .find(|p| !taken.iter().any(|t| t.overlaps(p)))
            .ok_or_else(|| {
                Error::Conflict(
                    "no free subnet is left in 172.17-31.0.0/16 and 192.168.0.0/16: give one"
                        .into(),
                )
            })?,
    };
    std::fs::write(file_of(subnet), config.as_os_str().as_encoded_bytes())
        .map_err(io("write the subnet claim"))?;
    if let Err(e) = write(subnet) {
        let _ = std::fs::remove_file(file_of(subnet));
        return Err(e);
    }
    Ok(subnet)
}

/// Claims a network's subnet again (after a reboot emptied /run): kept if
/// no one else holds it, else a warning.
pub fn reclaim(config: &Path, subnet: Subnet) {
    let Ok(_lock) = lock() else { return };
    if let Some(t) = others(config).iter().find(|t| t.overlaps(&subnet)) {
        tracing::warn!(%subnet, other = %t, "a network's subnet is claimed by another network");
        return;
    }
    let _ = std::fs::write(file_of(subnet), config.as_os_str().as_encoded_bytes());
}

/// Gives up `config`'s claim on `subnet`.
pub fn release(config: &Path, subnet: Subnet) {
    let Ok(_lock) = lock() else { return };
    let file = file_of(subnet);
    if std::fs::read(&file).is_ok_and(|owner| owner == config.as_os_str().as_encoded_bytes()) {
        let _ = std::fs::remove_file(file);
    }
}
