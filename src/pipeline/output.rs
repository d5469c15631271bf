//! Where one file's output goes, and the rules for touching it: the final
//! name, the hidden name it is muxed under, the name a failed output is
//! kept under, the lock of its writer; an existing output looked at; the
//! validated output renamed into place.

use super::Pipeline;
use crate::analysis::Analysis;
use crate::error::{Error, Result};
use crate::events::{Check, Event};
use crate::hash::NAME_MAX;
use crate::job::JobInfo;
use crate::job::record::SourceRecord;
use crate::job::tracking::{File, Tracking};
use crate::matroska::structure::Structure;
use crate::tools::ffprobe;
use crate::validate::{self, observe::ObserveError};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The names of one file's output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSlots {
    /// The final name: the rip's, as an MKV (see [`crate::discover::matroska_name`]), in the output folder.
    pub output: PathBuf,
    /// The hidden name the output is muxed under before validation.
    pub partial: PathBuf,
    /// Where an output that failed validation is kept for inspection.
    pub failed: PathBuf,
    /// The lock of whoever writes it, beside it: every drapto writing to
    /// this folder sees it, whatever its temporary folder or machine.
    pub lock: PathBuf,
    /// The lock taken instead where the output's file system refuses locks
    /// (in `temp_dir/locks`: seen by the drapto runs sharing that folder).
    pub local_lock: PathBuf,
}

/// The file in a job's work folder naming its output (the path's bytes,
/// written by [`name_output`]).
pub const OUTPUT_FILE: &str = "output";

/// Names `output` in the job folder `job_dir`.
pub fn name_output(job_dir: &Path, output: &Path) -> Result<()> {
    let file = job_dir.join(OUTPUT_FILE);
    let output = std::path::absolute(output).unwrap_or_else(|_| output.to_path_buf());
    std::fs::write(&file, output.as_os_str().as_bytes()).map_err(Error::io("write", &file))
}

/// Removes the lock files of `slots` no drapto holds: a run killed between
/// the rename into place and its clean-up leaves its lock beside the
/// output, and the runs after it skip the rip.
pub fn remove_stale_locks(slots: &OutputSlots) {
    use crate::job::lock::is_held;
    for lock in [&slots.lock, &slots.local_lock] {
        if lock.exists() && !is_held(lock) {
            let _ = std::fs::remove_file(lock);
        }
    }
}

/// Removes the half-muxed output of the job whose work folder is `job_dir`,
/// when one is there and no drapto writes that output now: a run killed
/// between its mux and the rename leaves it, hidden, as large as the film;
/// and the lock file it leaves beside it. Returns the partial's size.
pub fn remove_abandoned_partial(job_dir: &Path, temp_dir: &Path) -> u64 {
    use crate::job::lock::is_held;
    let Ok(bytes) = std::fs::read(job_dir.join(OUTPUT_FILE)) else { return 0 };
    let output = PathBuf::from(std::ffi::OsStr::from_bytes(&bytes));
    let slots = OutputSlots::new(&output, temp_dir);
    if is_held(&slots.lock) || is_held(&slots.local_lock) {
        return 0;
    }
    let _ = std::fs::remove_file(&slots.lock);
    let size = std::fs::metadata(&slots.partial).map_or(0, |m| m.len());
    if size == 0 {
        return 0;
    }
    std::fs::remove_file(&slots.partial).map_or(0, |()| size)
}

impl OutputSlots {
    /// The slots of the output `output`, its local lock under `temp_dir`.
    pub fn new(output: &Path, temp_dir: &Path) -> OutputSlots {
        let output = output.to_path_buf();
        let dir = output.parent().unwrap_or(Path::new("."));
        let key = std::fs::canonicalize(dir)
            .unwrap_or_else(|_| dir.to_path_buf())
            .join(output.file_name().unwrap_or_default());
        let local_lock =
            temp_dir.join("locks").join(format!("{:016x}.lock", crate::hash::fnv1a(key.to_string_lossy().as_bytes())));
        OutputSlots {
            partial: sibling(&output, ".", ".drapto-partial"),
            failed: sibling(&output, "", ".failed"),
            lock: sibling(&output, ".", ".drapto-lock"),
            output,
            local_lock,
        }
    }
}

fn sibling(path: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(crate::hash::file_name(prefix, &name, suffix))
}

