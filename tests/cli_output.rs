//! What scripts parse from the CLI, as Docker prints it: ps's columns,
//! filters and template fields, inspect of any object, Go's way of
//! printing lists and maps, the management forms (`container ls`,
//! `image tag`, `system info`), and `ps -s`.

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

#[tokio::test(flavor = "multi_thread")]
async fn inspect_has_dockers_layout() {
    let d = Daemon::start("cli-output-inspect").await;
    let config = serde_json::json!({"Entrypoint": ["sh", "-c"], "Cmd": ["echo hi"]});
    load(&d, docker_archive("app:1", config)).await.unwrap();
    let id = lines(&d, &["image", "inspect", "-f", "{{.Id}}", "app:1"]).remove(0);
    assert!(id.starts_with("sha256:"), "{id}");
    ok(berth(
        &d,
        &["create", "--name", "e", "--network", "none", "app:1"],
    ));
    let template = "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.Image}} {{.Image}} {{.Platform}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.IpcMode}}";
    assert_eq!(
        lines(&d, &["inspect", "-f", template, "e"]),
        [format!(
            r#"["sh","-c"] ["echo hi"] app:1 {id} linux no private"#
        )]
    );
    // Where its output is logged.
    let log = lines(&d, &["inspect", "-f", "{{.LogPath}}", "e"]).remove(0);
    let full = lines(&d, &["inspect", "-f", "{{.Id}}", "e"]).remove(0);
    assert_eq!(
        log,
        d.container_dir(&full)
            .join("container.log")
            .display()
            .to_string()
    );
    // A command given replaces Cmd alone.
    ok(berth(
        &d,
        &[
            "create",
            "--name",
            "f",
            "--network",
            "none",
            "app:1",
            "echo bye",
        ],
    ));
    assert_eq!(
        lines(
            &d,
            &[
                "inspect",
                "-f",
                "{{.Config.Entrypoint}} {{.Config.Cmd}}",
                "f"
            ]
        ),
        ["[sh -c] [echo bye]"]
    );

    // The top-level addresses are the default bridge's only.
    let rootfs = rootfs().display().to_string();
    ok(berth(&d, &["network", "create", "app"]));
    ok(berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "u",
            "--network",
            "app",
            &rootfs,
            "sleep",
            "1000",
        ],
    ));
    ok(berth(
        &d,
        &["run", "-d", "--name", "b", &rootfs, "sleep", "1000"],
    ));
    let settings = |name: &str| -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&ok(berth(&d, &["inspect", name]))).unwrap();
        v[0]["NetworkSettings"].clone()
    };
    let u = settings("u");
    assert_eq!(u["IPAddress"], "");
    assert!(
        u["Networks"]["app"]["IPAddress"]
            .as_str()
            .unwrap()
            .contains('.'),
        "{u}"
    );
    let b = settings("b");
    assert_eq!(b["IPAddress"], b["Networks"]["bridge"]["IPAddress"]);
    assert!(b["IPAddress"].as_str().unwrap().contains('.'), "{b}");

    // Events name the image (text and Docker's "from"), and an exec's
    // command.
    ok(berth(&d, &["exec", "b", "echo", "hi"]));
    let events = |filters: &[&str], format: &str| {
        let mut args = vec![
            "events", "--since", "0", "--until", "0s", "--format", format,
        ];
        for f in filters {
            args.extend(["--filter", f]);
        }
        lines(&d, &args)
    };
    let created = events(&["container=e", "event=create"], "");
    assert!(created[0].contains("(image=app:1, name=e)"), "{created:?}");
    let json = events(&["container=e", "event=create"], "{{json .}}");
    let json: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
    assert_eq!(
        (
            json["from"].as_str(),
            json["Actor"]["Attributes"]["image"].as_str()
        ),
        (Some("app:1"), Some("app:1"))
    );
    let exec = events(&["container=b", "event=exec_create"], "");
    assert!(
        exec[0].contains(" container exec_create: echo hi "),
        "{exec:?}"
    );
    ok(berth(&d, &["rm", "-f", "u", "b"]));
    ok(berth(&d, &["network", "rm", "app"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn images_take_dockers_format_and_filters() {
    let d = Daemon::start("cli-output-images").await;
    let tar = d.dir.join("rootfs.tar");
    let made = Command::new("tar")
        .args(["-C", &rootfs().display().to_string(), "-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(made.success());
    let tar = tar.display().to_string();
    // Loaded without a creation time (the oldest), then one made now.
    let labelled = serde_json::json!({"Labels": {"team": "a"}, "Cmd": ["true"]});
    load(&d, docker_archive("team/app:1", labelled))
        .await
        .unwrap();
    ok(berth(&d, &["import", &tar, "web:2"]));
    let listed = |args: &[&str]| {
        let mut all = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        all.extend_from_slice(args);
        lines(&d, &all)
    };
    assert_eq!(listed(&[]).len(), 2);
    assert_eq!(listed(&["--filter", "reference=team/*"]), ["team/app:1"]);
    assert_eq!(listed(&["--filter", "reference=web"]), ["web:2"]);
    assert_eq!(listed(&["--filter", "reference=*"]), ["web:2"]);
    assert_eq!(listed(&["--filter", "label=team=a"]), ["team/app:1"]);
    assert_eq!(listed(&["--filter", "before=web:2"]), ["team/app:1"]);
    assert_eq!(listed(&["--filter", "since=team/app:1"]), ["web:2"]);
    let table = lines(
        &d,
        &[
            "images",
            "--format",
            "table {{.Repository}}\t{{.Tag}}",
            "web",
        ],
    );
    assert_eq!(table, ["REPOSITORY   TAG", "web          2"]);
    let json: serde_json::Value =
        serde_json::from_str(&lines(&d, &["images", "--format", "json", "web"]).remove(0)).unwrap();
    assert_eq!(
        (json["Repository"].as_str(), json["Tag"].as_str()),
        (Some("web"), Some("2"))
    );
    let out = berth(&d, &["images", "--filter", "bogus=1"]);
    assert_eq!(out.status.code(), Some(125));
}

#[tokio::test(flavor = "multi_thread")]
async fn prunes_and_stats_read_like_dockers() {
    let d = Daemon::start("cli-output-prune").await;
    let rootfs = rootfs().display().to_string();
    ok(berth(&d, &["network", "create", "unused"]));
    ok(berth(&d, &["network", "create", "used"]));
    let stopped = ok(berth(&d, &["create", "--network", "used", &rootfs, "true"]));
    // Without -f and without a yes, nothing goes.
    let out = ok(berth(&d, &["network", "prune"]));
    assert_eq!(out, "");
    let out = ok(berth(&d, &["network", "prune", "-f"]));
    assert_eq!(out, "Deleted Networks:\nunused\n");
    let listed = ok(berth(&d, &["network", "ls"]));
    assert!(
        listed.contains("used") && !listed.contains("unused"),
        "{listed}"
    );

    // system prune: the stopped container, then its network.
    let out = ok(berth(&d, &["system", "prune", "-f", "--volumes"]));
    assert!(
        out.starts_with(&format!(
            "Deleted Containers:\n{}\n\nDeleted Networks:\nused\n\n",
            stopped.trim()
        )),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert_eq!(ok(berth(&d, &["ps", "-aq"])), "");

    // stats names the container as it was given.
    let id = ok(berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "s",
            "--network",
            "none",
            &rootfs,
            "sleep",
            "1000",
        ],
    ));
    let prefix = &id.trim()[..8];
    let row = |name: &str| {
        lines(
            &d,
            &[
                "stats",
                "--no-stream",
                "--format",
                "{{.Container}} {{.Name}}",
                name,
            ],
        )
    };
    assert_eq!(row("s"), ["s s"]);
    assert_eq!(row(prefix), [format!("{prefix} s")]);
    ok(berth(&d, &["rm", "-f", "s"]));
}

/// The lengths of the files under `dir`, each inode once (what Docker's
/// sizes count).
fn file_bytes(dir: &std::path::Path, seen: &mut std::collections::HashSet<u64>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        if m.is_dir() {
            total += file_bytes(&e.path(), seen);
        } else if seen.insert(m.ino()) {
            total += m.len();
        }
    }
    total
}

/// Docker's units: three significant digits, powers of 1000.
fn si(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let text = format!(
        "{v:.*}",
        if v >= 100.0 {
            0
        } else if v >= 10.0 {
            1
        } else {
            2
        }
    );
    let text = match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => text,
    };
    format!("{text}{}", units[i])
}

#[tokio::test(flavor = "multi_thread")]
async fn ps_size_shows_what_a_container_wrote_and_its_virtual_size() {
    let d = Daemon::start("cli-ps-size").await;
    let rootfs = rootfs().display().to_string();
    ok(berth(
        &d,
        &[
            "run",
            "--name",
            "w",
            "--network",
            "none",
            &rootfs,
            "sh",
            "-c",
            "echo hell > /tmp/five",
        ],
    ));
    let base = file_bytes(std::path::Path::new(&rootfs), &mut Default::default());
    let shown = ok(berth(&d, &["ps", "-a", "-s", "--format", "{{.Size}}"]));
    assert_eq!(shown.trim(), format!("5B (virtual {})", si(base + 5)));
    let table = ok(berth(&d, &["ps", "-a", "--size"]));
    let header = table.lines().next().unwrap();
    assert!(header.ends_with("NAMES   SIZE"), "{table}");
    assert!(
        table.contains(&format!("5B (virtual {})", si(base + 5))),
        "{table}"
    );
    // Not asked for: not walked, not shown.
    let shown = ok(berth(&d, &["ps", "-a", "--format", "[{{.Size}}]"]));
    assert_eq!(shown.trim(), "[]");
}
