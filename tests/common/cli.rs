//! The `berth` command line, run against a test's daemon.

use super::*;
use std::process::Output;

/// `berth --host <the daemon> ARGS…`, run to its end.
pub fn berth(d: &Daemon, args: &[&str]) -> Output {
    cli(d, args).output().expect("run berth")
}

/// `berth --host <the daemon> ARGS…`, to be spawned.
pub fn cli(d: &Daemon, args: &[&str]) -> Command {
    let mut cmd = Command::new(berth_cli());
    cmd.arg("--host").arg(d.host()).args(args);
    cmd
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Its stdout, after checking that it succeeded.
pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "{o:?}");
    stdout(&o)
}
