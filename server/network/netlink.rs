//! The few rtnetlink requests berth's own bridge networks need: a veth
//! pair made with one end on the bridge and the other in the container's
//! namespace, its addresses and default routes, and its removal. Plain
//! synchronous netlink through netlink-packet-route: each request waits
//! for the kernel's answer.
//!
//! A netlink socket acts in the network namespace it was opened in. Work
//! inside a container's namespace is done by `on_own_thread`, on a thread
//! that enters the namespace and ends with its work: no thread of
//! berthd's runtime ever leaves the host's namespace.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// A netlink socket in the namespace it was opened in.
pub struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// The container's end of a veth pair.
pub struct Peer<'a> {
    pub ifname: &'a str,
    pub mac: [u8; 6],
    /// Its network namespace.
    pub netns: BorrowedFd<'a>,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        Ok(Netlink {
            socket,
            seq: 0,
            buf: vec![0; 16 * 1024],
        })
    }

    /// Sends `msg` and waits for the kernel's answer: its reply message
    /// if it has one, None for an acknowledgement.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Option<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send_to(&out, &SocketAddr::new(0, 0), 0)?;
        loop {
            self.buf.clear();
            let (n, _) = self.socket.recv_from(&mut self.buf, 0)?;
            let mut at = 0;
            while at < n {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[at..n])
                    .map_err(|e| io::Error::other(format!("netlink: {e}")))?;
                let len = reply.header.length as usize;
                if reply.header.sequence_number == self.seq {
                    match reply.payload {
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(None),
                                Some(_) => Err(e.to_io()),
                            }
                        }
                        NetlinkPayload::InnerMessage(m) => return Ok(Some(m)),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                at += len;
            }
        }
    }

    /// The index of interface `name`.
    pub fn index(&mut self, name: &str) -> io::Result<u32> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        match self.request(RouteNetlinkMessage::GetLink(msg), 0)? {
            Some(RouteNetlinkMessage::NewLink(link)) => Ok(link.header.index),
            _ => Err(io::Error::other(format!(
                "netlink: no answer for link {name}"
            ))),
        }
    }

    /// A veth pair: `name` on the bridge of index `bridge` here and up,
    /// `peer` in its namespace (down); `mtu` on both.
    pub fn add_veth(&mut self, name: &str, bridge: u32, mtu: u32, peer: &Peer) -> io::Result<()> {
        // Not up yet: the kernel opens a veth's end only once it knows
        // its peer, which it does after making both.
        let mut inner = LinkMessage::default();
        inner.attributes = vec![
            LinkAttribute::IfName(peer.ifname.into()),
            LinkAttribute::Mtu(mtu),
            LinkAttribute::Address(peer.mac.to_vec()),
            LinkAttribute::NetNsFd(peer.netns.as_raw_fd()),
        ];
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes = vec![
            LinkAttribute::IfName(name.into()),
            LinkAttribute::Mtu(mtu),
            LinkAttribute::Controller(bridge),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(inner))),
            ]),
        ];
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        self.request(RouteNetlinkMessage::NewLink(msg), flags)
            .map(drop)
    }

    /// Brings interface `index` up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK)
            .map(drop)
    }

    /// Removes interface `name` (a veth: both ends).
    pub fn delete_link(&mut self, name: &str) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        self.request(RouteNetlinkMessage::DelLink(msg), NLM_F_ACK)
            .map(drop)
    }

    /// `ip`/`prefix` on interface `index`, usable at once (no duplicate
    /// address detection: addresses are leased, not guessed).
    pub fn add_address(&mut self, index: u32, ip: IpAddr, prefix: u8) -> io::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = family(ip);
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(ip));
        msg.attributes.push(AddressAttribute::Address(ip));
        if let IpAddr::V4(v4) = ip {
            let host = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
            let broadcast = std::net::Ipv4Addr::from(u32::from(v4) | host);
            msg.attributes.push(AddressAttribute::Broadcast(broadcast));
        } else {
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        self.request(RouteNetlinkMessage::NewAddress(msg), flags)
            .map(drop)
    }

    /// The default route of `gateway`'s family through it, out of
    /// interface `index`.
    pub fn add_default_route(&mut self, index: u32, gateway: IpAddr) -> io::Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family(gateway);
        msg.header.table = libc::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
        msg.attributes.push(RouteAttribute::Oif(index));
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        self.request(RouteNetlinkMessage::NewRoute(msg), flags)
            .map(drop)
    }
}

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// Runs `work` on a new thread that ends with it: work that moves its
/// thread to another namespace.
pub async fn on_own_thread<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berthd-netns".into())
        .spawn(move || {
            let _ = tx.send(work());
        })?;
    rx.await
        .unwrap_or_else(|_| Err(io::Error::other("a namespace's thread ended early")))
}
