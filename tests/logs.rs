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

/// Writes a log of `n` records of `len` bytes in berth's format (a file
/// header saying no lines came before, then "NNNNNNN xxx…\n" lines).
fn write_big_log(path: &std::path::Path, n: usize, len: usize) {
    use std::io::Write;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let record = |f: &mut std::io::BufWriter<std::fs::File>, stream: u8, line: &[u8]| {
        f.write_all(&(line.len() as u32).to_le_bytes()).unwrap();
        f.write_all(&1_000_000_000i64.to_le_bytes()).unwrap();
        f.write_all(&[stream]).unwrap();
        f.write_all(line).unwrap();
    };
    record(&mut f, 0, &0u64.to_le_bytes());
    let pad = "x".repeat(len - 9);
    for i in 0..n {
        record(&mut f, 1, format!("{i:07} {pad}\n").as_bytes());
    }
    f.flush().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_reads_from_the_end_in_little_memory() {
    let d = Daemon::start("bigtail").await;
    let mut api = d.api().await;
    let id = created(&mut api, spec("big", &["true"])).await;
    // 200 MiB of 200-byte lines.
    let n = 1_000_000;
    write_big_log(&d.container_dir(&id).join("container.log"), n, 200);
    let before = proc_status(d.pid(), "VmRSS");
    let mut req = logs(&id);
    req.tail = Some(2);
    let got = read_logs(&mut api, req).await;
    let got: Vec<String> = lines(&got)
        .into_iter()
        .map(|(_, l)| l[..7].to_string())
        .collect();
    assert_eq!(got, [format!("{:07}", n - 2), format!("{:07}", n - 1)]);
    let peak = proc_status(d.pid(), "VmHWM");
    assert!(
        peak < before + 16 * 1024,
        "the daemon grew from {before} kB to a peak of {peak} kB"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn followers_hold_no_thread_and_all_get_each_line() {
    let d = Daemon::start("followers").await;
    let mut api = d.api().await;
    let mut req = shared(
        &d,
        "chatty",
        &[
            "sh",
            "-c",
            "while [ ! -e /s/go ]; do sleep 0.05; done; echo hello",
        ],
    );
    req.args[2] = "while [ ! -e /s/go ]; do sleep 0.05; done; echo hello; sleep 1000".into();
    let id = started(&mut api, req).await;
    // More followers than tokio has blocking threads (512).
    const FOLLOWERS: usize = 600;
    let mut streams = Vec::new();
    for _ in 0..FOLLOWERS / 100 {
        let channel = berth::connect(&d.host()).await.unwrap();
        for _ in 0..100 {
            let mut req = logs(&id);
            req.follow = true;
            let s = pb::containers_client::ContainersClient::new(channel.clone())
                .logs(req)
                .await
                .unwrap()
                .into_inner();
            streams.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let threads = proc_status(d.pid(), "Threads");
    assert!(threads < 64, "{threads} threads for {FOLLOWERS} followers");
    // The daemon still starts containers, and every follower gets the line.
    let other = tokio::time::timeout(
        Duration::from_secs(20),
        started(&mut api, spec("other", &["true"])),
    )
    .await
    .expect("a start beside the followers");
    assert_eq!(wait_exit(&mut api, &other).await, 0);
    std::fs::write(d.share("s").join("go"), "").unwrap();
    for s in &mut streams {
        let e = tokio::time::timeout(Duration::from_secs(20), s.message())
            .await
            .expect("the line within 20s")
            .unwrap()
            .unwrap();
        assert_eq!(e.line, b"hello\n");
    }
    api.remove(pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
    for s in &mut streams {
        let end = tokio::time::timeout(Duration::from_secs(20), s.message()).await;
        assert!(matches!(end, Ok(Ok(None))), "{end:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_behind_rotation_is_told_how_many_lines_it_missed() {
    let d = Daemon::start("lostlines").await;
    let mut api = d.api().await;
    const N: usize = 3000;
    let script = format!(
        "sleep 0.5; exec perl -e 'for $i (1..{N}) {{ printf \"%05d %s\\n\", $i, \"x\" x 500 }}'"
    );
    let mut req = spec("fast", &["sh", "-c", &script]);
    req.log_max_size_bytes = 1024;
    req.log_max_files = 2;
    let id = started(&mut api, req).await;
    let mut follow = logs(&id);
    follow.follow = true;
    let mut stream = api.logs(follow).await.unwrap().into_inner();
    // Not read while the container writes everything and rotates.
    assert_eq!(wait_exit(&mut api, &id).await, 0);
    // Each entry: Ok(line number) or Err(lines lost).
    let mut got: Vec<Result<usize, usize>> = Vec::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("logs within 30s")
        .unwrap()
    {
        got.push(match e.lost_lines {
            0 => Ok(String::from_utf8_lossy(&e.line[..5]).parse().unwrap()),
            n => Err(n as usize),
        });
    }
    assert!(got.iter().any(Result::is_err), "never told of lost lines");
    // Every line is delivered, in order, or counted as lost where it was.
    let mut next = 1;
    for (i, g) in got.iter().enumerate() {
        match g {
            Err(n) => next += n,
            Ok(line) => {
                let near = &got[i.saturating_sub(6)..(i + 2).min(got.len())];
                assert_eq!(*line, next, "entry {i}: {near:?}");
                next += 1;
            }
        }
    }
    assert_eq!(next, N + 1);
}
