//! A stable hash for folder and lock names and state fingerprints.

/// 64-bit FNV-1a: stable across Rust versions and machines, unlike std's
/// hasher, and dependency-free.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The fingerprint of everything in `key` that decides a result (settings,
/// a plan, a segmentation): equal keys, equal fingerprints.
pub fn fingerprint(key: &serde_json::Value) -> String {
    format!("{:016x}", fnv1a(key.to_string().as_bytes()))
}
