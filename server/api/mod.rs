//! The gRPC services: each request is checked, handed to the runtime, and
//! its result turned into a response or a status.

use crate::events::{self, Bus, Filter, Start};
use crate::runtime::{spec, Error, Runtime, WaitCondition};
use crate::store;
use berth::pb::{self, containers_server::Containers, events_server::Events};
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let msg = e.to_string();
        match e {
            Error::NotFound(_) => Status::not_found(msg),
            Error::AlreadyExists(_) => Status::already_exists(msg),
            Error::InvalidArgument(_) => Status::invalid_argument(msg),
            Error::FailedPrecondition(_) => Status::failed_precondition(msg),
            Error::Internal(_) => Status::internal(msg),
            Error::ResourceExhausted(_) => Status::resource_exhausted(msg),
            Error::ShuttingDown => Status::unavailable(msg),
        }
    }
}

impl From<events::Error> for Status {
    fn from(e: events::Error) -> Status {
        let msg = e.to_string();
        match e {
            events::Error::OutOfRange(_) => Status::out_of_range(msg),
            events::Error::Full(_) | events::Error::Store(store::Error::Full { .. }) => {
                Status::resource_exhausted(msg)
            }
            events::Error::Closed => Status::unavailable(msg),
            events::Error::Store(_) | events::Error::Journal(_) => Status::internal(msg),
        }
    }
}

pub struct ContainersService {
    pub rt: Arc<Runtime>,
    /// The runtime operations run on (see main).
    pub ops: tokio::runtime::Handle,
}

type Res<T> = Result<Response<T>, Status>;

