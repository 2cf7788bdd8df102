//! --device, --device-cgroup-rule and a privileged container's /dev,
//! checked by opening the nodes inside (/dev/kmsg for writing: every host
//! has it, and opening it so changes nothing).

mod common;

use common::*;

const WRITE_KMSG: &str = "[ -c /dev/kmsg ] && exec 3>/dev/kmsg && echo opened";

#[tokio::test(flavor = "multi_thread")]
async fn devices_are_there_as_asked_and_no_more() {
    let d = Daemon::start("devices").await;
    // Not there by default, nor usable if made.
    let (code, _, _) = run_rm(&d, &[], WRITE_KMSG);
    assert_ne!(code, Some(0));
    let (code, _, _) = run_rm(&d, &[], "mknod /tmp/k c 1 11 && exec 3>/tmp/k");
    assert_ne!(code, Some(0));

    // --device: there, with what the permissions allow.
    let (code, out, err) = run_rm(&d, &["--device", "/dev/kmsg"], WRITE_KMSG);
    assert_eq!((code, out.as_str()), (Some(0), "opened\n"), "{err}");
    let (code, out, err) = run_rm(
        &d,
        &["--device", "/dev/kmsg:/dev/log-here:w"],
        "[ -c /dev/log-here ] && exec 3>/dev/log-here && echo opened",
    );
    assert_eq!((code, out.as_str()), (Some(0), "opened\n"), "{err}");
    let (code, _, err) = run_rm(&d, &["--device", "/dev/kmsg:r"], WRITE_KMSG);
    assert_ne!(code, Some(0));
    assert!(err.contains("Operation not permitted"), "{err}");

    // --device-cgroup-rule: a node made inside opens as the rule allows.
    let make = "mknod /tmp/k c 1 11 && exec 3>/tmp/k && echo opened";
    let (code, out, err) = run_rm(&d, &["--device-cgroup-rule", "c 1:11 w"], make);
    assert_eq!((code, out.as_str()), (Some(0), "opened\n"), "{err}");
    let (code, _, _) = run_rm(&d, &["--device-cgroup-rule", "c 1:11 r"], make);
    assert_ne!(code, Some(0));

    // Privileged: the host's devices.
    let (code, out, err) = run_rm(
        &d,
        &["--privileged"],
        "ls /dev/kmsg && [ -c /dev/kmsg ] && exec 3>/dev/kmsg && echo opened",
    );
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "/dev/kmsg\nopened\n"),
        "{err}"
    );

    // Shown by inspect; refused when they cannot be.
    let rootfs = rootfs().display().to_string();
    ok(berth(
        &d,
        &[
            "create",
            "--name",
            "dev",
            "--device",
            "/dev/kmsg:/dev/k:w",
            "--device-cgroup-rule",
            "b 7:* rw",
            &rootfs,
            "true",
        ],
    ));
    let shown = ok(berth(
        &d,
        &[
            "inspect",
            "-f",
            "{{json .HostConfig.Devices}} {{json .HostConfig.DeviceCgroupRules}}",
            "dev",
        ],
    ));
    assert_eq!(
        shown.trim(),
        r#"[{"CgroupPermissions":"w","PathInContainer":"/dev/k","PathOnHost":"/dev/kmsg"}] ["b 7:* rw"]"#
    );
    for (flags, why) in [
        (
            &["--device", "/etc/passwd"][..],
            "not a character or block device",
        ),
        (&["--device", "/no/such"], "No such file"),
        (&["--device", "/dev/kmsg:/dev/k:x"], "permissions"),
        (&["--device-cgroup-rule", "x 1:1 r"], "device cgroup rule"),
    ] {
        let (code, _, err) = run_rm(&d, flags, "true");
        assert_eq!(code, Some(125), "{flags:?}");
        assert!(err.contains(why), "{flags:?}: {err}");
    }
}
