//! `cargo bench --bench seccomp`: what the default seccomp filter costs.
//! Compiling it (done once per capability set by berthd), and a process
//! start with and without it: fork, no_new_privs, load the filter (or not),
//! exec /bin/true, wait. The difference of the medians is what the filter
//! adds to a container's start, its checks on every call of the dynamic
//! loader and of /bin/true included. BERTH_BENCH_N sets the runs (1000).

// Forks and loads filters by hand: the only way to time them alone.
#![allow(unsafe_code)]

#[path = "../server/sys/seccomp/mod.rs"]
#[allow(dead_code, unused_imports)]
mod seccomp;

use std::ffi::CString;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Docker's default capabilities.
const DEFAULT_CAPS: u64 = 0xa804_25fb;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One fork + exec of /bin/true, with the filter if given.
fn start(filter: Option<&seccomp::Program>) -> Duration {
    let path = CString::new("/bin/true").unwrap();
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    let t = Instant::now();
    // SAFETY: the bench is single-threaded; the child only makes system
    // calls (the filter's memory is already built) and execs or exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above, in the child.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            if let Some(f) = filter {
                if seccomp::load(f).is_err() {
                    libc::_exit(2);
                }
            }
            libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(3);
        }
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let elapsed = t.elapsed();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: {status}"
    );
    elapsed
}

fn main() {
    let n: usize = std::env::var("BERTH_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let t = Instant::now();
    for _ in 0..n {
        black_box(seccomp::compile(black_box(DEFAULT_CAPS)));
    }
    let compile = t.elapsed() / n as u32;
    let program = seccomp::compile(DEFAULT_CAPS);
    // Interleaved, so both see the same machine.
    let (mut without, mut with) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        without.push(start(None));
        with.push(start(Some(&program)));
    }
    let (a, b) = (median(without), median(with));
    println!(
        "seccomp filter: {} instructions, compiled in {compile:.1?}",
        program.len()
    );
    println!("process start (fork, exec /bin/true, wait), {n} runs each:");
    println!("without filter  median {:>9.3?}", a);
    println!("with filter     median {:>9.3?}", b);
    println!("filter adds     {:>9.1?}", b.saturating_sub(a));
}