/// Runs a state-changing operation to completion in its own task: tonic
/// drops a handler's future when the client goes away, and an operation cut
/// off half-way (a started container never recorded, a cgroup frozen but
/// not marked paused) must never happen.
async fn detached<T, F>(ops: &tokio::runtime::Handle, op: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, Error>> + Send + 'static,
{
    ops.spawn(op)
        .await
        .map_err(|e| Status::internal(format!("operation failed: {e}")))?
        .map_err(Status::from)
}

#[tonic::async_trait]
impl Containers for ContainersService {
    async fn create(&self, req: Request<pb::CreateRequest>) -> Res<pb::CreateResponse> {
        let request = spec::Request::from(req.into_inner());
        let rt = self.rt.clone();
        let (id, name) = detached(&self.ops, async move { rt.create(request).await }).await?;
        Ok(Response::new(pb::CreateResponse { id, name }))
    }

    async fn start(&self, req: Request<pb::StartRequest>) -> Res<pb::StartResponse> {
        let (rt, id) = (self.rt.clone(), req.into_inner().id);
        detached(&self.ops, async move { rt.start(&id).await }).await?;
        Ok(Response::new(pb::StartResponse {}))
    }

    async fn stop(&self, req: Request<pb::StopRequest>) -> Res<pb::StopResponse> {
        let (rt, r) = (self.rt.clone(), req.into_inner());
        detached(&self.ops, async move {
            rt.stop(&r.id, r.timeout_seconds, r.signal.as_deref()).await
        })
        .await?;
        Ok(Response::new(pb::StopResponse {}))
    }

    async fn kill(&self, req: Request<pb::KillRequest>) -> Res<pb::KillResponse> {
        let (rt, r) = (self.rt.clone(), req.into_inner());
        detached(
            &self.ops,
            async move { rt.kill(&r.id, &r.signal, r.all).await },
        )
        .await?;
        Ok(Response::new(pb::KillResponse {}))
    }

    async fn pause(&self, req: Request<pb::PauseRequest>) -> Res<pb::PauseResponse> {
        let (rt, id) = (self.rt.clone(), req.into_inner().id);
        detached(&self.ops, async move { rt.pause(&id).await }).await?;
        Ok(Response::new(pb::PauseResponse {}))
    }

    async fn unpause(&self, req: Request<pb::UnpauseRequest>) -> Res<pb::UnpauseResponse> {
        let (rt, id) = (self.rt.clone(), req.into_inner().id);
        detached(&self.ops, async move { rt.unpause(&id).await }).await?;
        Ok(Response::new(pb::UnpauseResponse {}))
    }

    async fn remove(&self, req: Request<pb::RemoveRequest>) -> Res<pb::RemoveResponse> {
        let (rt, r) = (self.rt.clone(), req.into_inner());
        detached(&self.ops, async move { rt.remove(&r.id, r.force).await }).await?;
        Ok(Response::new(pb::RemoveResponse {}))
    }

    async fn wait(&self, req: Request<pb::WaitRequest>) -> Res<pb::WaitResponse> {
        let r = req.into_inner();
        let cond = match pb::WaitCondition::try_from(r.condition) {
            Ok(pb::WaitCondition::NotRunning) => WaitCondition::NotRunning,
            Ok(pb::WaitCondition::NextExit) => WaitCondition::NextExit,
            Ok(pb::WaitCondition::Removed) => WaitCondition::Removed,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "invalid wait condition {}: use NOT_RUNNING, NEXT_EXIT or REMOVED",
                    r.condition
                )))
            }
        };
        let exit = self.rt.wait(&r.id, cond, r.exit_count).await?;
        Ok(Response::new(pb::WaitResponse {
            exit_code: exit.code,
            signal: exit.signal,
            oom_killed: exit.oom_killed,
        }))
    }

    async fn update(&self, req: Request<pb::UpdateRequest>) -> Res<pb::UpdateResponse> {
        let (rt, r) = (self.rt.clone(), req.into_inner());
        let wanted = spec::ResourcesRequest::from(r.resources.unwrap_or_default());
        let now = detached(&self.ops, async move { rt.update(&r.id, wanted).await }).await?;
        Ok(Response::new(pb::UpdateResponse {
            resources: Some(crate::runtime::resources_pb(&now)),
        }))
    }

    type StatsStream = Pin<Box<dyn Stream<Item = Result<pb::StatsResponse, Status>> + Send>>;

    async fn stats(&self, req: Request<pb::StatsRequest>) -> Res<Self::StatsStream> {
        let r = req.into_inner();
        let interval = match r.interval_ms {
            0 => 1000,
            n if n < 100 => {
                return Err(Status::invalid_argument(format!(
                    "invalid interval_ms {n}: use 0 for 1000, or at least 100"
                )))
            }
            n => n,
        };
        let q = crate::runtime::StatsQuery {
            keys: r.ids,
            stream: r.stream,
            interval: std::time::Duration::from_millis(interval.into()),
        };
        let rx = self.rt.stats(q)?;
        Ok(Response::new(Box::pin(tokio_stream::StreamExt::map(
            ReceiverStream::new(rx),
            Ok,
        ))))
    }

    type LogsStream = Pin<Box<dyn Stream<Item = Result<pb::LogEntry, Status>> + Send>>;

    async fn logs(&self, req: Request<pb::LogsRequest>) -> Res<Self::LogsStream> {
        let r = req.into_inner();
        let both = !r.stdout && !r.stderr;
        let q = crate::runtime::LogsQuery {
            follow: r.follow,
            tail: r.tail.map(|n| n as usize),
            since: r.since.as_ref().map(events::nanos),
            until: r.until.as_ref().map(events::nanos),
            timestamps: r.timestamps,
            stdout: r.stdout || both,
            stderr: r.stderr || both,
        };
        let rx = self.rt.logs(&r.id, q)?;
        Ok(Response::new(Box::pin(tokio_stream::StreamExt::map(
            ReceiverStream::new(rx),
            Ok,
        ))))
    }

    async fn inspect(&self, req: Request<pb::InspectRequest>) -> Res<pb::InspectResponse> {
        let container = self.rt.inspect(&req.into_inner().id)?;
        Ok(Response::new(pb::InspectResponse {
            container: Some(container),
        }))
    }

    async fn list(&self, req: Request<pb::ListRequest>) -> Res<pb::ListResponse> {
        let containers = self.rt.list(req.into_inner().all);
        Ok(Response::new(pb::ListResponse { containers }))
    }
}

pub struct EventsService {
    pub bus: Arc<Bus>,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

#[tonic::async_trait]
impl Events for EventsService {
    type SubscribeStream = EventStream;

    async fn subscribe(&self, req: Request<pb::SubscribeRequest>) -> Res<Self::SubscribeStream> {
        let r = req.into_inner();
        if let Some(a) = r
            .actions
            .iter()
            .find(|a| pb::Action::try_from(**a).is_err())
        {
            return Err(Status::invalid_argument(format!("invalid action {a}")));
        }
        let start = match (r.since_seq, &r.since) {
            (Some(_), Some(_)) => {
                return Err(Status::invalid_argument(
                    "give since_seq or since, not both",
                ))
            }
            (Some(seq), None) => Start::After(seq),
            (None, Some(t)) => Start::At(events::nanos(t)),
            (None, None) => Start::Now,
        };
        let until = r.until.as_ref().map(events::nanos);
        if let (Start::At(since), Some(until)) = (start, until) {
            if until < since {
                return Err(Status::invalid_argument("until is before since"));
            }
        }
        let filter = Filter {
            containers: r.containers,
            actions: r.actions,
            labels: r.labels.into_iter().collect(),
        };
        let events = self.bus.subscribe(filter, start, until)?;
        let stream = tokio_stream::StreamExt::map(events, |r| r.map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }
}
