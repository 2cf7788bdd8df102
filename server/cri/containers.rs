//! CRI containers: berth containers of a pod (`Spec::pod`), joining its
//! sandbox's namespaces as the namespace options say, their image's
//! config applied as Kubernetes applies it (command replaces the
//! entrypoint, args the Cmd). The CRI config is kept verbatim with each
//! (its `log_path` made the full path), and what the CRI gives back
//! comes from there.

use super::{berth_name, ignore_gone, kept, matches_labels, Kept, CONTAINER};
use crate::runtime::{Record, Status as State};
use crate::spec::{MountRequest, Request};
use k8s_cri::v1 as cri;
use prost::Message;
use std::time::Duration;
use tonic::Status;

impl super::CriRuntime {
    pub(super) async fn create_container(
        &self,
        r: cri::CreateContainerRequest,
    ) -> Result<cri::CreateContainerResponse, Status> {
        let config = r
            .config
            .ok_or_else(|| Status::invalid_argument("a container needs a config"))?;
        let sandbox = self
            .sandbox(&r.pod_sandbox_id)?
            .ok_or_else(|| Status::not_found(format!("no pod sandbox {:?}", r.pod_sandbox_id)))?;
        let (mut req, config) = request(config, &sandbox)?;
        let image = config.image.clone().unwrap_or_default().image;
        let entrypoint = (!config.command.is_empty()).then(|| config.command.clone());
        let (found, _guard) = self.images.for_container(&image).await?;
        crate::image::run::apply(found, entrypoint, &mut req)?;
        // The CRI's labels are the config's: the image's stay out of them
        // (they are kept apart, in the extension).
        req.extension = Some(crate::spec::Extension {
            kind: CONTAINER.into(),
            data: config.encode_to_vec(),
        });
        let (id, _) = self.rt.create(req).await?;
        Ok(cri::CreateContainerResponse { container_id: id })
    }

    pub(super) async fn start_container(&self, id: &str) -> Result<(), Status> {
        let r = self.container(id)?;
        self.rt.start(&r.id).await.map_err(Status::from)
    }

    /// The stop signal, SIGKILL after `timeout` seconds (0: at once). A
    /// container that is gone or stopped is stopped.
    pub(super) async fn stop_container(&self, id: &str, timeout: i64) -> Result<(), Status> {
        let Some(r) = self.find_container(id)? else {
            return Ok(());
        };
        let stop = match timeout {
            t if t <= 0 => self.rt.stop(&r.id, Some(0), Some("KILL")).await,
            t => {
                self.rt
                    .stop(&r.id, Some(t.min(i32::MAX as i64) as i32), None)
                    .await
            }
        };
        ignore_gone(stop)
    }

    pub(super) async fn remove_container(&self, id: &str) -> Result<(), Status> {
        let Some(r) = self.find_container(id)? else {
            return Ok(());
        };
        ignore_gone(self.rt.remove(&r.id, true).await)
    }

    pub(super) fn container_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<cri::ContainerStatusResponse, Status> {
        let r = self.container(id)?;
        let config = container_config(&r);
        let (state, reason) = state(&r);
        let image = r.spec.image.as_ref();
        let mut info = std::collections::HashMap::new();
        if verbose {
            info.insert(
                "info".to_string(),
                serde_json::json!({"pid": r.pid, "name": r.spec.name, "sandboxID": r.spec.pod})
                    .to_string(),
            );
        }
        Ok(cri::ContainerStatusResponse {
            status: Some(cri::ContainerStatus {
                id: r.id.clone(),
                metadata: config.metadata.clone(),
                state: state as i32,
                created_at: r.created_at,
                started_at: r.started_at,
                finished_at: match state {
                    cri::ContainerState::ContainerExited => r.finished_at,
                    _ => 0,
                },
                exit_code: r.exit_code,
                image: config.image.clone(),
                image_ref: self.image_ref(image.map(|i| i.id.as_str()).unwrap_or_default()),
                reason: reason.into(),
                message: String::new(),
                labels: config.labels.clone(),
                annotations: config.annotations.clone(),
                mounts: config.mounts.clone(),
                log_path: config.log_path.clone(),
                resources: Some(cri::ContainerResources {
                    linux: Some(super::resources::shown(&r.spec.resources)),
                    windows: None,
                }),
                image_id: image.map(|i| i.id.clone()).unwrap_or_default(),
                // As its first process runs now.
                user: match state {
                    cri::ContainerState::ContainerRunning => {
                        crate::sys::procs::identity(r.pid as u32).map(|(uid, gid, groups)| {
                            cri::ContainerUser {
                                linux: Some(cri::LinuxContainerUser {
                                    uid: uid.into(),
                                    gid: gid.into(),
                                    supplemental_groups: groups
                                        .into_iter()
                                        .map(i64::from)
                                        .collect(),
                                }),
                            }
                        })
                    }
                    _ => None,
                },
            }),
            info,
        })
    }

