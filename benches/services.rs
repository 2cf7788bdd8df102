//! `cargo bench --bench services`: what restart policies and health checks
//! cost, berth beside Docker in the same run.
//!
//! 1. Crash to restart: a container under `always` whose process exits 1 at
//!    once, started by the user N times (so each restart waits the first
//!    delay, 100 ms): from the exit (the die event's time) to the restart
//!    (the next start event's time), and that less the 100 ms.
//! 2. A health probe (`CMD-SHELL true` every 100 ms) of a running
//!    container, N probes: each one's time as its health log records it,
//!    and the CPU time the daemon side spends per probe (berthd and its
//!    children; dockerd, containerd and the shim and theirs).
//!
//! Docker's figures need dockerd (Debian's docker.io): a private one is
//! started on its own root (no bridge, no iptables) with the test rootfs
//! imported as an image (tests/common/docker.rs). BERTH_BENCH_N sets N (default 300).

#[path = "../tests/common/mod.rs"]
mod common;

use berth::pb::{self, Action};
use common::docker::{Docker, IMAGE};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

const FIRST_DELAY: Duration = Duration::from_millis(100);

#[tokio::main]
async fn main() {
    let n = common::bench::samples();
    let d = common::Daemon::start_with_log("bench-services", "warn").await;
    let docker = Docker::start(&d.dir);
    if docker.is_none() {
        eprintln!("services bench: no dockerd here (apt-get install docker.io): berth alone");
    }

    println!("crash to restart under `always`, {n} restarts:");
    let gaps = berth_restarts(&d, n).await;
    report_restarts("berth", gaps);
    if let Some(docker) = &docker {
        report_restarts("docker", docker_restarts(docker, n));
    }

    println!("a health probe (CMD-SHELL true), {n} probes:");
    let (times, cpu) = berth_probes(&d, n).await;
    common::bench::report("berth", times);
    println!(
        "berth      daemon CPU per probe {:>8.3} ms",
        cpu.as_secs_f64() * 1e3
    );
    if let Some(docker) = &docker {
        let (times, cpu) = docker_probes(docker, n);
        common::bench::report("docker", times);
        println!(
            "docker     daemon CPU per probe {:>8.3} ms",
            cpu.as_secs_f64() * 1e3
        );
    }
}

fn report_restarts(who: &str, gaps: Vec<Duration>) {
    let over: Vec<Duration> = gaps.iter().map(|g| g.saturating_sub(FIRST_DELAY)).collect();
    common::bench::report(who, gaps);
    common::bench::report(&format!("{who}-100ms"), over);
}

fn at(t: &Option<prost_types::Timestamp>) -> i128 {
    let t = t.unwrap_or_default();
    i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos)
}

fn gap(from: i128, to: i128) -> Duration {
    Duration::from_nanos((to - from).max(0) as u64)
}

