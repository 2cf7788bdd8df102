//! Client text as error messages quote it.

/// Text a client sent, as error messages quote it: at most
/// `Input::SHOWN` bytes of it, so that a huge value is never echoed back
/// (a reply bigger than the client accepts would hide the error itself).
#[derive(Clone, PartialEq, Eq)]
pub struct Input(pub String);

impl Input {
    pub const SHOWN: usize = 100;
}

impl Input {
    /// The text shown, and how long the whole was if it was cut.
    fn shown(&self) -> (&str, Option<usize>) {
        let s = &self.0;
        if s.len() <= Input::SHOWN {
            return (s, None);
        }
        let mut cut = Input::SHOWN;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        (&s[..cut], Some(s.len()))
    }
}

/// Quoted: `"abc"`, or `"abc…"… (123456 bytes)` when cut.
impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shown() {
            (s, None) => write!(f, "{s:?}"),
            (s, Some(n)) => write!(f, "{s:?}… ({n} bytes)"),
        }
    }
}

/// As given: `abc`, or `abc… (123456 bytes)` when cut.
impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shown() {
            (s, None) => f.write_str(s),
            (s, Some(n)) => write!(f, "{s}… ({n} bytes)"),
        }
    }
}

impl From<&str> for Input {
    fn from(s: &str) -> Input {
        Input(s.to_string())
    }
}

impl From<String> for Input {
    fn from(s: String) -> Input {
        Input(s)
    }
}
