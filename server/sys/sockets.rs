//! Listening sockets with the options plain std binds cannot set: on an
//! address that is not local yet (IP_FREEBIND), or on IPv6 only.

use nix::sys::socket::{self as s, sockopt, AddressFamily, SockFlag, SockType};
use nix::sys::socket::{SockaddrIn, SockaddrIn6};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

/// How a socket is bound.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// A stream (listening), else a datagram socket.
    pub stream: bool,
    /// The address need not be local yet.
    pub freebind: bool,
}

/// A non-blocking socket bound to `at` (IPv6 ones on IPv6 only), with
/// SO_REUSEADDR (a daemon started again binds at once, whatever its last
/// connections left in TIME_WAIT); listening if a stream.
pub fn bound(at: SocketAddr, o: Options) -> std::io::Result<OwnedFd> {
    let kind = match o.stream {
        true => SockType::Stream,
        false => SockType::Datagram,
    };
    let family = match at {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let fd = s::socket(family, kind, flags, None)?;
    if o.freebind {
        s::setsockopt(&fd, sockopt::IpFreebind, &true)?;
    }
    s::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    match at {
        SocketAddr::V4(v4) => s::bind(fd.as_raw_fd(), &SockaddrIn::from(v4))?,
        SocketAddr::V6(v6) => {
            s::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
            s::bind(fd.as_raw_fd(), &SockaddrIn6::from(v6))?
        }
    }
    if o.stream {
        s::listen(&fd, s::Backlog::new(128).unwrap_or(s::Backlog::MAXCONN))?;
    }
    Ok(fd)
}
