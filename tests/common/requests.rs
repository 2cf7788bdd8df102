//! Requests as tests make them, and what they read back.

use super::*;

/// A create request for `args` in the test rootfs, on no network (tests
/// of networks name theirs).
pub fn spec(name: &str, args: &[&str]) -> CreateRequest {
    CreateRequest {
        name: name.to_string(),
        rootfs: rootfs().display().to_string(),
        args: args.iter().map(|s| s.to_string()).collect(),
        network: "none".into(),
        ..Default::default()
    }
}

/// A create request for `args` with the test's share directory `s`
/// mounted at /s.
pub fn shared(d: &Daemon, name: &str, args: &[&str]) -> CreateRequest {
    let mut req = spec(name, args);
    req.mounts.push(pb::Mount {
        source: d.share("s").display().to_string(),
        destination: "/s".into(),
        read_only: false,
        ..Default::default()
    });
    req
}

/// Every container, running or not.
pub async fn listed(api: &mut Api) -> Vec<pb::Container> {
    api.list(pb::ListRequest {
        all: true,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .containers
}

/// Creates a container; its id.
pub async fn created(api: &mut Api, req: CreateRequest) -> String {
    api.create(req).await.unwrap().into_inner().id
}

/// Creates and starts a container; its id.
pub async fn started(api: &mut Api, req: CreateRequest) -> String {
    let id = created(api, req).await;
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    id
}

/// A short action name list, for readable assertions.
pub type Seen = Vec<(Action, i32, Option<i32>)>;

pub async fn inspect(api: &mut Api, id: &str) -> pb::Container {
    api.inspect(pb::InspectRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .container
        .unwrap()
}

pub async fn status(api: &mut Api, id: &str) -> pb::ContainerState {
    inspect(api, id).await.state.unwrap()
}

/// Runs `script` in a container made by `req` to its end: exit code and
/// everything it wrote.
pub async fn run_script(api: &mut Api, mut req: pb::CreateRequest, script: &str) -> (i32, String) {
    req.args = vec!["sh".into(), "-c".into(), script.into()];
    let id = started(api, req).await;
    finished(api, &id).await
}

/// Waits for the container to exit: its exit code and everything it
/// wrote (stdout and stderr, in order).
pub async fn finished(api: &mut Api, id: &str) -> (i32, String) {
    let exit = api
        .wait(pb::WaitRequest {
            id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut logs = api
        .logs(pb::LogsRequest {
            id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = String::new();
    while let Some(e) = logs.message().await.unwrap() {
        out.push_str(&String::from_utf8_lossy(&e.line));
    }
    (exit.exit_code, out)
}

/// Waits until `path` exists and returns its content.
pub async fn read_when_ready(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if s.ends_with('\n') {
                return s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Creates and starts `req`, asserting create then start.
pub async fn run(api: &mut Api, ev: &mut Events, req: pb::CreateRequest) -> String {
    let id = api.create(req).await.unwrap().into_inner().id;
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    let seen = ev.until(Action::Start).await;
    assert_eq!(
        brief(&seen),
        vec![(Action::Create, 0, None), (Action::Start, 0, None)]
    );
    id
}

/// `args` with the test's share directory mounted at /out.
pub fn with_out(d: &Daemon, name: &str, args: &[&str]) -> pb::CreateRequest {
    let mut req = spec(name, args);
    req.mounts.push(pb::Mount {
        source: d.share(name).display().to_string(),
        destination: "/out".into(),
        read_only: false,
        ..Default::default()
    });
    req
}

pub async fn stop(api: &mut Api, id: &str, timeout: Option<i32>) {
    api.stop(pb::StopRequest {
        id: id.into(),
        timeout_seconds: timeout,
        signal: None,
    })
    .await
    .unwrap();
}

/// Nothing of the container is left: record, process, cgroup, mount,
/// directory, monitor.
pub async fn assert_gone(d: &Daemon, api: &mut Api, id: &str, pid: u32) {
    let err = api
        .inspect(pb::InspectRequest { id: id.into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(!alive(pid), "process {pid} survived");
    assert!(
        cgroup_dirs(id).is_empty(),
        "cgroup left: {:?}",
        cgroup_dirs(id)
    );
    assert!(!d.container_dir(id).exists(), "directory left");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(id), "mount left");
    assert!(monitor_pids(&d.root).is_empty(), "monitor left");
}

/// Waits until the container is not running.
pub async fn wait(api: &mut Api, id: &str) -> pb::WaitResponse {
    api.wait(pb::WaitRequest {
        id: id.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
}
