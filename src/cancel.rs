//! The stop flag shared by everything that runs long: set once by the signal
//! handler (or a test), polled by child-process runners and the pipeline.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

/// Cheap to clone; all clones see the same flag and the same list of running
/// child process groups.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    signal: Arc<AtomicI32>,
    groups: Arc<Mutex<Vec<i32>>>,
    /// The flag of the run this one stops part of (see [`Cancel::child`]).
    parent: Option<Arc<AtomicI32>>,
    /// Where the running groups are written for the guard that kills them
    /// if drapto is killed outright (see [`crate::guard`]).
    groups_file: Arc<Mutex<Option<std::path::PathBuf>>>,
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks everything to stop because of `signal` (the first request wins).
    pub fn cancel(&self, signal: i32) {
        let _ = self.signal.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// A flag that stops one part of the run (one encode) on its own, and
    /// with the whole run when that is stopped; its children are the run's.
    pub fn child(&self) -> Cancel {
        Cancel {
            signal: Arc::default(),
            groups: self.groups.clone(),
            parent: Some(self.signal.clone()),
            groups_file: self.groups_file.clone(),
        }
    }

    /// The signal that asked to stop, if any (the run's first).
    pub fn signal(&self) -> Option<i32> {
        let of = |s: &AtomicI32| match s.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        };
        self.parent.as_deref().and_then(of).or_else(|| of(&self.signal))
    }

    pub fn is_cancelled(&self) -> bool {
        self.signal().is_some()
    }

    /// `Err(Cancelled)` once a stop was asked for.
    pub fn check(&self) -> crate::Result<()> {
        match self.signal() {
            Some(signal) => Err(crate::Error::Cancelled { signal }),
            None => Ok(()),
        }
    }

    /// Records a running child process group (see `tools::process`).
    pub fn register_group(&self, pgid: i32) {
        let mut g = self.groups.lock().expect("groups lock");
        g.push(pgid);
        self.write_groups(&g);
    }

    /// Forgets a finished child process group.
    pub fn unregister_group(&self, pgid: i32) {
        let mut g = self.groups.lock().expect("groups lock");
        g.retain(|x| *x != pgid);
        self.write_groups(&g);
    }

    /// From now on, the running groups are kept in `path` too.
    pub fn keep_groups_in(&self, path: std::path::PathBuf) {
        *self.groups_file.lock().expect("groups file lock") = Some(path);
        self.write_groups(&self.groups.lock().expect("groups lock"));
    }

    fn write_groups(&self, groups: &[i32]) {
        if let Some(path) = self.groups_file.lock().expect("groups file lock").as_ref() {
            let text: String = groups.iter().map(|g| format!("{g}\n")).collect();
            let tmp = path.with_extension("tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, path);
            }
        }
    }

    /// The running child process groups (their leaders' pids).
    pub fn groups(&self) -> Vec<i32> {
        self.groups.lock().expect("groups lock").clone()
    }

    /// SIGKILLs every running child group (the second Ctrl-C).
    pub fn kill_all_now(&self) {
        for g in self.groups.lock().expect("groups lock").iter() {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(*g), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_stops_alone_and_with_its_parent() {
        let run = Cancel::new();
        let one = run.child();
        one.cancel(15);
        assert!(one.is_cancelled() && !run.is_cancelled(), "stopping one part leaves the run going");
        let two = run.child();
        run.cancel(2);
        assert_eq!(two.signal(), Some(2), "the run's stop reaches every part");
        assert_eq!(one.signal(), Some(2), "the run's signal is the one reported");
        two.register_group(42);
        assert_eq!(run.groups(), vec![42], "a part's children are the run's");
    }
}
