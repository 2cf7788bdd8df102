//! Probes of the host: cgroups, processes, monitors; the harness's only
//! unsafe code (signals, fds for a child, random bytes).

#![allow(unsafe_code)]

use super::*;

/// The cgroup directories of container `id` on every hierarchy.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            out.push(e.path().join("berth").join(id));
        }
    }
    out.push(PathBuf::from("/sys/fs/cgroup/berth").join(id));
    out.into_iter().filter(|p| p.exists()).collect()
}

/// The content of cgroup file `file` of container `id`, from whichever
/// hierarchy has it.
pub fn cgroup_file(id: &str, file: &str) -> Option<String> {
    cgroup_dirs(id)
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join(file)).ok())
        .map(|s| s.trim().to_string())
}

/// Host pids in the container's cgroup.
pub fn cgroup_pids(id: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = cgroup_dirs(id)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

pub fn kill_cgroup(id: &str) {
    for dir in cgroup_dirs(id) {
        let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
        let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                host::kill(pid, libc::SIGKILL);
            }
        }
    }
}

pub fn remove_cgroup(id: &str) {
    for _ in 0..50 {
        let dirs = cgroup_dirs(id);
        if dirs.is_empty() {
            return;
        }
        for d in dirs {
            let _ = std::fs::remove_dir(d);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Monitors of containers under `root`, found by their command line and
/// pid namespace.
pub fn monitor_pids(root: &Path) -> Vec<i32> {
    let needle = root.join("containers");
    let needle = needle.to_string_lossy();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // berth's init is a fork of the monitor: same command line, but
        // in the container's pid namespace.
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("\0monitor\0")
                && cmd.contains(needle.as_ref())
                && ns(&pid.to_string()) == ns("self")
            {
                out.push(pid);
            }
        }
    }
    out
}

pub fn kill_monitors(root: &Path) {
    for pid in monitor_pids(root) {
        host::kill(pid, libc::SIGKILL);
    }
}

/// A field of /proc/PID/status, as a number (kB for memory fields).
pub fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// Whether a process with this pid exists (zombies count as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Sends `signal` to `pid`; whether it was delivered.
pub fn kill(pid: i32, signal: i32) -> bool {
    // SAFETY: kill(2) takes no pointers.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// A pipe: its read and write ends, close-on-exec.
pub fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the two-element array it is given.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh fds owned by nothing else.
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

pub fn getrandom(buf: &mut [u8]) {
    // SAFETY: the pointer and length describe `buf`.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    assert_eq!(n as usize, buf.len());
}

/// Starts `cmd`'s child as a shell in a terminal would, whatever started
/// the tests: every signal at its default disposition and none blocked
/// (`cargo test &` starts everything with SIGINT and SIGQUIT ignored),
/// umask 022, and none of berth's own environment variables (BERTH_ROOT,
/// BERTH_CGROUP_PARENT, … of the user running the tests) unless the test
/// sets them after.
pub fn as_from_a_shell(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BERTH_") {
            cmd.env_remove(key);
        }
    }
    // SAFETY: between fork and exec only signal, sigprocmask and umask
    // run, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            for signal in 1..libc::SIGRTMIN() {
                if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                    libc::signal(signal, libc::SIG_DFL);
                }
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            if libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::umask(0o022);
            Ok(())
        });
    }
}

