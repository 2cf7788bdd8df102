//! Processes as /proc shows them: for `top`, the members of a session
//! (a timed-out health probe's), and a network namespace's traffic for
//! `stats`.

use std::time::{Duration, SystemTime};

/// One process, read from /proc/PID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub started_at: SystemTime,
    /// User plus system CPU time.
    pub cpu: Duration,
    /// "pts/0", "tty1", or "?" for none.
    pub tty: String,
    /// The command line, or "[comm]" when it has none (a kernel thread, a
    /// zombie).
    pub command: String,
}

/// Process `pid`, or None if it is gone.
pub fn process(pid: u32) -> Option<Process> {
    let dir = format!("/proc/{pid}");
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let cmdline = std::fs::read(format!("{dir}/cmdline")).unwrap_or_default();
    parse(pid, &stat, &status, &cmdline, boot_time()?, ticks())
}

/// The identity `pid` runs with: effective uid and gid, and its
/// supplementary groups (sorted, as the kernel keeps them).
pub fn identity(pid: u32) -> Option<(u32, u32, Vec<u32>)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_identity(&status)
}

fn parse_identity(status: &str) -> Option<(u32, u32, Vec<u32>)> {
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).map(|v| {
            v.split_whitespace()
                .filter_map(|n| n.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
    };
    // Real, effective, saved, filesystem: the effective one.
    let uid = *field("Uid:")?.get(1)?;
    let gid = *field("Gid:")?.get(1)?;
    Some((uid, gid, field("Groups:")?))
}

/// The pid namespace `pid` lives in ("pid:[4026532201]"), if it still
/// lives: what tells a container's process from a helper of berthd's in
/// its cgroup (an exec's, which stays in the host's namespace).
pub fn pid_namespace(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// The processes in session `sid` (host pids) whose cgroup is that of
/// container `id`: what a health probe that timed out started.
pub fn in_session(sid: &str, id: &str) -> Vec<i32> {
    let Ok(sid) = sid.parse::<u64>() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp session …", after the last ')'.
        let session = stat
            .rfind(')')
            .and_then(|close| stat[close + 1..].split_whitespace().nth(3))
            .and_then(|s| s.parse::<u64>().ok());
        if session != Some(sid) {
            continue;
        }
        let cgroup = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if cgroup.contains(id) {
            out.push(pid);
        }
    }
    out
}

/// A process from its stat, status and cmdline files.
fn parse(
    pid: u32,
    stat: &str,
    status: &str,
    cmdline: &[u8],
    boot: SystemTime,
    ticks: u64,
) -> Option<Process> {
    // "pid (comm) state ppid pgrp session tty_nr …": comm may hold
    // spaces and parentheses, so the fields start after the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n)?.parse().ok() };
    // Counted from "state" (field 3 of proc(5)) as 0.
    let (ppid, tty_nr) = (field(1)?, field(4)?);
    let (utime, stime, start) = (field(11)?, field(12)?, field(19)?);
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let ticks = ticks.max(1);
    let from_ticks = |t: u64| Duration::from_nanos(t.saturating_mul(1_000_000_000 / ticks));
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(Process {
        pid,
        ppid: ppid as u32,
        uid,
        started_at: boot + from_ticks(start),
        cpu: from_ticks(utime + stime),
        tty: tty_name(tty_nr),
        command: match args.is_empty() {
            true => format!("[{comm}]"),
            false => args.join(" "),
        },
    })
}

/// A terminal device number as ps names it.
fn tty_name(nr: u64) -> String {
    let (major, minor) = ((nr >> 8) & 0xfff, (nr & 0xff) | ((nr >> 12) & 0xfff00));
    match major {
        0 => "?".into(),
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        _ => format!("{major}:{minor}"),
    }
}

fn boot_time() -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Clock ticks per second (USER_HZ).
fn ticks() -> u64 {
    // SAFETY: sysconf only reads a constant of the system.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|n| *n > 0).unwrap_or(100)
}

/// Bytes received and sent on the interfaces of `pid`'s network
/// namespace, loopback left out; (0, 0) if it is gone.
pub fn net_bytes(pid: u32) -> (u64, u64) {
    std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
        .map(|t| net_dev(&t))
        .unwrap_or((0, 0))
}

/// /proc/net/dev's received and transmitted bytes, summed without "lo".
fn net_dev(text: &str) -> (u64, u64) {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            (name.trim() != "lo" && f.len() >= 9).then(|| (f[0], f[8]))
        })
        .fold((0, 0), |(r, t), (a, b)| (r + a, t + b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_the_effective_ids_and_the_groups() {
        let status = "Name:\tsh\nUid:\t0\t1000\t1000\t1000\nGid:\t5\t1000\t1000\t1000\nGroups:\t1000 1234 50000 \n";
        assert_eq!(
            parse_identity(status),
            Some((1000, 1000, vec![1000, 1234, 50000]))
        );
        assert_eq!(
            parse_identity("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n"),
            Some((0, 0, vec![]))
        );
    }

    #[test]
    fn a_process_is_read_from_its_proc_files() {
        let stat = "42 (my (odd) prog) S 7 42 42 34816 42 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1000 1000 100 18446744073709551615";
        let status = "Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t0\n";
        let boot = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let p = parse(42, stat, status, b"sleep\x001000\x00", boot, 100).unwrap();
        assert_eq!((p.pid, p.ppid, p.uid), (42, 7, 1000));
        assert_eq!(p.started_at, boot + Duration::from_secs(10));
        assert_eq!(p.cpu, Duration::from_secs(3));
        assert_eq!(p.tty, "pts/0");
        assert_eq!(p.command, "sleep 1000");
        let zombie = parse(42, stat, status, b"", boot, 100).unwrap();
        assert_eq!(zombie.command, "[my (odd) prog]");
        assert_eq!(parse(42, "garbage", status, b"", boot, 100), None);
    }

    #[test]
    fn loopback_is_not_the_containers_traffic() {
        let dev = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:  500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0\n  eth0: 1000      10    0    0    0     0          0         0     2000      20    0    0    0     0       0          0\n";
        assert_eq!(net_dev(dev), (1000, 2000));
        assert_eq!(net_dev(""), (0, 0));
    }
}
