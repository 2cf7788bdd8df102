//! The arguments of `network` and `port`.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network: berth network create [OPTIONS] NAME
    Create {
        /// Subnet in CIDR form, IPv4 (default: a free one) or, with
        /// --ipv6, IPv6 (default: a unique local /64); once per family.
        #[arg(long)]
        subnet: Vec<String>,
        /// The bridge's address in a subnet (default: its first); once
        /// per family.
        #[arg(long)]
        gateway: Vec<String>,
        /// IPv6 too.
        #[arg(long)]
        ipv6: bool,
        /// Driver options, as Docker's: com.docker.network.driver.mtu=N
        /// (the MTU; default 1500).
        #[arg(short, long)]
        opt: Vec<String>,
        /// KEY=VALUE.
        #[arg(long)]
        label: Vec<String>,
        /// Give containers IPv4 addresses from this part of the subnet
        /// (a CIDR; needs --subnet).
        #[arg(long)]
        ip_range: Option<String>,
        /// NAME=ADDRESS: an address of the subnet never given to a
        /// container (needs --subnet).
        #[arg(long)]
        aux_address: Vec<String>,
        /// Containers reach each other only: no way out of the network.
        #[arg(long)]
        internal: bool,
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Only ids.
        #[arg(short, long)]
        quiet: bool,
        /// Full ids.
        #[arg(long)]
        no_trunc: bool,
    },
    /// Show networks' details, with the running containers on them.
    Inspect {
        /// json, or a Go template.
        #[arg(short, long, default_value = "")]
        format: String,
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Put a container on a network, at once if it runs:
    /// berth network connect [OPTIONS] NETWORK CONTAINER
    Connect {
        /// Another name containers on the network reach it by.
        #[arg(long)]
        alias: Vec<String>,
        network: String,
        container: String,
    },
    /// Take a container off a network, at once if it runs:
    /// berth network disconnect NETWORK CONTAINER
    Disconnect { network: String, container: String },
    /// Remove every network no container uses (the default bridge stays).
    Prune {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}
