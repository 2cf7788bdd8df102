//! Users and groups as a request names them.

/// A user given as "uid[:gid]" or "name[:group]".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id<'a> {
    Number(u32),
    Name(&'a str),
}

/// A uid or gid as a number: 0 to 2^32-2. (uid_t)-1 means "unchanged" to
/// the kernel (setresuid(-1, -1, -1) keeps root), so it is never an id.
pub fn parse_id(s: &str) -> Option<u32> {
    s.parse::<u32>().ok().filter(|n| *n != u32::MAX)
}

/// Splits and checks a user: numbers (see `parse_id`), or names of
/// letters, digits and "_.-" (not starting with '-', not all digits).
pub fn parse_user(user: &str) -> Option<(Id<'_>, Option<Id<'_>>)> {
    fn id(s: &str) -> Option<Id<'_>> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return parse_id(s).map(Id::Number);
        }
        let ok = !s.is_empty()
            && s.len() <= 32
            && !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        ok.then_some(Id::Name(s))
    }
    match user.split_once(':') {
        Some((u, g)) => Some((id(u)?, Some(id(g)?))),
        None => Some((id(user)?, None)),
    }
}

/// The fields of `u`'s entry in `passwd` (an /etc/passwd's text:
/// name:password:uid:gid:gecos:home:shell).
pub fn passwd_entry<'a>(passwd: &'a str, u: &Id<'_>) -> Option<Vec<&'a str>> {
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| {
            f.len() >= 4
                && match u {
                    Id::Number(n) => parse_id(f[2]) == Some(*n),
                    Id::Name(name) => f[0] == *name,
                }
        })
}

/// HOME for a process run as `user` (root when empty), as Docker sets it:
/// the home directory of its entry in `passwd`; without one, /root for
/// root and / for anyone else.
pub fn home(user: &str, passwd: &str) -> String {
    let u = match parse_user(user) {
        Some((u, _)) => u,
        None => Id::Number(0),
    };
    match passwd_entry(passwd, &u) {
        Some(f) if f.len() >= 6 && !f[5].is_empty() => f[5].to_string(),
        _ if matches!(u, Id::Number(0) | Id::Name("root")) => "/root".into(),
        _ => "/".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_comes_from_the_users_passwd_entry() {
        let passwd =
            "root:x:0:0:root:/var/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\nn:x:1001:1001\n";
        assert_eq!(home("", passwd), "/var/root");
        assert_eq!(home("0:5", passwd), "/var/root");
        assert_eq!(home("1000", passwd), "/home/u");
        assert_eq!(home("u:0", passwd), "/home/u");
        // No entry, or one without a home.
        assert_eq!(home("", ""), "/root");
        assert_eq!(home("root", "x"), "/root");
        assert_eq!(home("2000", passwd), "/");
        assert_eq!(home("n", passwd), "/");
    }
}
