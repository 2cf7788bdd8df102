//! Docker's management forms, `docker container ls`, `docker image tag`,
//! `docker system info`: each is the plain verb it stands for, so the
//! command line is rewritten to it before it is parsed. Forms with verbs
//! of their own (`container prune`, `image ls|rm|pull|inspect|prune`,
//! `system df`) are left to their subcommands.

use std::ffi::OsString;

/// (management command, verb, the plain verb it is).
const FORMS: &[(&str, &str, &str)] = &[
    ("container", "ls", "ps"),
    ("container", "list", "ps"),
    ("container", "attach", "attach"),
    ("container", "create", "create"),
    ("container", "exec", "exec"),
    ("container", "export", "export"),
    ("container", "inspect", "inspect"),
    ("container", "kill", "kill"),
    ("container", "logs", "logs"),
    ("container", "pause", "pause"),
    ("container", "port", "port"),
    ("container", "rename", "rename"),
    ("container", "restart", "restart"),
    ("container", "rm", "rm"),
    ("container", "run", "run"),
    ("container", "start", "start"),
    ("container", "stats", "stats"),
    ("container", "stop", "stop"),
    ("container", "top", "top"),
    ("container", "unpause", "unpause"),
    ("container", "update", "update"),
    ("container", "wait", "wait"),
    ("image", "list", "images"),
    ("image", "tag", "tag"),
    ("image", "save", "save"),
    ("image", "load", "load"),
    ("image", "import", "import"),
    ("system", "info", "info"),
    ("system", "events", "events"),
];

/// Global options that take a value as the next argument.
const GLOBAL_WITH_VALUE: &[&str] = &["--host", "--tls-ca", "--tls-cert", "--tls-key"];

/// `args` with a management form replaced by its plain verb.
pub fn plain(args: Vec<OsString>) -> Vec<OsString> {
    let mut i = 1;
    while let Some(a) = args.get(i).and_then(|a| a.to_str()) {
        match a {
            a if GLOBAL_WITH_VALUE.contains(&a) => i += 2,
            a if a.starts_with('-') => i += 1,
            _ => break,
        }
    }
    let word = |at: usize| args.get(at).and_then(|a| a.to_str());
    let Some(verb) = FORMS
        .iter()
        .find(|(group, verb, _)| word(i) == Some(group) && word(i + 1) == Some(verb))
        .map(|(_, _, plain)| *plain)
    else {
        return args;
    };
    let mut out = args;
    out.splice(i..i + 2, [OsString::from(verb)]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn management_forms_become_their_verbs() {
        assert_eq!(plain(words("berth container ls -a")), words("berth ps -a"));
        assert_eq!(
            plain(words("berth --host unix:///x container rm -f a")),
            words("berth --host unix:///x rm -f a")
        );
        assert_eq!(plain(words("berth image tag a b")), words("berth tag a b"));
        assert_eq!(plain(words("berth system info")), words("berth info"));
        // Their own subcommands, and plain verbs, stay.
        for same in [
            "berth container prune -f",
            "berth image ls",
            "berth ps container",
            "berth",
        ] {
            assert_eq!(plain(words(same)), words(same));
        }
    }
}
