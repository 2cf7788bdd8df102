//! Starts berth-init (berth-init.rs beside this file), PID 1 of a
//! container created with `init: true`. The program is embedded in berthd; the container's
//! process copies it into a sealed memfd and executes that, last thing
//! after its confinement. So nothing needs to exist in the rootfs, and
//! PID 1's executable, environment and command line are the init's and
//! the container's: not berthd's file (readable, and a target for
//! CVE-2019-5736-style overwrites), nor the daemon's environment or paths.

use super::exec::Exec;
use crate::monitor::protocol::{Failure, Step};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

/// The static berth-init executable.
static INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-init"));

/// The sealed copy of berth-init, made before confinement so that the
/// seccomp filter never has to allow what it takes.
pub struct Image(OwnedFd);

impl Image {
    pub fn new() -> Result<Image, Failure> {
        crate::sys::sealed::sealed(c"berth-init", &mut &INIT[..])
            .map(Image)
            .map_err(|e| Failure::new(Step::Init, format!("copy berth-init: {e}")))
    }

    /// Executes berth-init with `exec`'s program, arguments and
    /// environment. Returns only on failure.
    pub fn run(&self, exec: &Exec) -> Failure {
        exec.reset();
        // Blocked across exec until berth-init waits for signals: one sent
        // to a namespace's PID 1 before it blocks them would be dropped.
        if let Err(e) = nix::sys::signal::SigSet::all().thread_block() {
            return Failure::new(Step::Init, format!("block signals: {e}"));
        }
        let mut argv: Vec<&std::ffi::CStr> = vec![c"berth-init"];
        match exec.pause {
            true => argv.push(c"--pause"),
            false => {
                argv.push(c"--");
                argv.extend(exec.args.iter().map(CString::as_c_str));
            }
        }
        let argv: Vec<*const libc::c_char> = argv
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let envp: Vec<*const libc::c_char> = exec
            .env
            .iter()
            .map(|e| e.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        // SAFETY: argv and envp are NULL-terminated arrays of pointers to
        // C strings that outlive the call; AT_EMPTY_PATH with "" executes
        // the fd itself.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                self.0.as_raw_fd(),
                c"".as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        Failure::new(
            Step::Init,
            format!(
                "cannot exec berth-init: {}",
                std::io::Error::last_os_error()
            ),
        )
    }
}
