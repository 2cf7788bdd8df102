//! Exec end to end: processes in a running container through the API and
//! the CLI, confined as PID 1, their bytes passed through exactly, their
//! exit codes and events as Docker's.

mod common;
use berth::pb::{self, exec_request::Input, exec_response::Output, Action};
use common::*;
use std::time::{Duration, Instant};

type Stream = tonic::Streaming<pb::ExecResponse>;

fn process(args: &[&str]) -> pb::ExecProcess {
    pb::ExecProcess {
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

async fn sync(
    api: &mut Api,
    id: &str,
    p: pb::ExecProcess,
    timeout: u32,
) -> Result<pb::ExecSyncResponse, tonic::Status> {
    api.exec_sync(pb::ExecSyncRequest {
        id: id.into(),
        process: Some(p),
        timeout_seconds: timeout,
    })
    .await
    .map(|r| r.into_inner())
}

/// Starts an exec; returns the sender of further input and the output.
async fn open(
    api: &mut Api,
    id: &str,
    p: pb::ExecProcess,
) -> Result<(tokio::sync::mpsc::Sender<pb::ExecRequest>, Stream), tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let start = pb::ExecStart {
        id: id.into(),
        process: Some(p),
    };
    tx.send(pb::ExecRequest {
        input: Some(Input::Start(start)),
    })
    .await
    .unwrap();
    let stream = api
        .exec(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok((tx, stream))
}

/// Everything an exec sends: stdout, stderr, and (code, signal).
async fn drain(stream: &mut Stream) -> (Vec<u8>, Vec<u8>, Option<(i32, i32)>) {
    let (mut out, mut err, mut exit) = (Vec::new(), Vec::new(), None);
    while let Some(m) = stream.message().await.unwrap() {
        match m.output.unwrap() {
            Output::Stdout(b) => out.extend(b),
            Output::Stderr(b) => err.extend(b),
            Output::Exit(e) => exit = Some((e.exit_code, e.signal)),
            Output::ExecId(_) | Output::Detached(_) => {}
        }
    }
    (out, err, exit)
}

async fn running(api: &mut Api, name: &str) -> String {
    started(api, spec(name, &["sleep", "1000"])).await
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_runs_confined_with_dockers_codes_and_events() {
    let d = Daemon::start("exec-basic").await;
    let mut api = d.api().await;
    let id = running(&mut api, "web").await;
    let r = sync(
        &mut api,
        "web",
        process(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
        0,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            r.stdout.as_slice(),
            r.stderr.as_slice(),
            r.exit_code,
            r.signal
        ),
        (&b"out\n"[..], &b"err\n"[..], 3, 0)
    );
    // 126, not found or not runnable, with Docker's words.
    let r = sync(&mut api, "web", process(&["nope"]), 0).await.unwrap();
    assert_eq!(r.exit_code, 126);
    assert_eq!(
        String::from_utf8_lossy(&r.stderr),
        "berth exec failed: unable to start container process: exec: \"nope\": executable file not found in $PATH\n",
    );
    let r = sync(&mut api, "web", process(&["/etc"]), 0).await.unwrap();
    assert_eq!(r.exit_code, 126, "{r:?}");
    // The container's environment and working directory, the request's on
    // top; a signal's end is 128+n with the signal.
    let mut p = process(&["sh", "-c", "echo $HOSTNAME $EXTRA $(pwd)"]);
    p.env = vec!["EXTRA=x".into()];
    p.working_dir = "/tmp".into();
    let r = sync(&mut api, "web", p, 0).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        format!("{} x /tmp\n", &id[..12])
    );
    let r = sync(&mut api, "web", process(&["sh", "-c", "kill -TERM $$"]), 0)
        .await
        .unwrap();
    assert_eq!((r.exit_code, r.signal), (143, 15));
    // Confined as PID 1: its pid namespace (it cannot see the host's
    // processes), its cgroup, no capabilities as another user, seccomp.
    let r = sync(&mut api, "web", process(&["ls", "/proc"]), 0)
        .await
        .unwrap();
    let pids: Vec<String> = String::from_utf8_lossy(&r.stdout)
        .lines()
        .filter(|l| l.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    assert!(
        pids.len() <= 3 && pids.contains(&"1".to_string()),
        "{pids:?}"
    );
    let status = "while read k v; do case $k in CapEff:|CapBnd:|Uid:|Seccomp:|NoNewPrivs:) echo $k $v;; esac; done < /proc/self/status";
    let mut p = process(&["sh", "-c", status]);
    p.user = "1000:1000".into();
    let r = sync(&mut api, "web", p, 0).await.unwrap();
    let text = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(text.contains("Uid: 1000 1000 1000 1000"), "{text}");
    assert!(text.contains("CapEff: 0000000000000000"), "{text}");
    assert!(
        text.contains("Seccomp: 2") && text.contains("NoNewPrivs: 1"),
        "{text}"
    );
    let root = sync(&mut api, "web", process(&["sh", "-c", status]), 0)
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&root.stdout).contains("CapBnd: 00000000a80425fb"),
        "{root:?}"
    );
    let cgroup = sync(&mut api, "web", process(&["cat", "/proc/self/cgroup"]), 0)
        .await
        .unwrap();
    let pid1 = std::fs::read_to_string(format!("/proc/{}/cgroup", status_pid(&mut api, &id).await))
        .unwrap();
    assert_eq!(
        last_cgroup(&String::from_utf8_lossy(&cgroup.stdout)),
        last_cgroup(&pid1)
    );
    // The events, in the journal with their exec id and exit code.
    let events: Vec<pb::Event> = d
        .journal()
        .await
        .into_iter()
        .filter(|e| !e.exec_id.is_empty())
        .collect();
    let first: Vec<(i32, Option<i32>)> = events
        .iter()
        .take(3)
        .map(|e| (e.action, e.exit_code))
        .collect();
    assert_eq!(
        first,
        [
            (Action::ExecCreate as i32, None),
            (Action::ExecStart as i32, None),
            (Action::ExecDie as i32, Some(3))
        ]
    );
    assert_eq!(
        events[0].exec_command,
        "sh -c echo out; echo err >&2; exit 3"
    );
    assert!(events
        .iter()
        .take(3)
        .all(|e| e.exec_id == events[0].exec_id && e.id == id));
}

fn last_cgroup(text: &str) -> String {
    text.lines()
        .filter(|l| !l.contains("name="))
        .map(|l| l.rsplit(':').next().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

async fn status_pid(api: &mut Api, id: &str) -> u32 {
    status(api, id).await.pid
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_pass_through_exactly() {
    let d = Daemon::start("exec-bytes").await;
    let mut api = d.api().await;
    running(&mut api, "pipe").await;
    // 4 MiB of every byte value through cat, both ways.
    let data: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut p = process(&["cat"]);
    p.stdin = true;
    let (tx, mut stream) = open(&mut api, "pipe", p).await.unwrap();
    let feed = data.clone();
    let sender = tokio::spawn(async move {
        for chunk in feed.chunks(100_000) {
            tx.send(pb::ExecRequest {
                input: Some(Input::Stdin(chunk.to_vec())),
            })
            .await
            .unwrap();
        }
        tx.send(pb::ExecRequest {
            input: Some(Input::CloseStdin(true)),
        })
        .await
        .unwrap();
        tx
    });
    let (out, err, exit) = drain(&mut stream).await;
    drop(sender.await.unwrap());
    assert_eq!((out.len(), err.len(), exit), (data.len(), 0, Some((0, 0))));
    assert!(out == data, "the bytes changed on the way");
    // The CLI: a pipe in, a file out, byte for byte.
    let input = d.dir.join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let out = std::process::Command::new(berth_cli())
        .args(["--host", &d.host(), "exec", "-i", "pipe", "cat"])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == data);
    let code = berth(&d, &["exec", "pipe", "sh", "-c", "exit 42"])
        .status
        .code();
    assert_eq!(code, Some(42));
    assert_eq!(
        berth(&d, &["exec", "pipe", "nope"]).status.code(),
        Some(126)
    );
    let out = berth(
        &d,
        &[
            "exec",
            "-e",
            "A=1",
            "-w",
            "/tmp",
            "-u",
            "1000",
            "pipe",
            "sh",
            "-c",
            "echo $A $(pwd)",
        ],
    );
    assert_eq!(stdout(&out), "1 /tmp\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_when_not_running_and_gone_with_the_container() {
    let d = Daemon::start("exec-states").await;
    let mut api = d.api().await;
    let id = created(&mut api, spec("later", &["sleep", "1000"])).await;
    let err = sync(&mut api, &id, process(&["true"]), 0)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    api.pause(pb::PauseRequest { id: id.clone() })
        .await
        .unwrap();
    let err = sync(&mut api, &id, process(&["true"]), 0)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(err.message().contains("paused"), "{err:?}");
    api.unpause(pb::UnpauseRequest { id: id.clone() })
        .await
        .unwrap();
    for bad in [
        process(&[]),
        {
            let mut p = process(&["true"]);
            p.env = vec!["=x".into()];
            p
        },
        {
            let mut p = process(&["true"]);
            p.working_dir = "rel".into();
            p
        },
    ] {
        let err = sync(&mut api, &id, bad, 0).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    }
    // A detached exec keeps running; it goes when the container stops.
    let mut p = process(&["sh", "-c", "echo $$ > /tmp/exec.pid; exec sleep 1000"]);
    p.detach = true;
    let (_tx, mut stream) = open(&mut api, &id, p).await.unwrap();
    let (out, _, exit) = drain(&mut stream).await;
    assert_eq!((out.len(), exit), (0, None));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // top shows PID 1 and the exec's process, not its helper.
    while processes(&mut api, &id).await.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the detached exec did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Everything in its cgroup goes with it, the helper included.
    let before = cgroup_pids(&id);
    assert_eq!(before.len(), 3, "PID 1, the exec's helper and its process");
    api.stop(pb::StopRequest {
        id: id.clone(),
        timeout_seconds: Some(1),
        ..Default::default()
    })
    .await
    .unwrap();
    for pid in before {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map_or(true, |s| s.contains(") Z ")),
            "pid {pid} outlived its container"
        );
    }
    let err = sync(&mut api, &id, process(&["true"]), 0)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread")]
async fn timeouts_clients_gone_and_many_at_once() {
    let d = Daemon::start("exec-many").await;
    let mut api = d.api().await;
    running(&mut api, "busy").await;
    // ExecSync's timeout kills the process.
    let t = std::time::Instant::now();
    let r = sync(&mut api, "busy", process(&["sleep", "1000"]), 1)
        .await
        .unwrap();
    assert!(r.timed_out && (r.exit_code, r.signal) == (137, 9), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    // A client that goes away ends its process.
    let (tx, stream) = open(
        &mut api,
        "busy",
        process(&["sh", "-c", "echo $$; exec sleep 1000"]),
    )
    .await
    .unwrap();
    drop((tx, stream));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = processes(&mut api, "busy").await.len();
        if n == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} processes: the abandoned exec still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 30 at once.
    let runs: Vec<_> = (0..30)
        .map(|i| {
            let mut api = api.clone();
            tokio::spawn(async move {
                let r = sync(
                    &mut api,
                    "busy",
                    process(&["sh", "-c", &format!("echo {i}; exit {}", i % 7)]),
                    30,
                )
                .await
                .unwrap();
                (String::from_utf8_lossy(&r.stdout).into_owned(), r.exit_code)
            })
        })
        .collect();
    for (i, r) in runs.into_iter().enumerate() {
        assert_eq!(r.await.unwrap(), (format!("{i}\n"), (i % 7) as i32));
    }
    // A signal from the client reaches the process.
    let (tx, mut stream) = open(&mut api, "busy", process(&["sleep", "1000"]))
        .await
        .unwrap();
    tx.send(pb::ExecRequest {
        input: Some(Input::Signal("INT".into())),
    })
    .await
    .unwrap();
    let (_, _, exit) = drain(&mut stream).await;
    assert_eq!(exit, Some((130, 2)));
}

/// The pids of a running container's processes, as the host sees them.
async fn processes(api: &mut Api, id: &str) -> Vec<u32> {
    let top = api
        .top(pb::TopRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner();
    top.processes.iter().map(|p| p.pid).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interactive_shell_through_a_real_pty() {
    let d = Daemon::start("exec-tty").await;
    let mut api = d.api().await;
    running(&mut api, "term").await;
    let mut term = Terminal::new();
    let cooked = term.modes();
    let mut cli = term.run(&d, &["exec", "-it", "term", "sh"]);
    // The shell's prompt, then a command typed, its answer, the size.
    term.until("# ");
    term.type_in(b"stty size; echo $((6 * 7))\r");
    term.until("24 80");
    term.until("42");
    // Resized: the CLI gets SIGWINCH and passes the size on.
    term.resize_and_check(40, 100);
    // In raw mode the terminal echoes nothing itself: what shows came
    // from the container's pty. Exit: the shell's code is the CLI's, and
    // the terminal is as it was.
    term.type_in(b"exit 3\r");
    let status = cli.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    assert_eq!(term.modes(), cooked);
    // Another shell, left with ctrl-p ctrl-q: the CLI ends, 0; the shell
    // runs on; an exec_detach event.
    term.clear();
    let mut cli = term.run(&d, &["exec", "-it", "term", "sh"]);
    term.until("# ");
    term.type_in(&[0x10, 0x11]);
    assert_eq!(cli.wait().unwrap().code(), Some(0));
    assert_eq!(term.modes(), cooked);
    let shells = "for p in /proc/[0-9]*; do cat $p/cmdline; echo; done";
    let listed = sync(&mut api, "term", process(&["sh", "-c", shells]), 0)
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert_eq!(
        listed.lines().filter(|l| *l == "sh\0").count(),
        1,
        "{listed:?}"
    );
    let actions: Vec<i32> = d
        .journal()
        .await
        .iter()
        .filter(|e| !e.exec_id.is_empty())
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&(Action::ExecDetach as i32)),
        "{actions:?}"
    );
}

/// The exec helpers of a container: processes whose command line is
/// `berthd exec DIR ...`.
fn exec_helpers(dir: &std::path::Path) -> Vec<i32> {
    let want = format!("berthd\0exec\0{}\0", dir.display());
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(want.as_bytes()))
        })
        .collect()
}

/// An exec's helper is a fork of the daemon's launcher (with
/// BERTH_MONITOR_LAUNCHER=0, an exec of berthd by the daemon); either way
/// its command line names the container and the process's end comes back
/// whole: an exit code, the signal that killed it, a program that cannot
/// start, a timeout's kill.
#[tokio::test(flavor = "multi_thread")]
async fn exec_helpers_forked_or_execd_tell_how_the_process_ended() {
    for launcher in [true, false] {
        let mut d = Daemon::start("exec-helpers").await;
        if launcher {
            until_launcher(&d).await;
        } else {
            d.stop_daemon(libc::SIGTERM);
            d.env.push(("BERTH_MONITOR_LAUNCHER".into(), "0".into()));
            d.spawn().await;
        }
        let mut api = d.api().await;
        let id = started(&mut api, spec("h", &["sleep", "1000"])).await;
        let ended = |r: pb::ExecSyncResponse| (r.exit_code, r.signal, r.timed_out);
        let run = |args: &'static [&'static str], timeout: u32| {
            let (mut api, id) = (api.clone(), id.clone());
            async move { ended(sync(&mut api, &id, process(args), timeout).await.unwrap()) }
        };
        assert_eq!(
            run(&["sh", "-c", "exit 7"], 0).await,
            (7, 0, false),
            "launcher {launcher}"
        );
        assert_eq!(
            run(&["sh", "-c", "kill -TERM $$"], 0).await,
            (143, 15, false),
            "launcher {launcher}"
        );
        assert_eq!(
            run(&["/nonexistent"], 0).await.0,
            126,
            "launcher {launcher}"
        );
        let timed_out = run(&["sleep", "100"], 1).await;
        assert!(timed_out.2, "launcher {launcher}: {timed_out:?}");
        // A helper while its process runs.
        let slow = tokio::spawn(run(&["sleep", "2"], 0));
        let dir = d.container_dir(&id);
        let t = Instant::now();
        let helper = loop {
            if let Some(pid) = exec_helpers(&dir).first() {
                break *pid;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "no exec helper");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let (parent, parent_cmd) = parent_of(helper);
        match launcher {
            true => assert!(
                parent_cmd.starts_with("berthd\0launcher\0"),
                "{parent_cmd:?}"
            ),
            false => assert_eq!(parent, d.pid() as i32),
        }
        assert_eq!(slow.await.unwrap(), (0, 0, false));
        assert_eq!(exec_helpers(&dir), Vec::<i32>::new(), "launcher {launcher}");
    }
}
