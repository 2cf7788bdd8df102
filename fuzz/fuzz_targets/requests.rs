//! Request validation and the parsers behind it, on arbitrary input: the
//! bytes as a CreateRequest off the wire (through the daemon's own
//! conversion and validation), and as text through the signal, name, user,
//! capability and size parsers. Nothing may panic, and whatever is accepted
//! must be safe to use: a name is one plain path component, a working
//! directory and mount destinations are absolute, normalised, without ".."
//! or NUL, no mount covers /, /dev, /proc or /sys, no user is (uid_t)-1,
//! and limits are within their ranges.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::path::{Component, Path};

#[path = "../../server/api/convert/request.rs"]
mod request;
#[path = "../../server/spec/mod.rs"]
#[allow(dead_code, unused_imports)]
mod spec;

/// What request.rs takes from its parent module in the daemon.
fn terminal_size(s: berth::pb::TerminalSize) -> (u16, u16) {
    (
        s.rows.min(u16::MAX.into()) as u16,
        s.cols.min(u16::MAX.into()) as u16,
    )
}

fn clean_absolute(p: &str) -> bool {
    Path::new(p).is_absolute()
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

fn text(s: &str) {
    if spec::validate_name(s).is_ok() {
        let joined = Path::new("/var/lib/berth/containers").join(s);
        assert_eq!(
            joined.parent(),
            Some(Path::new("/var/lib/berth/containers"))
        );
        assert!(matches!(
            Path::new(s).components().collect::<Vec<_>>()[..],
            [Component::Normal(_)]
        ));
    }
    if let Ok(sig) = spec::parse_signal(s) {
        assert!((1..=64).contains(&sig), "{s:?} -> {sig}");
    }
    if let Some((user, group)) = spec::parse_user(s) {
        for id in std::iter::once(user).chain(group) {
            match id {
                spec::Id::Name(n) => {
                    assert!(!n.is_empty() && !n.contains(':') && !n.contains('/'));
                    assert!(!n.bytes().all(|b| b.is_ascii_digit()), "{n:?} is a number");
                }
                // (uid_t)-1 is "unchanged" to the kernel: never a user.
                spec::Id::Number(n) => assert_ne!(n, u32::MAX),
            }
        }
    }
    let _ = berth::parse_size(s);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        text(s);
    }
    let Ok(req) = berth::pb::CreateRequest::decode(data) else {
        return;
    };
    let host = spec::Host {
        cpus: 2,
        swap: true,
    };
    let mut request = spec::Request::from(req);
    if request.name.is_empty() {
        request.name = "fuzz".into();
    }
    if let Ok(spec) = request.validate("host", host) {
        spec::validate_name(&spec.name).unwrap();
        assert!(clean_absolute(&spec.working_dir), "{:?}", spec.working_dir);
        assert!(!spec.args.is_empty() && !spec.args[0].is_empty());
        assert!(spec.hostname.len() <= 64);
        assert!(!spec.working_dir.contains('\0'));
        assert!(spec.args.iter().all(|a| !a.contains('\0')));
        assert!(spec
            .labels
            .keys()
            .all(|k| !k.is_empty() && !k.contains('\0')));
        assert!(spec.log_max_files <= spec::MAX_LOG_FILES);
        assert!(spec.resources.pids_limit <= spec::MAX_PIDS);
        for m in &spec.mounts {
            let d = &m.destination;
            assert!(clean_absolute(d) && d != "/" && d != "/dev" && !d.contains('\0'));
            // Normalised, and nothing on or under /proc and /sys.
            assert_eq!(spec::normalize(d).as_deref(), Some(d.as_str()));
            for kernel in ["/proc", "/sys"] {
                assert!(
                    d != kernel && !d.starts_with(&format!("{kernel}/")),
                    "{d:?}"
                );
            }
            assert!(Path::new(&m.source).is_absolute() && !m.source.contains('\0'));
        }
        assert!((1..=64).contains(&spec.stop_signal));
        assert_eq!(
            spec::parse_signal(&spec::signal_name(spec.stop_signal)),
            Ok(spec.stop_signal)
        );
        let r = spec.resources.clone();
        assert!(r.memory == 0 || r.memory >= 6 << 20);
        assert!(r.nano_cpus >= 0 && r.nano_cpus <= 2_000_000_000);
        assert!(r.memory_swap == -1 || r.memory_swap == 0 || r.memory_swap >= r.memory);
        let _ = spec.capabilities();
        let _ = spec.environment("/root");
        assert!(r.memory_reservation == 0 || r.memory == 0 || r.memory_reservation <= r.memory);
    }
});
