//! Segmentation: the source's frame timeline, scene cuts, segment boundaries,
//! and the exact ffmpeg input arguments that decode one segment's frames.
//!
//! Segments are frame ranges `[start, end)` of the presentation-ordered
//! frames. Each is decoded from the source itself (accurate input seeking to
//! just before the segment's first frame, then exactly `end - start` frames),
//! never stream-copied, so open-GOP sources neither lose nor duplicate the
//! leading B-frames at a boundary.

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::tools::ffmpeg::FfmpegArgs;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;

/// The source's video frames in presentation order (for a distributed
/// segment job, just that segment's frames).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Presentation time of each frame, seconds, ascending.
    pub pts: Vec<f64>,
}

impl Timeline {
    pub fn frames(&self) -> usize {
        self.pts.len()
    }

    /// Typical frame duration (median of the gaps).
    pub fn frame_duration(&self) -> f64 {
        let mut gaps: Vec<f64> = self.pts.windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 0.0).collect();
        if gaps.is_empty() {
            return 1.0 / 25.0;
        }
        gaps.sort_by(f64::total_cmp);
        gaps[gaps.len() / 2]
    }

    /// The frame index nearest to time `t`.
    pub fn index_near(&self, t: f64) -> usize {
        match self.pts.binary_search_by(|p| p.total_cmp(&t)) {
            Ok(i) => i,
            Err(0) => 0,
            Err(i) if i >= self.pts.len() => self.pts.len() - 1,
            Err(i) => {
                if (self.pts[i] - t).abs() < (t - self.pts[i - 1]).abs() {
                    i
                } else {
                    i - 1
                }
            }
        }
    }
}

/// Reads the frame timeline from the packets of the first video stream
/// (no decoding): every packet is one frame.
pub fn timeline(ffprobe: &Path, input: &Path, cancel: &Cancel) -> Result<Timeline> {
    let mut cmd = Command::new(ffprobe);
    cmd.args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(crate::tools::path_arg(input));
    let text = crate::tools::process::output(&mut cmd, "read frame timeline", cancel).map_err(Error::process(input))?;
    let mut pts: Vec<f64> = text.lines().filter_map(|l| l.trim().trim_end_matches(',').parse().ok()).collect();
    pts.sort_by(f64::total_cmp);
    pts.dedup();
    if pts.is_empty() {
        return Err(Error::Input { path: input.to_path_buf(), problem: "no video frames found".into() });
    }
    Ok(Timeline { pts })
}

/// Scene cuts (seconds) found by ffmpeg's `scdet` on a small copy of the
/// picture; empty when detection fails (segments then cut near the target).
pub fn scene_cuts(ffmpeg: &Path, input: &Path, cancel: &Cancel) -> Vec<f64> {
    let mut a = FfmpegArgs::default();
    // Scene detection needs the picture, not its finer details: skipping the
    // loop filter roughly halves the decode, the main cost.
    a.extend(["-hide_banner", "-nostdin", "-loglevel", "info", "-skip_loop_filter", "all"]).input(input).extend([
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
        "-vf",
        "scale=320:-2,scdet=threshold=12",
        "-f",
        "null",
        "-",
    ]);
    let mut out = Vec::new();
    let mut cmd = a.command(ffmpeg);
    let _ = crate::tools::process::run_lines(&mut cmd, "scene detection", cancel, |line| {
        if let crate::tools::process::Line::Err(l) = line {
            out.extend(parse_scdet(l));
        }
    });
    out.sort_by(f64::total_cmp);
    out
}

/// `[scdet @ 0x…] lavfi.scd.score: 28.1, lavfi.scd.time: 12.5` → 12.5.
fn parse_scdet(line: &str) -> Option<f64> {
    line.split("lavfi.scd.time:").nth(1)?.split_whitespace().next()?.trim_end_matches(',').parse().ok()
}

/// Frames `[start, start + count)` of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRange {
    pub start: usize,
    pub count: usize,
}

/// One segment: frames `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub index: usize,
    pub start: usize,
    pub end: usize,
}

impl Segment {
    pub fn frames(&self) -> usize {
        self.end - self.start
    }

    pub fn range(&self) -> FrameRange {
        FrameRange { start: self.start, count: self.frames() }
    }
}

/// Cuts the timeline into segments of about `target` seconds, each starting
/// at a scene cut within a third of the target of where it would otherwise
/// start, else at the frame nearest that point. A short tail joins the
/// segment before it.
pub fn plan_segments(tl: &Timeline, cuts: &[f64], target: f64) -> Vec<Segment> {
    let n = tl.frames();
    let mut bounds = vec![0usize];
    let window = target / 3.0;
    loop {
        let last = *bounds.last().expect("non-empty");
        let ideal = tl.pts[last] + target;
        if ideal >= tl.pts[n - 1] {
            break;
        }
        let cut = cuts
            .iter()
            .filter(|c| (*c - ideal).abs() <= window && **c > tl.pts[last])
            .min_by(|a, b| (*a - ideal).abs().total_cmp(&(*b - ideal).abs()));
        let next = tl.index_near(cut.copied().unwrap_or(ideal));
        if next <= last || next >= n {
            break;
        }
        bounds.push(next);
    }
    bounds.push(n);
    // A tail shorter than half the target joins the previous segment.
    if bounds.len() > 2 {
        let k = bounds.len();
        let tail = tl.pts[n - 1] - tl.pts[bounds[k - 2]];
        if tail < target / 2.0 {
            bounds.remove(k - 2);
        }
    }
    bounds.windows(2).enumerate().map(|(index, w)| Segment { index, start: w[0], end: w[1] }).collect()
}

