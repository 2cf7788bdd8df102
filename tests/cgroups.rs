//! Where containers' cgroups live: berthd's --cgroup-parent, absolute or
//! (cgroup v2) relative to berthd's own cgroup, the controllers it enables
//! on the way, and parents it refuses; and the freezer under a container
//! that forks all the time. On cgroup v1 and v2 alike.

mod common;

use common::*;

/// The cgroup v2 path of `pid` ("0::" line), or on v1 its memory
/// hierarchy's path.
fn cgroup_of(pid: u32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let line = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix).map(str::to_string))
    };
    match cgroup_v2() {
        true => line("0::").unwrap(),
        false => text
            .lines()
            .find_map(|l| {
                let (_, rest) = l.split_once(':')?;
                let (controllers, path) = rest.split_once(':')?;
                controllers
                    .split(',')
                    .any(|c| c == "memory")
                    .then(|| path.to_string())
            })
            .unwrap(),
    }
}

/// The directories of cgroup path `path` in every hierarchy.
fn dirs_of(path: &str) -> Vec<std::path::PathBuf> {
    let path = path.trim_start_matches('/');
    let mut out = vec![std::path::Path::new("/sys/fs/cgroup").join(path)];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        out.extend(rd.flatten().map(|e| e.path().join(path)));
    }
    out.into_iter().filter(|p| p.is_dir()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_live_under_the_cgroup_parent_given() {
    let mut raw = [0u8; 4];
    getrandom(&mut raw);
    let top = format!("/berth-parent-{:08x}", u32::from_ne_bytes(raw));
    let parent = format!("{top}/nested");
    let d = Daemon::start_with_args("cgroup-parent", &["--cgroup-parent", &parent]).await;
    let cleanup = Cleanup(top.clone());
    let mut api = d.api().await;
    let mut req = spec("parented", &["sleep", "1000"]);
    req.resources = Some(berth::pb::Resources {
        memory_limit_bytes: Some(64 << 20),
        pids_limit: Some(20),
        ..Default::default()
    });
    let id = started(&mut api, req).await;
    let pid = inspect(&mut api, &id).await.state.unwrap().pid;
    assert_eq!(cgroup_of(pid), format!("{parent}/{id}"));
    let dir = dirs_of(&format!("{parent}/{id}"));
    let read = |file: &str| {
        dir.iter()
            .find_map(|d| std::fs::read_to_string(d.join(file)).ok())
            .unwrap_or_else(|| panic!("no {file}"))
    };
    // The limits reached the container's cgroup below the parent: on v2
    // that needs the controllers enabled in each cgroup on the way.
    match cgroup_v2() {
        true => {
            assert_eq!(read("memory.max").trim(), (64u64 << 20).to_string());
            assert_eq!(read("pids.max").trim(), "20");
            for p in [top.as_str(), parent.as_str()] {
                let enabled = std::fs::read_to_string(
                    std::path::Path::new("/sys/fs/cgroup")
                        .join(p.trim_start_matches('/'))
                        .join("cgroup.subtree_control"),
                )
                .unwrap();
                for c in ["cpu", "memory", "pids"] {
                    assert!(enabled.split_whitespace().any(|e| e == c), "{p}: {enabled}");
                }
            }
        }
        false => {
            assert_eq!(
                read("memory.limit_in_bytes").trim(),
                (64u64 << 20).to_string()
            );
            assert_eq!(read("pids.max").trim(), "20");
        }
    }
    // Pause freezes the cgroup under the parent.
    api.pause(berth::pb::PauseRequest { id: id.clone() })
        .await
        .unwrap();
    let frozen = dir.iter().any(|d| {
        std::fs::read_to_string(d.join("cgroup.events")).is_ok_and(|s| s.contains("frozen 1"))
            || std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
    });
    assert!(frozen);
    api.remove(berth::pb::RemoveRequest {
        id: id.clone(),
        force: true,
    })
    .await
    .unwrap();
    assert!(dirs_of(&format!("{parent}/{id}")).is_empty());
    assert!(!alive(pid));
    drop(d);
    drop(cleanup);
}

/// Removes the cgroups a test made (deepest first) on every hierarchy.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut dirs: Vec<_> = dirs_of(&self.0)
            .into_iter()
            .flat_map(|d| walk(&d))
            .collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            let _ = std::fs::write(d.join("cgroup.kill"), "1");
            let _ = std::fs::remove_dir(&d);
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&e.path()));
            }
        }
    }
    out
}

