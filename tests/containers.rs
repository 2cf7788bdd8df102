//! Containers as users address and configure them, end to end: exit codes
//! across restarts, ids, prefixes and names, wait conditions, networks,
//! bind mounts, stop settings, and a stop whose client goes away.

mod common;

use berth::pb::{self, Action, Status};
use common::*;
use std::time::{Duration, Instant};
use tonic::Code;
use Action::{Destroy, Die, Kill, Start, Stop};

#[tokio::test(flavor = "multi_thread")]
async fn exit_code_and_restart_keep_the_filesystem() {
    let d = Daemon::start("exit7").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["e"]).await;
    let req = with_out(
        &d,
        "e",
        &[
            "sh",
            "-c",
            "echo run >> /data; cat /data > /out/data; exit 7",
        ],
    );
    let id = run(&mut api, &mut ev, req).await;
    assert_eq!(brief(&ev.until(Die).await), vec![(Die, 0, Some(7))]);
    let st = status(&mut api, &id).await;
    assert_eq!((st.status, st.exit_code), (Status::Exited as i32, 7));
    assert!(st.finished_at.is_some());
    let waited = api
        .wait(pb::WaitRequest {
            id: id.clone(),
            condition: 0,
            exit_count: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(waited.exit_code, 7);
    // Start again: start, die(7), and the first run's write is still there.
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    assert_eq!(
        brief(&ev.until(Die).await),
        vec![(Start, 0, None), (Die, 0, Some(7))]
    );
    assert_eq!(
        std::fs::read_to_string(d.share("e").join("data")).unwrap(),
        "run\nrun\n"
    );
    // The rootfs itself is untouched.
    assert!(!rootfs().join("data").exists());
    // Exited: stop is a no-op, kill is refused, remove destroys.
    stop(&mut api, &id, None).await;
    let err = api
        .kill(pb::KillRequest {
            id: id.clone(),
            signal: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("not running"), "{}", err.message());
    let err = api
        .pause(pb::PauseRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    ev.quiet().await;
    api.remove(pb::RemoveRequest {
        id: id.clone(),
        force: false,
    })
    .await
    .unwrap();
    assert_eq!(brief(&ev.until(Destroy).await), vec![(Destroy, 0, None)]);
    assert_gone(&d, &mut api, &id, 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn start_of_running_container_is_a_noop() {
    let d = Daemon::start("noop").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["n"]).await;
    let id = run(&mut api, &mut ev, spec("n", &["sleep", "1000"])).await;
    let pid = status(&mut api, &id).await.pid;
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    ev.quiet().await;
    assert_eq!(status(&mut api, &id).await.pid, pid);
    api.remove(pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn per_container_and_per_call_stop_settings() {
    let d = Daemon::start("stopcfg").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["s"]).await;
    let script = "trap 'exit 5' USR1; echo ready > /out/ready; sleep 1000 & wait";
    let mut req = with_out(&d, "s", &["sh", "-c", script]);
    req.stop_signal = "SIGUSR1".into();
    req.stop_timeout_seconds = Some(1);
    let id = run(&mut api, &mut ev, req).await;
    read_when_ready(&d.share("s").join("ready")).await;
    stop(&mut api, &id, None).await;
    assert_eq!(
        brief(&ev.until(Stop).await),
        vec![(Kill, 10, None), (Die, 0, Some(5)), (Stop, 0, None)]
    );
    // Per call: TERM, which the shell ignores (no trap), and the
    // container's 1 s grace.
    std::fs::remove_file(d.share("s").join("ready")).unwrap();
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    ev.until(Start).await;
    read_when_ready(&d.share("s").join("ready")).await;
    let t = Instant::now();
    api.stop(pb::StopRequest {
        id: id.clone(),
        timeout_seconds: None,
        signal: Some("TERM".into()),
    })
    .await
    .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(900) && t.elapsed() < Duration::from_secs(8));
    assert_eq!(brief(&ev.until(Stop).await), escalated());
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_prefixes_and_names_address_containers() {
    let d = Daemon::start("ids").await;
    let mut api = d.api().await;
    let mut ids: Vec<String> = Vec::new();
    // Create until two ids share their first character.
    let shared = loop {
        let id = api
            .create(spec(&format!("c{}", ids.len()), &["true"]))
            .await
            .unwrap()
            .into_inner()
            .id;
        assert_eq!(id.len(), 64);
        let first = id[..1].to_string();
        let clash = ids.iter().any(|i| i.starts_with(&first));
        ids.push(id);
        if clash {
            break first;
        }
    };
    let err = api
        .inspect(pb::InspectRequest { id: shared })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("ambiguous"), "{}", err.message());
    let c = api
        .inspect(pb::InspectRequest {
            id: ids[0][..12].to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .container
        .unwrap();
    assert_eq!((c.id.as_str(), c.name.as_str()), (ids[0].as_str(), "c0"));
    let by_name = api
        .inspect(pb::InspectRequest { id: "c0".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_name.container.unwrap().id, ids[0]);
    let list = api
        .list(pb::ListRequest {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.containers.len(), ids.len());
    assert!(api
        .list(pb::ListRequest {
            all: false,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .containers
        .is_empty());
    for (code, key) in [
        (Code::NotFound, "nope"),
        (Code::NotFound, "fffffffffffff0"),
        (Code::InvalidArgument, ""),
    ] {
        let err = api
            .start(pb::StartRequest { id: key.into() })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{key:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_conditions() {
    let d = Daemon::start("wait").await;
    let mut api = d.api().await;
    let id = api
        .create(spec("w", &["sh", "-c", "exit 4"]))
        .await
        .unwrap()
        .into_inner()
        .id;
    // Registered before the start: next-exit sees this run's exit.
    let mut waiter = api.clone();
    let next = tokio::spawn({
        let id = id.clone();
        async move {
            waiter
                .wait(pb::WaitRequest {
                    id,
                    condition: pb::WaitCondition::NextExit as i32,
                    exit_count: None,
                })
                .await
                .map(|r| r.into_inner().exit_code)
        }
    });
    let mut waiter = api.clone();
    let removed = tokio::spawn({
        let id = id.clone();
        async move {
            waiter
                .wait(pb::WaitRequest {
                    id,
                    condition: pb::WaitCondition::Removed as i32,
                    exit_count: None,
                })
                .await
                .map(|r| r.into_inner().exit_code)
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    assert_eq!(next.await.unwrap().unwrap(), 4);
    assert!(!removed.is_finished());
    api.remove(pb::RemoveRequest { id, force: false })
        .await
        .unwrap();
    assert_eq!(removed.await.unwrap().unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn network_none_has_only_loopback_up_and_host_shares() {
    let d = Daemon::start("net").await;
    let mut api = d.api().await;
    let mut ev = d.events(&[]).await;
    for (name, network) in [("none", "none"), ("host", "host")] {
        let mut req = with_out(&d, name, &["sh", "-c", "cat /proc/net/dev > /out/dev; cat /sys/class/net/lo/operstate > /out/lo 2>&1; exit 0"]);
        req.network = network.into();
        run(&mut api, &mut ev, req).await;
        ev.until(Die).await;
    }
    let ifaces = |name: &str| -> Vec<String> {
        std::fs::read_to_string(d.share(name).join("dev"))
            .unwrap()
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next().map(|s| s.trim().to_string()))
            .collect()
    };
    assert_eq!(ifaces("none"), vec!["lo".to_string()]);
    let lo = std::fs::read_to_string(d.share("none").join("lo")).unwrap();
    assert!(lo.trim() == "unknown" || lo.trim() == "up", "lo is {lo}");
    let host: Vec<String> = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|s| s.trim().to_string()))
        .collect();
    let mut seen = ifaces("host");
    seen.sort();
    let mut host = host;
    host.sort();
    assert_eq!(seen, host);
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_mounts_read_only_and_read_write() {
    let d = Daemon::start("mounts").await;
    let mut api = d.api().await;
    let mut ev = d.events(&[]).await;
    let ro = d.share("ro");
    std::fs::write(ro.join("in"), "hello\n").unwrap();
    let mut req = with_out(
        &d,
        "m",
        &[
            "sh",
            "-c",
            "cat /ro/in > /out/copy; { echo x > /ro/new; } 2> /out/err; echo $? > /out/rc",
        ],
    );
    req.mounts.push(pb::Mount {
        source: ro.display().to_string(),
        destination: "/ro".into(),
        read_only: true,
        ..Default::default()
    });
    run(&mut api, &mut ev, req).await;
    ev.until(Die).await;
    let out = d.share("m");
    assert_eq!(
        std::fs::read_to_string(out.join("copy")).unwrap(),
        "hello\n"
    );
    assert_ne!(std::fs::read_to_string(out.join("rc")).unwrap().trim(), "0");
    assert!(std::fs::read_to_string(out.join("err"))
        .unwrap()
        .contains("Read-only"));
    assert!(!ro.join("new").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_finishes_when_its_client_goes_away() {
    let d = Daemon::start("gone").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["gone"]).await;
    let id = run(&mut api, &mut ev, spec("gone", &["sleep", "1000"])).await;
    let mut other = d.api().await;
    let request = pb::StopRequest {
        id: id.clone(),
        timeout_seconds: Some(1),
        signal: None,
    };
    // Give up on the call half-way through the grace period.
    let cut = tokio::time::timeout(Duration::from_millis(300), other.stop(request)).await;
    assert!(cut.is_err(), "stop should still have been waiting");
    drop(other);
    assert_eq!(brief(&ev.until(Stop).await), escalated());
    assert_eq!(status(&mut api, &id).await.exit_code, 137);
}

/// `berth events | head -1`, `berth ps | head -1` and the like: when the
/// reader goes away the CLI ends with 141 (as SIGPIPE ends docker's), and
/// never panics.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_ends_quietly_when_its_reader_goes_away() {
    use std::io::BufRead;
    let d = Daemon::start("brokenpipe").await;
    let mut api = d.api().await;
    let mut cli = std::process::Command::new(berth_cli())
        // From the journal: the create below is printed however late the
        // CLI subscribes.
        .args(["--host", &d.host(), "events", "--since", "1h"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(cli.stdout.take().unwrap());
    created(&mut api, spec("first", &["true"])).await;
    let mut line = String::new();
    while !line.contains("container create") {
        line.clear();
        assert_ne!(lines.read_line(&mut line).unwrap(), 0, "the CLI ended");
    }
    // The reader goes away; the next event's line has nowhere to go.
    drop(lines);
    created(&mut api, spec("second", &["true"])).await;
    let out = tokio::task::spawn_blocking(move || cli.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

/// auto_remove (`run -d --rm`): the daemon removes the container when it
/// exits, destroy right after die, and also when the exit came while the
/// daemon was down.
#[tokio::test(flavor = "multi_thread")]
async fn auto_remove_removes_on_exit_even_across_a_restart() {
    let mut d = Daemon::start("autorm").await;
    let mut api = d.api().await;
    let mut ev = d.events(&[]).await;
    let mut req = spec("gone", &["sh", "-c", "exit 3"]);
    req.auto_remove = true;
    let id = created(&mut api, req).await;
    let config = inspect(&mut api, &id).await.config.unwrap();
    assert!(config.auto_remove);
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    let seen = ev.until(Destroy).await;
    assert_eq!(
        brief(&seen),
        vec![
            (Action::Create, 0, None),
            (Start, 0, None),
            (Die, 0, Some(3)),
            (Destroy, 0, None)
        ]
    );
    let err = api
        .inspect(pb::InspectRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    gone_dir(&d, &id).await;

    // The exit happens while the daemon is down: removed when it returns.
    let mut req = spec("later", &["sleep", "1000"]);
    req.auto_remove = true;
    let id = started(&mut api, req).await;
    let pid = status(&mut api, &id).await.pid;
    d.stop_daemon(libc::SIGKILL);
    kill(pid as i32, libc::SIGKILL);
    let t = Instant::now();
    while alive(pid) {
        assert!(t.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.spawn().await;
    let mut api = d.api().await;
    let journal = d.journal().await;
    let mine: Vec<_> = journal.into_iter().filter(|e| e.id == id).collect();
    let tail = brief(&mine[mine.len() - 2..]);
    assert_eq!(tail, vec![(Die, 9, Some(137)), (Destroy, 0, None)]);
    assert!(listed(&mut api).await.is_empty());
    gone_dir(&d, &id).await;

    // The CLI's run -d --rm asks for it.
    let out = std::process::Command::new(berth_cli())
        .args(["--host", &d.host(), "run", "-d", "--rm", "--name", "cli"])
        .arg(rootfs())
        .args(["sh", "-c", "exit 0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let removed = api
        .wait(pb::WaitRequest {
            id: id.clone(),
            condition: pb::WaitCondition::Removed as i32,
            exit_count: None,
        })
        .await;
    // Removed already, or removed while it waited.
    match removed {
        Ok(r) => assert_eq!(r.into_inner().exit_code, 0),
        Err(s) => assert_eq!(s.code(), Code::NotFound),
    }
    assert!(listed(&mut api).await.is_empty());
}

/// Until the container's directory is gone (removed just after destroy).
async fn gone_dir(d: &Daemon, id: &str) {
    let t = Instant::now();
    while d.container_dir(id).exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{id}'s directory stayed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Docker's habits on `berth run`: -h is the hostname, -e KEY takes the
/// CLI's own value, --env-file, and docker run's exit codes.
#[tokio::test(flavor = "multi_thread")]
async fn run_takes_dockers_flags_and_exit_codes() {
    let d = Daemon::start("runflags").await;
    let env_file = d.dir.join("env");
    std::fs::write(
        &env_file,
        "# settings\n\nFROM_FILE=1\nSHARED=file\nFROM_SHELL\n",
    )
    .unwrap();
    let berth = |args: &[&str]| {
        let out = std::process::Command::new(berth_cli())
            .args(["--host", &d.host()])
            .args(args)
            .env("FROM_SHELL", "shell")
            .env_remove("NOT_SET_ANYWHERE")
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let rootfs = rootfs().display().to_string();
    let script = "cat /proc/sys/kernel/hostname; \
                  echo \"$FROM_FILE $FROM_SHELL $SHARED ${NOT_SET_ANYWHERE-unset}\"";
    let (code, out, err) = berth(&[
        "run",
        "--rm",
        "-h",
        "myhost",
        "--env-file",
        env_file.to_str().unwrap(),
        "-e",
        "SHARED=flag",
        "-e",
        "NOT_SET_ANYWHERE",
        &rootfs,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "myhost\n1 shell flag unset\n");
    // --help is help; -h alone is a hostname missing its value.
    let (code, out, _) = berth(&["run", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--hostname"), "{out}");
    // The exit codes of docker run.
    let (code, _, _) = berth(&["run", "--name", "taken", &rootfs, "true"]);
    assert_eq!(code, 0);
    let (code, _, err) = berth(&["run", "--name", "taken", &rootfs, "true"]);
    assert_eq!(code, 125, "{err}");
    let (code, _, err) = berth(&["run", "--rm", &rootfs, "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    let (code, _, err) = berth(&["run", "--rm", &rootfs, "/"]);
    assert_eq!(code, 126, "{err}");
    let (code, _, err) = berth(&["run", "--rm", &rootfs, "sh", "-c", "exit 3"]);
    assert_eq!(code, 3, "{err}");
    // A command line that does not parse: 125, as docker's flag errors.
    let (code, _, err) = berth(&["run", "--no-such-flag", &rootfs, "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("--no-such-flag"), "{err}");
    let (code, out, _) = berth(&["run", "--help"]);
    assert!(code == 0 && out.contains("Usage: berth run"), "{out}");
    let out = std::process::Command::new(berth_cli())
        .args(["--host", "unix:///nonexistent.sock", "run", &rootfs, "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "no daemon");
    let mut api = d.api().await;
    let names: Vec<String> = listed(&mut api).await.into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        ["taken"],
        "--rm left nothing, even when the start failed"
    );
}
