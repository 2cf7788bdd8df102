//! `berth inspect` of a container: every setting in force under Docker's
//! names (State, HostConfig, Mounts, Config, NetworkSettings).

use super::{rfc3339, status_name};
use berth::pb::{self, Status};
use serde_json::{json, Value};

/// `berth inspect`: every setting in force, under Docker's names.
pub fn inspect(c: &pb::Container) -> Value {
    let cfg = c.config.clone().unwrap_or_default();
    let st = c.state.clone().unwrap_or_default();
    let res = cfg.resources.clone().unwrap_or_default();
    // As Docker shows it, a restarting container is running.
    let restarting = st.status == Status::Restarting as i32;
    let running =
        st.status == Status::Running as i32 || st.status == Status::Paused as i32 || restarting;
    let network = match cfg.network.as_str() {
        "" => "none",
        n => n,
    };
    let mut v = json!({
        "Id": c.id,
        "Created": rfc3339(&c.created_at),
        "Path": cfg.args.first(),
        "Args": cfg.args.get(1..).unwrap_or_default(),
        "State": {
            "Status": status_name(st.status),
            "Running": running,
            "Paused": st.status == Status::Paused as i32,
            "Restarting": restarting,
            "OOMKilled": st.oom_killed,
            "Dead": false,
            "Pid": st.pid,
            "ExitCode": st.exit_code,
            "Error": "",
            "StartedAt": rfc3339(&st.started_at),
            "FinishedAt": rfc3339(&st.finished_at),
            "Signal": st.signal,
            "ExitCount": st.exit_count,
        },
        "Name": format!("/{}", c.name),
        // The image's id; Config.Image is the name it was run as.
        "Image": cfg.image_id,
        "Platform": "linux",
        "RestartCount": st.restart_count,
        "HostConfig": host_config(&cfg, &res, network),
        "Mounts": cfg.mounts.iter().map(|m| match m.volume.is_empty() {
            true => json!({
                "Type": "bind",
                "Source": m.source,
                "Destination": m.destination,
                "Mode": if m.read_only { "ro" } else { "" },
                "RW": !m.read_only,
                "Propagation": if m.propagation.is_empty() { "rprivate" } else { &m.propagation },
            }),
            false => json!({
                "Type": "volume",
                "Name": m.volume,
                "Source": m.source,
                "Destination": m.destination,
                "Driver": "local",
                "Mode": "",
                "RW": !m.read_only,
                "Propagation": "",
            }),
        }).collect::<Vec<_>>(),
        "Config": {
            "Hostname": cfg.hostname,
            "Domainname": cfg.domainname,
            "MacAddress": cfg.mac_address,
            "User": cfg.user,
            "Env": cfg.env,
            "Entrypoint": (!cfg.entrypoint.is_empty()).then_some(&cfg.entrypoint),
            "Cmd": (!cfg.cmd.is_empty()).then_some(&cfg.cmd),
            "WorkingDir": cfg.working_dir,
            "Labels": cfg.labels,
            "StopSignal": cfg.stop_signal,
            "StopTimeout": cfg.stop_timeout_seconds,
            "Rootfs": cfg.rootfs,
            "Image": cfg.image,
            "ExposedPorts": cfg.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
            "Tty": cfg.tty,
            "OpenStdin": cfg.stdin_open,
            "StdinOnce": cfg.stdin_once,
        },
        "NetworkSettings": network_settings(network, &cfg, &st),
    });
    // As Docker's, only with a health check.
    if let Some(h) = &st.health {
        v["State"]["Health"] = health(h);
    }
    if let Some(h) = &cfg.healthcheck {
        const MS: u64 = 1_000_000;
        v["Config"]["Healthcheck"] = json!({
            "Test": h.test,
            "Interval": h.interval_milliseconds * MS,
            "Timeout": h.timeout_milliseconds * MS,
            "StartPeriod": h.start_period_milliseconds * MS,
            "StartInterval": h.start_interval_milliseconds * MS,
            "Retries": h.retries,
            "OnFailure": h.on_failure,
        });
    }
    v
}

/// `.State.Health`, under Docker's keys.
fn health(h: &pb::Health) -> Value {
    json!({
        "Status": crate::output::health_name(h.status),
        "FailingStreak": h.failing_streak,
        "Log": h.log.iter().map(|p| json!({
            "Start": rfc3339(&p.start),
            "End": rfc3339(&p.end),
            "ExitCode": p.exit_code,
            "Output": p.output,
        })).collect::<Vec<_>>(),
    })
}

