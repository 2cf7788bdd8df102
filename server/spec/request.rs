//! A create request as given, and its validation into a Spec: everything
//! a request can get wrong is caught here, before anything is created.

use super::*;

/// The unvalidated fields of a create request.
#[derive(Debug, Default, Clone)]
pub struct Request {
    pub name: String,
    pub rootfs: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub init: bool,
    pub stop_signal: String,
    pub stop_timeout: Option<i32>,
    pub mounts: Vec<MountRequest>,
    pub network: String,
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub resources: ResourcesRequest,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    /// None: on unless privileged.
    pub no_new_privs: Option<bool>,
    pub user: String,
    pub auto_remove: bool,
    /// The policy's name and maximum retry count, as given.
    pub restart: (String, u32),
    /// The health check, the image's under the request's.
    pub health: HealthRequest,
    pub image: Option<ImageUse>,
    pub exposed_ports: Vec<String>,
    /// Destinations of anonymous volumes (the image's Volumes).
    pub volumes: Vec<String>,
    pub stdin_open: bool,
    pub stdin_once: bool,
    pub tty: Option<(u16, u16)>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// "name:address", as Docker's --add-host.
    pub extra_hosts: Vec<String>,
    pub ports: Vec<PortRequest>,
    pub publish_all: bool,
    pub aliases: Vec<String>,
    /// Ports exposed beside the image's ("80/tcp").
    pub expose: Vec<String>,
    pub tuning: Tuning,
    /// How many of `args` the image's entrypoint gave.
    pub entrypoint_args: usize,
    /// Docker's --ip, --ip6 and --mac-address ("" for none).
    pub ip: String,
    pub ip6: String,
    pub mac: String,
    /// "", "unconfined", or a profile in Docker's JSON format.
    pub seccomp_profile: String,
    /// Docker's --pid, --ipc and --uts: "", "host", "container:NAME"…
    pub pid_mode: String,
    pub ipc_mode: String,
    pub uts_mode: String,
    pub sandbox: bool,
    /// The pod sandbox it joins (name or id, found by the runtime).
    pub pod: String,
    pub extension: Option<Extension>,
    /// An absolute path, or empty.
    pub cri_log: String,
    /// Absolute paths; None: berth's.
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    /// A CNI configuration list (JSON): the network then is its.
    pub cni: Option<String>,
    /// An absolute cgroup path, or empty.
    pub cgroup_parent: String,
}

