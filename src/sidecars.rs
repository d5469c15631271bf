//! A rip's sidecar files: the subtitles, `.nfo` and pictures beside it,
//! named after it (`Heat (1995).en.srt`, `Heat (1995)-poster.jpg`), and the
//! folder's own pictures that media servers read. Found with the rip
//! ([`crate::discover`]), copied beside its output once the output is in
//! place, and moved along with an output a renamed rip takes along.

use crate::discover::{comparable, is_container, rip_stem};
use std::path::{Path, PathBuf};

/// Sidecar endings copied beside an output.
const SIDECARS: &[&str] =
    &["srt", "ass", "ssa", "sub", "idx", "sup", "vtt", "nfo", "jpg", "jpeg", "png", "webp", "tbn"];

/// Folder pictures that media servers read (`poster.jpg`, `fanart.png`…).
const FOLDER_PICTURES: &[&str] = &["poster", "fanart", "folder", "cover", "banner", "clearlogo", "landscape"];

/// What may follow a rip's stem in its sidecar's name (`Heat.en.srt`,
/// `Heat-poster.jpg`, `Heat_fanart.png`, `Heat (1995) poster.jpg`): not a
/// letter, which makes another film's name (`Heathers.nfo`).
const AFTER_STEM: [char; 4] = ['.', '-', '_', ' '];

/// The sidecar files of the rip `path`: beside it, named after it
/// (`Heat (1995).en.srt`, `Heat (1995).nfo`, `Heat (1995)-poster.jpg`), and
/// the folder's own pictures. A file named after another rip in the folder
/// whose name extends this one's (`Heat 2.en.srt` beside `Heat.mkv` and
/// `Heat 2.mkv`) is that rip's.
pub fn sidecars_of(path: &Path) -> Vec<PathBuf> {
    let Some(dir) = path.parent() else { return vec![] };
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    let stem = comparable(&rip_stem(path));
    let is_video = |p: &Path| p.extension().and_then(|e| e.to_str()).is_some_and(is_container);
    let others: Vec<String> = files
        .iter()
        .filter(|p| *p != path && is_video(p))
        .map(|p| comparable(&rip_stem(p)))
        .filter(|o| o.len() > stem.len() && o.starts_with(&stem))
        .collect();
    let named_after = |name: &str, stem: &str| {
        name.strip_prefix(stem).and_then(|rest| rest.chars().next()).is_some_and(|c| AFTER_STEM.contains(&c))
    };
    let mut out: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| p != path)
        .filter(|p| {
            let name = comparable(p.file_name().unwrap_or_default());
            let ext = p.extension().unwrap_or_default().to_string_lossy().to_lowercase();
            let base = p.file_stem().unwrap_or_default().to_string_lossy().to_lowercase();
            let ours = named_after(&name, &stem) && !others.iter().any(|o| named_after(&name, o));
            SIDECARS.contains(&ext.as_str()) && (ours || FOLDER_PICTURES.contains(&base.as_str()))
        })
        .collect();
    out.sort();
    out
}

/// Copies `sidecars` beside `output` (keeping their names, the rip's
/// stem replaced by the output's, byte for byte: a name that is not UTF-8
/// keeps its bytes), each through a temporary name; one that is already
/// there with the same content is left alone, and a different file of that
/// name (a user's own subtitles or poster) is never replaced. Returns what
/// was not copied, and why, each with whether a different file of its name
/// was there (kept).
pub fn copy_sidecars(sidecars: &[PathBuf], input: &Path, output: &Path) -> Vec<(String, bool)> {
    let Some(dir) = output.parent() else {
        return vec![];
    };
    let mut failed = Vec::new();
    for s in sidecars {
        let Some(to) = sidecar_destination(s, input, output) else { continue };
        let name = to.file_name().unwrap_or_default();
        if to.exists() {
            if !same_content(s, &to) {
                failed.push((format!("{}: {} is a different file, kept", s.display(), to.display()), true));
            }
            continue;
        }
        let tmp = dir.join(crate::hash::file_name(".", &name.to_string_lossy(), ".drapto-partial"));
        if let Err(e) = std::fs::copy(s, &tmp).and_then(|_| std::fs::rename(&tmp, &to)) {
            let _ = std::fs::remove_file(&tmp);
            failed.push((format!("{}: {e}", s.display()), false));
        }
    }
    failed
}

/// Where the rip `input`'s sidecar file goes beside its `output`: named
/// after the output where it was named after the rip (the rip's whole
/// stem replaced, byte for byte), else as it is.
pub fn sidecar_destination(sidecar: &Path, input: &Path, output: &Path) -> Option<PathBuf> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let (dir, out_stem) = (output.parent()?, output.file_stem()?);
    let name = sidecar.file_name()?;
    let name = match name.as_bytes().strip_prefix(rip_stem(input).as_bytes()) {
        Some(rest) => std::ffi::OsString::from_vec([out_stem.as_bytes(), rest].concat()),
        None => name.to_owned(),
    };
    Some(dir.join(name))
}

/// Moves the sidecars beside the output `from` (named after it, see
/// [`sidecars_of`]) along with it to `to` (an encode taken along by a rip
/// renamed since): left behind, they were the next rip's of that name (a
/// film's subtitles beside another film), and kept its own from being
/// copied. One whose new name is taken stays.
pub fn move_sidecars(from: &Path, to: &Path) {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let (Some(to_dir), Some(stem), Some(to_stem)) = (to.parent(), from.file_stem(), to.file_stem()) else {
        return;
    };
    // (The folder's own pictures stay with the folder: only the files
    // named after the output, as drapto named them.)
    for s in sidecars_of(from) {
        let Some(rest) = s.file_name().unwrap_or_default().as_bytes().strip_prefix(stem.as_bytes()) else { continue };
        let target = to_dir.join(std::ffi::OsString::from_vec([to_stem.as_bytes(), rest].concat()));
        if !target.exists() {
            let _ = std::fs::rename(&s, &target);
        }
    }
}

/// Whether files `a` and `b` hold the same bytes (sidecars are small).
pub fn same_content(a: &Path, b: &Path) -> bool {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    size(a).is_some() && size(a) == size(b) && std::fs::read(a).ok() == std::fs::read(b).ok()
}
