//! The arguments of the image verbs, `system` and `exec`.

use clap::{Args, Subcommand};

#[derive(Args)]
pub struct ImagesArgs {
    /// Only ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Full ids.
    #[arg(long)]
    pub no_trunc: bool,
    /// dangling=true|false, reference=GLOB, before=IMAGE, since=IMAGE,
    /// label=KEY[=VALUE].
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// table, json, or a Go template ({{.Repository}}:{{.Tag}} {{.ID}}).
    #[arg(long)]
    pub format: Option<String>,
    /// Only this repository (or reference).
    pub reference: Option<String>,
}

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Show images' details.
    Inspect {
        /// json, or a Go template.
        #[arg(short, long, default_value = "")]
        format: String,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove dangling images (all unused ones with -a).
    Prune {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        force: bool,
    },
    /// List images.
    Ls(ImagesArgs),
    /// Remove images.
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Pull an image.
    Pull {
        #[arg(long)]
        platform: Option<String>,
        #[arg(short, long)]
        quiet: bool,
        reference: String,
    },
}

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Disk usage of images, containers and blobs.
    Df,
    /// Remove stopped containers, networks no container uses, and
    /// dangling images (every unused one with -a).
    Prune {
        /// Every image no container uses, not only dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Volumes too: berth's are a container's own and go with it, so
        /// the containers pruned take theirs.
        #[arg(long)]
        volumes: bool,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Args)]
pub struct ExecArgs {
    /// Keep stdin open: pass this CLI's stdin to the process.
    #[arg(short, long)]
    pub interactive: bool,
    /// A terminal for the process (with -i: an interactive shell).
    #[arg(short, long)]
    pub tty: bool,
    /// Run in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Run as this user: uid[:gid] or name[:group].
    #[arg(short, long)]
    pub user: Option<String>,
    /// Set an environment variable: KEY=VALUE, or KEY for this shell's
    /// value of KEY (left out if it has none).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read environment variables from a file, as run's --env-file; -e
    /// wins.
    #[arg(long)]
    pub env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Every capability and no seccomp filter for this process.
    #[arg(long)]
    pub privileged: bool,
    /// The keys that detach (with -it): e.g. "ctrl-p,ctrl-q", the default.
    #[arg(long)]
    pub detach_keys: Option<String>,
    pub container: String,
    /// Command and arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
