//! `cargo bench --bench scale`: 200 containers (`sleep 1000`) created and
//! started through the API with 8 requests in flight, then removed with
//! force the same way; with network none and on the default bridge; and
//! runc's `run -d` of as many with 8 in flight, on the same rootfs, and
//! Docker's (a private dockerd, through its API, network none) where
//! dockerd is installed, in the same run. Prints containers started per second and the time of the
//! removal. BERTH_SCALE_N sets the number (default 200),
//! BERTH_SCALE_ROUNDS the rounds (default 3).

#[path = "../tests/common/mod.rs"]
mod common;

use berth::pb;
use std::sync::Arc;
use std::time::{Duration, Instant};

const IN_FLIGHT: usize = 8;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `work(i)` for i in 0..n with IN_FLIGHT at a time; how long all
/// took.
async fn in_flight<F, Fut>(n: usize, work: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let work = Arc::new(work);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (work, next) = (work.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    work(i).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    t.elapsed()
}

#[tokio::main]
async fn main() {
    let n = env("BERTH_SCALE_N", 200);
    let rounds = env("BERTH_SCALE_ROUNDS", 3);
    let d = common::Daemon::start_with_log("bench-scale", "warn").await;
    let api = d.api().await;
    let rootfs = common::rootfs().display().to_string();
    let runc = common::bench::Runc::new(&d.dir, &["sleep", "1000"]).map(Arc::new);
    if runc.is_none() {
        eprintln!("scale bench: no runc here (apt-get install runc); berth alone");
    }
    let docker = common::docker::Docker::start(&d.dir).map(Arc::new);
    println!("{n} containers started with {IN_FLIGHT} requests in flight, then removed:");
    for round in 0..rounds {
        let mut line = format!("round {round}:");
        for (label, network) in [("none", "none"), ("bridge", "")] {
            let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
            let (a, r, ids2) = (api.clone(), rootfs.clone(), ids.clone());
            let started = in_flight(n, move |i| {
                let (mut api, rootfs, ids) = (a.clone(), r.clone(), ids2.clone());
                async move {
                    let id = api
                        .create(pb::CreateRequest {
                            name: format!("s-{round}-{label}-{i}"),
                            rootfs,
                            args: vec!["sleep".into(), "1000".into()],
                            network: network.into(),
                            ..Default::default()
                        })
                        .await
                        .expect("create")
                        .into_inner()
                        .id;
                    api.start(pb::StartRequest { id: id.clone() })
                        .await
                        .expect("start");
                    ids.lock().unwrap().push(id);
                }
            })
            .await;
            let ids: Vec<String> = ids.lock().unwrap().clone();
            let ids = Arc::new(ids);
            let a = api.clone();
            let removed = in_flight(n, move |i| {
                let (mut api, ids) = (a.clone(), ids.clone());
                async move {
                    api.remove(pb::RemoveRequest {
                        id: ids[i].clone(),
                        force: true,
                    })
                    .await
                    .expect("remove");
                }
            })
            .await;
            line += &format!(
                "  berth {label}: {:>6.0}/s started, removed in {:>6.0} ms;",
                n as f64 / started.as_secs_f64(),
                removed.as_secs_f64() * 1e3
            );
        }
        if let Some(runc) = &runc {
            let r = runc.clone();
            let started = in_flight(n, move |i| {
                let r = r.clone();
                async move {
                    let id = format!("berth-scale-{round}-{i}");
                    tokio::task::spawn_blocking(move || assert!(r.start(&id), "runc run -d"))
                        .await
                        .unwrap();
                }
            })
            .await;
            let r = runc.clone();
            let removed = in_flight(n, move |i| {
                let r = r.clone();
                async move {
                    let id = format!("berth-scale-{round}-{i}");
                    tokio::task::spawn_blocking(move || r.delete(&id))
                        .await
                        .unwrap();
                }
            })
            .await;
            line += &format!(
                "  runc: {:>6.0}/s started, removed in {:>6.0} ms",
                n as f64 / started.as_secs_f64(),
                removed.as_secs_f64() * 1e3
            );
        }
        if let Some(docker) = &docker {
            let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
            let (k, ids2) = (docker.clone(), ids.clone());
            let started = in_flight(n, move |_| {
                let (k, ids) = (k.clone(), ids2.clone());
                async move {
                    let id = tokio::task::spawn_blocking(move || k.run(&["sleep", "1000"]))
                        .await
                        .unwrap();
                    ids.lock().unwrap().push(id);
                }
            })
            .await;
            let ids = Arc::new(ids.lock().unwrap().clone());
            let k = docker.clone();
            let removed = in_flight(n, move |i| {
                let (k, ids) = (k.clone(), ids.clone());
                async move {
                    tokio::task::spawn_blocking(move || k.remove(&ids[i]))
                        .await
                        .unwrap();
                }
            })
            .await;
            line += &format!(
                "  docker none: {:>6.0}/s started, removed in {:>6.0} ms",
                n as f64 / started.as_secs_f64(),
                removed.as_secs_f64() * 1e3
            );
        }
        println!("{line}");
    }
}
