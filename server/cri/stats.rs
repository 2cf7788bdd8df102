//! Stats of CRI containers and pods, from berth's cgroup readers (one
//! sample each, taken when asked), with the writable layer's usage from
//! the container's upper directory. A pod's figures are its containers'
//! and its sandbox's summed; its network is the sandbox's namespace's.

use super::containers::container_config;
use super::pods::sandbox_config;
use super::{kept, matches_labels, Kept};
use crate::runtime::{Record, Sample};
use crate::sys::time::now_nanos;
use k8s_cri::v1 as cri;
use tonic::Status;

fn value(v: u64) -> Option<cri::UInt64Value> {
    Some(cri::UInt64Value { value: v })
}

impl super::CriRuntime {
    pub(super) fn container_stats(&self, id: &str) -> Result<cri::ContainerStats, Status> {
        let r = self.container(id)?;
        self.stats_of(&r)
    }

    pub(super) fn list_container_stats(
        &self,
        filter: Option<cri::ContainerStatsFilter>,
    ) -> Vec<cri::ContainerStats> {
        let filter = filter.unwrap_or_default();
        self.rt
            .list(true)
            .iter()
            .filter(|r| kept(r) == Some(Kept::Container))
            .filter(|r| r.id.starts_with(&filter.id))
            .filter(|r| r.spec.pod.starts_with(&filter.pod_sandbox_id))
            .filter(|r| matches_labels(&container_config(r).labels, &filter.label_selector))
            .filter_map(|r| self.stats_of(r).ok())
            .collect()
    }

    pub(super) fn pod_stats(&self, id: &str) -> Result<cri::PodSandboxStats, Status> {
        let r = self
            .sandbox(id)?
            .ok_or_else(|| Status::not_found(format!("no pod sandbox {id:?}")))?;
        self.pod_stats_of(&r)
    }

    pub(super) fn list_pod_stats(
        &self,
        filter: Option<cri::PodSandboxStatsFilter>,
    ) -> Vec<cri::PodSandboxStats> {
        let filter = filter.unwrap_or_default();
        self.rt
            .list(true)
            .iter()
            .filter(|r| kept(r) == Some(Kept::Sandbox) && r.status.is_running())
            .filter(|r| r.id.starts_with(&filter.id))
            .filter(|r| matches_labels(&sandbox_config(r).labels, &filter.label_selector))
            .filter_map(|r| self.pod_stats_of(r).ok())
            .collect()
    }

    fn stats_of(&self, r: &Record) -> Result<cri::ContainerStats, Status> {
        let s = self.rt.sample_now(&r.id)?;
        Ok(self.stats_from(r, &s))
    }

    fn stats_from(&self, r: &Record, s: &Sample) -> cri::ContainerStats {
        let config = container_config(r);
        let now = now_nanos();
        cri::ContainerStats {
            attributes: Some(cri::ContainerAttributes {
                id: r.id.clone(),
                metadata: config.metadata,
                labels: config.labels,
                annotations: config.annotations,
            }),
            cpu: Some(cpu(s, now)),
            memory: Some(memory(s, now)),
            writable_layer: Some(cri::FilesystemUsage {
                timestamp: now,
                fs_id: Some(cri::FilesystemIdentifier {
                    mountpoint: self.rt.containers_root().display().to_string(),
                }),
                used_bytes: value(self.rt.writable_size(&r.id)),
                inodes_used: None,
            }),
            swap: None,
        }
    }

    fn pod_stats_of(&self, sandbox: &Record) -> Result<cri::PodSandboxStats, Status> {
        let own = self.rt.sample_now(&sandbox.id)?;
        let members: Vec<Record> = self
            .rt
            .members(&sandbox.id)
            .iter()
            .filter_map(|id| self.rt.inspect(id).ok())
            .filter(|r| r.status.is_running())
            .collect();
        // Each member sampled once: its own figures and the pod's sum.
        let (containers, samples): (Vec<cri::ContainerStats>, Vec<Sample>) = members
            .iter()
            .filter_map(|r| {
                let s = self.rt.sample_now(&r.id).ok()?;
                Some((self.stats_from(r, &s), s))
            })
            .unzip();
        let mut total = own.clone();
        for s in &samples {
            total.cpu_usage_nanos += s.cpu_usage_nanos;
            total.memory_usage_bytes += s.memory_usage_bytes;
            total.memory_cache_bytes += s.memory_cache_bytes;
            total.pids_current += s.pids_current;
        }
        let now = now_nanos();
        let config = sandbox_config(sandbox);
        let eth0 = cri::NetworkInterfaceUsage {
            name: "eth0".into(),
            rx_bytes: value(own.net_rx_bytes),
            rx_errors: value(0),
            tx_bytes: value(own.net_tx_bytes),
            tx_errors: value(0),
        };
        Ok(cri::PodSandboxStats {
            attributes: Some(cri::PodSandboxAttributes {
                id: sandbox.id.clone(),
                metadata: config.metadata,
                labels: config.labels,
                annotations: config.annotations,
            }),
            linux: Some(cri::LinuxPodSandboxStats {
                cpu: Some(cpu(&total, now)),
                memory: Some(memory(&total, now)),
                network: Some(cri::NetworkUsage {
                    timestamp: now,
                    default_interface: Some(eth0.clone()),
                    interfaces: vec![eth0],
                }),
                process: Some(cri::ProcessUsage {
                    timestamp: now,
                    process_count: value(total.pids_current),
                }),
                containers,
            }),
            windows: None,
        })
    }
}

fn cpu(s: &Sample, now: i64) -> cri::CpuUsage {
    cri::CpuUsage {
        timestamp: now,
        usage_core_nano_seconds: value(s.cpu_usage_nanos),
        usage_nano_cores: None,
    }
}

/// The working set is what berth counts as in use (page cache left out).
fn memory(s: &Sample, now: i64) -> cri::MemoryUsage {
    let limited = s.memory_limit_bytes > 0;
    cri::MemoryUsage {
        timestamp: now,
        working_set_bytes: value(s.memory_usage_bytes),
        available_bytes: limited.then(|| cri::UInt64Value {
            value: s.memory_limit_bytes.saturating_sub(s.memory_usage_bytes),
        }),
        usage_bytes: value(s.memory_usage_bytes + s.memory_cache_bytes),
        rss_bytes: None,
        page_faults: None,
        major_page_faults: None,
    }
}
