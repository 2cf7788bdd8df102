//! The System service: the daemon's version, settings and counts.

use crate::runtime::Runtime;
use berth::pb::{self, system_server::System};
use std::path::PathBuf;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct SystemService {
    pub rt: Arc<Runtime>,
    pub root: PathBuf,
    /// Where containers' cgroups are made.
    pub cgroup_parent: String,
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[tonic::async_trait]
impl System for SystemService {
    async fn version(
        &self,
        _: Request<pb::VersionRequest>,
    ) -> Result<Response<pb::VersionResponse>, Status> {
        Ok(Response::new(pb::VersionResponse {
            version: VERSION.into(),
            api_version: "berth.v1".into(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            kernel_version: kernel(),
        }))
    }

    async fn info(
        &self,
        _: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        let n = self.rt.counts();
        let v2 = cgroups_rs::fs::hierarchies::is_cgroup2_unified_mode();
        Ok(Response::new(pb::InfoResponse {
            version: VERSION.into(),
            root: self.root.display().to_string(),
            cgroup_version: if v2 { 2 } else { 1 },
            cgroup_driver: "cgroupfs".into(),
            cgroup_parent: self.cgroup_parent.clone(),
            containers: n.running + n.paused + n.stopped,
            containers_running: n.running,
            containers_paused: n.paused,
            containers_stopped: n.stopped,
            kernel_version: kernel(),
            operating_system: operating_system(),
            arch: std::env::consts::ARCH.into(),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
            memory_bytes: self.rt.host_memory(),
            name: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            events_seq: self.rt.bus().last_seq(),
        }))
    }
}

/// The running kernel's release.
fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// PRETTY_NAME from os-release, as Docker's "Operating System".
fn operating_system() -> String {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| {
            let line = text.lines().find_map(|l| l.strip_prefix("PRETTY_NAME="))?;
            Some(line.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}
