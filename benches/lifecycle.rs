//! `cargo bench --bench lifecycle`: N containers running `/bin/true`,
//! each created, started, waited for and removed through the API, one after
//! another. Prints the median and p99 of the whole lifecycle and of each
//! step. BERTH_BENCH_N sets N (default 300).

#[path = "../tests/common/mod.rs"]
mod common;

use berth::pb;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; there are no other options.
    let n = common::bench::samples();
    let d = common::Daemon::start_with_log("bench", "warn").await;
    let mut api = d.api().await;
    let rootfs = common::rootfs().display().to_string();
    let steps = ["create", "start", "wait", "remove"];
    let mut per_step: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); steps.len()];
    let mut total = Vec::with_capacity(n);
    let warmup = 10;
    for i in 0..n + warmup {
        let mut t = [Duration::ZERO; 4];
        let begin = Instant::now();
        let s = Instant::now();
        let id = api
            .create(pb::CreateRequest {
                name: format!("bench-{i}"),
                rootfs: rootfs.clone(),
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
        if i >= warmup {
            total.push(begin.elapsed());
            for (k, v) in t.into_iter().enumerate() {
                per_step[k].push(v);
            }
        }
    }
    println!("lifecycle of /bin/true through the API, {n} containers one after another:");
    common::bench::report("lifecycle", total);
    for (name, samples) in steps.iter().zip(per_step) {
        common::bench::report(name, samples);
    }
}
