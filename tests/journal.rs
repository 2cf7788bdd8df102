//! The event journal: seq across restarts, resuming from a cursor or a
//! time, until, retention, slow subscribers, and stops that coalesce.

mod common;

use berth::pb::{self, Action};
use common::*;
use std::time::{Duration, Instant, SystemTime};
use tonic::Code;

fn since_seq(seq: u64) -> pb::SubscribeRequest {
    pb::SubscribeRequest {
        since_seq: Some(seq),
        ..Default::default()
    }
}

fn now() -> prost_types::Timestamp {
    prost_types::Timestamp::from(SystemTime::now())
}

/// Asserts the seqs are consecutive.
fn assert_contiguous(events: &[pb::Event]) {
    for w in events.windows(2) {
        assert_eq!(w[0].seq + 1, w[1].seq, "gap or repeat in the journal");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn seq_survives_restarts_and_a_cursor_resumes_exactly_once() {
    let mut d = Daemon::start("resume").await;
    let mut api = d.api().await;
    // A new root starts with the daemon's own event.
    let first = d.journal().await;
    assert_eq!(brief(&first), vec![(Action::DaemonStart, 0, None)]);
    assert_eq!((first[0].seq, first[0].resumed_from_seq), (1, 0));

    let mut ev = d.events(&[]).await;
    let id = started(&mut api, spec("r", &["sh", "-c", "exit 4"])).await;
    let seen = ev.until(Action::Die).await;
    // A subscriber that saw only the first event resumes from it.
    drop(ev);
    let mut resumed = d.subscribe(since_seq(seen[0].seq)).await.unwrap();
    let rest = vec![
        resumed.next(Duration::from_secs(5)).await.unwrap(),
        resumed.next(Duration::from_secs(5)).await.unwrap(),
    ];
    assert_eq!(rest, seen[1..]);
    // Live events follow the replay with no gap and no repeat.
    api.remove(pb::RemoveRequest {
        id: id.clone(),
        force: false,
    })
    .await
    .unwrap();
    let live = resumed.until(Action::Destroy).await;
    assert_eq!(brief(&live), vec![(Action::Destroy, 0, None)]);
    assert_eq!(live[0].seq, seen[2].seq + 1);
    let last = live[0].seq;

    // Restarted cleanly and after kill -9: seq goes on from the journal,
    // and each start is an event naming where it resumed.
    d.stop_daemon(libc::SIGTERM);
    d.spawn().await;
    let mut after = d.subscribe(since_seq(last)).await.unwrap();
    let start = after.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(start.action, Action::DaemonStart as i32);
    assert_eq!((start.seq, start.resumed_from_seq), (last + 1, last));
    assert!(start.id.is_empty() && start.name.is_empty());
    after.quiet().await;
    // The old cursor still resumes exactly after it.
    let again = d
        .subscribe(since_seq(seen[2].seq))
        .await
        .unwrap()
        .next(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(again, live[0]);
    d.stop_daemon(libc::SIGKILL);
    d.spawn().await;
    let journal = d.journal().await;
    assert_contiguous(&journal);
    assert_eq!(journal[0].seq, 1);
    let starts: Vec<(u64, u64)> = journal
        .iter()
        .filter(|e| e.action == Action::DaemonStart as i32)
        .map(|e| (e.seq, e.resumed_from_seq))
        .collect();
    assert_eq!(starts, vec![(1, 0), (last + 1, last), (last + 2, last + 1)]);
    // Everything seen live is in the journal with the same seq.
    for e in seen.iter().chain(&live) {
        assert_eq!(&journal[e.seq as usize - 1], e);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn since_and_until_select_by_time_and_bad_cursors_are_refused() {
    let d = Daemon::start("since").await;
    let mut api = d.api().await;
    let mut ev = d.events(&[]).await;
    api.create(spec("a", &["true"])).await.unwrap();
    ev.until(Action::Create).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let middle = now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    api.create(spec("b", &["true"])).await.unwrap();
    ev.until(Action::Create).await;
    let end = now();

    // since a time: only b; until in the past: the stream ends.
    let mut from_middle = d
        .subscribe(pb::SubscribeRequest {
            since: Some(middle),
            until: Some(end),
            ..Default::default()
        })
        .await
        .unwrap();
    let got = from_middle.read_to_end().await;
    assert_eq!(
        got.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        vec!["b"]
    );
    // until before b: only the daemon start and a.
    let upto = d
        .subscribe(pb::SubscribeRequest {
            since_seq: Some(0),
            until: Some(middle),
            ..Default::default()
        })
        .await
        .unwrap()
        .read_to_end()
        .await;
    assert_eq!(
        brief(&upto),
        vec![(Action::DaemonStart, 0, None), (Action::Create, 0, None)]
    );
    // until in the future: live events until then, then the end. (Room
    // for a create on a slow, emulated machine.)
    let soon = prost_types::Timestamp::from(SystemTime::now() + Duration::from_millis(2500));
    let mut live = d
        .subscribe(pb::SubscribeRequest {
            until: Some(soon),
            ..Default::default()
        })
        .await
        .unwrap();
    api.create(spec("c", &["true"])).await.unwrap();
    let t = Instant::now();
    let got = live.read_to_end().await;
    assert_eq!(
        got.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        vec!["c"]
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    // A filter applies to the replay too.
    let only_b = d
        .subscribe(pb::SubscribeRequest {
            since_seq: Some(0),
            containers: vec!["b".into()],
            until: Some(now()),
            ..Default::default()
        })
        .await
        .unwrap()
        .read_to_end()
        .await;
    assert_eq!(only_b.len(), 1);

    let last = d.journal().await.last().unwrap().seq;
    let err = d.subscribe(since_seq(last + 5)).await.err().unwrap();
    assert_eq!(err.code(), Code::OutOfRange, "{}", err.message());
    assert!(
        err.message().contains(&last.to_string()),
        "{}",
        err.message()
    );
    let err = d
        .subscribe(pb::SubscribeRequest {
            since_seq: Some(1),
            since: Some(middle),
            ..Default::default()
        })
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = d
        .subscribe(pb::SubscribeRequest {
            since: Some(end),
            until: Some(middle),
            ..Default::default()
        })
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);
}

/// The journal once background retention has brought it to `max` events.
async fn journal_within(d: &Daemon, max: usize) -> Vec<pb::Event> {
    let t = Instant::now();
    loop {
        let journal = d.journal().await;
        if journal.len() <= max {
            return journal;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "retention kept {:?}",
            brief(&journal)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_removes_old_events_and_an_old_cursor_is_out_of_range() {
    let mut d = Daemon::start_with_args("retain", &["--events-retention", "5"]).await;
    let mut api = d.api().await;
    for i in 0..10 {
        api.create(spec(&format!("c{i}"), &["true"])).await.unwrap();
    }
    // Retention runs at start and every few seconds; restart to run it now.
    d.stop_daemon(libc::SIGTERM);
    d.spawn().await;
    let journal = journal_within(&d, 6).await;
    // 2 daemon starts + 10 creates + this start = 13 events; 5 kept (the
    // new start came after retention ran, so 6 may be held).
    let last = journal.last().unwrap().seq;
    assert_eq!(last, 13);
    assert!(journal.len() <= 6, "{} events held", journal.len());
    let oldest = journal[0].seq;
    let err = d.subscribe(since_seq(1)).await.err().unwrap();
    assert_eq!(err.code(), Code::OutOfRange);
    assert!(
        err.message()
            .contains(&format!("oldest event held is {oldest}")),
        "{}",
        err.message()
    );
    // Resuming right before the oldest held still works.
    let from = d
        .subscribe(since_seq(oldest - 1))
        .await
        .unwrap()
        .next(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(from.seq, oldest);
    // A time older than what is held is refused too.
    let err = d
        .subscribe(pb::SubscribeRequest {
            since: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::OutOfRange);

    // By age: everything older than 1s goes; seq keeps counting.
    d.stop_daemon(libc::SIGTERM);
    d.args = vec!["--events-retention".into(), "1s".into()];
    tokio::time::sleep(Duration::from_millis(1100)).await;
    d.spawn().await;
    journal_within(&d, 1).await;
    api = d.api().await;
    let mut ev = d.events(&[]).await;
    api.create(spec("late", &["true"])).await.unwrap();
    let e = ev.until(Action::Create).await;
    assert_eq!(e[0].seq, last + 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_that_does_not_read_loses_nothing() {
    let d = Daemon::start("slow").await;
    let mut api = d.api().await;
    // Big events (a 16 KiB label) overflow the transport's windows and the
    // subscriber's queue quickly.
    let mut req = spec("big", &["sleep", "1000"]);
    req.labels.insert("pad".into(), "x".repeat(16 * 1024));
    let id = api.create(req).await.unwrap().into_inner().id;
    let mut slow = d.events(&[]).await;
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    const N: usize = 600;
    for _ in 0..N {
        api.kill(pb::KillRequest {
            id: id.clone(),
            signal: "CONT".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    api.remove(pb::RemoveRequest {
        id: id.clone(),
        force: true,
    })
    .await
    .unwrap();
    let got = slow.until(Action::Destroy).await;
    assert!(
        d.log().contains("fell behind"),
        "the subscriber never fell back to the journal"
    );
    assert_eq!(got.len(), 1 + N + 3, "start, {N} kills, kill, die, destroy");
    assert_contiguous(&got);
    let journal = d.journal().await;
    let first = got[0].seq as usize;
    assert_eq!(&journal[first - 1..first - 1 + got.len()], &got[..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_stops_signal_once_and_the_earliest_deadline_wins() {
    let d = Daemon::start("stops").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["s"]).await;
    // PID 1 without a TERM handler ignores TERM: only SIGKILL ends it.
    let id = started(&mut api, spec("s", &["sleep", "1000"])).await;
    ev.until(Action::Start).await;
    let t = Instant::now();
    let long = d.stop_in_background(&id, 60);
    ev.until(Action::Kill).await;
    let short = d.stop_in_background(&id, 1);
    let later = d.stop_in_background(&id, 30);
    for s in [long, short, later] {
        s.await.unwrap().unwrap();
    }
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "stops took {took:?}"
    );
    assert_eq!(
        brief(&ev.until(Action::Stop).await),
        escalated()[1..].to_vec()
    );
    ev.quiet().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_subscribers_each_get_every_event() {
    let d = Daemon::start_with_log("thousand", "info").await;
    let mut api = d.api().await;
    let mut streams = Vec::new();
    // 100 streams per connection.
    for _ in 0..10 {
        let channel = berth::connect(&d.host()).await.unwrap();
        for _ in 0..100 {
            let s = pb::events_client::EventsClient::new(channel.clone())
                .subscribe(pb::SubscribeRequest::default())
                .await
                .unwrap()
                .into_inner();
            streams.push(s);
        }
    }
    let id = started(&mut api, spec("t", &["sleep", "1000"])).await;
    api.remove(pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                while got.len() < 5 {
                    let e = tokio::time::timeout(Duration::from_secs(30), s.message())
                        .await
                        .expect("event within 30s")
                        .unwrap()
                        .unwrap();
                    got.push(e);
                }
                got
            })
        })
        .collect();
    let mut first: Option<Vec<pb::Event>> = None;
    for r in readers {
        let got = r.await.unwrap();
        assert_eq!(
            brief(&got),
            vec![
                (Action::Create, 0, None),
                (Action::Start, 0, None),
                (Action::Kill, 9, None),
                (Action::Die, 9, Some(137)),
                (Action::Destroy, 0, None)
            ]
        );
        match &first {
            Some(f) => assert_eq!(&got, f),
            None => first = Some(got),
        }
    }
}

/// Event times follow what happened: a kill is stamped when the signal went
/// out, an unpause when the thaw began, a start when the process started,
/// so within one container time never goes back as seq rises, even when
/// the process dies before the daemon journals what caused it.
#[tokio::test(flavor = "multi_thread")]
async fn within_a_container_event_times_never_go_back() {
    let d = Daemon::start("times").await;
    let mut api = d.api().await;
    for round in 0..15 {
        // Exits at once: its die can be recorded before its start is.
        let id = started(&mut api, spec(&format!("quick{round}"), &["true"])).await;
        wait(&mut api, &id).await;
        // A TERM handler that exits at once, paused then stopped.
        let script = "trap 'exit 0' TERM; while :; do sleep 0.01; done";
        let id = started(
            &mut api,
            spec(&format!("term{round}"), &["sh", "-c", script]),
        )
        .await;
        api.pause(pb::PauseRequest { id: id.clone() })
            .await
            .unwrap();
        api.stop(pb::StopRequest {
            id: id.clone(),
            timeout_seconds: Some(10),
            signal: None,
        })
        .await
        .unwrap();
        let id = started(
            &mut api,
            spec(&format!("killed{round}"), &["sleep", "1000"]),
        )
        .await;
        api.kill(pb::KillRequest {
            id: id.clone(),
            signal: "KILL".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        wait(&mut api, &id).await;
    }
    let journal = d.journal().await;
    let mut last: std::collections::HashMap<String, (u64, (i64, i32))> = Default::default();
    for e in &journal {
        let t = e.time.map(|t| (t.seconds, t.nanos)).unwrap();
        if let Some((seq, before)) = last.get(&e.id) {
            assert!(
                *before <= t,
                "{}: event {} ({:?}) at {t:?} comes after event {seq} at {before:?}",
                e.name,
                e.seq,
                pb::Action::try_from(e.action)
            );
        }
        last.insert(e.id.clone(), (e.seq, t));
    }
}
