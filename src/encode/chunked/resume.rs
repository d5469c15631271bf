//! The chunked path's state on disk, so that an interrupted encode resumes
//! where it stopped: `segments.json` (how the video was cut),
//! `encoding.json` (each segment's status, its result once finished, its
//! survey) and `progress.json` (totals), in the job's `state/` folder.
//! [`ResumeState`] owns them: it reads what an earlier run left, keeps
//! every finished segment that still verifies, and writes each change
//! before anyone is told of it.

use super::layout::{Layout, Segment};
use super::records::{SegmentResult, Survey};
use crate::error::{Error, ProcessFailure, Result};
use crate::job::WorkDir;
use crate::job::state::{self, LoadError, STATE_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// segments.json: how the video was cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentsFile {
    pub version: u32,
    /// Hash of everything that decides the segments' content; a mismatch
    /// means the state is from a different plan and is not reused.
    pub fingerprint: String,
    pub created_at: String,
    pub updated_at: String,
    pub segments: Vec<SegmentEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentEntry {
    pub index: usize,
    pub path: String,
    pub start_frame: usize,
    pub end_frame: usize,
    pub start_time: f64,
    pub duration: f64,
}

/// encoding.json: per-segment status, results and surveys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodingFile {
    pub version: u32,
    pub fingerprint: String,
    pub created_at: String,
    pub updated_at: String,
    pub total_attempts: u32,
    pub failed_segments: u32,
    pub max_attempts: u32,
    pub segments: BTreeMap<String, SegmentState>,
}

/// Where a segment stands (written as "pending", "encoding", "completed"
/// or "failed", the design's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SegmentStatus {
    #[default]
    Pending,
    Encoding,
    Completed,
    Failed,
}

/// One segment's state: its status, and its result once it has one (the
/// result's fields written alongside, as a worker writes them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SegmentState {
    pub status: SegmentStatus,
    pub attempts: u32,
    pub last_attempt: Option<String>,
    pub error: Option<String>,
    #[serde(flatten)]
    pub result: Option<SegmentResult>,
    /// What the slope allocation's survey measured of it (kept so that a
    /// resumed job does not survey it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey: Option<Survey>,
}

/// progress.json: totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressFile {
    pub version: u32,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub total_progress: f64,
    pub segments_completed: usize,
    pub segments_failed: usize,
    pub current_segment: Option<usize>,
    pub total_segments: usize,
}

/// The state files of one chunked encode, and what they say.
#[derive(Debug)]
pub struct ResumeState {
    encoding_file: PathBuf,
    progress_file: PathBuf,
    encoded_dir: PathBuf,
    created: String,
    encoding: EncodingFile,
    /// Finished segments (an earlier run's that verified, and this run's).
    pub results: BTreeMap<usize, SegmentResult>,
}

