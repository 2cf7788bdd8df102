//! Attached sessions to a container's PID 1: `berth run -i/-t`, `berth
//! start -a` and `berth attach`. Output is written as it comes; with -i
//! this CLI's stdin goes to the container, in raw mode on a terminal,
//! until the detach keys (ctrl-p ctrl-q) leave the container running.

use crate::terminal::{self, follow_size, pump_stdin, RawMode};
use crate::{Api, Failure};
use berth::pb::{self, attach_request::Input, attach_response::Output};
use std::io::Write;
use tokio_stream::wrappers::ReceiverStream;

fn request(input: Input) -> pb::AttachRequest {
    pb::AttachRequest { input: Some(input) }
}

/// What to attach.
pub struct Session {
    pub id: String,
    /// This CLI's stdin to the container's.
    pub stdin: bool,
    /// The container has a terminal.
    pub tty: bool,
    pub detach_keys: Option<String>,
    /// Start it first (run, start -a).
    pub start: bool,
}

/// How an attached session ended.
pub enum Ended {
    /// PID 1 ended with this exit code (None: not said).
    Exited(Option<i32>),
    /// The detach keys were read: it runs on.
    Detached,
}

/// Attaches and passes stdin and output through until the end. The outer
/// error is the daemon refusing the attach (or the start); the inner one a
/// session cut short.
pub async fn session(api: &mut Api, s: Session) -> Result<Result<Ended, Failure>, tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let start = pb::AttachStart {
        id: s.id,
        stdin: s.stdin,
        detach_keys: s.detach_keys.unwrap_or_default(),
        start: s.start,
        size: s.tty.then(terminal::size).flatten(),
    };
    let _ = tx.send(request(Input::Start(start))).await;
    let mut stream = api.attach(ReceiverStream::new(rx)).await?.into_inner();
    // Raw mode on our terminal for the container's (restored when this
    // ends, however it ends), and its size passed on as it changes.
    let _raw = match s.tty && s.stdin {
        true => RawMode::enter(),
        false => None,
    };
    if s.tty {
        follow_size(tx.clone(), |size| request(Input::Resize(size)));
    }
    if s.stdin {
        let stdin = |data| request(Input::Stdin(data));
        pump_stdin(tx.clone(), stdin, || request(Input::CloseStdin(true)));
    }
    drop(tx);
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    loop {
        let message = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(Ok(Ended::Exited(None))),
            Err(e) => return Ok(Err(e.into())),
        };
        match message.output {
            Some(Output::Stdout(b)) => {
                let _ = out.write_all(&b).and_then(|()| out.flush());
            }
            Some(Output::Stderr(b)) => {
                let _ = err.write_all(&b).and_then(|()| err.flush());
            }
            Some(Output::Detached(_)) => return Ok(Ok(Ended::Detached)),
            Some(Output::Exit(e)) => return Ok(Ok(Ended::Exited(Some(e.exit_code)))),
            None => {}
        }
    }
}

/// How the container was created: (tty, stdin_open).
async fn made(api: &mut Api, id: &str) -> Result<(bool, bool), Failure> {
    let r = api
        .inspect(pb::InspectRequest { id: id.to_string() })
        .await?
        .into_inner();
    let config = r.container.and_then(|c| c.config).unwrap_or_default();
    Ok((config.tty, config.stdin_open))
}

/// After a session: the container's exit code as ours, or 0 once
/// detached.
pub async fn code(api: &mut Api, id: String, ended: Ended) -> Result<u8, Failure> {
    let code = match ended {
        Ended::Detached => 0,
        Ended::Exited(Some(code)) => code,
        Ended::Exited(None) => {
            let not_running = pb::WaitCondition::NotRunning;
            super::lifecycle::wait_for(api, id, not_running)
                .await?
                .exit_code
        }
    };
    Ok(code.clamp(0, 255) as u8)
}

/// `berth attach`.
pub async fn attach(
    api: &mut Api,
    id: String,
    no_stdin: bool,
    detach_keys: Option<String>,
    sig_proxy: bool,
) -> Result<u8, Failure> {
    let (tty, stdin_open) = made(api, &id).await?;
    let _proxy = match sig_proxy && !tty {
        true => Some(super::signals::proxy(api.clone(), id.clone())?),
        false => None,
    };
    let s = Session {
        id: id.clone(),
        stdin: stdin_open && !no_stdin,
        tty,
        detach_keys,
        start: false,
    };
    let ended = session(api, s).await??;
    code(api, id, ended).await
}

/// `berth start -a [-i]`.
pub async fn start(
    api: &mut Api,
    id: String,
    interactive: bool,
    detach_keys: Option<String>,
) -> Result<u8, Failure> {
    let (tty, stdin_open) = made(api, &id).await?;
    let s = Session {
        id: id.clone(),
        stdin: interactive && stdin_open,
        tty,
        detach_keys,
        start: true,
    };
    let ended = session(api, s).await??;
    code(api, id, ended).await
}
