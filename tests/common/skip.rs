//! Checks a host cannot run are skipped out loud, never passed in
//! silence. A skip is written down for the run (one file per check under
//! the test binaries' temporary directory, in a folder named for the
//! process that started them, cargo); the last test binary,
//! tests/zz_skipped.rs, lists them after every other result. Where CI
//! requires what a check needs, skipping it fails it instead.

use std::path::PathBuf;

/// What a check needs that a host may lack.
#[derive(Clone, Copy, Debug)]
pub enum Need {
    /// Tools from Debian, PyPI or npm: required with BERTH_REQUIRE_TOOLS=1
    /// (CI).
    Tools,
    /// systemd 254 or later as PID 1, or a pure cgroup v2 host: required
    /// with BERTH_REQUIRE_SYSTEMD=1 (CI's VM).
    SystemdOrCgroupV2,
}

impl Need {
    fn required_by(self) -> &'static str {
        match self {
            Need::Tools => "BERTH_REQUIRE_TOOLS",
            Need::SystemdOrCgroupV2 => "BERTH_REQUIRE_SYSTEMD",
        }
    }
}

/// Where this run's skips are written down.
pub fn skip_dir() -> PathBuf {
    let parent = std::os::unix::process::parent_id();
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("skipped-{parent}"))
}

/// Skips the running check (the test thread's name) because the host
/// lacks what `need` names (`why`, with how to get it); panics instead if
/// that is required.
pub fn skip(need: Need, why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a check")
        .to_string();
    let var = need.required_by();
    assert!(
        std::env::var(var).as_deref() != Ok("1"),
        "{test}: {why}, and {var}=1 requires it"
    );
    eprintln!("skipped: {why}");
    let binary = std::env::args()
        .next()
        .map(PathBuf::from)
        .and_then(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let binary = binary.rsplit_once('-').map_or(binary.as_str(), |(b, _)| b);
    let dir = skip_dir();
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join(format!("{binary}::{test}")),
        format!("{binary}::{test}: {why}\n"),
    );
}
