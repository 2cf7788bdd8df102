//! events: the daemon's event stream, replayed and followed.

use super::{key_value, parse_since, parse_time, Since};
use crate::args::EventsArgs;
use crate::template::Format;
use crate::{output, views, Failure};
use berth::pb::{self, events_client::EventsClient};
use tonic::transport::Channel;

/// Prints events until `--until` passes. A lost connection (a daemon
/// restart, even a kill -9) is said on stderr and the stream resumed after
/// the last seq seen once the daemon answers again: nothing is lost or
/// printed twice.
pub async fn events(channel: Channel, a: EventsArgs) -> Result<u8, Failure> {
    let mut req = subscription(&a)?;
    let format = Format::parse(&a.format)?;
    let mut client = EventsClient::new(channel);
    let mut lost = false;
    loop {
        let ended = follow(&mut client, &mut req, &format, &mut lost).await;
        match ended {
            Ok(()) => return Ok(0),
            Err(Ended::Failed(f)) => return Err(f),
            Err(Ended::Daemon(s)) if super::unavailable(&s) => {
                if !lost {
                    let after = req
                        .since_seq
                        .map_or(String::new(), |n| format!(" after seq {n}"));
                    eprintln!(
                        "berth: lost the connection to berthd ({}); reconnecting to resume{after}",
                        s.message()
                    );
                    lost = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(Ended::Daemon(s)) => return Err(s.into()),
        }
    }
}

/// Why a subscription ended before `--until`.
enum Ended {
    Daemon(tonic::Status),
    /// An event the template cannot show.
    Failed(Failure),
}

impl From<tonic::Status> for Ended {
    fn from(s: tonic::Status) -> Self {
        Ended::Daemon(s)
    }
}

/// One subscription, printed; `req` moves on to resume after what it
/// printed (or after where the stream started).
async fn follow(
    client: &mut EventsClient<Channel>,
    req: &mut pb::SubscribeRequest,
    format: &Format,
    lost: &mut bool,
) -> Result<(), Ended> {
    let response = client.subscribe(req.clone()).await?;
    let after = response
        .metadata()
        .get(berth::STARTS_AFTER_HEADER)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    if *lost {
        let from = after.map_or(String::new(), |n| format!(" after seq {n}"));
        eprintln!("berth: reconnected to berthd; resuming{from}");
        *lost = false;
    }
    if let Some(after) = after {
        req.since_seq = Some(after);
        req.since = None;
    }
    let mut stream = response.into_inner();
    while let Some(ev) = stream.message().await? {
        req.since_seq = Some(ev.seq);
        req.since = None;
        match format {
            Format::Json => output::outln!("{}", output::event_json(&ev)),
            Format::Table => output::outln!("{}", output::event_line(&ev)),
            Format::Template(t) => {
                let line = t.render(&views::event(&ev)).map_err(Ended::Failed)?;
                output::outln!("{line}");
            }
        }
    }
    Ok(())
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
    let mut types = Vec::new();
    for f in &a.filter {
        let (k, v) = key_value(f, "filter")?;
        match k.as_str() {
            "container" => req.containers.push(v),
            "image" => req.images.push(v),
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
            "type" => types.push(v),
            _ => {
                return Err(Failure(
                    format!(
                        "invalid filter {k:?}: use container=, image=, event=, label= or type="
                    ),
                    125,
                ))
            }
        }
    }
    by_type(&mut req, &types)?;
    Ok(req)
}

/// `type=container`, `type=daemon` and `type=image`, as types and
/// actions. An event filter narrows them further.
fn by_type(req: &mut pb::SubscribeRequest, types: &[String]) -> Result<(), Failure> {
    if types.is_empty() {
        return Ok(());
    }
    let mut actions = Vec::new();
    let all = || (1..).map_while(|n| pb::Action::try_from(n).ok());
    let image =
        |a: &pb::Action| (pb::Action::Pull as i32..=pb::Action::Save as i32).contains(&(*a as i32));
    for t in types {
        let kind = match t.as_str() {
            "container" => {
                actions.extend(all().filter(|a| *a != pb::Action::DaemonStart && !image(a)).map(|a| a as i32));
                pb::EventType::Container
            }
            "daemon" => {
                actions.push(pb::Action::DaemonStart as i32);
                pb::EventType::Container
            }
            "image" => {
                actions.extend(all().filter(image).map(|a| a as i32));
                pb::EventType::Image
            }
            "network" => {
                use pb::Action::{Connect, Create, Destroy, Disconnect};
                actions.extend([Create, Connect, Disconnect, Destroy].map(|a| a as i32));
                pb::EventType::Network
            }
            _ => {
                return Err(Failure(
                    format!("invalid type filter {t:?}: berth's events are of type container, image, network or daemon"),
                    125,
                ))
            }
        };
        if !req.types.contains(&(kind as i32)) {
            req.types.push(kind as i32);
        }
    }
    req.actions = match req.actions.is_empty() {
        true => actions,
        false => req
            .actions
            .iter()
            .copied()
            .filter(|a| actions.contains(a))
            .collect(),
    };
    if req.actions.is_empty() {
        // Nothing can match; say so rather than stream everything.
        return Err(Failure(
            "no event matches both the type and the event filters".into(),
            125,
        ));
    }
    Ok(())
}
