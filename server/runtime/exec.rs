//! Exec: another process in a running container. The daemon checks the
//! request, journals exec_create, writes the exec for the helper (`berthd
//! exec`, monitor/exec.rs: it joins the namespaces, as nothing in tokio
//! may) and starts it, journals exec_start, and a task waits for the
//! helper and journals exec_die with the process's exit code and signal.

use super::container::{IfUnsaved, Note};
use super::error::{failed, Error, Result};
use super::host::ExecStdio;
use super::{Runtime, Status};
use crate::monitor::protocol::ExecSpec;
use crate::spec::{normalize, parse_user, Input};
use crate::sys::{fds, linux};
use berth::pb::Action;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::oneshot;

/// What a request asks to run.
#[derive(Debug, Clone, Default)]
pub struct ExecProcess {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub privileged: bool,
    pub stdin: bool,
    pub detach: bool,
    /// A terminal of this size (rows, columns).
    pub tty: Option<(u16, u16)>,
    /// Killed (SIGKILL) and reaped by its helper once this has passed.
    pub timeout: Option<std::time::Duration>,
}

/// A running exec: its pipes (as asked), a handle to signal it, and its
/// exit (code, signal) once it ends.
pub struct Running {
    pub id: String,
    /// The container's full id, and the command as events show it.
    pub container: String,
    pub command: String,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
    /// With a terminal: the pty's master (the process's input and output).
    pub terminal: Option<OwnedFd>,
    pub signal: Signaller,
    /// The helper's pid (its child is the process).
    pub helper_pid: u32,
    pub exit: oneshot::Receiver<(i32, i32)>,
}

/// Sends signals to an exec's process (through its helper, which passes
/// them on; SIGKILL ends the helper and so the process).
#[derive(Clone)]
pub struct Signaller(Arc<OwnedFd>);

impl Signaller {
    pub fn send(&self, signal: i32) {
        let _ = linux::pidfd_send_signal(&self.0, signal);
    }
}

/// An exec's stdio taken out of its Running, the same with or without a
/// terminal: what goes to its input, its output and error streams, and
/// with a terminal a handle to resize it.
pub struct ExecIo {
    pub input: Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>,
    pub stdout: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>,
    pub stderr: Option<ChildStderr>,
    pub resizer: Option<OwnedFd>,
}

impl Running {
    /// Takes the stdio out (once: then all is None). With a terminal its
    /// master is the input and the output; stderr is then the helper's,
    /// for what fails before the terminal.
    pub fn io(&mut self) -> ExecIo {
        let file = |fd: OwnedFd| tokio::fs::File::from_std(std::fs::File::from(fd));
        let stderr = self.stderr.take();
        match self.terminal.take() {
            Some(master) => ExecIo {
                resizer: master.try_clone().ok(),
                stdout: master
                    .try_clone()
                    .ok()
                    .map(|m| Box::new(file(m)) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
                input: Some(Box::new(file(master))),
                stderr,
            },
            None => ExecIo {
                input: self
                    .stdin
                    .take()
                    .map(|w| Box::new(w) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>),
                stdout: self
                    .stdout
                    .take()
                    .map(|r| Box::new(r) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
                stderr,
                resizer: None,
            },
        }
    }
}

impl ExecProcess {
    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.args.is_empty() || self.args[0].is_empty() {
            return bad("exec needs a command: args is empty".into());
        }
        if let Some(a) = self.args.iter().find(|a| a.contains('\0')) {
            return bad(format!(
                "invalid argument {:?}: it contains NUL",
                Input::from(a.as_str())
            ));
        }
        for e in &self.env {
            match e.split_once('=') {
                Some((k, _)) if !k.is_empty() && !e.contains('\0') => {}
                _ => {
                    return bad(format!(
                        "invalid env entry {:?}: use KEY=VALUE",
                        Input::from(e.as_str())
                    ))
                }
            }
        }
        if !self.working_dir.is_empty() && normalize(&self.working_dir).is_none() {
            return bad(format!(
                "invalid working directory {:?}: it must be an absolute path without \"..\"",
                Input::from(self.working_dir.as_str())
            ));
        }
        if !self.user.is_empty() && parse_user(&self.user).is_none() {
            return bad(format!(
                "invalid user {:?}",
                Input::from(self.user.as_str())
            ));
        }
        Ok(())
    }
}

impl Runtime {
    /// The client of exec `id` in `container` read its detach keys: an
    /// exec_detach event.
    pub fn exec_detached(&self, id: &str, container: &str, command: &str) {
        let Ok(c) = self.find(container) else { return };
        let note = Note::exec(Action::ExecDetach, id, command, None);
        let journaled = c.transition(&mut c.state(), &self.bus, IfUnsaved::Keep, |_| vec![note]);
        if let Err(e) = journaled {
            tracing::warn!(container = %c.id, exec = %id, error = %e, "cannot journal the exec's detach");
        }
    }

