//! A create request as the runtime validates it. On its own, so that the
//! fuzz target runs the daemon's own conversion.

use crate::spec::{
    Device, HealthRequest, MountRequest, PortRequest, Rate, Request, ResourcesRequest, Tmpfs,
    Tuning, Ulimit,
};
use berth::pb;

impl From<pb::CreateRequest> for Request {
    fn from(r: pb::CreateRequest) -> Request {
        Request {
            name: r.name,
            rootfs: r.rootfs,
            args: r.args,
            env: r.env,
            working_dir: r.working_dir,
            hostname: r.hostname,
            labels: r.labels.into_iter().collect(),
            init: r.init,
            stop_signal: r.stop_signal,
            stop_timeout: r.stop_timeout_seconds,
            mounts: r
                .mounts
                .into_iter()
                .map(|m| MountRequest {
                    source: m.source,
                    destination: m.destination,
                    read_only: m.read_only,
                    propagation: m.propagation,
                    volume: m.volume,
                    recursive_read_only: false,
                })
                .collect(),
            network: r.network,
            log_max_size: r.log_max_size_bytes,
            log_max_files: r.log_max_files,
            resources: r.resources.unwrap_or_default().into(),
            cap_add: r.cap_add,
            cap_drop: r.cap_drop,
            privileged: r.privileged,
            read_only: r.read_only,
            no_new_privs: r.no_new_privileges,
            user: r.user,
            auto_remove: r.auto_remove,
            restart: r
                .restart_policy
                .map(|p| (p.name, p.maximum_retry_count))
                .unwrap_or_default(),
            health: r
                .healthcheck
                .map(|h| HealthRequest {
                    test: h.test,
                    interval_ms: h.interval_milliseconds,
                    timeout_ms: h.timeout_milliseconds,
                    start_period_ms: h.start_period_milliseconds,
                    start_interval_ms: h.start_interval_milliseconds,
                    retries: h.retries,
                    on_failure: h.on_failure,
                })
                .unwrap_or_default(),
            image: None,
            entrypoint_args: 0,
            seccomp_profile: r.seccomp_profile,
            ip: r.ip_address,
            ip6: r.ipv6_address,
            mac: r.mac_address,
            pid_mode: r.pid_mode,
            ipc_mode: r.ipc_mode,
            uts_mode: r.uts_mode,
            // Pods are made through the CRI.
            sandbox: false,
            pod: String::new(),
            extension: None,
            cri_log: String::new(),
            masked_paths: None,
            readonly_paths: None,
            cni: None,
            cgroup_parent: String::new(),
            exposed_ports: Vec::new(),
            volumes: Vec::new(),
            dns: r.dns,
            dns_search: r.dns_search,
            dns_options: r.dns_options,
            extra_hosts: r.extra_hosts,
            ports: r
                .ports
                .into_iter()
                .map(|p| PortRequest {
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    container_port: p.container_port,
                    protocol: p.protocol,
                })
                .collect(),
            publish_all: r.publish_all_ports,
            aliases: r.network_aliases,
            expose: r.expose,
            stdin_open: r.stdin_open,
            stdin_once: r.stdin_once,
            tty: r
                .tty
                .then(|| super::terminal_size(r.console_size.unwrap_or_default())),
            tuning: Tuning {
                ulimits: r
                    .ulimits
                    .into_iter()
                    .map(|u| Ulimit {
                        name: u.name,
                        soft: u.soft,
                        hard: u.hard,
                    })
                    .collect(),
                shm_size: r.shm_size_bytes,
                sysctls: r.sysctls.into_iter().collect(),
                group_add: r.group_add,
                strict_groups: false,
                domainname: r.domainname,
                oom_score_adj: r.oom_score_adj.unwrap_or(0),
                tmpfs: r
                    .tmpfs
                    .into_iter()
                    .map(|t| Tmpfs {
                        destination: t.destination,
                        options: t.options,
                    })
                    .collect(),
                devices: r
                    .devices
                    .into_iter()
                    .map(|d| Device {
                        host_path: d.host_path,
                        container_path: d.container_path,
                        permissions: d.permissions,
                        kind: 'c',
                        major: 0,
                        minor: 0,
                    })
                    .collect(),
                device_cgroup_rules: r.device_cgroup_rules,
            },
        }
    }
}

impl From<pb::Resources> for ResourcesRequest {
    fn from(r: pb::Resources) -> ResourcesRequest {
        ResourcesRequest {
            memory: r.memory_limit_bytes,
            memory_swap: r.memory_swap_limit_bytes,
            cpus: r.cpus,
            cpu_shares: r.cpu_shares,
            pids_limit: r.pids_limit,
            cpu_period: r.cpu_period_us,
            cpu_quota: r.cpu_quota_us,
            cpuset_cpus: r.cpuset_cpus,
            cpuset_mems: r.cpuset_mems,
            memory_reservation: r.memory_reservation_bytes,
            memory_swappiness: r.memory_swappiness,
            kernel_memory: r.kernel_memory_bytes,
            oom_kill_disable: r.oom_kill_disable,
            blkio_weight: r.blkio_weight,
            throttles: [
                (Rate::ReadBps, r.device_read_bps),
                (Rate::WriteBps, r.device_write_bps),
                (Rate::ReadIops, r.device_read_iops),
                (Rate::WriteIops, r.device_write_iops),
            ]
            .into_iter()
            .flat_map(|(rate, list)| list.into_iter().map(move |d| (rate, d.path, d.rate)))
            .collect(),
        }
    }
}
