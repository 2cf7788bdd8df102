//! A CRI container's security context and namespaces as berth's create
//! fields. The CRI's defaults differ from Docker's where it says so: no
//! seccomp profile means none (Unconfined), and no_new_privs is off
//! unless asked.

use crate::runtime::Record;
use crate::spec::{Network, Request};
use k8s_cri::v1 as cri;
use tonic::Status;

pub fn apply(
    req: &mut Request,
    linux: &cri::LinuxContainerConfig,
    sandbox: &Record,
) -> Result<(), Status> {
    let sc = linux.security_context.clone().unwrap_or_default();
    let ns = sc.namespace_options.clone().unwrap_or_default();
    let pod = format!("container:{}", sandbox.id);
    let node = cri::NamespaceMode::Node as i32;
    req.network = match sandbox.spec.network == Network::Host || ns.network == node {
        true => "host".into(),
        false => pod.clone(),
    };
    req.pid_mode = match cri::NamespaceMode::try_from(ns.pid) {
        Ok(cri::NamespaceMode::Node) => "host".into(),
        Ok(cri::NamespaceMode::Container) => String::new(),
        Ok(cri::NamespaceMode::Target) if !ns.target_id.is_empty() => {
            format!("container:{}", ns.target_id)
        }
        Ok(cri::NamespaceMode::Pod) => pod.clone(),
        _ => {
            return Err(Status::invalid_argument(format!(
                "invalid PID namespace mode {}",
                ns.pid
            )))
        }
    };
    req.ipc_mode = match ns.ipc == node {
        true => "host".into(),
        false => pod,
    };
    req.privileged = sc.privileged;
    if let Some(caps) = &sc.capabilities {
        req.cap_add = caps.add_capabilities.clone();
        req.cap_drop = caps.drop_capabilities.clone();
    }
    req.read_only = sc.readonly_rootfs;
    // The kubelet sends the runtime's defaults or its own lists; none
    // means berth's defaults (as containerd takes it).
    let given = |p: &Vec<String>| (!p.is_empty()).then(|| p.clone());
    req.masked_paths = given(&sc.masked_paths);
    req.readonly_paths = given(&sc.readonly_paths);
    req.no_new_privs = Some(sc.no_new_privs);
    req.user = user(&sc)?;
    req.tuning.group_add = sc
        .supplemental_groups
        .iter()
        .map(|g| g.to_string())
        .collect();
    req.tuning.strict_groups =
        sc.supplemental_groups_policy == cri::SupplementalGroupsPolicy::Strict as i32;
    // The deprecated path still comes from older kubelets and critest.
    #[allow(deprecated)]
    let path = sc.seccomp_profile_path.as_str();
    req.seccomp_profile = seccomp(sc.seccomp.as_ref(), path)?;
    Ok(())
}

/// "uid[:gid]" or "name[:gid]"; empty: the image's user.
fn user(sc: &cri::LinuxContainerSecurityContext) -> Result<String, Status> {
    let group = sc.run_as_group.as_ref().map(|g| g.value);
    let user = match (&sc.run_as_user, sc.run_as_username.as_str()) {
        (Some(u), _) => u.value.to_string(),
        (None, "") => {
            if group.is_some() {
                return Err(Status::invalid_argument(
                    "run_as_group needs run_as_user or run_as_username",
                ));
            }
            return Ok(String::new());
        }
        (None, name) => name.to_string(),
    };
    Ok(match group {
        Some(g) => format!("{user}:{g}"),
        None => user,
    })
}

/// berth's seccomp_profile field: "" (berth's filter), "unconfined", or
/// a Localhost profile's JSON.
fn seccomp(profile: Option<&cri::SecurityProfile>, path: &str) -> Result<String, Status> {
    let localhost = |file: &str| {
        std::fs::read_to_string(file).map_err(|e| {
            Status::invalid_argument(format!("cannot read seccomp profile {file:?}: {e}"))
        })
    };
    match profile {
        Some(p) => match cri::security_profile::ProfileType::try_from(p.profile_type) {
            Ok(cri::security_profile::ProfileType::RuntimeDefault) => Ok(String::new()),
            Ok(cri::security_profile::ProfileType::Unconfined) => Ok("unconfined".into()),
            Ok(cri::security_profile::ProfileType::Localhost) => localhost(&p.localhost_ref),
            Err(_) => Err(Status::invalid_argument(format!(
                "unknown seccomp profile type {}",
                p.profile_type
            ))),
        },
        None => match path {
            "" | "unconfined" => Ok("unconfined".into()),
            "runtime/default" | "docker/default" => Ok(String::new()),
            p => match p.strip_prefix("localhost/") {
                Some(file) => localhost(file),
                None => Err(Status::invalid_argument(format!(
                    "unknown seccomp profile {p:?}"
                ))),
            },
        },
    }
}
