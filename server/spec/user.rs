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
