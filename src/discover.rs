//! Finding the work: the rips an input names (a file, a folder, a whole
//! library tree walked recursively, symlinks followed without loops), each
//! with the output path that keeps its place in the tree, and every other
//! file with the reason it is not one. The first stage of the flow.

use crate::config::InputSettings;
use crate::config::file_pattern as pattern;
use crate::error::{Error, Result};
use crate::sidecars::sidecars_of;
use globset::GlobMatcher;
use std::path::{Path, PathBuf};

/// A rip to encode and where its output goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub input: PathBuf,
    pub output: PathBuf,
    /// The output folder of the run (`output` lies below it).
    pub root: PathBuf,
    /// Its sidecar files (subtitles, .nfo, posters), when asked to copy them.
    pub sidecars: Vec<PathBuf>,
    /// Named alone (`-i FILE`), not found in a folder: encoded even where it
    /// is drapto's own encode (a smaller copy of a finished film), which a
    /// library's walk leaves out.
    pub alone: bool,
}

/// Why a file is not encoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    Hidden,
    /// A name that a download or a writer uses while it is unfinished.
    Unfinished,
    /// Its name does not match `input.file_pattern`.
    Pattern,
    TooSmall {
        size: u64,
        min: u64,
    },
    TooLarge {
        size: u64,
        max: u64,
    },
    /// Another process holds it open for writing (a ripper still at work).
    BeingWritten(String),
    /// A rip that could not be read (a broken link, no permission).
    Unreadable(String),
    /// A folder that could not be read (no permission): said, not counted
    /// as a rip not encoded (a disk's lost+found would fail every run).
    UnreadableFolder(String),
    /// A link back to a folder above it, which the walk has been through.
    LinkLoop(PathBuf),
    /// Its path is not UTF-8 (a name from an old Latin-1 share): the
    /// state, events and reports that name it could not.
    NotUtf8,
    /// The walk found this very file before under another path (a linked
    /// folder): it is encoded once, under the first.
    SameAs(PathBuf),
    /// Another rip's output has its output's name (`rip.webm` beside
    /// `rip.mkv`): that one is encoded, this one is not, until one of them
    /// is renamed.
    SameOutput {
        other: PathBuf,
        output: PathBuf,
    },
}

impl Skip {
    /// Whether the file is a rip drapto would encode but cannot now: one
    /// still being written, one whose name its records cannot hold, one it
    /// cannot read. The batch says so in its summary, and does not count as
    /// done.
    pub fn is_rip_not_encoded(&self) -> bool {
        matches!(self, Skip::BeingWritten(_) | Skip::NotUtf8 | Skip::Unreadable(_) | Skip::SameOutput { .. })
    }

    /// Whether drapto cannot read or name it (a broken link, a folder
    /// without permission, a name its records cannot hold): worth a warning
    /// where other skips are only logged.
    pub fn is_unusable(&self) -> bool {
        matches!(self, Skip::NotUtf8 | Skip::Unreadable(_) | Skip::UnreadableFolder(_))
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Hidden => f.write_str("hidden"),
            Skip::Unfinished => f.write_str("an unfinished download or a temporary name"),
            Skip::Pattern => f.write_str("does not match input.file_pattern"),
            Skip::TooSmall { size, min } => write!(f, "{size} bytes, below input.min_size ({min})"),
            Skip::TooLarge { size, max } => write!(f, "{size} bytes, above input.max_size ({max})"),
            Skip::BeingWritten(who) => write!(f, "still being written ({who})"),
            Skip::Unreadable(why) => write!(f, "cannot be read: {why}"),
            Skip::UnreadableFolder(why) => write!(f, "a folder that cannot be read: {why}"),
            Skip::LinkLoop(to) => write!(f, "a link back to {} (walked once)", to.display()),
            Skip::SameAs(p) => {
                write!(f, "the same file as {} (a hard link, or met again through a linked folder)", p.display())
            }
            Skip::NotUtf8 => f.write_str(NOT_UTF8),
            Skip::SameOutput { other, output } => write!(
                f,
                "its output would be {}, the output of {}, which is encoded: rename one of them",
                output.display(),
                other.display()
            ),
        }
    }
}

