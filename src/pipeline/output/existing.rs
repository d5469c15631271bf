//! An output already under the final name (or moved away with its rip):
//! whose it is (its record of the rip it was made from), whether it is
//! finished and valid, whether it was remuxed since, and what a run does
//! with the rip therefore.

use super::{Action, same_file};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::job::JobInfo;
use crate::job::record::SourceRecord;
use crate::job::tracking::{File, Tracking};
use crate::matroska::structure::Structure;
use crate::pipeline::Pipeline;
use crate::tools::ffprobe;
use crate::validate;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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
pub(super) struct Kept {
    rip: JobInfo,
    /// The output as it was then (path, size, time).
    output: Option<JobInfo>,
}

/// How far the lengths of a rip and of an existing output made from
/// another rip may differ for the output to be replaced as this rip's
/// (ripped again: the same title is as long to a frame; another film, even
/// another episode of a series, differs by seconds).
const SAME_FILM_SECONDS: f64 = 1.0;

/// An existing output as one ffprobe sees it.
pub(super) struct Existing {
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

impl Kept {
    pub(super) fn of(output: &Path, rip: &JobInfo) -> Kept {
        Kept { rip: rip.clone(), output: JobInfo::of(output).ok() }
    }

    pub(super) fn path(temp_dir: &Path, output: &Path) -> PathBuf {
        let key = std::path::absolute(output).unwrap_or_else(|_| output.to_path_buf());
        temp_dir.join("kept").join(format!("{:016x}.json", crate::hash::fnv1a(key.as_os_str().as_bytes())))
    }

    pub(super) fn read(temp_dir: &Path, output: &Path) -> Option<Kept> {
        serde_json::from_slice(&std::fs::read(Kept::path(temp_dir, output)).ok()?).ok()
    }

    /// Best effort: without it, the next run analyses the rip again.
    pub(super) fn write(&self, temp_dir: &Path, output: &Path) {
        let path = Kept::path(temp_dir, output);
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(temp_dir));
        let _ = crate::job::state::write_atomic(&path, self);
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
    pub(in crate::pipeline) fn adopt_moved_output(
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
    pub(super) fn drapto_output(
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
    pub(in crate::pipeline) fn finished_before(
        &self,
        input: &Path,
        output: &Path,
        source: &JobInfo,
    ) -> Result<Option<String>> {
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
    pub(super) fn not_remuxed(&self, input: &Path, output: &Path, record: &SourceRecord) -> Result<()> {
        let id = self.tools.mkvtoolnix.identify(output, self.cancel);
        match id.map(|id| {
            remuxed_since(
                record,
                &Structure {
                    id,
                    chapters: None,
                    tags: None,
                    info: Default::default(),
                    cut_short: None,
                    unreadable: vec![],
                },
            )
        }) {
            Ok(true) => Err(Error::OutputRemuxed { path: input.to_path_buf(), output: output.to_path_buf() }),
            _ => Ok(()),
        }
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
}
