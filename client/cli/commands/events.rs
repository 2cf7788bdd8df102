//! events: the daemon's event stream, replayed and followed.

use super::{key_value, parse_since, parse_time, Since};
use crate::args::{EventsArgs, Format};
use crate::{output, Failure};
use berth::pb::{self, events_client::EventsClient};
use tonic::transport::Channel;

pub async fn events(channel: Channel, a: EventsArgs) -> Result<u8, Failure> {
    let req = subscription(&a)?;
    let mut stream = EventsClient::new(channel)
        .subscribe(req)
        .await?
        .into_inner();
    while let Some(ev) = stream.message().await? {
        match a.format {
            Format::Json => output::outln!("{}", output::event_json(&ev)),
            Format::Table => output::outln!("{}", output::event_line(&ev)),
        }
    }
    Ok(0)
}

/// The request for `--since`, `--until` and every `--filter`.
fn subscription(a: &EventsArgs) -> Result<pb::SubscribeRequest, Failure> {
    let mut req = pb::SubscribeRequest::default();
    match a.since.as_deref().map(parse_since).transpose()? {
        Some(Since::Seq(n)) => req.since_seq = Some(n),
        Some(Since::Time(t)) => req.since = Some(t),
        None => {}
    }
    req.until = a.until.as_deref().map(parse_time).transpose()?;
    for f in &a.filter {
        let (k, v) = key_value(f, "filter")?;
        match k.as_str() {
            "container" => req.containers.push(v),
            "event" | "action" => {
                let name = format!("ACTION_{}", v.to_ascii_uppercase());
                let action = pb::Action::from_str_name(&name)
                    .ok_or_else(|| Failure(format!("invalid event filter {v:?}"), 125))?;
                req.actions.push(action as i32);
            }
            "label" => {
                let (lk, lv) = key_value(&v, "label filter")?;
                req.labels.insert(lk, lv);
            }
            _ => {
                return Err(Failure(
                    format!("invalid filter {k:?}: use container=, event= or label="),
                    125,
                ))
            }
        }
    }
    Ok(req)
}
