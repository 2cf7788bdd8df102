//! `cargo bench --bench lifecycle`: N containers running `/bin/true`,
//! each created, started, waited for and removed through the API, one after
//! another: with network none, then on the default bridge, in turn with
//! runc's lifecycle of the same (`runc run` in the foreground) on the same
//! rootfs, and Docker's (a private dockerd, through its API, network
//! none) where dockerd is installed. Prints the median and p99 of each
//! whole lifecycle and of each step, and how many times runc's and
//! Docker's berth's are; the lifecycle with network
//! none when monitors are exec'd instead of forked by the launcher; on
//! cgroup v2 also the start without CLONE_INTO_CGROUP. BERTH_BENCH_N sets
//! N (default 300).

#[path = "../tests/common/mod.rs"]
mod common;

use berth::pb;
use std::time::{Duration, Instant};

const STEPS: [&str; 4] = ["create", "start", "wait", "remove"];
const NETWORKS: [(&str, &str); 2] = [("network none", "none"), ("default bridge", "")];

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; there are no other options.
    let n = common::bench::samples();
    let d = common::Daemon::start_with_log("bench", "warn").await;
    let mut api = d.api().await;
    // On cgroup v2, a second daemon whose monitors clone PID 1 outside its
    // cgroup and let it join after (as on kernels before 5.7), run in turn
    // with the first: what CLONE_INTO_CGROUP saves.
    let mut joining = match common::cgroup_v2() {
        true => {
            let mut d = common::Daemon::start_with_log("bench-join", "warn").await;
            d.stop_daemon(libc::SIGTERM);
            d.env.push(("BERTH_CLONE_INTO_CGROUP".into(), "0".into()));
            d.spawn().await;
            let api = d.api().await;
            Some((d, api, Vec::with_capacity(n)))
        }
        false => None,
    };
    // A daemon whose monitors are exec'd from berthd's binary instead of
    // forked by the launcher, in turn with the first: what the launcher
    // saves.
    let mut exec_d = common::Daemon::start_with_log("bench-exec", "warn").await;
    exec_d.stop_daemon(libc::SIGTERM);
    exec_d
        .env
        .push(("BERTH_MONITOR_LAUNCHER".into(), "0".into()));
    exec_d.spawn().await;
    let mut exec_api = exec_d.api().await;
    let mut exec_total = Vec::with_capacity(n);
    let runc = common::bench::Runc::new(&d.dir, &["/bin/true"]);
    if runc.is_none() {
        eprintln!("lifecycle bench: no runc here (apt-get install runc); berth alone");
    }
    let docker = common::docker::Docker::start(&d.dir);
    let mut docker_ref = Vec::with_capacity(n);
    let rootfs = common::rootfs().display().to_string();
    let mut per_step = vec![vec![Vec::with_capacity(n); STEPS.len()]; NETWORKS.len()];
    let mut total = vec![Vec::with_capacity(n); NETWORKS.len()];
    let mut reference = Vec::with_capacity(n);
    let warmup = 10;
    for i in 0..n + warmup {
        for (k, (_, network)) in NETWORKS.iter().enumerate() {
            let begin = Instant::now();
            let t = lifecycle(&mut api, &rootfs, network, &format!("bench-{k}-{i}")).await;
            let whole = begin.elapsed();
            if i >= warmup {
                total[k].push(whole);
                for (s, v) in t.into_iter().enumerate() {
                    per_step[k][s].push(v);
                }
            }
        }
        let join = match joining.as_mut() {
            Some((_, api, _)) => Some(lifecycle(api, &rootfs, "none", &format!("j-{i}")).await[1]),
            None => None,
        };
        let begin = Instant::now();
        lifecycle(&mut exec_api, &rootfs, "none", &format!("x-{i}")).await;
        let exec_whole = begin.elapsed();
        let other = runc
            .as_ref()
            .map(|r| r.lifecycle(&format!("berth-bench-{i}")));
        let dockers = docker.as_ref().map(|k| k.lifecycle());
        if i >= warmup {
            docker_ref.extend(dockers);
            exec_total.push(exec_whole);
            reference.extend(other);
            if let (Some((_, _, starts)), Some(join)) = (joining.as_mut(), join) {
                starts.push(join);
            }
        }
    }
    let median = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    };
    println!("lifecycle of /bin/true through the API, {n} containers one after another:");
    for (k, (name, _)) in NETWORKS.iter().enumerate() {
        println!("{name}:");
        common::bench::report("lifecycle", total[k].clone());
        for (step, samples) in STEPS.iter().zip(&per_step[k]) {
            common::bench::report(step, samples.clone());
        }
    }
    println!("network none, the monitor exec'd from berthd's binary (BERTH_MONITOR_LAUNCHER=0), in turn with the above:");
    common::bench::report("lifecycle", exec_total);
    if !reference.is_empty() {
        println!("runc run (foreground: create, start, wait, delete), in turn with the above:");
        let times = median(&reference).as_secs_f64() / median(&total[0]).as_secs_f64();
        common::bench::report("runc", reference);
        println!("runc's lifecycle is {times:.1} times berth's with network none");
    }
    if !docker_ref.is_empty() {
        println!("Docker (private dockerd, its API: create, start, wait, remove; network none), in turn with the above:");
        let times = median(&docker_ref).as_secs_f64() / median(&total[0]).as_secs_f64();
        common::bench::report("docker", docker_ref);
        println!("Docker's lifecycle is {times:.1} times berth's with network none");
    }
    if let Some((_, _, starts)) = joining {
        println!("start when PID 1 joins its cgroup after clone (BERTH_CLONE_INTO_CGROUP=0), in turn with the above:");
        common::bench::report("start", starts);
    }
}

/// Creates, starts, waits for and removes one container on `network`;
/// the time of each.
async fn lifecycle(
    api: &mut common::Api,
    rootfs: &str,
    network: &str,
    name: &str,
) -> [Duration; 4] {
    let mut t = [Duration::ZERO; 4];
    let s = Instant::now();
    let id = api
        .create(pb::CreateRequest {
            name: name.into(),
            rootfs: rootfs.to_string(),
            args: vec!["/bin/true".into()],
            network: network.into(),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner()
        .id;
    t[0] = s.elapsed();
    let s = Instant::now();
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .expect("start");
    t[1] = s.elapsed();
    let s = Instant::now();
    let code = api
        .wait(pb::WaitRequest {
            id: id.clone(),
            condition: 0,
            exit_count: None,
        })
        .await
        .expect("wait")
        .into_inner()
        .exit_code;
    assert_eq!(code, 0);
    t[2] = s.elapsed();
    let s = Instant::now();
    api.remove(pb::RemoveRequest { id, force: false })
        .await
        .expect("remove");
    t[3] = s.elapsed();
    t
}
