//! The default seccomp filter, equivalent to Docker's default profile: a
//! list of allowed system calls, more of them for some capabilities, a few
//! allowed only with certain arguments, and EPERM for the rest.
//!
//! berthd compiles the filter to classic BPF once per capability set and
//! hands the program to the monitor in the container's config; the
//! container's process only loads it, the last thing before exec. System
//! calls are found by a binary search over the sorted numbers, so a call
//! costs about ten BPF instructions.
//!
//! io_uring (setup, enter, register) is refused, as in Docker's profile
//! since 25.0: the operations it submits never pass through the filter.
//!
//! Where berth differs from Docker: system calls newer than every one the
//! profile names return ENOSYS instead of EPERM (so a C library falls back
//! to an older call, as it does on an older kernel), and 32-bit (i386, x32)
//! system calls kill the process instead of being checked against i386
//! numbers.

mod names;
mod profile;

pub use profile::{compile_profile, kernel_version, Host as ProfileHost};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// One classic BPF instruction (`struct sock_filter`), packed into a u64
/// for the config file: code << 48 | jt << 40 | jf << 32 | k.
pub type Program = Vec<u64>;

const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const RET: u16 = 0x06; // BPF_RET | BPF_K

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
/// The low 32 bits of the first argument (little-endian).
const ARG0_LOW: u32 = 16;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;
/// x32 system calls share x86_64's arch value and set this bit.
#[cfg(target_arch = "x86_64")]
const X32_BIT: Option<u32> = Some(0x4000_0000);
#[cfg(target_arch = "aarch64")]
const X32_BIT: Option<u32> = None;

macro_rules! nrs {
    ($($name:ident)*) => { &[$(libc::$name as u32),*] };
}