    pub(super) fn list_containers(
        &self,
        filter: Option<cri::ContainerFilter>,
    ) -> Vec<cri::Container> {
        let filter = filter.unwrap_or_default();
        self.rt
            .list(true)
            .into_iter()
            .filter(|r| kept(r) == Some(Kept::Container))
            .filter(|r| r.id.starts_with(&filter.id))
            .filter(|r| r.spec.pod.starts_with(&filter.pod_sandbox_id))
            .filter(|r| filter.state.is_none_or(|s| s.state == state(r).0 as i32))
            .filter_map(|r| {
                let config = container_config(&r);
                if !matches_labels(&config.labels, &filter.label_selector) {
                    return None;
                }
                let image_id = r
                    .spec
                    .image
                    .as_ref()
                    .map(|i| i.id.clone())
                    .unwrap_or_default();
                Some(cri::Container {
                    id: r.id.clone(),
                    pod_sandbox_id: r.spec.pod.clone(),
                    metadata: config.metadata,
                    image: config.image,
                    image_ref: self.image_ref(&image_id),
                    state: state(&r).0 as i32,
                    created_at: r.created_at,
                    labels: config.labels,
                    annotations: config.annotations,
                    image_id,
                })
            })
            .collect()
    }

    pub(super) async fn exec_sync(
        &self,
        r: cri::ExecSyncRequest,
    ) -> Result<cri::ExecSyncResponse, Status> {
        let c = self.container(&r.container_id)?;
        if r.cmd.is_empty() {
            return Err(Status::invalid_argument("exec needs a command"));
        }
        let p = crate::runtime::ExecProcess {
            args: r.cmd,
            ..Default::default()
        };
        let timeout = (r.timeout > 0).then(|| Duration::from_secs(r.timeout as u64));
        let rt = self.rt.clone();
        let out = self
            .ops
            .spawn(async move { rt.exec_sync(&c.id, p, timeout).await })
            .await
            .map_err(|e| Status::internal(format!("exec failed: {e}")))??;
        if out.timed_out {
            return Err(Status::deadline_exceeded(format!(
                "command timed out after {} s, and was killed",
                r.timeout
            )));
        }
        Ok(cri::ExecSyncResponse {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
        })
    }

    /// The CRI container `id` names; NOT_FOUND if there is none.
    pub(super) fn container(&self, id: &str) -> Result<Record, Status> {
        self.find_container(id)?
            .ok_or_else(|| Status::not_found(format!("no container {id:?}")))
    }

