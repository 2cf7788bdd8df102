//! --pid, --ipc and --uts: the host's namespaces, or another container's,
//! checked by the namespace links inside and what the container sees.

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
