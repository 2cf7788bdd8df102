//! --pid, --ipc, --uts and --network container:NAME: the host's
//! namespaces, or another container's, checked by the namespace links
//! inside and what the container sees.

mod common;

use common::*;

/// The namespace link of `kind` of the process `pid` as the host sees it.
fn ns(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hosts_namespaces() {
    let d = Daemon::start("ns-host").await;
    let links = "for k in pid ipc uts; do busybox readlink /proc/self/ns/$k; done; hostname";
    let host_name = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let (code, out, err) = run_rm(
        &d,
        &["--pid", "host", "--ipc", "host", "--uts", "host"],
        links,
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        format!(
            "{}\n{}\n{}\n{host_name}\n",
            ns("self", "pid"),
            ns("self", "ipc"),
            ns("self", "uts")
        )
    );
    // Its own, by default.
    let (_, out, _) = run_rm(&d, &[], links);
    assert!(
        !out.contains(&ns("self", "pid")) && !out.contains(&ns("self", "uts")),
        "{out}"
    );

    // With the host's PID namespace, nothing of the container outlives
    // its process.
    let (code, out, err) = run_rm(&d, &["--pid", "host"], "sleep 1000 & echo $!");
    assert_eq!(code, Some(0), "{err}");
    let left = out.trim().to_string();
    assert!(
        !std::path::Path::new(&format!("/proc/{left}")).exists() || !alive(left.parse().unwrap())
    );

    // What the host's UTS namespace cannot take.
    for flags in [
        &["--uts", "host", "-h", "box"][..],
        &["--uts", "host", "--domainname", "x"],
        &["--uts", "host", "--sysctl", "kernel.domainname=x"],
        &["--ipc", "host", "--sysctl", "kernel.shmmni=10"],
        &["--uts", "container:a"],
        &["--pid", "shareable"],
    ] {
        let (code, _, err) = run_rm(&d, flags, "true");
        assert_eq!(code, Some(125), "{flags:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_containers_namespaces() {
    let d = Daemon::start("ns-container").await;
    let rootfs = rootfs().display().to_string();
    let donor = ok(berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "donor",
            "--network",
            "none",
            "--ipc",
            "shareable",
            &rootfs,
            "sh",
            "-c",
            "echo shared > /dev/shm/note; exec sleep 1000",
        ],
    ));
    let pid = ok(berth(
        &d,
        &["inspect", "-f", "{{.State.Pid}}", donor.trim()],
    ));
    let pid = pid.trim();
    // Its PID and IPC namespaces, its /dev/shm; its processes in sight.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (code, out, err) = loop {
        let r = run_rm(
            &d,
            &["--pid", "container:donor", "--ipc", "container:donor"],
            "for k in pid ipc; do busybox readlink /proc/self/ns/$k; done; cat /dev/shm/note; busybox tr '\\0' ' ' < /proc/1/cmdline",
        );
        if r.1.contains("shared") || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        format!(
            "{}\n{}\nshared\nsleep 1000 ",
            ns(pid, "pid"),
            ns(pid, "ipc")
        )
    );
    let shown = ok(berth(
        &d,
        &[
            "create",
            "--name",
            "j",
            "--pid",
            "container:donor",
            &rootfs,
            "true",
        ],
    ));
    let mode = ok(berth(
        &d,
        &[
            "inspect",
            "-f",
            "{{.HostConfig.PidMode}} {{.HostConfig.IpcMode}}",
            shown.trim(),
        ],
    ));
    assert_eq!(mode.trim(), format!("container:{} private", donor.trim()));

    // A private IPC namespace is not joined; a stopped container's are
    // not there; an unknown container is not found.
    ok(berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "private",
            "--network",
            "none",
            &rootfs,
            "sleep",
            "1000",
        ],
    ));
    let (code, _, err) = run_rm(&d, &["--ipc", "container:private"], "true");
    assert_eq!(code, Some(125));
    assert!(err.contains("not shareable"), "{err}");
    let (code, _, err) = run_rm(&d, &["--pid", "container:nosuch"], "true");
    assert_eq!(code, Some(125));
    assert!(err.contains("nosuch"), "{err}");
    // A joiner dies with the PID namespace it joined.
    ok(berth(&d, &["start", "j"]));
    ok(berth(&d, &["rm", "-f", "j"]));
    ok(berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "joiner",
            "--network",
            "none",
            "--pid",
            "container:donor",
            &rootfs,
            "sleep",
            "1000",
        ],
    ));
    ok(berth(&d, &["stop", "-t", "1", "donor"]));
    let code = ok(berth(&d, &["wait", "joiner"]));
    assert_eq!(code.trim(), "137");
    let (code, _, err) = run_rm(&d, &["--pid", "container:donor"], "true");
    assert_eq!(code, Some(125));
    assert!(err.contains("not running"), "{err}");
    ok(berth(&d, &["rm", "-f", "donor", "private", "joiner"]));
}

