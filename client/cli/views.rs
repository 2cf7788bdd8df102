//! Containers, stats and events shaped as Docker shows them, for
//! `inspect` and for Go templates: Docker's field names wherever Docker
//! has the field, berth's own beside them where it knows more.

use crate::output::{bytes, human, secs_since, si};
use berth::pb::{self, Action, Status};
use serde_json::{json, Value};

pub fn status_name(s: i32) -> &'static str {
    match Status::try_from(s) {
        Ok(Status::Created) => "created",
        Ok(Status::Running) => "running",
        Ok(Status::Paused) => "paused",
        Ok(Status::Exited) => "exited",
        _ => "unknown",
    }
}

fn rfc3339(ts: &Option<prost_types::Timestamp>) -> Value {
    match ts {
        Some(t) => Value::String(t.to_string()),
        None => Value::Null,
    }
}

/// `berth inspect`: every setting in force, under Docker's names.
pub fn inspect(c: &pb::Container) -> Value {
    let cfg = c.config.clone().unwrap_or_default();
    let st = c.state.clone().unwrap_or_default();
    let res = cfg.resources.unwrap_or_default();
    let running = st.status == Status::Running as i32 || st.status == Status::Paused as i32;
    let network = match cfg.network.as_str() {
        "" => "none",
        n => n,
    };
    json!({
        "Id": c.id,
        "Created": rfc3339(&c.created_at),
        "Path": cfg.args.first(),
        "Args": cfg.args.get(1..).unwrap_or_default(),
        "State": {
            "Status": status_name(st.status),
            "Running": running,
            "Paused": st.status == Status::Paused as i32,
            "Restarting": false,
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
        "RestartCount": 0,
        "HostConfig": host_config(&cfg, &res, network),
        "Mounts": cfg.mounts.iter().map(|m| json!({
            "Type": "bind",
            "Source": m.source,
            "Destination": m.destination,
            "Mode": if m.read_only { "ro" } else { "" },
            "RW": !m.read_only,
            "Propagation": "rprivate",
        })).collect::<Vec<_>>(),
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
        "Binds": cfg.mounts.iter().map(|m| match m.read_only {
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
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
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
        "BlkioWeight": 0,
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": "",
        "CpusetMems": "",
        "Devices": cfg.devices.iter().map(|d| json!({
            "PathOnHost": d.host_path,
            "PathInContainer": d.container_path,
            "CgroupPermissions": d.permissions,
        })).collect::<Vec<_>>(),
        "DeviceCgroupRules": (!cfg.device_cgroup_rules.is_empty()).then_some(&cfg.device_cgroup_rules),
        "KernelMemory": 0,
        "MemoryReservation": 0,
        "MemorySwappiness": null,
        "OomKillDisable": false,
    });
    if let (Some(v), Value::Object(more)) = (v.as_object_mut(), more) {
        v.extend(more);
    }
    v
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

/// `docker ps`'s PORTS of a running container on a bridge: each published
/// port ("0.0.0.0:8080->80/tcp") and each exposed one left unpublished
/// ("6379/tcp"), by port.
pub fn ports_text(cfg: &pb::ContainerConfig, st: &pb::ContainerState) -> String {
    let Some(net) = st.network.as_ref() else {
        return String::new();
    };
    let mut ports: Vec<(u32, String, String)> = net
        .ports
        .iter()
        .map(|p| {
            let ip = if p.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &p.host_ip
            };
            let shown = format!("{ip}:{}->{}/{}", p.host_port, p.container_port, p.protocol);
            (p.container_port, p.protocol.clone(), shown)
        })
        .collect();
    for e in &cfg.exposed_ports {
        let (port, protocol) = e.split_once('/').unwrap_or((e, "tcp"));
        let Ok(port) = port.parse::<u32>() else {
            continue;
        };
        if !ports
            .iter()
            .any(|(p, proto, _)| *p == port && proto == protocol)
        {
            ports.push((port, protocol.to_string(), format!("{port}/{protocol}")));
        }
    }
    ports.sort();
    ports
        .into_iter()
        .map(|(_, _, shown)| shown)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A string as Go's strconv.Quote writes it (docker ps's COMMAND).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A time as Go's time.Time prints it, in UTC: "2026-12-05 13:43:21 +0000
/// UTC" (docker ps's CreatedAt).
pub fn go_time(t: &prost_types::Timestamp) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.seconds.max(0) as u64);
    let rfc = humantime::format_rfc3339_seconds(at).to_string();
    format!("{} {} +0000 UTC", &rfc[..10], &rfc[11..19])
}

fn id(id: &str, no_trunc: bool) -> String {
    match no_trunc {
        true => id.to_string(),
        false => id.chars().take(12).collect(),
    }
}

fn labels(l: &std::collections::HashMap<String, String>) -> String {
    let mut pairs: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    pairs.join(",")
}

/// A `berth ps` row, with the fields of `docker ps --format`.
pub fn ps_row(c: &pb::Container, no_trunc: bool) -> Value {
    let cfg = c.config.clone().unwrap_or_default();
    let st = c.state.clone().unwrap_or_default();
    let command = cfg.args.join(" ");
    let command = match no_trunc {
        true => command,
        false => crate::output::truncate(&command, 20),
    };
    json!({
        "ID": id(&c.id, no_trunc),
        "Image": if cfg.image.is_empty() { &cfg.rootfs } else { &cfg.image },
        "Command": go_quote(&command),
        "CreatedAt": c.created_at.as_ref().map(go_time),
        "RunningFor": format!("{} ago", human(secs_since(&c.created_at))),
        "Ports": ports_text(&cfg, &st),
        "State": status_name(st.status),
        "Status": crate::output::status_text(&st),
        "Size": "",
        "Names": c.name,
        "Labels": labels(&cfg.labels),
        "LabelMap": cfg.labels,
        "Mounts": cfg.mounts.iter().map(|m| m.destination.clone()).collect::<Vec<_>>().join(","),
        "Networks": match (cfg.network.as_str(), cfg.networks.is_empty()) {
            ("", _) => "none".to_string(),
            (n, true) => n.to_string(),
            (_, false) => cfg
                .networks
                .iter()
                .map(|e| e.network.as_str())
                .collect::<Vec<_>>()
                .join(","),
        },
    })
}

/// What a `docker ps` table template's header row shows for each field.
pub fn ps_header() -> Value {
    json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
        "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
        "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
        "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
    })
}

