//! Where one file's output goes, and the rules for touching it: the final
//! name, the hidden name it is muxed under, the name a failed output is
//! kept under, the lock of its writer (here); whether the name can be made
//! ([`names`]); an existing output looked at ([`existing`]); the validated
//! output renamed into place ([`commit`]).

mod commit;
mod existing;
mod names;

pub use names::{name_fits, name_refused};

use crate::error::{Error, Result};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The names of one file's output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSlots {
    /// The final name: the rip's, as an MKV (see [`crate::discover::matroska_name`]), in the output folder.
    pub output: PathBuf,
    /// The hidden name the output is muxed under before validation.
    pub partial: PathBuf,
    /// Where an output that failed validation is kept for inspection.
    pub failed: PathBuf,
    /// The lock of whoever writes it, beside it: every drapto writing to
    /// this folder sees it, whatever its temporary folder or machine.
    pub lock: PathBuf,
    /// The lock taken instead where the output's file system refuses locks
    /// (in `temp_dir/locks`: seen by the drapto runs sharing that folder).
    pub local_lock: PathBuf,
}

/// The file in a job's work folder naming its output (the path's bytes,
/// written by [`name_output`]).
pub const OUTPUT_FILE: &str = "output";

/// Names `output` in the job folder `job_dir`.
pub fn name_output(job_dir: &Path, output: &Path) -> Result<()> {
    let file = job_dir.join(OUTPUT_FILE);
    let output = std::path::absolute(output).unwrap_or_else(|_| output.to_path_buf());
    std::fs::write(&file, output.as_os_str().as_bytes()).map_err(Error::io("write", &file))
}

/// Removes the lock files of `slots` no drapto holds: a run killed between
/// the rename into place and its clean-up leaves its lock beside the
/// output, and the runs after it skip the rip.
pub fn remove_stale_locks(slots: &OutputSlots) {
    use crate::job::lock::is_held;
    for lock in [&slots.lock, &slots.local_lock] {
        if lock.exists() && !is_held(lock) {
            let _ = std::fs::remove_file(lock);
        }
    }
}

/// Removes the half-muxed output of the job whose work folder is `job_dir`,
/// when one is there and no drapto writes that output now: a run killed
/// between its mux and the rename leaves it, hidden, as large as the film;
/// and the lock file it leaves beside it. Returns the partial's size.
pub fn remove_abandoned_partial(job_dir: &Path, temp_dir: &Path) -> u64 {
    use crate::job::lock::is_held;
    let Ok(bytes) = std::fs::read(job_dir.join(OUTPUT_FILE)) else { return 0 };
    let output = PathBuf::from(std::ffi::OsStr::from_bytes(&bytes));
    let slots = OutputSlots::new(&output, temp_dir);
    if is_held(&slots.lock) || is_held(&slots.local_lock) {
        return 0;
    }
    let _ = std::fs::remove_file(&slots.lock);
    let size = std::fs::metadata(&slots.partial).map_or(0, |m| m.len());
    if size == 0 {
        return 0;
    }
    std::fs::remove_file(&slots.partial).map_or(0, |()| size)
}

impl OutputSlots {
    /// The slots of the output `output`, its local lock under `temp_dir`.
    pub fn new(output: &Path, temp_dir: &Path) -> OutputSlots {
        let output = output.to_path_buf();
        let dir = output.parent().unwrap_or(Path::new("."));
        let key = std::fs::canonicalize(dir)
            .unwrap_or_else(|_| dir.to_path_buf())
            .join(output.file_name().unwrap_or_default());
        let local_lock =
            temp_dir.join("locks").join(format!("{:016x}.lock", crate::hash::fnv1a(key.to_string_lossy().as_bytes())));
        OutputSlots {
            partial: sibling(&output, ".", ".drapto-partial"),
            failed: sibling(&output, "", ".failed"),
            lock: sibling(&output, ".", ".drapto-lock"),
            output,
            local_lock,
        }
    }
}

fn sibling(path: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(crate::hash::file_name(prefix, &name, suffix))
}

/// True when `a` and `b` are the same file on disk (paths or hard links).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// One file on disk as it is now: its size and time. Two looks at a path
/// that give the same stamp saw the same, unchanged file. (Not its inode:
/// on some network shares a file's inode number changes while it stays the
/// same file.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    size: u64,
    mtime_ns: i128,
}

impl FileStamp {
    /// The stamp of the file at `path` (links not followed), if one is there.
    pub fn of(path: &Path) -> Option<FileStamp> {
        let m = std::fs::symlink_metadata(path).ok()?;
        let mtime_ns = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
        Some(FileStamp { size: m.len(), mtime_ns })
    }
}

/// What was under the output's name when the rip was taken on (drapto's
/// earlier output, found not valid or made from another rip, or nothing):
/// what the accepted output may replace, and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtOutput(Option<FileStamp>);

impl AtOutput {
    /// What is under `output`'s name now.
    pub fn now(output: &Path) -> AtOutput {
        AtOutput(FileStamp::of(output))
    }
}

/// What a run does with a rip before it analyses it (as `--dry-run`
/// tells it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Encode it (or resume it).
    Encode,
    /// Validate the output already there: kept if valid, else encoded.
    Check,
    /// Leave it: its output is finished, or it is drapto's own.
    Skip,
    /// Fail it (why is said).
    Fail,
    /// Not now: another drapto has it, or it is still being written.
    NotNow,
}

impl Action {
    /// The word `--dry-run` says.
    pub fn label(self) -> &'static str {
        match self {
            Action::Encode => "encode",
            Action::Check => "check",
            Action::Skip => "skip",
            Action::Fail => "fail",
            Action::NotNow => "not_now",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_never_end_in_mkv() {
        let s = OutputSlots::new(Path::new("/o/My Film.mkv"), Path::new("/t"));
        assert_eq!(s.output, Path::new("/o/My Film.mkv"));
        assert_eq!(s.partial, Path::new("/o/.My Film.mkv.drapto-partial"));
        assert_eq!(s.failed, Path::new("/o/My Film.mkv.failed"));
        assert_eq!(s.lock, Path::new("/o/.My Film.mkv.drapto-lock"));
        assert!(s.local_lock.starts_with("/t/locks") && s.local_lock.extension().is_some_and(|e| e == "lock"));
    }
}
