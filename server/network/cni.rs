//! Running a network's CNI plugins, as the CNI spec has a runtime do it:
//! ADD through the list in order, each plugin given the one before's
//! result; DEL in reverse, each given the ADD's final result. A plugin
//! sees the network's name and cniVersion, and in runtimeConfig the
//! values of the capabilities it declares (portMappings).

use super::Error;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// Where the plugins are looked for: Debian's containernetworking-plugins,
/// then the upstream default.
pub const DEFAULT_PATH: &str = "/usr/lib/cni:/opt/cni/bin";

/// Who the plugins are run for.
pub struct Invocation<'a> {
    pub container_id: &'a str,
    /// The pinned namespace; None once it is gone.
    pub netns: Option<&'a Path>,
    pub ifname: &'a str,
    /// CNI_PATH: the plugin directories, colon-separated.
    pub path: &'a str,
}

/// ADD: the final result. `prev`: the result of what came before the
/// list (berth's own wiring, native.rs), if anything did.
pub async fn add(
    conflist: &Value,
    inv: &Invocation<'_>,
    runtime: &Value,
    mut prev: Option<Value>,
) -> Result<Value, Error> {
    for plugin in plugins(conflist) {
        let conf = conf(conflist, plugin, runtime, prev.as_ref());
        let out = exec(plugin, "ADD", inv, &conf).await?;
        prev = Some(serde_json::from_slice(&out).map_err(|e| {
            Error::Plugin(format!(
                "CNI plugin {} gave an unreadable result: {e}",
                kind(plugin)
            ))
        })?);
    }
    prev.ok_or_else(|| Error::Plugin("the network's config lists no plugin".into()))
}

/// DEL, every plugin tried even if one fails; the first failure returned.
pub async fn del(
    conflist: &Value,
    inv: &Invocation<'_>,
    runtime: &Value,
    result: Option<&Value>,
) -> Result<(), Error> {
    let mut first = Ok(());
    for plugin in plugins(conflist).rev() {
        let conf = conf(conflist, plugin, runtime, result);
        if let Err(e) = exec(plugin, "DEL", inv, &conf).await {
            tracing::warn!(container = inv.container_id, plugin = kind(plugin), error = %e, "CNI DEL failed");
            first = first.and(Err(e));
        }
    }
    first
}

fn plugins(conflist: &Value) -> impl DoubleEndedIterator<Item = &Value> {
    conflist["plugins"].as_array().into_iter().flatten()
}

fn kind(plugin: &Value) -> &str {
    plugin["type"].as_str().unwrap_or("")
}

fn conf(conflist: &Value, plugin: &Value, runtime: &Value, prev: Option<&Value>) -> Value {
    let mut conf = plugin.clone();
    conf["cniVersion"] = conflist["cniVersion"].clone();
    conf["name"] = conflist["name"].clone();
    if let Some(caps) = plugin["capabilities"].as_object() {
        let mut rc = json!({});
        for (cap, on) in caps {
            if on.as_bool() == Some(true) && !runtime[cap].is_null() {
                rc[cap] = runtime[cap].clone();
            }
        }
        conf["runtimeConfig"] = rc;
    }
    if let Some(prev) = prev {
        conf["prevResult"] = prev.clone();
    }
    conf
}

fn find(kind: &str, path: &str) -> Option<PathBuf> {
    let valid = !kind.is_empty() && !kind.contains('/') && kind != "." && kind != "..";
    path.split(':')
        .map(|dir| Path::new(dir).join(kind))
        .find(|p| valid && p.is_file())
}

async fn exec(
    plugin: &Value,
    command: &str,
    inv: &Invocation<'_>,
    conf: &Value,
) -> Result<Vec<u8>, Error> {
    let kind = kind(plugin);
    let bin = find(kind, inv.path).ok_or_else(|| {
        Error::Plugin(format!(
            "CNI plugin {kind:?} is not in {}: install containernetworking-plugins",
            inv.path
        ))
    })?;
    let netns = inv
        .netns
        .map(|p| p.as_os_str().to_owned())
        .unwrap_or_default();
    let mut cmd = tokio::process::Command::new(&bin);
    // An ADD cut off with berthd would go on wiring after the next berthd
    // has unwired; a DEL cut off halfway would leave what the plugin can
    // no longer find (the bridge plugin finds the addresses it
    // masquerades on the veth it deletes first): one dies with berthd,
    // the other finishes.
    if command == "ADD" {
        crate::sys::linux::spawn_dying_with_us(&mut cmd);
    }
    let mut child = cmd
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", inv.container_id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", inv.ifname)
        .env("CNI_PATH", inv.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Io {
            what: format!("run CNI plugin {}", bin.display()),
            source: e,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(conf.to_string().as_bytes()).await;
    }
    let out = child.wait_with_output().await.map_err(|e| Error::Io {
        what: format!("run CNI plugin {}", bin.display()),
        source: e,
    })?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    // A plugin reports its error as JSON on stdout: {code, msg, details}.
    let reported: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let msg = match (reported["msg"].as_str(), reported["details"].as_str()) {
        (Some(m), Some(d)) if !d.is_empty() => format!("{m}: {d}"),
        (Some(m), _) => m.to_string(),
        _ => String::from_utf8_lossy(&out.stderr).trim().to_string(),
    };
    Err(Error::Plugin(format!("CNI plugin {kind} {command}: {msg}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_plugin_gets_name_version_capabilities_and_the_previous_result() {
        let list = json!({"cniVersion": "1.0.0", "name": "app", "plugins": [
            {"type": "bridge", "bridge": "b0"},
            {"type": "portmap", "capabilities": {"portMappings": true, "bandwidth": false}},
        ]});
        let runtime = json!({"portMappings": [{"hostPort": 8080}], "bandwidth": {"x": 1}});
        let plugins: Vec<&Value> = plugins(&list).collect();
        let first = conf(&list, plugins[0], &runtime, None);
        assert_eq!(
            first,
            json!({"type": "bridge", "bridge": "b0", "cniVersion": "1.0.0", "name": "app"})
        );
        let prev = json!({"ips": []});
        let second = conf(&list, plugins[1], &runtime, Some(&prev));
        assert_eq!(
            second["runtimeConfig"],
            json!({"portMappings": [{"hostPort": 8080}]})
        );
        assert_eq!(second["prevResult"], prev);
        assert!(find("../bin/sh", "/usr/lib/cni").is_none());
    }
}
