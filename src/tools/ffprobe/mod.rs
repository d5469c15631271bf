//! ffprobe: the typed JSON it prints about a file ([`model`]), one run of it
//! for the whole picture ([`probe`]), typed questions about packets and
//! frames ([`query`]) and the measurements built on them ([`questions`]).

mod model;
mod query;
mod questions;

pub use model::*;
pub use query::*;
pub use questions::*;

use crate::cancel::Cancel;
use crate::error::ProcessFailure;
use std::path::Path;
use std::process::Command;

/// Runs ffprobe on `path` and parses the result.
pub fn probe(ffprobe: &Path, path: &Path, cancel: &Cancel) -> Result<Probe, ProbeError> {
    run_probe(ffprobe, path, &[], cancel)
}

/// Format, streams and chapters of `path` as JSON, with `extra` arguments
/// (packets to show as well), parsed.
fn run_probe(ffprobe: &Path, path: &Path, extra: &[&str], cancel: &Cancel) -> Result<Probe, ProbeError> {
    let mut cmd = Command::new(ffprobe);
    cmd.args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams", "-show_chapters"])
        .args(extra)
        .arg(crate::tools::path_arg(path));
    let text = crate::tools::process::output(&mut cmd, "probe", cancel).map_err(ProbeError::Run)?;
    Probe::from_json(&text).map_err(|e| ProbeError::Parse(e.to_string()))
}

/// [`probe`] and, in the same run, where the first video stream's last
/// packet ends (a seek far past the end lands on the last keyframe): what a
/// quick look at a finished output needs, one program start. The end is
/// counted from the file's start, as the analysis counts the rip's (a rip
/// whose tracks all start at 1.5 s keeps that start in its output).
pub fn probe_with_end(ffprobe: &Path, path: &Path, cancel: &Cancel) -> Result<(Probe, Option<f64>), ProbeError> {
    let packets = ["-show_entries", "packet=stream_index,pts_time,duration_time", "-read_intervals", "99999999%"];
    let probe = run_probe(ffprobe, path, &packets, cancel)?;
    let video = probe.video_streams().next().map(|v| v.index);
    let end = probe
        .packets
        .iter()
        .filter(|p| Some(p.stream_index) == video)
        .filter_map(|p| Some(p.pts_time? + p.duration_time.unwrap_or(0.0)))
        .reduce(f64::max)
        .map(|end| end - probe.format.start_time.unwrap_or(0.0));
    Ok((probe, end))
}

/// Why probing failed.
#[derive(Debug)]
pub enum ProbeError {
    Run(ProcessFailure),
    Parse(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "streams": [
        {"index": 0, "codec_name": "hevc", "codec_type": "video", "width": 3840, "height": 2160,
         "pix_fmt": "yuv420p10le", "color_transfer": "smpte2084", "color_primaries": "bt2020",
         "r_frame_rate": "24000/1001", "avg_frame_rate": "24000/1001", "start_time": "0.000000",
         "disposition": {"default": 1, "forced": 0, "attached_pic": 0},
         "tags": {"language": "eng", "BPS": "1000"},
         "side_data_list": [{"side_data_type": "DOVI configuration record", "dv_profile": 8, "dv_level": 6,
                             "rpu_present_flag": 1, "dv_bl_signal_compatibility_id": 1}]},
        {"index": 1, "codec_name": "truehd", "codec_type": "audio", "channels": 8, "channel_layout": "7.1",
         "sample_rate": "48000", "disposition": {"default": 0, "forced": 1}, "tags": {"LANGUAGE": "fre", "title": "VF"}},
        {"index": 2, "codec_name": "mjpeg", "codec_type": "video", "disposition": {"attached_pic": 1}},
        {"index": 3, "codec_type": "attachment", "codec_name": "ttf", "tags": {"filename": "a.ttf"}}
      ],
      "chapters": [{"id": 1, "start_time": "0.000000", "end_time": "60.5", "tags": {"title": "One"}}],
      "format": {"format_name": "matroska,webm", "duration": "7200.5", "size": "123456", "bit_rate": "N/A"}
    }"#;

    #[test]
    fn the_longest_run_of_frames_at_one_time_is_found() {
        assert_eq!(longest_held(&[]), None);
        assert_eq!(longest_held(&[0.0, 0.04, 0.08]), Some((1, 0.0)));
        // A source's duplicate timestamp, then a jump held by the muxer.
        let times = [0.0, 0.04, 0.04, 0.08, 25.045, 25.085, 25.125, 25.125, 25.125, 25.125];
        assert_eq!(longest_held(&times), Some((4, 25.125)));
    }

    #[test]
    fn a_rate_read_from_millisecond_timestamps_is_the_standard_one_it_rounds() {
        let rate = |avg: &str, r: &str| {
            let s = Stream { avg_frame_rate: Some(avg.into()), r_frame_rate: Some(r.into()), ..Stream::default() };
            s.frame_rate().unwrap()
        };
        assert!((rate("1000/33", "30000/1001") - 30000.0 / 1001.0).abs() < 1e-9, "no default duration");
        assert!((rate("293/12", "24000/1001") - 24000.0 / 1001.0).abs() < 1e-9);
        assert_eq!(rate("25/1", "50/1"), 25.0, "fields: another rate, not a rounding");
        assert_eq!(rate("12/1", "30000/1001"), 12.0);
        assert_eq!(rate("1000/33", "1000/33"), 1000.0 / 33.0, "no standard rate named");
    }

    #[test]
    fn packet_lines_keep_pictures_without_a_time() {
        assert_eq!(packet_line("2.5,K_"), Some((2.5, true)));
        assert_eq!(packet_line("0.125000,__,"), Some((0.125, false)));
        assert!(packet_line("N/A,__").is_some_and(|(t, k)| t.is_nan() && !k));
        assert_eq!(packet_line("side_data,"), None);
        assert_eq!(packet_line(""), None);
    }

    #[test]
    fn duration_tags() {
        assert_eq!(parse_duration_tag("00:00:20.023000000"), Some(20.023));
        assert_eq!(parse_duration_tag("01:11:49.5"), Some(4309.5));
        assert_eq!(parse_duration_tag("1193:02:47.295000000"), Some(4294967.295));
        assert_eq!(parse_duration_tag("nonsense"), None);
        assert_eq!(parse_duration_tag("1:2:3:4"), None);
    }

    #[test]
    fn parses_typed_fields() {
        let p = Probe::from_json(SAMPLE).unwrap();
        assert_eq!(p.format.duration, Some(7200.5));
        assert_eq!(p.format.bit_rate, None);
        assert_eq!(p.video_streams().count(), 1);
        assert_eq!(p.attachments().count(), 2);
        let v = &p.streams[0];
        assert_eq!(v.bit_depth(), Some(10));
        assert!((v.frame_rate().unwrap() - 23.976).abs() < 0.001);
        let dv = v.side_data("dovi").unwrap();
        assert_eq!(dv.number("dv_profile"), Some(8.0));
        let a = &p.streams[1];
        assert_eq!(a.tag("language"), Some("fre"));
        assert!(a.has_disposition("forced") && !a.has_disposition("default"));
        assert_eq!(p.chapters[0].end_time, Some(60.5));
    }

    #[test]
    fn ratios_parse() {
        assert_eq!(parse_ratio("30000/1001").map(|f| (f * 1000.0).round()), Some(29970.0));
        assert_eq!(parse_ratio("0/0"), None);
        assert_eq!(parse_ratio("16:9").map(|f| (f * 100.0).round()), Some(178.0));
        assert_eq!(parse_ratio("25"), Some(25.0));
    }
}
