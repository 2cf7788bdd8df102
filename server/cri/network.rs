//! Pods' network: a berth bridge network of its own (`POD_NETWORK`), on
//! the pod CIDR the kubelet sends in UpdateRuntimeConfig, or until it
//! sends one on a free subnet berth picks as for any network (so that a
//! fresh host runs pods, and two daemons' pods never share a subnet).
//! Made at the first pod that needs it; a later CIDR replaces it once no
//! pod is on it.

use crate::runtime::NewNetwork;
use tonic::Status;

/// The berth network pods are on.
pub const POD_NETWORK: &str = "cri-pods";

/// The pod CIDR asked for, if any.
#[derive(Default)]
pub struct PodNetwork {
    cidr: std::sync::Mutex<Option<String>>,
}

impl super::CriRuntime {
    /// The network a new pod goes on, made or remade as the pod CIDR says.
    pub(super) async fn pod_network(&self) -> Result<String, Status> {
        let wanted = self
            .network
            .cidr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Ok(view) = self.rt.network_inspect(POD_NETWORK) {
            let on = view.record.subnet.to_string();
            let Some(wanted) = wanted.as_ref().filter(|w| **w != on) else {
                return Ok(POD_NETWORK.into());
            };
            if !view.endpoints.is_empty() {
                tracing::warn!(network = POD_NETWORK, subnet = %on, pod_cidr = %wanted, "pods still on the old subnet: new pods go there too");
                return Ok(POD_NETWORK.into());
            }
            match self.rt.network_remove(POD_NETWORK).await {
                Ok(()) | Err(crate::runtime::Error::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(network = POD_NETWORK, error = %e, "cannot replace the pod network");
                    return Ok(POD_NETWORK.into());
                }
            }
        }
        let made = self.rt.network_create(NewNetwork {
            name: POD_NETWORK.into(),
            subnet: wanted.clone().unwrap_or_default(),
            labels: [("io.berth.cri".to_string(), "pods".to_string())].into(),
            ..Default::default()
        });
        match made {
            Ok(_) => {
                tracing::info!(network = POD_NETWORK, pod_cidr = ?wanted, "pod network made");
                Ok(POD_NETWORK.into())
            }
            // Made by another pod meanwhile.
            Err(crate::runtime::Error::AlreadyExists(_)) => Ok(POD_NETWORK.into()),
            Err(e) => Err(Status::from(e)),
        }
    }

    /// The kubelet's pod CIDR, for the pods to come.
    pub(super) fn set_pod_cidr(&self, cidr: &str) -> Result<(), Status> {
        if cidr.is_empty() {
            return Ok(());
        }
        let parsed: crate::network::Subnet = cidr
            .parse()
            .map_err(|e| Status::invalid_argument(format!("invalid pod CIDR {cidr:?}: {e}")))?;
        tracing::info!(pod_cidr = %parsed, "pod CIDR");
        *self.network.cidr.lock().unwrap_or_else(|p| p.into_inner()) = Some(parsed.to_string());
        Ok(())
    }
}
