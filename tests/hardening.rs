//! berth tried as an attacker would: nothing the daemon holds reaches a
//! container (inherited fds, its environment, paths and binary through
//! berth's init), and hostile values (uid -1, mount destinations that name
//! the root) are refused.

mod common;

use berth::pb;
use common::*;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

/// Open files of every kind, as a careless parent could pass them down.
fn leaky_fds(d: &Daemon) -> Vec<OwnedFd> {
    let dir = std::fs::File::open("/etc").unwrap();
    let file = std::fs::File::create(d.dir.join("leaked-file")).unwrap();
    let (sock, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let (pipe_r, pipe_w) = common::pipe();
    vec![dir.into(), file.into(), sock.into(), pipe_r, pipe_w]
}

/// What the open files of `pid` are: (device, inode) of each.
fn objects_of(pid: u32) -> Vec<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::metadata(e.path()).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect()
}

/// The fd numbers a process holds, from the host's /proc.
fn fds_of(pid: u32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

#[tokio::test(flavor = "multi_thread")]
async fn inherited_file_descriptors_never_reach_a_container() {
    let mut d = Daemon::start("fds").await;
    d.stop_daemon(libc::SIGTERM);
    d.inherit = leaky_fds(&d);
    d.spawn().await;
    let mut api = d.api().await;

    // The way out through a leaked directory fd (CVE-2024-21626's class).
    let (code, out) = run_script(
        &mut api,
        spec("escape", &[]),
        "ls /proc/$$/fd; cat /proc/$$/fd/7/hostname 2>/dev/null || echo refused",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let mut lines = out.lines();
    assert_eq!(
        (lines.next(), lines.next(), lines.next()),
        (Some("0"), Some("1"), Some("2")),
        "{out}"
    );
    assert_eq!(lines.last(), Some("refused"), "{out}");

    // Seen from the host: PID 1 holds 0, 1, 2; its monitor none of the
    // leaked files.
    let leaked: Vec<(u64, u64)> = d
        .inherit
        .iter()
        .map(|fd| {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::File::from(fd.try_clone().unwrap())
                .metadata()
                .unwrap();
            (m.dev(), m.ino())
        })
        .collect();
    for init in [false, true] {
        let mut req = spec(&format!("sleeper-{init}"), &["sleep", "1000"]);
        req.init = init;
        let id = started(&mut api, req).await;
        let pid = status(&mut api, &id).await.pid;
        // berth-init holds a pipe of its own while it starts the process
        // (std's report of a failed exec), closed once that exec is done.
        let t = Instant::now();
        while init && fds_of(pid) != [0, 1, 2] && t.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(fds_of(pid), [0, 1, 2], "init {init}");
        for monitor in monitor_pids(&d.root) {
            let held = objects_of(monitor as u32);
            assert!(!held.iter().any(|o| leaked.contains(o)), "{held:?}");
        }
        api.remove(pb::RemoveRequest { id, force: true })
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn berths_init_shows_the_container_nothing_of_the_daemon() {
    let mut d = Daemon::start("initleak").await;
    d.stop_daemon(libc::SIGTERM);
    d.env.push((
        "BERTH_TEST_SECRET".into(),
        "hunter2-not-for-containers".into(),
    ));
    d.spawn().await;
    let mut api = d.api().await;
    let script = r#"
for my $f ("environ", "cmdline") {
    open(my $h, "<", "/proc/1/$f") or die "$f: $!"; local $/; my $x = <$h>; $x =~ s/\0/ /g;
    print "$f: $x\n";
}
open(my $h, "<", "/proc/self/environ"); { local $/; my $x = <$h>; $x =~ s/\0/ /g; print "own: $x\n"; }
print "exe: ", readlink("/proc/1/exe"), "\n";
print "write: ", (open(my $w, ">>", "/proc/1/exe") ? "ok" : 0 + $!), "\n";
"#;
    let mut req = spec("init", &["perl", "-e", script]);
    req.init = true;
    req.env = vec!["FOO=bar".into()];
    let id = started(&mut api, req).await;
    let (code, out) = finished(&mut api, &id).await;
    assert_eq!(code, 0, "{out}");
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(": "))
            .unwrap_or_else(|| panic!("no {k} in {out}"))
            .to_string()
    };
    // The container's environment, and nothing else.
    assert!(!out.contains("hunter2"), "{out}");
    assert!(field("environ").contains("FOO=bar"), "{out}");
    assert_eq!(field("environ"), field("own"));
    // A command line without the daemon's paths.
    assert!(
        field("cmdline").starts_with("berth-init -- perl -e"),
        "{out}"
    );
    assert!(!out.contains(d.root.to_str().unwrap()), "{out}");
    // Not the host's binary, and not writable.
    assert_eq!(field("exe"), "/memfd:berth-init (deleted)");
    assert_ne!(field("write"), "ok");
}

/// The code of a refused create, and proof that nothing was made.
async fn refused(d: &Daemon, api: &mut Api, req: pb::CreateRequest) -> tonic::Status {
    let name = req.name.clone();
    let err = api.create(req).await.expect_err("created");
    let listed = listed(api).await;
    assert!(!listed.iter().any(|c| c.name == name), "{name} was created");
    let dirs = std::fs::read_dir(d.root.join("containers"))
        .unwrap()
        .count();
    assert_eq!(dirs, listed.len(), "a directory was left behind");
    err
}

#[tokio::test(flavor = "multi_thread")]
async fn uid_and_gid_minus_one_are_refused() {
    let d = Daemon::start("uidmax").await;
    let mut api = d.api().await;
    for user in [
        "4294967295",
        "4294967295:0",
        "0:4294967295",
        "4294967296",
        "99999999999999999999",
        "-1",
    ] {
        let mut req = spec("u", &["true"]);
        req.user = user.into();
        let err = refused(&d, &mut api, req).await;
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{user}: {err:?}");
        assert!(err.message().contains("invalid user"), "{err:?}");
    }
    // The largest real ids run as themselves, without capabilities.
    let mut req = spec("max", &[]);
    req.user = "4294967294:4294967294".into();
    let (code, out) = run_script(&mut api, req, "cat /proc/self/status").await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Uid:\t4294967294\t4294967294"), "{out}");
    assert!(out.contains("Gid:\t4294967294\t4294967294"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    // A name whose /etc/passwd entry says -1 is refused at start.
    let mut req = spec("named", &["true"]);
    req.user = "evil".into();
    let id = created(&mut api, req).await;
    let etc = d.container_dir(&id).join("upper/etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("passwd"), "evil:x:4294967295:0::/:/bin/sh\n").unwrap();
    let err = api
        .start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert_eq!(
        status(&mut api, &id).await.status,
        pb::Status::Created as i32
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mounts_cannot_cover_the_root_or_the_kernels_filesystems() {
    let d = Daemon::start("mountdest").await;
    let mut api = d.api().await;
    let src = d.share("src").display().to_string();
    let mount = |dest: &str| {
        let mut req = spec("m", &["true"]);
        req.mounts.push(pb::Mount {
            source: src.clone(),
            destination: dest.into(),
            read_only: false,
            ..Default::default()
        });
        req
    };
    for dest in [
        "/",
        "/.",
        "//",
        "/./",
        "/..",
        "/proc",
        "/proc/",
        "/proc/sys",
        "//proc//1",
        "/sys",
        "/sys/fs/cgroup",
        "/dev",
        "/dev/",
        "/a\0b",
        "relative",
        "/a/../b",
    ] {
        let err = refused(&d, &mut api, mount(dest)).await;
        assert_eq!(
            err.code(),
            tonic::Code::InvalidArgument,
            "{dest:?}: {err:?}"
        );
        assert!(
            err.message().contains("mount destination"),
            "{dest:?}: {err:?}"
        );
    }
    // The host's root on "/." was the way to take it over.
    let mut req = mount("/.");
    req.mounts[0].source = "/".into();
    assert_eq!(
        refused(&d, &mut api, req).await.code(),
        tonic::Code::InvalidArgument
    );
    let mut req = mount("/x");
    req.mounts[0].source = "/a\0b".into();
    assert_eq!(
        refused(&d, &mut api, req).await.code(),
        tonic::Code::InvalidArgument
    );
    // Below /dev is allowed; destinations are kept in their plain form.
    std::fs::write(d.share("src").join("f"), "in\n").unwrap();
    let mut req = mount("//data/./in//");
    req.mounts.push(pb::Mount {
        source: src.clone(),
        destination: "/dev/extra".into(),
        read_only: true,
        ..Default::default()
    });
    req.args = vec![
        "sh".into(),
        "-c".into(),
        "cat /data/in/f /dev/extra/f".into(),
    ];
    let id = started(&mut api, req).await;
    let (code, out) = finished(&mut api, &id).await;
    assert_eq!((code, out.as_str()), (0, "in\nin\n"));
    let dests: Vec<String> = inspect(&mut api, &id)
        .await
        .config
        .unwrap()
        .mounts
        .into_iter()
        .map(|m| m.destination)
        .collect();
    assert_eq!(dests, ["/data/in", "/dev/extra"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_would_fail_at_start_is_refused_at_create() {
    let d = Daemon::start("badcreate").await;
    let mut api = d.api().await;
    type Edit = Box<dyn Fn(&mut pb::CreateRequest)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("working_dir", Box::new(|r| r.working_dir = "/a\0b".into())),
        (
            "working_dir",
            Box::new(|r| r.working_dir = "/bin/sh".into()),
        ),
        ("working_dir", Box::new(|r| r.working_dir = "tmp".into())),
        (
            "mount destination",
            Box::new(|r| {
                r.mounts.push(pb::Mount {
                    source: "/tmp".into(),
                    destination: "/x\0".into(),
                    read_only: false,
                    ..Default::default()
                })
            }),
        ),
        ("rootfs", Box::new(|r| r.rootfs = "/proc/1/root".into())),
        ("rootfs", Box::new(|r| r.rootfs = "/sys/fs".into())),
        ("rootfs", Box::new(|r| r.rootfs = "/proc".into())),
        (
            "pids limit",
            Box::new(|r| {
                r.resources = Some(pb::Resources {
                    pids_limit: Some(1 << 31),
                    ..Default::default()
                })
            }),
        ),
        (
            "pids limit",
            Box::new(|r| {
                r.resources = Some(pb::Resources {
                    pids_limit: Some((1 << 22) + 1),
                    ..Default::default()
                })
            }),
        ),
        (
            "label key",
            Box::new(|r| {
                r.labels.insert("a\0b".into(), "v".into());
            }),
        ),
        ("log_max_files", Box::new(|r| r.log_max_files = u32::MAX)),
        ("log_max_files", Box::new(|r| r.log_max_files = 101)),
        ("log_max_size_bytes", Box::new(|r| r.log_max_size_bytes = 1)),
        (
            "log_max_size_bytes",
            Box::new(|r| r.log_max_size_bytes = u64::MAX),
        ),
        ("argument", Box::new(|r| r.args.push("a\0b".into()))),
    ];
    for (field, edit) in &cases {
        let mut req = spec("bad", &["true"]);
        edit(&mut req);
        let err = refused(&d, &mut api, req).await;
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{field}: {err:?}");
        assert!(err.message().contains(field), "{field}: {err:?}");
    }
    // The limits that are allowed still run.
    let mut req = spec("ok", &["true"]);
    req.log_max_files = 100;
    req.log_max_size_bytes = 1024;
    req.working_dir = "/tmp//x/".into();
    req.resources = Some(pb::Resources {
        pids_limit: Some(1 << 22),
        ..Default::default()
    });
    let id = started(&mut api, req).await;
    assert_eq!(finished(&mut api, &id).await.0, 0);
    // Update checks what create checks, and changes nothing.
    let err = api
        .update(pb::UpdateRequest {
            id: id.clone(),
            resources: Some(pb::Resources {
                pids_limit: Some(1 << 31),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let config = inspect(&mut api, &id).await.config.unwrap();
    assert_eq!(config.resources.unwrap().pids_limit, Some(1 << 22));
    assert_eq!(config.working_dir, "/tmp/x");
}

/// A message of the wrong shape for CreateRequest: field 1 (name, a
/// string) sent as raw bytes or as a fixed64.
#[derive(Clone, PartialEq, prost::Message)]
struct NotUtf8 {
    #[prost(bytes = "vec", tag = "1")]
    name: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct WrongWireType {
    #[prost(fixed64, tag = "1")]
    name: u64,
}

async fn raw_create<M: prost::Message + Send + Sync + 'static>(
    d: &Daemon,
    msg: M,
) -> tonic::Status {
    let channel = berth::connect(&d.host()).await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/berth.v1.Containers/Create");
    let codec = tonic_prost::ProstCodec::<M, pb::CreateResponse>::default();
    grpc.unary(tonic::Request::new(msg), path, codec)
        .await
        .unwrap_err()
}

#[tokio::test(flavor = "multi_thread")]
async fn undecodable_requests_and_huge_values_get_short_clear_errors() {
    let d = Daemon::start("decode").await;
    for err in [
        raw_create(
            &d,
            NotUtf8 {
                name: vec![0xff, 0xfe, b'x'],
            },
        )
        .await,
        raw_create(&d, WrongWireType { name: 7 }).await,
    ] {
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains("cannot decode"), "{err:?}");
    }
    // A 900 KB id is quoted in 100 bytes, so the error itself arrives.
    let mut api = d.api().await;
    let huge = "x".repeat(900 << 10);
    let err = api
        .inspect(pb::InspectRequest { id: huge.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    assert!(err.message().len() < 200, "{}", err.message().len());
    let mut req = spec(&"n".repeat(129), &["true"]);
    req.env = vec![huge.clone()];
    let err = api.create(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().len() < 300, "{}", err.message());
    let err = api
        .kill(pb::KillRequest {
            id: "none".into(),
            signal: huge,
            all: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().len() < 300, "{}", err.message());
}

#[tokio::test(flavor = "multi_thread")]
async fn operations_racing_an_exit_say_not_running() {
    let d = Daemon::start("exitrace").await;
    let mut api = d.api().await;
    let allowed = |r: Result<(), tonic::Status>, what: &str| match r {
        Ok(()) => {}
        Err(s) if s.code() == tonic::Code::FailedPrecondition => {
            assert!(s.message().contains("not"), "{what}: {s:?}")
        }
        Err(s) => panic!("{what}: {s:?}"),
    };
    for round in 0..15 {
        let id = started(&mut api, spec(&format!("r{round}"), &["sleep", "1000"])).await;
        if round % 3 == 2 {
            api.pause(pb::PauseRequest { id: id.clone() })
                .await
                .unwrap();
        }
        api.kill(pb::KillRequest {
            id: id.clone(),
            signal: "KILL".into(),
            all: false,
        })
        .await
        .unwrap();
        let r = match round % 3 {
            0 => api
                .pause(pb::PauseRequest { id: id.clone() })
                .await
                .map(drop),
            1 => api
                .kill(pb::KillRequest {
                    id: id.clone(),
                    signal: "TERM".into(),
                    all: true,
                })
                .await
                .map(drop),
            _ => api
                .unpause(pb::UnpauseRequest { id: id.clone() })
                .await
                .map(drop),
        };
        allowed(r, &format!("round {round}"));
        let r = api
            .update(pb::UpdateRequest {
                id: id.clone(),
                resources: Some(pb::Resources {
                    pids_limit: Some(100),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .map(drop);
        allowed(r, &format!("update, round {round}"));
        api.wait(pb::WaitRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
        allowed(
            api.pause(pb::PauseRequest { id: id.clone() })
                .await
                .map(drop),
            "pause after exit",
        );
    }
}
