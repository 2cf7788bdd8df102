//! What confines the container's process, set in the cloned child after
//! pivot_root and before exec, as Docker's defaults do: masked and
//! read-only paths in /proc and /sys, the capability sets reduced to the
//! container's, no_new_privs and the seccomp filter. A privileged container
//! is spared all of it.

use crate::monitor::protocol::{Failure, Step};
use crate::spec::{parse_id, parse_user, passwd_entry, Id, Spec};
use crate::sys::seccomp::{self, Program};
use nix::mount::{mount, MsFlags};
use std::path::Path;

/// Hidden: a file gets /dev/null over it, a directory an empty read-only
/// tmpfs.
const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Visible but not writable.
const READ_ONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Applies everything; the last step before exec (or berth's init). The
/// seccomp filter comes last: it forbids calls made before it.
pub fn confine(spec: &Spec, filter: Option<&Program>) -> Result<(), Failure> {
    if !spec.privileged {
        let paths = |given: &Option<Vec<String>>, default: &[&str]| -> Vec<String> {
            match given {
                Some(p) => p.clone(),
                None => default.iter().map(|p| p.to_string()).collect(),
            }
        };
        for path in paths(&spec.masked_paths, MASKED) {
            mask(Path::new(&path))
                .map_err(|e| Failure::new(Step::MaskPaths, format!("{path}: {e}")))?;
        }
        for path in paths(&spec.readonly_paths, READ_ONLY) {
            read_only(Path::new(&path))
                .map_err(|e| Failure::new(Step::MaskPaths, format!("{path}: {e}")))?;
        }
    }
    confine_process(spec, filter)
}

/// What confines the process itself (the paths are the mount namespace's):
/// capabilities, user, no_new_privs, seccomp. An exec gets this in the
/// container's namespaces.
pub fn confine_process(spec: &Spec, filter: Option<&Program>) -> Result<(), Failure> {
    // Fail closed: only a privileged or unconfined container runs
    // unfiltered.
    if filter.is_none() && spec.filtered() {
        return Err(Failure::new(Step::Seccomp, "no filter in the config"));
    }
    let seccomp = || match filter {
        Some(filter) => seccomp::load(filter).map_err(|e| Failure::new(Step::Seccomp, e)),
        None => Ok(()),
    };
    // Without no_new_privs, loading a filter takes CAP_SYS_ADMIN: it is
    // loaded first, while the process still has it, and what follows
    // (setgroups, setresuid, capset, execve) is what the filter allows.
    if !spec.no_new_privs() {
        seccomp()?;
    }
    let caps =
        bounding_set(spec.capabilities()).map_err(|e| Failure::new(Step::Capabilities, e))?;
    if !spec.user.is_empty() || !spec.tuning.group_add.is_empty() {
        let user = match spec.user.as_str() {
            "" => "0",
            u => u,
        };
        switch_user(user, &spec.tuning.group_add, spec.tuning.strict_groups)?;
    }
    capabilities(caps).map_err(|e| Failure::new(Step::Capabilities, e))?;
    if spec.no_new_privs() {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(Failure::new(
                Step::NoNewPrivs,
                std::io::Error::last_os_error(),
            ));
        }
        seccomp()?;
    }
    Ok(())
}

fn mask(path: &Path) -> nix::Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // not on this kernel
    };
    if meta.is_dir() {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0"),
        )
    } else {
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    }
}

fn read_only(path: &Path) -> nix::Result<()> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
}

/// Reduces the bounding set to `caps`, leaving out capabilities the
/// daemon itself lacks ("all" is all it has); returns the set kept.
fn bounding_set(caps: u64) -> std::io::Result<u64> {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
        .min(63);
    let mut caps = caps;
    for cap in 0..=last {
        // SAFETY: prctl with integer arguments only.
        let held = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
        if held != 1 {
            caps &= !(1 << cap);
        }
        if caps & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(caps)
}

/// Sets the effective and permitted sets to `caps`; the inheritable and
/// ambient sets are emptied (as Docker does since 20.10.14), so a program
/// run by a user other than root gains no capability, whatever its file
/// capabilities say.
fn capabilities(caps: u64) -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let word = |shift: u32| {
        let v = (caps >> shift) as u32;
        Data {
            effective: v,
            permitted: v,
            inheritable: 0,
        }
    };
    let data = [word(0), word(32)];
    // SAFETY: capset reads one header and two data structs (version 3),
    // laid out as the kernel's, from memory that lives across the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Switches to `user` ("uid[:gid]" or "name[:group]", names from the
/// container's /etc/passwd and /etc/group): supplementary groups from
/// /etc/group and `group_add`, then gid, then uid. The permitted set is
/// kept across the uid change for `capabilities`; exec as a user other
/// than root then leaves the process none.
fn switch_user(user: &str, group_add: &[String], strict: bool) -> Result<(), Failure> {
    let fail = |m: String| Failure::new(Step::User, m);
    let (u, g) = parse_user(user).ok_or_else(|| fail(format!("invalid user {user:?}")))?;
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let entry = passwd_entry(&passwd, &u);
    let uid = match (&u, &entry) {
        (Id::Number(n), _) => *n,
        (Id::Name(_), Some(f)) => {
            parse_id(f[2]).ok_or_else(|| fail(format!("bad uid in /etc/passwd for {user:?}")))?
        }
        (Id::Name(name), None) => return Err(fail(format!("no user {name:?} in /etc/passwd"))),
    };
    let group_id = |name: &str| {
        group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && f[0] == name)
            .and_then(|f| parse_id(f[2]))
            .ok_or_else(|| fail(format!("no group {name:?} in /etc/group")))
    };
    let gid = match g {
        Some(Id::Number(n)) => n,
        Some(Id::Name(name)) => group_id(name)?,
        None => match entry.as_ref().map(|f| f[3]) {
            Some(g) => {
                parse_id(g).ok_or_else(|| fail(format!("bad gid in /etc/passwd for {user:?}")))?
            }
            None => 0,
        },
    };
    // Groups that list the user by name (name:password:gid:members).
    let mut groups = vec![nix::unistd::Gid::from_raw(gid)];
    if let Some(name) = entry.as_ref().map(|f| f[0]).filter(|_| !strict) {
        for f in group.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Some(g) = parse_id(f[2]) {
                    groups.push(nix::unistd::Gid::from_raw(g));
                }
            }
        }
    }
    for g in group_add {
        let gid = match parse_id(g) {
            Some(n) => n,
            None => group_id(g)?,
        };
        groups.push(nix::unistd::Gid::from_raw(gid));
    }
    let sys = |what: &str, r: nix::Result<()>| r.map_err(|e| fail(format!("{what}: {e}")));
    sys("setgroups", nix::unistd::setgroups(&groups))?;
    let g = nix::unistd::Gid::from_raw(gid);
    sys("setresgid", nix::unistd::setresgid(g, g, g))?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(fail(format!(
            "keep capabilities: {}",
            std::io::Error::last_os_error()
        )));
    }
    let u = nix::unistd::Uid::from_raw(uid);
    sys("setresuid", nix::unistd::setresuid(u, u, u))
}
