//! `cargo bench --bench exec`: `true` run N times in a running container
//! through the API (ExecSync: create, start, wait and output in one call),
//! against `runc exec` of the same command in a runc container on the
//! same rootfs, in turn, in the same run. Prints median, p99 and minimum.
//! BERTH_BENCH_N sets N (default 300). Needs runc (Debian's package).

#[path = "../tests/common/mod.rs"]
mod common;

use berth::pb;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A runc container running `sleep 1000` on `rootfs`; deleted on drop.
struct Runc {
    id: String,
    root: std::path::PathBuf,
}

impl Runc {
    fn start(dir: &std::path::Path, rootfs: &std::path::Path) -> Option<Runc> {
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle).ok()?;
        let ok = Command::new("runc")
            .arg("spec")
            .current_dir(&bundle)
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        let path = bundle.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        config["root"] = serde_json::json!({"path": rootfs, "readonly": true});
        config["process"]["terminal"] = serde_json::json!(false);
        config["process"]["args"] = serde_json::json!(["sleep", "1000"]);
        std::fs::write(&path, serde_json::to_vec(&config).ok()?).ok()?;
        let r = Runc {
            id: format!("berth-bench-{}", std::process::id()),
            root: dir.join("runc-state"),
        };
        let started = Command::new("runc")
            .arg("--root")
            .arg(&r.root)
            .args(["run", "-d", &r.id])
            .current_dir(&bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success();
        started.then_some(r)
    }

    fn exec(&self) -> Duration {
        let t = Instant::now();
        let ok = Command::new("runc")
            .arg("--root")
            .arg(&self.root)
            .args(["exec", &self.id, "true"])
            .stdin(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "runc exec failed");
        t.elapsed()
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "-f", &self.id])
            .status();
    }
}

#[tokio::main]
async fn main() {
    let n = common::bench::samples();
    let d = common::Daemon::start_with_log("bench-exec", "warn").await;
    let mut api = d.api().await;
    let id = common::started(&mut api, common::spec("bench", &["sleep", "1000"])).await;
    let runc = Runc::start(&d.dir, common::rootfs());
    if runc.is_none() {
        eprintln!("exec bench: no runc here (apt-get install runc); berth alone");
    }
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
        let other = runc.as_ref().map(Runc::exec);
        if i >= warmup {
            berth.push(took);
            reference.extend(other);
        }
    }
    common::bench::report("berth exec", berth);
    if !reference.is_empty() {
        common::bench::report("runc exec", reference);
    }
}
