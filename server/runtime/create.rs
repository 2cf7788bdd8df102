//! Create: a validated spec, a name reserved, a directory, and the record
//! with its create event.

use super::container::{Container, IfUnsaved, Note, Record};
use super::error::{failed, io_failed, unsupported, Error, Result};
use super::{names, records, Runtime};
use crate::spec::{Input, Request};
use crate::sys::{linux, time::now_nanos};
use berth::pb::Action;
use std::path::Path;
use std::sync::Arc;

impl Runtime {
    /// Returns the new container's id and name.
    pub async fn create(&self, req: Request) -> Result<(String, String)> {
        let mut raw = [0u8; 32];
        linux::random_bytes(&mut raw).map_err(|e| failed("generate id", e))?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        if req.rootfs.contains([',', ':', '\\']) {
            return Err(Error::InvalidArgument(format!(
                "invalid rootfs {:?}: ',', ':' and '\\' cannot be used in an overlay layer path",
                Input::from(req.rootfs.as_str())
            )));
        }
        let mut req = req;
        if req.name.is_empty() {
            req.name = names::generate(&raw);
        }
        // Docker's default hostname: the short id, or on the host's
        // network the host's own name.
        let hostname = match (req.network.as_str(), req.uts_mode.as_str()) {
            ("host", _) | (_, "host") => nix::unistd::gethostname()
                .map_err(|e| failed("read the host's hostname", e))?
                .to_string_lossy()
                .into_owned(),
            _ => id[..12].to_string(),
        };
        // A sandbox's root is empty: its pause process needs nothing.
        if req.sandbox && req.rootfs.is_empty() && req.image.is_none() {
            req.rootfs = self.empty_root()?;
        }
        let volumes = std::mem::take(&mut req.volumes);
        let mut spec = req.validate(&hostname, self.machine)?;
        // Its devices as the host has them now.
        for d in &mut spec.tuning.devices {
            (d.kind, d.major, d.minor) = host_device(&d.host_path)?;
        }
        // Its own seccomp profile compiles for it (berth's own always
        // does: not compiled here).
        if spec.seccomp_profile.is_some() {
            self.seccomp(&spec)?;
        }
        check_propagation(&spec.mounts)?;
        // Containers whose namespaces it joins, by their full ids.
        for (_, name) in spec.namespaces.joined_mut() {
            *name = self.find(name)?.id.clone();
        }
        if !spec.pod.is_empty() {
            let pod = self.find(&spec.pod)?;
            if !pod.spec().sandbox {
                return Err(Error::InvalidArgument(format!(
                    "container {} is not a pod sandbox",
                    pod.name()
                )));
            }
            spec.pod = pod.id.clone();
        }
        // Another container's network: its hostname too.
        if let crate::spec::NamespaceMode::Container(id) = &spec.namespaces.net {
            spec.hostname = self.find(id)?.spec().hostname.clone();
        }
        if spec.network == crate::spec::Network::Bridge {
            spec.net.id = self.network_id(&spec.net.name)?;
            if !spec.net.fixed.is_empty() {
                let net = self.find_network(&spec.net.id)?;
                check_fixed(&spec.net.fixed, &net)?;
                spec.net.fixed.network_id = net.id;
            }
        }
        // The image's volumes, each a directory of the container's own
        // (gone with it), unless the request mounts something there.
        for (i, dest) in volumes.iter().enumerate() {
            let Some(clean) = crate::spec::volume_destination(dest) else {
                tracing::warn!(container = %id, volume = %dest, "image volume left out: not a place to mount");
                continue;
            };
            if spec.mounts.iter().any(|m| m.destination == clean) {
                continue;
            }
            // An anonymous volume's name: 64 hex digits, as Docker's.
            let mut raw = [0u8; 32];
            linux::random_bytes(&mut raw).map_err(|e| failed("generate a volume name", e))?;
            spec.mounts.push(crate::spec::MountSpec {
                source: self
                    .dir_of(&id)
                    .join("volumes")
                    .join(i.to_string())
                    .display()
                    .to_string(),
                destination: clean,
                read_only: false,
                propagation: Default::default(),
                volume: Some(raw.iter().map(|b| format!("{b:02x}")).collect()),
                recursive_read_only: false,
            });
        }
        self.support.check(&spec.resources).map_err(unsupported)?;
        let name = spec.name.clone();
        self.reserve_name(&name, &id)?;
        if !spec.cgroup_parent.is_empty() {
            if let Err(e) = self.host.place_cgroup(&id, &spec.cgroup_parent) {
                self.index_mut().names.remove(&name);
                return Err(Error::InvalidArgument(e.to_string()));
            }
        }
        let dir = self.dir_of(&id);
        // The record and its create event go into the store together, and
        // the container is visible to others only after that.
        let c = Arc::new(Container::new(
            Record::new(id.clone(), now_nanos(), spec),
            dir,
        ));
        let made = make_dir(&c.dir, volumes.len()).and_then(|()| {
            c.transition(&mut c.state(), &self.bus, IfUnsaved::Discard, |_| {
                vec![Note::new(Action::Create)]
            })
        });
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&c.dir);
            self.host.forget_cgroup(&id);
            self.index_mut().names.remove(&name);
            return Err(e);
        }
        // After the record: a directory with a copy always had one (a
        // copy that could not be written now is written at the next start).
        if let Err(e) = records::write_copy(&c.dir, &c.state().record) {
            tracing::warn!(container = %id, error = %e, "cannot write the record copy");
        }
        self.insert(c);
        tracing::info!(container = %id, name = %name, "created");
        Ok((id, name))
    }

    /// An empty directory, the root of pod sandboxes.
    fn empty_root(&self) -> Result<String> {
        let dir = self.root.join("empty");
        std::fs::create_dir_all(&dir)
            .map_err(|e| io_failed("create the sandboxes' root", &dir, e))?;
        Ok(dir.display().to_string())
    }

    /// Reserves `name` for `id`, so two creates cannot both take it.
    pub(super) fn reserve_name(&self, name: &str, id: &str) -> Result<()> {
        let mut index = self.index_mut();
        if index.names.contains_key(name) {
            return Err(Error::AlreadyExists(format!(
                "container name {name:?} is already in use: remove that container or choose another name"
            )));
        }
        index.names.insert(name.to_string(), id.to_string());
        Ok(())
    }
}