/// A `berth stats` row, with the fields of `docker stats --format`:
/// Container is the container as the command line named it (`named`),
/// else its short id.
pub fn stats_row(c: &pb::ContainerStats, named: Option<String>) -> Value {
    let mem_percent = match c.memory_limit_bytes {
        0 => 0.0,
        l => c.memory_usage_bytes as f64 / l as f64 * 100.0,
    };
    json!({
        "Container": named.unwrap_or_else(|| id(&c.id, false)),
        "ID": id(&c.id, false),
        "Name": c.name,
        "CPUPerc": format!("{:.2}%", c.cpu_percent),
        "MemUsage": format!("{} / {}", bytes(c.memory_usage_bytes), bytes(c.memory_limit_bytes)),
        "MemPerc": format!("{mem_percent:.2}%"),
        "NetIO": format!("{} / {}", si(c.net_rx_bytes), si(c.net_tx_bytes)),
        "BlockIO": format!("{} / {}", si(c.block_read_bytes), si(c.block_write_bytes)),
        "PIDs": c.pids_current.to_string(),
    })
}

pub fn stats_header() -> Value {
    json!({
        "Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME",
        "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
        "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    })
}

/// An event as `docker events --format` sees it: Type, Action, Actor
/// (ID, Attributes), status, id, time, timeNano, scope; and berth's seq.
pub fn event(e: &pb::Event) -> Value {
    let time = e.time.unwrap_or_default();
    let nanos = i128::from(time.seconds) * 1_000_000_000 + i128::from(time.nanos);
    let action = Action::try_from(e.action).ok();
    let mut attributes: serde_json::Map<String, Value> = e
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let (kind, name) = match action {
        Some(Action::DaemonStart) => {
            attributes.insert(
                "resumedFromSeq".into(),
                json!(e.resumed_from_seq.to_string()),
            );
            ("daemon", "start".to_string())
        }
        _ => {
            attributes.insert("name".into(), json!(e.name));
            if let Some(code) = e.exit_code {
                attributes.insert("exitCode".into(), json!(code.to_string()));
            }
            if matches!(action, Some(Action::Kill | Action::Die | Action::ExecDie)) && e.signal != 0
            {
                attributes.insert("signal".into(), json!(e.signal.to_string()));
            }
            if action == Some(Action::Rename) {
                attributes.insert("oldName".into(), json!(e.old_name));
            }
            if !e.exec_id.is_empty() {
                attributes.insert("execID".into(), json!(e.exec_id));
            }
            if !e.container_id.is_empty() {
                attributes.insert("container".into(), json!(e.container_id));
            }
            if !e.image.is_empty() {
                attributes.insert("image".into(), json!(e.image));
            }
            let kind = crate::output::type_name(e.r#type);
            // Docker names the command in exec_create and exec_start.
            let name = match action {
                Some(Action::ExecCreate | Action::ExecStart) => {
                    format!(
                        "{}: {}",
                        crate::output::action_name(e.action),
                        e.exec_command
                    )
                }
                _ => crate::output::action_name(e.action),
            };
            (kind, name)
        }
    };
    let mut v = json!({
        "status": name,
        "id": e.id,
        "Type": kind,
        "Action": name,
        "Actor": { "ID": e.id, "Attributes": attributes },
        "scope": "local",
        "time": time.seconds,
        "timeNano": nanos as i64,
        "seq": e.seq,
    });
    // Docker's "from": the image of a container's event.
    if !e.image.is_empty() {
        v["from"] = json!(e.image);
    }
    v
}

/// `berth image inspect`: Docker's shape.
pub fn image_inspect(r: &pb::InspectImageResponse) -> Value {
    let i = r.image.clone().unwrap_or_default();
    let config: Value = serde_json::from_str(&r.config_json).unwrap_or(Value::Null);
    serde_json::json!({
        "Id": i.id,
        "RepoTags": i.tags,
        "RepoDigests": i.digests,
        "Created": rfc3339(&i.created),
        "Config": config.get("config").cloned().unwrap_or(Value::Null),
        "Architecture": i.architecture,
        "Variant": i.variant,
        "Os": i.os,
        "Size": i.size,
        "RootFS": {"Type": "layers", "Layers": r.diff_ids},
        "Descriptor": {"digest": r.manifest_digest},
        "Containers": i.containers,
    })
}

/// Values as `inspect` prints them: a JSON array, or a template per value.
pub fn print_values(format: &str, values: &[Value]) -> Result<(), crate::Failure> {
    match crate::template::Format::parse(format)? {
        crate::template::Format::Template(t) => {
            crate::output::out!("{}", t.lines(values, &Value::Null)?)
        }
        _ => crate::output::outln!(
            "{}",
            serde_json::to_string_pretty(values).unwrap_or_default()
        ),
    }
    Ok(())
}
