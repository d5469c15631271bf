//! Locks: an exclusive `flock` on a lock file, so two drapto processes never
//! work on the same input or write the same output. The holder writes who it
//! is into the file, so the one refused can say who holds it. The lock goes
//! with the process: a crash or `kill -9` releases it. A lock file may be
//! removed by its holder (see [`Lock::removed_on_release`]) or by a sweep
//! while nobody holds it: a lock is only taken on the file the path names
//! once it is held, so nobody ever holds a removed one.

use crate::error::{Error, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct Lock {
    file: Flock<File>,
    path: PathBuf,
    /// Remove the lock file on release (see [`Lock::removed_on_release`]).
    remove: bool,
}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it; its note ("pid 123 on host since …").
    Held(String),
    /// The file system refuses locks (some network shares).
    Unsupported(nix::errno::Errno),
    Io(Error),
}

/// How often a lock file removed under a taker is opened again.
const TRIES: usize = 5;

impl Lock {
    /// Takes the lock at `path` without waiting.
    pub fn try_acquire(path: &Path, what: &str) -> std::result::Result<Lock, LockError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| LockError::Io(Error::io("create folder", dir)(e)))?;
        }
        for _ in 0..TRIES {
            let opened = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path);
            let file = match opened {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && unheld_removed(path)? => continue,
                Err(e) => return Err(LockError::Io(Error::io("open lock file", path)(e))),
            };
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                // Its holder removed the file between our open and our lock:
                // the lock is on a file nobody else can find.
                Ok(f) if !names(path, &f) => continue,
                Ok(f) => return Ok(Lock::note(f, path, what)),
                Err((file, nix::errno::Errno::EWOULDBLOCK)) => return Err(held(file)),
                Err((_, errno)) => return Err(LockError::Unsupported(errno)),
            }
        }
        Err(LockError::Held("another drapto process, removing its lock file".into()))
    }

    /// The held lock `f` with who holds it written into it.
    fn note(mut f: Flock<File>, path: &Path, what: &str) -> Lock {
        let note = format!(
            "pid {} on {} since {} ({what})",
            std::process::id(),
            nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
            chrono::Local::now().format("%Y-%m-%d %H:%M:%S")
        );
        let _ = f.set_len(0);
        let _ = f.rewind();
        let _ = f.write_all(note.as_bytes());
        let _ = f.sync_all();
        Lock { file: f, path: path.to_path_buf(), remove: false }
    }

    /// The lock, its file removed when it is released (a lock beside a
    /// user's file leaves nothing behind).
    pub fn removed_on_release(mut self) -> Lock {
        self.remove = true;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.remove && names(&self.path, &self.file) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether the lock file at `path`, which this user may not write (left
/// by a run as root), was held by nobody and is removed now (the folder
/// allows it): the lock is then taken on a file of this user's. Held, its
/// holder is said.
fn unheld_removed(path: &Path) -> std::result::Result<bool, LockError> {
    let Ok(file) = File::open(path) else { return Ok(false) };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        // Removed while held here: nobody takes the old file meanwhile.
        Ok(f) => Ok(names(path, &f) && std::fs::remove_file(path).is_ok()),
        Err((file, nix::errno::Errno::EWOULDBLOCK)) => Err(held(file)),
        Err(_) => Ok(false),
    }
}

/// The lock held by another: its holder's note, read from the lock file.
fn held(mut file: File) -> LockError {
    let mut note = String::new();
    let _ = file.read_to_string(&mut note);
    LockError::Held(if note.is_empty() { "another drapto process".into() } else { note })
}

/// True when `path` names the open file `f`.
fn names(path: &Path, f: &File) -> bool {
    match (std::fs::metadata(path), f.metadata()) {
        (Ok(p), Ok(f)) => p.dev() == f.dev() && p.ino() == f.ino(),
        _ => false,
    }
}

/// True when someone holds the lock at `path` right now.
pub fn is_held(path: &Path) -> bool {
    match File::open(path) {
        Ok(f) => matches!(Flock::lock(f, FlockArg::LockExclusiveNonblock), Err((_, nix::errno::Errno::EWOULDBLOCK))),
        Err(_) => false,
    }
}

/// Acquires or explains: `Ok(Err(holder))` when another process has it.
pub fn acquire(path: &Path, what: &str) -> Result<std::result::Result<Lock, String>> {
    match Lock::try_acquire(path, what) {
        Ok(l) => Ok(Ok(l)),
        Err(LockError::Held(who)) => Ok(Err(who)),
        Err(LockError::Io(e)) => Err(e),
        Err(LockError::Unsupported(errno)) => {
            Err(Error::io("lock", path)(std::io::Error::from_raw_os_error(errno as i32)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_taker_is_told_who_holds_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("job.lock");
        let first = Lock::try_acquire(&p, "encoding a.mkv").unwrap();
        assert!(is_held(&p));
        match Lock::try_acquire(&p, "x") {
            Err(LockError::Held(who)) => {
                assert!(who.contains(&format!("pid {}", std::process::id())) && who.contains("encoding a.mkv"), "{who}")
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        assert!(!is_held(&p));
        assert!(Lock::try_acquire(&p, "y").is_ok());
    }

    #[test]
    fn a_lock_removed_on_release_leaves_no_file_and_no_double_holder() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".out.mkv.drapto-lock");
        let first = Lock::try_acquire(&p, "a").unwrap().removed_on_release();
        // Opened by a second taker while the first still holds it.
        let late = File::open(&p).unwrap();
        drop(first);
        assert!(!p.exists(), "the holder removes its lock file");
        // The late opener holds the removed file: a lock nobody can see.
        let stale = Flock::lock(late, FlockArg::LockExclusiveNonblock).unwrap();
        let fresh = Lock::try_acquire(&p, "b").unwrap();
        assert!(names(&p, &fresh.file) && !names(&p, &stale));
        assert!(is_held(&p));
    }

    #[test]
    fn a_lock_file_removed_by_a_sweep_is_taken_anew() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.lock");
        let held = Lock::try_acquire(&p, "a").unwrap();
        std::fs::remove_file(&p).unwrap();
        let second = Lock::try_acquire(&p, "b").unwrap();
        assert!(p.exists() && names(&p, &second.file));
        drop(held);
    }
}
