//! Everything that differs between Linux and macOS, in one place (the CI
//! check `scripts/check-portable.sh` refuses Linux-only calls elsewhere):
//! - whether another process has a file open for writing (Linux:
//!   `/proc/*/fd` and their `fdinfo` flags; macOS: `lsof`, which ships
//!   with it; elsewhere drapto cannot tell, and relies on the file's size
//!   and time staying put);
//! - idle I/O priority for `--responsive` (Linux `ioprio_set`, macOS
//!   `setiopolicy_np`), after the portable `setpriority`;
//! - how to install a missing program (`apt-get` or `brew`);
//! - the UTF-8 locale children run in (`C.UTF-8`, or macOS's `en_US.UTF-8`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A process that has a file open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    pub pid: u32,
    /// Its command name, when readable.
    pub name: String,
}

/// For each of `paths` that another process holds open for writing, those
/// processes; `None` where the system cannot tell. Every process's open
/// files are looked at once for all the paths: a look costs about 20 ms on
/// a server with 10,000 files open, and a library has thousands of rips.
pub fn writers_of_all(paths: &[&Path]) -> Option<HashMap<PathBuf, Vec<Writer>>> {
    if paths.is_empty() {
        return Some(HashMap::new());
    }
    writers(paths)
}

#[cfg(target_os = "linux")]
fn writers(paths: &[&Path]) -> Option<HashMap<PathBuf, Vec<Writer>>> {
    let targets: HashMap<PathBuf, &Path> =
        paths.iter().filter_map(|p| Some((std::fs::canonicalize(p).ok()?, *p))).collect();
    let me = std::process::id();
    let mut found: HashMap<PathBuf, Vec<Writer>> = HashMap::new();
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            let Some(path) = std::fs::read_link(fd.path()).ok().and_then(|l| targets.get(&l).copied()) else {
                continue;
            };
            let info = proc_entry.path().join("fdinfo").join(fd.file_name());
            let listed = found.get(path).is_some_and(|w| w.iter().any(|w| w.pid == pid));
            if !listed && std::fs::read_to_string(info).is_ok_and(|t| writable(&t)) {
                let name = std::fs::read_to_string(proc_entry.path().join("comm")).unwrap_or_default();
                found.entry(path.to_path_buf()).or_default().push(Writer { pid, name: name.trim().to_string() });
            }
        }
    }
    Some(found)
}

#[cfg(target_os = "macos")]
fn writers(paths: &[&Path]) -> Option<HashMap<PathBuf, Vec<Writer>>> {
    writers_by_lsof(paths)
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn writers(_paths: &[&Path]) -> Option<HashMap<PathBuf, Vec<Writer>>> {
    None
}

/// Paths per `lsof` call (each is an argument).
const LSOF_BATCH: usize = 256;

/// [`writers_of_all`] by `lsof` (macOS has no `/proc`; built on every
/// system, so that it is compiled and tested here too). `None` when `lsof`
/// cannot run. It exits 1 both when none of the files is open and when it
/// fails otherwise: what it printed is what it found.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn writers_by_lsof(paths: &[&Path]) -> Option<HashMap<PathBuf, Vec<Writer>>> {
    use std::process::{Command, Stdio};
    let targets: HashMap<PathBuf, &Path> =
        paths.iter().filter_map(|p| Some((std::fs::canonicalize(p).ok()?, *p))).collect();
    let canonical: Vec<&PathBuf> = targets.keys().collect();
    let me = std::process::id();
    let mut found: HashMap<PathBuf, Vec<Writer>> = HashMap::new();
    for batch in canonical.chunks(LSOF_BATCH) {
        // -w: no warnings; -n -P: no name lookups; -F: fields, one a line.
        let out = Command::new("lsof")
            .args(["-w", "-n", "-P", "-F", "pcan", "--"])
            .args(batch)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        for (writer, name) in lsof_writers(&String::from_utf8_lossy(&out.stdout)) {
            let Some(path) = targets.get(&name).copied() else { continue };
            let listed = found.get(path).is_some_and(|w| w.iter().any(|w| w.pid == writer.pid));
            if writer.pid != me && !listed {
                found.entry(path.to_path_buf()).or_default().push(writer);
            }
        }
    }
    Some(found)
}