/// Addresses asked for must be usable on `net`: in its subnet, not its
/// gateway nor its subnet's first or last; IPv6 only where it has IPv6.
fn check_fixed(fixed: &crate::spec::Fixed, net: &crate::network::NetworkRecord) -> Result<()> {
    let bad = |ip: String, why: &str| {
        Error::InvalidArgument(format!(
            "invalid address {ip}: {why} of network {}",
            net.name
        ))
    };
    if let Some(ip) = fixed.ip {
        let s = &net.subnet;
        if !s.contains(ip) || ip == net.gateway || Some(ip) == s.nth(0) || ip == s.last() {
            return Err(bad(
                ip.to_string(),
                &format!("not a free place in the subnet {s}"),
            ));
        }
    }
    if let Some(ip6) = fixed.ip6 {
        match &net.ipv6 {
            Some(v6) if v6.subnet.contains(ip6) && ip6 != v6.gateway => {}
            Some(v6) => {
                return Err(bad(
                    ip6.to_string(),
                    &format!("not a free place in the subnet {}", v6.subnet),
                ))
            }
            None => return Err(bad(ip6.to_string(), "no IPv6 (create it with --ipv6)")),
        }
    }
    Ok(())
}

/// The kind ('c' or 'b') and numbers of the device node at `path`.
fn host_device(path: &str) -> Result<(char, u32, u32)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let bad = |why: String| {
        Error::InvalidArgument(format!(
            "invalid device {:?}: {why}",
            crate::spec::Input::from(path)
        ))
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    let kind = match meta.file_type() {
        t if t.is_char_device() => 'c',
        t if t.is_block_device() => 'b',
        _ => return Err(bad("not a character or block device".into())),
    };
    let rdev = meta.rdev();
    Ok((
        kind,
        nix::sys::stat::major(rdev) as u32,
        nix::sys::stat::minor(rdev) as u32,
    ))
}

fn make_dir(dir: &Path, volumes: usize) -> Result<()> {
    let volumes = (0..volumes).map(|i| format!("volumes/{i}"));
    for sub in ["upper", "work", "merged"]
        .into_iter()
        .map(String::from)
        .chain(volumes)
    {
        std::fs::create_dir_all(dir.join(&sub))
            .map_err(|e| io_failed(format!("create {}", dir.join(sub).display()), dir, e))?;
    }
    Ok(())
}

impl Runtime {
    /// The seccomp program of a run of `spec`: none (privileged or
    /// unconfined), its own profile compiled, or berth's default filter.
    pub(super) fn seccomp(
        &self,
        spec: &crate::spec::Spec,
    ) -> Result<Option<crate::sys::seccomp::Program>> {
        use crate::sys::seccomp;
        if !spec.filtered() {
            return Ok(None);
        }
        let caps = self.filters.bounded(spec.capabilities());
        let Some(json) = &spec.seccomp_profile else {
            return Ok(Some(self.filters.get(caps).as_ref().clone()));
        };
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let host = seccomp::ProfileHost {
            caps,
            cap_names: crate::spec::CAPABILITIES,
            kernel: seccomp::kernel_version(release.trim()).unwrap_or((0, 0)),
        };
        seccomp::compile_profile(json, &host)
            .map(Some)
            .map_err(|e| Error::InvalidArgument(format!("invalid seccomp profile: {e}")))
    }
}

/// A bind mount that is to receive the host's mounts needs a source on a
/// shared or slave mount, one that is to send the container's a shared
/// one (Docker's check, and its words).
fn check_propagation(mounts: &[crate::spec::MountSpec]) -> Result<()> {
    for m in mounts.iter().filter(|m| m.propagation.receives()) {
        let on = crate::sys::mounts::mount_of(Path::new(&m.source))
            .map_err(|e| failed(format!("find the mount of {}", m.source), e))?;
        let (ok, what) = match m.propagation.sends() {
            true => (on.shared, "a shared mount"),
            false => (on.shared || on.slave, "a shared or slave mount"),
        };
        if !ok {
            return Err(Error::FailedPrecondition(format!(
                "path {} is mounted on {} but it is not {what} (bind-propagation={})",
                m.source,
                on.point.display(),
                m.propagation.as_str()
            )));
        }
    }
    Ok(())
}
