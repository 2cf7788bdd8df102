//! CVE-2019-5736's attack, as a container would make it: no process a
//! container can see ever has a host file as its executable, or an fd to
//! one, at any moment of an exec or a start. A container that opened
//! berthd's binary could keep the fd and write through it once berthd is
//! upgraded and no longer runs that file.

mod common;
use berth::pb;
use common::*;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// Races /proc/PID/exe and /proc/PID/fd/* of every other process that
/// appears until /s/stop exists, opening each for reading and for
/// writing (non-blocking, never as a controlling terminal), and appends
/// "MODE PID DEV INO LINK" for each open that succeeded to /s/found. An fd
/// opened for writing whose link names berthd is written one byte at
/// offset 0 (the byte already there), and "wrote LINK" is appended if
/// that worked. Plain perl: the rootfs has no modules.
const ATTACKER: &str = r#"
$| = 1;
open(my $out, ">>", "/s/found") or die "found: $!";
open(my $ready, ">", "/s/ready") or die; print $ready "$$\n"; close $ready;
my $rounds = 0;
until (-e "/s/stop") {
  $rounds++;
  opendir(my $proc, "/proc") or next;
  my @pids = grep { /^\d+$/ && $_ != $$ } readdir($proc);
  closedir($proc);
  for my $pid (@pids) {
    my @paths = ("/proc/$pid/exe");
    if (opendir(my $fds, "/proc/$pid/fd")) {
      push @paths, map { "/proc/$pid/fd/$_" } grep { /^\d+$/ } readdir($fds);
      closedir($fds);
    }
    for my $path (@paths) {
      for my $mode (0, 2) {
        my $fh;
        sysopen($fh, $path, $mode | 04000 | 0400) or next;
        my @st = stat($fh);
        my $link = readlink($path) // "?";
        print $out "$mode $pid $st[0] $st[1] $link\n";
        if ($mode == 2 && $link =~ /berthd/) {
          my $b;
          if (sysread($fh, $b, 1) == 1 && sysseek($fh, 0, 0) && syswrite($fh, $b, 1) == 1) {
            print $out "wrote $link\n";
          }
        }
        close($fh);
      }
    }
  }
}
print $out "rounds $rounds\n";
"#;

/// The files of the host a container may legitimately reach: its own bind
/// mounts. Everything else on the host's filesystems is off limits.
#[derive(Clone)]
struct HostFiles {
    berthd: (u64, u64),
    devices: HashSet<u64>,
    allowed: HashSet<(u64, u64)>,
}

