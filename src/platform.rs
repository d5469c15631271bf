//! What only some systems can tell, behind one interface: whether another
//! process has a file open for writing (Linux: `/proc/*/fd` and their
//! `fdinfo` flags; elsewhere: cannot tell, and the caller relies on the
//! file's size and time staying put).

use std::path::Path;

/// A process that has a file open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    pub pid: u32,
    /// Its command name, when readable.
    pub name: String,
}

/// The other processes that hold `path` open for writing; `None` where the
/// system cannot tell.
pub fn writers_of(path: &Path) -> Option<Vec<Writer>> {
    writers(path)
}

#[cfg(target_os = "linux")]
fn writers(path: &Path) -> Option<Vec<Writer>> {
    let target = std::fs::canonicalize(path).ok()?;
    let me = std::process::id();
    let mut found = Vec::new();
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).ok().as_deref() != Some(target.as_path()) {
                continue;
            }
            let info = proc_entry.path().join("fdinfo").join(fd.file_name());
            if std::fs::read_to_string(info).is_ok_and(|t| writable(&t)) {
                let name = std::fs::read_to_string(proc_entry.path().join("comm")).unwrap_or_default();
                found.push(Writer { pid, name: name.trim().to_string() });
                break;
            }
        }
    }
    Some(found)
}

#[cfg(not(target_os = "linux"))]
fn writers(_path: &Path) -> Option<Vec<Writer>> {
    None
}

/// Whether an `fdinfo` text's `flags:` (octal) open the file for writing
/// (`O_WRONLY` or `O_RDWR`).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn writable(fdinfo: &str) -> bool {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & 0o3 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_modes_are_read_from_the_flags() {
        assert!(writable("pos:\t0\nflags:\t0100001\nmnt_id:\t30\n"));
        assert!(writable("flags:\t02\n"));
        assert!(!writable("pos:\t0\nflags:\t0100000\n"));
        assert!(!writable("nothing"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_child_writing_a_file_is_seen_and_a_reader_is_not() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("rip.mkv");
        std::fs::write(&f, b"x").unwrap();
        assert_eq!(writers_of(&f), Some(vec![]));
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec sleep 30 3>>'{}'", f.display()))
            .spawn()
            .unwrap();
        let mut seen = vec![];
        for _ in 0..50 {
            seen = writers_of(&f).unwrap();
            if !seen.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].pid, child.id());
    }
}
