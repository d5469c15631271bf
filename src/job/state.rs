//! The job's state files (stages.json here; the chunked path's own in
//! [`crate::encode::chunked::resume`]): versioned, written atomically
//! (temporary file, fsync, rename), and read back only when they are whole
//! and belong to this job.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::io::Write;
use std::path::Path;

/// Layout version of the state files; others are not trusted.
pub const STATE_VERSION: u32 = 1;

/// The form of the work a job keeps (its scene cuts, its encoded segments
/// and whole-file steps), in every fingerprint of it beside the plan. Raise
/// it when a change to drapto makes earlier work wrong where the plan does
/// not show it (how a segment is cut, encoded or measured). Not drapto's
/// version: an upgrade between an interruption and its rerun threw away
/// every finished segment of every interrupted job.
pub const WORK_FORMAT: u32 = 1;

/// stages.json: the whole-file steps of a job that are finished ("video",
/// "audio-0", …), so a rerun of the standard path resumes after them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagesFile {
    pub version: u32,
    pub fingerprint: String,
    pub updated_at: String,
    pub done: std::collections::BTreeSet<String>,
}

impl StagesFile {
    pub fn new(fingerprint: &str) -> StagesFile {
        StagesFile {
            version: STATE_VERSION,
            fingerprint: fingerprint.to_string(),
            updated_at: now(),
            done: Default::default(),
        }
    }
}

/// Now, RFC 3339 UTC.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Writes `value` as JSON to `path` atomically: a crash leaves either the old
/// file or the new one, never a mix.
pub fn write_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    // A temporary name of this writer's own: two drapto processes (or two
    // threads) writing the same file must not rename each other's.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(crate::hash::file_name("", &name, &format!(".{}.{n}.tmp", std::process::id())));
    // (Paths that are not UTF-8 cannot be written: discovery refuses them.)
    let text = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Internal { path: path.to_path_buf(), problem: format!("cannot be written: {e}") })?;
    let written = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(Error::io("write", &tmp))?;
        f.write_all(&text).map_err(Error::io("write", &tmp))?;
        sync(&f).map_err(Error::io("sync", &tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(Error::io("rename", path))
    })();
    if written.is_err() {
        // A full disk left half a file: it is of no use to anyone.
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    sync_folder_of(path);
    Ok(())
}

/// Renames the finished file `from` to `to` so that a power cut leaves
/// either no file at `to` or the whole one: its data is on disk before the
/// rename, and the rename before the return.
pub fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    sync_file(from)?;
    std::fs::rename(from, to).map_err(Error::io("rename into place", to))?;
    sync_folder_of(to);
    Ok(())
}

/// As [`rename_durably`], but only while nothing is at `to`: `Ok(false)`,
/// nothing renamed, when something is (a file that appeared under the
/// output's name while the rip was encoded is never replaced). Atomic where
/// the file system can (Linux's `RENAME_NOREPLACE`, else a hard link then
/// the old name removed); where it can do neither, a look then the rename.
pub fn rename_durably_unless_taken(from: &Path, to: &Path) -> Result<bool> {
    sync_file(from)?;
    let taken = match no_replace_rename(from, to) {
        Ok(()) => false,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => true,
        Err(e) => return Err(Error::io("rename into place", to)(e)),
    };
    sync_folder_of(to);
    Ok(!taken)
}

