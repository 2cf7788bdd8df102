//! Validation, as a request meets it.

use super::*;

const HOST: Host = Host {
    cpus: 2,
    swap: true,
};

const MIB: i64 = 1 << 20;

fn merged(from: &Resources, req: ResourcesRequest) -> Result<Resources, Error> {
    from.merge(&req, HOST)
}

#[test]
fn capabilities_as_docker_computes_them() {
    let with = |add: &[&str], drop: &[&str], privileged| {
        let mut req = request();
        req.cap_add = add.iter().map(|s| s.to_string()).collect();
        req.cap_drop = drop.iter().map(|s| s.to_string()).collect();
        req.privileged = privileged;
        req.validate("h", HOST).map(|s| s.capabilities())
    };
    let default = 0xa804_25fb;
    let all = (1u64 << 41) - 1;
    assert_eq!(with(&[], &[], false), Ok(default));
    let raw = 1 << 13;
    let admin = 1 << 21;
    assert_eq!(
        with(&["sys_admin"], &["CAP_NET_RAW"], false),
        Ok(default & !raw | admin)
    );
    assert_eq!(with(&["NET_RAW"], &["ALL"], false), Ok(raw));
    assert_eq!(with(&["ALL"], &["SYS_ADMIN"], false), Ok(all & !admin));
    assert_eq!(with(&[], &["ALL"], true), Ok(all));
    assert_eq!(
        with(&["FLY"], &[], false),
        Err(Error::Capability("FLY".into()))
    );
}

