//! The source's frame timeline: every video frame's presentation time,
//! read from the packets (damaged timestamps refused), and the timeline of
//! the frames the filters give out of it (inverse telecine drops one in a
//! cycle).

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::tools::ffprobe::Query;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The source's video frames in presentation order (for a distributed
/// segment job, just that segment's frames).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timeline {
    /// Presentation time of each frame, seconds, ascending.
    pub pts: Vec<f64>,
    /// Coded size of each frame in bytes, in the same order (empty when
    /// not read): how much decoding each stretch costs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bytes: Vec<u64>,
    /// Indices of the frames whose packets are keyframes, ascending (empty
    /// when not read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keyframes: Vec<usize>,
    /// [`Timeline::frame_duration`], worked out once (a film's is asked
    /// for thousands of times; each answer sorts all of its frames).
    #[serde(skip)]
    typical: std::sync::OnceLock<f64>,
}

impl PartialEq for Timeline {
    fn eq(&self, o: &Timeline) -> bool {
        self.pts == o.pts && self.bytes == o.bytes && self.keyframes == o.keyframes
    }
}

impl Timeline {
    /// The timeline of frames at `pts` (ascending), their coded `bytes`
    /// and `keyframes` (either may be empty: not read).
    pub fn new(pts: Vec<f64>, bytes: Vec<u64>, keyframes: Vec<usize>) -> Timeline {
        Timeline { pts, bytes, keyframes, typical: std::sync::OnceLock::new() }
    }

    pub fn frames(&self) -> usize {
        self.pts.len()
    }

    /// Frame `i`'s presentation time.
    pub fn pts(&self, i: usize) -> Option<f64> {
        self.pts.get(i).copied()
    }

    /// Typical frame duration: the median of the mean gap over each two
    /// neighbouring gaps (soft telecine's frames last 50 and 33 ms in turn,
    /// whose plain median would be either; a variable frame rate keeps its
    /// typical rate).
    pub fn frame_duration(&self) -> f64 {
        *self.typical.get_or_init(|| typical_gap(&self.pts))
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

/// The median of the mean gap over each two neighbouring gaps of `pts`
/// (see [`Timeline::frame_duration`]).
fn typical_gap(pts: &[f64]) -> f64 {
    let gaps: Vec<f64> = pts.windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 0.0).collect();
    let mut typical: Vec<f64> =
        if gaps.len() < 2 { gaps } else { gaps.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect() };
    if typical.is_empty() {
        return 1.0 / 25.0;
    }
    typical.sort_by(f64::total_cmp);
    typical[typical.len() / 2]
}

/// Reads the frame timeline from the packets of the first video stream:
/// every packet is one frame, but for the leading pictures of an open GOP
/// the file starts on, which no decoder shows (see [`ffprobe::shown`]).
///
/// [`ffprobe::shown`]: crate::tools::ffprobe::shown
pub fn timeline(ffprobe: &Path, input: &Path, cancel: &Cancel) -> Result<Timeline> {
    let query = Query::packets("pts_time,size,flags").stream("v:0");
    let text = query.run(ffprobe, input, "read frame timeline", cancel).map_err(Error::process(input))?;
    let mut frames: Vec<Packet> = text.lines().filter_map(parse_packet).collect();
    let heads: Vec<(f64, bool)> = frames.iter().map(|p| (p.pts, p.key)).collect();
    let mut shown = crate::tools::ffprobe::shown(ffprobe, input, &heads, cancel).map_err(Error::process(input))?;
    frames.retain(|_| shown.next().unwrap_or(true));
    if let Some(problem) = stray_frames(&frames) {
        return Err(Error::Input { path: input.to_path_buf(), problem });
    }
    frames.sort_by(|a, b| a.pts.total_cmp(&b.pts));
    frames.dedup_by(|a, b| a.pts == b.pts);
    if frames.is_empty() {
        return Err(Error::Input { path: input.to_path_buf(), problem: "no video frames found".into() });
    }
    Ok(Timeline::new(
        frames.iter().map(|f| f.pts).collect(),
        frames.iter().map(|f| f.size).collect(),
        frames.iter().enumerate().filter(|(_, f)| f.key).map(|(i, _)| i).collect(),
    ))
}

/// How much later than it is stored a frame may present, in frames: more
/// than any decoder reorders (H.264 and HEVC 16 at most).
const MAX_REORDER: usize = 32;

/// Why `frames` (in file order) cannot be cut into segments: frames stamped
/// far later than the frames stored after them (a damaged rip: three
/// frames 20 s late made a "segment" at the end of the film that a seek
/// could not find, and the run failed on a vmaf error, on every run).
fn stray_frames(frames: &[Packet]) -> Option<String> {
    let mut order: Vec<usize> = (0..frames.len()).collect();
    order.sort_by(|&a, &b| frames[a].pts.total_cmp(&frames[b].pts));
    let strays: Vec<usize> =
        (order.iter().enumerate()).filter(|(rank, i)| *rank > **i + MAX_REORDER).map(|(_, i)| *i).collect();
    let (first, last) = (*strays.iter().min()?, *strays.iter().max()?);
    let before = frames[..first].iter().rev().map(|p| p.pts).find(|t| t.is_finite()).unwrap_or(0.0);
    Some(format!(
        "its video's timestamps are damaged: {} frame(s) stored from frame {first} to {last} present at {:.3}–{:.3} s, \
         among frames at {before:.3} s; rip it again",
        strays.len(),
        strays.iter().map(|&i| frames[i].pts).fold(f64::INFINITY, f64::min),
        strays.iter().map(|&i| frames[i].pts).fold(f64::NEG_INFINITY, f64::max),
    ))
}

/// One video packet as the timeline reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Packet {
    pts: f64,
    size: u64,
    key: bool,
}

