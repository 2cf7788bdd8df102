//! Exec, Attach and PortForward: each checks its request and answers a
//! one-time URL of the streaming server (stream/), which runs it once the
//! client connects.

use super::pods::sandbox_config;
use super::stream::Call;
use super::CriRuntime;
use crate::runtime::Status as State;
use k8s_cri::v1 as cri;
use tonic::Status;

/// The stdio a streaming request asks for: at least one stream, and no
/// stderr beside a terminal (which carries both outputs).
fn check_stdio(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Result<(), Status> {
    if !(stdin || stdout || stderr) {
        return Err(Status::invalid_argument(
            "one of stdin, stdout and stderr must be asked for",
        ));
    }
    if tty && stderr {
        return Err(Status::invalid_argument(
            "a terminal carries stderr with stdout: tty and stderr cannot both be asked for",
        ));
    }
    Ok(())
}

impl CriRuntime {
    /// The running CRI container `id` names, as its full id.
    fn running(&self, id: &str) -> Result<String, Status> {
        let c = self.container(id)?;
        match c.status {
            State::Running => Ok(c.id),
            _ => Err(Status::failed_precondition(format!(
                "container {id} is not running"
            ))),
        }
    }

    pub(super) fn exec_url(&self, mut r: cri::ExecRequest) -> Result<cri::ExecResponse, Status> {
        check_stdio(r.stdin, r.stdout, r.stderr, r.tty)?;
        if r.cmd.is_empty() || r.cmd[0].is_empty() {
            return Err(Status::invalid_argument("exec needs a command"));
        }
        r.container_id = self.running(&r.container_id)?;
        let url = self.streams.url(Call::Exec(r))?;
        Ok(cri::ExecResponse { url })
    }

    pub(super) fn attach_url(
        &self,
        mut r: cri::AttachRequest,
    ) -> Result<cri::AttachResponse, Status> {
        check_stdio(r.stdin, r.stdout, r.stderr, r.tty)?;
        r.container_id = self.running(&r.container_id)?;
        let url = self.streams.url(Call::Attach(r))?;
        Ok(cri::AttachResponse { url })
    }

    /// A pod's ports: on loopback in its network namespace, or the host's
    /// for a pod on the host's network.
    pub(super) fn port_forward_url(
        &self,
        r: cri::PortForwardRequest,
    ) -> Result<cri::PortForwardResponse, Status> {
        let pod = self
            .sandbox(&r.pod_sandbox_id)?
            .ok_or_else(|| Status::not_found(format!("no pod sandbox {:?}", r.pod_sandbox_id)))?;
        if pod.status != State::Running {
            return Err(Status::failed_precondition(format!(
                "pod sandbox {} is not ready",
                r.pod_sandbox_id
            )));
        }
        let host = sandbox_config(&pod)
            .linux
            .and_then(|l| l.security_context)
            .and_then(|s| s.namespace_options)
            .is_some_and(|n| n.network == cri::NamespaceMode::Node as i32);
        let netns = (!host).then(|| {
            self.rt
                .containers_root()
                .join(&pod.id)
                .join(crate::network::netns::PIN)
        });
        let url = self.streams.url(Call::PortForward(netns))?;
        Ok(cri::PortForwardResponse { url })
    }
}
