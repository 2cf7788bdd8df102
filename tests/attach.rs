//! Attach end to end: PID 1's stdin and terminal through a real pty, the
//! detach keys, attaching again, several attachers and one that never
//! reads, byte-exact pipes through `run -i` and `start -a -i`, and an
//! attach after the daemon was killed.

mod common;
use berth::pb::{self, attach_request::Input, attach_response::Output, Action};
use common::*;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

type Stream = tonic::Streaming<pb::AttachResponse>;
type Input_ = tokio::sync::mpsc::Sender<pb::AttachRequest>;

fn input(i: Input) -> pb::AttachRequest {
    pb::AttachRequest { input: Some(i) }
}

/// Attaches over the API; the sender of further input and the output.
async fn attach(api: &mut Api, start: pb::AttachStart) -> Result<(Input_, Stream), tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tx.send(input(Input::Start(start))).await.unwrap();
    let stream = api
        .attach(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok((tx, stream))
}

fn to(id: &str, stdin: bool) -> pb::AttachStart {
    pb::AttachStart {
        id: id.into(),
        stdin,
        ..Default::default()
    }
}

fn holds(hay: &[u8], want: &str) -> bool {
    hay.windows(want.len()).any(|w| w == want.as_bytes())
}

/// Reads stdout until it holds `want`; what was read.
async fn read_until(stream: &mut Stream, want: &str) -> Vec<u8> {
    let mut got = Vec::new();
    let read = async {
        loop {
            match stream.message().await.unwrap() {
                Some(pb::AttachResponse {
                    output: Some(Output::Stdout(b)),
                }) => {
                    // Only the new bytes (and a match across the seam).
                    let from = got.len().saturating_sub(want.len());
                    got.extend_from_slice(&b);
                    if holds(&got[from..], want) {
                        return;
                    }
                }
                Some(_) => {}
                None => return,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(30), read).await;
    assert!(
        holds(&got, want),
        "{want:?} never came; got {:?}",
        String::from_utf8_lossy(&got[got.len().saturating_sub(4096)..])
    );
    got
}

/// The last message of a stream, read to its end.
async fn last(stream: &mut Stream) -> Option<Output> {
    let mut last = None;
    while let Some(m) = stream.message().await.unwrap() {
        last = m.output;
    }
    last
}

/// Actions of the container's events in the journal.
async fn actions(d: &Daemon, id: &str) -> Vec<Action> {
    d.journal()
        .await
        .into_iter()
        .filter(|e| e.id == id)
        .map(|e| Action::try_from(e.action).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn run_it_detaches_and_attaches_again_through_a_real_pty() {
    let d = Daemon::start("attach-tty").await;
    let mut api = d.api().await;
    let rootfs = rootfs().display().to_string();
    let mut term = Terminal::new();
    let cooked = term.modes();
    let mut cli = term.run(&d, &["run", "-it", "--name", "shell", &rootfs, "sh"]);
    // A shell on PID 1's terminal, of this terminal's size, then resized.
    term.until("# ");
    term.type_in(b"stty size; echo $((6 * 7))\r");
    term.until("24 80");
    term.until("42");
    term.resize_and_check(33, 111);
    let id = inspect(&mut api, "shell").await.id;
    // A second attacher, over the API, without stdin.
    let (_keep, mut watcher) = attach(&mut api, to(&id, false)).await.unwrap();
    // ctrl-p ctrl-q: the CLI ends, 0, its terminal as it was; the
    // container runs on.
    term.type_in(&[0x10, 0x11]);
    assert_eq!(cli.wait().unwrap().code(), Some(0));
    assert_eq!(term.modes(), cooked);
    let state = status(&mut api, &id).await;
    assert_eq!(state.status, pb::Status::Running as i32);
    // Only root reaches the socket, or anything under the daemon's root.
    let mode = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(&d.container_dir(&id).join("attach.sock")), 0o600);
    assert_eq!(mode(&d.root), 0o700);
    let made = "{{.Config.Tty}} {{.Config.OpenStdin}} {{.Config.StdinOnce}}";
    let made = ok(berth(&d, &["inspect", "-f", made, "shell"]));
    assert_eq!(made.trim(), "true true false");
    // Attached again from another terminal: the same shell; both
    // attachers see what it writes.
    let mut again = Terminal::new();
    let mut cli = again.run(&d, &["attach", "shell"]);
    again.type_in(b"echo again-$((1 + 1))\r");
    again.until("again-2");
    read_until(&mut watcher, "again-2").await;
    // Its exit code is the CLI's, and the last message of the watcher's
    // stream.
    again.type_in(b"exit 5\r");
    assert_eq!(cli.wait().unwrap().code(), Some(5));
    let exit = pb::AttachExit {
        exit_code: 5,
        signal: 0,
    };
    assert_eq!(last(&mut watcher).await, Some(Output::Exit(exit)));
    assert_eq!(wait(&mut api, &id).await.exit_code, 5);
    assert_eq!(
        actions(&d, &id).await,
        [
            Action::Create,
            Action::Start,
            Action::Attach,
            Action::Attach,
            Action::Detach,
            Action::Attach,
            Action::Die
        ]
    );
    // A terminal's output is logged as stdout.
    let logs = ok(berth(&d, &["logs", "shell"]));
    assert!(logs.contains("42"), "{logs:?}");
    // Not running: attaching is refused.
    let refused = attach(&mut api, to(&id, true)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(!d.container_dir(&id).join("attach.sock").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn run_i_and_start_a_i_pipe_bytes_exactly() {
    let d = Daemon::start("attach-pipes").await;
    let rootfs = rootfs().display().to_string();
    // 4 MiB of random bytes through cat, byte for byte; stdin closes
    // when ours ends (run -i in the foreground).
    let mut data = vec![0u8; 4 << 20];
    getrandom(&mut data);
    let mut child = cli(&d, &["run", "-i", "--rm", &rootfs, "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&sent));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout == data, "{} bytes came back", out.stdout.len());
    // stderr stays stderr; the exit code is the container's.
    let script = "read x; echo \"got $x\" >&2; exit 7";
    let mut child = cli(&d, &["run", "-i", &rootfs, "sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "got hi\n");
    assert!(out.stdout.is_empty());
    // start -a -i: attached from the first byte.
    let script = "echo first; read x; echo \"got $x\"; exit 4";
    ok(berth(
        &d,
        &[
            "create", "-i", "--name", "later", &rootfs, "sh", "-c", script,
        ],
    ));
    let mut child = cli(&d, &["start", "-a", "-i", "later"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"there\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\ngot there\n");
    // -t without a terminal here: the container still has one.
    let out = berth(
        &d,
        &[
            "run",
            "-t",
            "--rm",
            &rootfs,
            "sh",
            "-c",
            "test -t 0 && echo tty",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tty\r\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attacher_that_never_reads_never_blocks_the_container() {
    let d = Daemon::start("attach-slow").await;
    let mut api = d.api().await;
    let mut req = spec(
        "talker",
        &[
            "sh",
            "-c",
            "read x; echo \"got $x\"; dd if=/dev/zero bs=65536 count=512 2>/dev/null; \
             echo done; read y; exit 0",
        ],
    );
    req.stdin_open = true;
    let id = started(&mut api, req).await;
    let (tx, mut reader) = attach(&mut api, to(&id, true)).await.unwrap();
    // One that never reads, and one gone at once.
    let (_keep, mut slow) = attach(&mut api, to(&id, false)).await.unwrap();
    drop(attach(&mut api, to(&id, false)).await.unwrap());
    tx.send(input(Input::Stdin(b"hi\n".to_vec())))
        .await
        .unwrap();
    // 32 MiB go by: `reader` keeps up, and `slow`, which reads nothing,
    // holds the output back for a second at most.
    let got = read_until(&mut reader, "done\n").await;
    assert!(got.starts_with(b"got hi\n"));
    assert_eq!(got.len(), "got hi\n".len() + (32 << 20) + "done\n".len());
    // The one that fell behind was cut off, and says so.
    let cut = loop {
        match slow.message().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the slow attacher saw the end, not a cut"),
            Err(e) => break e,
        }
    };
    assert_eq!(cut.code(), tonic::Code::Aborted, "{cut:?}");
    tx.send(input(Input::Stdin(b"bye\n".to_vec())))
        .await
        .unwrap();
    let end = last(&mut reader).await;
    assert!(matches!(end, Some(Output::Exit(_))), "{end:?}");
    assert_eq!(wait(&mut api, &id).await.exit_code, 0);
    // Refusals: not running, unknown, bad keys, no start message.
    let code = |r: Result<(Input_, Stream), tonic::Status>| r.map(drop).unwrap_err().code();
    assert_eq!(
        code(attach(&mut api, to(&id, false)).await),
        tonic::Code::FailedPrecondition
    );
    assert_eq!(
        code(attach(&mut api, to("nosuch", false)).await),
        tonic::Code::NotFound
    );
    let bad_keys = pb::AttachStart {
        detach_keys: "ctrl-1".into(),
        ..to(&id, true)
    };
    assert_eq!(
        code(attach(&mut api, bad_keys).await),
        tonic::Code::InvalidArgument
    );
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(input(Input::Stdin(b"x".to_vec()))).await.unwrap();
    let no_start = api
        .attach(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap_err();
    assert_eq!(no_start.code(), tonic::Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_after_the_daemon_was_killed() {
    let mut d = Daemon::start("attach-restart").await;
    let mut api = d.api().await;
    let mut req = spec(
        "echoer",
        &["sh", "-c", "while read x; do echo \"got $x\"; done"],
    );
    req.stdin_open = true;
    req.tty = true;
    let id = started(&mut api, req).await;
    d.stop_daemon(libc::SIGKILL);
    d.spawn().await;
    let mut api = d.api().await;
    let (tx, mut stream) = attach(&mut api, to(&id, true)).await.unwrap();
    tx.send(input(Input::Stdin(b"one\n".to_vec())))
        .await
        .unwrap();
    read_until(&mut stream, "got one\r\n").await;
    // Detach keys inside the input: what comes before them goes in, the
    // rest never does; the container runs on.
    tx.send(input(Input::Stdin(b"two\n\x10\x11three\n".to_vec())))
        .await
        .unwrap();
    assert_eq!(last(&mut stream).await, Some(Output::Detached(true)));
    let (tx, mut stream) = attach(&mut api, to(&id, true)).await.unwrap();
    tx.send(input(Input::Stdin(b"four\n".to_vec())))
        .await
        .unwrap();
    read_until(&mut stream, "got four\r\n").await;
    let logs = ok(berth(&d, &["logs", &id]));
    assert!(logs.contains("got two\r\n"), "{logs:?}");
    assert!(!logs.contains("three"), "{logs:?}");
    api.kill(pb::KillRequest {
        id: id.clone(),
        signal: "KILL".into(),
        all: false,
    })
    .await
    .unwrap();
    let exit = pb::AttachExit {
        exit_code: 137,
        signal: 9,
    };
    assert_eq!(last(&mut stream).await, Some(Output::Exit(exit)));
}
