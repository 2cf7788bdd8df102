//! `cargo bench --bench exec`: `true` run N times in a running container
//! through the API (ExecSync: create, start, wait and output in one call),
//! against `runc exec` of the same command in a runc container on the
//! same rootfs, and Docker's exec (a private dockerd, through its API:
//! exec create, start attached, inspect) where dockerd is installed, in
//! turn, in the same run. Prints median, p99 and minimum.
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
    let docker = common::docker::Docker::start(&d.dir);
    let docker_id = docker.as_ref().map(|k| k.run(&["sleep", "1000"]));
    let mut docker_times = Vec::with_capacity(n);
    let (mut berth, mut reference) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let warmup = 10;
    for i in 0..n + warmup {
        let t = Instant::now();
        let r = api
            .exec_sync(pb::ExecSyncRequest {
                id: id.clone(),
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
        let other = runc.as_ref().map(|r| r.exec(&runc_id));
        let dockers = docker
            .as_ref()
            .zip(docker_id.as_ref())
            .map(|(k, id)| k.exec(id, &["true"]));
        if i >= warmup {
            docker_times.extend(dockers);
            berth.push(took);
            reference.extend(other);
        }
    }
    if let Some(r) = &runc {
        r.delete(&runc_id);
    }
    common::bench::report("berth exec", berth);
    if !reference.is_empty() {
        common::bench::report("runc exec", reference);
    }
    if let (Some(k), Some(id)) = (&docker, &docker_id) {
        k.remove(id);
        common::bench::report("docker exec", docker_times);
    }
}
