//! The one place errors become gRPC status codes (DESIGN.md's table).

use crate::runtime::Error;
use crate::{events, store};
use tonic::Status;

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let msg = e.to_string();
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
        let msg = e.to_string();
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
