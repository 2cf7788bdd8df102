//! `cargo bench --bench exec`: `true` run N times in a running container
//! through the API (ExecSync: create, start, wait and output in one call),
//! against `runc exec` of the same command in a runc container on the
//! same rootfs, and Docker's exec (a private dockerd, through its API:
//! exec create, start attached, inspect) where dockerd is installed, in
//! turn, in the same run; and berth's with the helper exec'd from
//! berthd's binary instead of forked by the launcher
//! (BERTH_MONITOR_LAUNCHER=0). Prints median, p99 and minimum.
//! BERTH_BENCH_N sets N (default 300). Needs runc (Debian's package).

#[path = "../tests/common/mod.rs"]
mod common;

use berth::pb;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let n = common::bench::samples();
    let d = common::Daemon::start_with_log("bench-exec", "warn").await;
    let mut api = d.api().await;
    let id = common::started(&mut api, common::spec("bench", &["sleep", "1000"])).await;
    let runc_id = format!("berth-bench-{}", std::process::id());
    let runc = common::bench::Runc::new(&d.dir, &["sleep", "1000"]).filter(|r| r.start(&runc_id));
    if runc.is_none() {
        eprintln!("exec bench: no runc here (apt-get install runc); berth alone");
    }
    let mut execd = common::Daemon::start_with_log("bench-exec-execd", "warn").await;
    execd.stop_daemon(libc::SIGTERM);
    execd
        .env
        .push(("BERTH_MONITOR_LAUNCHER".into(), "0".into()));
    execd.spawn().await;
    let mut execd_api = execd.api().await;
    let execd_id = common::started(&mut execd_api, common::spec("bench", &["sleep", "1000"])).await;
    let mut execd_times = Vec::with_capacity(n);
    let docker = common::docker::Docker::start(&d.dir);
    let docker_id = docker.as_ref().map(|k| k.run(&["sleep", "1000"]));
    let mut docker_times = Vec::with_capacity(n);
    let (mut berth, mut reference) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let warmup = 10;
    for i in 0..n + warmup {
        let took = exec_true(&mut api, &id).await;
        let other = runc.as_ref().map(|r| r.exec(&runc_id));
        let execd_took = exec_true(&mut execd_api, &execd_id).await;
        let dockers = docker
            .as_ref()
            .zip(docker_id.as_ref())
            .map(|(k, id)| k.exec(id, &["true"]));
        if i >= warmup {
            docker_times.extend(dockers);
            execd_times.push(execd_took);
            berth.push(took);
            reference.extend(other);
        }
    }
    if let Some(r) = &runc {
        r.delete(&runc_id);
    }
    common::bench::report("berth exec", berth);
    common::bench::report("exec'd helper", execd_times);
    if !reference.is_empty() {
        common::bench::report("runc exec", reference);
    }
    if let (Some(k), Some(id)) = (&docker, &docker_id) {
        k.remove(id);
        common::bench::report("docker exec", docker_times);
    }
}

/// `true` run in container `id` through ExecSync; how long it took.
async fn exec_true(api: &mut common::Api, id: &str) -> std::time::Duration {
    let t = Instant::now();
    let r = api
        .exec_sync(pb::ExecSyncRequest {
            id: id.into(),
            process: Some(pb::ExecProcess {
                args: vec!["true".into()],
                ..Default::default()
            }),
            timeout_seconds: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let took = t.elapsed();
    assert_eq!(r.exit_code, 0);
    took
}