impl HostFiles {
    fn new(d: &common::Daemon, container_dir: &Path) -> HostFiles {
        let key = |p: &Path| {
            let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (m.dev(), m.ino())
        };
        let devices = ["/", "/usr", "/tmp", "/run", "/var", berthd()]
            .iter()
            .map(|p| Path::new(p).to_path_buf())
            .chain([d.root.clone(), d.dir.clone()])
            .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.dev()))
            .collect();
        let mut allowed: HashSet<(u64, u64)> = ["hosts", "hostname", "resolv.conf"]
            .iter()
            .map(|f| container_dir.join(f))
            .filter(|p| p.exists())
            .map(|p| key(&p))
            .collect();
        for entry in std::fs::read_dir(d.share("s")).unwrap() {
            allowed.insert(key(&entry.unwrap().path()));
        }
        allowed.insert(key(&d.share("s")));
        HostFiles {
            berthd: key(Path::new(berthd())),
            devices,
            allowed,
        }
    }

    /// Whether (dev, ino) is a host file the container must never hold.
    fn forbidden(&self, dev: u64, ino: u64) -> bool {
        (dev, ino) == self.berthd
            || (self.devices.contains(&dev) && !self.allowed.contains(&(dev, ino)))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_racing_proc_never_opens_a_host_file() {
    let d = Daemon::start("escape-exec").await;
    let mut api = d.api().await;
    let mut req = shared(&d, "target", &["sh", "-c", ATTACKER_RUN]);
    req.env.push(format!("SCRIPT={ATTACKER}"));
    // With CAP_SYS_PTRACE the container may open the /proc files of
    // non-dumpable processes too: what it sees is what the executables
    // and fds themselves give away, not what the second layer hides.
    req.cap_add.push("SYS_PTRACE".into());
    let id = started(&mut api, req).await;
    let share = d.share("s");
    read_when_ready(&share.join("ready")).await;
    let host = HostFiles::new(&d, &d.container_dir(&id));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scanner = {
        let (id, stop, host) = (id.clone(), stop.clone(), host.clone());
        std::thread::spawn(move || scan_until(&id, &host, &stop))
    };
    let mut hits = 0;
    for i in 0..200 {
        let r = api
            .exec_sync(pb::ExecSyncRequest {
                id: id.clone(),
                process: Some(pb::ExecProcess {
                    args: vec!["sleep".into(), "0.01".into()],
                    ..Default::default()
                }),
                timeout_seconds: 10,
            })
            .await
            .unwrap_or_else(|e| panic!("exec {i}: {e}"))
            .into_inner();
        assert_eq!(r.exit_code, 0, "exec {i}: {r:?}");
        hits += 1;
    }
    std::fs::write(share.join("stop"), "").unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let scan = scanner.join().unwrap();
    let found = read_when_done(&share.join("found")).await;
    let mut opened = 0;
    let mut bad = Vec::new();
    for line in found.lines() {
        if line.starts_with("wrote ") {
            bad.push(line.to_string());
            continue;
        }
        let f: Vec<&str> = line.splitn(5, ' ').collect();
        if f[0] == "rounds" {
            continue;
        }
        opened += 1;
        let (dev, ino): (u64, u64) = (f[2].parse().unwrap(), f[3].parse().unwrap());
        if host.forbidden(dev, ino) {
            bad.push(line.to_string());
        }
    }
    assert_eq!(hits, 200);
    assert!(
        bad.is_empty(),
        "the container opened host files ({} of {opened} opens):\n{}",
        bad.len(),
        bad.join("\n")
    );
    // The attack ran all along and saw the execs: it opened their
    // processes' files (their pipes, their own executables).
    assert!(opened > 0, "the attacker opened nothing");
    assert!(
        scan.bad.is_empty(),
        "the exec'd processes held host files:\n{}",
        Vec::from_iter(scan.bad).join("\n")
    );
    assert!(
        found.lines().any(|l| l.contains("/bin/sleep")),
        "the attacker never saw an exec'd process"
    );
    // It reached the exec helpers before their exec, as the attack does:
    // their executable is the sealed copy, opened for reading only.
    assert!(
        found
            .lines()
            .any(|l| l.ends_with("/memfd:berthd (deleted)")),
        "the attacker never saw an exec helper"
    );
}

/// Runs $SCRIPT with perl; the script stays out of the command line.
const ATTACKER_RUN: &str = "printf '%s' \"$SCRIPT\" > /tmp/a.pl && exec perl /tmp/a.pl";

/// Waits until the attacker has written its last line.
async fn read_when_done(path: &Path) -> String {
    for _ in 0..500 {
        let s = std::fs::read_to_string(path).unwrap_or_default();
        if s.lines().any(|l| l.starts_with("rounds ")) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the attacker never finished")
}

/// What a scan of the host's /proc found in containers' pid namespaces:
/// "PID PATH -> LINK" for each executable or fd that is a host file, and
/// how many processes it looked at.
#[derive(Default)]
struct Scan {
    bad: std::collections::BTreeSet<String>,
    seen: HashSet<i32>,
}

/// Scans, from the host, every process of container `id` that lives in a
/// pid namespace other than the host's (what the container's processes
/// can see) until `stop`: its executable and every fd.
fn scan_until(id: &str, host: &HostFiles, stop: &std::sync::atomic::AtomicBool) -> Scan {
    use std::sync::atomic::Ordering;
    let own_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let mut scan = Scan::default();
    let check = |path: &Path, pid: i32, scan: &mut Scan| {
        if let Ok(m) = std::fs::metadata(path) {
            if host.forbidden(m.dev(), m.ino()) {
                let link = std::fs::read_link(path).unwrap_or_default();
                scan.bad
                    .insert(format!("{pid} {} -> {}", path.display(), link.display()));
            }
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            continue;
        };
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let proc = Path::new("/proc").join(pid.to_string());
            match std::fs::read_link(proc.join("ns/pid")) {
                Ok(ns) if ns != own_ns => {}
                _ => continue,
            }
            if !std::fs::read_to_string(proc.join("cgroup")).is_ok_and(|c| c.contains(id)) {
                continue;
            }
            scan.seen.insert(pid);
            check(&proc.join("exe"), pid, &mut scan);
            if let Ok(fds) = std::fs::read_dir(proc.join("fd")) {
                for fd in fds.flatten() {
                    check(&fd.path(), pid, &mut scan);
                }
            }
        }
    }
    scan
}

#[tokio::test(flavor = "multi_thread")]
async fn no_process_of_a_starting_container_is_a_host_file() {
    let d = Daemon::start("escape-start").await;
    let mut api = d.api().await;
    let id = created(&mut api, shared(&d, "starting", &["sleep", "0.05"])).await;
    let host = HostFiles::new(&d, &d.container_dir(&id));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scanner = {
        let (id, stop) = (id.clone(), stop.clone());
        std::thread::spawn(move || scan_until(&id, &host, &stop))
    };
    for i in 0..20 {
        api.start(pb::StartRequest { id: id.clone() })
            .await
            .unwrap_or_else(|e| panic!("start {i}: {e}"));
        assert_eq!(wait(&mut api, &id).await.exit_code, 0, "start {i}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let scan = scanner.join().unwrap();
    assert!(
        scan.bad.is_empty(),
        "a starting container's processes held host files:\n{}",
        Vec::from_iter(scan.bad).join("\n")
    );
    assert!(!scan.seen.is_empty(), "the scan never saw the container");
}