/// Allowed for every container.
const ALLOWED: &[u32] = nrs!(
    SYS_accept SYS_accept4 SYS_adjtimex SYS_bind SYS_brk SYS_capget SYS_capset
    SYS_chdir SYS_clock_adjtime SYS_clock_getres SYS_clock_gettime
    SYS_clock_nanosleep SYS_close SYS_close_range SYS_connect SYS_copy_file_range
    SYS_dup SYS_dup3 SYS_epoll_create1 SYS_epoll_ctl SYS_epoll_pwait SYS_epoll_pwait2
    SYS_eventfd2 SYS_execve SYS_execveat SYS_exit SYS_exit_group SYS_faccessat
    SYS_faccessat2 SYS_fadvise64 SYS_fallocate SYS_fanotify_mark SYS_fchdir
    SYS_fchmod SYS_fchmodat SYS_fchown SYS_fchownat SYS_fcntl SYS_fdatasync
    SYS_fgetxattr SYS_flistxattr SYS_flock SYS_fremovexattr SYS_fsetxattr SYS_fstat
    SYS_fstatfs SYS_fsync SYS_ftruncate SYS_futex SYS_futex_waitv SYS_getcpu
    SYS_getcwd SYS_getdents64 SYS_getegid SYS_geteuid SYS_getgid SYS_getgroups
    SYS_getitimer SYS_getpeername SYS_getpgid SYS_getpid SYS_getppid SYS_getpriority
    SYS_getrandom SYS_getresgid SYS_getresuid SYS_get_robust_list SYS_getrusage
    SYS_getsid SYS_getsockname SYS_getsockopt SYS_gettid SYS_gettimeofday SYS_getuid
    SYS_getxattr SYS_inotify_add_watch SYS_inotify_init1 SYS_inotify_rm_watch
    SYS_io_cancel SYS_ioctl SYS_io_destroy SYS_io_getevents SYS_ioprio_get
    SYS_ioprio_set SYS_io_setup SYS_io_submit SYS_kill SYS_landlock_add_rule SYS_landlock_create_ruleset
    SYS_landlock_restrict_self SYS_lgetxattr SYS_linkat SYS_listen SYS_listxattr
    SYS_llistxattr SYS_lremovexattr SYS_lseek SYS_lsetxattr SYS_madvise SYS_membarrier
    SYS_memfd_create SYS_memfd_secret SYS_mincore SYS_mkdirat SYS_mknodat SYS_mlock
    SYS_mlock2 SYS_mlockall SYS_mmap SYS_mprotect SYS_mq_getsetattr SYS_mq_notify
    SYS_mq_open SYS_mq_timedreceive SYS_mq_timedsend SYS_mq_unlink SYS_mremap
    SYS_msgctl SYS_msgget SYS_msgrcv SYS_msgsnd SYS_msync SYS_munlock SYS_munlockall
    SYS_munmap SYS_name_to_handle_at SYS_nanosleep SYS_newfstatat SYS_openat
    SYS_openat2 SYS_pidfd_open SYS_pidfd_send_signal SYS_pipe2 SYS_pkey_alloc
    SYS_pkey_free SYS_pkey_mprotect SYS_ppoll SYS_prctl SYS_pread64 SYS_preadv
    SYS_preadv2 SYS_prlimit64 SYS_process_mrelease SYS_pselect6 SYS_pwrite64
    SYS_pwritev SYS_pwritev2 SYS_read SYS_readahead SYS_readlinkat SYS_readv
    SYS_recvfrom SYS_recvmmsg SYS_recvmsg SYS_remap_file_pages SYS_removexattr
    SYS_renameat2 SYS_restart_syscall SYS_rseq SYS_rt_sigaction SYS_rt_sigpending
    SYS_rt_sigprocmask SYS_rt_sigqueueinfo SYS_rt_sigreturn SYS_rt_sigsuspend
    SYS_rt_sigtimedwait SYS_rt_tgsigqueueinfo SYS_sched_getaffinity SYS_sched_getattr
    SYS_sched_getparam SYS_sched_get_priority_max SYS_sched_get_priority_min
    SYS_sched_getscheduler SYS_sched_rr_get_interval SYS_sched_setaffinity
    SYS_sched_setattr SYS_sched_setparam SYS_sched_setscheduler SYS_sched_yield
    SYS_seccomp SYS_semctl SYS_semget SYS_semop SYS_semtimedop SYS_sendfile
    SYS_sendmmsg SYS_sendmsg SYS_sendto SYS_setfsgid SYS_setfsuid SYS_setgid
    SYS_setgroups SYS_setitimer SYS_setpgid SYS_setpriority SYS_setregid SYS_setresgid
    SYS_setresuid SYS_setreuid SYS_set_robust_list SYS_setsid SYS_setsockopt
    SYS_set_tid_address SYS_setuid SYS_setxattr SYS_shmat SYS_shmctl SYS_shmdt
    SYS_shmget SYS_shutdown SYS_sigaltstack SYS_signalfd4 SYS_socketpair SYS_splice
    SYS_statfs SYS_statx SYS_symlinkat SYS_sync SYS_syncfs SYS_sysinfo SYS_tee
    SYS_tgkill SYS_timer_create SYS_timer_delete SYS_timer_getoverrun
    SYS_timer_gettime SYS_timer_settime SYS_timerfd_create SYS_timerfd_gettime
    SYS_timerfd_settime SYS_times SYS_tkill SYS_truncate SYS_umask SYS_uname
    SYS_unlinkat SYS_utimensat SYS_vmsplice SYS_wait4 SYS_waitid SYS_write SYS_writev
    // Docker allows these from kernel 4.8 on, where seccomp runs before
    // ptrace can change a call; berth needs a newer kernel anyway.
    SYS_process_vm_readv SYS_process_vm_writev SYS_ptrace
);

