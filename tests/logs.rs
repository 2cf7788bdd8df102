//! Container logs: lines in order with their streams, follow, tail,
//! since/until, rotation, a daemon restart, remove.

mod common;

use berth::pb::{self, Action, LogStream};
use common::*;
use std::time::{Duration, Instant};
use tonic::Code;

fn logs(id: &str) -> pb::LogsRequest {
    pb::LogsRequest {
        id: id.into(),
        ..Default::default()
    }
}

/// Every entry of a Logs call, until its stream ends.
async fn read_logs(api: &mut Api, req: pb::LogsRequest) -> Vec<pb::LogEntry> {
    let mut stream = api.logs(req).await.unwrap().into_inner();
    let mut out = Vec::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("logs within 30s")
        .unwrap()
    {
        out.push(e);
    }
    out
}

fn lines(entries: &[pb::LogEntry]) -> Vec<(LogStream, String)> {
    entries
        .iter()
        .map(|e| {
            (
                LogStream::try_from(e.stream).unwrap(),
                String::from_utf8_lossy(&e.line).into_owned(),
            )
        })
        .collect()
}

async fn wait_exit(api: &mut Api, id: &str) -> i32 {
    api.wait(pb::WaitRequest {
        id: id.into(),
        condition: 0,
        exit_count: None,
    })
    .await
    .unwrap()
    .into_inner()
    .exit_code
}

#[tokio::test(flavor = "multi_thread")]
async fn lines_come_back_in_order_with_their_streams() {
    let d = Daemon::start("logorder").await;
    let mut api = d.api().await;
    let script = "echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three; printf partial";
    let id = started(&mut api, spec("o", &["sh", "-c", script])).await;
    assert_eq!(wait_exit(&mut api, &id).await, 0);
    let all = read_logs(&mut api, logs(&id)).await;
    use LogStream::{Stderr, Stdout};
    assert_eq!(
        lines(&all),
        vec![
            (Stdout, "one\n".into()),
            (Stderr, "two\n".into()),
            (Stdout, "three\n".into()),
            (Stdout, "partial".into()),
        ]
    );
    assert!(all.iter().all(|e| e.time.is_none()));
    // Stream selection, timestamps, tail.
    let errs = read_logs(
        &mut api,
        pb::LogsRequest {
            stderr: true,
            timestamps: true,
            ..logs(&id)
        },
    )
    .await;
    assert_eq!(lines(&errs), vec![(Stderr, "two\n".into())]);
    let two = errs[0].time.unwrap();
    let outs = read_logs(
        &mut api,
        pb::LogsRequest {
            stdout: true,
            tail: Some(2),
            ..logs(&id)
        },
    )
    .await;
    assert_eq!(
        lines(&outs),
        vec![(Stdout, "three\n".into()), (Stdout, "partial".into())]
    );
    // since and until select by when the line was written.
    let after = read_logs(
        &mut api,
        pb::LogsRequest {
            since: Some(two),
            ..logs(&id)
        },
    )
    .await;
    assert_eq!(after.len(), 3);
    let before = read_logs(
        &mut api,
        pb::LogsRequest {
            until: Some(two),
            ..logs(&id)
        },
    )
    .await;
    assert_eq!(before.len(), 2);
    // The CLI prints them as written.
    let out = std::process::Command::new(berth_cli())
        .args(["--host", &d.host(), "logs", "o"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\nthree\npartial");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "two\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_receives_lines_as_they_are_written() {
    let d = Daemon::start("logfollow").await;
    let mut api = d.api().await;
    let s = d.share("s");
    // Prints a line each time /s/N appears, then exits after the third.
    let script = "for i in 1 2 3; do while [ ! -e /s/$i ]; do sleep 0.02; done; echo line $i; done";
    let id = started(&mut api, shared(&d, "f", &["sh", "-c", script])).await;
    let mut stream = api
        .logs(pb::LogsRequest {
            follow: true,
            ..logs(&id)
        })
        .await
        .unwrap()
        .into_inner();
    for i in 1..=3 {
        std::fs::write(s.join(i.to_string()), "").unwrap();
        let e = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("line while following")
            .unwrap()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&e.line), format!("line {i}\n"));
    }
    // The container exits: following ends.
    let end = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("follow ends when the container stops")
        .unwrap();
    assert!(end.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_rotate_by_size_and_keep_the_newest_lines() {
    let d = Daemon::start("logrotate").await;
    let mut api = d.api().await;
    let script = "i=100; while [ $i -lt 400 ]; do echo line $i; i=$((i+1)); done";
    let id = started(
        &mut api,
        pb::CreateRequest {
            log_max_size_bytes: 1024,
            log_max_files: 2,
            ..spec("r", &["sh", "-c", script])
        },
    )
    .await;
    assert_eq!(wait_exit(&mut api, &id).await, 0);
    let files: Vec<String> = std::fs::read_dir(d.container_dir(&id))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("container.log"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        let size = std::fs::metadata(d.container_dir(&id).join(f))
            .unwrap()
            .len();
        assert!(size <= 1024, "{f} is {size} bytes");
    }
    let kept: Vec<u32> = read_logs(&mut api, logs(&id))
        .await
        .iter()
        .map(|e| {
            String::from_utf8_lossy(&e.line)
                .trim()
                .strip_prefix("line ")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(kept.len() > 40 && kept.len() < 300, "{} kept", kept.len());
    assert_eq!(*kept.last().unwrap(), 399);
    for w in kept.windows(2) {
        assert_eq!(w[0] + 1, w[1]);
    }
    let tail = read_logs(
        &mut api,
        pb::LogsRequest {
            tail: Some(3),
            ..logs(&id)
        },
    )
    .await;
    assert_eq!(
        lines(&tail).into_iter().map(|l| l.1).collect::<Vec<_>>(),
        vec!["line 397\n", "line 398\n", "line 399\n"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn output_written_while_the_daemon_is_down_is_kept_and_remove_deletes_it() {
    let mut d = Daemon::start("logdown").await;
    let mut api = d.api().await;
    let s = d.share("s");
    // 20,000 lines (about 1 MiB) once /s/go exists: far more than a pipe
    // holds, so the container would block if nobody read its output.
    std::fs::write(
        s.join("big"),
        (0..20000).map(|i| format!("{i:047}\n")).collect::<String>(),
    )
    .unwrap();
    let script = "echo before; while [ ! -e /s/go ]; do sleep 0.02; done; cat /s/big; echo after";
    let id = started(&mut api, shared(&d, "down", &["sh", "-c", script])).await;
    let pid = status(&mut api, &id).await.pid;
    d.stop_daemon(libc::SIGKILL);
    std::fs::write(s.join("go"), "").unwrap();
    let t = Instant::now();
    while alive(pid) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the container blocked on its output while the daemon was down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.spawn().await;
    let mut api = d.api().await;
    let all = read_logs(&mut api, logs(&id)).await;
    assert_eq!(all.len(), 20002);
    assert_eq!(all[0].line, b"before\n");
    assert_eq!(all[20001].line, b"after\n");
    assert!(all[1..20001]
        .iter()
        .enumerate()
        .all(|(i, e)| e.line == format!("{i:047}\n").as_bytes()));
    let mut ev = d.events(&["down"]).await;
    api.remove(pb::RemoveRequest {
        id: id.clone(),
        force: false,
    })
    .await
    .unwrap();
    ev.until(Action::Destroy).await;
    assert!(!d.container_dir(&id).exists());
    let err = api.logs(logs(&id)).await.err().unwrap();
    assert_eq!(err.code(), Code::NotFound);
}
