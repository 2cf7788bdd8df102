//! Reading and checking event streams.

use super::*;

pub struct Events {
    pub stream: Streaming<pb::Event>,
}

impl Events {
    /// The next event, or None if none arrives within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<pb::Event> {
        match tokio::time::timeout(within, self.stream.message()).await {
            Ok(Ok(Some(e))) => Some(e),
            _ => None,
        }
    }

    /// Events up to and including the first `until`, within 30 s.
    pub async fn until(&mut self, until: Action) -> Vec<pb::Event> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(e) = self.next(left).await else {
                panic!("no {until:?} event within 30s; got {:?}", brief(&out));
            };
            let done = e.action == until as i32;
            out.push(e);
            if done {
                return out;
            }
        }
    }

    /// Every event until the stream ends (within 30 s).
    pub async fn read_to_end(&mut self) -> Vec<pb::Event> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.message()).await {
                Ok(Ok(Some(e))) => out.push(e),
                Ok(Ok(None)) => return out,
                Ok(Err(s)) => panic!("stream failed: {s}"),
                Err(_) => panic!("stream did not end within 30s; got {}", out.len()),
            }
        }
    }

    /// The next event or the stream's end or error, within 30 s.
    pub async fn message(&mut self) -> Result<Option<pb::Event>, tonic::Status> {
        tokio::time::timeout(Duration::from_secs(30), self.stream.message())
            .await
            .expect("no message within 30s")
    }

    /// Asserts that nothing arrives for a while.
    pub async fn quiet(&mut self) {
        if let Some(e) = self.next(Duration::from_millis(300)).await {
            panic!("unexpected event {:?}", brief(&[e]));
        }
    }
}

/// A stop whose signal did not end the process: TERM, the grace ran out,
/// KILL.
pub fn escalated() -> Seen {
    vec![
        (Action::Kill, 15, None),
        (Action::Kill, 9, None),
        (Action::Die, 9, Some(137)),
        (Action::Stop, 0, None),
    ]
}

/// (action, signal, exit code) of each event.
pub fn brief(events: &[pb::Event]) -> Seen {
    events
        .iter()
        .map(|e| (Action::try_from(e.action).unwrap(), e.signal, e.exit_code))
        .collect()
}

/// Asserts seq strictly increases.
pub fn assert_ordered(events: &[pb::Event]) {
    for w in events.windows(2) {
        assert!(
            w[0].seq < w[1].seq,
            "seq not increasing: {} then {}",
            w[0].seq,
            w[1].seq
        );
    }
}
