//! The work folder of one input: `<temp_dir>/jobs/<stem>-<id>/` with the
//! design's layout but for its logs (state/, segments/, encoded/, working/): the run
//! logs hold every command.

use crate::error::{Error, Result};
use crate::hash::fnv1a;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// The file in a work folder that keeps the time earlier runs spent on it.
const TIME_FILE: &str = "time.json";
/// The folders of a work folder that hold work: the state files, segments,
/// encoded results and intermediate files.
const SUBDIRS: [&str; 4] = [STATE, "segments", ENCODED, WORKING];
const STATE: &str = "state";
const ENCODED: &str = "encoded";
const WORKING: &str = "working";

/// A job's work folder. Created on demand, removed on success.
#[derive(Debug, Clone)]
pub struct WorkDir {
    root: PathBuf,
    /// The input, its size and modification time (nanoseconds).
    identity: JobInfo,
}

/// `job.json`: which input a work folder belongs to, so `drapto clean`
/// can tell abandoned folders (input gone or changed) from live ones.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobInfo {
    pub input: PathBuf,
    pub size: u64,
    pub mtime_ns: u128,
}

impl JobInfo {
    /// The identity of the file at `input` now.
    pub fn of(input: &Path) -> Result<JobInfo> {
        let abs = std::fs::canonicalize(input).map_err(Error::io("resolve", input))?;
        let meta = std::fs::metadata(&abs).map_err(Error::io("read", input))?;
        let mtime_ns = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
        Ok(JobInfo { input: abs, size: meta.len(), mtime_ns })
    }

    /// True when the input still exists unchanged.
    pub fn is_current(&self) -> bool {
        JobInfo::of(&self.input).is_ok_and(|now| &now == self)
    }
}

impl WorkDir {
    /// The stable folder for `input`: the same input (path, size, mtime)
    /// always maps to the same folder, so a rerun finds earlier work.
    pub fn for_input(temp_dir: &Path, input: &Path) -> Result<WorkDir> {
        Ok(WorkDir::for_identity(temp_dir, JobInfo::of(input)?))
    }

    /// The folder of the input whose identity is `identity`.
    pub fn for_identity(temp_dir: &Path, identity: JobInfo) -> WorkDir {
        let id = fnv1a(format!("{}\0{}\0{}", identity.input.display(), identity.size, identity.mtime_ns).as_bytes());
        let stem: String = identity
            .input
            .file_stem()
            .map(|s| {
                s.to_string_lossy().chars().filter(|c| c.is_alphanumeric() || "-_.".contains(*c)).take(40).collect()
            })
            .unwrap_or_default();
        WorkDir { root: temp_dir.join("jobs").join(format!("{stem}-{id:016x}")), identity }
    }

    /// Creates the folder, its layout and `job.json`.
    pub fn create(&self) -> Result<()> {
        for sub in SUBDIRS {
            let p = self.root.join(sub);
            std::fs::create_dir_all(&p).map_err(Error::io("create folder", &p))?;
        }
        super::state::write_atomic(&self.root.join("job.json"), &self.identity)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The lock a drapto working in the folder holds (see
    /// [`super::lock::acquire`]).
    pub fn lock_path(&self) -> PathBuf {
        Self::lock_at(&self.root)
    }

    /// The lock of the work folder at `root` (for those that list folders
    /// without their identity, as `drapto clean` does).
    pub fn lock_at(root: &Path) -> PathBuf {
        root.join("lock")
    }

    /// The input's identity when the folder was named.
    pub fn identity(&self) -> &JobInfo {
        &self.identity
    }

    /// Where intermediate tracks are written.
    pub fn working(&self, name: &str) -> PathBuf {
        self.working_dir().join(name)
    }

    /// The folder of intermediate files.
    pub fn working_dir(&self) -> PathBuf {
        self.root.join(WORKING)
    }

    /// The folder of the state files (what a rerun resumes from).
    pub fn state_dir(&self) -> PathBuf {
        Self::state_dir_at(&self.root)
    }

    /// The state folder of the work folder at `root` (for those that list
    /// folders without their identity, as `drapto clean` does).
    pub fn state_dir_at(root: &Path) -> PathBuf {
        root.join(STATE)
    }

    /// The standard path's record of its finished steps.
    pub fn stages_file(&self) -> PathBuf {
        self.state_dir().join("stages.json")
    }

    /// The chunked path's scene cuts, kept for a resume.
    pub fn scene_cuts_file(&self) -> PathBuf {
        self.state_dir().join("scene-cuts.json")
    }

    /// Where the chunked path's finished segments are kept.
    pub fn encoded_dir(&self) -> PathBuf {
        self.root.join(ENCODED)
    }

    /// Seconds earlier runs spent on this job, as the last that stopped or
    /// failed with work left recorded them (0 when none did).
    pub fn earlier_seconds(&self) -> f64 {
        let read = || -> Option<f64> {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(self.root.join(TIME_FILE)).ok()?).ok()?;
            v.get("seconds")?.as_f64().filter(|s| s.is_finite() && *s >= 0.0)
        };
        read().unwrap_or(0.0)
    }

    /// Records `seconds` as all the time runs spent on this job so far,
    /// where it holds work a rerun resumes (best effort: a file's time is a
    /// report, not the work). A resumed file's time was its last run's
    /// alone, and its speed that much higher.
    pub fn record_seconds(&self, seconds: f64) {
        if Self::holds_work(&self.root) {
            let _ = super::state::write_atomic(&self.root.join(TIME_FILE), &serde_json::json!({ "seconds": seconds }));
        }
    }

    /// Removes everything.
    pub fn remove(&self) -> Result<()> {
        if !self.root.exists() {
            return Ok(());
        }
        std::fs::remove_dir_all(&self.root).map_err(Error::io("remove", &self.root))
    }

    /// Removes the folder when it holds no work (nothing in its state,
    /// segments, encoded or working folders: a run refused before it
    /// began), which `drapto clean` would otherwise list as resumable.
    /// Only for the holder of its lock, or where no drapto works in it.
    pub fn remove_if_unused(&self) {
        if !Self::holds_work(&self.root) {
            let _ = self.remove();
        }
    }

    /// Whether the work folder at `root` holds any work: a file in its
    /// state, segments, encoded or working folders.
    pub fn holds_work(root: &Path) -> bool {
        let holds = |dir: &Path| super::space::used_bytes(dir) > 0 || has_files(dir);
        SUBDIRS.iter().any(|sub| holds(&root.join(sub)))
    }
}

/// Whether any file lies below `dir` (empty ones count).
fn has_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| match e.file_type() {
        Ok(t) if t.is_dir() => has_files(&e.path()),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_stable_and_depends_on_content_identity() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("My Film (2001).mkv");
        std::fs::write(&f, b"abc").unwrap();
        let a = WorkDir::for_input(Path::new("/t"), &f).unwrap();
        let b = WorkDir::for_input(Path::new("/t"), &f).unwrap();
        assert_eq!(a.root(), b.root());
        assert!(a.root().to_string_lossy().contains("MyFilm2001-"));
        std::fs::write(&f, b"abcd").unwrap();
        let c = WorkDir::for_input(Path::new("/t"), &f).unwrap();
        assert_ne!(a.root(), c.root());
    }

    #[test]
    fn remove_takes_everything() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.mkv");
        std::fs::write(&f, b"abc").unwrap();
        let w = WorkDir::for_input(dir.path(), &f).unwrap();
        w.create().unwrap();
        std::fs::write(w.working("video.mkv"), b"v").unwrap();
        w.remove().unwrap();
        assert!(!w.root().exists());
    }

    #[test]
    fn fnv_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
    }
}