/// For each segment, whether it starts at one of the scene `cuts` (within
/// half a frame).
pub fn starts_at_cut(tl: &Timeline, cuts: &[f64], segs: &[Segment]) -> Vec<bool> {
    let half = tl.frame_duration() / 2.0;
    segs.iter().map(|s| s.start > 0 && cuts.iter().any(|c| (c - tl.pts[s.start]).abs() <= half)).collect()
}

/// The source opened at frame `start`: accurate input seeking to half a
/// frame before it, so it is the first frame decoded and every earlier one
/// (including an open GOP's leading B-frames) is dropped. Timestamps then
/// start near zero. The seek time is the frame's own timestamp (not offset
/// by the file's start time). No seek when the frame is the file's first.
/// The caller limits the count (`frames_output`).
pub fn seek_input(args: &mut FfmpegArgs, source: &Path, tl: &Timeline, start: usize) {
    let t = tl.pts[start] - tl.frame_duration() / 2.0;
    if t > 0.0 {
        args.extend(["-seek_timestamp", "1", "-ss"]).arg(format!("{t:.6}"));
    }
    args.input(source);
}

/// Output options that take exactly `count` frames of the first input's
/// first video stream (after [`seek_input`]).
pub fn frames_output(args: &mut FfmpegArgs, count: usize) {
    args.extend(["-map", "0:v:0", "-an", "-sn", "-dn", "-frames:v"]).arg(count.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tl(frames: usize, fps: f64) -> Timeline {
        Timeline { pts: (0..frames).map(|i| i as f64 / fps).collect() }
    }

    fn check_cover(segs: &[Segment], n: usize) {
        assert_eq!(segs[0].start, 0);
        assert_eq!(segs.last().unwrap().end, n);
        for w in segs.windows(2) {
            assert_eq!(w[0].end, w[1].start, "segments must tile the frames");
        }
        assert!(segs.iter().all(|s| s.frames() > 0));
    }

    #[test]
    fn fixed_length_without_cuts() {
        let t = tl(1500, 25.0); // 60 s
        let s = plan_segments(&t, &[], 15.0);
        check_cover(&s, 1500);
        assert_eq!(s.iter().map(|s| s.frames()).collect::<Vec<_>>(), vec![375, 375, 375, 375]);
    }

    #[test]
    fn starts_at_nearby_scene_cuts() {
        let t = tl(1500, 25.0);
        let s = plan_segments(&t, &[13.0, 31.2, 44.0], 15.0);
        check_cover(&s, 1500);
        assert_eq!(s[1].start, 325); // 13.0 s
        assert_eq!(s[2].start, 780); // 31.2 s (13 + 15 = 28; 31.2 is within 5 s)
    }

    #[test]
    fn far_cuts_are_ignored_and_short_tails_merged() {
        let t = tl(1000, 25.0); // 40 s
        let s = plan_segments(&t, &[2.0], 15.0);
        check_cover(&s, 1000);
        // 0–15, 15–40 (the 10 s tail would be short: merged into 15–40? no: 30–40 is 10 s >= 7.5)
        assert_eq!(s.len(), 3);
        let t = tl(900, 25.0); // 36 s: tail 30–36 is 6 s < 7.5 → merged
        let s = plan_segments(&t, &[], 15.0);
        check_cover(&s, 900);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].frames(), 525);
    }

    #[test]
    fn short_and_vfr_timelines() {
        let s = plan_segments(&tl(10, 25.0), &[], 15.0);
        assert_eq!(s, vec![Segment { index: 0, start: 0, end: 10 }]);
        // Variable frame rate: 24 fps then 60 fps.
        let mut pts: Vec<f64> = (0..240).map(|i| i as f64 / 24.0).collect();
        pts.extend((0..1200).map(|i| 10.0 + i as f64 / 60.0));
        let t = Timeline { pts };
        let s = plan_segments(&t, &[], 5.0);
        check_cover(&s, 1440);
    }

    #[test]
    fn nearest_frame() {
        let t = tl(100, 25.0);
        assert_eq!(t.index_near(0.0), 0);
        assert_eq!(t.index_near(0.05), 1);
        assert_eq!(t.index_near(0.061), 2);
        assert_eq!(t.index_near(99.0), 99);
        assert!((t.frame_duration() - 0.04).abs() < 1e-9);
    }

    #[test]
    fn segments_that_start_at_a_cut() {
        let t = tl(250, 25.0);
        let segs = plan_segments(&t, &[4.0], 3.0);
        let at = starts_at_cut(&t, &[4.0], &segs);
        assert_eq!(at.len(), segs.len());
        for (s, a) in segs.iter().zip(&at) {
            assert_eq!(*a, s.start == 100, "{s:?}");
        }
        assert!(at.iter().any(|a| *a), "the cut at 4 s starts a segment: {segs:?}");
        assert!(!starts_at_cut(&t, &[0.0], &segs)[0], "the first segment starts no cut");
    }

    #[test]
    fn scdet_lines() {
        assert_eq!(parse_scdet("[scdet @ 0x55] lavfi.scd.score: 28.100, lavfi.scd.time: 12.5"), Some(12.5));
        assert_eq!(parse_scdet("frame= 10"), None);
    }
}
