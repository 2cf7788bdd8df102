//! `cargo bench --bench network`: what a bridge network costs.
//!
//! 1. Start: the Start call of a `sleep` container with network none,
//!    with no network named (the default bridge), on the bridge named, and
//!    on the bridge with a published port, in turn, N times each
//!    (BERTH_BENCH_N, default 300; each is removed before the next), then
//!    the remove of each. Medians and p99s.
//! 2. Throughput: an iperf3 server in a container, reached by an iperf3
//!    client on the host through a published port on 127.0.0.1 (on the
//!    default bridge, MTU 1500, and on a network with MTU 65520), against
//!    the same server in a container on the host's network, in the same
//!    run (5 s each, three times). Needs iperf3 (Debian's package).

#[path = "../tests/common/mod.rs"]
mod common;

use berth::pb;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The test rootfs with iperf3 and the libraries it loads.
fn iperf_rootfs(dir: &Path) -> Option<PathBuf> {
    let iperf = ["/usr/bin/iperf3", "/bin/iperf3"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())?;
    let root = dir.join("iperf-rootfs");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(common::rootfs())
        .arg(&root)
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    std::fs::copy(&iperf, root.join("bin/iperf3")).ok()?;
    for lib in common::libraries(&iperf) {
        let dst = root.join(lib.strip_prefix("/").ok()?);
        std::fs::create_dir_all(dst.parent()?).ok()?;
        std::fs::copy(&lib, &dst).ok()?;
    }
    Some(root)
}

/// Bits per second an iperf3 client on the host gets from the server at
/// 127.0.0.1:`port`.
fn iperf(port: u16) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("iperf3")
            .args(["-c", "127.0.0.1", "-p", &port.to_string(), "-t", "5", "-J"])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(bps) = report["end"]["sum_received"]["bits_per_second"].as_f64() {
            return bps;
        }
        assert!(Instant::now() < deadline, "iperf3 failed: {report}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The Start call and the forced Remove of a container made by `req`.
async fn start_remove(api: &mut common::Api, req: pb::CreateRequest) -> (Duration, Duration) {
    let id = common::created(api, req).await;
    let t = Instant::now();
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    let start = t.elapsed();
    let t = Instant::now();
    api.remove(pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
    (start, t.elapsed())
}

#[tokio::main]
async fn main() {
    let n = common::bench::samples();
    let d = common::Daemon::start_with_log("bench-network", "warn").await;
    let mut api = d.api().await;
    let sleeper = |network: &str, publish: bool| {
        let mut req = common::spec("", &["sleep", "1000"]);
        req.network = network.into();
        if publish {
            req.ports = vec![pb::PortBinding {
                container_port: 80,
                ..Default::default()
            }];
        }
        req
    };
    // Warm up: the bridge and its rules are made at the first start.
    for _ in 0..5 {
        start_remove(&mut api, sleeper("bridge", true)).await;
    }
    let kinds = [
        ("network none", "none", false),
        ("no network named (the default bridge)", "", false),
        ("bridge", "bridge", false),
        ("bridge -p 80", "bridge", true),
    ];
    let mut times = vec![(Vec::new(), Vec::new()); kinds.len()];
    for _ in 0..n {
        for (i, (_, network, publish)) in kinds.iter().enumerate() {
            let (start, remove) = start_remove(&mut api, sleeper(network, *publish)).await;
            times[i].0.push(start);
            times[i].1.push(remove);
        }
    }
    for ((what, _, _), (start, remove)) in kinds.iter().zip(times) {
        common::bench::report(&format!("start, {what}"), start);
        common::bench::report(&format!("remove, {what}"), remove);
    }

    let Some(rootfs) = iperf_rootfs(&d.dir) else {
        eprintln!("network bench: no iperf3 here (apt-get install iperf3); no throughput");
        return;
    };
    let server = |network: &str, port: u16| {
        let mut req = common::spec("", &["iperf3", "-s", "-p", &port.to_string()]);
        req.rootfs = rootfs.display().to_string();
        req.network = network.into();
        if network != "host" {
            req.ports = vec![pb::PortBinding {
                host_ip: "127.0.0.1".into(),
                container_port: port as u32,
                ..Default::default()
            }];
        }
        req
    };
    let host_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // The same on a network with loopback's MTU.
    let mut nets = common::networks(&d).await;
    let jumbo = pb::CreateNetworkRequest {
        name: "jumbo".into(),
        mtu: 65520,
        ..Default::default()
    };
    nets.create(jumbo).await.unwrap();
    let on_host = common::started(&mut api, server("host", host_port)).await;
    let mut published = Vec::new();
    for network in ["bridge", "jumbo"] {
        let id = common::started(&mut api, server(network, 5201)).await;
        let c = common::inspect(&mut api, &id).await;
        published.push((
            id,
            c.state.unwrap().network.unwrap().ports[0].host_port as u16,
        ));
    }
    for round in 1..=3 {
        let host = iperf(host_port);
        let mut line = format!("round {round}: host network {:>6.2} Gbit/s", host / 1e9);
        for ((_, port), what) in published.iter().zip(["published port", "MTU 65520"]) {
            let through = iperf(*port);
            line += &format!(
                "   {what} {:>6.2} Gbit/s ({:+.1}%)",
                through / 1e9,
                (through / host - 1.0) * 100.0
            );
        }
        println!("{line}");
    }
    for id in std::iter::once(on_host).chain(published.into_iter().map(|(id, _)| id)) {
        api.remove(pb::RemoveRequest { id, force: true })
            .await
            .unwrap();
    }
}
