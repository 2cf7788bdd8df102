//! The health prober: a task per run of a container with a health check.
//! Each probe is an exec (journaled as one), its output kept up to 4 KiB;
//! one that outlives its timeout is killed with every process of its
//! session (the exec's process leads one) and fails. The result is counted
//! in the record in one transition with the health_status event it
//! causes; becoming unhealthy triggers the check's on_failure action.

use super::container::{Container, IfUnsaved, Note, State, Status};
use super::exec::{ExecProcess, Running};
use super::health::{kept_output, Probe, MAX_OUTPUT};
use super::Runtime;
use crate::spec::{HealthAction, Healthcheck};
use crate::sys::time::now_nanos;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

impl Runtime {
    /// Probes run `exits` of `c` while it runs, if it has a health check.
    pub(super) fn spawn_prober(self: &Arc<Self>, c: Arc<Container>, exits: u64) {
        if c.spec().health.is_none() {
            return;
        }
        let rt = self.clone();
        tokio::spawn(async move {
            let mut shutdown = rt.shutdown.clone();
            // None while paused: no probe until it is thawed.
            let due = |st: &State| {
                let r = &st.record;
                if st.removed || r.exits != exits || !r.status.is_running() {
                    return None;
                }
                let (check, health) = (r.spec.health.as_ref()?, r.health.as_ref()?);
                Some((r.status == Status::Running).then(|| health.next_probe(check, r.started_at)))
            };
            while c.until_due(&mut shutdown, due).await {
                rt.probe(&c, exits).await;
            }
        });
    }

    /// One probe, counted if the run is still going when it ends.
    async fn probe(self: &Arc<Self>, c: &Arc<Container>, exits: u64) {
        let Some(check) = c.spec().health else { return };
        let start = now_nanos();
        let exec = ExecProcess {
            args: check.argv(),
            ..Default::default()
        };
        let (exit_code, output) = match self.exec(&c.id, exec).await {
            Ok(running) => self.run_probe(c, running, &check).await,
            Err(e) => (-1, e.to_string()),
        };
        let probe = Probe {
            start,
            end: now_nanos(),
            exit_code,
            output,
        };
        let became = {
            let mut st = c.state();
            let r = &st.record;
            if st.removed || r.exits != exits || r.status != Status::Running {
                return;
            }
            let started_at = r.started_at;
            let mut now = None;
            let counted = c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
                let Some(health) = r.health.as_mut() else {
                    return vec![];
                };
                if !health.record(probe, &check, started_at) {
                    return vec![];
                }
                now = Some(health.status);
                vec![Note::health(health.status.pb())]
            });
            if let Err(e) = counted {
                tracing::error!(container = %c.id, error = %e, "cannot record a health probe");
            }
            now
        };
        let Some(status) = became else { return };
        tracing::info!(container = %c.id, ?status, "health changed");
        if status == super::health::HealthStatus::Unhealthy {
            self.act_on_unhealthy(c, check.on_failure).await;
        }
    }

    /// Runs a started probe to its end or its timeout: its exit code and
    /// output.
    async fn run_probe(&self, c: &Container, mut p: Running, check: &Healthcheck) -> (i32, String) {
        let timeout = Duration::from_millis(check.timeout_ms);
        let mut output = Vec::new();
        let (stdout, stderr) = (p.stdout.take(), p.stderr.take());
        let ran = tokio::time::timeout(timeout, async {
            let (a, b) = tokio::join!(drain(stdout), drain(stderr));
            output.extend(a);
            output.extend(b);
            (&mut p.exit).await
        })
        .await;
        match ran {
            Ok(Ok((code, _))) => (code, kept_output(&output, false)),
            Ok(Err(_)) => (-1, "the probe's exec ended without a status".into()),
            Err(_) => {
                end_session(&c.id, p.helper_pid).await;
                p.signal.send(libc::SIGKILL);
                // Its exec_die is journaled before the next probe.
                let _ = tokio::time::timeout(Duration::from_secs(5), &mut p.exit).await;
                (
                    -1,
                    format!("Health check exceeded timeout ({})", go_duration(timeout)),
                )
            }
        }
    }

    /// The check's on_failure action, once the container became unhealthy.
    async fn act_on_unhealthy(self: &Arc<Self>, c: &Arc<Container>, action: HealthAction) {
        let acted = match action {
            HealthAction::None => return,
            HealthAction::Kill => self.kill_as(&c.id, libc::SIGKILL, false, false).await,
            HealthAction::Stop => self.stop(&c.id, None, None).await,
            HealthAction::Restart => {
                // A Restart waits for the run to end: not in this task,
                // which that end ends.
                let (rt, id) = (self.clone(), c.id.clone());
                tokio::spawn(async move {
                    if let Err(e) = rt.restart(&id, None).await {
                        tracing::error!(container = %id, error = %e, "cannot restart the unhealthy container");
                    }
                });
                Ok(())
            }
        };
        match acted {
            Ok(()) => {
                tracing::info!(container = %c.id, action = action.name(), "acted on unhealthy")
            }
            Err(e) => {
                tracing::error!(container = %c.id, action = action.name(), error = %e, "cannot act on unhealthy")
            }
        }
    }
}

/// Reads a pipe to its end, keeping what fits in a probe's output.
async fn drain(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let Some(mut pipe) = pipe else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = pipe.read(&mut buf).await {
        let room = (MAX_OUTPUT + 1).saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
}

/// Kills every process of container `id` in the session the exec helper
/// `helper`'s process leads, until none is left.
async fn end_session(id: &str, helper: u32) {
    let children = std::fs::read_to_string(format!("/proc/{helper}/task/{helper}/children"))
        .unwrap_or_default();
    let Some(leader) = children.split_whitespace().next() else {
        return;
    };
    for _ in 0..50 {
        let members = crate::sys::procs::in_session(leader, id);
        if members.is_empty() {
            return;
        }
        for pid in members {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::warn!(container = %id, session = leader, "processes of a timed-out probe outlived it");
}

/// A duration as Go prints one, as Docker's timeout message has it: "1s",
/// "1.5s", "500ms", "2m0s".
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        ms if ms < 1000 => format!("{ms}ms"),
        ms if ms < 60_000 => {
            let s = format!("{}.{:03}", ms / 1000, ms % 1000);
            format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
        }
        ms => {
            let (h, m, s) = (
                ms / 3_600_000,
                ms / 60_000 % 60,
                (ms % 60_000) as f64 / 1000.0,
            );
            let h = if h > 0 {
                format!("{h}h")
            } else {
                String::new()
            };
            format!("{h}{m}m{s}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_secs(120)), "2m0s");
    }
}
