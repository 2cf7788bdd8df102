//! Bad input gets a clear gRPC error and changes nothing: no container,
//! directory, cgroup, mount or process is left behind.

mod common;

use berth::pb::{self, Action};
use common::*;
use tonic::Code;

/// No containers, no container directories, no monitors.
async fn assert_nothing(d: &Daemon, api: &mut Api) {
    let list = api
        .list(pb::ListRequest {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = list.containers.iter().map(|c| c.name.clone()).collect();
    assert_eq!(names, vec!["taken".to_string()]);
    let dirs = std::fs::read_dir(d.root.join("containers"))
        .unwrap()
        .count();
    assert_eq!(dirs, 1, "a container directory was left");
    assert!(monitor_pids(&d.root).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_create_requests_are_rejected_and_leave_nothing() {
    let d = Daemon::start("badcreate").await;
    let mut api = d.api().await;
    let mut ev = d.events(&[]).await;
    api.create(spec("taken", &["true"])).await.unwrap();
    ev.until(Action::Create).await;
    let file = d.share("f").join("file");
    std::fs::write(&file, "x").unwrap();
    let cases: Vec<(pb::CreateRequest, Code, &str)> = vec![
        (
            spec("taken", &["true"]),
            Code::AlreadyExists,
            "already in use",
        ),
        (
            spec("-bad", &["true"]),
            Code::InvalidArgument,
            "invalid container name",
        ),
        (
            spec("a/b", &["true"]),
            Code::InvalidArgument,
            "invalid container name",
        ),
        (
            spec("sp ace", &["true"]),
            Code::InvalidArgument,
            "invalid container name",
        ),
        (
            pb::CreateRequest {
                rootfs: String::new(),
                ..spec("r1", &["true"])
            },
            Code::InvalidArgument,
            "rootfs",
        ),
        (
            pb::CreateRequest {
                rootfs: "relative/dir".into(),
                ..spec("r2", &["true"])
            },
            Code::InvalidArgument,
            "absolute",
        ),
        (
            pb::CreateRequest {
                rootfs: "/no/such/dir".into(),
                ..spec("r3", &["true"])
            },
            Code::InvalidArgument,
            "no such directory",
        ),
        (
            pb::CreateRequest {
                rootfs: file.display().to_string(),
                ..spec("r4", &["true"])
            },
            Code::InvalidArgument,
            "not a directory",
        ),
        (
            spec("args", &[]),
            Code::InvalidArgument,
            "args must not be empty",
        ),
        (
            pb::CreateRequest {
                env: vec!["NOEQUALS".into()],
                ..spec("e1", &["true"])
            },
            Code::InvalidArgument,
            "KEY=VALUE",
        ),
        (
            pb::CreateRequest {
                env: vec!["=v".into()],
                ..spec("e2", &["true"])
            },
            Code::InvalidArgument,
            "KEY=VALUE",
        ),
        (
            pb::CreateRequest {
                stop_signal: "SIGNOPE".into(),
                ..spec("s1", &["true"])
            },
            Code::InvalidArgument,
            "invalid signal",
        ),
        (
            pb::CreateRequest {
                working_dir: "rel".into(),
                ..spec("w1", &["true"])
            },
            Code::InvalidArgument,
            "working_dir",
        ),
        (
            pb::CreateRequest {
                network: "no such".into(),
                ..spec("n1", &["true"])
            },
            Code::InvalidArgument,
            "network",
        ),
        (
            pb::CreateRequest {
                network: "nosuch".into(),
                ..spec("n2", &["true"])
            },
            Code::NotFound,
            "no such network",
        ),
        (
            pb::CreateRequest {
                network: "none".into(),
                ports: vec![pb::PortBinding {
                    container_port: 80,
                    ..Default::default()
                }],
                ..spec("n3", &["true"])
            },
            Code::InvalidArgument,
            "publish",
        ),
        (
            pb::CreateRequest {
                network: String::new(),
                ports: vec![pb::PortBinding {
                    container_port: 70000,
                    ..Default::default()
                }],
                ..spec("n4", &["true"])
            },
            Code::InvalidArgument,
            "published port",
        ),
        (
            pb::CreateRequest {
                mounts: vec![pb::Mount {
                    source: "/no/such".into(),
                    destination: "/x".into(),
                    read_only: false,
                    ..Default::default()
                }],
                ..spec("m1", &["true"])
            },
            Code::InvalidArgument,
            "mount source",
        ),
        (
            pb::CreateRequest {
                mounts: vec![pb::Mount {
                    source: "/tmp".into(),
                    destination: "/../../etc".into(),
                    read_only: false,
                    ..Default::default()
                }],
                ..spec("m2", &["true"])
            },
            Code::InvalidArgument,
            "mount destination",
        ),
        (
            pb::CreateRequest {
                mounts: vec![pb::Mount {
                    source: "/tmp".into(),
                    destination: "/x".into(),
                    propagation: "sideways".into(),
                    ..Default::default()
                }],
                ..spec("m3", &["true"])
            },
            Code::InvalidArgument,
            "mount propagation",
        ),
    ];
    for (req, code, text) in cases {
        let name = req.name.clone();
        let err = api.create(req).await.unwrap_err();
        assert_eq!(err.code(), code, "{name}: {}", err.message());
        assert!(
            err.message().contains(text),
            "{name}: {:?} should say {text:?}",
            err.message()
        );
    }
    assert_nothing(&d, &mut api).await;
    ev.quiet().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_on_containers() {
    let d = Daemon::start("badops").await;
    let mut api = d.api().await;
    let mut ev = d.events(&[]).await;
    let id = api
        .create(spec("taken", &["sleep", "1000"]))
        .await
        .unwrap()
        .into_inner()
        .id;
    ev.until(Action::Create).await;
    // Created, not running.
    let err = api
        .kill(pb::KillRequest {
            id: id.clone(),
            signal: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = api
        .pause(pb::PauseRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    ev.until(Action::Start).await;
    for bad in ["SIGFOO", "0", "65", "-9", "KILLL"] {
        let err = api
            .kill(pb::KillRequest {
                id: id.clone(),
                signal: bad.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
        assert!(
            err.message().contains("invalid signal"),
            "{}",
            err.message()
        );
        let err = api
            .stop(pb::StopRequest {
                id: id.clone(),
                timeout_seconds: None,
                signal: Some(bad.into()),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
    }
    for missing in ["nosuch", "0123456789abcdef0123"] {
        let err = api
            .kill(pb::KillRequest {
                id: missing.into(),
                signal: String::new(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        assert!(err.message().contains(missing));
    }
    let err = api
        .wait(pb::WaitRequest {
            id: id.clone(),
            condition: 99,
            exit_count: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // Nothing happened to it.
    ev.quiet().await;
    assert!(alive(status(&mut api, &id).await.pid));
    api.remove(pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_that_cannot_run_fails_start_and_leaves_nothing() {
    let d = Daemon::start("noexec").await;
    let mut api = d.api().await;
    let mut ev = d.events(&[]).await;
    for (name, args) in [
        ("missing", vec!["nosuchcmd"]),
        ("path", vec!["/bin/nosuch"]),
    ] {
        let id = api.create(spec(name, &args)).await.unwrap().into_inner().id;
        let err = api
            .start(pb::StartRequest { id: id.clone() })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert!(err.message().contains("nosuch"), "{}", err.message());
        // Still just created; no cgroup, no process, no monitor.
        let st = status(&mut api, &id).await;
        assert_eq!(st.status, pb::Status::Created as i32);
        assert!(cgroup_dirs(&id).is_empty());
        assert!(monitor_pids(&d.root).is_empty());
    }
    let seen = ev.until(Action::Create).await;
    assert_eq!(brief(&seen), vec![(Action::Create, 0, None)]);
    assert_eq!(
        brief(&[ev.next(std::time::Duration::from_secs(1)).await.unwrap()]),
        vec![(Action::Create, 0, None)]
    );
    ev.quiet().await;
}

/// An error quotes at most 100 bytes of what the caller sent: a 70 KB
/// name or reference is INVALID_ARGUMENT or NOT_FOUND with a short
/// message, never an error too big for the client to receive.
#[tokio::test(flavor = "multi_thread")]
async fn huge_names_are_quoted_short_in_every_error() {
    let d = Daemon::start("huge-names").await;
    let mut images = d.images().await;
    let mut nets = networks(&d).await;
    let huge = "a".repeat(70_000);
    let cases: Vec<(&str, Result<(), tonic::Status>)> = vec![
        (
            "pull",
            match images
                .pull(pb::PullRequest {
                    reference: huge.clone(),
                    ..Default::default()
                })
                .await
            {
                Ok(mut s) => s.get_mut().message().await.map(|_| ()),
                Err(e) => Err(e),
            },
        ),
        (
            "tag source",
            images
                .tag(pb::TagRequest {
                    source: huge.clone(),
                    target: "x:1".into(),
                })
                .await
                .map(|_| ()),
        ),
        (
            "inspect",
            images
                .inspect(pb::InspectImageRequest {
                    image: huge.clone(),
                })
                .await
                .map(|_| ()),
        ),
        (
            "remove",
            images
                .remove(pb::RemoveImageRequest {
                    image: huge.clone(),
                    force: false,
                })
                .await
                .map(|_| ()),
        ),
        (
            "save",
            images
                .save(pb::SaveRequest {
                    images: vec![huge.clone()],
                })
                .await
                .map(|_| ()),
        ),
        (
            "login",
            images
                .login(pb::LoginRequest {
                    registry: huge.clone(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
        ),
        (
            "logout",
            images
                .logout(pb::LogoutRequest {
                    registry: huge.clone(),
                })
                .await
                .map(|_| ()),
        ),
        (
            "network create",
            nets.create(pb::CreateNetworkRequest {
                name: huge.clone(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        ),
        (
            "network subnet",
            nets.create(pb::CreateNetworkRequest {
                name: "n".into(),
                subnet: huge.clone(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        ),
    ];
    for (what, r) in cases {
        let e = r.expect_err(what);
        assert!(
            matches!(e.code(), Code::InvalidArgument | Code::NotFound),
            "{what}: {:?} {}",
            e.code(),
            &e.message()[..e.message().len().min(300)]
        );
        assert!(
            e.message().len() < 400,
            "{what}: {} bytes",
            e.message().len()
        );
    }
    // A tag to a huge target, from an image that exists, is refused too.
    let e = images
        .tag(pb::TagRequest {
            source: "nothing".into(),
            target: huge.clone(),
        })
        .await
        .unwrap_err();
    assert!(
        e.message().len() < 400,
        "tag target: {} bytes",
        e.message().len()
    );
}

/// References whose host cannot be one are INVALID_ARGUMENT before any
/// connection is tried.
#[tokio::test(flavor = "multi_thread")]
async fn references_that_cannot_name_a_registry_are_invalid() {
    let d = Daemon::start("bad-refs").await;
    let mut images = d.images().await;
    for reference in [
        ":::",
        "a@sha256:zz",
        "localhost:99999/x",
        "host:0/x",
        "[::1/x",
        "a..b:5000/x",
        "-bad/x",
    ] {
        let r = match images
            .pull(pb::PullRequest {
                reference: reference.into(),
                ..Default::default()
            })
            .await
        {
            Ok(mut s) => s.get_mut().message().await.map(|_| ()),
            Err(e) => Err(e),
        };
        let e = r.expect_err(reference);
        assert_eq!(e.code(), Code::InvalidArgument, "{reference}: {e:?}");
    }
}

/// Subnets no bridge can use and gateways that are the subnet's own
/// network or broadcast address are refused, and leave no network.
#[tokio::test(flavor = "multi_thread")]
async fn unusable_subnets_and_gateways_are_refused() {
    let d = Daemon::start("bad-subnets").await;
    let mut nets = networks(&d).await;
    let cases = [
        ("127.0.0.0/8", ""),
        ("127.1.0.0/16", ""),
        ("224.0.0.0/4", ""),
        ("230.1.0.0/16", ""),
        ("0.0.0.0/8", ""),
        ("169.254.0.0/16", ""),
        ("240.0.0.0/4", ""),
        ("10.99.0.0/24", "10.99.0.0"),
        ("10.99.0.0/24", "10.99.0.255"),
    ];
    for (subnet, gateway) in cases {
        let e = nets
            .create(pb::CreateNetworkRequest {
                name: "bad".into(),
                subnet: subnet.into(),
                gateway: gateway.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{subnet} {gateway}: {e:?}");
    }
    let names: Vec<String> = nets
        .list(pb::ListNetworksRequest::default())
        .await
        .unwrap()
        .into_inner()
        .networks
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert!(!names.contains(&"bad".to_string()), "{names:?}");
}
