//! What confines the container's process, set in the cloned child after
//! pivot_root and before exec, as Docker's defaults do: masked and
//! read-only paths in /proc and /sys, the capability sets reduced to the
//! container's, no_new_privs and the seccomp filter. A privileged container
//! is spared all of it.

use super::monitor::StepError;
use super::seccomp::{self, Program};
use super::spec::Spec;
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
pub fn confine(spec: &Spec, filter: Option<&Program>) -> Result<(), StepError> {
    if !spec.privileged {
        for path in MASKED {
            mask(Path::new(path))
                .map_err(|e| StepError::new("mask paths", format!("{path}: {e}")))?;
        }
        for path in READ_ONLY {
            read_only(Path::new(path))
                .map_err(|e| StepError::new("mask paths", format!("{path}: {e}")))?;
        }
    }
    capabilities(spec.capabilities()).map_err(|e| StepError::new("capabilities", e))?;
    if !spec.privileged {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(StepError::new(
                "no_new_privs",
                std::io::Error::last_os_error(),
            ));
        }
    }
    if let Some(filter) = filter {
        seccomp::load(filter).map_err(|e| StepError::new("seccomp", e))?;
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

/// Reduces the bounding set to `caps` and sets the effective, permitted
/// and inheritable sets to it; the ambient set is cleared. Capabilities the
/// daemon itself lacks are left out: "all" is all it has.
fn capabilities(caps: u64) -> std::io::Result<()> {
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
            inheritable: v,
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
