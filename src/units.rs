//! How quantities read: bytes with binary units, counts with their noun,
//! durations as the design prints them.

/// "15.7 GiB", "812.0 KiB", "12 B".
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// "1 segment", "3 segments".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// "02h 15m 30s", as the design prints times.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{:02}h {:02}m {:02}s", s / 3600, (s / 60) % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_bytes(12), "12 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(16_857_759_744), "15.7 GiB");
        assert_eq!(format_duration(8130.0), "02h 15m 30s");
        assert_eq!(format_duration(59.6), "00h 01m 00s");
        assert_eq!((count(1, "segment"), count(0, "scene cut")), ("1 segment".into(), "0 scene cuts".into()));
    }
}
