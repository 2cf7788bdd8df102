//! The lifecycle verbs: create, run, start, stop, kill, pause, unpause,
//! update, rm and wait.

use super::each;
use crate::args::{CreateArgs, LimitArgs};
use crate::{Api, Failure};
use berth::pb;
use tonic::transport::Channel;

pub async fn create(api: &mut Api, channel: Channel, a: CreateArgs) -> Result<u8, Failure> {
    let created = create_pulling(api, channel, a).await?;
    crate::output::outln!("{}", created.id);
    Ok(0)
}

/// Creates the container, pulling its image first as `--pull` says:
/// always, when missing (Docker's default), or never.
async fn create_pulling(
    api: &mut Api,
    channel: Channel,
    a: CreateArgs,
) -> Result<pb::CreateResponse, Failure> {
    let (pull, platform) = (a.pull.clone(), a.platform.clone().unwrap_or_default());
    let cidfile = a.cidfile.clone();
    let req = super::request::create_request(a)?;
    // --cidfile: made before the create, as Docker does, so that two runs
    // with one file cannot both go ahead; removed if the create fails.
    let Some(path) = cidfile else {
        return create_or_pull(api, channel, req, &pull, &platform).await;
    };
    let mut file = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Failure(
                format!(
                    "Container ID file found, make sure the other container isn't running or delete {}",
                    path.display()
                ),
                125,
            ),
            _ => Failure(format!("cannot create the cidfile {}: {e}", path.display()), 125),
        })?;
    let created = create_or_pull(api, channel, req, &pull, &platform).await;
    match &created {
        Ok(c) => {
            use std::io::Write;
            file.write_all(c.id.as_bytes()).map_err(|e| {
                Failure(
                    format!("cannot write the cidfile {}: {e}", path.display()),
                    125,
                )
            })?
        }
        Err(_) => {
            let _ = std::fs::remove_file(&path);
        }
    }
    created
}

async fn create_or_pull(
    api: &mut Api,
    channel: Channel,
    req: pb::CreateRequest,
    pull: &str,
    platform: &str,
) -> Result<pb::CreateResponse, Failure> {
    if !matches!(pull, "always" | "missing" | "never") {
        return Err(Failure(
            format!("invalid --pull {pull:?}: always, missing or never"),
            125,
        ));
    }
    let mut images = pb::images_client::ImagesClient::new(channel);
    if req.image.is_empty() {
        return Ok(api.create(req).await?.into_inner());
    }
    if pull == "always" {
        super::pull::pull_image(&mut images, &req.image, platform, false).await?;
    }
    match api.create(req.clone()).await {
        Err(s)
            if s.code() == tonic::Code::NotFound
                && s.message().starts_with("no such image")
                && pull == "missing" =>
        {
            eprintln!("Unable to find image '{}' locally", req.image);
            super::pull::pull_image(&mut images, &req.image, platform, false).await?;
            Ok(api.create(req).await?.into_inner())
        }
        // Held for another platform than --platform: the right one is
        // pulled, as Docker does.
        Err(s)
            if s.code() == tonic::Code::FailedPrecondition
                && pull == "missing"
                && !platform.is_empty()
                && s.message().contains(" is for ") =>
        {
            super::pull::pull_image(&mut images, &req.image, platform, false).await?;
            Ok(api.create(req).await?.into_inner())
        }
        r => Ok(r?.into_inner()),
    }
}

/// `run`'s own flags.
pub struct Run {
    pub detach: bool,
    pub rm: bool,
    pub sig_proxy: bool,
    pub detach_keys: Option<String>,
    /// -a: the streams attached ("stdin", "stdout", "stderr").
    pub attach: Vec<String>,
}

/// Which output streams -a asks for (both without it), and whether it
/// asks for stdin; checked against the other flags as Docker checks them.
fn attached_streams(r: &Run, create: &CreateArgs) -> Result<(bool, bool, bool), Failure> {
    if r.attach.is_empty() {
        return Ok((false, true, true));
    }
    if r.detach {
        return Err(Failure("Conflicting options: -a and -d".into(), 125));
    }
    let mut streams = (false, false, false);
    for a in &r.attach {
        match a.to_ascii_lowercase().as_str() {
            "stdin" => streams.0 = true,
            "stdout" => streams.1 = true,
            "stderr" => streams.2 = true,
            _ => {
                return Err(Failure(
                    format!("invalid argument {a:?} for -a: use STDIN, STDOUT or STDERR"),
                    125,
                ))
            }
        }
    }
    if (create.interactive || create.tty || streams.0) && !(streams.1 && streams.2) {
        return Err(Failure(
            "berth attaches a session with stdin or a terminal to both output streams: -a STDOUT or -a STDERR alone is for a run without -i and -t".into(),
            125,
        ));
    }
    Ok(streams)
}

