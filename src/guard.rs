//! No child outlives a drapto that is killed outright (SIGKILL, a crash,
//! the OOM killer), on every system: a small guard process (`drapto guard`,
//! hidden) watches drapto, and once drapto is gone it kills every process
//! group drapto had running, whose list drapto keeps in a file as it starts
//! and ends them. A drapto that exits normally takes its guard with it.
//! Also here: the segment worker's watch on its own parent.

use crate::cancel::Cancel;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often the guard looks.
const EVERY: Duration = Duration::from_millis(100);

/// A running guard; dropped, it stops.
pub struct Guard {
    child: std::process::Child,
    file: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Unwinding from a panic, drapto is on its way out with its
        // encoders still running: the guard stays to stop them.
        if std::thread::panicking() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Starts the guard of this drapto, its list of groups under `temp_dir`;
/// `None` (said in the log) when it cannot start.
pub fn start(cancel: &Cancel, temp_dir: &Path) -> Option<Guard> {
    use std::os::unix::process::CommandExt;
    let dir = temp_dir.join("guard");
    let file = dir.join(format!("{}.groups", std::process::id()));
    let started = std::fs::create_dir_all(&dir).and_then(|()| {
        cancel.keep_groups_in(file.clone());
        std::process::Command::new(std::env::current_exe()?)
            .args(["guard", "--parent", &std::process::id().to_string(), "--groups"])
            .arg(&file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // Its own group: a Ctrl-C for drapto's group is not for it.
            .process_group(0)
            .spawn()
    });
    match started {
        Ok(child) => Some(Guard { child, file }),
        Err(e) => {
            tracing::warn!("the guard that stops encoders if drapto is killed did not start: {e}");
            None
        }
    }
}

/// `drapto guard`: waits for `parent` to go, then kills every group listed
/// in `groups` (SIGKILL: their parent can no longer stop them kindly).
pub fn run(parent: u32, groups: &Path) -> i32 {
    while std::os::unix::process::parent_id() == parent {
        std::thread::sleep(EVERY);
    }
    for pgid in std::fs::read_to_string(groups).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
    }
    let _ = std::fs::remove_file(groups);
    0
}

/// Stops this process's work (SIGTERM through `cancel`) once the process
/// that started it is gone: a segment worker whose ssh connection or GNU
/// Parallel died leaves no encoder running for nobody.
pub fn stop_with_parent(cancel: &Cancel) {
    let parent = std::os::unix::process::parent_id();
    let cancel = cancel.clone();
    std::thread::spawn(move || {
        while std::os::unix::process::parent_id() == parent {
            std::thread::sleep(EVERY);
        }
        cancel.cancel(nix::libc::SIGTERM);
    });
}
