//! Docker's finer cgroup flags: --cpu-period/--cpu-quota, --cpuset-cpus
//! and -mems, --memory-reservation, --memory-swappiness,
//! --oom-kill-disable, --blkio-weight, --device-{read,write}-{bps,iops}
//! and --kernel-memory (accepted, not enforced). Each is checked where it
//! takes effect (the container's cgroup files, its allowed CPUs), in
//! inspect, through `update`, and refused with Docker's reasons when it is
//! wrong or the host cannot enforce it (cgroup v2 has no swappiness or
//! OOM-killer switch per cgroup).

mod common;

use common::*;

/// A host block device and its numbers: the first of /sys/block with a
/// node in /dev, disks before loop and ram devices.
fn block_device() -> (String, String) {
    let mut found: Vec<(bool, String, String)> = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let numbers = std::fs::read_to_string(e.path().join("dev")).ok()?;
            let node = format!("/dev/{name}");
            std::path::Path::new(&node).exists().then(|| {
                let virtual_dev = name.starts_with("loop") || name.starts_with("ram");
                (virtual_dev, node, numbers.trim().to_string())
            })
        })
        .collect();
    found.sort();
    let (_, node, numbers) = found.into_iter().next().expect("a block device");
    (node, numbers)
}

/// The last CPU this host has online.
fn last_cpu() -> String {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let last = online.trim().rsplit([',', '-']).next().unwrap();
    last.to_string()
}

fn file(id: &str, name: &str) -> String {
    cgroup_file(id, name).unwrap_or_else(|| panic!("no {name} for {id}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_memory_and_io_flags_reach_the_cgroup_and_update_changes_them() {
    let d = Daemon::start("cgroup-flags").await;
    let rootfs = rootfs().display().to_string();
    let cpu = last_cpu();
    let (dev, numbers) = block_device();
    let read_bps = format!("{dev}:1mb");
    let write_iops = format!("{dev}:100");
    let id = ok(berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "tuned",
            "--network",
            "none",
            "--cpu-period",
            "50000",
            "--cpu-quota",
            "25000",
            "--cpuset-cpus",
            &cpu,
            "--cpuset-mems",
            "0",
            "-m",
            "64m",
            "--memory-reservation",
            "32m",
            "--kernel-memory",
            "50m",
            "--device-read-bps",
            &read_bps,
            "--device-write-iops",
            &write_iops,
            &rootfs,
            "sleep",
            "1000",
        ],
    ));
    let id = id.trim();
    // What the container sees.
    let status = ok(berth(&d, &["exec", "tuned", "cat", "/proc/self/status"]));
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap()
    };
    assert_eq!(field("Cpus_allowed_list:"), cpu);
    assert_eq!(field("Mems_allowed_list:"), "0");
    // What its cgroup holds.
    let v2 = cgroup_v2();
    let reservation = (32 << 20).to_string();
    if v2 {
        assert_eq!(file(id, "cpu.max"), "25000 50000");
        assert_eq!(file(id, "memory.low"), reservation);
        assert_eq!(
            file(id, "io.max"),
            format!("{numbers} rbps=1048576 wbps=max riops=max wiops=100")
        );
    } else {
        assert_eq!(file(id, "cpu.cfs_period_us"), "50000");
        assert_eq!(file(id, "cpu.cfs_quota_us"), "25000");
        assert_eq!(file(id, "memory.soft_limit_in_bytes"), reservation);
        assert_eq!(
            file(id, "blkio.throttle.read_bps_device"),
            format!("{numbers} 1048576")
        );
        assert_eq!(
            file(id, "blkio.throttle.write_iops_device"),
            format!("{numbers} 100")
        );
    }
    assert_eq!(file(id, "cpuset.cpus"), cpu);
    let shown = ok(berth(
        &d,
        &[
            "inspect",
            "-f",
            "{{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}} {{.HostConfig.CpusetCpus}} {{.HostConfig.CpusetMems}} {{.HostConfig.MemoryReservation}} {{.HostConfig.KernelMemory}} {{json .HostConfig.BlkioDeviceReadBps}} {{json .HostConfig.BlkioDeviceWriteIOps}}",
            "tuned",
        ],
    ));
    assert_eq!(
        shown.trim(),
        format!(
            r#"50000 25000 {cpu} 0 {reservation} 52428800 [{{"Path":"{dev}","Rate":1048576}}] [{{"Path":"{dev}","Rate":100}}]"#
        )
    );

    // update: the quota off, the reservation off, every CPU again.
    ok(berth(
        &d,
        &[
            "update",
            "--cpu-quota",
            "-1",
            "--memory-reservation",
            "0",
            "--cpuset-cpus",
            "",
            "tuned",
        ],
    ));
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    // v2: no set of its own, so the parent's is in effect.
    let effective = if v2 {
        "cpuset.cpus.effective"
    } else {
        "cpuset.cpus"
    };
    assert_eq!(file(id, effective), online.trim());
    if v2 {
        assert_eq!(file(id, "cpu.max"), "max 50000");
        assert_eq!(file(id, "memory.low"), "0");
    } else {
        assert_eq!(file(id, "cpu.cfs_quota_us"), "-1");
        // Unlimited, rounded down to a page.
        let soft: u64 = file(id, "memory.soft_limit_in_bytes").parse().unwrap();
        assert!(soft > 1 << 62, "{soft}");
    }
    let status = ok(berth(&d, &["exec", "tuned", "cat", "/proc/self/status"]));
    assert!(
        status.contains(&format!("Cpus_allowed_list:\t{}\n", online.trim())),
        "{status}"
    );
    let shown = ok(berth(
        &d,
        &["inspect", "-f", "{{.HostConfig.CpuQuota}} {{.HostConfig.MemoryReservation}} [{{.HostConfig.CpusetCpus}}]", "tuned"],
    ));
    assert_eq!(shown.trim(), "0 0 []");
}