/// Makes `cmd`'s child hold `fds` as 7, 8, … (not close-on-exec).
pub fn inherit_at_7(cmd: &mut Command, fds: Vec<i32>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only dup2 and close run, which are
    // async-signal-safe. Through fds 200+ first, in case a source is
    // already one of 7, 8, ….
    unsafe {
        cmd.pre_exec(move || {
            for (i, fd) in fds.iter().enumerate() {
                if libc::dup2(*fd, 200 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for i in 0..fds.len() as i32 {
                if libc::dup2(200 + i, 7 + i) < 0 || libc::close(200 + i) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Whether the container's cgroups are on a pure cgroup v2 host (no v1
/// controller hierarchies): then limits are in v2's files.
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Whether the container's processes are frozen (v1 freezer.state, v2
/// cgroup.events), on whichever hierarchy has the freezer.
pub fn frozen(id: &str) -> bool {
    cgroup_dirs(id).iter().any(|d| {
        let v1 = std::fs::read_to_string(d.join("freezer.state"));
        let v2 = std::fs::read_to_string(d.join("cgroup.events"));
        v1.is_ok_and(|s| s.trim() == "FROZEN") || v2.is_ok_and(|s| s.contains("frozen 1"))
    })
}

/// A container's limits as its cgroup shows them, in v1's terms on either
/// version: memory, memory+swap (bytes, or a huge number for none), CFS
/// quota in µs (-1: none) and period, CPU shares (v1) or weight (v2; see
/// `cpu_weight`), pids.max.
pub fn cgroup_limits(id: &str) -> [String; 6] {
    let file = |f: &str| cgroup_file(id, f).unwrap_or_else(|| panic!("no {f} for {id}"));
    if !cgroup_v2() {
        return [
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "cpu.cfs_quota_us",
            "cpu.cfs_period_us",
            "cpu.shares",
            "pids.max",
        ]
        .map(file);
    }
    let bytes = |s: &str| -> Option<u64> { s.parse().ok() };
    let none = i64::MAX.to_string();
    let memory = file("memory.max");
    let swap = file("memory.swap.max");
    let memsw = match (bytes(&memory), bytes(&swap)) {
        (Some(m), Some(s)) => (m + s).to_string(),
        _ => none.clone(),
    };
    let cpu_max = file("cpu.max");
    let (quota, period) = cpu_max.split_once(' ').unwrap();
    let quota = if quota == "max" { "-1" } else { quota };
    [
        bytes(&memory).map_or(none, |m| m.to_string()),
        memsw,
        quota.to_string(),
        period.to_string(),
        file("cpu.weight"),
        file("pids.max"),
    ]
}

/// How CPU shares show in the cgroup: themselves on v1, as berth maps
/// them to cpu.weight on v2 (the kernel's default 1024 is weight 100).
pub fn cpu_shares_shown(shares: u64) -> String {
    match (cgroup_v2(), shares) {
        (false, s) => s.to_string(),
        (true, 1024) => "100".into(),
        (true, s) => (1 + (s.clamp(2, 262_144) - 2) * 9999 / 262_142).to_string(),
    }
}

/// Makes `cmd`'s child the leader of a new session whose controlling
/// terminal is its stdin (a pty's far side), as a shell in a terminal is.
pub fn in_terminal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only setsid and ioctl run, which are
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The host's traces of container `id` on networks: its veth (by the
/// namespace pin), its address leases under `root`, NAT rules naming it,
/// its pinned namespace.
pub fn traces(root: &Path, id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let ipam = root.join("networks").join("ipam");
    for net in std::fs::read_dir(&ipam).into_iter().flatten().flatten() {
        for lease in std::fs::read_dir(net.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let content = std::fs::read_to_string(lease.path()).unwrap_or_default();
            if content.starts_with(id) {
                found.push(format!("lease {}", lease.path().display()));
            }
        }
    }
    for program in ["iptables-save", "ip6tables-save"] {
        let nat = std::process::Command::new(program)
            .args(["-t", "nat"])
            .output()
            .unwrap();
        for line in String::from_utf8_lossy(&nat.stdout).lines() {
            if line.contains(id) {
                found.push(format!("rule {line}"));
            }
        }
    }
    let dir = root.join("containers").join(id);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    if mountinfo.contains(&dir.join("netns").display().to_string()) {
        found.push("pinned namespace".into());
    }
    if dir.join("network.json").exists() {
        found.push("network.json".into());
    }
    if Path::new("/run/berth/published").join(id).exists() {
        found.push("published ports entry".into());
    }
    found
}

/// Waits until `bridge` has `n` veths (within 10 s), and asserts it: a
/// container's veth goes with its network namespace, which the kernel
/// takes down after the request that let it go has answered.
pub fn assert_veths(bridge: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while veths(bridge) != n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(veths(bridge), n, "veths on {bridge}");
}

/// The veths on `bridge`.
pub fn veths(bridge: &str) -> usize {
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// The parent of `pid` (0 if it is gone), and its command line.
pub fn parent_of_checked(pid: i32) -> (i32, String) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let ppid: i32 = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let cmd = std::fs::read(format!("/proc/{ppid}/cmdline")).unwrap_or_default();
    (ppid, String::from_utf8_lossy(&cmd).into_owned())
}

/// The parent of `pid`, which runs, and its command line.
pub fn parent_of(pid: i32) -> (i32, String) {
    let parent = parent_of_checked(pid);
    assert_ne!(parent.0, 0, "process {pid} is gone");
    parent
}

/// Until the daemon's launcher runs (within 30 s).
pub async fn until_launcher(d: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let launcher = || {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let pid = e.file_name().to_string_lossy().parse::<i32>();
                pid.is_ok_and(|pid| {
                    let (parent, _) = parent_of_checked(pid);
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    parent == d.pid() as i32 && cmd.starts_with(b"berthd\0launcher\0")
                })
            })
    };
    while !launcher() {
        assert!(Instant::now() < deadline, "no launcher");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A cgroup tree of a test's, removed (deepest first, in every hierarchy)
/// when the test ends.
pub struct CgroupTree(pub String);

impl Drop for CgroupTree {
    fn drop(&mut self) {
        let roots = std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .chain([std::path::PathBuf::from("/sys/fs/cgroup")]);
        for root in roots {
            let top = root.join(&self.0);
            let mut dirs: Vec<std::path::PathBuf> = Vec::new();
            let mut todo = vec![top];
            while let Some(d) = todo.pop() {
                if let Ok(entries) = std::fs::read_dir(&d) {
                    todo.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
                    dirs.push(d);
                }
            }
            for d in dirs.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}
