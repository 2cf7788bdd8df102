//! The CRI's RuntimeService: each call converts its request and hands
//! it to pods.rs, containers.rs or network.rs; the runtime's name,
//! version, conditions and cgroup driver are here. Calls not served yet
//! answer UNIMPLEMENTED, which the kubelet and crictl report as such.

use super::CriRuntime;
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_server::RuntimeService;
use tonic::{Request, Response, Status};

/// The runtime's conditions: it runs containers, and pods have a network
/// (the conf dir's CNI configuration, or berth's own pod network, made
/// when the first pod needs it) unless the conf dir's first file cannot
/// be used.
fn conditions(network: &super::network::PodNetwork) -> Vec<cri::RuntimeCondition> {
    let ready = |kind: &str| cri::RuntimeCondition {
        r#type: kind.into(),
        status: true,
        ..Default::default()
    };
    let network = match network.configured() {
        Ok(_) => ready("NetworkReady"),
        Err(why) => cri::RuntimeCondition {
            r#type: "NetworkReady".into(),
            status: false,
            reason: "NetworkPluginNotReady".into(),
            message: why,
        },
    };
    vec![ready("RuntimeReady"), network]
}

/// Whether the kernel makes mounts read-only recursively
/// (mount_setattr(2), Linux 5.12).
fn recursive_read_only() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    crate::sys::seccomp::kernel_version(release.trim()).is_some_and(|v| v >= (5, 12))
}

/// Runs `work` (stats: it reads every container's cgroup files) on a
/// thread where blocking is allowed, not on the server's.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Status::internal(format!("stats failed: {e}")))
}

/// The impl, with every call not served yet answering UNIMPLEMENTED
/// (generated: the trait has no defaults).
macro_rules! runtime_service {
    ({ $($served:item)* } not_yet { $($name:ident($req:ident) -> $res:ident;)* }) => {
        #[tonic::async_trait]
        impl RuntimeService for CriRuntime {
            $($served)*
            $(
                async fn $name(&self, _: Request<cri::$req>) -> Result<Response<cri::$res>, Status> {
                    Err(Status::unimplemented(concat!(
                        "berth does not serve ",
                        stringify!($name),
                        " yet"
                    )))
                }
            )*
        }
    };
}

