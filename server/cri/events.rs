//! GetContainerEvents: the CRI's event stream, read from berth's event
//! journal. Each create, start, die and destroy of a pod sandbox or CRI
//! container (their berth label `io.berth.cri` says which) becomes the
//! CRI's event, with the pod's status and its containers' as they are
//! when it is sent (a destroyed pod has none).
//!
//! A new stream begins with the last minute's events: a kubelet that
//! reconnects after berthd was down (or after its own restart) gets the
//! changes it could not have seen, the exits recorded when berthd came
//! back and those in flight when it died, instead of only what follows.
//! The statuses sent are current, so a change seen twice does no harm.

use super::{CriRuntime, CRI_LABEL};
use crate::events::{Filter, Start};
use crate::sys::time::now_nanos;
use berth::pb::{Action, EventType};
use k8s_cri::v1 as cri;
use std::pin::Pin;
use tokio_stream::{Stream, StreamExt};
use tonic::Status;

pub type EventStream =
    Pin<Box<dyn Stream<Item = Result<cri::ContainerEventResponse, Status>> + Send>>;

/// The CRI's kind of a berth container event, if it has one.
fn kind(action: i32) -> Option<cri::ContainerEventType> {
    Some(match Action::try_from(action).ok()? {
        Action::Create => cri::ContainerEventType::ContainerCreatedEvent,
        Action::Start => cri::ContainerEventType::ContainerStartedEvent,
        Action::Die => cri::ContainerEventType::ContainerStoppedEvent,
        Action::Destroy => cri::ContainerEventType::ContainerDeletedEvent,
        _ => return None,
    })
}

/// How far back a new stream begins.
const REPLAY: std::time::Duration = std::time::Duration::from_secs(60);

fn replay_from() -> i64 {
    let since = std::time::SystemTime::now() - REPLAY;
    since
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl CriRuntime {
    pub(super) fn container_events(&self) -> Result<EventStream, Status> {
        let filter = Filter {
            containers: Vec::new(),
            actions: [Action::Create, Action::Start, Action::Die, Action::Destroy]
                .map(|a| a as i32)
                .to_vec(),
            labels: Default::default(),
            types: vec![EventType::Container as i32],
            images: Vec::new(),
        };
        let events = self
            .rt
            .bus()
            .subscribe(filter, Start::At(replay_from()), None)
            .map_err(Status::from)?;
        let cri = self.clone();
        let subscribed = now_nanos();
        let stream = events.filter_map(move |ev| {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => return Some(Err(Status::from(e))),
            };
            let kind = kind(ev.action)?;
            let pod = match ev.labels.get(CRI_LABEL)?.as_str() {
                "sandbox" => ev.id.clone(),
                _ => ev.labels.get(super::POD_LABEL).cloned().unwrap_or_default(),
            };
            // Of the replayed ones, those of pods gone since are left out:
            // with no pod status the kubelet can do nothing with them.
            let event = cri.event(&ev.id, &pod, kind, &ev);
            let replayed = event.created_at < subscribed;
            (event.pod_sandbox_status.is_some() || !replayed).then_some(Ok(event))
        });
        Ok(Box::pin(stream))
    }

    fn event(
        &self,
        id: &str,
        pod: &str,
        kind: cri::ContainerEventType,
        ev: &berth::pb::Event,
    ) -> cri::ContainerEventResponse {
        let pod_sandbox_status = self.sandbox_status(pod, false).ok().and_then(|s| s.status);
        let containers_statuses = self
            .rt
            .members(pod)
            .iter()
            .filter_map(|c| self.container_status(c, false).ok()?.status)
            .collect();
        cri::ContainerEventResponse {
            container_id: id.to_string(),
            container_event_type: kind as i32,
            created_at: ev
                .time
                .as_ref()
                .map(crate::events::nanos)
                .unwrap_or_default(),
            pod_sandbox_status,
            containers_statuses,
        }
    }
}
