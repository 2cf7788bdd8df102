//! Containers, stats and events shaped as Docker shows them, for
//! `inspect` and for Go templates: Docker's field names wherever Docker
//! has the field, berth's own beside them where it knows more.

use crate::output::{bytes, human, secs_since, si};
use berth::pb::{self, Action, Status};
use serde_json::{json, Value};

mod inspect;
pub use inspect::inspect;

pub fn status_name(s: i32) -> &'static str {
    match Status::try_from(s) {
        Ok(Status::Created) => "created",
        Ok(Status::Running) => "running",
        Ok(Status::Paused) => "paused",
        Ok(Status::Exited) => "exited",
        Ok(Status::Restarting) => "restarting",
        _ => "unknown",
    }
}

pub(crate) fn rfc3339(ts: &Option<prost_types::Timestamp>) -> Value {
    match ts {
        Some(t) => Value::String(t.to_string()),
        None => Value::Null,
    }
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
        "Size": size_text(c),
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

/// Docker's SIZE: "5B (virtual 1.24MB)", or nothing when not asked for.
pub fn size_text(c: &pb::Container) -> String {
    match (c.size_rw_bytes, c.size_root_fs_bytes) {
        (Some(rw), Some(root)) => format!(
            "{} (virtual {})",
            si(rw.max(0) as u64),
            si(root.max(0) as u64)
        ),
        _ => String::new(),
    }
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
            (kind, crate::output::docker_action(e))
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