#[cfg(target_arch = "x86_64")]
const ALLOWED_ARCH: &[u32] = &[
    libc::SYS_access as u32,
    libc::SYS_alarm as u32,
    libc::SYS_arch_prctl as u32,
    libc::SYS_chmod as u32,
    libc::SYS_chown as u32,
    libc::SYS_creat as u32,
    libc::SYS_dup2 as u32,
    libc::SYS_epoll_create as u32,
    libc::SYS_epoll_ctl_old as u32,
    libc::SYS_epoll_wait as u32,
    libc::SYS_epoll_wait_old as u32,
    libc::SYS_eventfd as u32,
    libc::SYS_fork as u32,
    libc::SYS_futimesat as u32,
    libc::SYS_getdents as u32,
    libc::SYS_getpgrp as u32,
    libc::SYS_getrlimit as u32,
    libc::SYS_get_thread_area as u32,
    libc::SYS_inotify_init as u32,
    333, // io_pgetevents
    libc::SYS_lchown as u32,
    libc::SYS_link as u32,
    libc::SYS_lstat as u32,
    libc::SYS_mkdir as u32,
    libc::SYS_mknod as u32,
    libc::SYS_modify_ldt as u32,
    libc::SYS_open as u32,
    libc::SYS_pause as u32,
    libc::SYS_pipe as u32,
    libc::SYS_poll as u32,
    libc::SYS_readlink as u32,
    libc::SYS_rename as u32,
    libc::SYS_renameat as u32,
    libc::SYS_rmdir as u32,
    libc::SYS_select as u32,
    libc::SYS_setrlimit as u32,
    libc::SYS_set_thread_area as u32,
    libc::SYS_signalfd as u32,
    libc::SYS_stat as u32,
    libc::SYS_symlink as u32,
    libc::SYS_sync_file_range as u32,
    libc::SYS_time as u32,
    libc::SYS_unlink as u32,
    libc::SYS_utime as u32,
    libc::SYS_utimes as u32,
    libc::SYS_vfork as u32,
];

#[cfg(target_arch = "aarch64")]
const ALLOWED_ARCH: &[u32] = &[
    292, // io_pgetevents
    84,  // sync_file_range2
];

/// Capability numbers (as Linux numbers them) that allow more calls.
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_MODULE: u32 = 16;
const CAP_SYS_RAWIO: u32 = 17;
const CAP_SYS_CHROOT: u32 = 18;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_PACCT: u32 = 20;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_BOOT: u32 = 22;
const CAP_SYS_NICE: u32 = 23;
const CAP_SYS_TIME: u32 = 25;
const CAP_SYS_TTY_CONFIG: u32 = 26;
const CAP_SYSLOG: u32 = 34;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Calls allowed with a capability, as Docker's profile has them.
fn allowed_with(cap: u32) -> Vec<u32> {
    let mut nrs: Vec<u32> = match cap {
        CAP_DAC_READ_SEARCH => nrs!(SYS_open_by_handle_at).to_vec(),
        CAP_SYS_ADMIN => nrs!(
            SYS_bpf SYS_clone SYS_clone3 SYS_fanotify_init SYS_fsconfig SYS_fsmount
            SYS_fsopen SYS_fspick SYS_lookup_dcookie SYS_mount SYS_mount_setattr
            SYS_move_mount SYS_open_tree SYS_perf_event_open SYS_quotactl
            SYS_quotactl_fd SYS_setdomainname SYS_sethostname SYS_setns SYS_syslog
            SYS_umount2 SYS_unshare
        )
        .to_vec(),
        CAP_SYS_BOOT => nrs!(SYS_reboot).to_vec(),
        CAP_SYS_CHROOT => nrs!(SYS_chroot).to_vec(),
        CAP_SYS_MODULE => nrs!(SYS_delete_module SYS_init_module SYS_finit_module).to_vec(),
        CAP_SYS_PACCT => nrs!(SYS_acct).to_vec(),
        CAP_SYS_PTRACE => nrs!(SYS_kcmp SYS_pidfd_getfd SYS_process_madvise).to_vec(),
        CAP_SYS_TIME => nrs!(SYS_settimeofday SYS_clock_settime).to_vec(),
        CAP_SYS_TTY_CONFIG => nrs!(SYS_vhangup).to_vec(),
        CAP_SYS_NICE => nrs!(
            SYS_get_mempolicy SYS_mbind SYS_set_mempolicy SYS_set_mempolicy_home_node
        )
        .to_vec(),
        CAP_SYSLOG => nrs!(SYS_syslog).to_vec(),
        CAP_BPF => nrs!(SYS_bpf).to_vec(),
        CAP_PERFMON => nrs!(SYS_perf_event_open).to_vec(),
        _ => Vec::new(),
    };
    #[cfg(target_arch = "x86_64")]
    if cap == CAP_SYS_RAWIO {
        nrs.extend([libc::SYS_iopl as u32, libc::SYS_ioperm as u32]);
    }
    nrs
}

