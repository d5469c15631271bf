//! Locks: an exclusive `flock` on a lock file, so two drapto processes never
//! work on the same input or write the same output. The holder writes who it
//! is into the file, so the one refused can say who holds it. The lock goes
//! with the process: a crash or `kill -9` releases it.

use crate::error::{Error, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct Lock {
    _file: Flock<File>,
    path: PathBuf,
}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it; its note ("pid 123 on host since …").
    Held(String),
    Io(Error),
}

impl Lock {
    /// Takes the lock at `path` without waiting.
    pub fn try_acquire(path: &Path, what: &str) -> std::result::Result<Lock, LockError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| LockError::Io(Error::io("create folder", dir)(e)))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| LockError::Io(Error::io("open lock file", path)(e)))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut f) => {
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
                Ok(Lock { _file: f, path: path.to_path_buf() })
            }
            Err((mut file, _)) => {
                let mut note = String::new();
                let _ = file.read_to_string(&mut note);
                Err(LockError::Held(if note.is_empty() { "another drapto process".into() } else { note }))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// True when someone holds the lock at `path` right now.
pub fn is_held(path: &Path) -> bool {
    match File::open(path) {
        Ok(f) => Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err(),
        Err(_) => false,
    }
}

/// Acquires or explains: `Ok(Err(holder))` when another process has it.
pub fn acquire(path: &Path, what: &str) -> Result<std::result::Result<Lock, String>> {
    match Lock::try_acquire(path, what) {
        Ok(l) => Ok(Ok(l)),
        Err(LockError::Held(who)) => Ok(Err(who)),
        Err(LockError::Io(e)) => Err(e),
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
}
