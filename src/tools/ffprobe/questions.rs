//! The measurements drapto asks ffprobe for: frame and packet times, where
//! a stream ends, which pictures are shown, frame counts, closed captions,
//! audio layouts and the first frame's side data.

use super::*;
use crate::cancel::Cancel;
use crate::error::ProcessFailure;
use std::path::Path;
use std::process::Command;

/// A video packet's (frame's) presentation time and duration, seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameTime {
    pub pts: f64,
    pub duration: f64,
}

/// The frames of the first video stream of `path` from `from` seconds to
/// the end (`None`: all; a seek past the end lands on the last keyframe),
/// in presentation order, from its packets (no decoding).
pub fn frame_times(
    ffprobe: &Path,
    path: &Path,
    from: Option<f64>,
    cancel: &Cancel,
) -> Result<Vec<FrameTime>, ProcessFailure> {
    packet_times(ffprobe, path, "v:0", from, cancel)
}

/// The packets of stream `spec` of `path` from `from` seconds (see
/// [`frame_times`]), in presentation order.
fn packet_times(
    ffprobe: &Path,
    path: &Path,
    spec: &str,
    from: Option<f64>,
    cancel: &Cancel,
) -> Result<Vec<FrameTime>, ProcessFailure> {
    let mut query = Query::packets("pts_time,duration_time").stream(spec);
    if let Some(from) = from {
        query = query.from_seconds(from);
    }
    let text = query.run(ffprobe, path, "read packet times", cancel)?;
    let mut frames: Vec<FrameTime> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split(',').map(str::trim);
            let pts = f.next()?.parse().ok()?;
            Some(FrameTime { pts, duration: f.next().and_then(|d| d.parse().ok()).unwrap_or(0.0) })
        })
        .collect();
    frames.sort_by(|a, b| a.pts.total_cmp(&b.pts));
    Ok(frames)
}

/// The first field of each CSV line that is a number (a frame's line may
/// go on with its side data: "0.143,side_data,").
fn first_numbers(text: &str) -> impl Iterator<Item = f64> + '_ {
    text.lines().filter_map(|l| l.split(',').next()?.trim().parse::<f64>().ok())
}

/// The presentation time of the first video frame of `path` (its first
/// seconds read), on its own clock.
pub fn first_video_time(ffprobe: &Path, path: &Path, cancel: &Cancel) -> Option<f64> {
    let query = Query::packets("pts_time").stream("v:0").interval("%+2".into());
    let text = query.run(ffprobe, path, "read the first frame time", cancel).ok()?;
    first_numbers(&text).reduce(f64::min)
}

/// The latest presentation time (seconds) of any packet of the first video
/// stream at or after `from` seconds: where the video really ends, whatever
/// the container header claims (a truncated file keeps its header duration).
pub fn video_end_time(ffprobe: &Path, path: &Path, from: f64, cancel: &Cancel) -> Option<f64> {
    let frames = frame_times(ffprobe, path, Some(from), cancel).ok()?;
    frames.iter().map(|f| f.pts + f.duration).reduce(f64::max)
}

/// Where audio stream `n` (the `N` of `a:N`) of `path` ends (the latest
/// pts + duration of its packets from `from` seconds, counted from the
/// file's start `start`); read from the file's start when none is there (a
/// track that ends earlier). `None`: no packet at all.
pub fn audio_end(ffprobe: &Path, path: &Path, n: usize, (from, start): (f64, f64), cancel: &Cancel) -> Option<f64> {
    let spec = format!("a:{n}");
    let read = |from| {
        packet_times(ffprobe, path, &spec, from, cancel).ok()?.iter().map(|p| p.pts + p.duration).reduce(f64::max)
    };
    read(Some(from + start)).or_else(|| read(None)).map(|end| end - start)
}