pub async fn run(
    api: &mut Api,
    channel: Channel,
    r: Run,
    mut create: CreateArgs,
) -> Result<u8, Failure> {
    let (stdin, stdout, stderr) = attached_streams(&r, &create)?;
    // -a STDIN is -i's attach.
    create.interactive |= stdin;
    let Run {
        detach,
        rm,
        sig_proxy,
        detach_keys,
        ..
    } = r;
    let (interactive, tty) = (create.interactive, create.tty);
    if rm && create.restart.as_deref().is_some_and(|r| r != "no") {
        return Err(Failure(
            "conflicting options: cannot specify both --restart and --rm".into(),
            125,
        ));
    }
    let attached = !detach && (interactive || tty);
    // -d --rm: the daemon removes it when it exits, and attached too (the
    // exit code comes with the end of the attach, and a detach leaves it
    // running). Following the logs this CLI does, once it has the output
    // and the exit code (a removal by the daemon could come before it asks
    // for either).
    create.auto_remove = rm && (detach || attached);
    // -i in the foreground: stdin closes when ours ends, as Docker's.
    create.stdin_once = interactive && !detach;
    let created = create_pulling(api, channel, create).await?;
    let id = created.id;
    // From before the start: a Ctrl-C that comes while it starts reaches
    // the container too, and never ends this CLI alone. A terminal passes
    // its own.
    let _proxy = match sig_proxy && !tty {
        true => Some(super::signals::proxy(api.clone(), id.clone())?),
        false => None,
    };
    let start_failed = |s: tonic::Status| {
        let code = start_failure_code(&s);
        Failure(format!("Error response from daemon: {}", s.message()), code)
    };
    // Attached: from before the start, every byte and stdin, the session
    // ending as the container does.
    let started = match attached {
        true => {
            let session = super::attach::Session {
                id: id.clone(),
                stdin: interactive,
                tty,
                detach_keys,
                start: true,
            };
            super::attach::session(api, session).await.map(Some)
        }
        false => api
            .start(pb::StartRequest { id: id.clone() })
            .await
            .map(|_| None),
    };
    let ended = match started {
        Ok(session) => session.transpose()?,
        Err(s) => {
            if rm {
                let _ = api.remove(pb::RemoveRequest { id, force: true }).await;
            }
            return Err(start_failed(s));
        }
    };
    if let Some(ended) = ended {
        return super::attach::code(api, id, ended).await;
    }
    if detach {
        crate::output::outln!("{id}");
        return Ok(0);
    }
    // The container's output as it runs (the streams -a names); the
    // stream ends when it stops.
    let follow = pb::LogsRequest {
        id: id.clone(),
        follow: true,
        stdout,
        stderr,
        ..Default::default()
    };
    super::logs::print(api, follow).await?;
    let waited = wait_for(api, id.clone(), pb::WaitCondition::NotRunning).await?;
    if rm {
        api.remove(pb::RemoveRequest { id, force: true }).await?;
    }
    Ok(waited.exit_code.clamp(0, 255) as u8)
}

/// `docker run`'s exit code for a start that failed: 127 when the
/// command was not found, 126 when it cannot be invoked (not permitted, a
/// directory), 125 for anything else.
fn start_failure_code(s: &tonic::Status) -> u8 {
    let msg = s.message().to_ascii_lowercase();
    let says = |words: &[&str]| words.iter().any(|w| msg.contains(w));
    match s.code() {
        tonic::Code::InvalidArgument if says(&["no such file or directory", "executable file"]) => {
            127
        }
        tonic::Code::InvalidArgument if says(&["permission denied", "is a directory"]) => 126,
        _ => 125,
    }
}

pub async fn start(api: &Api, containers: &[String]) -> Result<u8, Failure> {
    each(containers, |id| {
        let mut api = api.clone();
        async move { api.start(pb::StartRequest { id }).await.map(drop) }
    })
    .await
}

pub async fn restart(api: &Api, time: Option<i32>, containers: &[String]) -> Result<u8, Failure> {
    each(containers, |id| {
        let mut api = api.clone();
        async move {
            let req = pb::RestartRequest {
                id,
                timeout_seconds: time,
            };
            api.restart(req).await.map(drop)
        }
    })
    .await
}

pub async fn rename(api: &mut Api, container: String, name: String) -> Result<u8, Failure> {
    api.rename(pb::RenameRequest {
        id: container,
        name,
    })
    .await?;
    Ok(0)
}

pub async fn stop(
    api: &Api,
    time: Option<i32>,
    signal: Option<String>,
    containers: &[String],
) -> Result<u8, Failure> {
    each(containers, |id| {
        let mut api = api.clone();
        let signal = signal.clone();
        async move {
            let req = pb::StopRequest {
                id,
                timeout_seconds: time,
                signal,
            };
            api.stop(req).await.map(drop)
        }
    })
    .await
}

pub async fn kill(
    api: &Api,
    signal: String,
    all: bool,
    containers: &[String],
) -> Result<u8, Failure> {
    each(containers, |id| {
        let mut api = api.clone();
        let signal = signal.clone();
        async move {
            let req = pb::KillRequest { id, signal, all };
            api.kill(req).await.map(drop)
        }
    })
    .await
}

pub async fn pause(api: &Api, containers: &[String]) -> Result<u8, Failure> {
    each(containers, |id| {
        let mut api = api.clone();
        async move { api.pause(pb::PauseRequest { id }).await.map(drop) }
    })
    .await
}