const NOT_UTF8: &str =
    "its path is not UTF-8, which drapto's records of it cannot hold; rename it (convmv converts such names)";

/// `path` as it can be shown and recorded (not UTF-8: its bytes that are
/// not, replaced).
fn shown(path: &Path) -> PathBuf {
    PathBuf::from(path.to_string_lossy().into_owned())
}

/// Everything found under an input.
#[derive(Debug, Default)]
pub struct Discovery {
    pub found: Vec<Found>,
    pub skipped: Vec<(PathBuf, Skip)>,
}

/// Name endings of unfinished files (browsers, torrent clients, rsync's
/// own are hidden) and of drapto's own work beside its outputs.
const UNFINISHED: &[&str] =
    &[".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".!qb", ".drapto-partial", ".failed"];

/// What counts as a rip.
pub struct Filters {
    pattern: GlobMatcher,
    /// The pattern names folders too (it holds a `/`): matched against the
    /// path below the input folder, else against the file name.
    on_path: bool,
    min_size: Option<u64>,
    max_size: Option<u64>,
    sidecars: bool,
    /// drapto's own folders (temporary, logs, reports), canonical, left out
    /// where they lie inside a library: a segment or a picture file drapto
    /// writes there is no rip.
    own_dirs: Vec<PathBuf>,
}

impl Filters {
    pub fn of(s: &InputSettings) -> Result<Filters> {
        let pattern = pattern(&s.file_pattern).map_err(|message| {
            Error::Config(crate::error::ConfigError { origin: crate::origin::Origin::Default, message })
        })?;
        Ok(Filters {
            pattern,
            on_path: s.file_pattern.contains('/'),
            min_size: s.min_size.map(|b| b.0),
            max_size: s.max_size.map(|b| b.0),
            sidecars: s.copy_sidecars,
            own_dirs: Vec::new(),
        })
    }

    /// The filters of `settings`, leaving out drapto's own folders (see
    /// [`Filters::own_dirs`]).
    pub fn of_settings(settings: &crate::config::Settings) -> Result<Filters> {
        let own = [Some(settings.temp_dir()), Some(settings.log_dir()), settings.paths.report_dir.clone()];
        let own_dirs = own.into_iter().flatten().filter_map(|d| std::fs::canonicalize(d).ok()).collect();
        Ok(Filters { own_dirs, ..Filters::of(&settings.input)? })
    }

    /// Why the file `relative` (below the input folder) of `size` bytes is
    /// not a rip, if it is not.
    fn reject(&self, relative: &Path, size: u64) -> Option<Skip> {
        if let Some(why) = self.reject_name(relative) {
            return Some(why);
        }
        if let Some(min) = self.min_size.filter(|m| size < *m) {
            return Some(Skip::TooSmall { size, min });
        }
        if let Some(max) = self.max_size.filter(|m| size > *m) {
            return Some(Skip::TooLarge { size, max });
        }
        None
    }

    /// Why a file named `relative` is not a rip, whatever its size.
    fn reject_name(&self, relative: &Path) -> Option<Skip> {
        let name = relative.file_name().unwrap_or_default().to_string_lossy().to_lowercase();
        if name.starts_with('.') {
            return Some(Skip::Hidden);
        }
        if UNFINISHED.iter().any(|u| name.ends_with(u)) {
            return Some(Skip::Unfinished);
        }
        let matched = if self.on_path { self.pattern.is_match(relative) } else { self.pattern.is_match(&name) };
        (!matched).then_some(Skip::Pattern)
    }
}

/// The rips `input` names, with their outputs under `output_dir`: a file is
/// taken as it is; a folder is walked, the output folder (when it lies
/// inside) and hidden folders left out, each rip's output at its path
/// below the input folder.
pub fn discover(input: &Path, output_dir: &Path, filters: &Filters) -> Result<Discovery> {
    let meta = std::fs::metadata(input).map_err(Error::io("read", input))?;
    // Absolute (symlinks kept): a name like "-x.mkv" can never pass for an
    // option of a child program, whatever the working directory.
    let input = &std::path::absolute(input).map_err(Error::io("resolve", input))?;
    for p in [input.as_path(), output_dir] {
        if p.to_str().is_none() {
            return Err(Error::Input { path: shown(p), problem: NOT_UTF8.into() });
        }
    }
    if meta.is_file() {
        let input = as_on_disk(input);
        let output = output_dir.join(matroska_name(Path::new(input.file_name().unwrap_or_default())));
        let sidecars = if filters.sidecars { sidecars_of(&input) } else { vec![] };
        let root = output_dir.to_path_buf();
        return Ok(Discovery { found: vec![Found { input, output, root, sidecars, alone: true }], skipped: vec![] });
    }
    Ok(walk(input, output_dir, filters))
}

/// The rips below the folder `input` (absolute), in path order: the output
/// folder and drapto's own (when they lie inside) and hidden folders left
/// out, each rip's output at its path below the input folder.
fn walk(input: &Path, output_dir: &Path, filters: &Filters) -> Discovery {
    let mut d = Discovery::default();
    let skip_dir = std::fs::canonicalize(output_dir).ok();
    // Each file met once (dev, inode): a linked folder is no second rip.
    let mut seen: std::collections::HashMap<(u64, u64), PathBuf> = std::collections::HashMap::new();
    let walk = walkdir::WalkDir::new(input).follow_links(true).sort_by_file_name().into_iter().filter_entry(|e| {
        let hidden = e.depth() > 0 && e.file_name().to_string_lossy().starts_with('.') && e.file_type().is_dir();
        // (The input folder itself as the output is refused file by file:
        // every output would overwrite its input.)
        let left_out = e.depth() > 0 && e.file_type().is_dir() && {
            let here = std::fs::canonicalize(e.path()).ok();
            here.is_some_and(|h| skip_dir.as_ref() == Some(&h) || filters.own_dirs.contains(&h))
        };
        !hidden && !left_out
    });
    for entry in walk {
        let entry = match entry {
            Ok(e) if e.file_type().is_file() => e,
            Ok(_) => continue,
            Err(e) => {
                d.skipped.push(walk_error(&e, input, filters));
                continue;
            }
        };
        match classify(&entry, input, filters, &mut seen) {
            Ok(()) => {
                let relative = entry.path().strip_prefix(input).unwrap_or(entry.path());
                let sidecars = if filters.sidecars { sidecars_of(entry.path()) } else { vec![] };
                let output = output_dir.join(matroska_name(relative));
                d.found.push(Found {
                    input: entry.path().to_path_buf(),
                    output,
                    root: output_dir.to_path_buf(),
                    sidecars,
                    alone: false,
                });
            }
            Err(skip) => d.skipped.push(skip),
        }
    }
    one_rip_per_output(&mut d);
    d
}

/// Of rips whose outputs would have one name (`rip.mkv`, `rip.webm` and
/// `rip`; on macOS also names that differ only in case or Unicode form),
/// the one already named `.mkv` is kept, else the first; the others are
/// skipped, said why ([`Skip::SameOutput`]). The run encoded the first and
/// failed the others, which the dry run had listed to encode.
fn one_rip_per_output(d: &mut Discovery) {
    use std::collections::hash_map::Entry;
    let key = |f: &Found| match cfg!(target_os = "macos") {
        true => comparable(f.output.as_os_str()),
        false => f.output.to_string_lossy().into_owned(),
    };
    let named_mkv = |f: &Found| f.input.extension().is_some_and(|e| e.eq_ignore_ascii_case("mkv"));
    let mut kept: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, f) in d.found.iter().enumerate() {
        match kept.entry(key(f)) {
            Entry::Vacant(v) => {
                v.insert(i);
            }
            Entry::Occupied(mut o) if named_mkv(f) && !named_mkv(&d.found[*o.get()]) => {
                o.insert(i);
            }
            Entry::Occupied(_) => {}
        }
    }
    if kept.len() == d.found.len() {
        return;
    }
    let found = std::mem::take(&mut d.found);
    let winner = |f: &Found| found[kept[&key(f)]].input.clone();
    for (i, f) in found.iter().enumerate() {
        if kept[&key(f)] == i {
            d.found.push(f.clone());
        } else {
            d.skipped.push((f.input.clone(), Skip::SameOutput { other: winner(f), output: f.output.clone() }));
        }
    }
}

