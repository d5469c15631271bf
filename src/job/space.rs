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
            return crate::platform::free_bytes(p);
        }
        p = p.parent()?;
    }
}

/// Below this many bytes free, a file system counts as full: a step that
/// failed writing to it failed for want of space.
const FULL_BELOW: u64 = 8 << 20;

/// `e`, a step's failure, as [`Error::DiskFull`] naming the disk when one
/// of `folders` (those the step wrote to) is full now: whatever the failing
/// tool said, in whatever language (mkvmerge says it in the user's, and a
/// failure not seen as a full disk was retried and blamed on the rip).
/// Other failures are `e` as it is.
pub fn explain_full(e: Error, input: &Path, folders: &[&Path]) -> Error {
    let step = match &e {
        Error::DiskFull { disk, .. } if !disk.is_empty() => return e,
        Error::DiskFull { step, .. } => step.clone(),
        Error::Process { source, .. } => source.step.clone(),
        Error::Io { action, .. } => action.to_string(),
        _ => return e,
    };
    let full = folders.iter().find_map(|f| free_bytes(f).filter(|b| *b < FULL_BELOW).map(|b| (f, b)));
    match full {
        Some((folder, free)) => Error::DiskFull {
            path: input.to_path_buf(),
            step,
            disk: format!(" (the disk of {}: {} free)", folder.display(), format_bytes(free)),
        },
        None => e,
    }
}

/// Bytes in the files under `dir` (0 when it is not there).
pub fn used_bytes(dir: &Path) -> u64 {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    entries
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => used_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// The file system holding `path` (or its nearest existing ancestor).
fn device(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    path.ancestors().find_map(|p| std::fs::metadata(p).ok()).map(|m| m.dev())
}

/// Refuses when a folder of `needs` has less free than it needs, counting
/// together the needs of folders on one file system (work and output on
/// one disk need room for both).
pub fn require_all(needs: &[(&Path, u64)]) -> Result<()> {
    for (i, &(folder, alone)) in needs.iter().enumerate() {
        let dev = device(folder);
        let shared: Vec<_> = needs.iter().filter(|&&(f, _)| dev.is_some() && device(f) == dev).collect();
        if shared.len() > 1 && !std::ptr::eq(shared[0], &needs[i]) {
            continue; // counted with the first folder on its disk
        }
        let needed = if shared.len() > 1 { shared.iter().map(|&&(_, n)| n).sum() } else { alone };
        match free_bytes(folder) {
            Some(free) if free < needed => {
                let also = shared.iter().skip(1).map(|(f, _)| f.display().to_string()).collect::<Vec<_>>();
                let with =
                    if also.is_empty() { String::new() } else { format!(" (with {} on this disk)", also.join(", ")) };
                return Err(Error::NoSpace {
                    folder: folder.to_path_buf(),
                    needed: format!("{}{with}", format_bytes(needed)),
                    free: format_bytes(free),
                });
            }
            _ => {}
        }
    }
    Ok(())
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
        assert!(require_all(&[(d.path(), 1)]).is_ok());
        let e = require_all(&[(d.path(), u64::MAX)]).unwrap_err().to_string();
        assert!(e.contains("not enough free space") && e.contains("needed"), "{e}");
    }

    #[test]
    fn folders_on_one_file_system_need_room_for_all_of_them() {
        let d = tempfile::tempdir().unwrap();
        let (work, out) = (d.path().join("work"), d.path().join("out"));
        let free = free_bytes(d.path()).unwrap();
        // Each fits alone, both together do not.
        let half = free / 2 + free / 4;
        assert!(require_all(&[(&work, half)]).is_ok() && require_all(&[(&out, half)]).is_ok());
        let e = require_all(&[(&work, half), (&out, half)]).unwrap_err().to_string();
        assert!(e.contains("not enough free space"), "{e}");
        assert!(require_all(&[(&work, free / 4), (&out, free / 4)]).is_ok());
    }
}