/// Which of a video stream's packets (presentation time and keyframe flag,
/// in file order) a decoder shows, in the same order. All of them, but in a
/// file cut at an open GOP: it starts with pictures presenting before
/// their keyframe (an HEVC CRA's RASL pictures), whose references were cut
/// away with the stream before; the decoder drops them. Only then is the
/// stream's head decoded, to its next keyframe, and what it shows kept. A
/// packet without a time (NaN: a copy cut leaves its leading pictures
/// without one) is not shown.
pub fn shown(
    ffprobe: &Path,
    input: &Path,
    packets: &[(f64, bool)],
    cancel: &Cancel,
) -> Result<impl Iterator<Item = bool>, ProcessFailure> {
    let mut decoded = Vec::new();
    let end = head_end(packets);
    if let Some(end) = end {
        let mut query = Query::frames("pts_time").stream("v:0");
        if end.is_finite() {
            query = query.interval(format!("%{:.3}", end + 1.0));
        }
        let text = query.run(ffprobe, input, "read the first frames", cancel)?;
        decoded = first_numbers(&text).collect();
    }
    let end = end.filter(|_| !decoded.is_empty()).unwrap_or(f64::NEG_INFINITY);
    let packets = packets.to_vec();
    Ok(packets.into_iter().map(move |(pts, _)| pts >= end || decoded.iter().any(|d| (d - pts).abs() < 1e-6)))
}

/// "2.5,K_" (pts_time, flags) → the packet's time (NaN for "N/A": a
/// leading picture a copy cut left without one) and whether it is a
/// keyframe; `None` for a line of anything else.
pub fn packet_line(line: &str) -> Option<(f64, bool)> {
    let mut f = line.trim().split(',').map(str::trim);
    let pts = f.next()?;
    let flags = f.next().filter(|k| !k.is_empty() && k.chars().all(|c| "KDC_".contains(c)))?;
    Some((pts.parse().unwrap_or(f64::NAN), flags.starts_with('K')))
}

/// Where the first frame a decoder shows presents (seconds, the file's
/// clock) in a file that starts on an open GOP (see [`shown`]): later than
/// the leading pictures stored before it, which mkvmerge counts as the
/// track's start. `None` for a file starting on a closed GOP. Only the
/// first seconds are read, and decoded only in that case.
pub fn first_shown(ffprobe: &Path, input: &Path, cancel: &Cancel) -> Result<Option<f64>, ProcessFailure> {
    const HEAD: &str = "%+5";
    let query = Query::packets("pts_time,flags").stream("v:0").interval(HEAD.into());
    let packets: Vec<(f64, bool)> =
        query.run(ffprobe, input, "read the first packets", cancel)?.lines().filter_map(packet_line).collect();
    if head_end(&packets).is_none() {
        return Ok(None);
    }
    let query = Query::frames("pts_time").stream("v:0").interval(HEAD.into());
    let text = query.run(ffprobe, input, "read the first frames", cancel)?;
    Ok(first_numbers(&text).reduce(f64::min))
}

/// How much later than its first packet stream `spec`'s first decoded
/// frame presents, in seconds: the frames a damaged disc left undecodable
/// at its start. `None` where nothing decodes in its first seconds (how
/// much is lost is not known).
pub fn undecoded_head(
    ffprobe: &Path,
    input: &Path,
    spec: &str,
    cancel: &Cancel,
) -> Result<Option<f64>, ProcessFailure> {
    const HEAD: &str = "%+5";
    let query = Query::packets("pts_time").stream(spec).interval(HEAD.into());
    let first_packet = first_numbers(&query.run(ffprobe, input, "read the first packets", cancel)?).reduce(f64::min);
    let query = Query::frames("pts_time").stream(spec).interval(HEAD.into());
    let first_frame = first_numbers(&query.run(ffprobe, input, "read the first frames", cancel)?).reduce(f64::min);
    Ok(first_packet.zip(first_frame).map(|(p, f)| (f - p).max(0.0)))
}

