//! A stable hash for folder and lock names and state fingerprints, and the
//! file names drapto makes from a rip's, kept within a file system's bound.

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

/// The bytes one file name may have (Linux's file systems and macOS's).
pub const NAME_MAX: usize = 255;

/// `prefix` + `name` + `suffix` as one file name (a rip's name with
/// drapto's marks: `.NAME.drapto-partial`, `NAME.report.json`), within
/// [`NAME_MAX`] bytes: when it would be longer, `name` is cut at a
/// character and the hash of all of it follows (`~` and 16 hex digits), so
/// that two long names sharing their start stay apart. A rip's name may
/// itself be 255 bytes (80 characters of Japanese are 240): its hidden
/// output's name, 16 bytes more, could not be created, and the mux failed
/// after the whole encode.
pub fn file_name(prefix: &str, name: &str, suffix: &str) -> String {
    let whole = format!("{prefix}{name}{suffix}");
    if whole.len() <= NAME_MAX {
        return whole;
    }
    let mark = format!("~{:016x}", fnv1a(name.as_bytes()));
    let room = NAME_MAX.saturating_sub(prefix.len() + mark.len() + suffix.len());
    let cut = (0..=room.min(name.len())).rev().find(|i| name.is_char_boundary(*i)).unwrap_or(0);
    format!("{prefix}{}{mark}{suffix}", &name[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_within_the_bound_and_apart() {
        assert_eq!(file_name(".", "Heat (1995).mkv", ".drapto-partial"), ".Heat (1995).mkv.drapto-partial");
        let long = format!("{}.mkv", "あ".repeat(80));
        assert_eq!(long.len(), 244);
        let partial = file_name(".", &long, ".drapto-partial");
        assert!(partial.len() <= NAME_MAX && partial.len() > 240, "{}", partial.len());
        assert!(partial.starts_with(".ああ") && partial.ends_with(".drapto-partial"), "{partial}");
        let other = format!("{}い.mkv", "あ".repeat(79));
        assert_ne!(file_name(".", &other, ".drapto-partial"), partial, "the hash keeps them apart");
        assert_eq!(file_name(".", &long, ".drapto-partial"), partial, "and the same name the same");
        let huge = "x".repeat(300);
        assert_eq!(file_name("", &huge, ".failed.report.json").len(), NAME_MAX);
    }
}
