//! The last test binary of a run (cargo runs them by name): lists the
//! checks the other binaries skipped because this host lacks what they
//! need, so that a run which skipped some never reads as if all ran.
//! CI requires them (BERTH_REQUIRE_TOOLS=1, and BERTH_REQUIRE_SYSTEMD=1 in
//! its VM): there a skip fails its own test instead.

#![allow(dead_code)]

#[path = "common/skip.rs"]
mod skip;

fn main() {
    let dir = skip::skip_dir();
    let mut skipped: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .map(|s| s.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    skipped.sort();
    let _ = std::fs::remove_dir_all(&dir);
    match skipped.len() {
        0 => println!("\nskipped checks: none"),
        n => {
            println!("\nskipped checks: {n} (this host lacks what they need; they passed without running):");
            for s in &skipped {
                println!("  {s}");
            }
        }
    }
}
