//! What a transition journals: a note per event, filled in from the
//! container's record when it is written.

use super::container::Record;
use crate::events::timestamp;
use berth::pb::{self, Action};

/// An event a transition journals, filled in from the container.
#[derive(Debug, Clone)]
pub struct Note {
    pub(super) action: Action,
    signal: i32,
    exit_code: Option<i32>,
    /// When it happened, if not now.
    pub(super) time: Option<i64>,
    oom_killed: bool,
    /// Rename: the name before.
    old_name: String,
    /// Exec events: which exec, and its command line.
    exec_id: String,
    exec_command: String,
    /// An event of another object journaled with the container's (a
    /// network's disconnect at its exit), as it is.
    other: Option<pb::Event>,
    /// Health status: the health now.
    health: pb::HealthStatus,
}

impl Note {
    pub fn new(action: Action) -> Note {
        Note {
            action,
            signal: 0,
            exit_code: None,
            time: None,
            oom_killed: false,
            old_name: String::new(),
            exec_id: String::new(),
            exec_command: String::new(),
            other: None,
            health: pb::HealthStatus::None,
        }
    }

    /// A health_status event: the health is now `status`.
    pub fn health(status: pb::HealthStatus) -> Note {
        Note {
            health: status,
            ..Note::new(Action::HealthStatus)
        }
    }

    /// `event`, of another object, journaled in the container's order.
    pub fn other(event: pb::Event) -> Note {
        Note {
            other: Some(event),
            ..Note::new(Action::Unspecified)
        }
    }

    /// An exec event; `exit` (code, signal) for its die.
    pub fn exec(action: Action, id: &str, command: &str, exit: Option<(i32, i32)>) -> Note {
        Note {
            exec_id: id.to_string(),
            exec_command: command.to_string(),
            exit_code: exit.map(|(code, _)| code),
            signal: exit.map_or(0, |(_, signal)| signal),
            ..Note::new(action)
        }
    }

    pub fn rename(old_name: String) -> Note {
        Note {
            old_name,
            ..Note::new(Action::Rename)
        }
    }

    pub fn kill(signal: i32) -> Note {
        Note {
            signal,
            ..Note::new(Action::Kill)
        }
    }

    /// A die event: how the run in `r` ended, at its time.
    pub fn die(r: &Record) -> Note {
        Note {
            signal: r.signal,
            exit_code: Some(r.exit_code),
            time: Some(r.finished_at),
            oom_killed: r.oom_killed,
            ..Note::new(Action::Die)
        }
    }

    pub fn at(self, time: i64) -> Note {
        Note {
            time: Some(time),
            ..self
        }
    }

    /// The event this note journals for container `id` as `r` says it is.
    pub(super) fn event(&self, id: &str, r: &Record, time: i64) -> pb::Event {
        let n = self;
        if let Some(other) = &n.other {
            return pb::Event {
                time: Some(timestamp(time)),
                ..other.clone()
            };
        }
        pb::Event {
            id: id.to_string(),
            name: r.spec.name.clone(),
            action: n.action as i32,
            signal: n.signal,
            exit_code: n.exit_code,
            time: Some(timestamp(time)),
            oom_killed: n.oom_killed,
            labels: r
                .spec
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            old_name: n.old_name.clone(),
            exec_id: n.exec_id.clone(),
            exec_command: n.exec_command.clone(),
            health_status: n.health as i32,
            image: r
                .spec
                .image
                .as_ref()
                .map(|i| i.reference.clone())
                .unwrap_or_default(),
            ..Default::default()
        }
    }
}
