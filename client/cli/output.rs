//! How the CLI shows containers and events: Docker-like tables and lines,
//! or JSON.

use berth::pb::{self, Action, Status};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes to standard output and flushes. A reader that went away
/// (`berth inspect x | head -1`) ends the CLI with status 141, as SIGPIPE
/// ends docker's, instead of a panic; another write error ends it with a
/// message.
pub fn write_out(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("berth: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `print!` through [`write_out`].
macro_rules! out {
    ($($t:tt)*) => {
        $crate::output::write_out(format_args!($($t)*))
    };
}

/// `println!` through [`write_out`].
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($t)*)))
    };
}

pub(crate) use {out, outln};

fn rfc3339(ts: &Option<prost_types::Timestamp>) -> Value {
    match ts {
        Some(t) => Value::String(t.to_string()),
        None => Value::Null,
    }
}

pub fn action_name(a: i32) -> String {
    Action::try_from(a)
        .map(|a| {
            a.as_str_name()
                .trim_start_matches("ACTION_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| format!("action{a}"))
}

/// An event's action as Docker shows it: with the command for exec_create
/// and exec_start, with the health for health_status.
pub fn docker_action(e: &pb::Event) -> String {
    match Action::try_from(e.action) {
        Ok(Action::ExecCreate | Action::ExecStart) => {
            format!("{}: {}", action_name(e.action), e.exec_command)
        }
        Ok(Action::HealthStatus) => format!(
            "{}: {}",
            action_name(e.action),
            health_name(e.health_status)
        ),
        _ => action_name(e.action),
    }
}

/// A health status as Docker names it ("none" without a health check).
pub fn health_name(h: i32) -> &'static str {
    match pb::HealthStatus::try_from(h) {
        Ok(pb::HealthStatus::Starting) => "starting",
        Ok(pb::HealthStatus::Healthy) => "healthy",
        Ok(pb::HealthStatus::Unhealthy) => "unhealthy",
        _ => "none",
    }
}

/// An event's type as Docker names it.
pub fn type_name(t: i32) -> &'static str {
    match pb::EventType::try_from(t) {
        Ok(pb::EventType::Image) => "image",
        Ok(pb::EventType::Network) => "network",
        _ => "container",
    }
}

/// An event as JSON, with only the fields that apply to its action: a
/// signal on kill and die, an exit code and oomKilled on die,
/// resumedFromSeq on daemon start, type "image" on an image's.
pub fn event_json(e: &pb::Event) -> Value {
    let mut v = json!({
        "seq": e.seq,
        "time": rfc3339(&e.time),
        "action": action_name(e.action),
    });
    let action = Action::try_from(e.action).ok();
    let fields = &mut v;
    let mut add = |k: &str, x: Value| {
        fields[k] = x;
    };
    if action == Some(Action::DaemonStart) {
        add("resumedFromSeq", json!(e.resumed_from_seq));
        return v;
    }
    if e.r#type != pb::EventType::Container as i32 {
        add("type", json!(type_name(e.r#type)));
    }
    if !e.container_id.is_empty() {
        add("container", json!(e.container_id));
    }
    add("id", json!(e.id));
    add("name", json!(e.name));
    if !e.image.is_empty() {
        add("image", json!(e.image));
    }
    if matches!(action, Some(Action::Kill | Action::Die | Action::ExecDie)) {
        add("signal", json!(e.signal));
    }
    if action == Some(Action::ExecDie) {
        add("exitCode", json!(e.exit_code.unwrap_or(0)));
    }
    if action == Some(Action::Die) {
        add("exitCode", json!(e.exit_code.unwrap_or(0)));
        add("oomKilled", json!(e.oom_killed));
    }
    if !e.exec_id.is_empty() {
        add("execId", json!(e.exec_id));
        add("execCommand", json!(e.exec_command));
    }
    if action == Some(Action::HealthStatus) {
        add("healthStatus", json!(health_name(e.health_status)));
    }
    add("labels", json!(e.labels));
    v
}

/// `2026-11-22T07:50:11.093374621Z container die ID (exitCode=137, name=web, signal=9)`
pub fn event_line(e: &pb::Event) -> String {
    let time = e.time.map(|t| t.to_string()).unwrap_or_default();
    if e.action == Action::DaemonStart as i32 {
        return format!(
            "{time} daemon start (resumed_from_seq={}) seq={}",
            e.resumed_from_seq, e.seq
        );
    }
    let mut attrs: Vec<String> = e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if let Some(code) = e.exit_code {
        attrs.push(format!("exitCode={code}"));
    }
    attrs.push(format!("name={}", e.name));
    if e.signal != 0 {
        attrs.push(format!("signal={}", e.signal));
    }
    if e.oom_killed {
        attrs.push("oomKilled=true".into());
    }
    if !e.exec_id.is_empty() {
        attrs.push(format!("execID={}", e.exec_id));
    }
    if !e.container_id.is_empty() {
        attrs.push(format!("container={}", e.container_id));
    }
    if !e.image.is_empty() {
        attrs.push(format!("image={}", e.image));
    }
    attrs.sort();
    let kind = type_name(e.r#type);
    let action = docker_action(e);
    format!(
        "{time} {kind} {action} {} ({}) seq={}",
        e.id,
        attrs.join(", "),
        e.seq
    )
}

pub fn secs_since(ts: &Option<prost_types::Timestamp>) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    ts.map(|t| (now - t.seconds).max(0) as u64).unwrap_or(0)
}

/// Docker's human durations: "Less than a second", "5 seconds", "About a
/// minute", "3 minutes", "About an hour", "2 hours", "3 days", ...
pub fn human(secs: u64) -> String {
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s if s < 14 * 86400 => format!("{} days", s / 86400),
        s if s < 60 * 86400 => format!("{} weeks", s / (7 * 86400)),
        s if s < 365 * 86400 => format!("{} months", s / (30 * 86400)),
        s => format!("{} years", s / (365 * 86400)),
    }
}

pub fn status_text(st: &pb::ContainerState) -> String {
    match Status::try_from(st.status) {
        Ok(Status::Created) => "Created".into(),
        Ok(Status::Running) => {
            let up = format!("Up {}", human(secs_since(&st.started_at)));
            // With a health check, Docker's "(health: starting)",
            // "(healthy)" or "(unhealthy)".
            match st.health.as_ref().map(|h| health_name(h.status)) {
                Some("starting") => format!("{up} (health: starting)"),
                Some(h @ ("healthy" | "unhealthy")) => format!("{up} ({h})"),
                _ => up,
            }
        }
        Ok(Status::Paused) => format!("Up {} (Paused)", human(secs_since(&st.started_at))),
        Ok(Status::Exited) => format!(
            "Exited ({}) {} ago",
            st.exit_code,
            human(secs_since(&st.finished_at))
        ),
        Ok(Status::Restarting) => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            human(secs_since(&st.finished_at))
        ),
        _ => "Unknown".into(),
    }
}

pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// Bytes as `docker stats` shows them: "1.535MiB", "64MiB".
pub fn bytes(n: u64) -> String {
    scaled(n, 1024.0, ["B", "KiB", "MiB", "GiB", "TiB"], 4)
}

/// Bytes in decimal units, as `docker stats` shows network and block
/// I/O: "0B", "1.23kB", "15.7MB" (three significant digits).
pub fn si(n: u64) -> String {
    scaled(n, 1000.0, ["B", "kB", "MB", "GB", "TB"], 3)
}

/// `n` in the largest unit it reaches (each `base` times the last), with
/// `digits` significant digits and trailing zeros dropped.
fn scaled(n: u64, base: f64, units: [&str; 5], digits: i32) -> String {
    let mut v = n as f64;
    let mut unit = 0;
    while v >= base && unit + 1 < units.len() {
        v /= base;
        unit += 1;
    }
    if unit == 0 {
        return format!("{n}B");
    }
    let whole = (v.max(1.0).log10().floor() as i32) + 1;
    let decimals = (digits - whole).max(0) as usize;
    let mut text = format!("{v:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", units[unit])
}

pub fn stats_json(c: &pb::ContainerStats) -> Value {
    json!({
        "ID": c.id,
        "Name": c.name,
        "Status": crate::views::status_name(c.status),
        "CPUPerc": c.cpu_percent,
        "CPUUsageNanos": c.cpu_usage_nanos,
        "MemUsage": c.memory_usage_bytes,
        "MemLimit": c.memory_limit_bytes,
        "MemCache": c.memory_cache_bytes,
        "PIDs": c.pids_current,
        "PIDsLimit": c.pids_limit,
        "NetRx": c.net_rx_bytes,
        "NetTx": c.net_tx_bytes,
        "BlockRead": c.block_read_bytes,
        "BlockWrite": c.block_write_bytes,
    })
}

/// `docker stats`' table.
pub fn stats_table(stats: &[pb::ContainerStats]) -> String {
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|c| {
            let v = crate::views::stats_row(c, None);
            let cell = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            [
                "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
            ]
            .map(cell)
            .to_vec()
        })
        .collect();
    table(
        &[
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS",
        ],
        &rows,
    )
}