/// How one segment ended, for the record.
pub enum Ended<'a> {
    Done(&'a SegmentResult),
    /// Stopped by a signal: still to do.
    Cancelled,
    Failed(&'a Error),
}

impl ResumeState {
    /// Opens the state of `work` for a plan with `fingerprint` and
    /// `layout`: an earlier run's state of the same plan is read (else it
    /// is started afresh, `warn` saying why when there was one), every
    /// completed segment whose file `verify` accepts (path, frames) is
    /// kept, and segments.json is written. An error of `verify` (a stop
    /// while it checks) leaves the state as it was.
    pub fn open(
        work: &WorkDir,
        fingerprint: &str,
        layout: &Layout,
        verify: &dyn Fn(&Path, usize) -> Result<bool>,
        warn: &dyn Fn(String),
    ) -> Result<ResumeState> {
        let state_dir = work.state_dir();
        let encoded_dir = work.encoded_dir();
        for d in [&state_dir, &encoded_dir] {
            std::fs::create_dir_all(d).map_err(Error::io("create folder", d))?;
        }
        let created = state::now();
        let encoding_file = state_dir.join("encoding.json");
        let encoding = state::load::<EncodingFile>(&encoding_file, fingerprint).unwrap_or_else(|why| {
            if !matches!(why, LoadError::Missing) {
                warn(format!("earlier state not used ({why}); starting the video afresh"));
            }
            EncodingFile::new(fingerprint, &created)
        });
        let mut s = ResumeState {
            encoding_file,
            progress_file: state_dir.join("progress.json"),
            encoded_dir,
            created,
            encoding,
            results: BTreeMap::new(),
        };
        s.keep_verified(&layout.segments, verify)?;
        let surveyed = s.surveyed().len();
        if !s.results.is_empty() || surveyed > 0 {
            warn(format!(
                "resuming: {} of {} segments already encoded and verified{}",
                s.results.len(),
                layout.segments.len(),
                if surveyed == 0 { String::new() } else { format!(", {surveyed} surveyed") }
            ));
        }
        let segments_file = SegmentsFile::of(fingerprint, &s.created, layout);
        state::write_atomic(&state_dir.join("segments.json"), &segments_file)?;
        // What is kept, written now: another plan's state must not outlive
        // this run's first segment (a rerun with that plan would trust it).
        s.save()?;
        Ok(s)
    }

    /// Keeps the completed segments that still verify, and the surveys of
    /// the others; forgets everything else (in memory: nothing is written).
    fn keep_verified(&mut self, segs: &[Segment], verify: &dyn Fn(&Path, usize) -> Result<bool>) -> Result<()> {
        for s in segs {
            let Some(st) = self.encoding.segments.get(&s.index.to_string()) else { continue };
            let path = self.segment_path(s);
            let Some(r) = st.result.as_ref().filter(|_| st.status == SegmentStatus::Completed) else { continue };
            if std::fs::metadata(&path).is_ok_and(|m| m.len() >= 1024) && verify(&path, s.frames())? {
                let r = SegmentResult { index: s.index, path, frames: s.frames(), reused: true, ..r.clone() };
                self.results.insert(s.index, r);
            }
        }
        let results = &self.results;
        self.encoding.segments.retain(|k, st| match k.parse::<usize>() {
            Ok(i) if results.contains_key(&i) => true,
            Ok(i) if i < segs.len() && st.survey.is_some() => {
                *st = SegmentState { survey: st.survey.take(), ..Default::default() };
                true
            }
            _ => false,
        });
        Ok(())
    }

    /// Where segment `s`'s encode is kept.
    pub fn segment_path(&self, s: &Segment) -> PathBuf {
        segment_file(&self.encoded_dir, s)
    }

    /// The folder the segments' encodes are kept in.
    pub fn encoded_dir(&self) -> &Path {
        &self.encoded_dir
    }

    /// The surveys an earlier run made of segments not finished.
    pub fn surveyed(&self) -> BTreeMap<usize, Survey> {
        self.encoding
            .segments
            .iter()
            .filter_map(|(k, st)| Some((k.parse().ok()?, st.survey.clone()?)))
            .filter(|(i, _)| !self.results.contains_key(i))
            .collect()
    }

    /// Records segment `index`'s survey.
    pub fn record_survey(&mut self, index: usize, survey: &Survey) -> Result<()> {
        self.encoding.segments.entry(index.to_string()).or_default().survey = Some(survey.clone());
        self.save()
    }

    /// Records how segment `index` ended, and writes it down.
    pub fn record(&mut self, index: usize, ended: Ended) -> Result<()> {
        let e = &mut self.encoding;
        let entry = e.segments.entry(index.to_string()).or_default();
        entry.attempts += 1;
        entry.last_attempt = Some(state::now());
        e.total_attempts += 1;
        match ended {
            Ended::Done(res) => {
                entry.status = SegmentStatus::Completed;
                entry.error = None;
                entry.result = Some(res.clone());
                self.results.insert(index, res.clone());
            }
            Ended::Cancelled => entry.status = SegmentStatus::Pending,
            Ended::Failed(err) => {
                entry.status = SegmentStatus::Failed;
                entry.error = Some(err.to_string());
                e.failed_segments += 1;
            }
        }
        self.save()
    }

    fn save(&mut self) -> Result<()> {
        self.encoding.updated_at = state::now();
        state::write_atomic(&self.encoding_file, &self.encoding)
    }

    /// Writes progress.json: `shown` of the stage done, `next` the
    /// segment that starts next.
    pub fn write_progress(&self, shown: f64, next: Option<usize>, total: usize) -> Result<()> {
        let p = ProgressFile {
            version: STATE_VERSION,
            status: "encoding".into(),
            created_at: self.created.clone(),
            updated_at: state::now(),
            total_progress: shown * 100.0,
            segments_completed: self.results.len(),
            segments_failed: self.encoding.failed_segments as usize,
            current_segment: next,
            total_segments: total,
        };
        state::write_atomic(&self.progress_file, &p)
    }

    /// Every segment's result in order, when all `total` are finished.
    pub fn into_results(self, total: usize, input: &Path) -> Result<Vec<SegmentResult>> {
        if self.results.len() != total {
            return Err(Error::Internal {
                path: input.to_path_buf(),
                problem: format!("only {} of {total} segments were encoded", self.results.len()),
            });
        }
        Ok(self.results.into_values().collect())
    }
}

impl EncodingFile {
    fn new(fingerprint: &str, created: &str) -> EncodingFile {
        EncodingFile {
            version: STATE_VERSION,
            fingerprint: fingerprint.into(),
            created_at: created.into(),
            updated_at: created.into(),
            total_attempts: 0,
            failed_segments: 0,
            max_attempts: super::TIERS.len() as u32,
            segments: BTreeMap::new(),
        }
    }
}

impl SegmentsFile {
    fn of(fingerprint: &str, created: &str, layout: &Layout) -> SegmentsFile {
        let tl = &layout.output;
        SegmentsFile {
            version: STATE_VERSION,
            fingerprint: fingerprint.into(),
            created_at: created.into(),
            updated_at: state::now(),
            segments: layout
                .segments
                .iter()
                .map(|s| SegmentEntry {
                    index: s.index,
                    path: format!("encoded/{:04}.mkv", s.index + 1),
                    start_frame: s.start,
                    end_frame: s.end,
                    start_time: tl.pts[s.start],
                    duration: s.frames() as f64 * tl.frame_duration(),
                })
                .collect(),
        }
    }
}

/// The segments of `work`'s chunked encode and their results, when its
/// state says every one was finished (`None` when it does not, or its two
/// files are not of one plan): what a run that reuses the assembled video
/// reports of it.
pub fn finished_segments(work: &WorkDir) -> Option<Vec<(Segment, SegmentResult)>> {
    let dir = work.state_dir();
    let text = std::fs::read(dir.join("segments.json")).ok()?;
    let cut: SegmentsFile = serde_json::from_slice(&text).ok()?;
    let encoding: EncodingFile = state::load(&dir.join("encoding.json"), &cut.fingerprint).ok()?;
    cut.segments
        .iter()
        .map(|e| {
            let st = encoding.segments.get(&e.index.to_string())?;
            let r = st.result.as_ref().filter(|_| st.status == SegmentStatus::Completed)?;
            let seg = Segment { index: e.index, start: e.start_frame, end: e.end_frame };
            Some((seg, SegmentResult { index: e.index, frames: seg.frames(), reused: true, ..r.clone() }))
        })
        .collect()
}

/// Where segment `s`'s encode is kept in the folder `encoded`.
pub fn segment_file(encoded: &Path, s: &Segment) -> PathBuf {
    encoded.join(format!("{:04}.mkv", s.index + 1))
}

/// A failure as the state records it: a stop request leaves the segment to
/// do.
pub fn ended(r: &std::result::Result<SegmentResult, Error>) -> Ended<'_> {
    match r {
        Ok(res) => Ended::Done(res),
        Err(Error::Cancelled { .. }) => Ended::Cancelled,
        Err(e) => Ended::Failed(e),
    }
}

