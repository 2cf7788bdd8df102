//! Generated container names, Docker style: "adjective_noun".

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "clever", "eager", "fond", "gentle", "happy", "jolly", "keen", "kind",
    "lucid", "merry", "nifty", "proud", "quiet", "sharp", "steady", "swift", "tender", "witty",
];

const NOUNS: &[&str] = &[
    "anchor", "beacon", "buoy", "cutter", "dock", "ferry", "galley", "harbor", "jetty", "keel",
    "lantern", "mast", "pier", "quay", "rudder", "sail", "skiff", "tide", "wharf", "yawl",
];

/// A name from random bytes, with a suffix from the id so that clashes
/// are rare; a clash is still caught by the name check at create.
pub fn generate(random: &[u8; 32]) -> String {
    let a = ADJECTIVES[random[0] as usize % ADJECTIVES.len()];
    let n = NOUNS[random[1] as usize % NOUNS.len()];
    format!("{a}_{n}_{:02x}{:02x}", random[2], random[3])
}
