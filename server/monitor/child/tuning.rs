//! A container's tuning (spec/tuning.rs), applied in its namespaces before
//! it is confined: sysctls through its own /proc and its domain name by
//! the first process, the OOM score adjustment and resource limits by it
//! and by each exec, while they still have the capabilities to raise them.

use super::step;
use crate::monitor::protocol::{Failure, Step};
use crate::spec::Tuning;
use std::path::PathBuf;

/// Sysctls and the domain name: the container's namespaces' own.
pub fn namespaces(t: &Tuning) -> Result<(), Failure> {
    if !t.domainname.is_empty() {
        // The UTS namespace's, as setdomainname(2) would set it.
        step(
            Step::Domainname,
            std::fs::write("/proc/sys/kernel/domainname", &t.domainname),
        )?;
    }
    for (key, value) in &t.sysctls {
        let path: PathBuf = ["/proc/sys"].into_iter().chain(key.split('.')).collect();
        std::fs::write(&path, value)
            .map_err(|e| Failure::new(Step::Sysctls, format!("{key}={value}: {e}")))?;
    }
    Ok(())
}

/// The OOM score adjustment and resource limits of the calling process,
/// which its children inherit.
pub fn process(t: &Tuning) -> Result<(), Failure> {
    if t.oom_score_adj != 0 {
        std::fs::write("/proc/self/oom_score_adj", t.oom_score_adj.to_string()).map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::EACCES | libc::EPERM) => {
                    "lowering it takes CAP_SYS_RESOURCE, which berthd does not have".to_string()
                }
                _ => e.to_string(),
            };
            Failure::new(Step::OomScoreAdj, format!("{}: {why}", t.oom_score_adj))
        })?;
    }
    for u in &t.ulimits {
        let Some((resource, soft, hard)) = u.rlimit() else {
            return Err(Failure::new(Step::Ulimits, format!("unknown {:?}", u.name)));
        };
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads one rlimit struct that lives across the
        // call.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            let e = std::io::Error::last_os_error();
            let why = match e.raw_os_error() {
                Some(libc::EPERM) => {
                    "raising a hard limit takes CAP_SYS_RESOURCE, which berthd does not have"
                        .to_string()
                }
                _ => e.to_string(),
            };
            return Err(Failure::new(Step::Ulimits, format!("{}: {why}", u.name)));
        }
    }
    Ok(())
}
