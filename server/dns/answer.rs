//! What the resolver answers a query itself, from the asker's peers; what
//! it does not know goes to the upstream servers.

use super::{Asker, Peer};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::IpAddr;

/// How long an answer may be cached: Docker's.
pub const TTL: u32 = 600;

/// A DNS message over UDP without EDNS holds this much.
const UDP_MAX: usize = 512;

/// What becomes of a query.
#[derive(Debug)]
pub enum Outcome {
    /// This answer, encoded.
    Reply(Vec<u8>),
    /// Not one of the asker's peers: the upstream servers answer it.
    Forward,
}

/// The answer to `packet` from `asker`; `udp`: it came over UDP, where an
/// answer too long for the asker is sent truncated (it asks again over
/// TCP). None: not a query (nothing is sent back).
pub fn answer(packet: &[u8], asker: &Asker, udp: bool) -> Option<Outcome> {
    let query = Message::from_vec(packet).ok()?;
    if query.message_type() != MessageType::Query {
        return None;
    }
    let fail = |code| Outcome::Reply(failure(&query, code));
    if query.op_code() != OpCode::Query {
        return Some(fail(ResponseCode::NotImp));
    }
    let [q] = query.queries() else {
        return Some(fail(ResponseCode::FormErr));
    };
    let records = match q.query_type() {
        RecordType::PTR => pointer(q.name(), &asker.peers),
        t => addresses(q.name(), t, &asker.peers),
    };
    let Some(records) = records else {
        return Some(match asker.upstream.is_empty() {
            true => fail(ResponseCode::Refused),
            false => Outcome::Forward,
        });
    };
    let mut m = Message::new();
    m.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_authoritative(true)
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(ResponseCode::NoError)
        .add_query(q.clone())
        .add_answers(records);
    let room = usize::from(query.max_payload()).max(UDP_MAX);
    Some(reply(&m, udp, room))
}

/// A refusal of `packet` (None if it is not a query).
pub fn refuse(packet: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(packet).ok()?;
    (query.message_type() == MessageType::Query).then(|| failure(&query, ResponseCode::Refused))
}

/// SERVFAIL for `packet` (None if it is not a query): no upstream answered.
pub fn server_failure(packet: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(packet).ok()?;
    (query.message_type() == MessageType::Query).then(|| failure(&query, ResponseCode::ServFail))
}

/// The answer `code` to `query`, with its question.
fn failure(query: &Message, code: ResponseCode) -> Vec<u8> {
    let mut m = Message::error_msg(query.id(), query.op_code(), code);
    m.add_queries(query.queries().iter().cloned())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true);
    m.to_vec().unwrap_or_default()
}

/// `m` encoded; over UDP cut to its header and query if longer than
/// `room`.
fn reply(m: &Message, udp: bool, room: usize) -> Outcome {
    let bytes = m.to_vec().unwrap_or_default();
    if udp && bytes.len() > room {
        return Outcome::Reply(m.truncate().to_vec().unwrap_or_default());
    }
    Outcome::Reply(bytes)
}