/// `berth ps`'s table; with `size`, Docker's SIZE column last.
pub fn ps_table(containers: &[pb::Container], no_trunc: bool, size: bool) -> String {
    let mut header = vec![
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    if size {
        header.push("SIZE");
    }
    let rows: Vec<Vec<String>> = containers
        .iter()
        .map(|c| {
            let cfg = c.config.clone().unwrap_or_default();
            let st = c.state.clone().unwrap_or_default();
            let command = cfg.args.join(" ");
            let (id, command) = match no_trunc {
                true => (c.id.clone(), command),
                false => (c.id.chars().take(12).collect(), truncate(&command, 20)),
            };
            vec![
                id,
                truncate(
                    if cfg.image.is_empty() {
                        &cfg.rootfs
                    } else {
                        &cfg.image
                    },
                    20,
                ),
                crate::views::go_quote(&command),
                format!("{} ago", human(secs_since(&c.created_at))),
                status_text(&st),
                crate::views::ports_text(&cfg, &st),
                c.name.clone(),
            ]
            .into_iter()
            .chain(size.then(|| crate::views::size_text(c)))
            .collect()
        })
        .collect();
    table(&header, &rows)
}

/// `docker top`'s table (ps -ef's columns): UID PID PPID C STIME TTY TIME
/// CMD, users named from the host's /etc/passwd.
pub fn top_table(processes: &[pb::Process]) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let user = |uid: u32| {
        passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 2 && f[2] == uid.to_string())
            .map_or(uid.to_string(), |f| f[0].to_string())
    };
    let rows: Vec<Vec<String>> = processes
        .iter()
        .map(|p| {
            let cpu = std::time::Duration::from_nanos(p.cpu_nanos);
            let up = secs_since(&p.started_at).max(1);
            let stime = p.started_at.map_or(String::new(), |t| {
                let secs = t.seconds.max(0) as u64;
                format!("{:02}:{:02}", secs / 3600 % 24, secs / 60 % 60)
            });
            let t = cpu.as_secs();
            vec![
                user(p.uid),
                p.pid.to_string(),
                p.ppid.to_string(),
                (t * 100 / up).to_string(),
                stime,
                p.tty.clone(),
                format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60),
                p.command.clone(),
            ]
        })
        .collect();
    table(
        &["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        &rows,
    )
}

