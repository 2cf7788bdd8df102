use super::limits::shares_to_weight;
use super::*;
use crate::spec::Resources;

#[test]
fn a_limit_the_host_cannot_enforce_is_refused() {
    let all = Support {
        memory: true,
        swap: true,
        cpu_quota: true,
        cpu_shares: true,
        pids: true,
    };
    let limited = Resources {
        memory: 64 << 20,
        memory_swap: 128 << 20,
        nano_cpus: 500_000_000,
        cpu_shares: 512,
        pids_limit: 50,
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