#[tokio::test(flavor = "multi_thread")]
async fn swappiness_oom_kill_disable_and_weight_hold_or_say_why_not() {
    let d = Daemon::start("cgroup-flags-v1").await;
    let rootfs = rootfs().display().to_string();
    let run = |flags: &[&str]| {
        let mut args = vec!["run", "-d", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend([rootfs.as_str(), "sleep", "1000"]);
        berth(&d, &args)
    };
    let refused = |out: std::process::Output, why: &str| {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(err.contains(why), "{err}");
    };
    let v2 = cgroup_v2();
    let out = run(&[
        "-m",
        "64m",
        "--memory-swappiness",
        "10",
        "--oom-kill-disable",
    ]);
    if v2 {
        refused(out, "cgroup v2 has no swappiness");
        refused(
            run(&["-m", "64m", "--oom-kill-disable"]),
            "cannot turn off the OOM killer",
        );
    } else {
        let id = stdout(&out).trim().to_string();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(file(&id, "memory.swappiness"), "10");
        assert!(file(&id, "memory.oom_control").contains("oom_kill_disable 1"));
        let shown = ok(berth(
            &d,
            &[
                "inspect",
                "-f",
                "{{.HostConfig.MemorySwappiness}} {{.HostConfig.OomKillDisable}}",
                &id,
            ],
        ));
        assert_eq!(shown.trim(), "10 true");
    }
    // A weight needs a weight-aware I/O scheduler, which not every host
    // has: set where it is, refused naming it where it is not.
    let out = run(&["--blkio-weight", "300"]);
    match out.status.success() {
        true => {
            let id = stdout(&out).trim().to_string();
            let weight = [
                "blkio.weight",
                "blkio.bfq.weight",
                "io.weight",
                "io.bfq.weight",
            ]
            .iter()
            .find_map(|f| cgroup_file(&id, f))
            .unwrap();
            assert!(weight.ends_with("300"), "{weight}");
        }
        false => refused(out, "no weight-aware I/O scheduler"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_values_are_refused_with_dockers_reasons_and_leave_nothing() {
    let d = Daemon::start("cgroup-flags-bad").await;
    let rootfs = rootfs().display().to_string();
    for (flags, why) in [
        (
            &["--cpu-period", "10"][..],
            "CPU cfs period can not be less than 1ms",
        ),
        (
            &["--cpu-quota", "500"],
            "CPU cfs quota can not be less than 1ms",
        ),
        (
            &["--cpus", "1", "--cpu-quota", "50000"],
            "Conflicting options",
        ),
        (&["--cpuset-cpus", "0-4095"], "not available"),
        (&["--cpuset-cpus", "zero"], "not a list"),
        (&["--cpuset-mems", "7"], "not available"),
        (
            &["-m", "64m", "--memory-reservation", "128m"],
            "invalid memory reservation",
        ),
        (
            &["--memory-swappiness", "101"],
            "valid memory swappiness range is 0-100",
        ),
        (
            &["--blkio-weight", "5"],
            "Range of blkio weight is from 10 to 1000",
        ),
        (
            &["--device-read-bps", "/dev/null:1mb"],
            "not a block device",
        ),
        (
            &["--device-write-iops", "/dev/nonexistent:10"],
            "--device-write-iops",
        ),
    ] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend([rootfs.as_str(), "true"]);
        let out = berth(&d, &args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(125), "{flags:?}: {err}");
        assert!(err.contains(why), "{flags:?}: {err}");
    }
    assert_eq!(ok(berth(&d, &["ps", "-aq"])), "");
}