/// Columns padded to their widest cell, three spaces apart.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}   "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human(0), "Less than a second");
        assert_eq!(human(5), "5 seconds");
        assert_eq!(human(90), "About a minute");
        assert_eq!(human(600), "10 minutes");
        assert_eq!(human(3 * 3600), "3 hours");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(bytes(0), "0B");
        assert_eq!(bytes(64 << 20), "64MiB");
        assert_eq!(bytes(1_609_564), "1.535MiB");
        assert_eq!(bytes(16_741_244_928), "15.59GiB");
        assert_eq!(si(0), "0B");
        assert_eq!(si(999), "999B");
        assert_eq!(si(1_234), "1.23kB");
        assert_eq!(si(15_700_000), "15.7MB");
        assert_eq!(si(21_000_000), "21MB");
        assert_eq!(si(123_456_789), "123MB");
    }

    #[test]
    fn event_json_has_only_the_fields_that_apply() {
        let keys = |e: &pb::Event| {
            let mut k: Vec<String> = event_json(e).as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let base = pb::Event {
            seq: 3,
            id: "abc".into(),
            name: "web".into(),
            ..Default::default()
        };
        let oom = pb::Event {
            action: Action::Oom as i32,
            ..base.clone()
        };
        assert_eq!(
            keys(&oom),
            ["action", "id", "labels", "name", "seq", "time"]
        );
        let kill = pb::Event {
            action: Action::Kill as i32,
            signal: 15,
            ..base.clone()
        };
        assert_eq!(event_json(&kill)["signal"], 15);
        assert!(event_json(&kill).get("exitCode").is_none());
        let die = pb::Event {
            action: Action::Die as i32,
            signal: 9,
            exit_code: Some(137),
            oom_killed: true,
            ..base.clone()
        };
        let j = event_json(&die);
        assert_eq!(
            (j["exitCode"].clone(), j["oomKilled"].clone()),
            (json!(137), json!(true))
        );
        let start = pb::Event {
            action: Action::DaemonStart as i32,
            resumed_from_seq: 2,
            ..Default::default()
        };
        assert_eq!(keys(&start), ["action", "resumedFromSeq", "seq", "time"]);
    }

    #[test]
    fn event_lines() {
        let e = pb::Event {
            seq: 7,
            id: "abc".into(),
            name: "web".into(),
            action: Action::Die as i32,
            signal: 9,
            exit_code: Some(137),
            ..Default::default()
        };
        assert_eq!(
            event_line(&e),
            " container die abc (exitCode=137, name=web, signal=9) seq=7"
        );
    }
}
