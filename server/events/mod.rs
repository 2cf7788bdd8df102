//! The event bus: numbers every event with a strictly increasing `seq` and
//! hands it to every subscriber whose filter matches. Each subscriber has
//! its own queue, so a slow one never causes a drop or slows the others.

use berth::pb::{Action, Event, SubscribeRequest};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// What a subscriber wants to see.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    containers: Vec<String>,
    actions: Vec<i32>,
    labels: BTreeMap<String, String>,
}

impl Filter {
    pub fn from_request(req: &SubscribeRequest) -> Filter {
        Filter {
            containers: req.containers.clone(),
            actions: req.actions.clone(),
            labels: req
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    pub fn matches(&self, ev: &Event) -> bool {
        (self.containers.is_empty() || self.containers.iter().any(|c| *c == ev.id || *c == ev.name))
            && (self.actions.is_empty() || self.actions.contains(&ev.action))
            && self
                .labels
                .iter()
                .all(|(k, v)| ev.labels.get(k).is_some_and(|x| x == v))
    }
}

struct Subscriber {
    filter: Filter,
    tx: mpsc::UnboundedSender<Event>,
}

struct Inner {
    next_seq: u64,
    subscribers: Vec<Subscriber>,
    closed: bool,
}

pub struct Bus {
    inner: Mutex<Inner>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            inner: Mutex::new(Inner {
                next_seq: 1,
                subscribers: Vec::new(),
                closed: false,
            }),
        }
    }
}

impl Bus {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers `ev`, stamps its time and delivers it.
    pub fn publish(&self, mut ev: Event) -> u64 {
        let mut inner = self.lock();
        ev.seq = inner.next_seq;
        inner.next_seq += 1;
        ev.time = Some(prost_types::Timestamp::from(std::time::SystemTime::now()));
        tracing::debug!(seq = ev.seq, container = %ev.id, action = ?Action::try_from(ev.action), "event");
        inner
            .subscribers
            .retain(|s| !s.filter.matches(&ev) || s.tx.send(ev.clone()).is_ok());
        ev.seq
    }

    /// A queue of every matching event published from now on. None once
    /// the bus is closed.
    pub fn subscribe(&self, filter: Filter) -> Option<mpsc::UnboundedReceiver<Event>> {
        let mut inner = self.lock();
        if inner.closed {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        inner.subscribers.push(Subscriber { filter, tx });
        Some(rx)
    }

    /// Ends every subscription (daemon shutdown).
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.subscribers.clear();
    }
}

#[cfg(test)]
mod tests {
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
    fn filters_and_orders() {
        let bus = Bus::default();
        let mut all = bus.subscribe(Filter::default()).unwrap();
        let mut dies = bus
            .subscribe(Filter::from_request(&SubscribeRequest {
                containers: vec!["n-b".into()],
                actions: vec![Action::Die as i32],
                labels: [("app".to_string(), "web".to_string())].into(),
            }))
            .unwrap();
        bus.publish(event("a", Action::Die));
        bus.publish(event("b", Action::Start));
        bus.publish(event("b", Action::Die));
        let seqs: Vec<u64> = std::iter::from_fn(|| all.try_recv().ok())
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        let got: Vec<u64> = std::iter::from_fn(|| dies.try_recv().ok())
            .map(|e| e.seq)
            .collect();
        assert_eq!(got, vec![3]);
        bus.close();
        assert!(bus.subscribe(Filter::default()).is_none());
    }
}
