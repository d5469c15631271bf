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
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks everything to stop because of `signal` (the first request wins).
    pub fn cancel(&self, signal: i32) {
        let _ = self.signal.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The signal that asked to stop, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
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
        self.groups.lock().expect("groups lock").push(pgid);
    }

    /// Forgets a finished child process group.
    pub fn unregister_group(&self, pgid: i32) {
        self.groups.lock().expect("groups lock").retain(|g| *g != pgid);
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
