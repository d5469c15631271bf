//! The job's state files (segments.json, encoding.json, progress.json):
//! versioned, written atomically (temporary file, fsync, rename), and read
//! back only when they are whole and belong to this job.

use crate::error::{Error, Result};
use crate::events::PredictionSource;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Layout version of the state files; others are not trusted.
pub const STATE_VERSION: u32 = 1;

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

/// encoding.json: per-segment status and the search records.
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

/// One segment's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SegmentState {
    pub status: SegmentStatus,
    pub attempts: u32,
    pub last_attempt: Option<String>,
    pub error: Option<String>,
    pub crf: Option<f64>,
    pub tier: Option<usize>,
    pub predicted_vmaf: Option<f64>,
    /// How `predicted_vmaf` is known.
    #[serde(default)]
    pub prediction: PredictionSource,
    pub measured_vmaf: Option<f64>,
    pub bytes: Option<u64>,
    pub frames: Option<usize>,
    pub seconds: Option<f64>,
    #[serde(default)]
    pub probes: Vec<ProbeRecord>,
    /// The host that encoded it (distributed runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// What the slope allocation's survey measured of it (kept so that a
    /// resumed job does not survey it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey: Option<SurveyRecord>,
}

/// A segment's survey: its probes and the frames they encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurveyRecord {
    pub sample_frames: usize,
    pub probes: Vec<ProbeRecord>,
}

/// One probe of the CRF search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRecord {
    pub tier: usize,
    pub crf: f64,
    pub score: f64,
    pub bytes: u64,
    pub seconds: f64,
}

/// stages.json: the whole-file steps of a job that are finished ("video",
/// "audio-0", …), so a rerun of the standard path resumes after them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagesFile {
    pub version: u32,
    pub fingerprint: String,
    pub updated_at: String,
    pub done: std::collections::BTreeSet<String>,
}

impl StagesFile {
    pub fn new(fingerprint: &str) -> StagesFile {
        StagesFile {
            version: STATE_VERSION,
            fingerprint: fingerprint.to_string(),
            updated_at: now(),
            done: Default::default(),
        }
    }
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

/// Now, RFC 3339 UTC.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Writes `value` as JSON to `path` atomically: a crash leaves either the old
/// file or the new one, never a mix.
pub fn write_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    // A temporary name of this writer's own: two drapto processes (or two
    // threads) writing the same file must not rename each other's.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("json.{}.{n}.tmp", std::process::id()));
    let text = serde_json::to_vec_pretty(value).expect("state serializes");
    let mut f = std::fs::File::create(&tmp).map_err(Error::io("write", &tmp))?;
    f.write_all(&text).map_err(Error::io("write", &tmp))?;
    f.sync_all().map_err(Error::io("sync", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(Error::io("rename", path))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Why a state file was not used.
#[derive(Debug, PartialEq)]
pub enum LoadError {
    Missing,
    /// Unreadable, truncated, not JSON, or not this layout.
    Corrupt(String),
    /// Another version or another plan.
    Foreign(String),
}

/// Reads a state file that must carry `version` and `fingerprint`.
pub fn load<T: DeserializeOwned>(path: &Path, fingerprint: &str) -> std::result::Result<T, LoadError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadError::Missing),
        Err(e) => return Err(LoadError::Corrupt(e.to_string())),
    };
    let raw: serde_json::Value = serde_json::from_slice(&text).map_err(|e| LoadError::Corrupt(e.to_string()))?;
    match raw.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(STATE_VERSION) => {}
        other => return Err(LoadError::Foreign(format!("state version {other:?}, expected {STATE_VERSION}"))),
    }
    if raw.get("fingerprint").and_then(|f| f.as_str()) != Some(fingerprint) {
        return Err(LoadError::Foreign("state belongs to a different plan".into()));
    }
    serde_json::from_value(raw).map_err(|e| LoadError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoding(fp: &str) -> EncodingFile {
        EncodingFile {
            version: STATE_VERSION,
            fingerprint: fp.into(),
            created_at: now(),
            updated_at: now(),
            total_attempts: 1,
            failed_segments: 0,
            max_attempts: 3,
            segments: BTreeMap::from([(
                "0".into(),
                SegmentState { status: SegmentStatus::Completed, attempts: 1, crf: Some(27.25), ..Default::default() },
            )]),
        }
    }

    #[test]
    fn writers_of_one_file_at_once_never_trip_over_each_other() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("job.json");
        std::thread::scope(|s| {
            let writers: Vec<_> =
                (0..8).map(|_| s.spawn(|| (0..50).all(|_| write_atomic(&p, &encoding("abc")).is_ok()))).collect();
            assert!(writers.into_iter().all(|w| w.join().unwrap()), "every write lands");
        });
        let _: EncodingFile = load(&p, "abc").unwrap();
    }

    #[test]
    fn round_trip_and_atomic_replace() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("encoding.json");
        write_atomic(&p, &encoding("abc")).unwrap();
        let back: EncodingFile = load(&p, "abc").unwrap();
        assert_eq!(back, encoding("abc").clone_with_times(&back));
        let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("encoding.json")], "no temporary file left");
    }

    impl EncodingFile {
        fn clone_with_times(mut self, other: &EncodingFile) -> EncodingFile {
            self.created_at = other.created_at.clone();
            self.updated_at = other.updated_at.clone();
            self
        }
    }

    #[test]
    fn corrupt_truncated_and_foreign_files_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("encoding.json");
        assert_eq!(load::<EncodingFile>(&p, "abc"), Err(LoadError::Missing));
        write_atomic(&p, &encoding("abc")).unwrap();
        assert!(matches!(load::<EncodingFile>(&p, "xyz"), Err(LoadError::Foreign(_))));
        let text = std::fs::read(&p).unwrap();
        std::fs::write(&p, &text[..text.len() / 2]).unwrap();
        assert!(matches!(load::<EncodingFile>(&p, "abc"), Err(LoadError::Corrupt(_))));
        std::fs::write(&p, b"{\"version\": 99}").unwrap();
        assert!(matches!(load::<EncodingFile>(&p, "abc"), Err(LoadError::Foreign(_))));
        std::fs::write(&p, b"\x00\xff garbage").unwrap();
        assert!(matches!(load::<EncodingFile>(&p, "abc"), Err(LoadError::Corrupt(_))));
    }
}
