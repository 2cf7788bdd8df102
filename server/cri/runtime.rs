//! The CRI's RuntimeService: the runtime's name and version, its
//! conditions, and the cgroup driver it manages cgroups with. Pods and
//! containers are not served yet: those calls answer UNIMPLEMENTED, which
//! the kubelet and crictl report as such.

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_server::RuntimeService;
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct CriRuntime {
    pub rt: Arc<crate::runtime::Runtime>,
}

/// The runtime's conditions: it runs containers, and pods have no network
/// until berth runs pods (NetworkReady false, with the reason the kubelet
/// shows).
fn conditions() -> Vec<cri::RuntimeCondition> {
    vec![
        cri::RuntimeCondition {
            r#type: "RuntimeReady".into(),
            status: true,
            ..Default::default()
        },
        cri::RuntimeCondition {
            r#type: "NetworkReady".into(),
            status: false,
            reason: "NetworkPluginNotReady".into(),
            message: "berth does not run pod sandboxes yet".into(),
        },
    ]
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
        type GetContainerEventsStream =
            Pin<Box<dyn tokio_stream::Stream<Item = Result<cri::ContainerEventResponse, Status>> + Send>>;

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
                    conditions: conditions(),
                }),
                info,
                runtime_handlers: vec![cri::RuntimeHandler {
                    name: String::new(),
                    features: Some(cri::RuntimeHandlerFeatures::default()),
                }],
                features: Some(cri::RuntimeFeatures::default()),
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

        async fn get_container_events(
            &self,
            _: Request<cri::GetEventsRequest>,
        ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
            Err(Status::unimplemented("berth does not serve get_container_events yet"))
        }
    }
    not_yet {
        run_pod_sandbox(RunPodSandboxRequest) -> RunPodSandboxResponse;
        stop_pod_sandbox(StopPodSandboxRequest) -> StopPodSandboxResponse;
        remove_pod_sandbox(RemovePodSandboxRequest) -> RemovePodSandboxResponse;
        pod_sandbox_status(PodSandboxStatusRequest) -> PodSandboxStatusResponse;
        list_pod_sandbox(ListPodSandboxRequest) -> ListPodSandboxResponse;
        create_container(CreateContainerRequest) -> CreateContainerResponse;
        start_container(StartContainerRequest) -> StartContainerResponse;
        stop_container(StopContainerRequest) -> StopContainerResponse;
        remove_container(RemoveContainerRequest) -> RemoveContainerResponse;
        list_containers(ListContainersRequest) -> ListContainersResponse;
        container_status(ContainerStatusRequest) -> ContainerStatusResponse;
        update_container_resources(UpdateContainerResourcesRequest) -> UpdateContainerResourcesResponse;
        reopen_container_log(ReopenContainerLogRequest) -> ReopenContainerLogResponse;
        exec_sync(ExecSyncRequest) -> ExecSyncResponse;
        exec(ExecRequest) -> ExecResponse;
        attach(AttachRequest) -> AttachResponse;
        port_forward(PortForwardRequest) -> PortForwardResponse;
        container_stats(ContainerStatsRequest) -> ContainerStatsResponse;
        list_container_stats(ListContainerStatsRequest) -> ListContainerStatsResponse;
        pod_sandbox_stats(PodSandboxStatsRequest) -> PodSandboxStatsResponse;
        list_pod_sandbox_stats(ListPodSandboxStatsRequest) -> ListPodSandboxStatsResponse;
        update_runtime_config(UpdateRuntimeConfigRequest) -> UpdateRuntimeConfigResponse;
        checkpoint_container(CheckpointContainerRequest) -> CheckpointContainerResponse;
        list_metric_descriptors(ListMetricDescriptorsRequest) -> ListMetricDescriptorsResponse;
        list_pod_sandbox_metrics(ListPodSandboxMetricsRequest) -> ListPodSandboxMetricsResponse;
    }
}