async fn berth_restarts(d: &common::Daemon, n: usize) -> Vec<Duration> {
    let mut api = d.api().await;
    let mut req = common::spec("crash", &["sh", "-c", "exit 1"]);
    req.restart_policy = Some(pb::RestartPolicy {
        name: "always".into(),
        maximum_retry_count: 0,
    });
    let id = common::created(&mut api, req).await;
    let mut ev = d.events(&["crash"]).await;
    let mut gaps = Vec::with_capacity(n);
    for _ in 0..n {
        api.start(pb::StartRequest { id: id.clone() })
            .await
            .unwrap();
        let seen = ev.until(Action::Die).await;
        let died = at(&seen.last().unwrap().time);
        let started = ev.until(Action::Start).await;
        gaps.push(gap(died, at(&started.last().unwrap().time)));
        api.stop(pb::StopRequest {
            id: id.clone(),
            timeout_seconds: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
        ev.until(Action::Stop).await;
    }
    gaps
}

/// Each probe's time from the health log, and the daemon's CPU per probe.
async fn berth_probes(d: &common::Daemon, n: usize) -> (Vec<Duration>, Duration) {
    let mut api = d.api().await;
    let mut req = common::spec("probed", &["sleep", "100000"]);
    req.healthcheck = Some(pb::Healthcheck {
        test: vec!["CMD-SHELL".into(), "true".into()],
        interval_milliseconds: 100,
        ..Default::default()
    });
    let id = common::started(&mut api, req).await;
    let pid = d.pid();
    let mut seen = std::collections::BTreeMap::new();
    let cpu_before = cpu_time(&[pid]);
    while seen.len() < n {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let st = common::status(&mut api, &id).await;
        for p in st.health.unwrap_or_default().log {
            seen.insert(at(&p.start), gap(at(&p.start), at(&p.end)));
        }
    }
    let cpu = cpu_time(&[pid]).saturating_sub(cpu_before);
    let probes = seen.len() as u32;
    (seen.into_values().take(n).collect(), cpu / probes)
}

/// User, system and reaped children's CPU time of these processes.
fn cpu_time(pids: &[u32]) -> Duration {
    let tick = 1.0 / 100.0;
    let mut total = 0.0;
    for pid in pids {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime, stime, cutime, cstime: fields 14 to 17 of proc(5).
        let ticks: f64 = f[11..15].iter().filter_map(|v| v.parse::<f64>().ok()).sum();
        total += ticks * tick;
    }
    Duration::from_secs_f64(total)
}

/// Docker's crash to restart under `always`, as berth_restarts times it.
fn docker_restarts(docker: &Docker, n: usize) -> Vec<Duration> {
    let mut events = docker
        .command(&[
            "events",
            "--filter",
            "container=crash",
            "--format",
            "{{.TimeNano}} {{.Action}}",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker events");
    let mut lines = BufReader::new(events.stdout.take().unwrap()).lines();
    let mut until = |action: &str| -> i128 {
        loop {
            let line = lines.next().expect("docker events ended").unwrap();
            if let Some((t, a)) = line.split_once(' ') {
                if a == action {
                    return t.parse().unwrap();
                }
            }
        }
    };
    docker
        .cli(&[
            "create",
            "--name",
            "crash",
            "--restart",
            "always",
            IMAGE,
            "sh",
            "-c",
            "exit 1",
        ])
        .expect("docker create");
    let mut gaps = Vec::with_capacity(n);
    for _ in 0..n {
        docker.cli(&["start", "crash"]).expect("docker start");
        let died = until("die");
        gaps.push(gap(died, until("start")));
        docker
            .cli(&["stop", "-t", "0", "crash"])
            .expect("docker stop");
        until("stop");
    }
    let _ = events.kill();
    let _ = events.wait();
    docker.cli(&["rm", "-f", "crash"]);
    gaps
}

/// Docker's health probes, as berth_probes times them.
fn docker_probes(docker: &Docker, n: usize) -> (Vec<Duration>, Duration) {
    docker
        .cli(&[
            "run",
            "-d",
            "--name",
            "probed",
            "--health-cmd",
            "true",
            "--health-interval",
            "100ms",
            IMAGE,
            "sleep",
            "100000",
        ])
        .expect("docker run");
    let pids = daemon_pids(&["dockerd", "containerd", "containerd-shim-runc-v2"]);
    let cpu_before = cpu_time(&pids);
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < n {
        std::thread::sleep(Duration::from_millis(250));
        let Some(log) = docker.cli(&["inspect", "-f", "{{json .State.Health.Log}}", "probed"])
        else {
            continue;
        };
        let log: Vec<serde_json::Value> = serde_json::from_str(&log).unwrap_or_default();
        for p in log {
            let t = |k: &str| rfc3339(p[k].as_str().unwrap_or_default());
            seen.insert(t("Start"), gap(t("Start"), t("End")));
        }
    }
    let cpu = cpu_time(&pids).saturating_sub(cpu_before);
    let probes = seen.len() as u32;
    docker.cli(&["rm", "-f", "probed"]);
    (seen.into_values().take(n).collect(), cpu / probes)
}

/// The pids of the processes with these names (Docker's daemon side).
fn daemon_pids(names: &[&str]) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            names.contains(&comm.trim()).then_some(pid)
        })
        .collect()
}

/// An RFC 3339 time (as Docker prints it) in unix nanoseconds.
fn rfc3339(t: &str) -> i128 {
    humantime::parse_rfc3339_weak(t.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128)
}
