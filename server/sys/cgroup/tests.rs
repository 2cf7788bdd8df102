use super::limits::shares_to_weight;
use super::*;
use crate::spec::Resources;

#[test]
fn a_limit_the_host_cannot_enforce_is_refused() {
    let all = Support::everything();
    let limited = Resources {
        memory: 64 << 20,
        memory_swap: 128 << 20,
        nano_cpus: 500_000_000,
        cpu_shares: 512,
        pids_limit: 50,
        ..Default::default()
    };
    assert!(all.check(&limited).is_ok());
    let cases = [
        (
            Support {
                memory: false,
                ..all
            },
            "memory limit",
        ),
        (Support { swap: false, ..all }, "swapaccount=1"),
        (
            Support {
                cpu_quota: false,
                ..all
            },
            "CFS bandwidth",
        ),
        (
            Support {
                cpu_shares: false,
                ..all
            },
            "CPU shares",
        ),
        (Support { pids: false, ..all }, "pids limit"),
    ];
    for (host, says) in cases {
        let err = host.check(&limited).unwrap_err().to_string();
        assert!(err.starts_with("this host cannot enforce"), "{err}");
        assert!(err.contains(says), "{err}");
        // Without limits, nothing is needed.
        assert!(host.check(&Resources::default()).is_ok());
    }
    // Unlimited swap needs no swap accounting.
    let unlimited_swap = Resources {
        memory_swap: -1,
        ..limited
    };
    assert!(Support { swap: false, ..all }
        .check(&unlimited_swap)
        .is_ok());
}

#[test]
fn cgroup_files() {
    let stat = "cache 4096\ntotal_cache 8192\ntotal_inactive_file 1024\n";
    assert_eq!(keyed(stat, "total_cache"), Some(8192));
    assert_eq!(keyed(stat, "cache"), Some(4096));
    assert_eq!(keyed(stat, "rss"), None);
    let events = "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n";
    assert_eq!(keyed(events, "oom_kill"), Some(1));
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
}

/// Where the host mounts cgroup v2 (alone, or beside v1 as "unified").
fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split(' ');
        let (_, dir, kind) = (f.next()?, f.next()?, f.next()?);
        (kind == "cgroup2").then(|| dir.into())
    })
}

/// The device program, loaded by the kernel and attached to a v2 cgroup
/// (the unified hierarchy of a hybrid host will do): a shell in it opens
/// /dev/null, creates any node, and is refused /dev/kmsg and a disk.
#[test]
fn the_device_program_allows_the_standard_devices_only() {
    let Some(mount) = cgroup2_mount().filter(|_| nix::unistd::geteuid().is_root()) else {
        eprintln!("skipped: needs root and a cgroup v2 mount");
        return;
    };
    let cg = mount.join(format!("berth-devices-test-{}", std::process::id()));
    std::fs::create_dir(&cg).unwrap();
    let tmp = std::env::temp_dir().join(format!("berth-devices-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let result = std::panic::catch_unwind(|| {
        let fd = std::fs::File::open(&cg).unwrap();
        devices::attach(&fd.into(), devices::DEFAULT).unwrap();
        let script = format!(
            "echo $$ > {procs} || exit 99
             (true < /dev/null) && echo null ok
             echo x > /dev/zero && echo zero ok
             (true < /dev/kmsg) 2>/dev/null && echo kmsg ok
             mknod {tmp}/kmsg c 1 11 && echo mknod char ok
             mknod {tmp}/disk b 7 0 && echo mknod block ok
             (true < {tmp}/kmsg) 2>/dev/null && echo node ok
             (true < {tmp}/disk) 2>/dev/null && echo disk ok
             exit 0",
            procs = cg.join("cgroup.procs").display(),
            tmp = tmp.display(),
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "null ok\nzero ok\nmknod char ok\nmknod block ok\n"
        );
    });
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir(&cg);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn each_rule_of_the_device_program_jumps_to_the_next() {
    let p = devices::program(devices::DEFAULT);
    // 6 to load the context, 2 to deny; per rule a kind check, an access
    // check (3) unless it allows everything, the numbers it names, 2 to allow.
    let per_rule: usize = devices::DEFAULT
        .iter()
        .map(|r| {
            let access = if r.access == 7 { 0 } else { 3 };
            1 + access + r.major.is_some() as usize + r.minor.is_some() as usize + 2
        })
        .sum();
    assert_eq!(p.len(), 6 + per_rule + 2);
}
