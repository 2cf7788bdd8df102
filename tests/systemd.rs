//! berthd as a systemd service, with the unit the project ships
//! (contrib/systemd/berthd.service): its containers' cgroups live in the
//! unit's delegated subtree and keep running across `systemctl restart`.
//! Needs systemd 254 or later (the unit's DelegateSubgroup=) as PID 1 on
//! cgroup v2 (the CI's VM); elsewhere it says it is skipped, unless
//! BERTH_REQUIRE_SYSTEMD=1 makes that a failure.

mod common;

use berth::pb;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Whether systemd 254 or later (DelegateSubgroup=) is PID 1 on cgroup v2.
fn systemd_here() -> bool {
    let comm = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    let version = Command::new("systemctl")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // "systemd 254 (254.26-1~bpo12+1)"
    let major: u32 = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    comm.trim() == "systemd"
        && cgroup_v2()
        && Path::new("/run/systemd/system").is_dir()
        && major >= 254
}

/// `systemctl ARGS`; on failure, the journal of the unit (the last
/// argument) in the message.
fn systemctl(args: &[&str]) -> String {
    let out = Command::new("systemctl").args(args).output().unwrap();
    if !out.status.success() {
        let unit = args.last().unwrap();
        let journal = Command::new("journalctl")
            .args(["--no-pager", "-n", "60", "-u", unit])
            .output()
            .unwrap();
        panic!(
            "systemctl {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&journal.stdout)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A unit made from the shipped one, removed with everything under its
/// cgroup when dropped.
struct Unit {
    name: String,
    file: PathBuf,
    dir: PathBuf,
}

impl Unit {
    fn cgroup(&self) -> PathBuf {
        Path::new("/sys/fs/cgroup/system.slice").join(&self.name)
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        let _ = std::fs::write(self.cgroup().join("cgroup.kill"), "1");
        let _ = Command::new("systemctl")
            .args(["stop", &self.name])
            .status();
        let _ = std::fs::remove_file(&self.file);
        let _ = Command::new("systemctl").arg("daemon-reload").status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn main_pid(unit: &str) -> u32 {
    systemctl(&["show", "-P", "MainPID", unit])
        .trim()
        .parse()
        .unwrap()
}

fn cgroup_of(pid: u32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap()
        .to_string()
}

async fn api_at(socket: &Path) -> Api {
    let host = format!("unix://{}", socket.display());
    pb::containers_client::ContainersClient::new(berth::connect(&host).await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_stay_in_berthds_unit_across_a_restart() {
    if !systemd_here() {
        skip(
            Need::SystemdOrCgroupV2,
            "needs systemd 254 or later as PID 1 on cgroup v2 (.ci/cgroup-v2-vm runs it)",
        );
        return;
    }
    let dir = test_dir("systemd");
    let socket = dir.join("berth.sock");
    let name = format!("{}.service", dir.file_name().unwrap().to_string_lossy());
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd/berthd.service"),
    )
    .unwrap();
    // The shipped unit, with this build's berthd and the test's own
    // socket and root.
    let exec = shipped
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("the unit has an ExecStart");
    let args = exec
        .strip_prefix("ExecStart=/usr/local/bin/berthd")
        .unwrap();
    let text = shipped.replace(
        exec,
        &format!(
            "ExecStart={} --socket {} --root {} --cri-socket {}{args}",
            berthd(),
            socket.display(),
            dir.join("root").display(),
            dir.join("cri.sock").display()
        ),
    );
    let unit = Unit {
        file: Path::new("/run/systemd/system").join(&name),
        name: name.clone(),
        dir: dir.keep(),
    };
    std::fs::write(&unit.file, text).unwrap();
    systemctl(&["daemon-reload"]);
    // Type=notify: start returns once the socket accepts connections.
    systemctl(&["start", &name]);
    let daemon = main_pid(&name);
    assert_eq!(cgroup_of(daemon), format!("/system.slice/{name}/daemon"));

    let mut api = api_at(&socket).await;
    let mut ids = Vec::new();
    for n in 0..2 {
        let mut req = spec(&format!("svc{n}"), &["sleep", "1000"]);
        req.resources = Some(pb::Resources {
            memory_limit_bytes: Some(32 << 20),
            ..Default::default()
        });
        let id = started(&mut api, req).await;
        let pid = inspect(&mut api, &id).await.state.unwrap().pid;
        assert_eq!(
            cgroup_of(pid),
            format!("/system.slice/{name}/containers/{id}")
        );
        // The limit reached it: the delegated subtree passes memory down.
        let max = unit
            .cgroup()
            .join("containers")
            .join(&id)
            .join("memory.max");
        assert_eq!(
            std::fs::read_to_string(max).unwrap().trim(),
            (32u64 << 20).to_string()
        );
        ids.push((id, pid));
    }
    // systemd-cgls shows them in berthd's unit.
    let cgls = Command::new("systemd-cgls")
        .args(["--no-pager", "-u", &name])
        .output()
        .unwrap();
    let cgls = String::from_utf8_lossy(&cgls.stdout);
    assert!(cgls.contains("containers"), "{cgls}");
    for (id, pid) in &ids {
        assert!(cgls.contains(id.as_str()), "{id} not in:\n{cgls}");
        assert!(
            cgls.contains(&format!("{pid} sleep 1000")),
            "{pid} not in:\n{cgls}"
        );
    }

    // A restart ends berthd alone.
    drop(api);
    systemctl(&["restart", &name]);
    let again = main_pid(&name);
    assert_ne!(again, daemon);
    assert!(!alive(daemon));
    assert_eq!(cgroup_of(again), format!("/system.slice/{name}/daemon"));
    let mut api = api_at(&socket).await;
    for (id, pid) in &ids {
        assert!(alive(*pid), "{id}'s PID 1 did not survive the restart");
        let state = inspect(&mut api, id).await.state.unwrap();
        assert_eq!(state.status(), pb::Status::Running);
        assert_eq!(state.pid, *pid);
    }
    // The new berthd still drives them: a stop (sleep as PID 1 ignores
    // SIGTERM) reports its exit.
    let (id, pid) = &ids[0];
    stop(&mut api, id, Some(1)).await;
    let t = Instant::now();
    while alive(*pid) {
        assert!(t.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let state = inspect(&mut api, id).await.state.unwrap();
    assert_eq!((state.status(), state.exit_code), (pb::Status::Exited, 137));
    assert!(!unit.cgroup().join("containers").join(id).exists());
    // Stopping the service leaves the other container running.
    drop(api);
    systemctl(&["stop", &name]);
    assert!(alive(ids[1].1));
}
