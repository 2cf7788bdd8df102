//! The user's program: found, then exec'd with a clean slate.

use super::step;
use crate::monitor::protocol::{Failure, Step};
use crate::spec::Spec;
use crate::sys::linux;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::stat::{umask, Mode};
use std::ffi::CString;

/// A resolved program, ready to exec.
pub struct Exec {
    path: CString,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    shown: String,
    /// berth-init is to pause (a pod sandbox): there is no program.
    pub pause: bool,
}

impl Exec {
    /// Resets what the process inherited from berth, then execs. Returns
    /// only on failure.
    pub fn run(&self) -> Failure {
        self.reset();
        match nix::unistd::execve(&self.path, &self.args, &self.env) {
            Err(e) => Failure::new(Step::Exec, format!("cannot exec {:?}: {e}", self.shown)),
            Ok(never) => match never {},
        }
    }

    /// What a program must not inherit from berth: signal dispositions and
    /// mask, and the umask.
    pub fn reset(&self) {
        reset_signals();
        umask(Mode::from_bits_truncate(0o022));
    }
}

/// Signal dispositions set to default and nothing blocked: ignored signals
/// survive exec, and berth's processes ignore SIGPIPE.
fn reset_signals() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting a default disposition installs no handler code.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Finds the executable (through the container's PATH when it has no "/")
/// and builds argv and envp.
pub(super) fn resolve(spec: &Spec) -> Result<Exec, Failure> {
    let cs = |s: &str| step(Step::Exec, linux::cstring(s));
    // Read inside the container's root, as switch_user reads it.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let env = spec.environment(&crate::spec::home(&spec.user, &passwd));
    if spec.sandbox {
        return Ok(Exec {
            path: cs("berth-init")?,
            args: Vec::new(),
            env: env.iter().map(|e| cs(e)).collect::<Result<_, _>>()?,
            shown: "pause".into(),
            pause: true,
        });
    }
    let program = &spec.args[0];
    let path = if program.contains('/') {
        program.clone()
    } else {
        let search = env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(crate::spec::DEFAULT_PATH);
        search
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{d}/{program}"))
            .find(|p| nix::unistd::access(p.as_str(), nix::unistd::AccessFlags::X_OK).is_ok())
            .ok_or_else(|| {
                Failure::new(
                    Step::Exec,
                    format!("exec: {program:?}: executable file not found in $PATH"),
                )
            })?
    };
    Ok(Exec {
        path: cs(&path)?,
        args: spec.args.iter().map(|a| cs(a)).collect::<Result<_, _>>()?,
        env: env.iter().map(|e| cs(e)).collect::<Result<_, _>>()?,
        shown: program.clone(),
        pause: false,
    })
}