/// What the walk says of an entry it could not read.
fn walk_error(e: &walkdir::Error, input: &Path, filters: &Filters) -> (PathBuf, Skip) {
    let path = e.path().map(Path::to_path_buf).unwrap_or_else(|| input.to_path_buf());
    let relative = path.strip_prefix(input).unwrap_or(&path);
    let why = match e.loop_ancestor() {
        Some(to) => Skip::LinkLoop(to.to_path_buf()),
        // (lost+found on a disk of its own: said, but no rip missed.)
        None if path.is_dir() => Skip::UnreadableFolder(e.to_string()),
        // A broken link to notes.txt is no rip missed.
        None => filters.reject_name(relative).unwrap_or(Skip::Unreadable(e.to_string())),
    };
    (path, why)
}

/// Whether the file `entry` (below the folder `input`) is a rip to encode,
/// else why not; `seen` holds the files met before.
fn classify(
    entry: &walkdir::DirEntry,
    input: &Path,
    filters: &Filters,
    seen: &mut std::collections::HashMap<(u64, u64), PathBuf>,
) -> std::result::Result<(), (PathBuf, Skip)> {
    let relative = entry.path().strip_prefix(input).unwrap_or(entry.path());
    let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
    if let Some(why) = filters.reject(relative, size) {
        return Err((shown(entry.path()), why));
    }
    if entry.path().to_str().is_none() {
        return Err((shown(entry.path()), Skip::NotUtf8));
    }
    if let Ok(m) = entry.metadata() {
        use std::collections::hash_map::Entry;
        use std::os::unix::fs::MetadataExt;
        match seen.entry((m.dev(), m.ino())) {
            Entry::Occupied(first) => return Err((entry.path().to_path_buf(), Skip::SameAs(first.get().clone()))),
            Entry::Vacant(v) => {
                v.insert(entry.path().to_path_buf());
            }
        }
    }
    Ok(())
}

