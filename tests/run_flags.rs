//! `berth run` flags as Docker users type them, each checked by what the
//! container sees: a table of flag → a command inside → what it prints.
//! Then what inspect shows of them, and the ones refused with why.

mod common;

use common::*;

/// The options of the mount at `dir`, from /proc/mounts.
fn mount_of(dir: &str) -> String {
    format!("while read src at type opts rest; do [ \"$at\" = {dir} ] && echo \"$type $opts\"; done < /proc/mounts; true")
}

#[tokio::test(flavor = "multi_thread")]
async fn each_run_flag_shows_inside_the_container() {
    let d = Daemon::start("run-flags").await;
    let share = d.share("data");
    std::fs::write(share.join("file"), "from the host\n").unwrap();
    let etc = d.share("etc");
    std::fs::write(etc.join("group"), "root:x:0:\naudio:x:29:\n").unwrap();
    let bind_ro = format!("type=bind,source={},target=/data,readonly", share.display());
    let group_file = format!("{}/group:/etc/group:ro", etc.display());
    let table: Vec<(Vec<&str>, String, &str)> = vec![
        (
            vec!["--ulimit", "nofile=100:200"],
            "ulimit -Sn; ulimit -Hn".into(),
            "100\n200\n",
        ),
        (
            vec!["--ulimit", "core=-1"],
            "ulimit -Hc".into(),
            "unlimited\n",
        ),
        (
            vec!["--shm-size", "8m"],
            mount_of("/dev/shm"),
            "tmpfs rw,nosuid,nodev,noexec,relatime,size=8192k\n",
        ),
        (vec![], mount_of("/dev/shm"), "tmpfs rw,nosuid,nodev,noexec,relatime,size=65536k\n"),
        (
            vec!["--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmni=1234"],
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni".into(),
            "1\n1234\n",
        ),
        (
            vec!["--domainname", "example.org"],
            "cat /proc/sys/kernel/domainname".into(),
            "example.org\n",
        ),
        (
            vec!["--oom-score-adj", "500"],
            "cat /proc/self/oom_score_adj".into(),
            "500\n",
        ),
        (
            vec!["-v", &group_file, "--group-add", "audio", "--group-add", "1234"],
            "while read k v; do [ \"$k\" = Groups: ] && echo \"$v\"; done < /proc/self/status; true".into(),
            "0 29 1234\n",
        ),
        (
            vec!["-v", &group_file, "--user", "1000", "--group-add", "audio"],
            "while read k v; do [ \"$k\" = Groups: ] && echo \"$v\"; done < /proc/self/status; true".into(),
            "0 29\n",
        ),
        (
            vec!["--tmpfs", "/scratch:size=1m,mode=1770,exec"],
            format!("{}; stat -c %a /scratch 2>/dev/null || busybox stat -c %a /scratch", mount_of("/scratch")),
            "tmpfs rw,nosuid,nodev,relatime,size=1024k,mode=1770\n1770\n",
        ),
        (
            vec!["--tmpfs", "/run"],
            mount_of("/run"),
            "tmpfs rw,nosuid,nodev,noexec,relatime\n",
        ),
        (
            vec!["--mount", "type=tmpfs,target=/t,tmpfs-size=2m,tmpfs-mode=700"],
            mount_of("/t"),
            "tmpfs rw,nosuid,nodev,noexec,relatime,size=2048k,mode=700\n",
        ),
        (
            vec!["--security-opt", "seccomp=unconfined"],
            "while read k v; do [ \"$k\" = Seccomp: ] && echo \"$v\"; done < /proc/self/status; true".into(),
            "0\n",
        ),
        (
            vec![],
            "while read k v; do [ \"$k\" = Seccomp: ] && echo \"$v\"; done < /proc/self/status; true".into(),
            "2\n",
        ),
        (
            vec!["--mount", &bind_ro],
            "cat /data/file; touch /data/new 2>/dev/null || echo read-only".into(),
            "from the host\nread-only\n",
        ),
    ];
    for (flags, script, want) in &table {
        let (code, out, err) = run_rm(&d, flags, script);
        // Newer kernels show tmpfs's inode64, which says nothing here.
        let out = out.replace(",inode64", "");
        assert_eq!((code, out.as_str()), (Some(0), *want), "{flags:?}: {err}");
    }
    // Lowering the OOM score takes CAP_SYS_RESOURCE: without it (some
    // hosts' root lacks it) the start is refused and says so.
    let (code, out, err) = run_rm(
        &d,
        &["--oom-score-adj", "-200"],
        "cat /proc/self/oom_score_adj",
    );
    match has_capability(CAP_SYS_RESOURCE) {
        true => assert_eq!((code, out.as_str()), (Some(0), "-200\n"), "{err}"),
        false => {
            assert_eq!(code, Some(125));
            assert!(err.contains("CAP_SYS_RESOURCE"), "{err}");
        }
    }
}

