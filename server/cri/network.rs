//! Pods' network: the CNI configuration in the conf dir (the first file
//! by name, as the kubelet expects; its plugins do all the wiring), or
//! with none there a berth bridge network of its own (`POD_NETWORK`), on
//! the pod CIDR the kubelet sends in UpdateRuntimeConfig, or until it
//! sends one on a free subnet berth picks as for any network (so that a
//! fresh host runs pods, and two daemons' pods never share a subnet).
//! Made at the first pod that needs it; a later CIDR replaces it once no
//! pod is on it.

use crate::runtime::NewNetwork;
use serde_json::{json, Value};
use std::path::PathBuf;
use tonic::Status;

/// The berth network pods are on.
pub const POD_NETWORK: &str = "cri-pods";

/// Where CNI configuration is looked for, and the pod CIDR asked for.
pub struct PodNetwork {
    conf_dir: PathBuf,
    cidr: std::sync::Mutex<Option<String>>,
}

impl PodNetwork {
    pub fn new(conf_dir: PathBuf) -> PodNetwork {
        PodNetwork {
            conf_dir,
            cidr: Default::default(),
        }
    }

    /// The configuration list of the first file of the conf dir, if there
    /// is one (a single plugin's configuration becomes a list of it); an
    /// error if that file cannot be used.
    pub fn configured(&self) -> Result<Option<String>, String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.conf_dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("conf" | "conflist" | "json")
                )
            })
            .collect();
        files.sort();
        let Some(file) = files.first() else {
            return Ok(None);
        };
        let bad = |why: String| format!("CNI configuration {}: {why}", file.display());
        let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
        let conf: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let list = match conf.get("plugins") {
            Some(_) => conf,
            None => {
                json!({"cniVersion": conf["cniVersion"], "name": conf["name"], "plugins": [conf]})
            }
        };
        let text = list.to_string();
        crate::spec::cni_config(&text, Vec::new()).map_err(|e| bad(e.to_string()))?;
        Ok(Some(text))
    }
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