/// From `lsof -F pcan` output (a `p` line per process, then its `c`
/// command; per open file its access mode `a` and its name `n`, after an
/// `f` line with its descriptor on some systems), each
/// file open for writing (mode `w` or `u`) with its process.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn lsof_writers(fields: &str) -> Vec<(Writer, PathBuf)> {
    let (mut pid, mut name, mut writes) = (None, String::new(), false);
    let mut found = Vec::new();
    for line in fields.lines() {
        let (tag, value) = line.split_at(line.len().min(1));
        match tag {
            "p" => (pid, name) = (value.parse::<u32>().ok(), String::new()),
            "c" => name = value.to_string(),
            "a" => writes = value.starts_with(['w', 'u']),
            "n" => {
                if let (Some(pid), true) = (pid, writes) {
                    found.push((Writer { pid, name: name.clone() }, PathBuf::from(value)));
                }
                // (Each file's mode comes before its name.)
                writes = false;
            }
            _ => {}
        }
    }
    found
}

/// Lowers this process to nice 10 and idle I/O priority (`--responsive`),
/// so that a server's own work comes first. Every child started afterwards,
/// from any thread started afterwards, inherits both: call it before
/// starting either.
pub fn lower_priority() -> std::io::Result<()> {
    // SAFETY: plain syscalls on the calling process, no memory passed.
    unsafe {
        if nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, 10) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    idle_io()
}

#[cfg(target_os = "linux")]
fn idle_io() -> std::io::Result<()> {
    const IOPRIO_WHO_PROCESS: nix::libc::c_long = 1;
    const IOPRIO_CLASS_IDLE: nix::libc::c_long = 3;
    // SAFETY: one syscall on this process, no memory passed.
    let r = unsafe { nix::libc::syscall(nix::libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << 13) };
    if r != 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

#[cfg(target_os = "macos")]
fn idle_io() -> std::io::Result<()> {
    // <sys/resource.h>: IOPOL_TYPE_DISK 0, IOPOL_SCOPE_PROCESS 0, IOPOL_THROTTLE 3.
    unsafe extern "C" {
        fn setiopolicy_np(
            iotype: nix::libc::c_int,
            scope: nix::libc::c_int,
            policy: nix::libc::c_int,
        ) -> nix::libc::c_int;
    }
    // SAFETY: one libSystem call on this process, no memory passed.
    if unsafe { setiopolicy_np(0, 0, 3) } != 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn idle_io() -> std::io::Result<()> {
    Ok(())
}

/// Bytes free for an unprivileged writer on the file system holding the
/// existing `path`. macOS's `statvfs` counts blocks in 32 bits (it wraps
/// every 2 or 16 TiB free, a NAS's size); its `statfs` counts in 64.
#[cfg(target_os = "macos")]
pub fn free_bytes(path: &Path) -> Option<u64> {
    let s = nix::sys::statfs::statfs(path).ok()?;
    // (A file system that tells no size, as some FUSE ones, is not full.)
    if s.blocks() == 0 {
        return None;
    }
    Some(s.blocks_available() as u64 * s.block_size() as u64)
}

#[cfg(not(target_os = "macos"))]
pub fn free_bytes(path: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    // A file system that tells no size (some FUSE ones: `df` shows "-")
    // is not full: it was refused as 0 B free for every rip.
    if s.blocks() == 0 {
        return None;
    }
    // Root may write into the blocks the file system keeps back (ext4's
    // 5%): its writes fail only when those are gone too.
    let blocks = if nix::unistd::geteuid().is_root() { s.blocks_free() } else { s.blocks_available() };
    Some(blocks as u64 * s.fragment_size() as u64)
}

/// The name of the file system holding the existing `path` where it
/// refuses names with the characters Windows forbids (`\ : * ? " < > |`):
/// FAT and exFAT (USB drives, cameras' cards), whatever the system.
#[cfg(target_os = "linux")]
pub fn windows_names_only(path: &Path) -> Option<&'static str> {
    const MSDOS: i64 = 0x4d44;
    const EXFAT: i64 = 0x2011_bab0;
    let s = nix::sys::statfs::statfs(path).ok()?;
    #[allow(clippy::unnecessary_cast)]
    match s.filesystem_type().0 as i64 {
        MSDOS => Some("FAT"),
        EXFAT => Some("exFAT"),
        _ => None,
    }
}

#[cfg(target_os = "macos")]
pub fn windows_names_only(path: &Path) -> Option<&'static str> {
    let s = nix::sys::statfs::statfs(path).ok()?;
    match s.filesystem_type_name() {
        "msdos" => Some("FAT"),
        "exfat" => Some("exFAT"),
        _ => None,
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn windows_names_only(_: &Path) -> Option<&'static str> {
    None
}

/// Whether the folder `dir` is where a file system is to be mounted: an
/// entry of `/etc/fstab` (a NAS share, a disk), or the `Where=` of a
/// systemd mount unit. Such a folder, empty, is a share that is away.
pub fn is_mount_point_in_waiting(dir: &Path) -> bool {
    let Ok(dir) = std::fs::canonicalize(dir) else { return false };
    let in_fstab = fstab_mount_points(&std::fs::read_to_string("/etc/fstab").unwrap_or_default()).contains(&dir);
    let units = std::fs::read_dir("/etc/systemd/system").into_iter().flatten().flatten();
    let in_units = units.filter(|e| e.path().extension().is_some_and(|x| x == "mount")).any(|e| {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        text.lines().filter_map(|l| l.trim().strip_prefix("Where=")).any(|w| Path::new(w.trim()) == dir)
    });
    in_fstab || in_units
}

/// The mount points an fstab names (a space in a path written `\040`).
fn fstab_mount_points(fstab: &str) -> Vec<std::path::PathBuf> {
    (fstab.lines())
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|m| m.replace("\\040", " ").replace("\\011", "\t").into())
        .collect()
}

