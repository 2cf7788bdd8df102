//! What scripts parse from the CLI, as Docker prints it: ps's columns,
//! filters and template fields, inspect of any object, Go's way of
//! printing lists and maps, and the management forms (`container ls`,
//! `image tag`, `system info`).

mod common;

use common::*;
use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn ps_and_inspect_print_what_docker_prints() {
    let d = Daemon::start("cli-output").await;
    let rootfs = rootfs().display().to_string();
    let share = d.share("data").display().to_string();
    let volume = format!("{share}:/data");
    // `container run`: on the default bridge, a port exposed not published.
    let a = ok(berth(
        &d,
        &[
            "container",
            "run",
            "-d",
            "--name",
            "a",
            "-l",
            "team=x",
            "--expose",
            "6379",
            &rootfs,
            "sleep",
            "1000",
        ],
    ));
    let b = ok(berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "b",
            "--network",
            "none",
            "-v",
            &volume,
            &rootfs,
            "sh",
            "-c",
            "sleep 1000 # \"quoted\"",
        ],
    ));
    let (a, b) = (a.trim(), b.trim());

    let table = ok(berth(&d, &["container", "ls"]));
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("CONTAINER ID   IMAGE   "), "{table}");
    let rows = lines(
        &d,
        &[
            "ps",
            "--format",
            "{{.Names}}|{{.Ports}}|{{.Label \"team\"}}|{{.Command}}",
        ],
    );
    assert_eq!(
        rows,
        [
            r#"b|||"sh -c sleep 1000 # …""#.to_string(),
            r#"a|6379/tcp|x|"sleep 1000""#.to_string()
        ]
    );
    let full = lines(
        &d,
        &[
            "ps",
            "--no-trunc",
            "--format",
            "{{.Command}}",
            "--filter",
            "name=b",
        ],
    );
    assert_eq!(full, [r#""sh -c sleep 1000 # \"quoted\"""#]);
    let created = lines(&d, &["ps", "-l", "--format", "{{.CreatedAt}}"]).remove(0);
    let shape: Vec<usize> = created.split(' ').map(str::len).collect();
    assert_eq!(shape, [10, 8, 5, 3], "{created}");
    assert!(created.ends_with(" +0000 UTC"), "{created}");

    // Filters Docker users give.
    let ids = |filter: &str| lines(&d, &["ps", "-q", "--no-trunc", "--filter", filter]);
    assert_eq!(ids("expose=6379"), [a]);
    assert_eq!(ids("expose=6379/udp"), Vec::<String>::new());
    assert_eq!(ids("network=none"), [b]);
    assert_eq!(ids("network=bridge"), [a]);
    assert_eq!(ids("volume=/data"), [b]);
    assert_eq!(ids("since=a"), [b]);
    assert_eq!(ids("before=b"), [a]);
    let out = berth(&d, &["ps", "--filter", "before=nosuch"]);
    assert_eq!(out.status.code(), Some(1));

    // inspect: lists and maps as Go prints them, any kind of object.
    assert_eq!(
        lines(
            &d,
            &["inspect", "-f", "{{.Config.Cmd}} {{.Config.Labels}}", "a"]
        ),
        ["[sleep 1000] map[team:x]"]
    );
    assert_eq!(
        lines(
            &d,
            &["inspect", "-f", "{{.Name}}", "--type", "network", "bridge"]
        ),
        ["bridge"]
    );
    assert_eq!(
        lines(&d, &["inspect", "-f", "{{.Name}}", "bridge"]),
        ["bridge"]
    );
    let out = berth(&d, &["inspect", "--type", "container", "bridge"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: No such container: bridge\n"
    );
    let out = berth(&d, &["inspect", "--type", "volume", "a"]);
    assert_eq!(out.status.code(), Some(1));

    // An image: RepoTags and RepoDigests as lists, `image tag` as tag.
    let tar = d.dir.join("rootfs.tar");
    let made = Command::new("tar")
        .args(["-C", &rootfs, "-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(made.success());
    ok(berth(&d, &["import", &tar.display().to_string(), "app:1"]));
    ok(berth(&d, &["image", "tag", "app:1", "app:2"]));
    assert_eq!(
        lines(
            &d,
            &[
                "image",
                "inspect",
                "-f",
                "{{.RepoTags}} {{.RepoDigests}}",
                "app:1"
            ]
        ),
        ["[app:1 app:2] []"]
    );
    assert_eq!(
        lines(
            &d,
            &["inspect", "--type", "image", "-f", "{{.Os}}", "app:2"]
        ),
        ["linux"]
    );
    assert!(ok(berth(&d, &["system", "info"])).contains("Containers"));
    ok(berth(&d, &["container", "rm", "-f", "a", "b"]));
    assert_eq!(ok(berth(&d, &["container", "ls", "-aq"])), "");
}

/// The command's stdout, line by line.
fn lines(d: &Daemon, args: &[&str]) -> Vec<String> {
    ok(berth(d, args)).lines().map(str::to_string).collect()
}
