//! Every conversion between the protobuf messages and the domain, both
//! ways. (Events are the exception: the journal stores the API's Event
//! message as its record, so subscribers get what was stored.)

mod request;

use crate::runtime::{LogLine, LogsQuery, Record, Sample, Samples, Status, WaitCondition};
use crate::spec::{Rate, Resources};
use crate::{events::timestamp, logs};
use berth::pb;

/// A terminal size as the kernel takes it, (rows, columns): 24x80 where
/// unsaid.
pub fn terminal_size(s: pb::TerminalSize) -> (u16, u16) {
    let clamp = |v: u32, default: u16| match v {
        0 => default,
        v => v.min(u16::MAX as u32) as u16,
    };
    (clamp(s.rows, 24), clamp(s.cols, 80))
}

pub fn status(s: Status) -> pb::Status {
    match s {
        Status::Created => pb::Status::Created,
        Status::Running => pb::Status::Running,
        Status::Paused => pb::Status::Paused,
        Status::Exited => pb::Status::Exited,
        Status::Restarting => pb::Status::Restarting,
    }
}

/// A wait condition, or the raw value if it is not one.
pub fn wait_condition(c: i32) -> Result<WaitCondition, i32> {
    match pb::WaitCondition::try_from(c) {
        Ok(pb::WaitCondition::NotRunning) => Ok(WaitCondition::NotRunning),
        Ok(pb::WaitCondition::NextExit) => Ok(WaitCondition::NextExit),
        Ok(pb::WaitCondition::Removed) => Ok(WaitCondition::Removed),
        Ok(pb::WaitCondition::Healthy) => Ok(WaitCondition::Healthy),
        Ok(pb::WaitCondition::Unhealthy) => Ok(WaitCondition::Unhealthy),
        Err(_) => Err(c),
    }
}

impl From<&pb::LogsRequest> for LogsQuery {
    fn from(r: &pb::LogsRequest) -> LogsQuery {
        let both = !r.stdout && !r.stderr;
        LogsQuery {
            follow: r.follow,
            tail: r.tail.map(|n| n as usize),
            since: r.since.as_ref().map(crate::events::nanos),
            until: r.until.as_ref().map(crate::events::nanos),
            timestamps: r.timestamps,
            stdout: r.stdout || both,
            stderr: r.stderr || both,
        }
    }
}

pub fn log_entry(l: LogLine) -> pb::LogEntry {
    pb::LogEntry {
        time: l.time.map(timestamp),
        stream: match l.stream {
            logs::STDOUT => pb::LogStream::Stdout,
            logs::STDERR => pb::LogStream::Stderr,
            _ => pb::LogStream::Unspecified,
        } as i32,
        line: l.line,
        lost_lines: l.lost_lines,
    }
}

pub fn samples(s: Samples) -> pb::StatsResponse {
    pb::StatsResponse {
        time: Some(timestamp(s.time)),
        containers: s.containers.into_iter().map(sample).collect(),
    }
}

fn sample(s: Sample) -> pb::ContainerStats {
    pb::ContainerStats {
        id: s.id,
        name: s.name,
        status: status(s.status) as i32,
        cpu_usage_nanos: s.cpu_usage_nanos,
        cpu_percent: s.cpu_percent,
        memory_usage_bytes: s.memory_usage_bytes,
        memory_limit_bytes: s.memory_limit_bytes,
        memory_cache_bytes: s.memory_cache_bytes,
        pids_current: s.pids_current,
        pids_limit: s.pids_limit,
        net_rx_bytes: s.net_rx_bytes,
        net_tx_bytes: s.net_tx_bytes,
        block_read_bytes: s.block_read_bytes,
        block_write_bytes: s.block_write_bytes,
    }
}

/// A process of a container, for Top.
pub fn process(p: crate::sys::procs::Process) -> pb::Process {
    pb::Process {
        pid: p.pid,
        ppid: p.ppid,
        uid: p.uid,
        started_at: Some(p.started_at.into()),
        cpu_nanos: p.cpu.as_nanos().try_into().unwrap_or(u64::MAX),
        tty: p.tty,
        command: p.command,
    }
}

