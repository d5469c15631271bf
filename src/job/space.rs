//! Free space: how much a folder's file system has, and the check made
//! before a job starts.

use crate::error::{Error, Result};
use crate::units::format_bytes;
use std::path::Path;

/// Bytes free for an unprivileged writer on the file system holding `path`
/// (or its nearest existing ancestor).
pub fn free_bytes(path: &Path) -> Option<u64> {
    let mut p = path;
    loop {
        if p.exists() {
            let s = nix::sys::statvfs::statvfs(p).ok()?;
            return Some(s.blocks_available() as u64 * s.fragment_size() as u64);
        }
        p = p.parent()?;
    }
}

/// Refuses when `folder` has less than `needed` bytes free.
pub fn require(folder: &Path, needed: u64) -> Result<()> {
    match free_bytes(folder) {
        Some(free) if free < needed => {
            Err(Error::NoSpace { folder: folder.to_path_buf(), needed: format_bytes(needed), free: format_bytes(free) })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_of_existing_and_missing_paths() {
        let d = tempfile::tempdir().unwrap();
        let f = free_bytes(d.path()).unwrap();
        assert!(f > 0);
        assert!(free_bytes(&d.path().join("not/yet/there")).is_some());
        assert!(require(d.path(), 1).is_ok());
        let e = require(d.path(), u64::MAX).unwrap_err().to_string();
        assert!(e.contains("not enough free space") && e.contains("needed"), "{e}");
    }
}