/// Extensions of containers whose rips are named `.mkv` in their place.
const CONTAINERS: [&str; 12] = ["webm", "mk3d", "mka", "mp4", "m4v", "mov", "avi", "ts", "m2ts", "mts", "mpg", "vob"];

/// The output's name for a rip at `path`: an MKV, whatever the rip's own
/// name says (`rip.webm`, `rip.mk3d`, `rip`): its extension (of a known
/// container; `.mkv` in any case is kept as it is) becomes `.mkv`, else
/// `.mkv` is added (`Film.2001` keeps its year).
pub fn matroska_name(path: &Path) -> PathBuf {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext.eq_ignore_ascii_case("mkv") {
        return path.to_path_buf();
    }
    if is_container(ext) {
        return path.with_extension("mkv");
    }
    let mut name = path.as_os_str().to_owned();
    name.push(".mkv");
    PathBuf::from(name)
}

/// `d` without the rips another process is still writing (where the
/// system can tell), which move to the skipped ones.
pub fn leave_out_unfinished(d: &mut Discovery) {
    let paths: Vec<&Path> = d.found.iter().map(|f| f.input.as_path()).collect();
    let mut writers = crate::platform::writers_of_all(&paths).unwrap_or_default();
    let (ready, busy): (Vec<Found>, Vec<Found>) =
        std::mem::take(&mut d.found).into_iter().partition(|f| !writers.contains_key(&f.input));
    for f in busy {
        let who = writers.remove(&f.input).unwrap_or_default();
        let names: Vec<String> = who.iter().map(|w| format!("{} (pid {})", w.name, w.pid)).collect();
        d.skipped.push((f.input, Skip::BeingWritten(format!("open for writing by {}", names.join(", ")))));
    }
    d.found = ready;
}