    fn find_container(&self, id: &str) -> Result<Option<Record>, Status> {
        match self.rt.inspect(id) {
            Ok(r) if kept(&r) == Some(Kept::Container) => Ok(Some(r)),
            Ok(_) | Err(crate::runtime::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The image's digested name if it has one, else its id.
    fn image_ref(&self, id: &str) -> String {
        self.images
            .references_of(id)
            .into_iter()
            .find(|r| r.contains('@'))
            .unwrap_or_else(|| id.to_string())
    }
}

/// berth's create request for a CRI container of `sandbox` (all but the
/// image's part), and the config as it is kept: its log path made the
/// full path in the pod's log directory.
fn request(
    mut config: cri::ContainerConfig,
    sandbox: &Record,
) -> Result<(Request, cri::ContainerConfig), Status> {
    let pod = super::pods::sandbox_config(sandbox);
    let meta = config.metadata.clone().unwrap_or_default();
    if meta.name.is_empty() {
        return Err(Status::invalid_argument(
            "a container's metadata needs a name",
        ));
    }
    let image = config.image.clone().unwrap_or_default().image;
    if image.is_empty() {
        return Err(Status::invalid_argument("a container needs an image"));
    }
    if !config.log_path.is_empty() && !pod.log_directory.is_empty() {
        config.log_path = std::path::Path::new(&pod.log_directory)
            .join(&config.log_path)
            .display()
            .to_string();
    }
    let pod_meta = pod.metadata.clone().unwrap_or_default();
    let mut req = Request {
        name: berth_name(
            &[
                &meta.name,
                &pod_meta.name,
                &pod_meta.namespace,
                &pod_meta.uid,
            ],
            meta.attempt,
        ),
        args: config.args.clone(),
        env: config
            .envs
            .iter()
            .map(|e| format!("{}={}", e.key, e.value))
            .collect(),
        working_dir: config.working_dir.clone(),
        labels: config.labels.clone().into_iter().collect(),
        stdin_open: config.stdin,
        stdin_once: config.stdin_once,
        tty: config.tty.then_some((24, 80)),
        pod: sandbox.id.clone(),
        // In the pod's cgroup, beside its sandbox.
        cgroup_parent: sandbox.spec.cgroup_parent.clone(),
        // Only where the kubelet says: a relative path has no place.
        cri_log: match config.log_path.starts_with('/') {
            true => config.log_path.clone(),
            false => String::new(),
        },
        ..Default::default()
    };
    req.labels
        .insert(super::CRI_LABEL.into(), "container".into());
    req.labels
        .insert(super::POD_LABEL.into(), sandbox.id.clone());
    req.mounts = config.mounts.iter().map(mount).collect::<Result<_, _>>()?;
    let linux = config.linux.clone().unwrap_or_default();
    super::security::apply(&mut req, &linux, sandbox)?;
    if let Some(res) = &linux.resources {
        req.resources = super::resources::request(res);
        req.tuning.oom_score_adj = super::oom_score_adj(res.oom_score_adj as i32);
    }
    req.tuning.devices = config.devices.iter().map(device).collect();
    Ok((req, config))
}

/// The CRI state and, once exited, why: OOMKilled, Completed (0) or
/// Error.
fn state(r: &Record) -> (cri::ContainerState, &'static str) {
    match r.status {
        State::Created => (cri::ContainerState::ContainerCreated, ""),
        State::Running | State::Paused => (cri::ContainerState::ContainerRunning, ""),
        _ if r.oom_killed => (cri::ContainerState::ContainerExited, "OOMKilled"),
        _ if r.exit_code == 0 => (cri::ContainerState::ContainerExited, "Completed"),
        _ => (cri::ContainerState::ContainerExited, "Error"),
    }
}

/// The config a container was created with.
pub(super) fn container_config(r: &Record) -> cri::ContainerConfig {
    r.spec
        .extension
        .as_ref()
        .and_then(|e| cri::ContainerConfig::decode(e.data.as_slice()).ok())
        .unwrap_or_default()
}

/// A host device; its kind and numbers are read from the host at create.
fn device(d: &cri::Device) -> crate::spec::Device {
    crate::spec::Device {
        host_path: d.host_path.clone(),
        container_path: d.container_path.clone(),
        permissions: d.permissions.clone(),
        kind: 'c',
        major: 0,
        minor: 0,
    }
}

/// A bind mount. A missing host path is made a directory, as containerd
/// and Docker's `-v` make it (the kubelet's hostPath volumes without a
/// type rely on that).
fn mount(m: &cri::Mount) -> Result<MountRequest, Status> {
    let host = std::path::Path::new(&m.host_path);
    if host.is_absolute() && std::fs::symlink_metadata(host).is_err() {
        std::fs::create_dir_all(host).map_err(|e| {
            Status::invalid_argument(format!("cannot make host path {:?}: {e}", m.host_path))
        })?;
    }
    let propagation = match cri::MountPropagation::try_from(m.propagation) {
        Ok(cri::MountPropagation::PropagationPrivate) => "rprivate",
        Ok(cri::MountPropagation::PropagationHostToContainer) => "rslave",
        Ok(cri::MountPropagation::PropagationBidirectional) => "rshared",
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "unknown mount propagation {}",
                m.propagation
            )))
        }
    };
    Ok(MountRequest {
        source: m.host_path.clone(),
        destination: m.container_path.clone(),
        read_only: m.readonly,
        propagation: propagation.into(),
        volume: String::new(),
        recursive_read_only: m.recursive_read_only,
    })
}