/// Where the head of a stream whose first packets (in file order) a
/// decoder may not show ends: `None` when the file starts on a keyframe
/// that presents first (a closed GOP: every packet is shown); else the
/// presentation time of the next keyframe (infinite: none).
fn head_end(packets: &[(f64, bool)]) -> Option<f64> {
    let &(first, key) = packets.first()?;
    if key && packets.iter().all(|&(p, _)| p >= first) {
        return None;
    }
    let after = packets.iter().filter(|&&(p, k)| k && p > first).map(|&(p, _)| p).reduce(f64::min);
    Some(after.unwrap_or(f64::INFINITY))
}

/// The presentation time of every video packet of `path`, in file order
/// (`NaN` where a packet has none), or `None` if unreadable. A read of every
/// packet.
pub fn video_packet_times(ffprobe: &Path, path: &Path, cancel: &Cancel) -> Option<Vec<f64>> {
    let text = Query::packets("pts_time").stream("v:0").run(ffprobe, path, "read the video's times", cancel).ok()?;
    Some(text.lines().filter(|l| !l.trim().is_empty()).map(|l| first_numbers(l).next().unwrap_or(f64::NAN)).collect())
}

/// The longest run of frames that present at one time, and that time:
/// (frames, seconds). An encode of frames whose times jump back has its
/// later frames held at the latest time by ffmpeg's muxer, a film's worth of
/// frames shown as one.
pub fn longest_held(times: &[f64]) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    let mut run = 0;
    for (i, t) in times.iter().enumerate() {
        run = if i > 0 && times[i - 1] == *t { run + 1 } else { 1 };
        if best.is_none_or(|(n, _)| run > n) {
            best = Some((run, *t));
        }
    }
    best
}

/// Video packets in a file (one per frame): a failure carries ffprobe's
/// command line and stderr (callers that can go without a count say so
/// with `.ok()`).
pub fn count_frames(ffprobe: &Path, path: &Path, cancel: &Cancel) -> Result<usize, ProcessFailure> {
    let mut cmd = Command::new(ffprobe);
    cmd.args(["-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets"])
        .args(["-of", "default=nw=1:nk=1"])
        .arg(crate::tools::path_arg(path));
    let command = crate::tools::process::command_line(&cmd);
    let out = crate::tools::process::output(&mut cmd, "count frames", cancel)?;
    let count = out.split(|c: char| !c.is_ascii_digit()).find(|s| !s.is_empty()).and_then(|n| n.parse().ok());
    let none = format!("no video packets counted in {}", path.display());
    count.ok_or_else(|| {
        ProcessFailure::Failed(crate::error::ProcessError::problem("count frames", "ffprobe", command, none))
    })
}

/// Frames decoded at the start of the video, and at each later time, to
/// look for closed captions.
pub const CAPTION_FRAMES: u32 = 60;

/// Whether the video's pictures carry closed captions (EIA-608/708 as ATSC
/// A/53 side data: DVD line 21, broadcast and TV Blu-ray captions), read
/// from [`CAPTION_FRAMES`] pictures at its start and at each of `times`.
/// Captions are sent with every picture, blank ones as padding, but only
/// where the disc was authored with them: a studio logo before the
/// feature may have none.
///
/// The later reads are a second look, only when the start has none; a
/// seek that fails there (a file cut short, taken as it is) finds none.
pub fn has_captions(ffprobe: &Path, path: &Path, times: &[f64], cancel: &Cancel) -> Result<bool, ProcessFailure> {
    // Whether captions were seen (also by a read that failed further on),
    // and how the read ended.
    let look = |intervals: &[String]| {
        let mut cmd = Command::new(ffprobe);
        cmd.args(["-v", "error", "-select_streams", "v:0", "-read_intervals", &intervals.join(",")])
            .args(["-show_entries", "frame_side_data=side_data_type", "-of", "csv=p=0"])
            .arg(crate::tools::path_arg(path));
        let mut seen = false;
        let ended = crate::tools::process::run(&mut cmd, "look for closed captions", cancel, |l| {
            seen |= l.contains("Closed Captions");
        });
        (seen, ended)
    };
    match look(&[format!("%+#{CAPTION_FRAMES}")]) {
        (true, _) => return Ok(true),
        (false, Err(e)) => return Err(e),
        (false, Ok(_)) => {}
    }
    let later: Vec<String> = times.iter().map(|t| format!("{:.3}%+#{CAPTION_FRAMES}", t.max(0.0))).collect();
    if later.is_empty() {
        return Ok(false);
    }
    match look(&later) {
        (false, Err(e)) if cancel.is_cancelled() => Err(e),
        (seen, _) => Ok(seen),
    }
}

