//! Pod sandboxes: a berth container whose PID 1 is berth's pause process
//! (`Spec::sandbox`), holding the pod's network, IPC and UTS namespaces
//! (and PID when the pod shares one) for the containers that join them.
//! Its CRI config is kept verbatim with it (`Spec::extension`): the
//! metadata, labels and annotations the CRI gives back come from there.

use super::{berth_name, ignore_gone, kept, matches_labels, Kept, SANDBOX};
use crate::runtime::{Record, Status as State};
use crate::spec::{PortRequest, Request};
use k8s_cri::v1 as cri;
use prost::Message;
use tonic::Status;

impl super::CriRuntime {
    pub(super) async fn run_sandbox(
        &self,
        r: cri::RunPodSandboxRequest,
    ) -> Result<cri::RunPodSandboxResponse, Status> {
        let config = r
            .config
            .ok_or_else(|| Status::invalid_argument("a pod sandbox needs a config"))?;
        if !r.runtime_handler.is_empty() {
            return Err(Status::invalid_argument(format!(
                "runtime handler {:?}: berth has only the default one (\"\")",
                r.runtime_handler
            )));
        }
        let meta = config.metadata.clone().unwrap_or_default();
        if meta.name.is_empty() || meta.uid.is_empty() || meta.namespace.is_empty() {
            return Err(Status::invalid_argument(
                "a pod sandbox's metadata needs a name, a uid and a namespace",
            ));
        }
        let linux = config.linux.clone().unwrap_or_default();
        let security = linux.security_context.clone().unwrap_or_default();
        let ns = security.namespace_options.unwrap_or_default();
        let host_net = ns.network == cri::NamespaceMode::Node as i32;
        let mut req = Request {
            name: berth_name(
                &["POD", &meta.name, &meta.namespace, &meta.uid],
                meta.attempt,
            ),
            args: vec!["pause".into()],
            sandbox: true,
            labels: config.labels.clone().into_iter().collect(),
            hostname: match host_net {
                true => String::new(),
                false => config.hostname.clone(),
            },
            pid_mode: mode(ns.pid, "").into(),
            ipc_mode: mode(ns.ipc, "shareable").into(),
            uts_mode: if host_net { "host" } else { "" }.into(),
            extension: Some(crate::spec::Extension {
                kind: SANDBOX.into(),
                data: config.encode_to_vec(),
            }),
            ..Default::default()
        };
        req.labels.insert(super::CRI_LABEL.into(), "sandbox".into());
        // The kubelet's pod cgroup (cgroupfs: "/kubepods/burstable/pod…").
        req.cgroup_parent = linux.cgroup_parent.clone();
        req.tuning.sysctls = linux.sysctls.clone().into_iter().collect();
        req.tuning.oom_score_adj = super::oom_score_adj(super::SANDBOX_OOM_SCORE_ADJ);
        if let Some(dns) = &config.dns_config {
            req.dns = dns.servers.clone();
            req.dns_search = dns.searches.clone();
            req.dns_options = dns.options.clone();
        }
        if host_net {
            req.network = "host".into();
        } else {
            // The conf dir's CNI configuration, else berth's pod network.
            match self
                .network
                .configured()
                .map_err(Status::failed_precondition)?
            {
                Some(list) => req.cni = Some(list),
                None => req.network = self.pod_network().await?,
            }
            req.ports = config
                .port_mappings
                .iter()
                .filter(|p| p.host_port > 0)
                .map(port)
                .collect::<Result<_, _>>()?;
        }
        let (id, name) = self.rt.create(req).await.map_err(Status::from)?;
        if let Err(e) = self.rt.start(&id).await {
            if let Err(e) = self.rt.remove(&id, true).await {
                tracing::warn!(sandbox = %id, error = %e, "cannot remove the sandbox that did not start");
            }
            return Err(e.into());
        }
        tracing::info!(sandbox = %id, name = %name, "pod sandbox running");
        Ok(cri::RunPodSandboxResponse { pod_sandbox_id: id })
    }

    /// Stops every container of the pod (SIGKILL, as the kubelet has
    /// stopped them with their grace already), then the pause process;
    /// its network goes with it. A sandbox that is not there is stopped.
    pub(super) async fn stop_sandbox(&self, id: &str) -> Result<(), Status> {
        let Some(sandbox) = self.sandbox(id)? else {
            return Ok(());
        };
        for member in self.rt.members(&sandbox.id) {
            ignore_gone(self.rt.stop(&member, Some(0), Some("KILL")).await)?;
        }
        ignore_gone(self.rt.stop(&sandbox.id, None, None).await)
    }