#[test]
fn resources_on_create() {
    let none = Resources::default();
    let r = merged(
        &none,
        ResourcesRequest {
            memory: Some(64 * MIB),
            cpus: Some(0.5),
            cpu_shares: Some(512),
            pids_limit: Some(50),
            ..Default::default()
        },
    )
    .unwrap();
    // Docker's default: swap as much as memory.
    assert_eq!(
        r,
        Resources {
            memory: 64 * MIB,
            memory_swap: 128 * MIB,
            nano_cpus: 500_000_000,
            cpu_shares: 512,
            pids_limit: 50,
            ..Default::default()
        }
    );
    let no_swap = Host {
        swap: false,
        ..HOST
    };
    let r = none
        .merge(
            &ResourcesRequest {
                memory: Some(64 * MIB),
                ..Default::default()
            },
            no_swap,
        )
        .unwrap();
    assert_eq!(r.memory_swap, 0);
    let r = merged(
        &none,
        ResourcesRequest {
            memory: Some(64 * MIB),
            memory_swap: Some(64 * MIB),
            pids_limit: Some(-1),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((r.memory_swap, r.pids_limit), (64 * MIB, 0));
    assert_eq!(merged(&none, ResourcesRequest::default()).unwrap(), none);
}

#[test]
fn bad_resources() {
    let none = Resources::default();
    let bad = |req: ResourcesRequest| merged(&none, req).unwrap_err();
    let mem = |m| ResourcesRequest {
        memory: Some(m),
        ..Default::default()
    };
    assert_eq!(bad(mem(MIB)), Error::Memory(MIB));
    assert_eq!(bad(mem(-5)), Error::Memory(-5));
    assert_eq!(
        bad(ResourcesRequest {
            memory: Some(64 * MIB),
            memory_swap: Some(32 * MIB),
            ..Default::default()
        }),
        Error::MemorySwap(32 * MIB, 64 * MIB)
    );
    assert_eq!(
        bad(ResourcesRequest {
            memory_swap: Some(64 * MIB),
            ..Default::default()
        }),
        Error::SwapWithoutMemory
    );
    for c in [-1.0, 0.001, 2.5, f64::NAN, f64::INFINITY] {
        let err = bad(ResourcesRequest {
            cpus: Some(c),
            ..Default::default()
        });
        assert!(matches!(err, Error::Cpus(_, 2)), "{c}");
    }
    for s in [1, 262_145] {
        let err = bad(ResourcesRequest {
            cpu_shares: Some(s),
            ..Default::default()
        });
        assert_eq!(err, Error::CpuShares(s));
    }
    let err = bad(ResourcesRequest {
        pids_limit: Some(-2),
        ..Default::default()
    });
    assert_eq!(err, Error::PidsLimit(-2));
}

#[test]
fn resources_on_update() {
    let limited = Resources {
        memory: 64 * MIB,
        memory_swap: 128 * MIB,
        ..Default::default()
    };
    let up = |m| ResourcesRequest {
        memory: Some(m),
        ..Default::default()
    };
    // Within the memory+swap limit: swap keeps its limit.
    assert_eq!(
        merged(&limited, up(100 * MIB)).unwrap().memory_swap,
        128 * MIB
    );
    // Past it: both must change together, as on Docker.
    assert_eq!(
        merged(&limited, up(256 * MIB)).unwrap_err(),
        Error::MemorySwap(128 * MIB, 256 * MIB)
    );
    let both = ResourcesRequest {
        memory: Some(256 * MIB),
        memory_swap: Some(-1),
        ..Default::default()
    };
    assert_eq!(merged(&limited, both).unwrap().memory_swap, -1);
    // No memory limit: no swap limit either.
    assert_eq!(merged(&limited, up(0)).unwrap(), Resources::default());
    // Unset fields keep their value.
    let pids = ResourcesRequest {
        pids_limit: Some(10),
        ..Default::default()
    };
    let r = merged(&limited, pids).unwrap();
    assert_eq!(
        (r.memory, r.memory_swap, r.pids_limit),
        (64 * MIB, 128 * MIB, 10)
    );
}

fn request() -> Request {
    Request {
        name: "web-1".into(),
        rootfs: "/".into(),
        args: vec!["sh".into()],
        ..Default::default()
    }
}

#[test]
fn signals() {
    assert_eq!(parse_signal("KILL"), Ok(9));
    assert_eq!(parse_signal("SIGKILL"), Ok(9));
    assert_eq!(parse_signal("sigterm"), Ok(15));
    assert_eq!(parse_signal("9"), Ok(9));
    assert_eq!(parse_signal("HUP"), Ok(1));
    assert_eq!(parse_signal("RTMIN+2"), Ok(36));
    assert_eq!(parse_signal("RTMAX"), Ok(64));
    for bad in ["", "0", "65", "-1", "SIGFOO", "KILLL", "RTMIN+40"] {
        assert!(parse_signal(bad).is_err(), "{bad}");
    }
}

#[test]
fn names() {
    for good in ["a", "web-1", "A.b_c-9", "0"] {
        assert!(validate_name(good).is_ok(), "{good}");
    }
    for bad in ["", "-a", "_a", ".a", "a b", "a/b", "../x", "é"] {
        assert!(validate_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn defaults() {
    let spec = request().validate("abc", HOST).unwrap();
    assert_eq!(spec.working_dir, "/");
    assert_eq!(spec.hostname, "abc");
    assert_eq!(spec.stop_signal, 15);
    assert_eq!(spec.stop_timeout, 10);
    assert_eq!(spec.network, Network::Bridge);
    assert_eq!(
        spec.environment("/root"),
        [
            &format!("PATH={DEFAULT_PATH}"),
            "HOSTNAME=abc",
            "HOME=/root"
        ]
    );
}

#[test]
fn a_terminal_sets_term_unless_the_request_does() {
    let mut spec = request().validate("abc", HOST).unwrap();
    spec.tty = Some((24, 80));
    let env = spec.environment("/root");
    assert_eq!(env[2], "TERM=xterm");
    spec.env = vec!["TERM=dumb".into()];
    let env = spec.environment("/root");
    assert_eq!(env.iter().filter(|e| e.starts_with("TERM=")).count(), 1);
    assert!(env.contains(&"TERM=dumb".to_string()));
}

#[test]
fn rejects() {
    let cases: Vec<(Request, &str)> = vec![
        (
            Request {
                rootfs: "rel".into(),
                ..request()
            },
            "rootfs",
        ),
        (
            Request {
                rootfs: "/no/such/dir".into(),
                ..request()
            },
            "rootfs",
        ),
        (
            Request {
                args: vec![],
                ..request()
            },
            "args",
        ),
        (
            Request {
                env: vec!["NOEQ".into()],
                ..request()
            },
            "env",
        ),
        (
            Request {
                env: vec!["=v".into()],
                ..request()
            },
            "env",
        ),
        (
            Request {
                working_dir: "x".into(),
                ..request()
            },
            "working_dir",
        ),
        (
            Request {
                hostname: "a b".into(),
                ..request()
            },
            "hostname",
        ),
        (
            Request {
                stop_signal: "NOPE".into(),
                ..request()
            },
            "signal",
        ),
        (
            Request {
                network: "no/such".into(),
                ..request()
            },
            "network",
        ),
        (
            Request {
                mounts: vec![MountRequest {
                    source: "/".into(),
                    destination: "/a/../../etc".into(),
                    ..Default::default()
                }],
                ..request()
            },
            "destination",
        ),
        (
            Request {
                mounts: vec![MountRequest {
                    source: "tmp".into(),
                    destination: "/x".into(),
                    ..Default::default()
                }],
                ..request()
            },
            "source",
        ),
        (
            Request {
                mounts: vec![MountRequest {
                    source: "/tmp".into(),
                    destination: "/x".into(),
                    propagation: "rsharedish".into(),
                    ..Default::default()
                }],
                ..request()
            },
            "propagation",
        ),
    ];
    for (req, what) in cases {
        let err = req.validate("h", HOST).unwrap_err().to_string();
        assert!(err.contains(what), "{err} should mention {what}");
    }
}

#[test]
fn signal_names_read_back() {
    for (n, name) in [
        (15, "SIGTERM"),
        (6, "SIGABRT"),
        (29, "SIGIO"),
        (34, "SIGRTMIN"),
        (37, "SIGRTMIN+3"),
    ] {
        assert_eq!(signal_name(n), name);
        assert_eq!(parse_signal(name), Ok(n));
    }
}

#[test]
fn image_volumes_go_where_mounts_may() {
    use super::volume_destination as v;
    assert_eq!(v("/data").as_deref(), Some("/data"));
    assert_eq!(v("/var//lib/./db/").as_deref(), Some("/var/lib/db"));
    for bad in [
        "/",
        "/dev",
        "/proc",
        "/proc/sys",
        "/sys/fs",
        "relative",
        "/a/../b",
    ] {
        assert_eq!(v(bad), None, "{bad}");
    }
}

#[test]
fn finer_limits_merge_as_docker_checks_them() {
    let none = Resources::default();
    let req = ResourcesRequest {
        cpu_period: Some(50_000),
        cpu_quota: Some(25_000),
        cpuset_cpus: Some("0".into()),
        memory: Some(64 * MIB),
        memory_reservation: Some(32 * MIB),
        memory_swappiness: Some(-1),
        blkio_weight: Some(300),
        ..Default::default()
    };
    let r = merged(&none, req).unwrap();
    assert_eq!((r.cpu_period, r.cpu_quota), (50_000, 25_000));
    assert_eq!(
        (r.cpuset_cpus.as_str(), r.memory_reservation),
        ("0", 32 * MIB)
    );
    assert_eq!((r.memory_swappiness, r.blkio_weight), (None, 300));
    // A quota of -1 is none; then cpus may be set.
    let off = ResourcesRequest {
        cpu_quota: Some(-1),
        cpu_period: Some(0),
        cpus: Some(1.0),
        ..Default::default()
    };
    assert_eq!(merged(&r, off).unwrap().cpu_quota, 0);
    let cpus = ResourcesRequest {
        cpus: Some(1.0),
        ..Default::default()
    };
    assert_eq!(merged(&r, cpus), Err(Error::CpusAndQuota));
    let lower = ResourcesRequest {
        memory: Some(16 * MIB),
        ..Default::default()
    };
    assert_eq!(
        merged(&r, lower),
        Err(Error::MemoryReservation(32 * MIB, 16 * MIB))
    );
    let swappiness = ResourcesRequest {
        memory_swappiness: Some(101),
        ..Default::default()
    };
    assert_eq!(merged(&none, swappiness), Err(Error::Swappiness(101)));
}