/// The name as the peers' names are kept: lower case, no final dot.
fn plain(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// The records of type `t` for `name` if it is a peer's (none of that
/// type: an empty answer), None if it is not.
fn addresses(name: &Name, t: RecordType, peers: &[Peer]) -> Option<Vec<Record>> {
    let wanted = plain(name);
    let found: Vec<&Peer> = peers.iter().filter(|p| p.answers(&wanted)).collect();
    if found.is_empty() {
        return None;
    }
    let records = found
        .iter()
        .filter_map(|p| match (p.ip, t) {
            (IpAddr::V4(ip), RecordType::A | RecordType::ANY) => Some(RData::A(A(ip))),
            (IpAddr::V6(ip), RecordType::AAAA | RecordType::ANY) => Some(RData::AAAA(AAAA(ip))),
            _ => None,
        })
        .map(|data| Record::from_rdata(name.clone(), TTL, data))
        .collect();
    Some(records)
}

/// The reverse name of a peer's address: "NAME.NETWORK.", as Docker's.
fn pointer(name: &Name, peers: &[Peer]) -> Option<Vec<Record>> {
    let net = name.parse_arpa_name().ok()?;
    if net.prefix_len() != net.max_prefix_len() {
        return None;
    }
    let p = peers.iter().find(|p| p.ip == net.addr())?;
    let first = p.names.first()?;
    let target = Name::from_ascii(format!("{first}.{}.", p.network)).ok()?;
    Some(vec![Record::from_rdata(
        name.clone(),
        TTL,
        RData::PTR(PTR(target)),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use std::net::{Ipv4Addr, SocketAddr};
    use std::str::FromStr;

    fn asker(upstream: bool) -> Asker {
        let peer = |names: &[&str], ip: &str| Peer {
            names: names.iter().map(|n| n.to_string()).collect(),
            network: "backend".into(),
            ip: ip.parse().unwrap(),
        };
        Asker {
            peers: vec![
                peer(&["db", "postgres", "0123456789ab"], "10.9.0.2"),
                peer(&["db", "postgres", "0123456789ab"], "fd00::2"),
                peer(&["web", "ba9876543210"], "10.9.0.3"),
            ],
            upstream: match upstream {
                true => vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 53))],
                false => Vec::new(),
            },
        }
    }

    fn ask(name: &str, t: RecordType, upstream: bool) -> Option<Message> {
        let mut q = Message::new();
        q.set_id(77).set_recursion_desired(true);
        q.add_query(Query::query(Name::from_str(name).unwrap(), t));
        match answer(&q.to_vec().unwrap(), &asker(upstream), true)? {
            Outcome::Reply(bytes) => Some(Message::from_vec(&bytes).unwrap()),
            Outcome::Forward => None,
        }
    }

    fn data(m: &Message) -> Vec<String> {
        m.answers().iter().map(|r| r.data().to_string()).collect()
    }

    #[test]
    fn names_aliases_short_ids_and_name_dot_network_are_answered() {
        for name in [
            "db",
            "DB.",
            "postgres",
            "0123456789ab",
            "db.backend",
            "Postgres.Backend.",
        ] {
            let m = ask(name, RecordType::A, true).expect(name);
            assert_eq!(m.id(), 77);
            assert_eq!(m.response_code(), ResponseCode::NoError);
            assert!(m.recursion_available());
            assert_eq!(data(&m), ["10.9.0.2"], "{name}");
            assert_eq!(m.answers()[0].ttl(), TTL);
        }
        let m = ask("db", RecordType::AAAA, true).unwrap();
        assert_eq!(data(&m), ["fd00::2"]);
        // A name without an address of the type asked: an empty answer,
        // not a trip upstream.
        let m = ask("web", RecordType::AAAA, true).unwrap();
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert!(m.answers().is_empty());
        let m = ask("web", RecordType::MX, true).unwrap();
        assert!(m.answers().is_empty());
    }

    #[test]
    fn other_names_go_upstream_or_are_refused_without_one() {
        assert!(ask("example.com", RecordType::A, true).is_none());
        assert!(ask("db.frontend", RecordType::A, true).is_none());
        assert!(ask("dbx", RecordType::A, true).is_none());
        let m = ask("example.com", RecordType::A, false).unwrap();
        assert_eq!(m.response_code(), ResponseCode::Refused);
    }

    #[test]
    fn a_peers_address_reverses_to_its_name_on_the_network() {
        let m = ask("3.0.9.10.in-addr.arpa.", RecordType::PTR, true).unwrap();
        assert_eq!(data(&m), ["web.backend."]);
        assert!(ask("4.0.9.10.in-addr.arpa.", RecordType::PTR, true).is_none());
    }

    #[test]
    fn what_is_not_a_plain_query_is_refused_or_ignored() {
        let mut q = Message::new();
        q.set_id(5).set_op_code(OpCode::Update);
        let Some(Outcome::Reply(b)) = answer(&q.to_vec().unwrap(), &asker(true), true) else {
            panic!("no reply to an update");
        };
        assert_eq!(
            Message::from_vec(&b).unwrap().response_code(),
            ResponseCode::NotImp
        );
        let mut none = Message::new();
        none.set_id(6);
        let Some(Outcome::Reply(b)) = answer(&none.to_vec().unwrap(), &asker(true), true) else {
            panic!("no reply to an empty query");
        };
        assert_eq!(
            Message::from_vec(&b).unwrap().response_code(),
            ResponseCode::FormErr
        );
        let mut response = Message::new();
        response.set_message_type(MessageType::Response);
        assert!(answer(&response.to_vec().unwrap(), &asker(true), true).is_none());
        assert!(answer(b"\x01\x02garbage", &asker(true), true).is_none());
    }

    #[test]
    fn a_long_answer_over_udp_is_truncated() {
        let mut a = asker(true);
        a.peers = (0..60)
            .map(|i| Peer {
                names: vec!["many".into()],
                network: "n".into(),
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
            })
            .collect();
        let mut q = Message::new();
        q.add_query(Query::query(Name::from_str("many").unwrap(), RecordType::A));
        let bytes = q.to_vec().unwrap();
        let Some(Outcome::Reply(udp)) = answer(&bytes, &a, true) else {
            panic!()
        };
        let udp = Message::from_vec(&udp).unwrap();
        assert!(udp.truncated() && udp.answers().is_empty());
        let Some(Outcome::Reply(tcp)) = answer(&bytes, &a, false) else {
            panic!()
        };
        assert_eq!(Message::from_vec(&tcp).unwrap().answers().len(), 60);
    }
}