/// A name as compared: case folded, and in one Unicode form (a Mac's
/// Finder and SMB shares store names decomposed, "e" + U+0301, while a
/// name typed in a terminal is composed, "é").
pub(crate) fn comparable(name: &std::ffi::OsStr) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.to_string_lossy().nfc().collect::<String>().to_lowercase()
}

/// The file `path` under the name its folder lists it by, which may be
/// another Unicode form of the name given (macOS opens either): outputs and
/// sidecars are then named as a walk of the folder names them.
fn as_on_disk(path: &Path) -> PathBuf {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return path.to_path_buf() };
    let Ok(entries) = std::fs::read_dir(dir) else { return path.to_path_buf() };
    let names: Vec<std::ffi::OsString> = entries.flatten().map(|e| e.file_name()).collect();
    if names.iter().any(|n| n == name) {
        return path.to_path_buf();
    }
    let want = comparable(name);
    match names.iter().find(|n| comparable(n) == want) {
        Some(n) => dir.join(n),
        None => path.to_path_buf(),
    }
}

/// The rip's name without its container's extension (the stem its output
/// is named by, see [`matroska_name`]): `Heat.1995` for a rip named so,
/// `Heat (1995)` for `Heat (1995).m2ts`.
pub(crate) fn rip_stem(path: &Path) -> std::ffi::OsString {
    let name = path.file_name().unwrap_or_default();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match path.file_stem() {
        Some(stem) if is_container(ext) => stem.to_owned(),
        _ => name.to_owned(),
    }
}