/// True when `a` and `b` are the same file on disk (paths or hard links).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// One file on disk as it is now: its size and time. Two looks at a path
/// that give the same stamp saw the same, unchanged file. (Not its inode:
/// on some network shares a file's inode number changes while it stays the
/// same file.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    size: u64,
    mtime_ns: i128,
}

impl FileStamp {
    /// The stamp of the file at `path` (links not followed), if one is there.
    pub fn of(path: &Path) -> Option<FileStamp> {
        let m = std::fs::symlink_metadata(path).ok()?;
        let mtime_ns = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
        Some(FileStamp { size: m.len(), mtime_ns })
    }
}

/// What was under the output's name when the rip was taken on (drapto's
/// earlier output, found not valid or made from another rip, or nothing):
/// what the accepted output may replace, and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtOutput(Option<FileStamp>);

impl AtOutput {
    /// What is under `output`'s name now.
    pub fn now(output: &Path) -> AtOutput {
        AtOutput(FileStamp::of(output))
    }
}

/// Whether drapto's output (its `record`, its structure `output`) was
/// remuxed since drapto made it: the record names the segment UID it was
/// written with, and a remux (mkvmerge, to add or take out a track) writes
/// a new one; the record itself survives a remux. Not known for an output
/// whose rip had no segment UID (mkvmerge chose one), nor for one made
/// before the record held it.
fn remuxed_since(record: &SourceRecord, output: &Structure) -> bool {
    record.segment_uid.is_some() && record.segment_uid != output.segment_uid()
}

/// An output kept as valid for a rip other than the one its record names
/// by time (the same path and size: a rip copied, or touched), in
/// `temp_dir/kept/`: the rerun that finds both as they were skips the rip
/// before any analysis, as it does one whose record matches.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Kept {
    rip: JobInfo,
    /// The output as it was then (path, size, time).
    output: Option<JobInfo>,
}

impl Kept {
    fn of(output: &Path, rip: &JobInfo) -> Kept {
        Kept { rip: rip.clone(), output: JobInfo::of(output).ok() }
    }

    fn path(temp_dir: &Path, output: &Path) -> PathBuf {
        let key = std::path::absolute(output).unwrap_or_else(|_| output.to_path_buf());
        temp_dir.join("kept").join(format!("{:016x}.json", crate::hash::fnv1a(key.as_os_str().as_bytes())))
    }

    fn read(temp_dir: &Path, output: &Path) -> Option<Kept> {
        serde_json::from_slice(&std::fs::read(Kept::path(temp_dir, output)).ok()?).ok()
    }

    /// Best effort: without it, the next run analyses the rip again.
    fn write(&self, temp_dir: &Path, output: &Path) {
        let path = Kept::path(temp_dir, output);
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(temp_dir));
        let _ = crate::job::state::write_atomic(&path, self);
    }
}

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

/// How far the lengths of a rip and of an existing output made from
/// another rip may differ for the output to be replaced as this rip's
/// (ripped again: the same title is as long to a frame; another film, even
/// another episode of a series, differs by seconds).
const SAME_FILM_SECONDS: f64 = 1.0;

/// An existing output as one ffprobe sees it.
struct Existing {
    size: u64,
    probe: ffprobe::Probe,
    video_end: Option<f64>,
}

/// The outputs the tracking file `encoded_files` (`rip<TAB>output` lines)
/// names for rips of `input`'s size at other paths now gone: where the
/// encode of a rip that was moved or renamed (its folder renamed, or the
/// file named for a media server: `title_t00.mkv` to `Heat (1995).mkv`)
/// may be, newest first. Which of them is this rip's, its record says.
fn outputs_of_moved(encoded_files: &str, input_sizes: &str, input: &Path, output: &Path, size: u64) -> Vec<PathBuf> {
    // Rips of other sizes are other rips (MakeMKV names many title_t00.mkv;
    // each candidate left costs an ffprobe).
    let tracked = crate::job::tracking::line;
    let sizes: std::collections::HashMap<String, String> = input_sizes.lines().filter_map(tracked).collect();
    let size = size.to_string();
    let lines = encoded_files.lines().rev().filter_map(tracked);
    // (A rip of an unknown size, tracked before sizes were, only under its
    // own name: each candidate costs an ffprobe, and a library whose rips
    // are deleted once encoded has many gone.)
    let named_so = |rip: &str| Path::new(rip).file_name() == input.file_name();
    lines
        .filter(|(rip, _)| sizes.get(rip).map_or_else(|| named_so(rip), |s| *s == size))
        .map(|(rip, out)| (PathBuf::from(rip), PathBuf::from(out)))
        .filter(|(rip, out)| rip != input && out != output)
        .filter(|(rip, out)| out.is_file() && !still_there(rip, sizes.get(&rip.display().to_string())))
        .map(|(_, out)| out)
        .collect()
}