/// inspect's HostConfig: what the container was created with, under
/// Docker's keys.
fn host_config(cfg: &pb::ContainerConfig, res: &pb::Resources, network: &str) -> Value {
    let log_config = json!({
        "Type": "berth",
        // 0: the daemon's default, shown as Docker shows an unset option.
        "Config": {
            "max-size": (cfg.log_max_size_bytes > 0).then(|| cfg.log_max_size_bytes.to_string()),
            "max-file": (cfg.log_max_files > 0).then(|| cfg.log_max_files.to_string()),
        },
    });
    let mut v = json!({
        // Host paths only: volumes are in Mounts.
        "Binds": cfg.mounts.iter().filter(|m| m.volume.is_empty()).map(|m| match m.read_only {
            true => format!("{}:{}:ro", m.source, m.destination),
            false => format!("{}:{}", m.source, m.destination),
        }).collect::<Vec<_>>(),
        "NetworkMode": network,
        "AutoRemove": cfg.auto_remove,
        "Privileged": cfg.privileged,
        "SecurityOpt": std::iter::once(format!("no-new-privileges={}", cfg.no_new_privileges))
            .chain((!cfg.seccomp_profile.is_empty()).then(|| format!("seccomp={}", cfg.seccomp_profile)))
            .collect::<Vec<_>>(),
        "ReadonlyRootfs": cfg.read_only,
        "CapAdd": cfg.cap_add,
        "CapDrop": cfg.cap_drop,
        "Init": cfg.init,
        "LogConfig": log_config,
        "Memory": res.memory_limit_bytes.unwrap_or(0),
        "MemorySwap": res.memory_swap_limit_bytes.unwrap_or(0),
        "NanoCpus": (res.cpus.unwrap_or(0.0) * 1e9).round() as i64,
        "CpuShares": res.cpu_shares.unwrap_or(0),
        "PidsLimit": res.pids_limit.unwrap_or(0),
        "Dns": cfg.dns,
        "DnsSearch": cfg.dns_search,
        "DnsOptions": cfg.dns_options,
        "ExtraHosts": cfg.extra_hosts,
        "PortBindings": port_map(&cfg.ports, false),
        "PublishAllPorts": cfg.publish_all_ports,
        "Ulimits": cfg.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
        "ShmSize": cfg.shm_size_bytes,
        "Sysctls": cfg.sysctls,
        "GroupAdd": cfg.group_add,
        "OomScoreAdj": cfg.oom_score_adj,
        "Tmpfs": cfg.tmpfs.iter().map(|t| (t.destination.clone(), json!(t.options))).collect::<serde_json::Map<_, _>>(),
    });
    let more = json!({
        "RestartPolicy": {
            "Name": cfg.restart_policy.as_ref().map_or("no", |p| p.name.as_str()),
            "MaximumRetryCount": cfg.restart_policy.as_ref().map_or(0, |p| p.maximum_retry_count),
        },
        // Docker's keys, some for what berth has one way only.
        "IpcMode": cfg.ipc_mode,
        "PidMode": cfg.pid_mode,
        "UTSMode": cfg.uts_mode,
        "Cgroup": "",
        "CgroupParent": "",
        "Runtime": "berth",
        "Isolation": "",
        "ContainerIDFile": "",
        "VolumeDriver": "",
        "VolumesFrom": null,
        "Links": null,
        "ConsoleSize": [0, 0],
        "BlkioWeight": res.blkio_weight.unwrap_or(0),
        "BlkioDeviceReadBps": rates(&res.device_read_bps),
        "BlkioDeviceWriteBps": rates(&res.device_write_bps),
        "BlkioDeviceReadIOps": rates(&res.device_read_iops),
        "BlkioDeviceWriteIOps": rates(&res.device_write_iops),
        "CpuPeriod": res.cpu_period_us.unwrap_or(0),
        "CpuQuota": res.cpu_quota_us.unwrap_or(0),
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": res.cpuset_cpus.clone().unwrap_or_default(),
        "CpusetMems": res.cpuset_mems.clone().unwrap_or_default(),
        "Devices": cfg.devices.iter().map(|d| json!({
            "PathOnHost": d.host_path,
            "PathInContainer": d.container_path,
            "CgroupPermissions": d.permissions,
        })).collect::<Vec<_>>(),
        "DeviceCgroupRules": (!cfg.device_cgroup_rules.is_empty()).then_some(&cfg.device_cgroup_rules),
        "KernelMemory": res.kernel_memory_bytes.unwrap_or(0),
        "MemoryReservation": res.memory_reservation_bytes.unwrap_or(0),
        "MemorySwappiness": res.memory_swappiness.filter(|s| *s >= 0),
        "OomKillDisable": res.oom_kill_disable.unwrap_or(false),
    });
    if let (Some(v), Value::Object(more)) = (v.as_object_mut(), more) {
        v.extend(more);
    }
    v
}

