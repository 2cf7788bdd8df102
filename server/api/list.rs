//! Containers/List in pages that a client can always receive: newest
//! first, at most `PAGE_BYTES` a response whatever is stored, and a
//! container too bulky to list whole listed without its args, env and
//! labels (Inspect has them).

use super::convert;
use crate::runtime::Record;
use berth::pb;
use prost::Message;
use tonic::Status;

/// The most bytes of containers in one response: below the 4 MiB gRPC
/// clients accept by default.
const PAGE_BYTES: usize = 3 << 20;
/// A container whose listing is larger goes without its bulky fields.
const ENTRY_BYTES: usize = 1 << 20;

/// Where a page starts: after the container with this creation time and
/// id, in the list's order.
type After = (i64, String);

/// The list's order: newest first, then by id.
fn key(r: &Record) -> (std::cmp::Reverse<i64>, &str) {
    (std::cmp::Reverse(r.created_at), r.id.as_str())
}

/// One page of `records` as `req` asks for it.
pub fn page(records: &[Record], req: &pb::ListRequest) -> Result<pb::ListResponse, Status> {
    let after = parse_token(&req.page_token)?;
    let mut sorted: Vec<&Record> = records
        .iter()
        .filter(|r| {
            after
                .as_ref()
                .is_none_or(|(t, id)| key(r) > (std::cmp::Reverse(*t), id.as_str()))
        })
        .collect();
    sorted.sort_by(|a, b| key(a).cmp(&key(b)));
    let limit = match req.page_size {
        0 => usize::MAX,
        n => n as usize,
    };
    let mut out = pb::ListResponse::default();
    let mut bytes = 0;
    for (i, r) in sorted.iter().enumerate() {
        let mut c = convert::container(r);
        if c.encoded_len() > ENTRY_BYTES {
            trim(&mut c);
        }
        let n = c.encoded_len() + 8;
        if i > 0 && (i == limit || bytes + n > PAGE_BYTES) {
            let last = sorted[i - 1];
            out.next_page_token = format!("{}.{}", last.created_at, last.id);
            break;
        }
        bytes += n;
        out.containers.push(c);
    }
    Ok(out)
}

fn trim(c: &mut pb::Container) {
    if let Some(config) = c.config.as_mut() {
        config.args.clear();
        config.env.clear();
        config.labels.clear();
    }
    c.trimmed = true;
}

fn parse_token(token: &str) -> Result<Option<After>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .split_once('.')
        .and_then(|(t, id)| Some((t.parse().ok()?, id.to_string())))
        .filter(|(_, id)| !id.is_empty() && id.len() <= 64)
        .map(Some)
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "invalid page_token {:?}: pass a next_page_token List returned",
                crate::spec::Input::from(token)
            ))
        })
}