/// A process failure as drapto's error for `input`.
pub fn as_error(
    input: &Path,
    r: std::result::Result<SegmentResult, ProcessFailure>,
) -> std::result::Result<SegmentResult, Error> {
    r.map_err(Error::process(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// encoding.json as the previous layout wrote it: a completed entry
    /// with the result's fields inline, a pending one with nulls, a
    /// surveyed one.
    const OLD: &str = r#"{"version":1,"fingerprint":"f","created_at":"","updated_at":"","total_attempts":2,
        "failed_segments":0,"max_attempts":3,"segments":{
        "0":{"status":"completed","attempts":1,"last_attempt":null,"error":null,"index":0,"path":"/w/encoded/0001.mkv",
             "frames":48,"crf":27.25,"tier":1,"predicted_vmaf":93.1,"prediction":"model","measured_vmaf":93.4,
             "bytes":5000,"seconds":2.5,"probes":[{"tier":1,"crf":27.25,"score":93.1,"bytes":900,"seconds":0.4}],
             "reused":false,"below_target":false},
        "1":{"status":"pending","attempts":0,"last_attempt":null,"error":null,"crf":null,"tier":null,
             "predicted_vmaf":null,"measured_vmaf":null,"bytes":null,"frames":null,"seconds":null,"probes":[]},
        "2":{"status":"pending","attempts":0,"last_attempt":null,"error":null,
             "survey":{"sample_frames":24,"probes":[{"tier":1,"crf":30.0,"score":92.0,"bytes":800,"seconds":0.3}]}}}}"#;

    #[test]
    fn results_are_read_from_the_state_and_written_back_alike() {
        let e: EncodingFile = serde_json::from_str(OLD).unwrap();
        let done = e.segments["0"].result.as_ref().expect("a completed entry has its result");
        assert_eq!((done.crf, done.frames, done.probes.len()), (27.25, 48, 1));
        assert!(e.segments["1"].result.is_none(), "a pending entry has none");
        assert!(e.segments["2"].result.is_none() && e.segments["2"].survey.is_some());
        let again: EncodingFile = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(again, e);
    }
}
