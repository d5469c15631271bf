//! The output's own record of the rip it was made from: a global Matroska
//! tag ([`TAG`]) written at the mux, holding the rip's identity (path, size,
//! modification time), a fingerprint of the settings that shape the output
//! and where its video ends. A rerun over a library reads it (an ffprobe of
//! the output and a read of its last seconds) and skips a finished file
//! without analysing the rip again.

use crate::config::Settings;
use crate::job::JobInfo;
use crate::tools::ffprobe::Probe;
use serde::{Deserialize, Serialize};

/// The tag's name.
pub use crate::matroska::rules::SOURCE_RECORD_TAG as TAG;
/// The record's layout.
pub const RECORD_VERSION: u32 = 1;

/// What an output was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub version: u32,
    pub source: JobInfo,
    /// [`Settings::output_fingerprint`] of the run that made it.
    pub settings: String,
    /// Where the output's video ends (seconds): a cut-off output ends earlier.
    pub video_end: f64,
    /// The segment UID the output was written with (the rip's, which it
    /// keeps), when the rip has one: a remux since writes a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_uid: Option<String>,
    /// How long the rip said it was, when it was cut short and encoded as
    /// it was (`--allow-truncated`): the whole rip, ripped again as drapto
    /// advised, is this long (see `Pipeline::drapto_output`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_from: Option<f64>,
    /// The rip's title (the disc's name, as MakeMKV writes it), when it had
    /// one: the output's own may be the user's edit since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl SourceRecord {
    pub fn new(source: JobInfo, settings: &Settings, video_end: f64, segment_uid: Option<String>) -> SourceRecord {
        let settings = settings.output_fingerprint();
        SourceRecord {
            version: RECORD_VERSION,
            source,
            settings,
            video_end,
            segment_uid,
            truncated_from: None,
            title: None,
        }
    }

    /// The tag's value.
    pub fn to_tag(&self) -> String {
        serde_json::to_string(self).expect("a record serializes")
    }

    /// The record in a probed output's tags, if it has one.
    pub fn of_output(output: &Probe) -> Option<SourceRecord> {
        let value = output.format.tags.iter().find(|(k, _)| k.eq_ignore_ascii_case(TAG))?.1;
        serde_json::from_str(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_from_the_output_tag() {
        let source = JobInfo { input: "/rips/film.mkv".into(), size: 123, mtime_ns: 1_700_000_000_123_456_789 };
        let r = SourceRecord::new(source, &Settings::default(), 10.0, Some("0a1b".into()));
        let tag = serde_json::to_string(&r.to_tag()).unwrap();
        let out = Probe::from_json(&format!(r#"{{"format": {{"tags": {{"DRAPTO_SOURCE": {tag}}}}}, "streams": []}}"#))
            .unwrap();
        assert_eq!(SourceRecord::of_output(&out), Some(r));
    }
}
