//! The Containers service: each request converted, handed to the runtime,
//! and its result converted back.

use super::convert;
use crate::runtime::{Error, Runtime};
use crate::spec;
use berth::pb::{self, containers_server::Containers};
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub struct ContainersService {
    pub rt: Arc<Runtime>,
    pub images: Arc<crate::image::Images>,
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
        let (request, image_held) =
            super::images::with_image(&self.images, req.into_inner()).await?;
        let rt = self.rt.clone();
        let (id, name) = detached(&self.ops, async move {
            let created = rt.create(request).await;
            drop(image_held);
            created
        })
        .await?;
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
        let cond = convert::wait_condition(r.condition).map_err(|c| {
            Status::invalid_argument(format!(
                "invalid wait condition {c}: use NOT_RUNNING, NEXT_EXIT, REMOVED, HEALTHY or UNHEALTHY"
            ))
        })?;
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
        let restart = r
            .restart_policy
            .map(|p| spec::RestartPolicy::parse(&p.name, p.maximum_retry_count))
            .transpose()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (now, restart) = detached(
            &self.ops,
            async move { rt.update(&r.id, wanted, restart).await },
        )
        .await?;
        Ok(Response::new(pb::UpdateResponse {
            resources: Some(convert::resources(&now)),
            restart_policy: Some(convert::restart_policy(restart)),
        }))
    }

    type StatsStream = Pin<Box<dyn Stream<Item = Result<pb::StatsResponse, Status>> + Send>>;

    async fn stats(&self, req: Request<pb::StatsRequest>) -> Res<Self::StatsStream> {
        let r = req.into_inner();
        let interval = match r.interval_milliseconds {
            0 => 1000,
            n if n < 100 => {
                return Err(Status::invalid_argument(format!(
                    "invalid interval_milliseconds {n}: use 0 for 1000, or at least 100"
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
            |s| Ok(convert::samples(s)),
        ))))
    }

    type LogsStream = Pin<Box<dyn Stream<Item = Result<pb::LogEntry, Status>> + Send>>;

    async fn logs(&self, req: Request<pb::LogsRequest>) -> Res<Self::LogsStream> {
        let r = req.into_inner();
        let q = crate::runtime::LogsQuery::from(&r);
        let rx = self.rt.logs(&r.id, q)?;
        Ok(Response::new(Box::pin(tokio_stream::StreamExt::map(
            ReceiverStream::new(rx),
            |l| Ok(convert::log_entry(l)),
        ))))
    }

    async fn inspect(&self, req: Request<pb::InspectRequest>) -> Res<pb::InspectResponse> {
        let container = self.rt.inspect(&req.into_inner().id)?;
        Ok(Response::new(pb::InspectResponse {
            log_path: self.rt.log_path(&container.id).display().to_string(),
            container: Some(convert::container(&container)),
        }))
    }

    async fn list(&self, req: Request<pb::ListRequest>) -> Res<pb::ListResponse> {
        let req = req.into_inner();
        let records = self.rt.list(req.all);
        let mut page = super::list::page(&records, &req)?;
        if req.size {
            let rt = self.rt.clone();
            page = tokio::task::spawn_blocking(move || {
                for c in &mut page.containers {
                    // Gone meanwhile: no sizes.
                    if let Ok((rw, root)) = rt.sizes(&c.id) {
                        c.size_rw_bytes = Some(rw as i64);
                        c.size_root_fs_bytes = Some(root as i64);
                    }
                }
                page
            })
            .await
            .map_err(|e| Status::internal(format!("container sizes: {e}")))?;
        }
        Ok(Response::new(page))
    }

    type AttachStream = super::attach::AttachStream;

    async fn attach(
        &self,
        req: Request<tonic::Streaming<pb::AttachRequest>>,
    ) -> Res<Self::AttachStream> {
        let stream = super::attach::attach(&self.rt, &self.ops, req.into_inner()).await?;
        Ok(Response::new(stream))
    }

    type ExecStream = super::exec::ExecStream;

    async fn exec(&self, req: Request<tonic::Streaming<pb::ExecRequest>>) -> Res<Self::ExecStream> {
        let stream = super::exec::exec(&self.rt, &self.ops, req.into_inner()).await?;
        Ok(Response::new(stream))
    }

    async fn exec_sync(&self, req: Request<pb::ExecSyncRequest>) -> Res<pb::ExecSyncResponse> {
        let r = super::exec::exec_sync(&self.rt, &self.ops, req.into_inner()).await?;
        Ok(Response::new(r))
    }

    async fn restart(&self, req: Request<pb::RestartRequest>) -> Res<pb::RestartResponse> {
        let (rt, r) = (self.rt.clone(), req.into_inner());
        detached(&self.ops, async move {
            rt.restart(&r.id, r.timeout_seconds).await
        })
        .await?;
        Ok(Response::new(pb::RestartResponse {}))
    }

    async fn rename(&self, req: Request<pb::RenameRequest>) -> Res<pb::RenameResponse> {
        let (rt, r) = (self.rt.clone(), req.into_inner());
        detached(&self.ops, async move { rt.rename(&r.id, &r.name).await }).await?;
        Ok(Response::new(pb::RenameResponse {}))
    }

    async fn top(&self, req: Request<pb::TopRequest>) -> Res<pb::TopResponse> {
        let processes = self.rt.top(&req.into_inner().id).await?;
        Ok(Response::new(pb::TopResponse {
            processes: processes.into_iter().map(convert::process).collect(),
        }))
    }

    async fn prune(&self, req: Request<pb::PruneRequest>) -> Res<pb::PruneResponse> {
        let (rt, r) = (self.rt.clone(), req.into_inner());
        let labels = r.labels.into_iter().collect();
        let until = r.until.as_ref().map(crate::events::nanos);
        let (removed, reclaimed_bytes) =
            detached(&self.ops, async move { rt.prune(&labels, until).await }).await?;
        Ok(Response::new(pb::PruneResponse {
            removed,
            reclaimed_bytes,
        }))
    }
}