fn ts(nanos: i64) -> Option<prost_types::Timestamp> {
    (nanos > 0).then(|| timestamp(nanos))
}

/// A container as the API shows it.
pub fn container(r: &Record) -> pb::Container {
    let s = &r.spec;
    pb::Container {
        id: r.id.clone(),
        name: s.name.clone(),
        config: Some(pb::ContainerConfig {
            rootfs: s.rootfs.clone(),
            args: s.args.clone(),
            env: s.env.clone(),
            working_dir: s.working_dir.clone(),
            hostname: s.hostname.clone(),
            labels: s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            init: s.init,
            stop_signal: crate::spec::signal_name(s.stop_signal),
            stop_signal_number: s.stop_signal,
            stop_timeout_seconds: s.stop_timeout,
            mounts: s
                .mounts
                .iter()
                .map(|m| pb::Mount {
                    source: m.source.clone(),
                    destination: m.destination.clone(),
                    read_only: m.read_only,
                    propagation: m.propagation.as_str().into(),
                    volume: m.volume.clone().unwrap_or_default(),
                })
                .collect(),
            network: match s.network {
                crate::spec::Network::Bridge => s.net.name.clone(),
                crate::spec::Network::Container => s.namespaces.net.shown(""),
                n => n.as_str().to_string(),
            },
            ports: s
                .net
                .ports
                .iter()
                .map(crate::runtime::port_binding)
                .collect(),
            publish_all_ports: s.net.publish_all,
            network_aliases: s.net.aliases.clone(),
            network_id: s.net.id.clone(),
            networks: s
                .net
                .endpoints()
                .into_iter()
                .map(|e| pb::EndpointConfig {
                    network: e.name,
                    network_id: e.id,
                    aliases: e.aliases,
                })
                .collect(),
            log_max_size_bytes: s.log_max_size,
            log_max_files: s.log_max_files,
            resources: Some(resources(&s.resources)),
            cap_add: s.cap_add.clone(),
            cap_drop: s.cap_drop.clone(),
            privileged: s.privileged,
            read_only: s.read_only,
            no_new_privileges: s.no_new_privs(),
            user: s.user.clone(),
            image: s
                .image
                .as_ref()
                .map(|i| i.reference.clone())
                .unwrap_or_default(),
            image_id: s.image.as_ref().map(|i| i.id.clone()).unwrap_or_default(),
            exposed_ports: s.exposed_ports.clone(),
            stdin_open: s.stdin_open,
            stdin_once: s.stdin_once,
            tty: s.tty.is_some(),
            dns: s.resolve.dns.clone(),
            dns_search: s.resolve.dns_search.clone(),
            dns_options: s.resolve.dns_options.clone(),
            extra_hosts: s
                .resolve
                .extra_hosts
                .iter()
                .map(|(name, ip)| format!("{name}:{ip}"))
                .collect(),
            auto_remove: s.auto_remove,
            restart_policy: Some(restart_policy(s.restart)),
            healthcheck: s.health.as_ref().map(|h| pb::Healthcheck {
                test: h.test.clone(),
                interval_milliseconds: h.interval_ms,
                timeout_milliseconds: h.timeout_ms,
                start_period_milliseconds: h.start_period_ms,
                start_interval_milliseconds: h.start_interval_ms,
                retries: h.retries,
                on_failure: h.on_failure.name().into(),
            }),
            ulimits: s
                .tuning
                .ulimits
                .iter()
                .map(|u| pb::Ulimit {
                    name: u.name.clone(),
                    soft: u.soft,
                    hard: u.hard,
                })
                .collect(),
            entrypoint: s.args[..s.entrypoint_args.min(s.args.len())].to_vec(),
            cmd: s.args[s.entrypoint_args.min(s.args.len())..].to_vec(),
            devices: s
                .tuning
                .devices
                .iter()
                .map(|d| pb::DeviceMapping {
                    host_path: d.host_path.clone(),
                    container_path: d.container_path.clone(),
                    permissions: d.permissions.clone(),
                })
                .collect(),
            device_cgroup_rules: s.tuning.device_cgroup_rules.clone(),
            seccomp_profile: match (s.seccomp_unconfined, &s.seccomp_profile) {
                (true, _) => "unconfined".into(),
                (false, Some(json)) => json.clone(),
                (false, None) => String::new(),
            },
            ip_address: s.net.fixed.ip.map(|a| a.to_string()).unwrap_or_default(),
            ipv6_address: s.net.fixed.ip6.map(|a| a.to_string()).unwrap_or_default(),
            mac_address: s.net.fixed.mac.clone().unwrap_or_default(),
            pid_mode: s.namespaces.pid.shown(""),
            ipc_mode: s.namespaces.ipc.shown("private"),
            uts_mode: s.namespaces.uts.shown(""),
            shm_size_bytes: s.tuning.shm_size,
            sysctls: s.tuning.sysctls.clone().into_iter().collect(),
            group_add: s.tuning.group_add.clone(),
            domainname: s.tuning.domainname.clone(),
            oom_score_adj: s.tuning.oom_score_adj,
            tmpfs: s
                .tuning
                .tmpfs
                .iter()
                .map(|t| pb::TmpfsMount {
                    destination: t.destination.clone(),
                    options: t.options.clone(),
                })
                .collect(),
        }),
        state: Some(pb::ContainerState {
            status: status(r.status) as i32,
            pid: r.pid.max(0) as u32,
            exit_code: r.exit_code,
            signal: r.signal,
            started_at: ts(r.started_at),
            finished_at: ts(r.finished_at),
            exit_count: r.exits,
            oom_killed: r.oom_killed,
            network: r.networks.first().map(crate::runtime::settings),
            networks: r.networks.iter().map(crate::runtime::settings).collect(),
            restart_count: r.restart_count,
            restart_due: (r.status == Status::Restarting)
                .then(|| ts(r.restart_due))
                .flatten(),
            stopped_by_user: r.stopped_by_user,
            health: r.health.as_ref().map(|h| h.pb()),
        }),
        created_at: ts(r.created_at),
        trimmed: false,
        size_rw_bytes: None,
        size_root_fs_bytes: None,
    }
}