#[test]
fn bad_cgroup_parents_are_refused_at_startup() {
    let root = test_dir("cgroup-parent-bad");
    let socket = root.join("berth.sock");
    let mut cases = vec![
        ("/", "names no cgroup"),
        ("/a/../b", "\"..\""),
        ("/a/./b", "\"..\""),
    ];
    match cgroup_v2() {
        true => cases.push(("daemon/containers", "where berthd itself goes")),
        false => cases.push(("containers", "needs cgroup v2")),
    }
    for (parent, says) in cases {
        let out = berthd_fails(&[
            "--socket",
            socket.to_str().unwrap(),
            "--root",
            root.join("state").to_str().unwrap(),
            "--cgroup-parent",
            parent,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{parent}");
        assert!(
            err.contains("cgroup parent") && err.contains(says),
            "{parent}: {err}"
        );
        assert!(!socket.exists());
    }
}

/// berthd started in a cgroup that was given the pids controller alone,
/// with its containers below it: it logs what was not delegated, runs
/// containers, and refuses a memory limit saying why. cgroup v2 only.
#[tokio::test(flavor = "multi_thread")]
async fn a_controller_not_delegated_is_named_and_its_limits_refused() {
    if !cgroup_v2() {
        skip(
            Need::SystemdOrCgroupV2,
            "needs a pure cgroup v2 host (.ci/cgroup-v2-vm runs it)",
        );
        return;
    }
    let mut raw = [0u8; 4];
    getrandom(&mut raw);
    let top = format!("/berth-delegated-{:08x}", u32::from_ne_bytes(raw));
    let cleanup = Cleanup(top.clone());
    let dir = std::path::Path::new("/sys/fs/cgroup").join(top.trim_start_matches('/'));
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("cgroup.subtree_control"), "+pids").unwrap();
    let own = dir.join("berthd");
    std::fs::create_dir(&own).unwrap();
    let controllers = std::fs::read_to_string(own.join("cgroup.controllers")).unwrap();
    assert_eq!(controllers.trim(), "pids");

    let root = test_dir("not-delegated");
    let socket = root.join("berth.sock");
    let log = std::fs::File::create(root.join("berthd.log")).unwrap();
    // berthd joins the cgroup before it runs, as under a service manager.
    let mut berthd = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec \"$@\"",
            own.display()
        ))
        .arg("sh")
        .arg(berthd())
        .args(["--socket", socket.to_str().unwrap()])
        .args(["--root", root.join("state").to_str().unwrap()])
        .args(["--cgroup-parent", "containers"])
        .stderr(log)
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !socket.exists() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "berthd did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let logged = std::fs::read_to_string(root.join("berthd.log")).unwrap();
    assert!(
        logged.contains("controller not delegated") && logged.contains("controller=memory"),
        "{logged}"
    );
    let host = format!("unix://{}", socket.display());
    let mut api =
        berth::pb::containers_client::ContainersClient::new(berth::connect(&host).await.unwrap());
    // berthd moved itself into the leaf beside its containers.
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", berthd.id())).unwrap();
    assert_eq!(cg.trim(), format!("0::{top}/berthd/daemon"));
    let mut req = spec("limited", &["true"]);
    req.resources = Some(berth::pb::Resources {
        memory_limit_bytes: Some(64 << 20),
        ..Default::default()
    });
    let err = api.create(req).await.unwrap_err();
    assert_eq!(
        err.code(),
        tonic::Code::FailedPrecondition,
        "{}",
        err.message()
    );
    assert!(err.message().contains("not delegated"), "{}", err.message());
    // A pids limit it can enforce, in a cgroup below its own.
    let mut req = spec("pids", &["sleep", "1000"]);
    req.resources = Some(berth::pb::Resources {
        pids_limit: Some(10),
        ..Default::default()
    });
    let id = started(&mut api, req).await;
    let container = own.join("containers").join(&id);
    assert_eq!(
        std::fs::read_to_string(container.join("pids.max"))
            .unwrap()
            .trim(),
        "10"
    );
    api.remove(berth::pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
    let _ = berthd.kill();
    let _ = berthd.wait();
    drop(cleanup);
}

/// A cgroup v1 freezer can stay FREEZING when a process forks while it
/// freezes; pause must get through anyway (here about one pause in 300
/// timed out after 5 s before it wrote FROZEN again while waiting).
#[tokio::test(flavor = "multi_thread")]
async fn a_container_that_forks_all_the_time_pauses_every_time() {
    let d = Daemon::start("freeze-forks").await;
    let mut api = d.api().await;
    let script = "while :; do sleep 0.01 & sleep 0.01; done";
    let id = started(&mut api, spec("forks", &["sh", "-c", script])).await;
    for round in 0..300 {
        let paused = api.pause(berth::pb::PauseRequest { id: id.clone() }).await;
        assert!(paused.is_ok(), "round {round}: {paused:?}");
        assert!(frozen(&id));
        api.unpause(berth::pb::UnpauseRequest { id: id.clone() })
            .await
            .unwrap();
    }
    api.remove(berth::pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
}
