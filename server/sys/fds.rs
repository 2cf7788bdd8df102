//! File descriptors between processes and in event loops: passed over a
//! unix socket (SCM_RIGHTS), and poll(2) over several.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A connected pair of close-on-exec SEQPACKET unix sockets.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    Ok(socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}

/// Sends `data` on a SEQPACKET socket in one message, with `fd` attached
/// (SCM_RIGHTS) if given.
pub fn send_with_fd(sock: &impl AsRawFd, data: &[u8], fd: Option<RawFd>) -> io::Result<()> {
    send_with_fds(sock, data, fd.as_slice())
}

/// Sends `data` on a SEQPACKET socket in one message, with `fds` attached.
pub fn send_with_fds(sock: &impl AsRawFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = match fds.is_empty() {
        true => &[],
        false => &rights,
    };
    let iov = [io::IoSlice::new(data)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None)?;
    Ok(())
}

/// Receives one message into `buf`, with the first fd that came with it
/// (close-on-exec; any others are closed). Returns its length.
pub fn recv_with_fd(sock: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let (n, fds) = recv_with_fds(sock, buf)?;
    Ok((n, fds.into_iter().next()))
}

/// Receives one message into `buf`, with the fds that came with it (up
/// to four, close-on-exec). Returns its length.
pub fn recv_with_fds(sock: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r?,
        }
    };
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: SCM_RIGHTS installed these fds in our table just
            // now; nothing else owns them.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    Ok((msg.bytes, fds))
}

/// Waits until one of `fds` is readable (or hung up), or `timeout` passes
/// (None: no limit); returns which are. Interrupted: none are.
pub fn poll_readable(
    fds: &[std::os::fd::BorrowedFd<'_>],
    timeout: Option<std::time::Duration>,
) -> io::Result<Vec<bool>> {
    let interest: Vec<_> = fds.iter().map(|fd| (*fd, libc::POLLIN)).collect();
    Ok(poll(&interest, timeout)?.iter().map(|r| *r != 0).collect())
}

/// Waits until one of `fds` is ready for the events asked with it
/// (POLLIN, POLLOUT), or `timeout` passes (None: no limit); returns each
/// one's revents, 0 where not ready (hang-ups and errors included).
/// Interrupted: none are.
pub fn poll(
    fds: &[(std::os::fd::BorrowedFd<'_>, i16)],
    timeout: Option<std::time::Duration>,
) -> io::Result<Vec<i16>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|(fd, events)| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: *events,
            revents: 0,
        })
        .collect();
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
    // SAFETY: `pfds` is a valid array of pollfd for the whole call, and
    // each fd is borrowed, so open, for as long.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![0; fds.len()]);
        }
        return Err(e);
    }
    Ok(pfds.iter().map(|p| p.revents).collect())
}