/// Docker's list of device rates (null when empty, as Docker prints it).
fn rates(list: &[pb::DeviceRate]) -> Value {
    match list.is_empty() {
        true => Value::Null,
        false => list
            .iter()
            .map(|d| json!({"Path": d.path, "Rate": d.rate}))
            .collect(),
    }
}

/// Docker's port map: "80/tcp" -> [{HostIp, HostPort}]. `bound`: where
/// the ports are published (NetworkSettings), so no host address is every
/// address, 0.0.0.0, as `berth port` says; else as asked (PortBindings).
fn port_map(ports: &[pb::PortBinding], bound: bool) -> Value {
    let mut map = serde_json::Map::new();
    for p in ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        let port = match p.host_port {
            0 => String::new(),
            n => n.to_string(),
        };
        let ip = match p.host_ip.as_str() {
            "" if bound => "0.0.0.0",
            ip => ip,
        };
        let binding = json!({"HostIp": ip, "HostPort": port});
        match map.get_mut(&key).and_then(Value::as_array_mut) {
            Some(list) => list.push(binding),
            None => {
                map.insert(key, json!([binding]));
            }
        }
    }
    Value::Object(map)
}

fn network_settings(name: &str, cfg: &pb::ContainerConfig, st: &pb::ContainerState) -> Value {
    let n = st.network.clone().unwrap_or_default();
    // Every network it joins, with where it is on each while it runs.
    let mode = [pb::EndpointConfig {
        network: name.to_string(),
        network_id: cfg.network_id.clone(),
        aliases: cfg.network_aliases.clone(),
    }];
    let joined = match cfg.networks.is_empty() {
        true => &mode[..],
        false => &cfg.networks[..],
    };
    let networks: serde_json::Map<String, Value> = joined
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let on = st.networks.iter().find(|n| n.network_id == e.network_id);
            let on = on.cloned().unwrap_or_default();
            // The addresses asked for, on the network they were asked on.
            let asked = (i == 0 && !(cfg.ip_address.is_empty() && cfg.ipv6_address.is_empty()))
                .then(|| json!({"IPv4Address": cfg.ip_address, "IPv6Address": cfg.ipv6_address}));
            let v = json!({
                "NetworkID": e.network_id,
                "IPAMConfig": asked,
                "Aliases": e.aliases,
                "IPAddress": on.ip_address,
                "IPPrefixLen": on.prefix_length,
                "Gateway": on.gateway,
                "MacAddress": on.mac_address,
                "GlobalIPv6Address": on.global_ipv6_address,
                "GlobalIPv6PrefixLen": on.global_ipv6_prefix_length,
                "IPv6Gateway": on.ipv6_gateway,
            });
            (e.network.clone(), v)
        })
        .collect();
    // The top-level addresses are the default bridge's alone, as Docker
    // shows them: empty on a network of the user's.
    let n = match name {
        crate::DEFAULT_NETWORK => n,
        _ => pb::NetworkSettings {
            ports: n.ports,
            ..Default::default()
        },
    };
    json!({
        "Ports": port_map(&n.ports, true),
        "IPAddress": n.ip_address,
        "IPPrefixLen": n.prefix_length,
        "Gateway": n.gateway,
        "MacAddress": n.mac_address,
        "GlobalIPv6Address": n.global_ipv6_address,
        "GlobalIPv6PrefixLen": n.global_ipv6_prefix_length,
        "IPv6Gateway": n.ipv6_gateway,
        "Networks": networks,
    })
}