runtime_service! {
    {
        type GetContainerEventsStream = super::events::EventStream;

        async fn version(
            &self,
            _: Request<cri::VersionRequest>,
        ) -> Result<Response<cri::VersionResponse>, Status> {
            Ok(Response::new(cri::VersionResponse {
                version: "0.1.0".into(),
                runtime_name: super::RUNTIME_NAME.into(),
                runtime_version: env!("CARGO_PKG_VERSION").into(),
                runtime_api_version: super::RUNTIME_API_VERSION.into(),
            }))
        }

        async fn status(
            &self,
            req: Request<cri::StatusRequest>,
        ) -> Result<Response<cri::StatusResponse>, Status> {
            let mut info = std::collections::HashMap::new();
            if req.into_inner().verbose {
                let counts = self.rt.counts();
                info.insert(
                    "containers".to_string(),
                    serde_json::json!({"running": counts.running, "paused": counts.paused, "stopped": counts.stopped})
                        .to_string(),
                );
            }
            Ok(Response::new(cri::StatusResponse {
                status: Some(cri::RuntimeStatus {
                    conditions: conditions(&self.network),
                }),
                info,
                runtime_handlers: vec![cri::RuntimeHandler {
                    name: String::new(),
                    features: Some(cri::RuntimeHandlerFeatures {
                        recursive_read_only_mounts: recursive_read_only(),
                        user_namespaces: false,
                    }),
                }],
                features: Some(cri::RuntimeFeatures {
                    supplemental_groups_policy: true,
                }),
            }))
        }

        async fn runtime_config(
            &self,
            _: Request<cri::RuntimeConfigRequest>,
        ) -> Result<Response<cri::RuntimeConfigResponse>, Status> {
            // berth makes its containers' cgroups itself, under its cgroup
            // parent, on v1 and v2 alike.
            Ok(Response::new(cri::RuntimeConfigResponse {
                linux: Some(cri::LinuxRuntimeConfiguration {
                    cgroup_driver: cri::CgroupDriver::Cgroupfs as i32,
                }),
            }))
        }

        async fn run_pod_sandbox(
            &self,
            req: Request<cri::RunPodSandboxRequest>,
        ) -> Result<Response<cri::RunPodSandboxResponse>, Status> {
            self.run_sandbox(req.into_inner()).await.map(Response::new)
        }

        async fn stop_pod_sandbox(
            &self,
            req: Request<cri::StopPodSandboxRequest>,
        ) -> Result<Response<cri::StopPodSandboxResponse>, Status> {
            self.stop_sandbox(&req.into_inner().pod_sandbox_id).await?;
            Ok(Response::new(cri::StopPodSandboxResponse {}))
        }

        async fn remove_pod_sandbox(
            &self,
            req: Request<cri::RemovePodSandboxRequest>,
        ) -> Result<Response<cri::RemovePodSandboxResponse>, Status> {
            self.remove_sandbox(&req.into_inner().pod_sandbox_id).await?;
            Ok(Response::new(cri::RemovePodSandboxResponse {}))
        }

        async fn pod_sandbox_status(
            &self,
            req: Request<cri::PodSandboxStatusRequest>,
        ) -> Result<Response<cri::PodSandboxStatusResponse>, Status> {
            let r = req.into_inner();
            self.sandbox_status(&r.pod_sandbox_id, r.verbose).map(Response::new)
        }

        async fn list_pod_sandbox(
            &self,
            req: Request<cri::ListPodSandboxRequest>,
        ) -> Result<Response<cri::ListPodSandboxResponse>, Status> {
            let items = self.list_sandboxes(req.into_inner().filter);
            Ok(Response::new(cri::ListPodSandboxResponse { items }))
        }

        async fn create_container(
            &self,
            req: Request<cri::CreateContainerRequest>,
        ) -> Result<Response<cri::CreateContainerResponse>, Status> {
            CriRuntime::create_container(self, req.into_inner()).await.map(Response::new)
        }

        async fn start_container(
            &self,
            req: Request<cri::StartContainerRequest>,
        ) -> Result<Response<cri::StartContainerResponse>, Status> {
            CriRuntime::start_container(self, &req.into_inner().container_id).await?;
            Ok(Response::new(cri::StartContainerResponse {}))
        }

        async fn stop_container(
            &self,
            req: Request<cri::StopContainerRequest>,
        ) -> Result<Response<cri::StopContainerResponse>, Status> {
            let r = req.into_inner();
            CriRuntime::stop_container(self, &r.container_id, r.timeout).await?;
            Ok(Response::new(cri::StopContainerResponse {}))
        }

        async fn remove_container(
            &self,
            req: Request<cri::RemoveContainerRequest>,
        ) -> Result<Response<cri::RemoveContainerResponse>, Status> {
            CriRuntime::remove_container(self, &req.into_inner().container_id).await?;
            Ok(Response::new(cri::RemoveContainerResponse {}))
        }

        async fn list_containers(
            &self,
            req: Request<cri::ListContainersRequest>,
        ) -> Result<Response<cri::ListContainersResponse>, Status> {
            let containers = CriRuntime::list_containers(self, req.into_inner().filter);
            Ok(Response::new(cri::ListContainersResponse { containers }))
        }

        async fn container_status(
            &self,
            req: Request<cri::ContainerStatusRequest>,
        ) -> Result<Response<cri::ContainerStatusResponse>, Status> {
            let r = req.into_inner();
            CriRuntime::container_status(self, &r.container_id, r.verbose).map(Response::new)
        }

        async fn exec_sync(
            &self,
            req: Request<cri::ExecSyncRequest>,
        ) -> Result<Response<cri::ExecSyncResponse>, Status> {
            CriRuntime::exec_sync(self, req.into_inner()).await.map(Response::new)
        }

        async fn exec(
            &self,
            req: Request<cri::ExecRequest>,
        ) -> Result<Response<cri::ExecResponse>, Status> {
            self.exec_url(req.into_inner()).map(Response::new)
        }

        async fn attach(
            &self,
            req: Request<cri::AttachRequest>,
        ) -> Result<Response<cri::AttachResponse>, Status> {
            self.attach_url(req.into_inner()).map(Response::new)
        }

        async fn port_forward(
            &self,
            req: Request<cri::PortForwardRequest>,
        ) -> Result<Response<cri::PortForwardResponse>, Status> {
            self.port_forward_url(req.into_inner()).map(Response::new)
        }

        async fn reopen_container_log(
            &self,
            req: Request<cri::ReopenContainerLogRequest>,
        ) -> Result<Response<cri::ReopenContainerLogResponse>, Status> {
            let c = self.container(&req.into_inner().container_id)?;
            self.rt.reopen_log(&c.id).await?;
            Ok(Response::new(cri::ReopenContainerLogResponse {}))
        }

        async fn container_stats(
            &self,
            req: Request<cri::ContainerStatsRequest>,
        ) -> Result<Response<cri::ContainerStatsResponse>, Status> {
            let (this, id) = (self.clone(), req.into_inner().container_id);
            let stats = blocking(move || CriRuntime::container_stats(&this, &id)).await??;
            Ok(Response::new(cri::ContainerStatsResponse { stats: Some(stats) }))
        }

        async fn list_container_stats(
            &self,
            req: Request<cri::ListContainerStatsRequest>,
        ) -> Result<Response<cri::ListContainerStatsResponse>, Status> {
            let (this, filter) = (self.clone(), req.into_inner().filter);
            let stats = blocking(move || CriRuntime::list_container_stats(&this, filter)).await?;
            Ok(Response::new(cri::ListContainerStatsResponse { stats }))
        }

        async fn pod_sandbox_stats(
            &self,
            req: Request<cri::PodSandboxStatsRequest>,
        ) -> Result<Response<cri::PodSandboxStatsResponse>, Status> {
            let (this, id) = (self.clone(), req.into_inner().pod_sandbox_id);
            let stats = blocking(move || this.pod_stats(&id)).await??;
            Ok(Response::new(cri::PodSandboxStatsResponse { stats: Some(stats) }))
        }

        async fn list_pod_sandbox_stats(
            &self,
            req: Request<cri::ListPodSandboxStatsRequest>,
        ) -> Result<Response<cri::ListPodSandboxStatsResponse>, Status> {
            let (this, filter) = (self.clone(), req.into_inner().filter);
            let stats = blocking(move || this.list_pod_stats(filter)).await?;
            Ok(Response::new(cri::ListPodSandboxStatsResponse { stats }))
        }

        async fn update_runtime_config(
            &self,
            req: Request<cri::UpdateRuntimeConfigRequest>,
        ) -> Result<Response<cri::UpdateRuntimeConfigResponse>, Status> {
            let cidr = req
                .into_inner()
                .runtime_config
                .and_then(|c| c.network_config)
                .map(|n| n.pod_cidr)
                .unwrap_or_default();
            self.set_pod_cidr(&cidr)?;
            Ok(Response::new(cri::UpdateRuntimeConfigResponse {}))
        }

        async fn get_container_events(
            &self,
            _: Request<cri::GetEventsRequest>,
        ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
            self.container_events().map(Response::new)
        }

        async fn update_container_resources(
            &self,
            req: Request<cri::UpdateContainerResourcesRequest>,
        ) -> Result<Response<cri::UpdateContainerResourcesResponse>, Status> {
            let r = req.into_inner();
            let c = self.container(&r.container_id)?;
            if let Some(linux) = &r.linux {
                let wanted = super::resources::request(linux);
                self.rt.update(&c.id, wanted, None).await?;
            }
            Ok(Response::new(cri::UpdateContainerResourcesResponse {}))
        }
    }
    not_yet {
        checkpoint_container(CheckpointContainerRequest) -> CheckpointContainerResponse;
        list_metric_descriptors(ListMetricDescriptorsRequest) -> ListMetricDescriptorsResponse;
        list_pod_sandbox_metrics(ListPodSandboxMetricsRequest) -> ListPodSandboxMetricsResponse;
    }
}