    pub async fn exec(&self, key: &str, p: ExecProcess) -> Result<Running> {
        p.check()?;
        let c = self.find(key)?;
        let op = c.op.lock().await;
        let (status, pid) = {
            let st = c.state();
            (st.record.status, st.record.pid)
        };
        match status {
            Status::Running => {}
            Status::Paused => {
                return Err(Error::FailedPrecondition(format!(
                    "container {} is paused: unpause it first",
                    c.name()
                )))
            }
            _ => {
                return Err(Error::FailedPrecondition(format!(
                    "container {} is not running",
                    c.name()
                )))
            }
        }
        let mut raw = [0u8; 32];
        linux::random_bytes(&mut raw).map_err(|e| failed("generate exec id", e))?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let command = p.args.join(" ");
        let file = c.dir.join(format!("exec-{id}.json"));
        let spec = ExecSpec {
            pid,
            args: p.args.clone(),
            env: p.env.clone(),
            working_dir: normalize(&p.working_dir).unwrap_or_default(),
            user: p.user.clone(),
            privileged: p.privileged,
            tty: p.tty.filter(|_| !p.detach),
            timeout_ms: p.timeout.map(|t| t.as_millis() as u64),
        };
        spec.write(&file).map_err(|e| failed("write the exec", e))?;
        let (stdio, ours) = match (p.detach, spec.tty) {
            (true, _) => (ExecStdio::Detached, None),
            (false, Some(_)) => {
                let (ours, theirs) = std::os::unix::net::UnixStream::pair()
                    .map_err(|e| failed("make the terminal's socket", e))?;
                (ExecStdio::Terminal(theirs), Some(ours))
            }
            (false, None) => (ExecStdio::Pipes { stdin: p.stdin }, None),
        };
        let spawned = self.host.spawn_exec(&c.dir, &file, stdio);
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_file(&file);
                return Err(failed("start the exec", e));
            }
        };
        let helper_pid = child.pid;
        let pidfd = match child.pidfd.try_clone() {
            Ok(fd) => Arc::new(fd),
            Err(e) => {
                child.kill();
                return Err(failed("start the exec", e));
            }
        };
        // The helper sends the pty's master once it has made it (nothing if
        // it failed before: its stderr says why).
        let terminal = match ours {
            Some(socket) => tokio::task::spawn_blocking(move || {
                let _ = socket.set_read_timeout(Some(std::time::Duration::from_secs(30)));
                fds::recv_with_fd(&socket, &mut [0u8; 1])
                    .ok()
                    .and_then(|(_, fd)| fd)
            })
            .await
            .unwrap_or(None),
            None => None,
        };
        // Created and started in one commit: one flush, not two. An exec
        // the journal cannot tell of does not run.
        let journaled = c.transition(&mut c.state(), &self.bus, IfUnsaved::Keep, |_| {
            vec![
                Note::exec(Action::ExecCreate, &id, &command, None),
                Note::exec(Action::ExecStart, &id, &command, None),
            ]
        });
        if let Err(e) = journaled {
            child.kill();
            return Err(e);
        }
        drop(op);
        tracing::info!(container = %c.id, exec = %id, command = %command, "exec started");
        let (tx, exit) = oneshot::channel();
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (bus, watched, exec) = (self.bus.clone(), c.clone(), id.clone());
        tokio::spawn(async move {
            let (code, signal) = child.wait().await;
            let _ = std::fs::remove_file(&file);
            let note = Note::exec(Action::ExecDie, &exec, &command, Some((code, signal)));
            if let Err(e) =
                watched.transition(&mut watched.state(), &bus, IfUnsaved::Keep, |_| vec![note])
            {
                tracing::warn!(container = %watched.id, exec = %exec, error = %e, "cannot journal the exec's end");
            }
            tracing::info!(container = %watched.id, exec = %exec, code, signal, "exec ended");
            let _ = tx.send((code, signal));
        });
        Ok(Running {
            id,
            container: c.id.clone(),
            command: p.args.join(" "),
            stdin,
            stdout,
            stderr,
            terminal,
            signal: Signaller(pidfd),
            helper_pid,
            exit,
        })
    }
}
