//! `cargo bench --bench logs`: what log followers cost.
//!
//! - Start latency with no follower, then beside 2,000 followers of a
//!   container that writes a line every 100 ms (each follower gets every
//!   line).
//! - `berth run --rm ROOTFS /bin/true` (attached: it follows the logs to the
//!   end) against `berth run -d` + `berth wait` + `berth rm` of the same.
//!
//! BERTH_BENCH_N sets the number of samples (default 300; at most 100
//! here).

#[path = "../tests/common/mod.rs"]
mod common;

use berth::pb::{self, containers_client::ContainersClient};
use common::bench::report;
use common::{Api, Daemon};
use std::process::Command;
use std::time::{Duration, Instant};

const FOLLOWERS: usize = 2000;

async fn starts(api: &mut Api, n: usize, tag: &str) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let req = common::spec(&format!("{tag}{i}"), &["true"]);
        let id = api.create(req).await.unwrap().into_inner().id;
        let t = Instant::now();
        api.start(pb::StartRequest { id: id.clone() })
            .await
            .unwrap();
        out.push(t.elapsed());
        api.wait(pb::WaitRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
        api.remove(pb::RemoveRequest { id, force: false })
            .await
            .unwrap();
    }
    out
}

/// FOLLOWERS follows of `id`, 100 per connection, each read to its end.
async fn followers(d: &Daemon, id: &str) -> Vec<tokio::task::JoinHandle<usize>> {
    let mut tasks = Vec::new();
    for _ in 0..FOLLOWERS / 100 {
        let channel = berth::connect(&d.host()).await.unwrap();
        for _ in 0..100 {
            let mut s = ContainersClient::new(channel.clone())
                .logs(pb::LogsRequest {
                    id: id.into(),
                    follow: true,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                while let Ok(Some(_)) = s.message().await {
                    n += 1;
                }
                n
            }));
        }
    }
    tasks
}

/// Runs the CLI; panics if it fails.
fn cli(d: &Daemon, args: &[&str]) -> String {
    let out = Command::new(common::berth_cli())
        .arg("--host")
        .arg(d.host())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "berth {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn cli_runs(d: &Daemon, n: usize) {
    let rootfs = common::rootfs().display().to_string();
    let (mut attached, mut detached) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        cli(d, &["run", "--rm", &rootfs, "/bin/true"]);
        attached.push(t.elapsed());
        let t = Instant::now();
        let id = cli(d, &["run", "-d", &rootfs, "/bin/true"]);
        cli(d, &["wait", &id]);
        cli(d, &["rm", &id]);
        detached.push(t.elapsed());
    }
    println!("the CLI, {n} containers each");
    report("run --rm", attached);
    report("run -d + wait + rm", detached);
}

#[tokio::main]
async fn main() {
    let n = common::bench::samples().min(100);
    let d = Daemon::start_with_log("logs-bench", "warn").await;
    let mut api = d.api().await;
    cli_runs(&d, n);
    let quiet = starts(&mut api, n, "quiet").await;
    let chatty = common::spec(
        "chatty",
        &["sh", "-c", "while true; do echo tick; sleep 0.1; done"],
    );
    let chatty = common::started(&mut api, chatty).await;
    let t = Instant::now();
    let tasks = followers(&d, &chatty).await;
    println!(
        "{FOLLOWERS} followers attached in {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let threads = common::proc_status(d.pid(), "Threads");
    let rss = common::proc_status(d.pid(), "VmRSS");
    let busy = starts(&mut api, n, "busy").await;
    println!(
        "start, {n} containers (berthd: {threads} threads, {rss} kB resident with the followers)"
    );
    report("alone", quiet);
    report("beside", busy);
    api.remove(pb::RemoveRequest {
        id: chatty,
        force: true,
    })
    .await
    .unwrap();
    let mut lines = Vec::new();
    for t in tasks {
        lines.push(t.await.unwrap());
    }
    lines.sort_unstable();
    println!(
        "lines per follower: min {} max {}",
        lines[0],
        lines[lines.len() - 1]
    );
}