const CAP_SYS_RESOURCE: u32 = 24;

/// Whether this process's effective set holds `cap`.
fn has_capability(cap: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap();
    eff & (1 << cap) != 0
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_shows_the_flags_and_files_hold_what_docker_writes() {
    let d = Daemon::start("run-flags-inspect").await;
    let rootfs = rootfs().display().to_string();
    let dir = d.share("files");
    let labels = dir.join("labels");
    std::fs::write(&labels, "# team\nteam=core\ntier=web\n\n").unwrap();
    let cidfile = dir.join("cid");
    let labels = labels.display().to_string();
    let cid = cidfile.display().to_string();
    let id = ok(berth(
        &d,
        &[
            "create",
            "--name",
            "tuned",
            "--network",
            "none",
            "--ulimit",
            "nofile=10:20",
            "--shm-size",
            "1m",
            "--sysctl",
            "kernel.sem=1 2 3 4",
            "--group-add",
            "7",
            "--domainname",
            "dom",
            "--oom-score-adj",
            "-5",
            "--tmpfs",
            "/run:size=1m",
            "--label-file",
            &labels,
            "-l",
            "tier=db",
            "--cidfile",
            &cid,
            &rootfs,
            "true",
        ],
    ));
    assert_eq!(std::fs::read_to_string(&cidfile).unwrap(), id.trim());
    let shown = ok(berth(
        &d,
        &[
            "inspect",
            "-f",
            "{{json .HostConfig.Ulimits}} {{.HostConfig.ShmSize}} {{json .HostConfig.Sysctls}} {{json .HostConfig.GroupAdd}} {{.Config.Domainname}} {{.HostConfig.OomScoreAdj}} {{json .HostConfig.Tmpfs}} {{json .Config.Labels}}",
            "tuned",
        ],
    ));
    assert_eq!(
        shown.trim(),
        r#"[{"Hard":20,"Name":"nofile","Soft":10}] 1048576 {"kernel.sem":"1 2 3 4"} ["7"] dom -5 {"/run":"size=1m"} {"team":"core","tier":"db"}"#
    );
    // A cidfile that exists: refused before anything is made.
    let out = berth(&d, &["create", "--cidfile", &cid, &rootfs, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Container ID file found"));
    assert_eq!(ok(berth(&d, &["ps", "-aq"])).lines().count(), 1);

    // exec --env-file, -e winning over it.
    let env = dir.join("env");
    std::fs::write(&env, "A=from file\nB=file\n").unwrap();
    run_sleeping(&d, "box");
    let out = ok(berth(
        &d,
        &[
            "exec",
            "--env-file",
            &env.display().to_string(),
            "-e",
            "B=flag",
            "box",
            "sh",
            "-c",
            "echo \"$A|$B\"",
        ],
    ));
    assert_eq!(out, "from file|flag\n");
    ok(berth(&d, &["rm", "-f", "box"]));

    // An unconfined container's execs are unconfined too; inspect says so.
    ok(berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "open",
            "--network",
            "none",
            "--security-opt",
            "seccomp=unconfined",
            &rootfs,
            "sleep",
            "1000",
        ],
    ));
    let seccomp =
        "while read k v; do [ \"$k\" = Seccomp: ] && echo \"$v\"; done < /proc/self/status; true";
    assert_eq!(ok(berth(&d, &["exec", "open", "sh", "-c", seccomp])), "0\n");
    let shown = ok(berth(
        &d,
        &["inspect", "-f", "{{json .HostConfig.SecurityOpt}}", "open"],
    ));
    assert_eq!(
        shown.trim(),
        r#"["no-new-privileges=true","seccomp=unconfined"]"#
    );
    ok(berth(&d, &["rm", "-f", "open"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_that_cannot_be_honoured_are_refused_with_why() {
    let d = Daemon::start("run-flags-refused").await;
    let cases: &[(&[&str], &str)] = &[
        (&["--sysctl", "vm.swappiness=1"], "not namespaced"),
        (&["--sysctl", "kernel.hostname=x"], "hostname"),
        (&["--ulimit", "files=1"], "unknown name"),
        (&["--ulimit", "nofile=20:10"], "soft limit is above"),
        (&["--oom-score-adj", "2000"], "-1000 to 1000"),
        (&["--tmpfs", "/proc/x"], "tmpfs"),
        (&["--tmpfs", "/x:bogus"], "unknown option"),
        (&["--mount", "type=volume,src=v,dst=/v"], "bind or tmpfs"),
        (&["--domainname", "a b"], "domainname"),
        (&["--cpu-rt-runtime", "950000"], "realtime"),
        (
            &["--security-opt", "seccomp=/no/such.json"],
            "seccomp profile",
        ),
        (&["--security-opt", "bogus=1"], "berth knows"),
    ];
    for (flags, why) in cases {
        let (code, _, err) = run_rm(&d, flags, "true");
        assert_eq!(code, Some(125), "{flags:?}: {err}");
        assert!(err.contains(why), "{flags:?}: {err}");
    }
    // A profile of one's own, in Docker's format: what it denies is
    // denied with its errno, by argument too; the rest runs.
    let profile = d.share("profile").join("p.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 511, "op": "SCMP_CMP_EQ"}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 2, "value": 511, "op": "SCMP_CMP_EQ"}]}
        ]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let script = "busybox mkdir /tmp/d 2>&1; touch /tmp/f; busybox chmod 755 /tmp/f && echo 755 ok; busybox chmod 777 /tmp/f 2>&1; busybox stat -c %a /tmp/f";
    let (code, out, err) = run_rm(&d, &["--security-opt", &opt], script);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        "mkdir: can't create directory '/tmp/d': Permission denied\n755 ok\nchmod: /tmp/f: Operation not permitted\n755\n"
    );
    // One that does not compile is refused, naming why.
    std::fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#).unwrap();
    let (code, _, err) = run_rm(&d, &["--security-opt", &opt], "true");
    assert_eq!(code, Some(125));
    assert!(
        err.contains("invalid seccomp profile: unknown action"),
        "{err}"
    );
    // Where the host has no SELinux or AppArmor, their options say so
    // and change nothing.
    for opt in ["label=disable", "apparmor=unconfined"] {
        let lsm = match opt.starts_with("label") {
            true => "/sys/fs/selinux",
            false => "/sys/kernel/security/apparmor",
        };
        let (code, _, err) = run_rm(&d, &["--security-opt", opt], "true");
        match std::path::Path::new(lsm).exists() {
            false => assert!(code == Some(0) && err.contains("WARNING"), "{opt}: {err}"),
            true => assert_eq!(code, Some(125), "{opt}: {err}"),
        }
    }
    // net.* on the host's network would change the host's.
    let rootfs = rootfs().display().to_string();
    let out = berth(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            &rootfs,
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("host"));
    // A group the container does not have fails its start.
    let (code, _, err) = run_rm(&d, &["--group-add", "nosuchgroup"], "true");
    assert_ne!(code, Some(0));
    assert!(err.contains("nosuchgroup"), "{err}");
    assert_eq!(ok(berth(&d, &["ps", "-aq"])), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_picks_the_streams_shown() {
    let d = Daemon::start("run-flags-attach").await;
    let rootfs = rootfs().display().to_string();
    let run = |streams: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        for s in streams {
            args.extend(["-a", s]);
        }
        args.extend([
            rootfs.as_str(),
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ]);
        let out = berth(&d, &args);
        (
            out.status.code(),
            stdout(&out),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(run(&[]), (Some(3), "out\n".into(), "err\n".into()));
    assert_eq!(run(&["STDOUT"]), (Some(3), "out\n".into(), String::new()));
    assert_eq!(run(&["stderr"]), (Some(3), String::new(), "err\n".into()));
    assert_eq!(
        run(&["stdout", "stderr"]),
        (Some(3), "out\n".into(), "err\n".into())
    );
    for bad in [
        &["-d", "-a", "stdout"][..],
        &["-a", "stdio"],
        &["-i", "-a", "stdout"],
    ] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(bad);
        args.extend([rootfs.as_str(), "true"]);
        assert_eq!(berth(&d, &args).status.code(), Some(125), "{bad:?}");
    }
    assert_eq!(ok(berth(&d, &["ps", "-aq"])), "");
}