/// Whether `ext` is a video container's (`mkv`, or one of [`CONTAINERS`]).
pub(crate) fn is_container(ext: &str) -> bool {
    ext.eq_ignore_ascii_case("mkv") || CONTAINERS.iter().any(|c| ext.eq_ignore_ascii_case(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ByteSize;
    use crate::sidecars::copy_sidecars;

    fn write(root: &Path, rel: &str, bytes: usize) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, vec![0u8; bytes]).unwrap();
    }

    fn filters(min: Option<u64>, copy: bool) -> Filters {
        let s = InputSettings { min_size: min.map(ByteSize), copy_sidecars: copy, ..InputSettings::default() };
        Filters::of(&s).unwrap()
    }

    #[test]
    fn drapto_s_own_folders_inside_a_library_are_no_rips() {
        // The temporary folder put on the library's disk, inside it: a
        // killed run's segments and intermediate video were taken for rips
        // (and a watch encoded its own segments into the output library).
        let t = tempfile::tempdir().unwrap();
        let lib = t.path().join("lib");
        write(&lib, "Film/Film.mkv", 5000);
        write(&lib, "drapto-work/jobs/Film-0123/encoded/0001.mkv", 5000);
        write(&lib, "drapto-work/jobs/Film-0123/working/video.mkv", 5000);
        write(&lib, "reports/Old.mkv", 5000);
        let mut settings = crate::config::Settings::default();
        settings.processing.temp_dir = crate::config::Auto::Value(lib.join("drapto-work"));
        settings.paths.report_dir = Some(lib.join("reports"));
        let found = |f: &Filters| -> Vec<PathBuf> {
            discover(&lib, &t.path().join("out"), f).unwrap().found.into_iter().map(|f| f.input).collect()
        };
        assert_eq!(found(&Filters::of_settings(&settings).unwrap()), vec![lib.join("Film/Film.mkv")]);
        assert_eq!(found(&Filters::of(&settings.input).unwrap()).len(), 4, "what a walk without them takes");
    }

    #[test]
    fn a_library_tree_gives_its_rips_with_mirrored_outputs_and_says_why_not_the_rest() {
        let t = tempfile::tempdir().unwrap();
        let lib = t.path().join("lib");
        write(&lib, "Movies/Heat (1995)/Heat (1995).mkv", 5000);
        write(&lib, "Movies/Heat (1995)/Heat (1995).en.srt", 10);
        write(&lib, "Movies/Heat (1995)/Extras/Trailer.mkv", 100);
        write(&lib, "TV/The Wire/Season 01/S01E01.MKV", 5000);
        write(&lib, "TV/The Wire/Season 01/S01E02.mkv.part", 5000);
        write(&lib, "TV/.hidden/x.mkv", 5000);
        write(&lib, ".DS_Store", 10);
        write(&lib, "encodes/Old.mkv", 5000);
        let out = lib.join("encodes");
        let d = discover(&lib, &out, &filters(Some(1000), false)).unwrap();
        let found: Vec<(String, String)> = d
            .found
            .iter()
            .map(|f| {
                (
                    f.input.strip_prefix(&lib).unwrap().display().to_string(),
                    f.output.strip_prefix(&out).unwrap().display().to_string(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("Movies/Heat (1995)/Heat (1995).mkv".to_string(), "Movies/Heat (1995)/Heat (1995).mkv".to_string()),
                ("TV/The Wire/Season 01/S01E01.MKV".into(), "TV/The Wire/Season 01/S01E01.MKV".into()),
            ]
        );
        let why = |rel: &str| d.skipped.iter().find(|(p, _)| p.ends_with(rel)).map(|(_, w)| w.clone());
        assert_eq!(why("Extras/Trailer.mkv"), Some(Skip::TooSmall { size: 100, min: 1000 }));
        assert_eq!(why("S01E02.mkv.part"), Some(Skip::Unfinished));
        assert_eq!(why("Heat (1995).en.srt"), Some(Skip::Pattern));
        assert_eq!(why(".DS_Store"), Some(Skip::Hidden));
        assert_eq!(why("x.mkv"), None, "hidden folders are not walked");
        assert_eq!(why("Old.mkv"), None, "nor is the output folder");
    }

    #[test]
    fn outputs_are_named_as_mkv() {
        let named = |p: &str| matroska_name(Path::new(p)).display().to_string();
        assert_eq!(named("a/Heat.mkv"), "a/Heat.mkv");
        assert_eq!(named("Heat.MKV"), "Heat.MKV");
        assert_eq!(named("rip.webm"), "rip.mkv");
        assert_eq!(named("a/rip.MK3D"), "a/rip.mkv");
        assert_eq!(named("rip"), "rip.mkv");
        assert_eq!(named("Film.2001"), "Film.2001.mkv");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_without_loops() {
        let t = tempfile::tempdir().unwrap();
        let lib = t.path().join("lib");
        write(&t.path().join("elsewhere"), "Film.mkv", 10);
        write(&lib, "a/A.mkv", 10);
        std::os::unix::fs::symlink(t.path().join("elsewhere"), lib.join("linked")).unwrap();
        std::os::unix::fs::symlink(&lib, lib.join("a/loop")).unwrap();
        let d = discover(&lib, &t.path().join("out"), &filters(None, false)).unwrap();
        let names: Vec<String> =
            d.found.iter().map(|f| f.input.strip_prefix(&lib).unwrap().display().to_string()).collect();
        assert_eq!(names, ["a/A.mkv", "linked/Film.mkv"]);
        assert!(
            d.skipped.iter().any(|(_, w)| matches!(w, Skip::LinkLoop(to) if to.ends_with("lib"))),
            "{:?}",
            d.skipped
        );
    }

    #[test]
    fn sidecars_are_found_and_copied_under_the_outputs_name() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "in/Heat.mkv", 10);
        write(t.path(), "in/Heat.en.srt", 3);
        write(t.path(), "in/Heat.nfo", 4);
        write(t.path(), "in/poster.jpg", 5);
        write(t.path(), "in/Other.nfo", 6);
        let d = discover(&t.path().join("in"), &t.path().join("out"), &filters(None, true)).unwrap();
        let f = &d.found[0];
        let names: Vec<_> = f.sidecars.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["Heat.en.srt", "Heat.nfo", "poster.jpg"]);
        std::fs::create_dir_all(t.path().join("out")).unwrap();
        assert!(copy_sidecars(&f.sidecars, &f.input, &f.output).is_empty());
        for n in ["Heat.en.srt", "Heat.nfo", "poster.jpg"] {
            assert!(t.path().join("out").join(n).exists(), "{n}");
        }
    }

    #[test]
    fn rips_whose_outputs_share_a_name_are_encoded_once() {
        let t = tempfile::tempdir().unwrap();
        for n in ["rip", "rip.mkv", "rip.webm", "solo.ts", "x/a.m2ts", "x/a.mp4"] {
            write(t.path(), &format!("in/{n}"), 10);
        }
        let s = InputSettings { file_pattern: "*".into(), ..InputSettings::default() };
        let d = discover(&t.path().join("in"), &t.path().join("out"), &Filters::of(&s).unwrap()).unwrap();
        let rel = |p: &Path| p.strip_prefix(t.path().join("in")).unwrap().to_string_lossy().into_owned();
        let found: Vec<String> = d.found.iter().map(|f| rel(&f.input)).collect();
        assert_eq!(found, ["rip.mkv", "solo.ts", "x/a.m2ts"], "the one named .mkv, else the first");
        let same: Vec<(String, String)> = d
            .skipped
            .iter()
            .filter_map(|(p, w)| match w {
                Skip::SameOutput { other, .. } => Some((rel(p), rel(other))),
                _ => None,
            })
            .collect();
        let pairs = [("rip", "rip.mkv"), ("rip.webm", "rip.mkv"), ("x/a.mp4", "x/a.m2ts")];
        assert_eq!(same, pairs.map(|(a, b)| (a.to_string(), b.to_string())));
        assert!(d.skipped.iter().all(|(_, w)| !matches!(w, Skip::SameOutput { .. }) || w.is_rip_not_encoded()));
    }

    #[test]
    fn another_film_s_sidecars_are_not_taken_for_a_shorter_name_s() {
        // A flat folder of films: Heat takes neither Heathers' files (its
        // name goes on in letters) nor Heat 2's (a rip of that name is
        // there); "Heat.1995" (no container extension) is the rip's stem.
        let t = tempfile::tempdir().unwrap();
        for n in ["Heat.mkv", "Heathers (1989).mkv", "Heat 2.m2ts", "Up.mkv", "year/Heat.1995"] {
            write(t.path(), &format!("in/{n}"), 10);
        }
        for n in ["Heat.en.srt", "Heat-poster.jpg", "Heathers (1989).nfo", "Heat 2.en.srt", "year/Heat.1995.nfo"] {
            write(t.path(), &format!("in/{n}"), 3);
        }
        write(t.path(), "in/Upgrade.nfo", 3);
        let names = |rip: &str| -> Vec<String> {
            let s = sidecars_of(&t.path().join("in").join(rip));
            s.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
        };
        assert_eq!(names("Heat.mkv"), ["Heat-poster.jpg", "Heat.en.srt"]);
        assert_eq!(names("Heat 2.m2ts"), ["Heat 2.en.srt"]);
        assert_eq!(names("year/Heat.1995"), ["Heat.1995.nfo"]);
        assert_eq!(names("Up.mkv"), Vec::<String>::new());
        // Copied under the output's stem, the rip's whole stem replaced
        // (Heat.1995.1995.nfo before), byte for byte.
        let out = t.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let rip = t.path().join("in/year/Heat.1995");
        assert!(copy_sidecars(&sidecars_of(&rip), &rip, &out.join(matroska_name(Path::new("Heat.1995")))).is_empty());
        assert!(out.join("Heat.1995.nfo").exists());
        use std::os::unix::ffi::OsStrExt;
        let latin1 = |b: u8| std::ffi::OsStr::from_bytes(&[b"Heat.fran", &[b][..], b"ais.srt"].concat()).to_owned();
        let (a, b) = (t.path().join("in").join(latin1(0xe7)), t.path().join("in").join(latin1(0xe9)));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        let heat = t.path().join("in/Heat.mkv");
        assert!(copy_sidecars(&[a, b], &heat, &out.join("Heat.mkv")).is_empty(), "two names, two files");
        assert!(out.join(latin1(0xe7)).exists() && out.join(latin1(0xe9)).exists());
    }

    #[test]
    fn a_film_reached_twice_through_a_linked_folder_is_found_once() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "in/A/x.mkv", 10);
        std::fs::create_dir_all(t.path().join("in/B")).unwrap();
        std::os::unix::fs::symlink("../A", t.path().join("in/B/linked")).unwrap();
        std::fs::hard_link(t.path().join("in/A/x.mkv"), t.path().join("in/y.mkv")).unwrap();
        let d = discover(&t.path().join("in"), &t.path().join("out"), &filters(None, false)).unwrap();
        let found: Vec<_> = d.found.iter().map(|f| f.input.strip_prefix(t.path()).unwrap().to_path_buf()).collect();
        assert_eq!(found, [Path::new("in/A/x.mkv")]);
        let same: Vec<_> = d.skipped.iter().filter(|(_, w)| matches!(w, Skip::SameAs(_))).collect();
        assert_eq!(same.len(), 2, "{:?}", d.skipped);
    }

    #[test]
    fn names_in_another_unicode_form_are_the_same_names() {
        // As a Mac's Finder stores them (decomposed), and as typed (composed).
        let (nfd, nfc) = ("Ame\u{301}lie", "Am\u{e9}lie");
        let t = tempfile::tempdir().unwrap();
        write(t.path(), &format!("in/{nfc}.mkv"), 10);
        write(t.path(), &format!("in/{nfd}.fr.srt"), 3);
        write(t.path(), &format!("other/{nfd}.mkv"), 10);
        let d = discover(&t.path().join("in"), &t.path().join("out"), &filters(None, true)).unwrap();
        let names: Vec<_> = d.found[0].sidecars.iter().map(|p| p.file_name().unwrap().to_owned()).collect();
        assert_eq!(names, [std::ffi::OsString::from(format!("{nfd}.fr.srt"))]);
        // A name given in the other form (which macOS opens) is taken as
        // the folder lists it.
        let typed = t.path().join(format!("other/{nfc}.mkv"));
        assert_eq!(as_on_disk(&typed), t.path().join(format!("other/{nfd}.mkv")));
        let listed = t.path().join(format!("other/{nfd}.mkv"));
        assert_eq!(as_on_disk(&listed), listed);
    }

    #[test]
    fn a_pattern_with_folders_matches_the_path() {
        let s = InputSettings { file_pattern: "Movies/**/*.mkv".into(), ..InputSettings::default() };
        let f = Filters::of(&s).unwrap();
        assert!(f.reject(Path::new("Movies/Heat/Heat.mkv"), 1).is_none());
        assert_eq!(f.reject(Path::new("TV/x.mkv"), 1), Some(Skip::Pattern));
        assert!(pattern("[").is_err());
    }
}