/// Keeps the machine from sleeping while it is held, where the system
/// sleeps when idle on its own (a Mac left to encode overnight): macOS's
/// `caffeinate`, for as long as this drapto runs at most. Elsewhere, and
/// where caffeinate cannot start, it does nothing.
pub struct KeepAwake(Option<std::process::Child>);

impl KeepAwake {
    pub fn new() -> KeepAwake {
        KeepAwake(Self::start())
    }

    #[cfg(target_os = "macos")]
    fn start() -> Option<std::process::Child> {
        caffeinate().spawn().ok()
    }

    #[cfg(not(target_os = "macos"))]
    fn start() -> Option<std::process::Child> {
        None
    }
}

/// `caffeinate` holding off idle sleep until this process ends (built on
/// every system, so that it is compiled and tested here too).
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn caffeinate() -> std::process::Command {
    use std::process::{Command, Stdio};
    let pid = std::process::id().to_string();
    let mut c = Command::new("caffeinate");
    c.args(["-i", "-w", pid.as_str()]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

impl Default for KeepAwake {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for KeepAwake {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A locale with UTF-8 text that this system has, for the programs drapto
/// runs when the one it was started in is not UTF-8: in a plain C locale
/// (a container's, `env -i`, cron's) MKVToolNix printed no help at all
/// (taken for a version too old) and could not open a file named
/// `Amélie.mkv`. glibc has `C.UTF-8` built in; macOS has no such locale,
/// but `en_US.UTF-8`. `None` where the locale is UTF-8 already (it is left
/// as it is: it also goes over ssh to other hosts, which may not have ours).
pub fn utf8_locale() -> Option<&'static str> {
    let set = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let current = set("LC_ALL").or_else(|| set("LC_CTYPE")).or_else(|| set("LANG")).unwrap_or_default();
    let lower = current.to_ascii_lowercase();
    if lower.contains("utf-8") || lower.contains("utf8") {
        return None;
    }
    Some(if cfg!(target_os = "macos") { "en_US.UTF-8" } else { "C.UTF-8" })
}

/// A package drapto may ask for.
#[derive(Debug, Clone, Copy)]
pub enum Package {
    Ffmpeg,
    Mediainfo,
    Mkvtoolnix,
    Parallel,
}

/// The command that installs `p` on this system.
pub fn install(p: Package) -> &'static str {
    if cfg!(target_os = "macos") {
        match p {
            Package::Ffmpeg => "brew install ffmpeg",
            Package::Mediainfo => "brew install media-info",
            Package::Mkvtoolnix => "brew install mkvtoolnix",
            Package::Parallel => "brew install parallel rsync",
        }
    } else {
        match p {
            Package::Ffmpeg => "sudo apt-get install ffmpeg",
            Package::Mediainfo => "sudo apt-get install mediainfo",
            Package::Mkvtoolnix => "sudo apt-get install mkvtoolnix",
            Package::Parallel => "sudo apt-get install parallel openssh-client rsync",
        }
    }
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
    fn caffeinate_holds_off_idle_sleep_until_this_drapto_ends() {
        let c = caffeinate();
        let args: Vec<_> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(c.get_program(), "caffeinate");
        assert_eq!(args, ["-i", "-w", &std::process::id().to_string()]);
    }

    #[test]
    fn write_modes_are_read_from_the_flags() {
        assert!(writable("pos:\t0\nflags:\t0100001\nmnt_id:\t30\n"));
        assert!(writable("flags:\t02\n"));
        assert!(!writable("pos:\t0\nflags:\t0100000\n"));
        assert!(!writable("nothing"));
    }

    #[test]
    fn lsof_fields_give_the_files_open_for_writing() {
        let out = "p120\ncrsync\nfcwd\na \nn/\nf3\nar\nn/lib/a.mkv\nf4\naw\nn/lib/b.mkv\n\
                   p121\ncHandBrake\nau\nn/lib/a.mkv\na \nn/lib/c.mkv\n";
        let w = lsof_writers(out);
        let w: Vec<_> = w.iter().map(|(w, p)| (w.pid, w.name.as_str(), p.to_str().unwrap())).collect();
        assert_eq!(w, [(120, "rsync", "/lib/b.mkv"), (121, "HandBrake", "/lib/a.mkv")]);
        assert!(lsof_writers("").is_empty());
    }

    #[test]
    fn a_child_writing_a_file_is_seen_by_lsof_and_a_reader_is_not() {
        a_writer_is_seen_and_a_reader_is_not(writers_by_lsof);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_child_writing_a_file_is_seen_and_a_reader_is_not() {
        a_writer_is_seen_and_a_reader_is_not(writers_of_all);
    }

    type Look = fn(&[&Path]) -> Option<HashMap<PathBuf, Vec<Writer>>>;

    fn a_writer_is_seen_and_a_reader_is_not(look: Look) {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("rip.mkv");
        let other = d.path().join("other.mkv");
        std::fs::write(&f, b"x").unwrap();
        std::fs::write(&other, b"y").unwrap();
        let writers = || look(&[&f, &other]).expect("the system tells who writes a file");
        assert!(writers().is_empty());
        let mut reader = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec sleep 30 3<'{}'", other.display()))
            .spawn()
            .unwrap();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec sleep 30 3>>'{}'", f.display()))
            .spawn()
            .unwrap();
        let mut seen = HashMap::new();
        for _ in 0..50 {
            seen = writers();
            if !seen.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        for c in [&mut child, &mut reader] {
            let _ = c.kill();
            let _ = c.wait();
        }
        // (Its name may be read before or after the shell's exec.)
        let pids: Vec<u32> = seen.get(f.as_path()).map(|w| w.iter().map(|w| w.pid).collect()).unwrap_or_default();
        assert_eq!(pids, vec![child.id()], "{seen:?}");
        assert_eq!(seen.get(other.as_path()), None, "a reader is no writer; one look for both");
    }

    #[test]
    fn an_fstabs_mount_points_are_read() {
        let fstab = "# <file system> <mount point> <type>\nUUID=1 / ext4 defaults 0 1\n\
                     //nas/films /mnt/My\\040Films cifs credentials=/x 0 0\n\n  # tmpfs /nope tmpfs\n";
        let points: Vec<std::path::PathBuf> = vec!["/".into(), "/mnt/My Films".into()];
        assert_eq!(fstab_mount_points(fstab), points);
    }
}
