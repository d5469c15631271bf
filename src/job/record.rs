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
pub const TAG: &str = "DRAPTO_SOURCE";
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
}

impl SourceRecord {
    pub fn new(source: JobInfo, settings: &Settings, video_end: f64) -> SourceRecord {
        SourceRecord { version: RECORD_VERSION, source, settings: settings.output_fingerprint(), video_end }
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

/// Whether `output` (probed, `size` bytes, its video ending at `video_end`
/// as read from its last packets) is a finished encode of the rip `source`
/// with `settings`: its record matches, its video ends where the record
/// says, and the container holds what drapto writes (one AV1 video stream,
/// Opus audio only, a duration). `Err` says why not.
pub fn check_finished(
    output: &Probe,
    size: u64,
    video_end: Option<f64>,
    source: &JobInfo,
    settings: &Settings,
) -> Result<(), String> {
    let r = SourceRecord::of_output(output).ok_or("it has no record of its source")?;
    if &r.source != source {
        return Err("it was made from another rip, or this one changed".into());
    }
    if r.settings != settings.output_fingerprint() {
        return Err("it was made with other settings".into());
    }
    if !video_end.is_some_and(|e| (e - r.video_end).abs() <= crate::validate::DURATION_TOLERANCE) {
        return Err(format!("its video ends at {video_end:?} s, not at {:.3} s (cut off)", r.video_end));
    }
    let videos: Vec<_> = output.video_streams().collect();
    if size < crate::validate::MIN_OUTPUT_BYTES || videos.len() != 1 || videos[0].codec_name != "av1" {
        return Err("its video is not one AV1 stream".into());
    }
    if output.of_type("audio").any(|a| a.codec_name != "opus") {
        return Err("not all of its audio is Opus".into());
    }
    if !output.duration().is_some_and(|d| d > 0.0) {
        return Err("it has no duration".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> JobInfo {
        JobInfo { input: "/rips/film.mkv".into(), size: 123, mtime_ns: 1_700_000_000_123_456_789 }
    }

    fn output(tag: &str, video: &str, audio: &str) -> Probe {
        let tag = serde_json::to_string(tag).unwrap();
        Probe::from_json(&format!(
            r#"{{"format": {{"duration": "10.0", "tags": {{"DRAPTO_SOURCE": {tag}}}}},
                "streams": [{{"index": 0, "codec_type": "video", "codec_name": "{video}"}},
                            {{"index": 1, "codec_type": "audio", "codec_name": "{audio}"}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_matching_record_and_container_is_finished() {
        let s = Settings::default();
        let r = SourceRecord::new(source(), &s, 10.0);
        let out = output(&r.to_tag(), "av1", "opus");
        assert_eq!(check_finished(&out, 5000, Some(10.02), &source(), &s), Ok(()));
        assert_eq!(SourceRecord::of_output(&out), Some(r));
    }

    #[test]
    fn anything_else_is_not() {
        let s = Settings::default();
        let tag = SourceRecord::new(source(), &s, 10.0).to_tag();
        let check = |out: &Probe, size, end, src: &JobInfo, s: &Settings| check_finished(out, size, end, src, s);
        assert!(check(&output(&tag, "av1", "aac"), 5000, Some(10.0), &source(), &s).unwrap_err().contains("Opus"));
        assert!(check(&output(&tag, "h264", "opus"), 5000, Some(10.0), &source(), &s).is_err());
        assert!(check(&output(&tag, "av1", "opus"), 100, Some(10.0), &source(), &s).is_err());
        assert!(check(&output(&tag, "av1", "opus"), 5000, Some(3.3), &source(), &s).unwrap_err().contains("cut off"));
        assert!(check(&output(&tag, "av1", "opus"), 5000, None, &source(), &s).is_err());
        let garbage = output("garbage", "av1", "opus");
        assert!(check(&garbage, 5000, Some(10.0), &source(), &s).unwrap_err().contains("no record"));
        let changed = JobInfo { size: 124, ..source() };
        assert!(
            check(&output(&tag, "av1", "opus"), 5000, Some(10.0), &changed, &s).unwrap_err().contains("another rip")
        );
        let mut other = Settings::default();
        other.encoding.preset = 4;
        assert!(
            check(&output(&tag, "av1", "opus"), 5000, Some(10.0), &source(), &other)
                .unwrap_err()
                .contains("other settings")
        );
    }
}