/// Whether the rip tracked at `rip` (of `size` bytes, where tracked) is
/// still there: a file at its path of another size is another rip (the
/// next disc, ripped under the old name of one renamed since).
fn still_there(rip: &Path, size: Option<&String>) -> bool {
    std::fs::metadata(rip).is_ok_and(|m| size.is_none_or(|s| *s == m.len().to_string()))
}

/// What a run does with a rip before it analyses it (as `--dry-run`
/// tells it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Encode it (or resume it).
    Encode,
    /// Validate the output already there: kept if valid, else encoded.
    Check,
    /// Leave it: its output is finished, or it is drapto's own.
    Skip,
    /// Fail it (why is said).
    Fail,
    /// Not now: another drapto has it, or it is still being written.
    NotNow,
}

impl Action {
    /// The word `--dry-run` says.
    pub fn label(self) -> &'static str {
        match self {
            Action::Encode => "encode",
            Action::Check => "check",
            Action::Skip => "skip",
            Action::Fail => "fail",
            Action::NotNow => "not_now",
        }
    }
}

impl Pipeline<'_> {
    /// Moves the finished encode of this very rip (its record names the
    /// same size and time) from where the rip's old path put it, when the
    /// rip was moved or its folder renamed since (a library tidied for a
    /// media server): it was encoded again, and both outputs kept. Only
    /// from below this run's output folder `root`: an encode in another
    /// output folder (another `-o`) is that folder's. Returns where the
    /// output came from.
    pub(super) fn adopt_moved_output(
        &self,
        input: &Path,
        output: &Path,
        root: &Path,
        identity: &JobInfo,
    ) -> Option<PathBuf> {
        let from = self.moved_output(input, output, root, identity)?;
        std::fs::create_dir_all(output.parent()?).ok()?;
        std::fs::rename(&from, output).ok()?;
        // Its report moves with it (in the reports folder, when one is set,
        // the name follows the output's path).
        let dir = self.settings.paths.report_dir.as_deref();
        let report = crate::report::file_report::report_path(dir, &from);
        let _ = std::fs::rename(&report, crate::report::file_report::report_path(dir, output));
        crate::sidecars::move_sidecars(&from, output);
        // Known as this rip's from now on, without an analysis, and found
        // again should it move once more.
        Kept::of(output, identity).write(&self.settings.temp_dir(), output);
        Tracking::in_temp(&self.settings.temp_dir()).record_move(input, output, identity.size);
        let message = format!("its encode moved here from {} (the rip was moved since)", from.display());
        self.events.emit(&Event::Warning { input: Some(input.to_path_buf()), message });
        Some(from)
    }

    /// Where the finished encode of this very rip is, when the rip was
    /// moved or renamed since and none is at `output` yet (see
    /// [`Pipeline::adopt_moved_output`]; for `--dry-run` too).
    pub fn moved_output(&self, input: &Path, output: &Path, root: &Path, identity: &JobInfo) -> Option<PathBuf> {
        if output.exists() {
            return None;
        }
        let tracking = Tracking::in_temp(&self.settings.temp_dir());
        let tracked = tracking.read(File::Encoded)?;
        let sizes = tracking.read(File::InputSizes).unwrap_or_default();
        let same_rip = |r: &SourceRecord| r.source.size == identity.size && r.source.mtime_ns == identity.mtime_ns;
        let root = std::path::absolute(root).ok()?;
        let candidates = outputs_of_moved(&tracked, &sizes, input, output, identity.size);
        candidates.into_iter().filter(|old| old.starts_with(&root)).find(|old| {
            let probe = ffprobe::probe(&self.tools.ffprobe, old, self.cancel).ok();
            probe.and_then(|p| SourceRecord::of_output(&p)).is_some_and(|r| same_rip(&r))
        })
    }

    fn look_at(&self, output: &Path) -> std::result::Result<Existing, String> {
        let size = std::fs::metadata(output).map_err(|e| e.to_string())?.len();
        let (probe, video_end) =
            ffprobe::probe_with_end(&self.tools.ffprobe, output, self.cancel).map_err(|_| "unreadable".to_string())?;
        Ok(Existing { size, probe, video_end })
    }

    /// The file under the output's name, with drapto's record of the rip it
    /// was made from; `None` when none is there. A file drapto did not make
    /// (no record: a user's, another tool's, or one cut short) is an error:
    /// it is never replaced; so is the encode of another rip that is still
    /// there (a rip moved or ripped again under this name is not).
    fn drapto_output(
        &self,
        input: &Path,
        output: &Path,
        identity: &JobInfo,
    ) -> Result<Option<(Existing, SourceRecord)>> {
        if !output.exists() {
            return Ok(None);
        }
        let e = self.look_at(output).ok();
        let Some((e, record)) = e.and_then(|e| SourceRecord::of_output(&e.probe).map(|r| (e, r))) else {
            return Err(Error::NotDrapto { path: input.to_path_buf(), output: output.to_path_buf() });
        };
        // Made from this very rip (its size and time; or known as its own
        // since, see `Kept`), whatever path its record names: an encode
        // moved to a renamed rip names the old path, where the next disc
        // may be ripped.
        let this_rip = (identity.size, identity.mtime_ns) == (record.source.size, record.source.mtime_ns)
            || Kept::read(&self.settings.temp_dir(), output).is_some_and(|k| k == Kept::of(output, identity));
        if this_rip {
            return Ok(Some((e, record)));
        }
        let other = &record.source.input;
        if other.is_file() && !same_file(other, input) {
            let (path, output, other) = (input.to_path_buf(), output.to_path_buf(), other.clone());
            return Err(Error::OutputOfAnotherRip { path, output, other });
        }
        let resized = identity.size != record.source.size;
        if let Some(why) = resized.then(|| self.another_film(identity, &e, &record)).flatten() {
            return Err(Error::OutputOfAnotherFilm { path: input.to_path_buf(), output: output.to_path_buf(), why });
        }
        Ok(Some((e, record)))
    }

    /// How the existing output `e` (with its `record`) shows another film
    /// than the `rip` of another size, when it does: a length more
    /// than [`SAME_FILM_SECONDS`] away (two discs' `title_t00.mkv`, the
    /// first one's rip deleted once encoded), unless the output was made
    /// from a rip cut short that was this long (ripped again whole, as
    /// drapto advised); else another title of the rip (the disc's name, as
    /// MakeMKV writes it: two episodes as long). A rip ripped again is as long, to
    /// a frame, under its disc's title. `None` where nothing tells.
    fn another_film(&self, rip: &JobInfo, e: &Existing, record: &SourceRecord) -> Option<String> {
        let theirs = e.video_end?;
        let (probe, ours) = ffprobe::probe_with_end(&self.tools.ffprobe, &rip.input, self.cancel).ok()?;
        let ours = ours?;
        let other = &record.source.input;
        let made_from = if *other == rip.input {
            "made from an earlier rip under this name".to_string()
        } else {
            format!("made from {}, which is not there now", other.display())
        };
        let whole = record.truncated_from.is_some_and(|claimed| (claimed - ours).abs() <= SAME_FILM_SECONDS);
        if (theirs - ours).abs() > SAME_FILM_SECONDS && !whole {
            return Some(format!("{made_from}, {theirs:.1} s long; this rip is {ours:.1} s"));
        }
        // The rip's title as the record keeps it (the output's may be the
        // user's edit, which drapto keeps); an output of a drapto whose
        // record kept none, by its own title (it is the rip's unless edited).
        let theirs = record.title.clone().or_else(|| ffprobe::title(&e.probe));
        match (theirs, ffprobe::title(&probe)) {
            (Some(a), Some(b)) if a != b => Some(format!("{made_from}, titled \"{a}\"; this rip is titled \"{b}\"")),
            _ => None,
        }
    }

    /// Before the rip is analysed: `Some` reason to skip it when `output`
    /// records being made from `source` with these settings and is whole
    /// (see [`validate::check_finished`]); an error when drapto did not make
    /// the file there (see [`Pipeline::drapto_output`]).
    pub(super) fn finished_before(&self, input: &Path, output: &Path, source: &JobInfo) -> Result<Option<String>> {
        let Some((e, record)) = self.drapto_output(input, output, source)? else { return Ok(None) };
        Ok(self.finished(output, &e, &record, source))
    }

    /// Why drapto's `output` (`e`, with its `record`) is a finished encode
    /// of `source` with these settings, or `None` (see
    /// [`Pipeline::finished_before`]).
    fn finished(&self, output: &Path, e: &Existing, record: &SourceRecord, source: &JobInfo) -> Option<String> {
        // A rip whose time changed since (a library copied without its
        // times), its output validated against it once: known as its own.
        // So is an output validated against this rip once already although
        // made with other settings (outputs are not made again for a
        // setting: every run analysed such a rip again).
        let known = Kept::read(&self.settings.temp_dir(), output).is_some_and(|k| k == Kept::of(output, source));
        let (source, settings) = if known { (&record.source, None) } else { (source, Some(self.settings)) };
        let finished = validate::check_finished(&e.probe, e.size, e.video_end, source, settings).is_ok();
        let with = match record.settings == self.settings.output_fingerprint() {
            true => "with these settings",
            false => "with other settings, and kept as valid",
        };
        finished.then(|| format!("already encoded from this rip {with}: {}", output.display()))
    }

    /// Why rip `job`, found in a library's walk, is not encoded: it is
    /// drapto's own encode (its record says of what), put there in place of
    /// its rip, or in an earlier run's output folder inside the library.
    /// Encoded again, it lost quality for a percent of its size. A file
    /// named alone is encoded (a smaller copy of a finished film).
    pub fn drapto_encode_in_library(&self, job: &crate::discover::Found) -> Option<String> {
        if job.alone {
            return None;
        }
        let probe = ffprobe::probe(&self.tools.ffprobe, &job.input, self.cancel).ok()?;
        let record = SourceRecord::of_output(&probe)?;
        Some(format!(
            "is drapto's encode of {}: not encoded again (name it alone with -i to encode it anew)",
            record.source.input.display()
        ))
    }

    /// What a run would do with the file under `output` before it
    /// analyses the rip `input` (identified as `source`), and why, by the
    /// rules a run follows (see
    /// [`Pipeline::drapto_output`], [`Pipeline::finished_before`] and
    /// [`Pipeline::valid_output`]); for `--dry-run`.
    pub fn verdict_on_existing(&self, input: &Path, output: &Path, source: &JobInfo) -> (Action, String) {
        let out = output.display();
        let (e, record) = match self.drapto_output(input, output, source) {
            Err(e) => return (Action::Fail, e.to_string()),
            Ok(None) => return (Action::Encode, String::new()),
            Ok(Some(found)) => found,
        };
        let finished = self.finished(output, &e, &record, source);
        if let (None, Err(remuxed)) = (&finished, self.not_remuxed(input, output, &record)) {
            return (Action::Fail, remuxed.to_string());
        }
        match finished {
            Some(why) => (Action::Skip, why),
            None if record.source.size == source.size => (
                Action::Check,
                format!(
                    "{out} was made from this rip, and its time, the settings or the output changed since: kept if it is still valid, else encoded again"
                ),
            ),
            None => (
                Action::Encode,
                format!(
                    "{out} was made from another rip of this length ({} bytes; this one has {}: ripped again): encoded again",
                    record.source.size, source.size
                ),
            ),
        }
    }

    /// An error when drapto's `output` (its `record`) was remuxed since it
    /// was made (see [`remuxed_since`]): the user's file now.
    fn not_remuxed(&self, input: &Path, output: &Path, record: &SourceRecord) -> Result<()> {
        let id = self.tools.mkvtoolnix.identify(output, self.cancel);
        match id.map(|id| {
            remuxed_since(
                record,
                &Structure { id, chapters: None, tags: None, info: Default::default(), cut_short: None },
            )
        }) {
            Ok(true) => Err(Error::OutputRemuxed { path: input.to_path_buf(), output: output.to_path_buf() }),
            _ => Ok(()),
        }
    }

    /// Once the output's lock is held: why the output already there is
    /// kept (it is valid), or `None`: none is there, or it is not valid, or
    /// drapto made it from another rip (a rip ripped again: another size),
    /// and it is encoded again, with a warning. A file drapto did not make
    /// is an error (see [`Pipeline::drapto_output`]).
    pub(super) fn valid_output(
        &self,
        input: &Path,
        analysis: &Analysis,
        output: &Path,
        identity: &JobInfo,
    ) -> Result<Option<String>> {
        let Some((_, record)) = self.drapto_output(input, output, identity)? else { return Ok(None) };
        // The user's file now, whatever became of the rip.
        self.not_remuxed(input, output, &record)?;
        if record.source.size != identity.size {
            let (was, is) = (record.source.size, identity.size);
            let what = format!(
                "existing output {} was made from another rip of this length ({was} bytes; this one has {is}: ripped again); encoding again",
                output.display()
            );
            self.events.emit(&Event::Warning { input: Some(input.to_path_buf()), message: what });
            return Ok(None);
        }
        let kept = |reason: String| {
            // Known from now on without an analysis (see `finished_before`).
            let other_settings = record.settings != self.settings.output_fingerprint();
            if record.source != *identity || other_settings {
                Kept::of(output, identity).write(&self.settings.temp_dir(), output);
            }
            Ok(Some(reason))
        };
        let not_valid = |reasons: String| {
            let what = format!("existing output {} is not valid ({reasons}); encoding again", output.display());
            self.events.emit(&Event::Warning { input: Some(input.to_path_buf()), message: what });
            Ok(None)
        };
        let failed = match self.failed_checks(analysis, output) {
            Ok(failed) => failed,
            Err(unreadable) => return not_valid(unreadable),
        };
        if failed.is_empty() {
            // (A plan with other settings was said: the kept file is not it.)
            return kept(match record.settings == self.settings.output_fingerprint() {
                true => format!("valid output already exists: {}", output.display()),
                false => format!(
                    "valid output already exists, made with other settings, and kept: {} (move it away to encode the rip with these)",
                    output.display()
                ),
            });
        }
        let reasons = validate::failures(&failed).join("; ");
        if failed.iter().all(|c| validate::container::EDITABLE.contains(&c.name.as_str())) {
            // Its picture and sound are the rip's: what differs is what a
            // header editor changes, and the user's edits are kept.
            let what = format!(
                "existing output {} differs from the rip only in its title, track names, languages, flags, chapters or tags ({reasons}), as after an edit of the output (or of the rip): kept as it is; move it away to encode the rip again",
                output.display()
            );
            self.events.emit(&Event::Warning { input: Some(input.to_path_buf()), message: what });
            return kept(format!("output already exists, its headers edited: {}", output.display()));
        }
        not_valid(reasons)
    }

    /// The checks the existing `output` fails against the source; `Err`
    /// when it cannot be read. The picture's size and shape are this run's
    /// plan (its crop), not the rip's: an output cropped otherwise (made
    /// with `--no-crop`, or before the crop detection changed) is the rip's
    /// film all the same, and not made again for a setting.
    fn failed_checks(&self, analysis: &Analysis, output: &Path) -> std::result::Result<Vec<Check>, String> {
        let observed = validate::observe(self.tools, analysis, output, self.cancel).map_err(|e| e.to_string())?;
        let planned = |c: &Check| validate::PICTURE_CHECKS.contains(&c.name.as_str());
        // Judged by the captions its mux found in the pictures.
        let fields = analysis.mux.caption_fields_in(&observed.structure);
        let analysis = &Analysis { mux: analysis.mux.with_captions(&fields), ..analysis.clone() };
        Ok(validate::validate(analysis, &observed).into_iter().filter(|c| !c.passed && !planned(c)).collect())
    }

    /// Validates the partial output; renames it to the final name when it
    /// passes, else to the failed name. Returns its video frames, when its
    /// probe counts them (mkvmerge's statistics tag).
    pub(super) fn accept(&self, analysis: &Analysis, slots: &OutputSlots, at: AtOutput) -> Result<Option<u64>> {
        let (input, partial) = (analysis.input.as_path(), slots.partial.as_path());
        let observed = validate::observe(self.tools, analysis, partial, self.cancel).map_err(|e| match e {
            ObserveError::Run(f) => Error::process(input)(f),
            ObserveError::Io(e) => Error::io("read", partial)(e),
            ObserveError::Unreadable(m) => Error::Validation {
                path: input.to_path_buf(),
                failures: vec![format!("output unreadable: {m}")],
                kept: None,
            },
        })?;
        // A stop during the reads cuts them short: what they miss is the
        // stop's doing, not the output's (a good encode was failed, and kept
        // as `.failed` for ever beside its rerun's output).
        if let Some(signal) = self.cancel.signal() {
            return Err(Error::Cancelled { signal });
        }
        let checks = validate::validate(analysis, &observed);
        let failures = validate::failures(&checks);
        self.events.emit(&Event::ValidationComplete {
            input: input.to_path_buf(),
            passed: failures.is_empty(),
            checks,
        });
        if failures.is_empty() {
            // On disk before the work that made it is removed; an earlier
            // run's invalid output, kept for inspection, is obsolete.
            self.put_in_place(input, slots, at)?;
            let _ = std::fs::remove_file(&slots.failed);
            Ok(observed.probe.video_streams().next().and_then(|v| v.frame_count()))
        } else {
            std::fs::rename(partial, &slots.failed).map_err(Error::io("rename", &slots.failed))?;
            Err(Error::Validation { path: input.to_path_buf(), failures, kept: Some(slots.failed.clone()) })
        }
    }

    /// Renames the validated partial output to the final name, replacing
    /// only what was there when the rip was taken on (`at`): a file that
    /// appeared under that name since (hours of encode: a user's copy, a
    /// backup restored) is left as it is, and the encode kept beside it
    /// under the failed name.
    fn put_in_place(&self, input: &Path, slots: &OutputSlots, at: AtOutput) -> Result<()> {
        use crate::job::state::{rename_durably, rename_durably_unless_taken};
        let (partial, output) = (slots.partial.as_path(), slots.output.as_path());
        let placed = match (at.0, FileStamp::of(output)) {
            (Some(then), Some(now)) if then == now => rename_durably(partial, output).map(|()| true)?,
            (_, None) => rename_durably_unless_taken(partial, output)?,
            (_, Some(_)) => false,
        };
        if placed {
            return Ok(());
        }
        std::fs::rename(partial, &slots.failed).map_err(Error::io("rename", &slots.failed))?;
        let (path, output, kept) = (input.to_path_buf(), output.to_path_buf(), slots.failed.clone());
        Err(Error::OutputAppeared { path, output, kept })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_rips_old_output_is_found_from_the_tracking_file() {
        let t = tempfile::tempdir().unwrap();
        let (old_out, other_out) = (t.path().join("out/Heat/heat.mkv"), t.path().join("out/Ran/heat.mkv"));
        for o in [&old_out, &other_out] {
            std::fs::create_dir_all(o.parent().unwrap()).unwrap();
            std::fs::write(o, b"x").unwrap();
        }
        let still_there = t.path().join("lib/Ran/heat.mkv");
        std::fs::create_dir_all(still_there.parent().unwrap()).unwrap();
        std::fs::write(&still_there, b"rip").unwrap();
        let tracked = format!(
            "/lib/Heat/heat.mkv\t{}\n{}\t{}\n/lib/Heat/other.mkv\t{}\n",
            old_out.display(),
            still_there.display(),
            other_out.display(),
            old_out.display()
        );
        let input = t.path().join("lib/Heat (1995)/heat.mkv");
        let output = t.path().join("out/Heat (1995)/heat.mkv");
        // Only the outputs of rips whose paths are gone: of its size,
        // whatever their names (a rip renamed for a media server; its
        // record says which is this one's), newest first; of a size not
        // tracked, of its name.
        assert_eq!(outputs_of_moved(&tracked, "", &input, &output, 5), std::slice::from_ref(&old_out));
        let sizes = "/lib/Heat/heat.mkv\t5\n/lib/Heat/other.mkv\t5\n";
        assert_eq!(outputs_of_moved(&tracked, sizes, &input, &output, 5), [old_out.clone(), old_out.clone()]);
        // And of its size, where the tracking knows it.
        let sizes = "/lib/Heat/heat.mkv\t9\n/lib/Heat/other.mkv\t9\n";
        assert!(outputs_of_moved(&tracked, sizes, &input, &output, 5).is_empty());
        assert_eq!(
            outputs_of_moved(&tracked, "/lib/Heat/heat.mkv\t5\n/lib/Heat/other.mkv\t9\n", &input, &output, 5),
            [old_out]
        );
    }

    #[test]
    fn temporary_names_never_end_in_mkv() {
        let s = OutputSlots::new(Path::new("/o/My Film.mkv"), Path::new("/t"));
        assert_eq!(s.output, Path::new("/o/My Film.mkv"));
        assert_eq!(s.partial, Path::new("/o/.My Film.mkv.drapto-partial"));
        assert_eq!(s.failed, Path::new("/o/My Film.mkv.failed"));
        assert_eq!(s.lock, Path::new("/o/.My Film.mkv.drapto-lock"));
        assert!(s.local_lock.starts_with("/t/locks") && s.local_lock.extension().is_some_and(|e| e == "lock"));
    }

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