impl Request {
    /// Checks every field; `name` must already be set (given or generated)
    /// and `hostname_default` is used when no hostname is given.
    pub fn validate(mut self, hostname_default: &str, host: Host) -> Result<Spec, Error> {
        validate_name(&self.name)?;
        let restart = RestartPolicy::parse(&self.restart.0, self.restart.1)?;
        let health = std::mem::take(&mut self.health).validate()?;
        if self.auto_remove && !restart.is_no() {
            return Err(Error::RestartAutoRemove);
        }
        let resources = Resources::default().merge(&self.resources, host)?;
        let caps = |names: &[String]| -> Result<Vec<String>, Error> {
            names.iter().map(|n| capability_name(n)).collect()
        };
        let (cap_add, cap_drop) = (caps(&self.cap_add)?, caps(&self.cap_drop)?);
        let rootfs = match &self.image {
            Some(_) if !self.rootfs.is_empty() => return Err(Error::RootfsAndImage),
            Some(_) => String::new(),
            None if self.rootfs.is_empty() => return Err(Error::NoRootfs),
            None => validate_rootfs(std::mem::take(&mut self.rootfs))?,
        };
        self.check_process()?;
        let working_dir = validate_working_dir(&rootfs, std::mem::take(&mut self.working_dir))?;
        let mut namespaces = Namespaces::parse(&self.pid_mode, &self.ipc_mode, &self.uts_mode)?;
        if let Some(target) = self.network.strip_prefix("container:") {
            // Its names are the other container's, as in Docker.
            let conflict = [
                (!self.hostname.is_empty(), "hostname and the network mode"),
                (
                    !self.dns.is_empty()
                        || !self.dns_search.is_empty()
                        || !self.dns_options.is_empty(),
                    "dns and the network mode",
                ),
                (
                    !self.extra_hosts.is_empty(),
                    "custom host-to-IP mapping and the network mode",
                ),
            ];
            if let Some((_, what)) = conflict.iter().find(|(c, _)| *c) {
                return Err(Error::NamespaceConflict(what));
            }
            namespaces.net = NamespaceMode::Container(target.to_string());
        }
        if namespaces.uts == NamespaceMode::Host
            && (!self.hostname.is_empty() || !self.tuning.domainname.is_empty())
        {
            return Err(Error::NamespaceConflict(
                "a hostname or domainname cannot be set with the host's UTS namespace",
            ));
        }
        let hostname = hostname(std::mem::take(&mut self.hostname), hostname_default)?;
        self.check_labels_and_log()?;
        self.check_paths()?;
        let stop_signal = if self.stop_signal.is_empty() {
            libc::SIGTERM
        } else {
            parse_signal(&self.stop_signal)?
        };
        let mounts = self
            .mounts
            .into_iter()
            .map(MountRequest::validate)
            .collect::<Result<Vec<_>, _>>()?;
        let user = match self.user.as_str() {
            "" => String::new(),
            u if parse_user(u).is_some() => self.user,
            _ => return Err(Error::User(self.user.into())),
        };
        let resolve = Resolve::validate(
            self.dns,
            self.dns_search,
            self.dns_options,
            self.extra_hosts,
        )?;
        let net_name = match self.network.as_str() {
            "" | "default" => DEFAULT_NETWORK,
            n => n,
        };
        let fixed = network::Fixed::parse(net_name, &self.ip, &self.ip6, &self.mac)?;
        let (network, net) = match &self.cni {
            Some(_) if !matches!(self.network.as_str(), "" | "cni") => {
                return Err(Error::NamespaceConflict(
                    "a CNI configuration and the network mode",
                ))
            }
            Some(list) => network::cni(list, self.ports)?,
            None => network::validate(
                &self.network,
                self.ports,
                self.publish_all,
                self.aliases,
                fixed,
            )?,
        };
        let tuning = self.tuning.validate(network, &namespaces)?;
        let entrypoint_args = self.entrypoint_args.min(self.args.len());
        let (seccomp_unconfined, seccomp_profile) = match self.seccomp_profile.trim() {
            "" => (false, None),
            "unconfined" => (true, None),
            json if json.starts_with('{') && json.len() <= MAX_SECCOMP_PROFILE => {
                (false, Some(json.to_string()))
            }
            _ => return Err(Error::SeccompProfile),
        };
        let mut exposed_ports = self.exposed_ports;
        for e in &self.expose {
            let (port, proto) = exposed(e)?;
            let e = format!("{port}/{}", proto.as_str());
            if !exposed_ports.contains(&e) {
                exposed_ports.push(e);
            }
        }
        Ok(Spec {
            name: self.name,
            rootfs,
            args: self.args,
            env: self.env,
            working_dir,
            hostname,
            labels: self.labels,
            // The pause process is berth-init's.
            init: self.init || self.sandbox,
            stop_signal,
            stop_timeout: self.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
            mounts,
            network,
            log_max_size: self.log_max_size,
            log_max_files: self.log_max_files,
            resources,
            cap_add,
            cap_drop,
            privileged: self.privileged,
            read_only: self.read_only,
            no_new_privs: Some(self.no_new_privs.unwrap_or(!self.privileged)),
            user,
            auto_remove: self.auto_remove,
            restart,
            health,
            image: self.image,
            exposed_ports,
            stdin_open: self.stdin_open,
            // Once closed, a terminal's input cannot be reopened: only a
            // pipe closes.
            stdin_once: self.stdin_once && self.stdin_open && self.tty.is_none(),
            tty: self.tty,
            resolve,
            net,
            tuning,
            entrypoint_args,
            namespaces,
            seccomp_unconfined,
            seccomp_profile,
            sandbox: self.sandbox,
            pod: self.pod,
            extension: self.extension,
            cri_log: self.cri_log,
            masked_paths: self.masked_paths,
            readonly_paths: self.readonly_paths,
            cni: self.cni,
            cgroup_parent: self.cgroup_parent,
        })
    }
}

/// The hostname given, or `default`: at most 64 letters, digits, '-', '.'.
fn hostname(given: String, default: &str) -> Result<String, Error> {
    let valid = |h: &str| {
        h.len() <= 64
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    match given.as_str() {
        "" => Ok(default.to_string()),
        h if valid(h) => Ok(given),
        _ => Err(Error::Hostname(given.into())),
    }
}