/// "12.345,6789,K_" (pts_time, size, flags; a trailing comma or missing
/// fields tolerated) → the packet.
fn parse_packet(line: &str) -> Option<Packet> {
    let mut it = line.trim().split(',').map(str::trim).filter(|f| !f.is_empty());
    let pts = it.next()?.parse().ok()?;
    let size = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let key = it.next().is_some_and(|f| f.starts_with('K'));
    Some(Packet { pts, size, key })
}

/// Frames that come out of `n` source frames when the filters decimate
/// one of every `cycle` (inverse telecine; `None`: one out per one in). A
/// last, partial cycle loses nothing (ffmpeg's `decimate`).
pub fn output_frames(n: usize, cycle: Option<usize>) -> usize {
    match cycle {
        Some(c) if c > 1 => n / c * (c - 1) + n % c,
        _ => n,
    }
}

/// The typical duration of an output frame (see [`output_timeline`]).
pub fn output_frame_duration(src: &Timeline, cycle: Option<usize>) -> f64 {
    match cycle {
        Some(c) if c > 1 => src.frame_duration() * c as f64 / (c - 1) as f64,
        _ => src.frame_duration(),
    }
}

/// The timeline of the frames the filters give out of `src`'s: `src`
/// itself, or under decimation (see [`output_frames`]) evenly spaced frames
/// at `cycle / (cycle − 1)` of the source's frame duration, from its first
/// frame. Segments, sample ranges, progress and checks count these frames.
pub fn output_timeline(src: &Timeline, cycle: Option<usize>) -> Timeline {
    match cycle {
        Some(c) if c > 1 => {
            let d = output_frame_duration(src, cycle);
            let t0 = src.pts[0];
            Timeline::new((0..output_frames(src.frames(), cycle)).map(|k| t0 + k as f64 * d).collect(), vec![], vec![])
        }
        _ => src.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_stamped_far_later_than_they_are_stored_are_damage() {
        let at = |pts: f64| Packet { pts, size: 1, key: false };
        let mut frames: Vec<Packet> = (0..250).map(|i| at(i as f64 * 0.04)).collect();
        // B-frames reordered by two: no damage.
        frames.swap(10, 12);
        assert_eq!(stray_frames(&frames), None);
        // Frames stamped earlier than they are stored: not cut wrong.
        frames[100].pts = 1.0;
        assert_eq!(stray_frames(&frames), None);
        for (i, f) in frames[126..129].iter_mut().enumerate() {
            f.pts = 25.045 + 0.04 * i as f64;
        }
        let e = stray_frames(&frames).unwrap();
        assert!(
            e.contains("3 frame(s) stored from frame 126 to 128 present at 25.045–25.125 s, among frames at 5.000 s"),
            "{e}"
        );
    }

    #[test]
    fn packet_lines() {
        let p = |pts, size, key| Some(Packet { pts, size, key });
        assert_eq!(parse_packet("12.5,6789,K_"), p(12.5, 6789, true));
        assert_eq!(parse_packet("12.5,6789,__"), p(12.5, 6789, false));
        assert_eq!(parse_packet("12.5,6789,"), p(12.5, 6789, false));
        assert_eq!(parse_packet("0.041000,"), p(0.041, 0, false));
        assert_eq!(parse_packet("N/A,12"), None);
    }
}
