//! Bind mount propagation (`-v SRC:DST:rslave`, `--mount
//! …,bind-propagation=rshared`): a host mount made under an rslave bind's
//! source shows in the container, not under a default (rprivate) one; a
//! mount the container makes under an rshared bind shows on the host; a
//! source on a mount that cannot give that is refused with Docker's
//! words; nothing of it is left on the host.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run_mount(args: &[&str]) {
    let out = Command::new("mount").args(args).output().unwrap();
    assert!(out.status.success(), "mount {args:?}: {out:?}");
}

/// Mounts made by the test, unmounted (last first) even when it fails.
struct HostMounts(Vec<PathBuf>);

impl HostMounts {
    fn tmpfs(&mut self, at: &Path) {
        std::fs::create_dir_all(at).unwrap();
        run_mount(&["-t", "tmpfs", "tmpfs", &at.display().to_string()]);
        self.0.push(at.to_path_buf());
    }

    /// `dir` bound on itself, with `propagation` (--make-shared, …).
    fn own(&mut self, dir: &Path, propagation: &str) {
        let d = dir.display().to_string();
        run_mount(&["--bind", &d, &d]);
        self.0.push(dir.to_path_buf());
        run_mount(&[propagation, &d]);
    }
}

impl Drop for HostMounts {
    fn drop(&mut self) {
        for at in self.0.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(at).output();
        }
    }
}

/// Whether the host has a mount at `at`.
fn host_has(at: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let at = at.display().to_string();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(at.as_str()))
}

/// How many mounts container `name` has at `at`.
fn mounts_at(d: &Daemon, name: &str, at: &str) -> usize {
    let mounts = ok(berth(d, &["exec", name, "cat", "/proc/mounts"]));
    mounts
        .lines()
        .filter(|l| l.split(' ').nth(1) == Some(at))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn host_mounts_reach_slave_binds_and_shared_binds_reach_the_host() {
    let d = Daemon::start("mount-propagation").await;
    let rootfs = rootfs().display().to_string();
    let mut host = HostMounts(Vec::new());
    let shared = d.share("shared");
    host.own(&shared, "--make-shared");
    let src = shared.display().to_string();
    let run = |name: &str, more: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
        args.extend_from_slice(more);
        args.extend([rootfs.as_str(), "sleep", "1000"]);
        ok(berth(&d, &args));
    };
    run("slave", &["-v", &format!("{src}:/data:rslave")]);
    run("private", &["-v", &format!("{src}:/data")]);
    let mount = format!("type=bind,src={src},dst=/data,bind-propagation=rshared");
    run("shared", &["--cap-add", "SYS_ADMIN", "--mount", &mount]);

    // The host mounts: the slave sees it, the private one does not.
    host.tmpfs(&shared.join("from-host"));
    assert_eq!(mounts_at(&d, "slave", "/data/from-host"), 1);
    assert_eq!(mounts_at(&d, "private", "/data/from-host"), 0);
    assert_eq!(mounts_at(&d, "shared", "/data/from-host"), 1);
    // The shared one mounts: the host (and the slave) see it.
    let script =
        "busybox mkdir -p /data/from-container && busybox mount -t tmpfs none /data/from-container";
    ok(berth(&d, &["exec", "shared", "sh", "-c", script]));
    let inside = shared.join("from-container");
    host.0.push(inside.clone());
    assert!(
        host_has(&inside),
        "the container's mount did not reach the host"
    );
    assert_eq!(mounts_at(&d, "slave", "/data/from-container"), 1);
    assert_eq!(mounts_at(&d, "private", "/data/from-container"), 0);
    // Its own root, proc and the rest stayed its own.
    let merged = d
        .container_dir(ok(berth(&d, &["inspect", "-f", "{{.Id}}", "shared"])).trim())
        .join("merged");
    assert!(!host_has(&merged) && !host_has(&merged.join("proc")));
    let shown = ok(berth(&d, &["inspect", "-f", "{{json .Mounts}}", "shared"]));
    assert!(shown.contains(r#""Propagation":"rshared""#), "{shown}");
    ok(berth(&d, &["rm", "-f", "slave", "private", "shared"]));

    // A source whose mount cannot give it: refused, naming it.
    let private = d.share("private");
    host.own(&private, "--make-private");
    let p = private.display().to_string();
    for (option, why) in [
        ("rshared", "not a shared mount"),
        ("rslave", "not a shared or slave mount"),
    ] {
        let volume = format!("{p}:/data:{option}");
        let out = berth(
            &d,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                &volume,
                &rootfs,
                "true",
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(
            err.contains(&format!("path {p} is mounted on {p} but it is {why}")),
            "{err}"
        );
    }
    let out = berth(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{p}:/data:bogus"),
            &rootfs,
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(ok(berth(&d, &["ps", "-aq"])), "");
}
