//! `cargo bench --bench lifecycle`: N containers running `/bin/true`,
//! each created, started, waited for and removed through the API, one after
//! another. Prints the median and p99 of the whole lifecycle and of each
//! step; on cgroup v2 also the start without CLONE_INTO_CGROUP.
//! BERTH_BENCH_N sets N (default 300).

#[path = "../tests/common/mod.rs"]
mod common;

use berth::pb;
use std::time::{Duration, Instant};

const STEPS: [&str; 4] = ["create", "start", "wait", "remove"];

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
    let rootfs = common::rootfs().display().to_string();
    let mut per_step: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); STEPS.len()];
    let mut total = Vec::with_capacity(n);
    let warmup = 10;
    for i in 0..n + warmup {
        let begin = Instant::now();
        let t = lifecycle(&mut api, &rootfs, i).await;
        let whole = begin.elapsed();
        let join = match joining.as_mut() {
            Some((_, api, _)) => Some(lifecycle(api, &rootfs, i).await[1]),
            None => None,
        };
        if i >= warmup {
            total.push(whole);
            for (k, v) in t.into_iter().enumerate() {
                per_step[k].push(v);
            }
            if let (Some((_, _, starts)), Some(join)) = (joining.as_mut(), join) {
                starts.push(join);
            }
        }
    }
    println!("lifecycle of /bin/true through the API, {n} containers one after another:");
    common::bench::report("lifecycle", total);
    for (name, samples) in STEPS.iter().zip(per_step) {
        common::bench::report(name, samples);
    }
    if let Some((_, _, starts)) = joining {
        println!("start when PID 1 joins its cgroup after clone (BERTH_CLONE_INTO_CGROUP=0), in turn with the above:");
        common::bench::report("start", starts);
    }
}

/// Creates, starts, waits for and removes one container; the time of each.
async fn lifecycle(api: &mut common::Api, rootfs: &str, i: usize) -> [Duration; 4] {
    let mut t = [Duration::ZERO; 4];
    let s = Instant::now();
    let id = api
        .create(pb::CreateRequest {
            name: format!("bench-{i}"),
            rootfs: rootfs.to_string(),
            args: vec!["/bin/true".into()],
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