/// Whether audio stream `index` (the `N` of `a:N`) holds any packet. Reads
/// until its first one: instant for a normal track; a whole-file read only
/// for a track that is empty. `None` when ffprobe fails.
pub fn audio_has_packets(ffprobe: &Path, path: &Path, index: usize, cancel: &Cancel) -> Option<bool> {
    let query = Query::packets("stream_index").stream(&format!("a:{index}")).interval("%+#1".into());
    let text = query.run(ffprobe, path, "probe audio packets", cancel).ok()?;
    Some(text.lines().any(|l| !l.trim().is_empty()))
}

/// The channel count and layout of the audio frames decoded for 2 s from
/// each of `times` (seconds), per stream (ffprobe's index): what a track
/// that changes its layout (a DVD's AC-3 opening in 2.0, then 5.1) is
/// later, where the stream's own fields say what its first frames are.
/// Empty when ffprobe fails.
pub fn audio_layouts_at(ffprobe: &Path, path: &Path, times: &[f64], cancel: &Cancel) -> Vec<(usize, u32, String)> {
    let intervals: Vec<String> = times.iter().map(|t| format!("{:.3}%+2", t.max(0.0))).collect();
    let query = Query::frames("stream_index,channels,channel_layout").stream("a").interval(intervals.join(","));
    let Ok(text) = query.run(ffprobe, path, "probe audio layouts", cancel) else { return Vec::new() };
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(',');
            let index = f.next()?.trim().parse().ok()?;
            let channels = f.next()?.trim().parse().ok()?;
            Some((index, channels, f.next().unwrap_or("").trim().to_string()))
        })
        .collect()
}

/// Side data of the first video frame (where HEVC carries HDR10 SEI).
pub fn first_frame_side_data(ffprobe: &Path, input: &Path, cancel: &Cancel) -> Result<Vec<SideData>, ProcessFailure> {
    #[derive(serde::Deserialize)]
    struct Frames {
        #[serde(default)]
        frames: Vec<Frame>,
    }
    #[derive(serde::Deserialize)]
    struct Frame {
        #[serde(default)]
        side_data_list: Vec<SideData>,
    }
    let mut cmd = Command::new(ffprobe);
    cmd.args(["-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1", "-show_frames"])
        .args(["-show_entries", "frame=side_data_list", "-print_format", "json"])
        .arg(crate::tools::path_arg(input));
    // (A failed read is said, not taken for a frame without metadata: the
    // output would lose the mastering display and content light.)
    let text = crate::tools::process::output(&mut cmd, "probe first frame", cancel)?;
    let first = serde_json::from_str::<Frames>(&text).ok().and_then(|f| f.frames.into_iter().next());
    Ok(first.map(|f| f.side_data_list).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_file_starting_on_an_open_gop_has_a_head_to_decode() {
        // Closed GOP: the first packet is a keyframe presenting first.
        assert_eq!(head_end(&[(0.0, true), (0.125, false), (0.042, false), (2.0, true)]), None);
        // Cut at an HEVC CRA: two RASL pictures present before it.
        let cra = [(0.143, true), (0.101, false), (0.06, false), (0.185, false), (2.143, true), (4.1, true)];
        assert_eq!(head_end(&cra), Some(2.143));
        // Cut before any keyframe, and a file with a single keyframe.
        assert_eq!(head_end(&[(0.5, false), (1.0, true)]), Some(1.0));
        assert_eq!(head_end(&[(0.2, true), (0.1, false)]), Some(f64::INFINITY));
    }
}
