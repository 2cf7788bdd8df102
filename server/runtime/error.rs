//! The runtime's errors. Each keeps its cause as a typed source; its text
//! is the whole message a client sees. api/status.rs maps them to codes.

use crate::monitor::protocol::Failure;
use crate::spec::{self, Input};
use crate::store;
use crate::sys::cgroup;
use std::path::{Path, PathBuf};

type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such container: {0}")]
    NotFound(Input),
    #[error("no such network: {0}")]
    NoNetwork(Input),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Spec(#[from] spec::Error),
    /// The container is not in a state that allows the request.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The monitor could not start the container.
    #[error("start container {name}: {failure}")]
    Start {
        name: String,
        #[source]
        failure: Failure,
    },
    /// A cgroup operation failed; `what` says what berthd was doing.
    #[error("{what}: {source}")]
    Cgroup {
        what: String,
        source: Box<cgroup::Error>,
    },
    #[error("store: {0}")]
    Store(#[from] store::Error),
    #[error(transparent)]
    Events(#[from] crate::events::Error),
    /// A filesystem berthd writes to is full.
    #[error("the filesystem of {} is full ({what}: {source}): free space there; berthd carries on once there is", fs.display())]
    Full {
        what: String,
        fs: PathBuf,
        source: std::io::Error,
    },
    /// Anything else berthd needed that failed.
    #[error("{what}: {source}")]
    Failed { what: String, source: Cause },
    /// A failure with no underlying error.
    #[error("{0}")]
    Internal(String),
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the host's cgroups cannot enforce is the request's problem.
pub fn unsupported(e: cgroup::Error) -> Error {
    match e {
        cgroup::Error::Unsupported(_) => Error::FailedPrecondition(e.to_string()),
        e => Error::Cgroup {
            what: "check limits".into(),
            source: Box::new(e),
        },
    }
}

/// `what` failed because of `e`.
pub fn failed(what: impl Into<String>, e: impl Into<Cause>) -> Error {
    Error::Failed {
        what: what.into(),
        source: e.into(),
    }
}

/// A failed file operation under `dir`: Full naming the filesystem if it
/// is full, else what failed.
pub fn io_failed(what: impl Into<String>, dir: &Path, e: std::io::Error) -> Error {
    if store::is_full(&e) {
        return Error::Full {
            what: what.into(),
            fs: store::filesystem_of(dir),
            source: e,
        };
    }
    failed(what, e)
}

pub fn not_running(name: &str) -> Error {
    Error::FailedPrecondition(format!("container {name} is not running"))
}
