//! Wait: until a container is not running, next exits, or is removed.

use super::container::{State, Status};
use super::error::{Error, Result};
use super::health::HealthStatus;
use super::Runtime;
use crate::shutdown::shutting_down;

/// What `Wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
    Healthy,
    Unhealthy,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    pub signal: i32,
    pub oom_killed: bool,
}

impl Runtime {
    /// Blocks until `cond` holds; returns how the last run ended. For
    /// NextExit, `after` is the exit count to wait past (default: now).
    pub async fn wait(&self, key: &str, cond: WaitCondition, after: Option<u64>) -> Result<Exit> {
        let c = self.find(key)?;
        let mut changed = c.changed.subscribe();
        let mut shutdown = self.shutdown.clone();
        let exits = after.unwrap_or_else(|| c.state().record.exits);
        loop {
            {
                let st = c.state();
                let done = match cond {
                    WaitCondition::NotRunning => !st.record.status.is_running(),
                    WaitCondition::NextExit => st.record.exits > exits || st.removed,
                    WaitCondition::Removed => st.removed,
                    WaitCondition::Healthy => healthy(&c.name(), &st, HealthStatus::Healthy)?,
                    WaitCondition::Unhealthy => healthy(&c.name(), &st, HealthStatus::Unhealthy)?,
                };
                if done {
                    return Ok(Exit {
                        code: st.record.exit_code,
                        signal: st.record.signal,
                        oom_killed: st.record.oom_killed,
                    });
                }
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return Err(Error::NotFound(key.into())) },
                _ = shutting_down(&mut shutdown) => return Err(Error::ShuttingDown),
            }
        }
    }
}

/// Whether the container's health is `wanted`; FailedPrecondition if it
/// never can be: no health check, removed, or exited (not to restart).
fn healthy(name: &str, st: &State, wanted: HealthStatus) -> Result<bool> {
    let r = &st.record;
    let refuse = |why: &str| Err(Error::FailedPrecondition(format!("container {name} {why}")));
    if r.spec.health.is_none() {
        return refuse("has no health check");
    }
    if st.removed {
        return refuse("was removed");
    }
    let now = r.health.as_ref().map(|h| h.status);
    match r.status {
        Status::Running | Status::Paused => Ok(now == Some(wanted)),
        Status::Created | Status::Restarting => Ok(false),
        Status::Exited => refuse("is not running"),
    }
}
