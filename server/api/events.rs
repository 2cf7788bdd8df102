//! The Events service: the journal, as a stream from where the client
//! asks.

use crate::events::{self, Bus, Filter, Start};
use berth::pb::{self, events_server::Events};
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub struct EventsService {
    pub bus: Arc<Bus>,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

#[tonic::async_trait]
impl Events for EventsService {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        req: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let r = req.into_inner();
        if let Some(a) = r
            .actions
            .iter()
            .find(|a| pb::Action::try_from(**a).is_err())
        {
            return Err(Status::invalid_argument(format!("invalid action {a}")));
        }
        let start = match (r.since_seq, &r.since) {
            (Some(_), Some(_)) => {
                return Err(Status::invalid_argument(
                    "give since_seq or since, not both",
                ))
            }
            (Some(seq), None) => Start::After(seq),
            (None, Some(t)) => Start::At(events::nanos(t)),
            (None, None) => Start::Now,
        };
        let until = r.until.as_ref().map(events::nanos);
        if let (Start::At(since), Some(until)) = (start, until) {
            if until < since {
                return Err(Status::invalid_argument("until is before since"));
            }
        }
        let filter = Filter {
            containers: r.containers,
            actions: r.actions,
            labels: r.labels.into_iter().collect(),
            types: r.types,
            images: r.images,
        };
        let events = self.bus.subscribe(filter, start, until)?;
        let after = events.starts_after();
        let stream = tokio_stream::StreamExt::map(events, |r| r.map_err(Status::from));
        let mut response = Response::new(Box::pin(stream) as EventStream);
        response.metadata_mut().insert(
            berth::STARTS_AFTER_HEADER,
            tonic::metadata::MetadataValue::from(after),
        );
        Ok(response)
    }
}
