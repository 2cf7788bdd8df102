//! `berth`: the command-line client, with Docker's verbs. This file
//! connects and dispatches; args.rs has the command line, commands/ one
//! file per verb family, output.rs the tables and JSON.

mod args;
mod commands;
mod output;
mod template;
mod terminal;
mod views;

use args::{Cli, Command};
use berth::pb::containers_client::ContainersClient;
use clap::Parser;
use commands::{
    archive, attach, events, exec, images, inspect, lifecycle, logs, network, pull, system,
};
use std::process::ExitCode;
use tonic::transport::Channel;

pub type Api = ContainersClient<Channel>;

/// Docker's default bridge network, which containers join when they name
/// none.
pub const DEFAULT_NETWORK: &str = "bridge";

/// A failure: the message printed and the exit code.
#[derive(Debug)]
pub struct Failure(pub String, pub u8);

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        Failure(format!("Error response from daemon: {}", s.message()), 1)
    }
}

impl From<berth::ConnectError> for Failure {
    fn from(e: berth::ConnectError) -> Self {
        Failure(format!("{e}: is berthd running?"), 1)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // As docker: a command line that does not parse exits 125 (help and
    // --version print and exit 0).
    let cli = match Cli::try_parse_from(args::forms::plain(std::env::args_os().collect())) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 125 } else { 0 });
        }
    };
    // `docker run` exits 125 when the daemon or the CLI fails (126 and 127
    // when the command cannot be run, the container's code otherwise).
    let is_run = matches!(cli.command, Command::Run { .. });
    let result = run(cli)
        .await
        .map_err(|Failure(msg, code)| match (is_run, code) {
            (true, 1) => Failure(msg, 125),
            _ => Failure(msg, code),
        });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure(msg, code)) => {
            eprintln!("{msg}");
            ExitCode::from(code)
        }
    }
}

/// The daemon, as the global options name it.
async fn connect(cli: &Cli) -> Result<Channel, Failure> {
    let tls = match (&cli.tls_ca, &cli.tls_cert, &cli.tls_key) {
        (None, None, None) => None,
        (Some(ca), Some(cert), Some(key)) => Some(berth::Tls {
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
            server_name: None,
        }),
        _ => {
            return Err(Failure(
                "TLS needs all of --tls-ca, --tls-cert and --tls-key".into(),
                125,
            ))
        }
    };
    Ok(berth::connect_with(&cli.host, tls.as_ref()).await?)
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    // The client's version needs no daemon; the daemon's part follows.
    if let Command::Version { format } = &cli.command {
        if format.is_empty() {
            system::client_version();
        }
    }
    let channel = connect(&cli).await?;
    let mut api = ContainersClient::new(channel.clone());
    match cli.command {
        Command::Create(a) => lifecycle::create(&mut api, channel, a).await,
        Command::Run {
            detach,
            rm,
            sig_proxy,
            detach_keys,
            attach,
            create,
        } => {
            let sig_proxy = sig_proxy && !detach;
            let run = lifecycle::Run {
                detach,
                rm,
                sig_proxy,
                detach_keys,
                attach,
            };
            lifecycle::run(&mut api, channel, run, create).await
        }
        Command::Start {
            attach: false,
            interactive: false,
            containers,
            ..
        } => lifecycle::start(&api, &containers).await,
        Command::Start {
            containers,
            interactive,
            detach_keys,
            ..
        } => match <[String; 1]>::try_from(containers) {
            Ok([id]) => attach::start(&mut api, id, interactive, detach_keys).await,
            Err(_) => Err(Failure(
                "you cannot start and attach multiple containers at once".into(),
                1,
            )),
        },
        Command::Attach {
            no_stdin,
            detach_keys,
            sig_proxy,
            container,
        } => attach::attach(&mut api, container, no_stdin, detach_keys, sig_proxy).await,
        Command::Restart { time, containers } => lifecycle::restart(&api, time, &containers).await,
        Command::Rename { container, name } => lifecycle::rename(&mut api, container, name).await,
        Command::Top { container } => inspect::top(&mut api, container).await,
        Command::Container { command } => system::container(&mut api, command).await,
        Command::Version { format } => system::version(channel, &format).await,
        Command::Info { format } => system::info(channel, &format).await,
        Command::Stop {
            time,
            signal,
            containers,
        } => lifecycle::stop(&api, time, signal, &containers).await,
        Command::Kill {
            signal,
            all,
            containers,
        } => lifecycle::kill(&api, signal, all, &containers).await,
        Command::Update {
            limits,
            restart,
            containers,
        } => lifecycle::update(&api, limits, restart, &containers).await,
        Command::Pause { containers } => lifecycle::pause(&api, &containers).await,
        Command::Unpause { containers } => lifecycle::unpause(&api, &containers).await,
        Command::Rm { force, containers } => lifecycle::rm(&api, force, &containers).await,
        Command::Wait {
            condition,
            containers,
        } => lifecycle::wait(&mut api, &condition, containers).await,
        Command::Stats {
            no_stream,
            format,
            containers,
        } => inspect::stats(&mut api, no_stream, format, containers).await,
        Command::Logs(q) => logs::logs(&mut api, q).await,
        Command::Ps(a) => inspect::ps(&mut api, a).await,
        Command::Inspect {
            format,
            kind,
            names,
        } => inspect::inspect(channel, kind, format, names).await,
        Command::Events(a) => events::events(channel, a).await,
        Command::Exec(a) => exec::exec(&mut api, a).await,
        Command::Pull {
            platform,
            quiet,
            reference,
        } => pull::pull(channel, reference, platform.unwrap_or_default(), quiet).await,
        Command::Images(a) => commands::image_list::list(channel, a).await,
        Command::Rmi { force, images } => images::rmi(channel, force, images).await,
        Command::Tag { source, target } => images::tag(channel, source, target).await,
        Command::Save { output, images } => archive::save(channel, output, images).await,
        Command::Load { input, quiet } => archive::load(channel, input, quiet).await,
        Command::Import {
            change,
            file,
            reference,
        } => archive::import(channel, file, reference, change).await,
        Command::Export { output, container } => archive::export(channel, output, container).await,
        Command::Image { command } => images::image(channel, command).await,
        Command::Network { command } => network::network(channel, command).await,
        Command::Port { container, port } => network::port(&mut api, container, port).await,
        Command::Login {
            username,
            password,
            password_stdin,
            registry,
        } => images::login(channel, registry, username, password, password_stdin).await,
        Command::Logout { registry } => images::logout(channel, registry).await,
        Command::System { command } => match command {
            args::SystemCommand::Df => images::df(channel).await,
            args::SystemCommand::Prune {
                all,
                volumes: _,
                force,
            } => system::prune(channel, all, force).await,
        },
    }
}
