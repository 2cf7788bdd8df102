//! The one place errors become gRPC status codes (DESIGN.md's table).

use crate::runtime::Error;
use crate::{events, store};
use tonic::Status;

/// The most bytes of an error message. What a client sent is quoted
/// shorter where a message is made (spec::Input); this bounds whatever
/// else a message carries (a registry's reply, a path), so that a status
/// always fits in the headers a client accepts.
const MAX_MESSAGE: usize = 4 << 10;

/// `msg`, cut to MAX_MESSAGE bytes.
pub fn bounded(mut msg: String) -> String {
    if msg.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        let n = msg.len();
        msg.truncate(cut);
        msg.push_str(&format!("… ({n} bytes)"));
    }
    msg
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let msg = bounded(e.to_string());
        match e {
            Error::NotFound(_) | Error::NoNetwork(_) => Status::not_found(msg),
            Error::AlreadyExists(_) => Status::already_exists(msg),
            Error::InvalidArgument(_) | Error::Spec(_) => Status::invalid_argument(msg),
            Error::FailedPrecondition(_) => Status::failed_precondition(msg),
            Error::Full { .. } | Error::Store(store::Error::Full { .. }) => {
                Status::resource_exhausted(msg)
            }
            Error::Events(e) => e.into(),
            Error::ShuttingDown => Status::unavailable(msg),
            Error::Start { .. }
            | Error::Cgroup { .. }
            | Error::Store(_)
            | Error::Failed { .. }
            | Error::Internal(_) => Status::internal(msg),
        }
    }
}

impl From<events::Error> for Status {
    fn from(e: events::Error) -> Status {
        let msg = bounded(e.to_string());
        match e {
            events::Error::OutOfRange(_) => Status::out_of_range(msg),
            events::Error::Full(_) | events::Error::Store(store::Error::Full { .. }) => {
                Status::resource_exhausted(msg)
            }
            events::Error::Closed => Status::unavailable(msg),
            events::Error::Store(_) | events::Error::Journal(_) => Status::internal(msg),
        }
    }
}
