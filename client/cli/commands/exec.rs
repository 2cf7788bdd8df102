//! `berth exec`: a process in a running container, its stdin (with -i)
//! and output passed through byte for byte, and its exit code as ours.

use crate::args::ExecArgs;
use crate::{Api, Failure};
use berth::pb::{self, exec_request::Input, exec_response::Output};
use std::io::{Read, Write};

const CHUNK: usize = 64 << 10;

fn request(input: Input) -> pb::ExecRequest {
    pb::ExecRequest { input: Some(input) }
}

pub async fn exec(api: &mut Api, a: ExecArgs) -> Result<u8, Failure> {
    let env = a.env.iter().map(|e| match e.contains('=') {
        true => e.clone(),
        // KEY alone: this shell's value, as Docker's -e.
        false => format!("{e}={}", std::env::var(e).unwrap_or_default()),
    });
    let process = pb::ExecProcess {
        args: a.command,
        env: env.collect(),
        working_dir: a.workdir.unwrap_or_default(),
        user: a.user.unwrap_or_default(),
        stdin: a.interactive,
        privileged: a.privileged,
        detach: a.detach,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let start = pb::ExecStart {
        id: a.container,
        process: Some(process),
    };
    let _ = tx.send(request(Input::Start(start))).await;
    if a.interactive && !a.detach {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; CHUNK];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .blocking_send(request(Input::Stdin(buf[..n].to_vec())))
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
            let _ = tx.blocking_send(request(Input::CloseStdin(true)));
        });
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
