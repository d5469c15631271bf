//! What makes a file no rip at a glance: not a regular file, empty, or
//! not beginning as Matroska (for the analysis and for a dry run, which
//! does not analyse).

use std::path::Path;

/// What makes `input` no rip at a glance (its size and first bytes), as
/// analysis would say it: for a dry run, which does not analyse (it said
/// `encode` for an empty file or an MP4 named `.mkv`, which the run fails at
/// once). `None`: it may be one.
pub fn not_a_rip(input: &Path) -> Option<String> {
    use std::io::Read;
    let meta = match std::fs::metadata(input) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot be read: {e}")),
    };
    if let Some(why) = not_a_file(&meta) {
        return Some(why.into());
    }
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(input).and_then(|mut f| f.read_exact(&mut magic));
    match read {
        Err(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => Some(format!("cannot be read: {e}")),
        _ if magic != [0x1A, 0x45, 0xDF, 0xA3] => Some("is not a Matroska file (it does not begin as one)".into()),
        _ => None,
    }
}

/// What makes a file of `meta` no rip before any read: not a regular file,
/// or empty.
pub(super) fn not_a_file(meta: &std::fs::Metadata) -> Option<&'static str> {
    if !meta.is_file() {
        Some("is not a regular file")
    } else if meta.len() == 0 {
        Some("is empty (0 bytes)")
    } else {
        None
    }
}
