//! Who may call the API, and what a container may do: the unix socket is
//! root's and its group's only; containers get Docker's default
//! capabilities, no_new_privs, masked and read-only /proc and /sys paths,
//! and bind-mount destinations that cannot lead to the host.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::time::Duration;

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;
/// The "daemon" group: not nobody's.
const OTHER_GROUP: u32 = 1;

/// `berth ps` run as `uid`:`gid` without supplementary groups.
fn ps_as(d: &Daemon, uid: u32, gid: u32) -> Output {
    Command::new(berth_cli())
        .args(["--host", &d.host(), "ps"])
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_socket_is_for_root_and_its_group_only() {
    // Without --group: root only.
    let d = Daemon::start("sockroot").await;
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o660, 0, 0)
    );
    let o = ps_as(&d, NOBODY, NOGROUP);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
        "{o:?}"
    );
    drop(d);

    // With --group nogroup: its members, and nobody else.
    let d = Daemon::start_with_args("sockgroup", &["--group", "nogroup"]).await;
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o660, 0, NOGROUP)
    );
    let o = ps_as(&d, NOBODY, NOGROUP);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("CONTAINER ID"));
    let o = ps_as(&d, NOBODY, OTHER_GROUP);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
        "{o:?}"
    );
    // Each caller is logged with its credentials.
    assert!(
        d.log().lines().any(|l| l.contains("client connected")
            && l.contains("uid=65534")
            && l.contains("gid=65534")),
        "{}",
        d.log()
    );
}

