//! The Networks service.

use crate::runtime::{network_pb, NetworkView, NewNetwork, Runtime};
use berth::pb::{self, networks_server::Networks};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct NetworksService {
    pub rt: Arc<Runtime>,
    pub ops: tokio::runtime::Handle,
}

type Res<T> = Result<Response<T>, Status>;

/// "none" and "host" as Docker lists them: modes, not networks.
fn mode(name: &str, driver: &str) -> pb::Network {
    pb::Network {
        id: name.to_string(),
        name: name.to_string(),
        driver: driver.to_string(),
        ..Default::default()
    }
}

fn view(v: NetworkView) -> pb::Network {
    let mut net = network_pb(&v.record);
    net.containers = v
        .endpoints
        .into_iter()
        .map(|(id, name, a)| pb::NetworkEndpoint {
            id,
            name,
            ip_address: format!("{}/{}", a.ip, a.prefix),
            mac_address: a.mac,
            ipv6_address: a
                .ipv6
                .map(|v6| format!("{}/{}", v6.ip, v6.prefix))
                .unwrap_or_default(),
        })
        .collect();
    net
}

#[tonic::async_trait]
impl Networks for NetworksService {
    async fn create(
        &self,
        req: Request<pb::CreateNetworkRequest>,
    ) -> Res<pb::CreateNetworkResponse> {
        let r = req.into_inner();
        let rt = self.rt.clone();
        let created = self
            .ops
            .spawn_blocking(move || {
                rt.network_create(NewNetwork {
                    name: r.name,
                    subnet: r.subnet,
                    gateway: r.gateway,
                    ipv6: r.ipv6,
                    ipv6_subnet: r.ipv6_subnet,
                    ipv6_gateway: r.ipv6_gateway,
                    mtu: r.mtu,
                    labels: r.labels.into_iter().collect(),
                    ip_range: r.ip_range,
                    aux_addresses: r.aux_addresses,
                    internal: r.internal,
                })
            })
            .await
            .map_err(|e| Status::internal(format!("operation failed: {e}")))??;
        Ok(Response::new(pb::CreateNetworkResponse {
            network: Some(network_pb(&created)),
        }))
    }

    async fn list(&self, _: Request<pb::ListNetworksRequest>) -> Res<pb::ListNetworksResponse> {
        let mut networks: Vec<pb::Network> =
            self.rt.network_list().iter().map(network_pb).collect();
        networks.extend([mode("host", "host"), mode("none", "null")]);
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Response::new(pb::ListNetworksResponse { networks }))
    }

    async fn inspect(
        &self,
        req: Request<pb::InspectNetworkRequest>,
    ) -> Res<pb::InspectNetworkResponse> {
        let key = req.into_inner().network;
        let network = match key.as_str() {
            "host" => mode("host", "host"),
            "none" => mode("none", "null"),
            _ => view(self.rt.network_inspect(&key)?),
        };
        Ok(Response::new(pb::InspectNetworkResponse {
            network: Some(network),
        }))
    }

    async fn remove(
        &self,
        req: Request<pb::RemoveNetworkRequest>,
    ) -> Res<pb::RemoveNetworkResponse> {
        let key = req.into_inner().network;
        if key == "host" || key == "none" {
            return Err(Status::failed_precondition(format!(
                "{key} is a pre-defined network and cannot be removed"
            )));
        }
        let rt = self.rt.clone();
        self.ops
            .spawn(async move { rt.network_remove(&key).await })
            .await
            .map_err(|e| Status::internal(format!("operation failed: {e}")))??;
        Ok(Response::new(pb::RemoveNetworkResponse {}))
    }

    async fn connect_container(
        &self,
        req: Request<pb::ConnectContainerRequest>,
    ) -> Res<pb::ConnectContainerResponse> {
        let r = req.into_inner();
        mode_refused(&r.network)?;
        let rt = self.rt.clone();
        self.ops
            .spawn(async move {
                rt.network_connect(&r.network, &r.container, r.aliases)
                    .await
            })
            .await
            .map_err(|e| Status::internal(format!("operation failed: {e}")))??;
        Ok(Response::new(pb::ConnectContainerResponse {}))
    }

    async fn disconnect_container(
        &self,
        req: Request<pb::DisconnectContainerRequest>,
    ) -> Res<pb::DisconnectContainerResponse> {
        let r = req.into_inner();
        mode_refused(&r.network)?;
        let rt = self.rt.clone();
        self.ops
            .spawn(async move { rt.network_disconnect(&r.network, &r.container).await })
            .await
            .map_err(|e| Status::internal(format!("operation failed: {e}")))??;
        Ok(Response::new(pb::DisconnectContainerResponse {}))
    }
}

/// "none" and "host" are modes a container is created with, not networks
/// it can join or leave.
fn mode_refused(network: &str) -> Result<(), Status> {
    match network {
        "none" | "host" => Err(Status::failed_precondition(format!(
            "{network} is a network mode, chosen at create: a container cannot join or leave it"
        ))),
        _ => Ok(()),
    }
}