pub fn restart_policy(p: crate::spec::RestartPolicy) -> pb::RestartPolicy {
    pb::RestartPolicy {
        name: p.name().into(),
        maximum_retry_count: p.max_retries(),
    }
}

/// Limits as the API shows them: every field set.
pub fn resources(r: &Resources) -> pb::Resources {
    pb::Resources {
        memory_limit_bytes: Some(r.memory),
        memory_swap_limit_bytes: Some(r.memory_swap),
        cpus: Some(r.nano_cpus as f64 / 1e9),
        cpu_shares: Some(r.cpu_shares),
        pids_limit: Some(r.pids_limit),
        cpu_period_us: Some(r.cpu_period),
        cpu_quota_us: Some(r.cpu_quota),
        cpuset_cpus: Some(r.cpuset_cpus.clone()),
        cpuset_mems: Some(r.cpuset_mems.clone()),
        memory_reservation_bytes: Some(r.memory_reservation),
        memory_swappiness: Some(r.memory_swappiness.map_or(-1, i64::from)),
        kernel_memory_bytes: Some(r.kernel_memory),
        oom_kill_disable: Some(r.oom_kill_disable),
        blkio_weight: Some(u32::from(r.blkio_weight)),
        device_read_bps: rates(r, Rate::ReadBps),
        device_write_bps: rates(r, Rate::WriteBps),
        device_read_iops: rates(r, Rate::ReadIops),
        device_write_iops: rates(r, Rate::WriteIops),
    }
}

fn rates(r: &Resources, rate: Rate) -> Vec<pb::DeviceRate> {
    r.throttles
        .iter()
        .filter(|t| t.rate == rate)
        .map(|t| pb::DeviceRate {
            path: t.path.clone(),
            rate: t.limit,
        })
        .collect()
}
