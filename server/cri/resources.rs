//! A CRI container's resources as berth's limits, and back. Hugepage
//! limits are left out (berth sets no hugetlb limits; the kubelet sends
//! them, 0 on hosts without hugepages, whatever the host has), and so are
//! cgroup v2 "unified" settings: both are logged.

use crate::spec::{Resources, ResourcesRequest};
use k8s_cri::v1 as cri;

/// The limits the CRI gives; 0 is "not given" for each.
pub fn request(r: &cri::LinuxContainerResources) -> ResourcesRequest {
    let given = |n: i64| (n > 0).then_some(n);
    for h in r.hugepage_limits.iter() {
        match h.limit {
            0 => tracing::debug!(page_size = %h.page_size, "hugepage limit 0 left out"),
            l => {
                tracing::warn!(page_size = %h.page_size, limit = l, "hugepage limit left out: berth sets none")
            }
        }
    }
    if !r.unified.is_empty() {
        tracing::warn!(settings = ?r.unified, "cgroup v2 unified settings left out: berth sets none");
    }
    ResourcesRequest {
        memory: given(r.memory_limit_in_bytes),
        memory_swap: given(r.memory_swap_limit_in_bytes),
        cpu_shares: given(r.cpu_shares).map(|n| n as u64),
        cpu_period: given(r.cpu_period).map(|n| n as u64),
        cpu_quota: given(r.cpu_quota),
        cpuset_cpus: (!r.cpuset_cpus.is_empty()).then(|| r.cpuset_cpus.clone()),
        cpuset_mems: (!r.cpuset_mems.is_empty()).then(|| r.cpuset_mems.clone()),
        ..Default::default()
    }
}

/// berth's limits as the CRI shows them.
pub fn shown(r: &Resources) -> cri::LinuxContainerResources {
    cri::LinuxContainerResources {
        cpu_period: r.cpu_period as i64,
        cpu_quota: r.cpu_quota,
        cpu_shares: r.cpu_shares as i64,
        memory_limit_in_bytes: r.memory,
        memory_swap_limit_in_bytes: r.memory_swap.max(0),
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        ..Default::default()
    }
}