/// Namespace flags clone may not be given without CAP_SYS_ADMIN:
/// NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
const CLONE_NAMESPACES: u32 = 0x7e02_0000;
/// personality() values Docker allows: PER_LINUX, PER_LINUX32,
/// UNAME26, PER_LINUX32|UNAME26, and the query 0xffffffff.
const PERSONALITIES: &[u32] = &[0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];
const AF_VSOCK: u32 = 40;
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// What the filter does with one system call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Allow,
    Errno(u32),
    /// Allowed if the first argument's low 32 bits are one of these
    /// (the kernel reads it as a 32-bit int), EPERM otherwise.
    Arg0In(Vec<u32>),
    /// Allowed unless the first argument's low 32 bits are this value.
    Arg0Not(u32),
    /// Allowed if the first argument has none of these bits.
    Arg0NoBits(u32),
}

/// The rules for a container with capabilities `caps`; calls not in the
/// map get EPERM.
fn rules(caps: u64) -> BTreeMap<u32, Rule> {
    let mut rules = BTreeMap::new();
    for &nr in ALLOWED.iter().chain(ALLOWED_ARCH) {
        rules.insert(nr, Rule::Allow);
    }
    for cap in 0..64 {
        if caps & (1 << cap) != 0 {
            for nr in allowed_with(cap) {
                rules.insert(nr, Rule::Allow);
            }
        }
    }
    rules.insert(libc::SYS_socket as u32, Rule::Arg0Not(AF_VSOCK));
    rules.insert(
        libc::SYS_personality as u32,
        Rule::Arg0In(PERSONALITIES.to_vec()),
    );
    if caps & (1 << CAP_SYS_ADMIN) == 0 {
        rules.insert(libc::SYS_clone as u32, Rule::Arg0NoBits(CLONE_NAMESPACES));
        // ENOSYS: the C library falls back to clone, whose flags are checked.
        rules.insert(libc::SYS_clone3 as u32, Rule::Errno(ENOSYS));
    }
    rules
}