/// Runs berthd with `args` and returns how it ended (it must end).
#[test]
fn the_daemon_refuses_a_socket_it_cannot_secure() {
    let dir = test_dir("insecure");
    let open = dir.join("open");
    std::fs::create_dir_all(&open).unwrap();
    // Anyone could replace a socket here.
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let sock = open.join("berth.sock");
    let root = dir.join("root");
    let o = berthd_fails(&[
        "--socket",
        sock.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("cannot secure the socket"), "{err}");
    assert!(!sock.exists());
    // Nor without the group it is told to use.
    let o = berthd_fails(&[
        "--socket",
        dir.join("berth.sock").to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--group",
        "no-such-group-here",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no group \"no-such-group-here\""));
    assert!(
        !root.exists(),
        "nothing is set up before the socket is secured"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlinked_mount_destination_stays_inside_the_container() {
    let d = Daemon::start("symlinkdest").await;
    let mut api = d.api().await;
    std::fs::write(d.share("s").join("marker"), "shared\n").unwrap();
    let outside = d.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // The mount goes to /evil/m; /evil is a link to a host directory, as
    // a container could have left one in its own layer.
    let mut req = spec("esc", &["cat", "/evil/m/marker"]);
    req.mounts.push(berth::pb::Mount {
        source: d.share("s").display().to_string(),
        destination: "/evil/m".into(),
        read_only: true,
        ..Default::default()
    });
    let id = api.create(req).await.unwrap().into_inner().id;
    std::os::unix::fs::symlink(&outside, d.container_dir(&id).join("upper/evil")).unwrap();
    api.start(berth::pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    let (code, out) = finished(&mut api, &id).await;
    // The link resolved inside the container: the host directory is
    // untouched, and the container reads the mount through its link.
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert_eq!((code, out.as_str()), (0, "shared\n"));
}

/// The value of `key` in /proc/self/status text.
fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in {status}"))
        .trim()
}

#[tokio::test(flavor = "multi_thread")]
async fn capabilities_are_dockers_defaults_and_no_new_privs_is_set() {
    let d = Daemon::start("caps").await;
    let mut api = d.api().await;
    let (code, status) = run_script(&mut api, spec("default", &[]), "cat /proc/self/status").await;
    assert_eq!(code, 0, "{status}");
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
    for set in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(status_field(&status, set), "00000000a80425fb", "{set}");
    }
    // Inheritable empty, as Docker since 20.10.14.
    assert_eq!(status_field(&status, "CapInh"), "0000000000000000");
    assert_eq!(status_field(&status, "CapAmb"), "0000000000000000");
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");

    let mut req = spec("tweaked", &[]);
    req.cap_add = vec!["sys_admin".into()];
    req.cap_drop = vec!["CAP_NET_RAW".into()];
    let (_, status) = run_script(&mut api, req, "cat /proc/self/status").await;
    // + SYS_ADMIN (bit 21), - NET_RAW (bit 13).
    assert_eq!(status_field(&status, "CapEff"), "00000000a82405fb");

    let mut req = spec("privileged", &[]);
    req.privileged = true;
    let (_, status) = run_script(&mut api, req, "cat /proc/self/status").await;
    // Every capability the daemon has itself.
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(
        status_field(&status, "CapBnd"),
        status_field(&host, "CapBnd")
    );
    assert_eq!(
        status_field(&status, "CapEff"),
        status_field(&host, "CapBnd")
    );
    assert_eq!(status_field(&status, "NoNewPrivs"), "0");

    let mut bad = spec("bad", &["true"]);
    bad.cap_add = vec!["FLY".into()];
    let err = api.create(bad).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("invalid capability \"FLY\""),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_default_container_cannot_reach_the_host() {
    let d = Daemon::start("escape").await;
    let mut api = d.api().await;
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    // Each attempt prints "ok" or "refused"; every one must be refused.
    let attempts = [
        ("mount", "mount -t tmpfs none /tmp"),
        ("hostname", "hostname evil"),
        ("proc sys", "echo 1 > /proc/sys/vm/drop_caches"),
        ("sysrq", "echo h > /proc/sysrq-trigger"),
        ("kcore", "test -s /proc/kcore"),
        ("keys", "test -s /proc/keys"),
        ("firmware", "ls /sys/firmware | grep -q ."),
        ("host pids", "test -e /proc/2"),
    ];
    let script: String = attempts
        .iter()
        .map(|(name, cmd)| {
            format!(
                "if {{ {cmd}; }} 2>/dev/null; then echo '{name}: ok'; else echo '{name}: refused'; fi; "
            )
        })
        .collect();
    let (code, out) = run_script(&mut api, spec("attempts", &[]), &script).await;
    assert_eq!(code, 0, "{out}");
    let expected: String = attempts
        .iter()
        .map(|(name, _)| format!("{name}: refused\n"))
        .collect();
    assert_eq!(out, expected);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_name
    );

    // A privileged container can: what --privileged gives away.
    let mut req = spec("privileged", &[]);
    req.privileged = true;
    let (_, out) = run_script(&mut api, req, &script).await;
    assert!(out.contains("mount: ok"), "{out}");
    assert!(out.contains("hostname: ok"), "{out}");
}

/// A perl script that makes each system call and prints "name: ok" or
/// "name: ERRNO". `disk` is a host disk's major:minor.
fn syscall_attempts(disk: (u64, u64), host_pid: u32, mount_first: bool) -> String {
    let dev = libc::makedev(disk.0 as u32, disk.1 as u32);
    // The mount hides the rootfs's /tmp; the disk node goes on it if it
    // succeeds.
    let disk_path = if mount_first { "/tmp/disk" } else { "/disk" };
    format!(
        r#"
sub str {{ my $x = shift; $x }}
sub try {{ my ($name, $r) = @_; printf "%s: %s\n", $name, $r == -1 ? 0 + $! : "ok"; }}
open(my $st, "<", "/proc/self/status"); my ($sc) = grep {{ /^Seccomp:/ }} <$st>; print $sc;
try("add_key", syscall({add_key}, str("user"), str("k"), str("v"), 1, -2));
try("keyctl", syscall({keyctl}, 0, -2, 0));
try("init_module", syscall({init_module}, str("\0" x 64), 64, str("")));
open(my $z, "<", "/dev/zero"); try("finit_module", syscall({finit_module}, fileno($z), str(""), 0));
try("clone3", syscall({clone3}, 0, 0));
try("personality", syscall({personality}, 0x0040000));
try("socket vsock", syscall({socket}, 40, 1, 0));
try("ptrace host", syscall({ptrace}, 16, {host_pid}, 0, 0));
try("io_uring_setup", syscall({io_uring_setup}, 1, str("\0" x 120)));
try("mount", syscall({mount}, str("none"), str("/tmp"), str("tmpfs"), 0, 0));
try("mknod disk", syscall({mknodat}, -100, str("{disk_path}"), 0060600, {dev}));
my ($d, $buf); try("read disk", open($d, "<", "{disk_path}") && sysread($d, $buf, {n}) == {n} && $buf eq "{marker}" ? 0 : -1);
# Last: a new user namespace takes the capabilities away.
try("unshare user", syscall({unshare}, 0x10000000));
"#,
        unshare = libc::SYS_unshare,
        add_key = libc::SYS_add_key,
        keyctl = libc::SYS_keyctl,
        init_module = libc::SYS_init_module,
        finit_module = libc::SYS_finit_module,
        clone3 = libc::SYS_clone3,
        personality = libc::SYS_personality,
        socket = libc::SYS_socket,
        ptrace = libc::SYS_ptrace,
        io_uring_setup = libc::SYS_io_uring_setup,
        mknodat = libc::SYS_mknodat,
        mount = libc::SYS_mount,
        n = DISK_MARKER.len(),
        marker = String::from_utf8_lossy(DISK_MARKER),
    )
}

/// A loop device over a file that starts with a marker: a disk the host
/// can read, detached when dropped.
struct LoopDisk {
    path: String,
    numbers: (u64, u64),
}

const DISK_MARKER: &[u8] = b"berth raw disk marker";

impl LoopDisk {
    fn new(dir: &std::path::Path) -> LoopDisk {
        let file = dir.join("disk.img");
        let mut data = DISK_MARKER.to_vec();
        data.resize(1 << 20, 0);
        std::fs::write(&file, data).unwrap();
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "losetup: {out:?}");
        let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let meta = std::fs::metadata(&path).unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(meta.file_type().is_block_device());
        let rdev = meta.rdev();
        let numbers = (libc::major(rdev) as u64, libc::minor(rdev) as u64);
        LoopDisk { path, numbers }
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.path]).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn system_calls_raw_disks_and_host_processes_are_out_of_reach() {
    let d = Daemon::start("syscalls").await;
    let mut api = d.api().await;
    // A disk the host can read: what the container is refused is real.
    let disk = LoopDisk::new(&d.dir);
    let numbers = disk.numbers;
    let mut buf = vec![0u8; DISK_MARKER.len()];
    use std::io::Read;
    std::fs::File::open(&disk.path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .unwrap();
    assert_eq!(buf, DISK_MARKER);
    let host_pid = std::process::id();
    let run = |name: &str, mount_first: bool| {
        let script = syscall_attempts(numbers, host_pid, mount_first);
        spec(name, &["perl", "-e", &script])
    };

    // Default: seccomp (EPERM, ENOSYS for clone3), no capability for
    // modules, no host pid to trace, a disk node made but not opened.
    let id = started(&mut api, run("default", false)).await;
    let (code, out) = finished(&mut api, &id).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "Seccomp:\t2\n\
         add_key: 1\n\
         keyctl: 1\n\
         init_module: 1\n\
         finit_module: 1\n\
         clone3: 38\n\
         personality: 1\n\
         socket vsock: 1\n\
         ptrace host: 3\n\
         io_uring_setup: 1\n\
         mount: 1\n\
         mknod disk: ok\n\
         read disk: 13\n\
         unshare user: 1\n"
    );

    // SYS_ADMIN added: its calls pass the filter, and a disk node on a
    // fresh tmpfs (not nodev) is still refused, by the devices cgroup.
    let mut req = run("admin", true);
    req.cap_add = vec!["SYS_ADMIN".into()];
    let id = started(&mut api, req).await;
    let (_, out) = finished(&mut api, &id).await;
    for line in [
        "unshare user: ok",
        "keyctl: 1",
        "clone3: 22", // EINVAL: past the filter
        "mount: ok",
        "mknod disk: ok",
        "read disk: 1",
        "init_module: 1",
    ] {
        assert!(out.contains(&format!("{line}\n")), "{line} in {out}");
    }

    // Privileged: no filter, no device limits.
    let mut req = run("privileged", false);
    req.privileged = true;
    let id = started(&mut api, req).await;
    let (_, out) = finished(&mut api, &id).await;
    for line in ["Seccomp:\t0", "unshare user: ok", "read disk: ok"] {
        assert!(out.contains(&format!("{line}\n")), "{line} in {out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_and_a_read_only_rootfs() {
    let d = Daemon::start("user").await;
    let mut api = d.api().await;
    let cat_status = "cat /proc/self/status";

    // Numbers: no capability left (bounding set unchanged), as Docker.
    let mut req = spec("numeric", &[]);
    req.user = "1000:1001".into();
    let (code, out) = run_script(&mut api, req, cat_status).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(status_field(&out, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out, "Gid"), "1001\t1001\t1001\t1001");
    assert_eq!(status_field(&out, "Groups"), "1001");
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(status_field(&out, set), "0000000000000000", "{set}");
    }
    assert_eq!(status_field(&out, "CapBnd"), "00000000a80425fb");
    // A uid alone: group 0 when /etc/passwd does not know it.
    let mut req = spec("uid-only", &[]);
    req.user = "1000".into();
    let (_, out) = run_script(&mut api, req, cat_status).await;
    assert_eq!(status_field(&out, "Gid"), "0\t0\t0\t0");

    // Names, from the container's own /etc/passwd and /etc/group, with the
    // groups that list the user.
    let mut req = spec("named", &["sh", "-c", cat_status]);
    req.user = "app".into();
    let id = api.create(req).await.unwrap().into_inner().id;
    let etc = d.container_dir(&id).join("upper/etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0::/:/bin/sh\napp:x:1234:2345::/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        etc.join("group"),
        "root:x:0:\napp:x:2345:\nextra:x:3456:root,app\nother:x:4567:root\n",
    )
    .unwrap();
    api.start(berth::pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    let (_, out) = finished(&mut api, &id).await;
    assert_eq!(status_field(&out, "Uid"), "1234\t1234\t1234\t1234");
    assert_eq!(status_field(&out, "Gid"), "2345\t2345\t2345\t2345");
    assert_eq!(status_field(&out, "Groups"), "2345 3456");

    // A user the rootfs does not have: the start is refused, the
    // container stays created.
    let mut req = spec("ghost", &["true"]);
    req.user = "ghost".into();
    let id = api.create(req).await.unwrap().into_inner().id;
    let err = api
        .start(berth::pb::StartRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("no user \"ghost\" in /etc/passwd"),
        "{}",
        err.message()
    );
    assert_eq!(
        status(&mut api, &id).await.status,
        berth::pb::Status::Created as i32
    );
    for bad in [":", "a:b:c", "-x", "ro ot", "1000:"] {
        let mut req = spec("bad-user", &["true"]);
        req.user = bad.into();
        let err = api.create(req).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad:?}");
    }

    // Read-only: the rootfs refuses writes, /dev/shm and a read-write
    // bind mount take them, and nothing reaches the container's layer.
    let mut req = shared(&d, "ro", &[]);
    req.read_only = true;
    let script = "touch /new 2>&1; touch /dev/shm/ok && touch /s/ok && echo written";
    let (code, out) = run_script(&mut api, req, script).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "touch: cannot touch '/new': Read-only file system\nwritten\n"
    );
    assert!(d.share("s").join("ok").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_requests_and_too_many_streams_are_held_off() {
    let d = Daemon::start_with_args("limits", &["--max-streams", "4"]).await;
    let channel = berth::connect(&d.host()).await.unwrap();
    let mut api = berth::pb::containers_client::ContainersClient::new(channel.clone());

    // A request over 1 MiB is refused before it is decoded; nothing made.
    let mut big = spec("big", &["true"]);
    big.env = vec![format!("X={}", "x".repeat(2 << 20))];
    let err = api.create(big).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");
    let list = api
        .list(berth::pb::ListRequest {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(list.into_inner().containers.is_empty());

    // Four streams fill the connection: a fifth call waits until one ends.
    let mut streams = Vec::new();
    for _ in 0..4 {
        let mut events = berth::pb::events_client::EventsClient::new(channel.clone());
        let s = events
            .subscribe(berth::pb::SubscribeRequest::default())
            .await
            .unwrap();
        streams.push(s.into_inner());
    }
    let list = || {
        let mut api = api.clone();
        async move {
            api.list(berth::pb::ListRequest {
                all: true,
                ..Default::default()
            })
            .await
        }
    };
    let held = tokio::time::timeout(Duration::from_millis(500), list()).await;
    assert!(held.is_err(), "a fifth stream was let in");
    streams.pop();
    let r = tokio::time::timeout(Duration::from_secs(5), list()).await;
    assert!(r.expect("the call waited after a stream ended").is_ok());
    // Another connection is not held up by this one.
    let mut other = d.api().await;
    other
        .list(berth::pb::ListRequest {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap();
}

/// no_new_privs is berth's default and a setting: off, a container's
/// processes run as usual under the same seccomp filter and capabilities,
/// and inspect and the CLI say which.
#[tokio::test(flavor = "multi_thread")]
async fn no_new_privileges_can_be_turned_off() {
    let d = Daemon::start("nnp").await;
    let mut api = d.api().await;
    let mut req = spec("nnp-off", &[]);
    req.no_new_privileges = Some(false);
    req.user = "1000:1000".into();
    let (code, status) = run_script(&mut api, req, "cat /proc/self/status").await;
    assert_eq!(code, 0, "{status}");
    assert_eq!(status_field(&status, "NoNewPrivs"), "0");
    assert_eq!(status_field(&status, "Seccomp"), "2");
    assert_eq!(status_field(&status, "CapEff"), "0000000000000000");
    assert_eq!(status_field(&status, "Uid"), "1000\t1000\t1000\t1000");
    let off = listed(&mut api).await;
    let config = |name: &str| {
        off.iter()
            .find(|c| c.name == name)
            .unwrap()
            .config
            .clone()
            .unwrap()
    };
    assert!(!config("nnp-off").no_new_privileges);
    let id = created(&mut api, spec("nnp-default", &["true"])).await;
    assert!(
        inspect(&mut api, &id)
            .await
            .config
            .unwrap()
            .no_new_privileges
    );
    // The CLI's --security-opt, Docker's spellings, and inspect's view.
    let rootfs = rootfs().display().to_string();
    let out = ok(berth(
        &d,
        &[
            "run",
            "--security-opt",
            "no-new-privileges=false",
            "--name",
            "cli-off",
            &rootfs,
            "cat",
            "/proc/self/status",
        ],
    ));
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");
    let out = ok(berth(
        &d,
        &[
            "run",
            "--security-opt",
            "no-new-privileges",
            &rootfs,
            "cat",
            "/proc/self/status",
        ],
    ));
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    let shown = ok(berth(
        &d,
        &[
            "inspect",
            "--format",
            "{{json .HostConfig.SecurityOpt}}",
            "cli-off",
        ],
    ));
    assert_eq!(shown.trim(), r#"["no-new-privileges=false"]"#);
    let bad = berth(
        &d,
        &[
            "run",
            "--security-opt",
            "systempaths=unconfined",
            &rootfs,
            "true",
        ],
    );
    assert_eq!(bad.status.code(), Some(125), "{bad:?}");
}

/// Any user of a container may ping, as on Docker: the container's
/// network namespace lets every group open ICMP echo sockets.
#[tokio::test(flavor = "multi_thread")]
async fn an_unprivileged_user_may_open_icmp_echo_sockets() {
    let d = Daemon::start("ping-range").await;
    let mut api = d.api().await;
    let script = "cat /proc/sys/net/ipv4/ping_group_range; \
        perl -e 'socket(my $s, 2, 2, 1) or die \"icmp: $!\\n\"; print \"icmp ok\\n\"'";
    for network in ["none", "bridge"] {
        let mut req = spec(&format!("ping-{network}"), &[]);
        req.network = network.into();
        req.user = "1000:1000".into();
        let (code, out) = run_script(&mut api, req, script).await;
        assert_eq!(code, 0, "{network}: {out}");
        assert!(out.starts_with("0\t2147483647\n"), "{network}: {out}");
        assert!(out.contains("icmp ok"), "{network}: {out}");
    }
}