pub async fn unpause(api: &Api, containers: &[String]) -> Result<u8, Failure> {
    each(containers, |id| {
        let mut api = api.clone();
        async move { api.unpause(pb::UnpauseRequest { id }).await.map(drop) }
    })
    .await
}

pub async fn rm(api: &Api, force: bool, containers: &[String]) -> Result<u8, Failure> {
    each(containers, |id| {
        let mut api = api.clone();
        async move { api.remove(pb::RemoveRequest { id, force }).await.map(drop) }
    })
    .await
}

pub async fn update(
    api: &Api,
    limits: LimitArgs,
    restart: Option<String>,
    containers: &[String],
) -> Result<u8, Failure> {
    let resources = limits.resources()?;
    let restart_policy = restart
        .as_deref()
        .map(super::flags::restart_policy)
        .transpose()?;
    each(containers, |id| {
        let mut api = api.clone();
        let resources = Some(resources.clone());
        let restart_policy = restart_policy.clone();
        async move {
            let req = pb::UpdateRequest {
                id,
                resources,
                restart_policy,
            };
            api.update(req).await.map(drop)
        }
    })
    .await
}

/// Prints each container's exit code once `condition` holds.
pub async fn wait(api: &mut Api, condition: &str, containers: Vec<String>) -> Result<u8, Failure> {
    let cond = match condition {
        "not-running" => pb::WaitCondition::NotRunning,
        "next-exit" => pb::WaitCondition::NextExit,
        "removed" => pb::WaitCondition::Removed,
        "healthy" => pb::WaitCondition::Healthy,
        "unhealthy" => pb::WaitCondition::Unhealthy,
        _ => {
            return Err(Failure(
                format!("invalid condition {condition:?}: use not-running, next-exit, removed, healthy or unhealthy"),
                125,
            ))
        }
    };
    // A health is the answer itself: nothing to print but errors.
    let health = matches!(
        cond,
        pb::WaitCondition::Healthy | pb::WaitCondition::Unhealthy
    );
    let mut failed = false;
    for id in containers {
        match wait_for(api, id, cond).await {
            Ok(_) if health => {}
            Ok(r) => crate::output::outln!("{}", r.exit_code),
            Err(s) => {
                eprintln!("Error response from daemon: {}", s.message());
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}

/// Waits for `cond`, asking again while the daemon is unavailable (a
/// restart): a next-exit wait passes the exit count it started from, so an
/// exit while the daemon was down is not missed.
pub(super) async fn wait_for(
    api: &mut Api,
    id: String,
    cond: pb::WaitCondition,
) -> Result<pb::WaitResponse, tonic::Status> {
    let asked_at = prost_types::Timestamp::from(std::time::SystemTime::now());
    let mut exit_count = None;
    let mut told = false;
    loop {
        if cond == pb::WaitCondition::NextExit && exit_count.is_none() {
            match api.inspect(pb::InspectRequest { id: id.clone() }).await {
                Ok(r) => exit_count = base_count(r.into_inner(), told, &asked_at),
                Err(s) if super::unavailable(&s) => {}
                Err(s) => return Err(s),
            }
        }
        if cond != pb::WaitCondition::NextExit || exit_count.is_some() {
            let req = pb::WaitRequest {
                id: id.clone(),
                condition: cond as i32,
                exit_count,
            };
            match api.wait(req).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(s) if super::unavailable(&s) => {}
                Err(s) => return Err(s),
            }
        }
        if !told {
            eprintln!("berthd is unavailable; waiting for it to come back");
            told = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The exit count a next-exit wait asked at `asked_at` waits past. If the
/// daemon was unavailable before it could say (`late`), a run that ended
/// after `asked_at` is the exit waited for, so the count before it is.
fn base_count(
    r: pb::InspectResponse,
    late: bool,
    asked_at: &prost_types::Timestamp,
) -> Option<u64> {
    let state = r.container?.state?;
    let after =
        |t: &prost_types::Timestamp| (t.seconds, t.nanos) >= (asked_at.seconds, asked_at.nanos);
    match state.finished_at {
        Some(t) if late && after(&t) && state.exit_count > 0 => Some(state.exit_count - 1),
        _ => Some(state.exit_count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_get_docker_runs_codes() {
        let code = |c, m: &str| start_failure_code(&tonic::Status::new(c, m));
        use tonic::Code::{FailedPrecondition, InvalidArgument};
        let not_found = "cannot exec \"/x\": No such file or directory (os error 2)";
        assert_eq!(code(InvalidArgument, not_found), 127);
        assert_eq!(
            code(InvalidArgument, "executable file \"x\" not found in $PATH"),
            127
        );
        assert_eq!(
            code(
                InvalidArgument,
                "cannot exec \"/\": Permission denied (os error 13)"
            ),
            126
        );
        assert_eq!(
            code(InvalidArgument, "no user \"nobody2\" in /etc/passwd"),
            125
        );
        assert_eq!(code(FailedPrecondition, "not delegated"), 125);
    }
}
