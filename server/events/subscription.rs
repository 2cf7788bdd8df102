//! One subscriber's stream of events: the journal from its cursor, then
//! the live ring, back to the journal if it fell a whole ring behind. The
//! stream is polled by the connection that carries it, so a subscriber
//! costs no task and no queue of its own, and one that does not read holds
//! nothing but its cursor.

use super::{Bus, Error, Filter, Live, Register};
use berth::pb::Event;
use prost::Message;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{broadcast, watch};

/// Events read from the journal per read transaction.
const REPLAY_BATCH: usize = 1024;

type Next =
    Pin<Box<dyn std::future::Future<Output = (Option<Result<Event, Error>>, State)> + Send>>;

/// The stream handed to the Subscribe RPC.
pub struct Subscription {
    /// The state, or the pending step that owns it.
    state: Option<State>,
    next: Option<Next>,
}

struct State {
    bus: Arc<Bus>,
    filter: Filter,
    /// The seq of the last event looked at (matching or not).
    cursor: u64,
    /// "From the oldest event held": retention removing events before the
    /// first read is not a loss.
    from_oldest: bool,
    until: Option<i64>,
    /// Matching events read from the journal, not yet handed out.
    pending: VecDeque<Event>,
    live: Option<broadcast::Receiver<Live>>,
    closed: watch::Receiver<bool>,
    /// Nothing more will come once `pending` is empty.
    finished: bool,
}

impl Subscription {
    pub(super) fn new(
        bus: Arc<Bus>,
        filter: Filter,
        cursor: u64,
        from_oldest: bool,
        until: Option<i64>,
    ) -> Subscription {
        let closed = bus.closed.subscribe();
        Subscription {
            state: Some(State {
                bus,
                filter,
                cursor,
                from_oldest,
                until,
                pending: VecDeque::new(),
                live: None,
                closed,
                finished: false,
            }),
            next: None,
        }
    }
}

impl Subscription {
    /// The seq this subscription starts after: resuming from it (since_seq)
    /// misses nothing and repeats nothing.
    pub fn starts_after(&self) -> u64 {
        self.state.as_ref().map_or(0, |s| s.cursor)
    }
}

impl tokio_stream::Stream for Subscription {
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.next.is_none() {
            let Some(mut state) = self.state.take() else {
                return Poll::Ready(None);
            };
            self.next = Some(Box::pin(async move {
                let item = state.next().await;
                (item, state)
            }));
        }
        let Some(next) = self.next.as_mut() else {
            return Poll::Ready(None);
        };
        match next.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready((item, state)) => {
                self.next = None;
                if item.is_some() {
                    self.state = Some(state);
                }
                Poll::Ready(item)
            }
        }
    }
}

impl State {
    fn past(&self, at: i64) -> bool {
        self.until.is_some_and(|u| at > u)
    }

    async fn next(&mut self) -> Option<Result<Event, Error>> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(Ok(ev));
            }
            if self.finished {
                return None;
            }
            let step = match self.live.is_some() {
                true => self.live().await,
                false => self.replay().await,
            };
            if let Err(e) = step {
                self.finished = true;
                return Some(Err(e));
            }
        }
    }

    /// Reads one batch from the journal after the cursor; at its end,
    /// joins the live ring.
    async fn replay(&mut self) -> Result<(), Error> {
        if *self.closed.borrow() {
            return Err(Error::Closed);
        }
        let (store, after) = (self.bus.store.clone(), self.cursor);
        let batch = tokio::task::spawn_blocking(move || store.read(after, REPLAY_BATCH))
            .await
            .map_err(|e| Error::Journal(format!("read after seq {after}: {e}")))?
            .map_err(|e| {
                tracing::error!(error = %e, after, "cannot read the event journal");
                Error::Journal(format!("cannot read the events after seq {after}: {e}"))
            })?;
        let n = batch.len();
        // Retention removed events this subscriber had not read: say so
        // rather than skip them.
        if batch.first().is_some_and(|e| e.seq != self.cursor + 1) && !self.from_oldest {
            return Err(Error::OutOfRange(format!(
                "events after seq {} were removed by retention before this subscriber read them: the oldest event held is {}",
                self.cursor, batch[0].seq
            )));
        }
        self.from_oldest &= n == 0;
        for e in batch {
            if self.past(e.recorded_at) {
                self.finished = true;
                return Ok(());
            }
            // A record that does not decode is a damaged journal: an
            // error, never a silent gap.
            let ev = Event::decode(e.data.as_slice()).map_err(|err| {
                tracing::error!(seq = e.seq, error = %err, "undecodable event in the journal");
                Error::Journal(format!("event {} in the journal is damaged: {err}", e.seq))
            })?;
            self.cursor = e.seq;
            if self.filter.matches(&ev) {
                self.pending.push_back(ev);
            }
        }
        if n == REPLAY_BATCH {
            return Ok(());
        }
        match self.bus.register(self.cursor, self.until) {
            Register::Live(rx) => self.live = Some(rx),
            Register::Behind => {}
            Register::Done => self.finished = true,
            Register::Closed => return Err(Error::Closed),
        }
        Ok(())
    }

    /// Waits for the next live event, `until`, or shutdown (an error: the
    /// subscriber did not ask for this end).
    async fn live(&mut self) -> Result<(), Error> {
        let Some(rx) = self.live.as_mut() else {
            return Ok(());
        };
        let deadline = async {
            match self.until {
                Some(u) => {
                    let left = u.saturating_sub(super::now_nanos()).max(0) as u64;
                    tokio::time::sleep(std::time::Duration::from_nanos(left)).await
                }
                None => std::future::pending().await,
            }
        };
        let closed = &mut self.closed;
        tokio::select! {
            live = rx.recv() => match live {
                Ok(live) => {
                    let (at, ev) = &*live;
                    if self.until.is_some_and(|u| *at > u) {
                        self.finished = true;
                    } else {
                        self.cursor = ev.seq;
                        if self.filter.matches(ev) {
                            self.pending.push_back(ev.clone());
                        }
                    }
                }
                // A whole ring behind: what it missed is in the journal.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    tracing::debug!(cursor = self.cursor, "subscriber fell behind; reading the journal");
                    self.live = None;
                }
                Err(broadcast::error::RecvError::Closed) => return Err(Error::Closed),
            },
            _ = deadline => self.finished = true,
            _ = async { drop(closed.wait_for(|c| *c).await) } => return Err(Error::Closed),
        }
        Ok(())
    }
}