    pub(super) async fn remove_sandbox(&self, id: &str) -> Result<(), Status> {
        let Some(sandbox) = self.sandbox(id)? else {
            return Ok(());
        };
        ignore_gone(self.rt.remove(&sandbox.id, true).await)
    }

    pub(super) fn sandbox_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<cri::PodSandboxStatusResponse, Status> {
        let r = self
            .sandbox(id)?
            .ok_or_else(|| Status::not_found(format!("no pod sandbox {id:?}")))?;
        let config = sandbox_config(&r);
        let ns = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone())
            .unwrap_or_default();
        let ip = r
            .networks
            .first()
            .map(|a| a.ip.to_string())
            .unwrap_or_default();
        let mut info = std::collections::HashMap::new();
        if verbose {
            info.insert(
                "info".to_string(),
                serde_json::json!({"pid": r.pid, "name": r.spec.name}).to_string(),
            );
        }
        Ok(cri::PodSandboxStatusResponse {
            status: Some(cri::PodSandboxStatus {
                id: r.id.clone(),
                metadata: config.metadata,
                state: state(&r) as i32,
                created_at: r.created_at,
                network: Some(cri::PodSandboxNetworkStatus {
                    ip,
                    additional_ips: Vec::new(),
                }),
                linux: Some(cri::LinuxPodSandboxStatus {
                    namespaces: Some(cri::Namespace { options: Some(ns) }),
                }),
                labels: config.labels,
                annotations: config.annotations,
                runtime_handler: String::new(),
            }),
            info,
            containers_statuses: Vec::new(),
            timestamp: 0,
        })
    }

    pub(super) fn list_sandboxes(
        &self,
        filter: Option<cri::PodSandboxFilter>,
    ) -> Vec<cri::PodSandbox> {
        let filter = filter.unwrap_or_default();
        self.rt
            .list(true)
            .into_iter()
            .filter(|r| kept(r) == Some(Kept::Sandbox))
            .filter(|r| r.id.starts_with(&filter.id))
            .filter(|r| filter.state.is_none_or(|s| s.state == state(r) as i32))
            .filter_map(|r| {
                let config = sandbox_config(&r);
                matches_labels(&config.labels, &filter.label_selector).then(|| cri::PodSandbox {
                    id: r.id.clone(),
                    metadata: config.metadata,
                    state: state(&r) as i32,
                    created_at: r.created_at,
                    labels: config.labels,
                    annotations: config.annotations,
                    runtime_handler: String::new(),
                })
            })
            .collect()
    }

    /// The sandbox `id` names (an id, a prefix of one, or its name); None
    /// if there is none.
    pub(super) fn sandbox(&self, id: &str) -> Result<Option<Record>, Status> {
        match self.rt.inspect(id) {
            Ok(r) if kept(&r) == Some(Kept::Sandbox) => Ok(Some(r)),
            Ok(_) | Err(crate::runtime::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The CRI's state of a sandbox: ready while its pause process runs.
fn state(r: &Record) -> cri::PodSandboxState {
    match r.status {
        State::Running | State::Paused => cri::PodSandboxState::SandboxReady,
        _ => cri::PodSandboxState::SandboxNotready,
    }
}

/// The config a sandbox was run with.
pub(super) fn sandbox_config(r: &Record) -> cri::PodSandboxConfig {
    r.spec
        .extension
        .as_ref()
        .and_then(|e| cri::PodSandboxConfig::decode(e.data.as_slice()).ok())
        .unwrap_or_default()
}

/// berth's mode of a pod-level namespace: the host's (NODE) or the
/// sandbox's own (`own`: "shareable" for IPC, which containers join).
fn mode(m: i32, own: &'static str) -> &'static str {
    match m == cri::NamespaceMode::Node as i32 {
        true => "host",
        false => own,
    }
}

fn port(p: &cri::PortMapping) -> Result<PortRequest, Status> {
    let protocol = cri::Protocol::try_from(p.protocol)
        .map_err(|_| Status::invalid_argument(format!("unknown protocol {}", p.protocol)))?;
    let bad = |n: i32| {
        u16::try_from(n)
            .map(u32::from)
            .map_err(|_| Status::invalid_argument(format!("invalid port {n}")))
    };
    Ok(PortRequest {
        host_ip: p.host_ip.clone(),
        host_port: bad(p.host_port)?,
        container_port: bad(p.container_port)?,
        protocol: protocol.as_str_name().to_ascii_lowercase(),
    })
}
