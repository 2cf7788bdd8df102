use super::*;

fn event(id: &str, action: Action) -> Event {
    Event {
        id: id.into(),
        name: format!("n-{id}"),
        action: action as i32,
        labels: [("app".to_string(), "web".to_string())].into(),
        ..Default::default()
    }
}

#[test]
fn filters() {
    let f = Filter {
        containers: vec!["n-b".into()],
        actions: vec![Action::Die as i32],
        labels: [("app".to_string(), "web".to_string())].into(),
        ..Default::default()
    };
    assert!(!f.matches(&event("a", Action::Die)));
    assert!(!f.matches(&event("b", Action::Start)));
    assert!(f.matches(&event("b", Action::Die)));
    let daemon = Event {
        action: Action::DaemonStart as i32,
        ..Default::default()
    };
    assert!(!f.matches(&daemon));
    assert!(Filter::default().matches(&daemon));
    // Image events: matched by type and image, never by a container filter.
    let pulled = Event {
        r#type: berth::pb::EventType::Image as i32,
        action: Action::Pull as i32,
        id: "sha256:1".into(),
        name: "redis:7".into(),
        ..Default::default()
    };
    let by = |types: Vec<i32>, images: Vec<String>, containers: Vec<String>| Filter {
        types,
        images,
        containers,
        ..Default::default()
    };
    let image = berth::pb::EventType::Image as i32;
    let container = berth::pb::EventType::Container as i32;
    assert!(Filter::default().matches(&pulled));
    assert!(by(vec![image], vec![], vec![]).matches(&pulled));
    assert!(!by(vec![container], vec![], vec![]).matches(&pulled));
    assert!(by(vec![], vec!["redis:7".into()], vec![]).matches(&pulled));
    assert!(by(vec![], vec!["sha256:1".into()], vec![]).matches(&pulled));
    assert!(!by(vec![], vec!["redis:6".into()], vec![]).matches(&pulled));
    assert!(!by(vec![], vec![], vec!["redis:7".into()]).matches(&pulled));
    assert!(!by(vec![image], vec![], vec![]).matches(&event("b", Action::Die)));
    assert!(!by(vec![], vec!["x".into()], vec![]).matches(&event("b", Action::Die)));
}

#[tokio::test(flavor = "current_thread")]
async fn from_the_oldest_held_survives_retention_before_the_first_read() {
    let dir = std::env::temp_dir().join(format!("berth-oldest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(Store::open(&dir.join("t.redb")).unwrap());
    let bus = Arc::new(Bus::open(store.clone()).unwrap());
    for _ in 0..10 {
        bus.publish(event("a", Action::Start)).unwrap();
    }
    let subscribe = |start| bus.subscribe(Filter::default(), start, Some(now_nanos()));
    let mut oldest = subscribe(Start::After(0)).unwrap();
    let mut third = subscribe(Start::After(2)).unwrap();
    // Retention runs before either subscriber first reads.
    store.prune(5, 0, 100).unwrap();
    let mut seqs = Vec::new();
    use tokio_stream::StreamExt;
    while let Some(e) = oldest.next().await {
        seqs.push(e.unwrap().seq);
    }
    assert_eq!(seqs, [6, 7, 8, 9, 10]);
    // A cursor of its own still learns that events it asked for went.
    let err = third.next().await.unwrap().unwrap_err();
    assert!(matches!(err, Error::OutOfRange(_)), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn concurrent_commits_are_numbered_once_in_order_and_journaled() {
    let dir = std::env::temp_dir().join(format!("berth-bus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(Store::open(&dir.join("t.redb")).unwrap());
    let bus = Arc::new(Bus::open(store.clone()).unwrap());
    const THREADS: usize = 8;
    const EACH: usize = 100;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let bus = bus.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    // Two events per commit: they must stay adjacent.
                    let ev = |n: usize| Event {
                        id: format!("t{t}"),
                        signal: n as i32,
                        ..Default::default()
                    };
                    bus.commit(Batch::default(), vec![ev(2 * i), ev(2 * i + 1)])
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let all = store.read(0, usize::MAX).unwrap();
    assert_eq!(all.len(), THREADS * EACH * 2);
    assert_eq!(bus.last_seq(), all.len() as u64);
    let events: Vec<Event> = all
        .iter()
        .enumerate()
        .map(|(i, e)| {
            assert_eq!(e.seq, i as u64 + 1);
            Event::decode(e.data.as_slice()).unwrap()
        })
        .collect();
    for pair in events.chunks(2) {
        assert_eq!(pair[0].id, pair[1].id);
        assert_eq!(pair[0].signal + 1, pair[1].signal);
    }
    for t in 0..THREADS {
        let mine: Vec<i32> = events
            .iter()
            .filter(|e| e.id == format!("t{t}"))
            .map(|e| e.signal)
            .collect();
        assert_eq!(mine, (0..2 * EACH as i32).collect::<Vec<_>>());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn retention_parses() {
    let d = Retention::default();
    assert_eq!("500".parse::<Retention>().unwrap().max_events, 500);
    assert_eq!("500".parse::<Retention>().unwrap().max_age, d.max_age);
    let r: Retention = "10,2h".parse().unwrap();
    assert_eq!((r.max_events, r.max_age), (10, Duration::from_secs(7200)));
    assert_eq!("3d".parse::<Retention>().unwrap().max_events, d.max_events);
    for bad in ["", "0", "7w", "h", "0s", "-1"] {
        assert!(bad.parse::<Retention>().is_err(), "{bad}");
    }
}