/// `--network container:NAME`: the other container's network namespace
/// (its loopback servers, its interfaces), hostname, /etc/hosts and
/// /etc/resolv.conf; what would conflict with them is refused.
#[tokio::test(flavor = "multi_thread")]
async fn another_containers_network() {
    let d = Daemon::start("ns-net").await;
    let rootfs = rootfs().display().to_string();
    let serve = "mkdir -p /tmp/www && echo hello from srv > /tmp/www/index.html && exec busybox httpd -f -p 127.0.0.1:80 -h /tmp/www";
    let srv = ok(berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "srv",
            "--network",
            "none",
            "-h",
            "srvhost",
            &rootfs,
            "sh",
            "-c",
            serve,
        ],
    ));
    let srv = srv.trim();
    let run = |flags: &[&str], script: &str| {
        let mut args = vec!["run", "--rm", "--network", "container:srv"];
        args.extend_from_slice(flags);
        args.extend([rootfs.as_str(), "sh", "-c", script]);
        berth(&d, &args)
    };
    let script = "for i in 1 2 3 4 5 6 7 8 9 10; do busybox wget -q -O - http://127.0.0.1/ && break; sleep 0.2; done; hostname; cat /etc/hosts; busybox readlink /proc/self/ns/net";
    let out = ok(run(&[], script));
    let srv_pid = cgroup_pids(srv)[0].to_string();
    let srv_hosts = ok(berth(&d, &["exec", "srv", "cat", "/etc/hosts"]));
    assert_eq!(
        out,
        format!(
            "hello from srv\nsrvhost\n{srv_hosts}{}\n",
            ns(&srv_pid, "net")
        )
    );
    ok(berth(
        &d,
        &[
            "create",
            "--name",
            "joiner",
            "--network",
            "container:srv",
            &rootfs,
            "true",
        ],
    ));
    let mode = ok(berth(
        &d,
        &["inspect", "-f", "{{.HostConfig.NetworkMode}}", "joiner"],
    ));
    assert_eq!(mode.trim(), format!("container:{srv}"));
    ok(berth(&d, &["rm", "joiner"]));

    // What would be the other container's is refused.
    for (flags, why) in [
        (
            &["-p", "8080:80"][..],
            "port publishing and the container type network mode",
        ),
        (&["-h", "mine"], "hostname and the network mode"),
        (&["--dns", "9.9.9.9"], "dns and the network mode"),
        (&["--add-host", "db:10.0.0.5"], "custom host-to-IP mapping"),
        (&["--network-alias", "a"], "network alias"),
        (&["--sysctl", "net.ipv4.ip_forward=1"], "that container's"),
    ] {
        let out = run(flags, "true");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(125), "{flags:?}: {err}");
        assert!(err.contains(why), "{flags:?}: {err}");
    }
    ok(berth(&d, &["stop", "-t", "1", "srv"]));
    let out = run(&[], "true");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("not running"), "{err}");
    assert_eq!(ok(berth(&d, &["ps", "-aq"])).lines().count(), 1);
}
