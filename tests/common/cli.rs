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
    host::as_from_a_shell(&mut cmd);
    cmd
}

/// `berth run -d --name NAME --network none <the test rootfs> sleep 1000`:
/// a container to exec in.
pub fn run_sleeping(d: &Daemon, name: &str) {
    let rootfs = rootfs().display().to_string();
    let args = [
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        &rootfs,
        "sleep",
        "1000",
    ];
    ok(berth(d, &args));
}

/// `berth run --rm --network none [flags] <the test rootfs> sh -c SCRIPT`:
/// exit code, stdout and stderr.
pub fn run_rm(d: &Daemon, flags: &[&str], script: &str) -> (Option<i32>, String, String) {
    let rootfs = rootfs().display().to_string();
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(flags);
    args.extend([rootfs.as_str(), "sh", "-c", script]);
    let out = berth(d, &args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stdout(&out), err)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Its stdout, after checking that it succeeded.
pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "{o:?}");
    stdout(&o)
}

/// The lines a streaming command prints on stdout, read in a thread.
pub fn stream_lines(mut cmd: Command) -> (Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}