/// The newest system call the profile names, on this architecture; calls
/// above it are unknown to the profile.
fn newest_known() -> u32 {
    let mut all: Vec<u32> = ALLOWED.iter().chain(ALLOWED_ARCH).copied().collect();
    for cap in 0..64 {
        all.extend(allowed_with(cap));
    }
    all.extend([libc::SYS_socket, libc::SYS_personality, libc::SYS_clone3].map(|n| n as u32));
    all.into_iter().max().unwrap_or(0)
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> u64 {
    (code as u64) << 48 | (jt as u64) << 40 | (jf as u64) << 32 | k as u64
}

fn ret(value: u32) -> u64 {
    insn(RET, 0, 0, value)
}

/// The program for a container with capabilities `caps` (the set it really
/// gets, after the daemon's own bounding set).
pub fn compile(caps: u64) -> Program {
    let deny = RET_ERRNO | EPERM;
    let mut p = header();
    // Ranges of consecutive numbers with the same rule, gaps denied, and
    // everything past the newest known call ENOSYS.
    let rules = rules(caps);
    let mut ranges: Vec<(u32, Rule)> = Vec::new();
    let mut push = |start: u32, rule: Rule| match ranges.last() {
        Some((_, last)) if *last == rule => {}
        _ => ranges.push((start, rule)),
    };
    let mut next = 0;
    for (&nr, rule) in &rules {
        if nr > next {
            push(next, Rule::Errno(EPERM));
        }
        push(nr, rule.clone());
        next = nr + 1;
    }
    let newest = newest_known();
    if newest + 1 > next {
        push(next, Rule::Errno(EPERM));
    }
    push(newest + 1, Rule::Errno(ENOSYS));
    p.extend(tree(&ranges, deny));
    p
}

/// Binary search over `ranges` (sorted by start; the first starts at 0):
/// a JGE on the middle start splits them, down to one range's rule. The
/// accumulator holds the call number on entry.
fn tree(ranges: &[(u32, Rule)], deny: u32) -> Vec<u64> {
    let leaves: Vec<(u32, Vec<u64>)> = ranges
        .iter()
        .map(|(start, rule)| (*start, leaf(rule, deny)))
        .collect();
    tree_of(&leaves)
}

/// The same over ranges whose code is given: each leaf's instructions
/// end the program (they return).
fn tree_of(ranges: &[(u32, Vec<u64>)]) -> Vec<u64> {
    if let [(_, code)] = ranges {
        return code.clone();
    }
    let mid = ranges.len() / 2;
    let (below, above) = (tree_of(&ranges[..mid]), tree_of(&ranges[mid..]));
    let mut out = Vec::with_capacity(below.len() + above.len() + 2);
    match u8::try_from(below.len()) {
        Ok(skip) => out.push(insn(JGE, skip, 0, ranges[mid].0)),
        Err(_) => {
            out.push(insn(JGE, 0, 1, ranges[mid].0));
            out.push(insn(JA, 0, 0, below.len() as u32));
        }
    }
    out.extend(below);
    out.extend(above);
    out
}

/// The program's start: calls of another architecture (or x32) kill the
/// process; the call's number is loaded.
fn header() -> Vec<u64> {
    let mut p = vec![
        insn(LD_ABS, 0, 0, ARCH),
        insn(JEQ, 1, 0, AUDIT_ARCH),
        ret(RET_KILL_PROCESS),
        insn(LD_ABS, 0, 0, NR),
    ];
    if let Some(bit) = X32_BIT {
        p.extend([insn(JGE, 0, 1, bit), ret(RET_KILL_PROCESS)]);
    }
    p
}

fn leaf(rule: &Rule, deny: u32) -> Vec<u64> {
    let load = insn(LD_ABS, 0, 0, ARG0_LOW);
    match rule {
        Rule::Allow => vec![ret(RET_ALLOW)],
        Rule::Errno(e) => vec![ret(RET_ERRNO | e)],
        Rule::Arg0Not(v) => vec![load, insn(JEQ, 1, 0, *v), ret(RET_ALLOW), ret(deny)],
        Rule::Arg0NoBits(bits) => vec![load, insn(JSET, 1, 0, *bits), ret(RET_ALLOW), ret(deny)],
        Rule::Arg0In(values) => {
            let mut out = vec![load];
            let n = values.len();
            for (i, v) in values.iter().enumerate() {
                // Equal: jump over the remaining compares and the deny.
                out.push(insn(JEQ, (n - i) as u8, 0, *v));
            }
            out.push(ret(deny));
            out.push(ret(RET_ALLOW));
            out
        }
    }
}

/// The daemon's compiled filters, one per capability set.
pub struct Filters {
    /// The daemon's bounding set: a container gets no capability outside it.
    bounding: u64,
    compiled: Mutex<HashMap<u64, Arc<Program>>>,
}

impl Filters {
    pub fn new() -> Filters {
        let bounding = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("CapBnd:"))?;
                u64::from_str_radix(line["CapBnd:".len()..].trim(), 16).ok()
            })
            .unwrap_or(u64::MAX);
        Filters {
            bounding,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// `caps` as a container really gets them.
    pub fn bounded(&self, caps: u64) -> u64 {
        caps & self.bounding
    }

    /// The filter for a container given capabilities `caps`, compiled the
    /// first time a container has that set.
    pub fn get(&self, caps: u64) -> Arc<Program> {
        let caps = caps & self.bounding;
        let mut compiled = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        compiled
            .entry(caps)
            .or_insert_with(|| {
                let program = Arc::new(compile(caps));
                tracing::debug!(
                    caps = format!("{caps:#x}"),
                    instructions = program.len(),
                    "seccomp filter compiled"
                );
                program
            })
            .clone()
    }
}

/// Loads `program` into the calling thread; no_new_privs must be set.
pub fn load(program: &Program) -> std::io::Result<()> {
    let filters: Vec<libc::sock_filter> = program
        .iter()
        .map(|&i| libc::sock_filter {
            code: (i >> 48) as u16,
            jt: (i >> 40) as u8,
            jf: (i >> 32) as u8,
            k: i as u32,
        })
        .collect();
    let prog = libc::sock_fprog {
        len: u16::try_from(filters.len()).map_err(|_| std::io::Error::other("filter too long"))?,
        filter: filters.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the kernel copies the program during the call; `prog` and
    // `filters` outlive it.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