/// `rename(from, to)` failing with `AlreadyExists` when `to` is there.
fn no_replace_rename(from: &Path, to: &Path) -> std::io::Result<()> {
    // (nix has renameat2 for glibc's Linux only.)
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::fcntl::{RenameFlags, renameat2};
        match renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EEXIST) => return Err(std::io::ErrorKind::AlreadyExists.into()),
            // Not on this file system (some network ones): the ways below.
            Err(_) => {}
        }
    }
    match std::fs::hard_link(from, to) {
        // In place: the old name is only a second link now.
        Ok(()) => {
            if let Err(e) = std::fs::remove_file(from) {
                tracing::warn!("{}: not removed after it was linked into place: {e}", from.display());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        // No hard links here (FAT, some shares): a look, then the rename.
        Err(_) if std::fs::symlink_metadata(to).is_ok() => Err(std::io::ErrorKind::AlreadyExists.into()),
        Err(_) => std::fs::rename(from, to),
    }
}

/// Puts the data of the finished file `path` on disk, before a state file
/// records it as finished (a power cut must not leave a record of a whole
/// file and half of it).
pub fn sync_file(path: &Path) -> Result<()> {
    let f = std::fs::File::open(path).map_err(Error::io("read", path))?;
    sync(&f).map_err(Error::io("sync", path))
}

/// Puts `f`'s data on disk as far as its file system lets it (see
/// [`sync_or_fallback`]).
fn sync(f: &std::fs::File) -> std::io::Result<()> {
    let fsync = || nix::unistd::fsync(std::os::fd::AsRawFd::as_raw_fd(f)).map_err(std::io::Error::from);
    sync_or_fallback(f.sync_all(), fsync)
}

/// The outcome of a sync (`first`): a file system that refuses it is not
/// an error. On macOS a sync is `F_FULLFSYNC`, which SMB and other network
/// shares refuse: there the plain `fsync` (`fallback`) is what they do, and
/// where that is refused too, the file stays as written.
fn sync_or_fallback(first: std::io::Result<()>, fallback: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
    use nix::errno::Errno;
    let refused = |e: &std::io::Error| {
        e.kind() == std::io::ErrorKind::Unsupported
            || e.raw_os_error()
                .is_some_and(|n| [Errno::EINVAL, Errno::ENOTSUP, Errno::EOPNOTSUPP].iter().any(|c| *c as i32 == n))
    };
    match first {
        Err(e) if refused(&e) => fallback().or_else(|e| if refused(&e) { Ok(()) } else { Err(e) }),
        other => other,
    }
}

/// Puts the folder entries of `path`'s folder on disk (best effort: some
/// file systems refuse to sync a folder).
fn sync_folder_of(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Why a state file was not used.
#[derive(Debug, PartialEq)]
pub enum LoadError {
    Missing,
    /// Unreadable, truncated, not JSON, or not this layout.
    Corrupt(String),
    /// Another version or another plan.
    Foreign(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Missing => f.write_str("none"),
            LoadError::Corrupt(why) => write!(f, "unreadable: {why}"),
            LoadError::Foreign(why) => f.write_str(why),
        }
    }
}

/// Reads a state file that must carry `version` and `fingerprint`.
pub fn load<T: DeserializeOwned>(path: &Path, fingerprint: &str) -> std::result::Result<T, LoadError> {
    let shown = path.display();
    let corrupt = |e: &dyn std::fmt::Display| LoadError::Corrupt(format!("{shown}: {e}"));
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadError::Missing),
        Err(e) => return Err(corrupt(&e)),
    };
    let raw: serde_json::Value = serde_json::from_slice(&text).map_err(|e| corrupt(&e))?;
    match raw.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(STATE_VERSION) => {}
        Some(v) => {
            let why = format!("{shown}: written by a drapto of state format {v}; this one reads {STATE_VERSION}");
            return Err(LoadError::Foreign(why));
        }
        None => return Err(corrupt(&"no state format version")),
    }
    if raw.get("fingerprint").and_then(|f| f.as_str()) != Some(fingerprint) {
        return Err(LoadError::Foreign(format!("{shown}: made for another plan (other settings, or another rip)")));
    }
    serde_json::from_value(raw).map_err(|e| corrupt(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_not_used_is_said_with_its_file_and_plain_numbers() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("stages.json");
        let said = |text: &str| {
            std::fs::write(&p, text).unwrap();
            load::<StagesFile>(&p, "abc").unwrap_err().to_string()
        };
        let newer = said(r#"{"version": 2, "fingerprint": "abc"}"#);
        assert!(newer.contains("stages.json: written by a drapto of state format 2; this one reads 1"), "{newer}");
        let cut = said(r#"{"version": 1, "fingerp"#);
        assert!(cut.starts_with("unreadable: ") && cut.contains("stages.json: "), "{cut}");
        let other = said(r#"{"version": 1, "fingerprint": "xyz"}"#);
        assert!(other.contains("stages.json: made for another plan"), "{other}");
        assert!(matches!(load::<StagesFile>(&d.path().join("none.json"), "abc"), Err(LoadError::Missing)));
    }

    #[test]
    fn a_rename_that_must_not_replace_leaves_what_is_there() {
        let d = tempfile::tempdir().unwrap();
        let (from, to) = (d.path().join("partial"), d.path().join("film.mkv"));
        std::fs::write(&from, b"encode").unwrap();
        std::fs::write(&to, b"the user's").unwrap();
        assert!(!rename_durably_unless_taken(&from, &to).unwrap());
        assert_eq!(std::fs::read(&to).unwrap(), b"the user's");
        assert_eq!(std::fs::read(&from).unwrap(), b"encode");
        std::fs::remove_file(&to).unwrap();
        assert!(rename_durably_unless_taken(&from, &to).unwrap());
        assert_eq!(std::fs::read(&to).unwrap(), b"encode");
        assert!(!from.exists());
        // A link (even a broken one) under the name is something there too.
        let link = d.path().join("link.mkv");
        std::os::unix::fs::symlink(d.path().join("nowhere"), &link).unwrap();
        std::fs::write(&from, b"encode").unwrap();
        assert!(!rename_durably_unless_taken(&from, &link).unwrap());
    }

    #[test]
    fn a_share_that_refuses_a_full_sync_gets_a_plain_one_or_none() {
        let refused = || Err(std::io::Error::from_raw_os_error(nix::errno::Errno::ENOTSUP as i32));
        let failed = || Err(std::io::Error::from_raw_os_error(nix::errno::Errno::EIO as i32));
        // macOS's F_FULLFSYNC on SMB: the plain fsync is what is done.
        let mut fell_back = false;
        let plain = || {
            fell_back = true;
            Ok(())
        };
        assert!(sync_or_fallback(refused(), plain).is_ok() && fell_back);
        // Neither is done there: the file stays as written.
        assert!(sync_or_fallback(refused(), refused).is_ok());
        // A disk that fails is an error, whichever sync it fails.
        assert!(sync_or_fallback(failed(), || Ok(())).is_err());
        assert!(sync_or_fallback(refused(), failed).is_err());
        assert!(sync_or_fallback(Ok(()), failed).is_ok());
    }

    fn encoding(fp: &str) -> StagesFile {
        let mut s = StagesFile::new(fp);
        s.done.insert("video".into());
        s
    }

    #[test]
    fn writers_of_one_file_at_once_never_trip_over_each_other() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("job.json");
        std::thread::scope(|s| {
            let writers: Vec<_> =
                (0..8).map(|_| s.spawn(|| (0..50).all(|_| write_atomic(&p, &encoding("abc")).is_ok()))).collect();
            assert!(writers.into_iter().all(|w| w.join().unwrap()), "every write lands");
        });
        let _: StagesFile = load(&p, "abc").unwrap();
    }

    #[test]
    fn round_trip_and_atomic_replace() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("encoding.json");
        write_atomic(&p, &encoding("abc")).unwrap();
        let back: StagesFile = load(&p, "abc").unwrap();
        assert_eq!(back, encoding("abc").clone_with_times(&back));
        let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("encoding.json")], "no temporary file left");
    }

    impl StagesFile {
        fn clone_with_times(mut self, other: &StagesFile) -> StagesFile {
            self.updated_at = other.updated_at.clone();
            self
        }
    }

    #[test]
    fn corrupt_truncated_and_foreign_files_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("encoding.json");
        assert_eq!(load::<StagesFile>(&p, "abc"), Err(LoadError::Missing));
        write_atomic(&p, &encoding("abc")).unwrap();
        assert!(matches!(load::<StagesFile>(&p, "xyz"), Err(LoadError::Foreign(_))));
        let text = std::fs::read(&p).unwrap();
        std::fs::write(&p, &text[..text.len() / 2]).unwrap();
        assert!(matches!(load::<StagesFile>(&p, "abc"), Err(LoadError::Corrupt(_))));
        std::fs::write(&p, b"{\"version\": 99}").unwrap();
        assert!(matches!(load::<StagesFile>(&p, "abc"), Err(LoadError::Foreign(_))));
        std::fs::write(&p, b"\x00\xff garbage").unwrap();
        assert!(matches!(load::<StagesFile>(&p, "abc"), Err(LoadError::Corrupt(_))));
    }
}
