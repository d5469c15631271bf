//! Whether an output's name can be made in its folder: no longer than a
//! file name may be, and nothing a FAT or exFAT drive refuses; a name
//! refused at the rename is the rip's failure, not the setup's.

use crate::error::{Error, Result};
use crate::hash::NAME_MAX;
use std::path::Path;

/// An error when the output's name is longer than a file name may be (a
/// rip named near the limit, its extension `.ts` or none made `.mkv`):
/// said before anything is made, not at the rename into place after the
/// whole encode.
pub fn name_fits(input: &Path, output: &Path) -> Result<()> {
    let n = output.file_name().map_or(0, |n| n.len());
    if n > NAME_MAX {
        let problem = format!(
            "its output's name would be {n} bytes, more than the {NAME_MAX} a file name may have: rename the rip"
        );
        return Err(Error::Input { path: input.to_path_buf(), problem });
    }
    // The names drapto makes: the output's and the folders not there yet,
    // on the file system of the nearest folder that is.
    let mut made = Vec::new();
    let mut at = output;
    while std::fs::symlink_metadata(at).is_err() {
        made.extend(at.file_name());
        let Some(up) = at.parent() else { return Ok(()) };
        at = up;
    }
    let Some(fs) = crate::platform::windows_names_only(at) else { return Ok(()) };
    let refused = made.iter().filter_map(|n| n.to_str()).find_map(|n| windows_refuses(n).map(|c| (n, c)));
    let Some((name, c)) = refused else { return Ok(()) };
    let problem = format!(
        "its output's name \"{name}\" holds {c}, which the output folder's file system ({fs}) does not allow in a name: rename the rip"
    );
    Err(Error::Input { path: input.to_path_buf(), problem })
}

/// What in `name` FAT and exFAT refuse, in words: a character Windows
/// forbids, a control character, or a dot or space at its end.
fn windows_refuses(name: &str) -> Option<String> {
    if let Some(c) = name.chars().find(|c| "\\:*?\"<>|".contains(*c) || c.is_control()) {
        return Some(if c.is_control() { format!("a control character ({:?})", c) } else { format!("'{c}'") });
    }
    name.ends_with(['.', ' ']).then(|| "a dot or space at its end".into())
}

/// The rip's own error where the output folder's file system refuses the
/// name of a file drapto makes in it (`e`: FAT and exFAT refuse `:`, as
/// `EINVAL` or, through FUSE, `ENOENT`), in place of an I/O error on that
/// file, which counted as a failure of the setup: three films named
/// "Alien: Resurrection" and the like stopped the batch.
pub fn name_refused(input: &Path, e: Error) -> Error {
    let Error::Io { path, source, .. } = &e else { return e };
    // By the names drapto makes (the file's, and folders not there yet):
    // one holding what FAT refuses, refused as FAT drivers say it (EINVAL,
    // ENOENT through exfat-fuse, EPERM through fusefat), or any name
    // refused for its encoding.
    let made = path.ancestors().take_while(|a| !a.exists()).filter_map(|a| a.file_name()?.to_str());
    let (name, held) = made
        .map(|n| (n, windows_refuses(n)))
        .find(|(_, held)| held.is_some())
        .unwrap_or((path.file_name().and_then(|n| n.to_str()).unwrap_or_default(), None));
    let refused = match source.raw_os_error() {
        Some(nix::libc::EILSEQ) => true,
        Some(nix::libc::EINVAL | nix::libc::ENOENT | nix::libc::EPERM) => held.is_some(),
        _ => false,
    };
    let there = path.ancestors().skip(1).find(|a| a.exists());
    if !(refused && there.is_some_and(Path::is_dir)) {
        return e;
    }
    let what = held.map_or(String::new(), |c| format!(", which holds {c}"));
    let problem = format!(
        "the output folder's file system refuses the name \"{name}\"{what} ({source}; FAT and exFAT refuse \\ : * ? \" < > |): rename the rip"
    );
    Error::Input { path: input.to_path_buf(), problem }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fat_and_exfat_refuse_are_told() {
        assert_eq!(windows_refuses("Alien: Resurrection.mkv").as_deref(), Some("':'"));
        assert_eq!(windows_refuses("What?.mkv").as_deref(), Some("'?'"));
        assert_eq!(windows_refuses("Extras.").as_deref(), Some("a dot or space at its end"));
        assert_eq!(windows_refuses("Heat (1995) – Director's Cut.mkv"), None);
    }

    #[test]
    fn a_name_the_output_folder_refuses_is_the_rips_failure_not_the_setups() {
        let d = tempfile::tempdir().unwrap();
        let rip = Path::new("/rips/Alien: Resurrection.mkv");
        let lock = d.path().join(".Alien: Resurrection.mkv.drapto-lock");
        let io = |errno| Error::io("open lock file", &lock)(std::io::Error::from_raw_os_error(errno));
        // As exfat-fuse (ENOENT), fusefat (EPERM) and the kernel's FAT and
        // exFAT (EINVAL) say it.
        for errno in [nix::libc::ENOENT, nix::libc::EINVAL, nix::libc::EPERM] {
            let e = name_refused(rip, io(errno));
            assert!(matches!(e, Error::Input { .. }) && !e.is_environmental(rip), "{e}");
            assert!(e.to_string().contains("refuses the name \".Alien: Resurrection.mkv.drapto-lock\""), "{e}");
        }
        // A disk that fails is the setup's; so is a name without such a
        // character that cannot be made.
        let e = name_refused(rip, io(nix::libc::EIO));
        assert!(e.is_environmental(rip), "{e}");
        let plain = d.path().join(".Heat.mkv.drapto-lock");
        let e = Error::io("open lock file", &plain)(std::io::Error::from_raw_os_error(nix::libc::EPERM));
        assert!(name_refused(rip, e).is_environmental(rip));
        // A folder to make whose name holds what FAT refuses, above the one
        // that failed.
        let folder = d.path().join("Alien: Resurrection (1997)").join("Extras");
        let e = Error::io("create output folder", &folder)(std::io::Error::from_raw_os_error(nix::libc::ENOENT));
        let e = name_refused(rip, e);
        assert!(e.to_string().contains("\"Alien: Resurrection (1997)\", which holds ':'"), "{e}");
        // So is a folder gone.
        let gone = Error::io("open lock file", "/nowhere/x")(std::io::Error::from_raw_os_error(nix::libc::ENOENT));
        assert!(name_refused(rip, gone).is_environmental(rip));
    }
}
