//! Thin interfaces to the kernel, used by the daemon and by the monitor
//! alike: cgroups, seccomp, processes through pidfds, files, time. With
//! monitor/child/, the only place where `unsafe` appears.

#![allow(unsafe_code)]

pub mod cgroup;
pub mod cmdline;
pub mod fds;
pub mod linux;
pub mod mounts;
pub mod procs;
pub mod pty;
pub mod readiness;
pub mod sealed;
pub mod seccomp;
pub mod sockets;
pub mod time;
