//! The command line as a Docker user drives it: a foreground run passes
//! signals on; ps, inspect, events and stats take Docker's flags and Go
//! templates; restart, top, rename, prune, version and info; events
//! follows the daemon through restarts.

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Waits until `name` is running, and returns its PID 1.
async fn running(d: &Daemon, name: &str) -> u32 {
    let mut api = d.api().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let req = berth::pb::InspectRequest { id: name.into() };
        if let Ok(r) = api.inspect(req).await {
            let state = r.into_inner().container.and_then(|c| c.state);
            if let Some(s) = state.filter(|s| s.status == berth::pb::Status::Running as i32) {
                return s.pid;
            }
        }
        assert!(Instant::now() < deadline, "{name} never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for a spawned CLI to end.
fn ended(mut child: std::process::Child) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the CLI did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreground_run_passes_signals_on() {
    use std::os::unix::process::ExitStatusExt;
    let d = Daemon::start("cli-sigproxy").await;
    let rootfs = rootfs().display().to_string();
    // Ctrl-C reaches the container, which exits 3; the CLI exits 3.
    let script = r#"trap 'echo got INT; exit 3' INT; echo ready; while :; do sleep 0.1; done"#;
    let child = cli(&d, &["run", "--name", "int", &rootfs, "sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    running(&d, "int").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill(child.id() as i32, libc::SIGINT);
    let o = ended(child);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert_eq!(stdout(&o), "ready\ngot INT\n");

    // USR1, then TERM, each as the container's own.
    let script =
        r#"trap 'echo usr1' USR1; trap 'echo term; exit 4' TERM; while :; do sleep 0.1; done"#;
    let child = cli(&d, &["run", "--name", "term", &rootfs, "sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    running(&d, "term").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill(child.id() as i32, libc::SIGUSR1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill(child.id() as i32, libc::SIGTERM);
    let o = ended(child);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert_eq!(stdout(&o), "usr1\nterm\n");

    // --sig-proxy=false: the signal ends the CLI alone.
    let child = cli(
        &d,
        &[
            "run",
            "--sig-proxy=false",
            "--name",
            "alone",
            &rootfs,
            "sleep",
            "1000",
        ],
    )
    .spawn()
    .unwrap();
    running(&d, "alone").await;
    kill(child.id() as i32, libc::SIGINT);
    let o = ended(child);
    assert_eq!(o.status.signal(), Some(libc::SIGINT), "{o:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    running(&d, "alone").await;
    ok(berth(&d, &["rm", "-f", "alone"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn events_follow_the_daemon_through_restarts() {
    let mut d = Daemon::start("cli-events-restart").await;
    let rootfs = rootfs().display().to_string();
    let err = d.dir.join("events.err");
    let mut cmd = cli(&d, &["events", "--since", "0", "--format", "json"]);
    cmd.stderr(std::fs::File::create(&err).unwrap());
    let (mut child, lines) = stream_lines(cmd);
    let next = || {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("an event line");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let what = match v["action"].as_str().unwrap() {
            "daemon_start" => "daemon start".to_string(),
            action => format!("{action} {}", v["name"].as_str().unwrap()),
        };
        (v["seq"].as_u64().unwrap(), what)
    };
    assert_eq!(next(), (1, "daemon start".into()));
    ok(berth(&d, &["create", "--name", "a", &rootfs, "true"]));
    // Killed at once: the CLI may not have read the create yet.
    d.stop_daemon(libc::SIGKILL);
    d.spawn().await;
    ok(berth(&d, &["create", "--name", "b", &rootfs, "true"]));
    assert_eq!(next(), (2, "create a".into()));
    assert_eq!(next(), (3, "daemon start".into()));
    assert_eq!(next(), (4, "create b".into()));
    // A clean shutdown is an end the CLI did not ask for either.
    d.stop_daemon(libc::SIGTERM);
    d.spawn().await;
    ok(berth(&d, &["rm", "a", "b"]));
    assert_eq!(next(), (5, "daemon start".into()));
    assert_eq!(next(), (6, "destroy a".into()));
    assert_eq!(next(), (7, "destroy b".into()));
    assert!(child.try_wait().unwrap().is_none(), "the CLI ended");
    let _ = child.kill();
    let _ = child.wait();
    let said = std::fs::read_to_string(&err).unwrap();
    let lost: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("lost the connection"))
        .collect();
    assert_eq!(lost.len(), 2, "{said}");
    assert!(
        lost[1].contains("the daemon is shutting down") && lost[1].ends_with("after seq 4"),
        "{said}"
    );
    assert_eq!(
        said.lines()
            .filter(|l| l.contains("reconnected to berthd; resuming after seq"))
            .count(),
        2,
        "{said}"
    );
}

/// The lines of `berth ARGS…`, which must succeed.
fn lines(d: &Daemon, args: &[&str]) -> Vec<String> {
    ok(berth(d, args)).lines().map(str::to_string).collect()
}

/// Every event journaled so far that `filter` lets through, through the
/// template `format`.
fn journal(d: &Daemon, filter: &str, format: &str) -> Vec<String> {
    lines(
        d,
        &[
            "events", "--since", "0", "--until", "0s", "--filter", filter, "--format", format,
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn ps_inspect_events_and_stats_take_dockers_flags_and_templates() {
    let d = Daemon::start("cli-ps").await;
    let rootfs = rootfs().display().to_string();
    let web = ok(berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "none",
            "-l",
            "app=demo",
            &rootfs,
            "sleep",
            "1000",
        ],
    ));
    let web = web.trim();
    assert_eq!(
        berth(&d, &["run", "--name", "one", &rootfs, "sh", "-c", "exit 3"])
            .status
            .code(),
        Some(3)
    );
    let two = ok(berth(&d, &["create", "--name", "two", &rootfs, "true"]));
    let two = two.trim();

    // -q, -a, -n, -l, --no-trunc.
    assert_eq!(lines(&d, &["ps", "-q"]), [&web[..12]]);
    assert_eq!(lines(&d, &["ps", "-a", "-q"]).len(), 3);
    assert_eq!(
        lines(&d, &["ps", "-n", "2", "--format", "{{.Names}}"]),
        ["two", "one"]
    );
    assert_eq!(lines(&d, &["ps", "-l", "-q", "--no-trunc"]), [two]);
    // Filters; a status or exited filter looks at every container.
    let names = |filters: &[&str]| {
        let mut args = vec!["ps", "--format", "{{.Names}}"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        lines(&d, &args)
    };
    assert_eq!(names(&["status=exited"]), ["one"]);
    assert_eq!(names(&["status=exited", "status=created"]), ["two", "one"]);
    assert_eq!(names(&["exited=3"]), ["one"]);
    assert!(names(&["exited=4"]).is_empty());
    assert_eq!(names(&["name=we"]), ["web"]);
    assert_eq!(names(&["label=app"]), ["web"]);
    assert_eq!(names(&["label=app=demo", "status=running"]), ["web"]);
    assert!(names(&["label=app=other"]).is_empty());
    assert_eq!(names(&["id=", "status=created"]), ["two"]);
    assert_eq!(
        berth(&d, &["ps", "--filter", "colour=red"]).status.code(),
        Some(125)
    );
    // A table template has Docker's header; {{json .}} Docker's fields.
    let table = lines(
        &d,
        &[
            "ps",
            "-a",
            "--format",
            "table {{.ID}}\\t{{.Names}}\\t{{.State}}",
        ],
    );
    assert_eq!(
        table[0].split_whitespace().collect::<Vec<_>>(),
        ["CONTAINER", "ID", "NAMES", "STATE"]
    );
    assert_eq!(
        table[3].split_whitespace().collect::<Vec<_>>(),
        [&web[..12], "web", "running"]
    );
    let row: serde_json::Value =
        serde_json::from_str(&lines(&d, &["ps", "--format", "{{json .}}"])[0]).unwrap();
    assert_eq!(
        (
            row["ID"].as_str(),
            row["Labels"].as_str(),
            row["State"].as_str()
        ),
        (Some(&web[..12]), Some("app=demo"), Some("running"))
    );
    assert!(row["Status"].as_str().unwrap().starts_with("Up "), "{row}");

    // inspect -f.
    assert_eq!(
        lines(
            &d,
            &[
                "inspect",
                "-f",
                "{{.State.ExitCode}} {{.Name}}",
                "one",
                "web"
            ]
        ),
        ["3 /one", "0 /web"]
    );
    assert_eq!(
        lines(
            &d,
            &["inspect", "--format", "{{json .Config.Labels}}", "web"]
        ),
        [r#"{"app":"demo"}"#]
    );

    // events: type=container leaves out the daemon's own; a template sees
    // Docker's fields.
    let events = journal(
        &d,
        "type=container",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}",
    );
    assert_eq!(
        events,
        [
            "container create web <no value>",
            "container start web <no value>",
            "container create one <no value>",
            "container start one <no value>",
            "container die one 3",
            "container create two <no value>",
        ]
    );
    let daemon = journal(
        &d,
        "type=daemon",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.resumedFromSeq}}",
    );
    assert_eq!(daemon, ["daemon start 0"]);
    assert_eq!(
        berth(&d, &["events", "--filter", "type=volume"])
            .status
            .code(),
        Some(125)
    );

    // stats: NET I/O and BLOCK I/O, as the kernel counts them for the
    // container's cgroup.
    let table = lines(&d, &["stats", "--no-stream"]);
    assert!(
        table[0].contains("NET I/O") && table[0].contains("BLOCK I/O"),
        "{table:?}"
    );
    let row = lines(
        &d,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}",
            "web",
        ],
    );
    let (read, written) = block_io(web);
    assert_eq!(
        row,
        [format!("web|0B / 0B|{} / {}|1", si(read), si(written))]
    );
    ok(berth(&d, &["rm", "-f", "web"]));
}

/// What the kernel counts for the container's cgroup: bytes read and
/// written (v2 io.stat, v1 blkio), summed over devices.
fn block_io(id: &str) -> (u64, u64) {
    let mut sum = (0, 0);
    if cgroup_v2() {
        for f in cgroup_file(id, "io.stat")
            .unwrap_or_default()
            .split_whitespace()
        {
            match f.split_once('=') {
                Some(("rbytes", n)) => sum.0 += n.parse::<u64>().unwrap(),
                Some(("wbytes", n)) => sum.1 += n.parse::<u64>().unwrap(),
                _ => {}
            }
        }
        return sum;
    }
    let text = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/blkio/berth/{id}/blkio.throttle.io_service_bytes_recursive"
    ))
    .unwrap_or_default();
    for l in text.lines() {
        match l.split_whitespace().collect::<Vec<_>>()[..] {
            [_, "Read", n] => sum.0 += n.parse::<u64>().unwrap(),
            [_, "Write", n] => sum.1 += n.parse::<u64>().unwrap(),
            _ => {}
        }
    }
    sum
}

/// Decimal sizes as docker stats shows them.
fn si(n: u64) -> String {
    match n {
        0..1000 => format!("{n}B"),
        _ => {
            let (v, unit) = [(1e3, "kB"), (1e6, "MB"), (1e9, "GB")]
                .into_iter()
                .rev()
                .find(|(s, _)| n as f64 >= *s)
                .unwrap();
            let v = n as f64 / v;
            let digits = if v >= 100.0 {
                0
            } else if v >= 10.0 {
                1
            } else {
                2
            };
            let t = format!("{v:.digits$}");
            let t = if t.contains('.') {
                t.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                t
            };
            format!("{t}{unit}")
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_top_rename_prune_version_and_info() {
    let d = Daemon::start("cli-verbs").await;
    let rootfs = rootfs().display().to_string();
    let id = ok(berth(
        &d,
        &["run", "-d", "--name", "r", &rootfs, "sleep", "1000"],
    ));
    let id = id.trim().to_string();
    let pid = running(&d, "r").await;

    // top: the container's processes as the host sees them.
    let top = lines(&d, &["top", "r"]);
    let cells: Vec<&str> = top[0].split_whitespace().collect();
    assert_eq!(
        cells,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    assert_eq!(top.len(), 2, "{top:?}");
    let row: Vec<&str> = top[1].split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], &row[7..]),
        ("root", pid.to_string().as_str(), &["sleep", "1000"][..])
    );
    // An exec's process shows; the helper berthd runs it through does not.
    ok(berth(
        &d,
        &["run", "-d", "--name", "t", &rootfs, "sleep", "1000"],
    ));
    ok(berth(&d, &["exec", "-d", "t", "sleep", "999"]));
    let mut top = Vec::new();
    for _ in 0..100 {
        top = lines(&d, &["top", "t"]);
        if top.iter().any(|l| l.ends_with("sleep 999")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(top.len(), 3, "{top:?}");
    assert!(top.iter().all(|l| !l.contains("berthd")), "{top:?}");
    ok(berth(&d, &["rm", "-f", "t"]));

    // restart: the stop's events, the start, then restart.
    ok(berth(&d, &["restart", "-t", "1", "r"]));
    let new_pid = running(&d, "r").await;
    assert_ne!(new_pid, pid);
    let seen = journal(
        &d,
        "container=r",
        "{{.Action}}{{if .Actor.Attributes.signal}}({{.Actor.Attributes.signal}}){{end}}",
    );
    assert_eq!(
        seen,
        ["create", "start", "kill(15)", "kill(9)", "die(9)", "stop", "start", "restart"]
    );
    ok(berth(&d, &["stop", "-t", "0", "r"]));
    // An exited container restarts too: start, restart.
    ok(berth(&d, &["restart", "r"]));
    running(&d, "r").await;

    // rename: the new name works, the old one is gone, the event says both.
    ok(berth(&d, &["rename", "r", "r2"]));
    assert_eq!(
        lines(&d, &["inspect", "-f", "{{.Id}} {{.Name}}", "r2"]),
        [format!("{id} /r2")]
    );
    let o = berth(&d, &["inspect", "r"]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr) == "Error: No such object: r\n",
        "{o:?}"
    );
    let renamed = journal(
        &d,
        "event=rename",
        "{{.Actor.Attributes.oldName}} -> {{.Actor.Attributes.name}}",
    );
    assert_eq!(renamed, ["r -> r2"]);
    ok(berth(&d, &["create", "--name", "taken", &rootfs, "true"]));
    let o = berth(&d, &["rename", "r2", "taken"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already in use"),
        "{o:?}"
    );
    assert_eq!(
        berth(&d, &["rename", "r2", "bad name"]).status.code(),
        Some(1)
    );
    assert_eq!(lines(&d, &["inspect", "-f", "{{.Name}}", "r2"]), ["/r2"]);

    // A container with --rm survives its restart.
    ok(berth(
        &d,
        &[
            "run", "-d", "--rm", "--name", "ar", &rootfs, "sleep", "1000",
        ],
    ));
    ok(berth(&d, &["restart", "-t", "0", "ar"]));
    running(&d, "ar").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running(&d, "ar").await;

    // container prune: the created and the exited go, the running stay.
    assert_eq!(
        berth(
            &d,
            &[
                "run",
                "--name",
                "gone",
                &rootfs,
                "sh",
                "-c",
                "echo data > /f; exit 1"
            ]
        )
        .status
        .code(),
        Some(1)
    );
    let gone = lines(&d, &["inspect", "-f", "{{.Id}}", "gone"]).remove(0);
    let o = berth(&d, &["top", "gone"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not running"),
        "{o:?}"
    );
    let taken = lines(&d, &["inspect", "-f", "{{.Id}}", "taken"]).remove(0);
    let pruned = lines(&d, &["container", "prune", "-f"]);
    assert_eq!(pruned[0], "Deleted Containers:");
    let mut removed = pruned[1..3].to_vec();
    removed.sort();
    let mut expected = vec![gone.clone(), taken];
    expected.sort();
    assert_eq!(removed, expected);
    assert!(
        pruned[4].starts_with("Total reclaimed space: ")
            && pruned[4] != "Total reclaimed space: 0B",
        "{pruned:?}"
    );
    assert!(!d.container_dir(&gone).exists());
    assert_eq!(lines(&d, &["ps", "-a", "--format", "{{.Names}}"]).len(), 2);
    assert_eq!(
        lines(&d, &["container", "prune", "-f"]),
        ["Total reclaimed space: 0B"]
    );

    // version and info.
    let version = ok(berth(&d, &["version"]));
    assert!(
        version.starts_with("Client:\n Version:") && version.contains("\nServer:\n Version:"),
        "{version}"
    );
    assert_eq!(
        lines(&d, &["version", "--format", "{{.Server.ApiVersion}}"]),
        ["berth.v1"]
    );
    let info = ok(berth(&d, &["info"]));
    assert!(
        info.contains("Containers: 2\n Running: 2\n Paused: 0\n Stopped: 0\n"),
        "{info}"
    );
    assert!(
        info.contains(&format!("Berth Root Dir: {}", d.root.display())),
        "{info}"
    );
    let cgroup = if cgroup_v2() { "2" } else { "1" };
    assert_eq!(
        lines(
            &d,
            &[
                "info",
                "--format",
                "{{.CgroupVersion}} {{.CgroupDriver}} {{.ContainersRunning}}"
            ]
        ),
        [format!("{cgroup} cgroupfs 2")]
    );
    ok(berth(&d, &["rm", "-f", "r2", "ar"]));
    let o = berth(&d, &["top", "nothing"]);
    assert_eq!(o.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_shows_every_setting_under_dockers_names() {
    let d = Daemon::start("cli-inspect").await;
    let rootfs = rootfs().display().to_string();
    let share = d.share("data").display().to_string();
    let id = ok(berth(
        &d,
        &[
            "create",
            "--name",
            "all",
            "-u",
            "1000:1000",
            "--read-only",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "CHOWN",
            "--init",
            "-v",
            &format!("{share}:/data:ro"),
            "--network",
            "host",
            "--log-max-size",
            "2m",
            "--log-max-files",
            "5",
            "-w",
            "/tmp",
            "-h",
            "box",
            "--stop-signal",
            "HUP",
            "--stop-timeout",
            "3",
            "-e",
            "A=1",
            "-m",
            "64m",
            "--pids-limit",
            "20",
            &rootfs,
            "sleep",
            "5",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&ok(berth(&d, &["inspect", "all"]))).unwrap();
    let c = &v[0];
    assert_eq!(c["Id"], id.trim());
    assert_eq!(
        (&c["Name"], &c["Path"], &c["Args"]),
        (&"/all".into(), &"sleep".into(), &serde_json::json!(["5"]))
    );
    let h = &c["HostConfig"];
    assert_eq!(h["Binds"], serde_json::json!([format!("{share}:/data:ro")]));
    assert_eq!(h["NetworkMode"], "host");
    assert_eq!(h["ReadonlyRootfs"], true);
    assert_eq!(h["CapAdd"], serde_json::json!(["NET_ADMIN"]));
    assert_eq!(h["CapDrop"], serde_json::json!(["CHOWN"]));
    assert_eq!(
        (&h["Privileged"], &h["Init"], &h["AutoRemove"]),
        (&false.into(), &true.into(), &false.into())
    );
    assert_eq!(
        h["LogConfig"]["Config"],
        serde_json::json!({"max-size": "2097152", "max-file": "5"})
    );
    assert_eq!(
        (&h["Memory"], &h["PidsLimit"]),
        (&(64 << 20).into(), &20.into())
    );
    let m = &c["Mounts"][0];
    assert_eq!(
        (
            &m["Type"],
            &m["Source"],
            &m["Destination"],
            &m["RW"],
            &m["Mode"]
        ),
        (
            &"bind".into(),
            &share.clone().into(),
            &"/data".into(),
            &false.into(),
            &"ro".into()
        )
    );
    let cfg = &c["Config"];
    assert_eq!(
        (&cfg["User"], &cfg["Hostname"], &cfg["WorkingDir"]),
        (&"1000:1000".into(), &"box".into(), &"/tmp".into())
    );
    assert_eq!(
        (&cfg["StopSignal"], &cfg["StopTimeout"]),
        (&"SIGHUP".into(), &3.into())
    );
    assert_eq!(cfg["Env"], serde_json::json!(["A=1"]));
    assert_eq!(cfg["Cmd"], serde_json::json!(["sleep", "5"]));
    assert_eq!(c["State"]["Status"], "created");
    // -d --rm shows as AutoRemove; --privileged as Privileged.
    ok(berth(
        &d,
        &[
            "run",
            "-d",
            "--rm",
            "--privileged",
            "--name",
            "p",
            &rootfs,
            "sleep",
            "5",
        ],
    ));
    assert_eq!(
        lines(
            &d,
            &[
                "inspect",
                "-f",
                "{{.HostConfig.AutoRemove}} {{.HostConfig.Privileged}} {{.HostConfig.NetworkMode}}",
                "p"
            ]
        ),
        ["true true bridge"]
    );
    ok(berth(&d, &["rm", "-f", "p"]));
}
