//! `berth exec`: a process in a running container, its stdin (with -i)
//! and output passed through byte for byte, and its exit code as ours.

use crate::args::ExecArgs;
use crate::terminal::{self, follow_size, pump_stdin, RawMode};
use crate::{Api, Failure};
use berth::pb::{self, exec_request::Input, exec_response::Output};
use std::io::Write;

fn request(input: Input) -> pb::ExecRequest {
    pb::ExecRequest { input: Some(input) }
}

pub async fn exec(api: &mut Api, a: ExecArgs) -> Result<u8, Failure> {
    let env = super::request::environment(&a.env_file, a.env, |k| std::env::var(k).ok())?;
    let process = pb::ExecProcess {
        args: a.command,
        env,
        working_dir: a.workdir.unwrap_or_default(),
        user: a.user.unwrap_or_default(),
        stdin: a.interactive,
        privileged: a.privileged,
        detach: a.detach,
        tty: a.tty,
        size: a.tty.then(terminal::size).flatten(),
        detach_keys: a.detach_keys.unwrap_or_default(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let start = pb::ExecStart {
        id: a.container,
        process: Some(process),
    };
    let _ = tx.send(request(Input::Start(start))).await;
    if a.interactive && !a.detach {
        let stdin = |data| request(Input::Stdin(data));
        pump_stdin(tx.clone(), stdin, || request(Input::CloseStdin(true)));
    }
    // Raw mode on our terminal for the exec's (restored when this ends,
    // however it ends), and its size passed on as it changes.
    let _raw = match a.tty && !a.detach {
        true => RawMode::enter(),
        false => None,
    };
    if a.tty && !a.detach {
        follow_size(tx.clone(), |size| request(Input::Resize(size)));
    }
    let mut stream = api
        .exec(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut code = None;
    while let Some(m) = stream.message().await? {
        match m.output {
            Some(Output::Stdout(b)) => {
                let _ = out.write_all(&b).and_then(|()| out.flush());
            }
            Some(Output::Stderr(b)) => {
                let _ = err.write_all(&b).and_then(|()| err.flush());
            }
            Some(Output::Exit(e)) => code = Some(e.exit_code),
            // The detach keys: the process runs on.
            Some(Output::Detached(_)) => return Ok(0),
            Some(Output::ExecId(_)) | None => {}
        }
    }
    drop(tx);
    match (a.detach, code) {
        (true, _) => Ok(0),
        (false, Some(c)) => Ok(c.clamp(0, 255) as u8),
        (false, None) => Err(Failure("the exec ended without an exit status".into(), 1)),
    }
}
