//! Interlacing and telecine: ffmpeg's `idet` on sampled frames, read
//! together with the stream's field order and frame rate, tells apart
//!
//! - progressive frames (left alone, also when coded as interlaced: PAL
//!   films);
//! - soft telecine (MPEG-2 repeat-field flags: the decoder already gives the
//!   film's progressive frames, but their timestamps follow the 3:2 field
//!   cadence, 50 and 33 ms in turn): kept, timestamps evened out to 23.976;
//! - interlaced video (every frame two moments: deinterlaced with bwdif,
//!   one frame out per frame in);
//! - hard telecine (film put through 3:2 pulldown into 29.97 fps: two of
//!   every five frames repeat a field, always at the same two places of the
//!   five-frame cycle): inverse telecine, field matching and then decimation
//!   back to 24000/1001, combed leftovers deinterlaced;
//! - hybrids (film with video-rate stretches): inverse telecine while film
//!   dominates, else deinterlacing.
//!
//! The treatment can be forced (`processing.interlace`).

use crate::cancel::Cancel;
use crate::config::FieldMode;
use crate::tools::ffmpeg::FfmpegArgs;
use crate::tools::ffprobe::{Query, Stream};
use serde::Serialize;
use std::path::Path;

/// Frames `idet` looks at per sample point (files over a minute), and from
/// the start of shorter files, on 29.97 fps streams (the pulldown cadence
/// needs them); on others, the combing check's frames per point.
pub const FRAMES_PER_SAMPLE: u32 = 120;
pub const FRAMES_SHORT_FILE: u32 = 300;
pub const FRAMES_COMBING_CHECK: u32 = 60;
/// Share of interlaced frames (among judged ones) that makes the verdict
/// when the stream says it is interlaced, says nothing, or says progressive.
/// A stream flagged progressive needs overwhelming evidence: idet mistakes
/// sharp synthetic motion for combing far more often than it misses real
/// interlacing, and filtering a progressive picture costs detail.
pub const SHARE_IF_FLAGGED_INTERLACED: f64 = 0.2;
pub const SHARE_IF_UNFLAGGED: f64 = 0.5;
pub const SHARE_IF_FLAGGED_PROGRESSIVE: f64 = 0.9;
/// Share of five-frame cycles that show 3:2 pulldown (two repeated fields at
/// the cycle's two fixed places) from which a 29.97 fps source is film:
/// hard telecine from [`FILM_SHARE_TELECINE`], a hybrid from
/// [`FILM_SHARE_HYBRID`] (inverse-telecined while film is at least
/// [`FILM_SHARE_IVTC`] of it, else deinterlaced). Measured: 0.82 on a hard
/// telecined MPEG-2 of a real trailer (static shots repeat nothing), 0.0 on
/// interlaced video and on progressive sources.
pub const FILM_SHARE_TELECINE: f64 = 0.7;
/// Share of the windows (see [`RepeatCounts::film_sample_share`]) that
/// show the cadence from which the whole is film (a static shot's window
/// shows none).
pub const FILM_WINDOWS_TELECINE: f64 = 0.9;
pub const FILM_SHARE_IVTC: f64 = 0.5;
pub const FILM_SHARE_HYBRID: f64 = 0.15;
/// Share of the repeated fields that must fall on each sample's two
/// dominant places of the five-frame cycle: pulldown is periodic, noise is
/// not (scattered repeats put about 0.4 there). 0.65 is a repeat rate on
/// each cadence place nearly three times that of the other places:
/// animation held on threes adds repeats off the cadence (0.72–0.77
/// measured), and was judged interlaced at 0.8.
pub const CADENCE_SHARE: f64 = 0.65;
/// The inverse telecine's decimation: one frame of every five is dropped.
pub const IVTC_CYCLE: usize = 5;
/// Share of decoded frames carrying a repeat-field flag (`repeat_pict`) from
/// which a stream is soft telecine (3:2 soft pulldown flags every other
/// frame: 0.5).
pub const SOFT_PULLDOWN_SHARE: f64 = 0.3;
/// Film's frame rate, the rate soft and hard telecine give back.
pub const FILM_FPS: f64 = 24000.0 / 1001.0;

/// What the frames are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    Progressive,
    Interlaced,
    /// 3:2 pulldown in the fields (film at 29.97 fps).
    HardTelecine,
    /// Telecined film with video-rate stretches.
    Hybrid,
    /// Progressive film frames with MPEG-2 repeat-field flags.
    SoftTelecine,
}

/// What is done to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Treatment {
    None,
    /// bwdif, one frame out per frame in.
    Deinterlace,
    /// Field matching, bwdif on combed leftovers, decimation 5 → 4.
    Ivtc,
    /// The frames as they are, at evenly spaced 23.976 fps timestamps
    /// (soft telecine's follow the field cadence).
    FilmTimestamps,
    /// bwdif on the pictures the stream marks interlaced alone, one frame
    /// out per frame in: soft telecine's stretches of video (credits,
    /// effects shots) among its film frames.
    DeinterlaceMarked,
}

/// The decoder's flags: soft-pulldown evidence (decoded frames, how many
/// carry a repeat-field flag, and their average rate from their
/// timestamps), and how far the pictures' field flags agree with idet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PulldownFlags {
    pub frames: u64,
    pub repeat_flagged: u64,
    pub fps: Option<f64>,
    pub pictures: FlagAgreement,
}

impl PulldownFlags {
    fn add(&mut self, o: &PulldownFlags) {
        // The sample farthest from film's rate stands for all: one stretch
        // at another rate is enough to keep the timestamps as they are.
        let off = |f: Option<f64>| f.map_or(-1.0, |f| (f / FILM_FPS - 1.0).abs());
        if off(o.fps) > off(self.fps) {
            self.fps = o.fps;
        }
        self.frames += o.frames;
        self.repeat_flagged += o.repeat_flagged;
        self.pictures.add(&o.pictures);
    }

    pub fn share(&self) -> f64 {
        if self.frames == 0 { 0.0 } else { self.repeat_flagged as f64 / self.frames as f64 }
    }

    /// Whether the frames' own rate is film's.
    pub fn film_rate(&self) -> bool {
        self.fps.is_some_and(|f| (f / FILM_FPS - 1.0).abs() < 0.005)
    }
}

/// Reads ffprobe's `pts_time,repeat_pict` lines of one sample.
pub fn parse_pulldown(output: &str) -> PulldownFlags {
    let mut pts = Vec::new();
    let mut flagged = 0;
    for l in output.lines() {
        let mut fields = l.split(',').map(str::trim);
        let Some(Ok(t)) = fields.next().map(str::parse::<f64>) else { continue };
        pts.push(t);
        if fields.next().and_then(|r| r.parse::<u32>().ok()).is_some_and(|r| r > 0) {
            flagged += 1;
        }
    }
    pts.sort_by(f64::total_cmp);
    // n frames span n − 1 gaps (the last frame's own duration is unknown).
    let fps = (pts.len() > 8)
        .then(|| (pts.len() - 1) as f64 / (pts[pts.len() - 1] - pts[0]))
        .filter(|f| f.is_finite() && *f > 0.0);
    PulldownFlags { frames: pts.len() as u64, repeat_flagged: flagged, fps, pictures: FlagAgreement::default() }
}

/// idet's repeated-field counts, and how many of the repeats fell on the
/// two dominant places of each sample's five-frame cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RepeatCounts {
    pub neither: u64,
    pub top: u64,
    pub bottom: u64,
    pub on_cadence: u64,
    /// Windows of [`WINDOW_FRAMES`] looked at, and those that show 3:2
    /// pulldown at all (see [`RepeatCounts::film_sample_share`]).
    #[serde(default)]
    pub samples: u64,
    #[serde(default)]
    pub film_samples: u64,
}

impl RepeatCounts {
    fn add(&mut self, o: &RepeatCounts) {
        self.neither += o.neither;
        self.top += o.top;
        self.bottom += o.bottom;
        self.on_cadence += o.on_cadence;
        self.samples += o.samples;
        self.film_samples += o.film_samples;
    }

    /// Share of the windows that show 3:2 pulldown at all. idet misses the
    /// repeated field of many cycles of film coded with H.264 (47% of the
    /// cycles of a pure telecine found at CRF 23, 28% coded progressive),
    /// which counted as video; a hybrid's video is a stretch of windows
    /// without a repeat, while film shows its cadence in every window.
    pub fn film_sample_share(&self) -> f64 {
        if self.samples == 0 { 0.0 } else { self.film_samples as f64 / self.samples as f64 }
    }

    pub fn frames(&self) -> u64 {
        self.neither + self.top + self.bottom
    }

    pub fn repeated(&self) -> u64 {
        self.top + self.bottom
    }

    /// Share of five-frame cycles that carry 3:2 pulldown (each such cycle
    /// repeats two fields on its cadence), at most 1.
    pub fn film_share(&self) -> f64 {
        let cycles = self.frames() as f64 / IVTC_CYCLE as f64;
        if cycles == 0.0 { 0.0 } else { (self.on_cadence as f64 / 2.0 / cycles).min(1.0) }
    }

    /// Share of the repeated fields that fell on the cadence.
    pub fn cadence_share(&self) -> f64 {
        if self.repeated() == 0 { 0.0 } else { self.on_cadence as f64 / self.repeated() as f64 }
    }
}

/// Reads one sample's per-frame repeated-field flags (idet's
/// `lavfi.idet.repeated.current_frame`, printed by `metadata`).
pub fn parse_repeats(output: &str) -> RepeatCounts {
    let flags: Vec<char> = output
        .lines()
        .filter_map(|l| l.split("lavfi.idet.repeated.current_frame=").nth(1))
        .filter_map(|v| v.trim().chars().next())
        .collect();
    let mut c = RepeatCounts::default();
    let mut phases = [0u64; IVTC_CYCLE];
    for (i, f) in flags.iter().enumerate() {
        match f {
            't' => c.top += 1,
            'b' => c.bottom += 1,
            _ => {
                c.neither += 1;
                continue;
            }
        }
        phases[i % IVTC_CYCLE] += 1;
    }
    let mut order: Vec<usize> = (0..IVTC_CYCLE).collect();
    order.sort_by_key(|p| std::cmp::Reverse(phases[*p]));
    let cadence = [order[0], order[1]];
    c.on_cadence = phases[cadence[0]] + phases[cadence[1]];
    if c.cadence_share() >= CADENCE_SHARE {
        // Each window of the sample shows the cadence, or not.
        for (w, window) in flags.chunks(WINDOW_FRAMES).enumerate().filter(|(_, f)| f.len() >= WINDOW_FRAMES / 2) {
            let on = (window.iter().enumerate())
                .filter(|(i, f)| **f != 'n' && cadence.contains(&((w * WINDOW_FRAMES + i) % IVTC_CYCLE)))
                .count();
            let cycles = window.len() as f64 / IVTC_CYCLE as f64;
            c.samples += 1;
            c.film_samples += u64::from(on as f64 / 2.0 / cycles >= FILM_SHARE_HYBRID);
        }
    } else {
        c.samples = flags.chunks(WINDOW_FRAMES).filter(|f| f.len() >= WINDOW_FRAMES / 2).count() as u64;
    }
    c
}

/// Frames of a window of a sample judged film or not on its own (see
/// [`RepeatCounts::film_sample_share`]): 12 cycles, half a second or so.
pub const WINDOW_FRAMES: usize = 60;

/// idet's multi-frame counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IdetCounts {
    pub tff: u64,
    pub bff: u64,
    pub progressive: u64,
    pub undetermined: u64,
}

impl IdetCounts {
    fn add(&mut self, o: &IdetCounts) {
        self.tff += o.tff;
        self.bff += o.bff;
        self.progressive += o.progressive;
        self.undetermined += o.undetermined;
    }
}

/// The verdict and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InterlaceVerdict {
    pub content: Content,
    pub treatment: Treatment,
    /// Deinterlaced with bwdif (one frame out per frame in).
    pub interlaced: bool,
    /// "tff" or "bff" when the fields are treated in that order, "auto" in
    /// each picture's own (see [`field_order`]).
    pub field_order: Option<String>,
    pub counts: IdetCounts,
    pub repeats: RepeatCounts,
    pub pulldown: PulldownFlags,
    pub reason: String,
}

impl InterlaceVerdict {
    /// The filters to apply, if any.
    pub fn filter(&self) -> Option<String> {
        let parity = match self.field_order.as_deref() {
            Some("bff") => "bff",
            Some("tff") => "tff",
            _ => "auto",
        };
        match self.treatment {
            Treatment::None => None,
            // Whole ticks of a film frame: `fps` then has nothing to drop or
            // repeat, wherever a piece starts (millisecond-rounded
            // timestamps made it drop a piece's last frame).
            Treatment::FilmTimestamps => Some("settb=1001/24000,setpts=N+STARTPTS,fps=24000/1001".into()),
            Treatment::Deinterlace => Some(format!("bwdif=mode=send_frame:parity={parity}:deint=all")),
            Treatment::DeinterlaceMarked => Some("bwdif=mode=send_frame:parity=auto:deint=interlaced".into()),
            Treatment::Ivtc => Some(format!(
                "fieldmatch=order={parity}:combmatch=full,bwdif=mode=send_frame:parity={parity}:deint=interlaced,decimate=cycle={IVTC_CYCLE}"
            )),
        }
    }

    /// The output's frame rate when the treatment sets one: film's, from
    /// inverse telecine of `source_fps` or from evened-out soft telecine.
    /// A source within 0.05% of NTSC's 29.97 (a rate read from rounded
    /// timestamps) gives film's exact 23.976: the chunked path places every
    /// frame by this rate, and 0.01% off is 0.7 s over two hours.
    pub fn output_fps(&self, source_fps: Option<f64>) -> Option<f64> {
        match (self.treatment, self.decimation_cycle()) {
            (Treatment::Ivtc, Some(c)) => source_fps.map(|f| {
                let kept = f * (c - 1) as f64 / c as f64;
                if (kept / FILM_FPS - 1.0).abs() < 0.0005 { FILM_FPS } else { kept }
            }),
            (Treatment::FilmTimestamps, _) => Some(FILM_FPS),
            _ => None,
        }
    }

    /// Whether combed pictures are left as they are: soft telecine whose
    /// video stretches idet sees combed, coded as progressive pictures.
    pub fn leaves_combing(&self) -> bool {
        self.content == Content::SoftTelecine
            && self.treatment == Treatment::None
            && self.reason.contains(CODED_PROGRESSIVE)
    }

    /// Source frames per cycle of which one is dropped (inverse telecine).
    pub fn decimation_cycle(&self) -> Option<usize> {
        (self.treatment == Treatment::Ivtc).then_some(IVTC_CYCLE)
    }

    /// One line for people.
    pub fn describe(&self) -> &'static str {
        match (self.content, self.treatment) {
            (_, Treatment::Ivtc) if self.content == Content::Hybrid => {
                "hybrid telecine (mostly film), inverse telecine to 23.976 fps"
            }
            (_, Treatment::Ivtc) => "hard telecine (3:2 pulldown), inverse telecine to 23.976 fps",
            (_, Treatment::FilmTimestamps) => "soft telecine (repeat-field flags), film frames kept at 23.976 fps",
            (_, Treatment::DeinterlaceMarked) => {
                "soft telecine (repeat-field flags) with video stretches: frames and timestamps kept, the video's pictures deinterlaced with bwdif"
            }
            (Content::SoftTelecine, _) => "soft telecine (repeat-field flags), frames and timestamps kept",
            (Content::Hybrid, Treatment::Deinterlace) => "hybrid (mostly video), deinterlaced with bwdif",
            (_, Treatment::Deinterlace) => "interlaced, deinterlaced with bwdif",
            (Content::HardTelecine | Content::Hybrid, Treatment::None) => "telecined, left as it is",
            (Content::Interlaced, Treatment::None) => "interlaced, left as it is",
            (Content::Progressive, Treatment::None) => "progressive",
        }
    }
}

/// Parses the last "Multi frame detection" line of an idet run.
pub fn parse_idet(stderr: &str) -> Option<IdetCounts> {
    let line = stderr.lines().rev().find(|l| l.contains("Multi frame detection"))?;
    let rest = line.split("Multi frame detection:").nth(1)?;
    let field = |name: &str| -> Option<u64> {
        let after = rest.split(name).nth(1)?;
        after.split_whitespace().next()?.parse().ok()
    };
    Some(IdetCounts {
        tff: field("TFF:")?,
        bff: field("BFF:")?,
        progressive: field("Progressive:")?,
        undetermined: field("Undetermined:").unwrap_or(0),
    })
}

/// How far the pictures' own field-order flags agree with idet, frame by
/// frame: of the frames idet judged interlaced, those whose picture is
/// flagged in the order idet saw, and the others (flagged the other way,
/// or progressive).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FlagAgreement {
    pub agree: u64,
    pub disagree: u64,
    /// Of those that disagree, the pictures flagged progressive.
    pub combed_unmarked: u64,
    /// Frames flagged progressive, whatever idet saw.
    pub unmarked: u64,
}

/// Share of idet's interlaced frames whose flags must agree with it for the
/// fields to be treated in each picture's own order.
pub const FLAGS_AGREE_SHARE: f64 = 0.9;

impl FlagAgreement {
    fn add(&mut self, o: &FlagAgreement) {
        self.agree += o.agree;
        self.disagree += o.disagree;
        self.combed_unmarked += o.combed_unmarked;
        self.unmarked += o.unmarked;
    }

    /// Whether most of the frames idet calls interlaced are pictures
    /// flagged progressive (deinterlacing by the flags leaves them combed).
    fn combed_mostly_unmarked(&self) -> bool {
        self.combed_unmarked * 2 > self.agree + self.disagree
    }
}

/// Reads one sample's frames: each picture's flag as decoded (showinfo's
/// `i:T`, `i:B` or `i:P`, before idet, which sets the flags to what it
/// sees) beside idet's verdict of it (`lavfi.idet.multiple.current_frame`,
/// printed by `metadata` after idet), frame by frame in order.
pub fn parse_flag_agreement(output: &str) -> FlagAgreement {
    let flags = output.lines().filter_map(|l| {
        l.contains("Parsed_showinfo").then(|| l.split(" i:").nth(1)).flatten().and_then(|r| r.chars().next())
    });
    let judged = output.lines().filter_map(|l| l.split("lavfi.idet.multiple.current_frame=").nth(1)).map(str::trim);
    let mut out = FlagAgreement::default();
    for (flag, judged) in flags.zip(judged) {
        out.unmarked += u64::from(flag == 'P');
        match (judged, flag) {
            ("tff", 'T') | ("bff", 'B') => out.agree += 1,
            ("tff" | "bff", _) => {
                out.disagree += 1;
                out.combed_unmarked += u64::from(flag == 'P');
            }
            _ => {}
        }
    }
    out
}

/// `v` with its fields treated in each picture's own order where the
/// pictures' flags agree with idet ([`FLAGS_AGREE_SHARE`] of its interlaced
/// frames): a disc whose order changes (PAL extras of DV and film
/// sources) has each stretch flagged right, and the order judged over the
/// samples, forced on all of it, deinterlaced the other stretches with the
/// wrong parity (26 dB against the pictures, 33 in their own order). The
/// order idet judged stays where flags are missing or wrong, and in bottom
/// field first video.
pub fn follow_picture_flags(mut v: InterlaceVerdict) -> InterlaceVerdict {
    let flags = v.pulldown.pictures;
    let judged = flags.agree + flags.disagree;
    let agrees = judged > 0 && flags.agree as f64 >= FLAGS_AGREE_SHARE * judged as f64;
    // (Each picture's own order takes one flagged progressive for top field
    // first: in bottom-field-first video, pictures an encoder coded as
    // progressive anywhere the samples did not look, a title or a still,
    // would be deinterlaced in the wrong order.)
    if agrees && v.field_order.as_deref() == Some("tff") {
        v.field_order = Some("auto".into());
        v.reason = format!(
            "{}; fields in each picture's own order (its flag agrees with idet on {} of {judged} frames)",
            v.reason, flags.agree
        );
    }
    v
}

/// The stream's declared field order as "tff"/"bff".
fn declared_order(declared: Option<&str>) -> Option<String> {
    match declared {
        Some("tt" | "tb") => Some("tff".to_string()),
        Some("bb" | "bt") => Some("bff".to_string()),
        _ => None,
    }
}

/// Whether a frame rate is NTSC video's 29.97 (or 30) fps, the only rate
/// 3:2 pulldown produces.
pub fn is_ntsc_video_rate(fps: Option<f64>) -> bool {
    fps.is_some_and(|f| (29.9..=30.05).contains(&f))
}

/// Whether 3:2 pulldown can be in video at `fps` (its average rate): NTSC
/// video rates, and a hybrid's average between film and video (26 fps),
/// but not PAL's 25 nor film's 23.976 or 24.
fn pulldown_possible(fps: Option<f64>) -> bool {
    fps.is_some_and(|f| (24.1..=30.05).contains(&f) && !(24.9..=25.1).contains(&f))
}

/// Share of interlaced frames among judged ones that makes the verdict
/// "interlaced" for a stream that declares `declared` field order.
fn needed_share(declared: Option<&str>) -> f64 {
    match declared {
        Some("tt" | "bb" | "tb" | "bt") => SHARE_IF_FLAGGED_INTERLACED,
        Some("progressive") => SHARE_IF_FLAGGED_PROGRESSIVE,
        _ => SHARE_IF_UNFLAGGED,
    }
}

/// Whether the combing verdict of `counts` (rates without pulldown, where
/// only the share of interlaced frames decides) stands whatever `remaining`
/// further samples of `frames` frames each would show: all of them
/// interlaced could not reach the share needed, or all of them progressive
/// could not take it below. Interlace detection then stops early: one
/// sample settles most progressive films flagged as such.
pub fn share_settled(counts: &IdetCounts, remaining: usize, frames: u32, declared: Option<&str>) -> bool {
    let interlaced = (counts.tff + counts.bff) as f64;
    let decided = interlaced + counts.progressive as f64;
    if decided == 0.0 {
        return remaining == 0;
    }
    // (idet may count a frame or two past `frames` at the end of a run.)
    let more = remaining as f64 * f64::from(frames + 2);
    let needed = needed_share(declared);
    (interlaced + more) / (decided + more) < needed || interlaced / (decided + more) >= needed
}

/// Decides from idet's counts, the repeated fields' cadence, the decoded
/// frames' repeat-field flags, the stream's declared field order and frame
/// rate, and the configured `mode`.
pub fn decide(
    counts: IdetCounts,
    repeats: RepeatCounts,
    flags: PulldownFlags,
    declared: Option<&str>,
    fps: Option<f64>,
    mode: FieldMode,
) -> InterlaceVerdict {
    let (content, auto, why) = classify(&counts, &repeats, &flags, declared, fps);
    let (treatment, reason) = match mode {
        FieldMode::Auto => (auto, why),
        // 3:2 pulldown exists at NTSC video rates only (a hybrid averages
        // between): forced on another rate (a PAL or film-rate rip in a
        // library of NTSC DVDs), it dropped one frame in five (25 fps came
        // out 20).
        FieldMode::Ivtc if !pulldown_possible(fps) => {
            let rate = fps.map_or("an unknown rate".to_string(), |f| format!("{f:.3} fps"));
            (
                auto,
                format!(
                    "ivtc forced (processing.interlace), but the video is at {rate}, where no 3:2 pulldown can be: left as auto decides; {why}"
                ),
            )
        }
        forced => {
            let t = match forced {
                FieldMode::Ivtc => Treatment::Ivtc,
                FieldMode::Deinterlace => Treatment::Deinterlace,
                _ => Treatment::None,
            };
            (t, format!("{} forced by processing.interlace (auto would have chosen {auto:?}); {why}", forced.name()))
        }
    };
    let interlaced_frames = counts.tff + counts.bff;
    let judged_order = (interlaced_frames > 0).then(|| if counts.bff > counts.tff { "bff" } else { "tff" }.to_string());
    let fields = matches!(treatment, Treatment::Deinterlace | Treatment::Ivtc);
    let field_order = fields.then(|| judged_order.or_else(|| declared_order(declared))).flatten();
    InterlaceVerdict {
        content,
        treatment,
        interlaced: treatment == Treatment::Deinterlace,
        field_order,
        counts,
        repeats,
        pulldown: flags,
        reason,
    }
}

/// What the frames are, what `auto` would do with them, and why: soft
/// pulldown by the decoder's flags first, then hard telecine and hybrids by
/// the repeated fields' cadence (at NTSC video rates), then idet's share of
/// interlaced frames.
fn classify(
    counts: &IdetCounts,
    repeats: &RepeatCounts,
    flags: &PulldownFlags,
    declared: Option<&str>,
    fps: Option<f64>,
) -> (Content, Treatment, String) {
    // Film's share: of the cycles where idet saw the cadence, or of the
    // samples that show it at all, whichever is more (see
    // `film_sample_share`).
    let film = repeats.film_share().max(repeats.film_sample_share());
    let all_film = repeats.film_share() >= FILM_SHARE_TELECINE || repeats.film_sample_share() >= FILM_WINDOWS_TELECINE;
    let pulldown = is_ntsc_video_rate(fps) && repeats.cadence_share() >= CADENCE_SHARE;
    let rate = fps.map_or("unknown rate".to_string(), |f| format!("{f:.3} fps"));
    if flags.share() >= SOFT_PULLDOWN_SHARE {
        soft_telecine(flags, counts)
    } else if pulldown && all_film {
        (Content::HardTelecine, Treatment::Ivtc, format!("{}; {rate}", telecine_evidence(repeats)))
    } else if pulldown && film >= FILM_SHARE_HYBRID {
        let t = if film >= FILM_SHARE_IVTC { Treatment::Ivtc } else { Treatment::Deinterlace };
        let side = if t == Treatment::Ivtc {
            "film dominates: inverse telecine keeps it clean (video stretches are deinterlaced where combed and decimated)"
        } else {
            "video dominates: deinterlaced (the film stretches keep their judder)"
        };
        (Content::Hybrid, t, format!("{}; {rate}; {side}", telecine_evidence(repeats)))
    } else {
        by_idet(counts, repeats, declared)
    }
}

/// Soft pulldown: the decoder's repeat-field flags make the frames.
fn soft_telecine(flags: &PulldownFlags, counts: &IdetCounts) -> (Content, Treatment, String) {
    let rate = flags.fps.map_or("unknown".to_string(), |f| format!("{f:.3}"));
    let (t, what) = if flags.film_rate() {
        (Treatment::FilmTimestamps, "the decoder gives film frames: kept, timestamps evened out to 23.976 fps".into())
    } else {
        video_stretches(counts, &flags.pictures)
    };
    let why = format!(
        "{} of {} decoded frames carry a repeat-field flag (soft pulldown), {rate} fps by their timestamps; {what}",
        flags.repeat_flagged, flags.frames
    );
    (Content::SoftTelecine, t, why)
}

/// Share of idet's judged frames seen interlaced from which soft telecine's
/// video stretches are taken to be interlaced video (their pictures are
/// then deinterlaced where the stream marks them so: the film's frames,
/// marked progressive as every frame with a repeat-field flag must be,
/// are left alone).
pub const SOFT_VIDEO_COMBED_SHARE: f64 = 0.05;

/// How a reason says combed pictures are coded as progressive ones.
const CODED_PROGRESSIVE: &str = "coded as progressive pictures";

/// What becomes of soft telecine that is not film's rate throughout (it
/// has stretches of video), by idet's `counts`: the video's pictures
/// deinterlaced where idet saw combing (left as they were, a DVD's 29.97i
/// credits came out combed, and passed), and why.
fn video_stretches(counts: &IdetCounts, pictures: &FlagAgreement) -> (Treatment, String) {
    let interlaced = counts.tff + counts.bff;
    let judged = interlaced + counts.progressive;
    let share = if judged == 0 { 0.0 } else { interlaced as f64 / judged as f64 };
    if share >= SOFT_VIDEO_COMBED_SHARE && pictures.combed_mostly_unmarked() {
        let said = format!(
            "not film's rate throughout (video stretches, {:.0}% of {judged} judged frames interlaced, most of them \
             {CODED_PROGRESSIVE}): frames and timestamps kept, the combed pictures left as they are \
             (processing.interlace = deinterlace deinterlaces every frame, the film's too)",
            share * 100.0
        );
        (Treatment::None, said)
    } else if share >= SOFT_VIDEO_COMBED_SHARE {
        let said = format!(
            "not film's rate throughout (video stretches, {:.0}% of {judged} judged frames interlaced): frames and \
             timestamps kept, the pictures the stream marks interlaced deinterlaced",
            share * 100.0
        );
        (Treatment::DeinterlaceMarked, said)
    } else {
        (Treatment::None, "not film's rate throughout (video stretches): frames and timestamps kept".into())
    }
}

/// How far the film's real span may be from its frames at 23.976 fps for
/// its timestamps to be evened out (a few cadence breaks at edits).
pub const FILM_SPAN_TOLERANCE: f64 = 0.1;

/// Soft telecine whose timestamps are to be evened out (`v`) keeps them
/// instead when its `frames` frames, from first to last, do not span
/// `span` seconds at film's rate: stretches of 29.97 video (credits, effects
/// shots) that the samples missed would last a quarter longer, and all that
/// follows them be late.
pub fn film_rate_throughout(mut v: InterlaceVerdict, frames: usize, span: f64) -> InterlaceVerdict {
    let evened = frames as f64 / FILM_FPS;
    if v.treatment != Treatment::FilmTimestamps || (evened - span).abs() <= FILM_SPAN_TOLERANCE {
        return v;
    }
    let (treatment, what) = video_stretches(&v.counts, &v.pulldown.pictures);
    v.treatment = treatment;
    v.reason = format!(
        "{} of {} decoded frames carry a repeat-field flag (soft pulldown), but its {frames} frames span \
         {span:.3} s, {evened:.3} s at 23.976 fps: {what}",
        v.pulldown.repeat_flagged, v.pulldown.frames
    );
    v
}

/// Interlaced or progressive by idet's share of interlaced frames (the
/// share [`needed_share`] for the declared field order), or by the stream's
/// flag when idet judged no frame.
fn by_idet(counts: &IdetCounts, repeats: &RepeatCounts, declared: Option<&str>) -> (Content, Treatment, String) {
    let interlaced_frames = counts.tff + counts.bff;
    let decided = interlaced_frames + counts.progressive;
    if decided == 0 {
        let declared_interlaced = matches!(declared, Some("tt" | "bb" | "tb" | "bt"));
        let t = if declared_interlaced { Treatment::Deinterlace } else { Treatment::None };
        let c = if declared_interlaced { Content::Interlaced } else { Content::Progressive };
        return (c, t, format!("idet could not judge any frame; the stream says {}", declared.unwrap_or("nothing")));
    }
    let share = interlaced_frames as f64 / decided as f64;
    let needed = needed_share(declared);
    let why = format!(
        "idet: {:.0}% of {decided} judged frames interlaced (TFF {}, BFF {}, progressive {}; {:.0}% needed); stream field order {}; {}",
        share * 100.0,
        counts.tff,
        counts.bff,
        counts.progressive,
        needed * 100.0,
        declared.unwrap_or("unknown"),
        telecine_evidence(repeats)
    );
    if share >= needed {
        (Content::Interlaced, Treatment::Deinterlace, why)
    } else {
        (Content::Progressive, Treatment::None, why)
    }
}

/// The repeated fields' cadence, as the reasons quote it.
fn telecine_evidence(repeats: &RepeatCounts) -> String {
    format!(
        "3:2 pulldown in {:.0}% of five-frame cycles and {} of {} windows of {WINDOW_FRAMES} frames ({} of {} frames repeat a field, top {}, bottom {}; {:.0}% on the cadence)",
        repeats.film_share() * 100.0,
        repeats.film_samples,
        repeats.samples,
        repeats.repeated(),
        repeats.frames(),
        repeats.top,
        repeats.bottom,
        repeats.cadence_share() * 100.0
    )
}

/// Runs idet at a few points of `input` (a longer stretch from the start
/// of files up to a minute), whose video stream is `video`, side by side,
/// and decides. Only a 29.97 fps stream can carry 3:2 pulldown: there idet
/// looks at more frames (the cadence needs them) and the decoder's
/// repeat-field flags are read too (soft telecine); other rates get the
/// short combing check.
pub fn detect(
    (ffmpeg, ffprobe): (&Path, &Path),
    input: &Path,
    duration: f64,
    video: &Stream,
    mode: FieldMode,
    cancel: &Cancel,
) -> InterlaceVerdict {
    let (declared, fps) = (video.field_order.as_deref(), video.frame_rate());
    let ntsc = is_ntsc_video_rate(fps);
    let (points, frames): (Vec<f64>, u32) = match (duration > 60.0, ntsc) {
        (true, true) => ([0.1, 0.3, 0.5, 0.7, 0.9].iter().map(|f| duration * f).collect(), FRAMES_PER_SAMPLE),
        (true, false) => ([0.2, 0.5, 0.8].iter().map(|f| duration * f).collect(), FRAMES_COMBING_CHECK),
        (false, true) => (vec![0.0], FRAMES_SHORT_FILE),
        (false, false) => (vec![0.0], FRAMES_COMBING_CHECK),
    };
    let sample = |at: &f64| sample_at((ffmpeg, ffprobe), input, *at, frames, ntsc, cancel);
    // Pulldown needs every sample (its cadence and flags); the combing
    // check looks at the first point alone, and at the others (side by
    // side) only when they could still change its verdict.
    let samples = if ntsc || points.len() < 2 {
        super::parallel::parallel(&points, sample)
    } else {
        let first = sample(&points[0]);
        let seen = first.0.unwrap_or_default();
        let mut done = vec![first];
        if !share_settled(&seen, points.len() - 1, frames, declared) {
            done.extend(super::parallel::parallel(&points[1..], sample));
        }
        done
    };
    let mut total = IdetCounts::default();
    let mut repeats = RepeatCounts::default();
    let mut flags = PulldownFlags::default();
    for (c, r, f) in &samples {
        if let Some(c) = c {
            total.add(c);
        }
        repeats.add(r);
        flags.add(f);
    }
    follow_picture_flags(decide(total, repeats, flags, declared, fps, mode))
}

/// What one sample of interlace detection saw: idet's counts (`None` when it
/// reported none), the repeated fields, the decoder's repeat-field flags.
type Sample = (Option<IdetCounts>, RepeatCounts, PulldownFlags);

/// Runs idet on `frames` frames of `input` from `at` seconds, and reads
/// the decoder's repeat-field flags of the same frames when `ntsc`.
fn sample_at(
    (ffmpeg, ffprobe): (&Path, &Path),
    input: &Path,
    at: f64,
    frames: u32,
    ntsc: bool,
    cancel: &Cancel,
) -> Sample {
    if cancel.is_cancelled() {
        return (None, RepeatCounts::default(), PulldownFlags::default());
    }
    let mut a = FfmpegArgs::default();
    a.extend(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", "-threads", "1", "-ss"])
        .arg(format!("{at:.3}"))
        .input(input)
        .extend(["-map", "0:v:0", "-an", "-sn", "-dn", "-vf"])
        .arg("showinfo,idet,metadata=print")
        .arg("-frames:v")
        .arg(frames.to_string())
        .extend(["-f", "null", "-"]);
    // idet reports on stderr; run it like every other child (own process
    // group, ended on a stop request).
    let mut text = String::new();
    let _ = crate::tools::process::run_lines(&mut a.command(ffmpeg), "interlace detection", cancel, |line| {
        if let crate::tools::process::Line::Err(l) = line {
            text.push_str(l);
            text.push('\n');
        }
    });
    // The decoder's repeat-field flags (soft pulldown), on the same frames.
    let flags = if ntsc {
        let query = Query::frames("pts_time,repeat_pict").stream("v:0").single_thread();
        query
            .interval(format!("{at:.3}%+#{frames}"))
            .run(ffprobe, input, "pulldown flags", cancel)
            .map(|o| parse_pulldown(&o))
            .unwrap_or_default()
    } else {
        PulldownFlags::default()
    };
    let flags = PulldownFlags { pictures: parse_flag_agreement(&text), ..flags };
    (parse_idet(&text), parse_repeats(&text), flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_idet() {
        let log = "[Parsed_idet_0 @ 0x1] Repeated Fields: Neither:    59 Top:     0 Bottom:     0\n\
                   [Parsed_idet_0 @ 0x1] Single frame detection: TFF:    50 BFF:     0 Progressive:     2 Undetermined:     7\n\
                   [Parsed_idet_0 @ 0x1] Multi frame detection: TFF:    57 BFF:     0 Progressive:     1 Undetermined:     1\n";
        assert_eq!(parse_idet(log), Some(IdetCounts { tff: 57, bff: 0, progressive: 1, undetermined: 1 }));
        assert_eq!(parse_idet("no idet here"), None);
    }

    #[test]
    fn combing_check_stops_once_the_rest_cannot_change_the_verdict() {
        let c = |interlaced: u64, progressive: u64| IdetCounts { tff: interlaced, progressive, ..Default::default() };
        let flagged = Some("progressive");
        // Flagged progressive (90% needed): a clean first sample settles it,
        // two more samples all combed could reach only 120 of 180.
        assert!(share_settled(&c(0, 60), 2, 60, flagged));
        assert!(share_settled(&c(30, 30), 2, 60, flagged));
        // 54 of 60 combed: two more combed samples would make 174 of 180.
        assert!(!share_settled(&c(54, 6), 2, 60, flagged));
        // Unflagged (50%): two more combed samples could still make it.
        assert!(!share_settled(&c(0, 60), 2, 60, None));
        assert!(share_settled(&c(0, 60), 0, 60, None), "nothing left to sample");
        // Flagged interlaced (20%): 60 combed of 60 stays above 20% of 180.
        assert!(share_settled(&c(60, 0), 2, 60, Some("tt")));
        // Nothing judged yet: go on while samples remain.
        assert!(!share_settled(&c(0, 0), 1, 60, flagged));
        assert!(share_settled(&c(0, 0), 0, 60, flagged));
        // Whenever it settles, the full count agrees: the verdict of any
        // completion equals the settled one.
        for first in 0..=60u64 {
            if share_settled(&c(first, 60 - first), 2, 60, flagged) {
                let verdict = |more: u64| (first + more) as f64 / 180.0 >= SHARE_IF_FLAGGED_PROGRESSIVE;
                assert!((0..=120).all(|m| verdict(m) == verdict(0)), "first sample {first} combed");
            }
        }
    }

    const AUTO: FieldMode = FieldMode::Auto;
    const NO_FLAGS: PulldownFlags = PulldownFlags {
        frames: 0,
        repeat_flagged: 0,
        fps: None,
        pictures: FlagAgreement { agree: 0, disagree: 0, combed_unmarked: 0, unmarked: 0 },
    };
    const NTSC: Option<f64> = Some(29.97);

    fn c(tff: u64, bff: u64, progressive: u64) -> IdetCounts {
        IdetCounts { tff, bff, progressive, undetermined: 0 }
    }

    #[test]
    fn verdicts() {
        let none = RepeatCounts::default();
        let v = decide(c(57, 0, 1), none, NO_FLAGS, Some("progressive"), None, AUTO);
        assert!(v.interlaced);
        assert_eq!(v.filter().unwrap(), "bwdif=mode=send_frame:parity=tff:deint=all");
        let v = decide(c(0, 40, 5), none, NO_FLAGS, Some("bb"), None, AUTO);
        assert_eq!(v.field_order.as_deref(), Some("bff"));
        // Pictures flagged in the order idet sees: each in its own (a
        // disc's order may change); idet's where the flags are wrong.
        let agree = |agree, disagree, unmarked| FlagAgreement { agree, disagree, combed_unmarked: 0, unmarked };
        let with = |v: &InterlaceVerdict, pictures| {
            follow_picture_flags(InterlaceVerdict { pulldown: PulldownFlags { pictures, ..v.pulldown }, ..v.clone() })
        };
        let tff = decide(c(40, 0, 5), none, NO_FLAGS, Some("tt"), None, AUTO);
        let own = with(&tff, agree(38, 2, 0));
        assert_eq!(own.filter().unwrap(), "bwdif=mode=send_frame:parity=auto:deint=all");
        assert_eq!(with(&tff, agree(30, 10, 0)).field_order.as_deref(), Some("tff"));
        assert_eq!(with(&tff, agree(0, 0, 0)).field_order.as_deref(), Some("tff"));
        // Bottom field first keeps its order: each picture's own would take
        // one flagged progressive (a title, a still) for top field first.
        assert_eq!(with(&v, agree(40, 0, 0)).field_order.as_deref(), Some("bff"));
        assert_eq!(with(&tff, agree(40, 0, 3)).field_order.as_deref(), Some("auto"));
        let progressive = decide(c(2, 0, 150), none, NO_FLAGS, Some("tt"), Some(25.0), AUTO);
        assert_eq!(with(&progressive, agree(2, 0, 0)).filter(), None);
        // (showinfo, before idet, tells a frame before idet's verdict of the
        // one before it is printed.)
        let log = "[Parsed_showinfo_0 @ 0x2] n:   0 pts:      0 fmt:yuv420p s:360x288 i:T iskey:1\n\
                   [Parsed_showinfo_0 @ 0x2] n:   1 pts:     40 fmt:yuv420p s:360x288 i:T iskey:0\n\
                   [Parsed_metadata_2 @ 0x1] lavfi.idet.multiple.current_frame=tff\n\
                   [Parsed_showinfo_0 @ 0x2] n:   2 pts:     80 fmt:yuv420p s:360x288 i:P iskey:0\n\
                   [Parsed_metadata_2 @ 0x1] lavfi.idet.multiple.current_frame=bff\n\
                   [Parsed_showinfo_0 @ 0x2] n:   3 pts:    120 fmt:yuv420p s:360x288 i:P iskey:0\n\
                   [Parsed_metadata_2 @ 0x1] lavfi.idet.multiple.current_frame=progressive\n\
                   [Parsed_metadata_2 @ 0x1] lavfi.idet.multiple.current_frame=tff\n";
        let parsed = FlagAgreement { agree: 1, disagree: 2, combed_unmarked: 1, unmarked: 2 };
        assert_eq!(parse_flag_agreement(log), parsed);
        // Film content flagged interlaced (common on DVDs): trust idet.
        let v = decide(c(2, 0, 150), none, NO_FLAGS, Some("tt"), Some(25.0), AUTO);
        assert!(!v.interlaced);
        assert_eq!((v.content, v.filter()), (Content::Progressive, None));
        // Flagged progressive: only overwhelming evidence counts.
        assert!(!decide(c(52, 0, 9), none, NO_FLAGS, Some("progressive"), None, AUTO).interlaced);
        assert!(decide(c(58, 0, 2), none, NO_FLAGS, Some("progressive"), None, AUTO).interlaced);
        assert!(!decide(c(20, 0, 40), none, NO_FLAGS, None, None, AUTO).interlaced);
        // Nothing judged: the stream flag decides.
        assert!(decide(c(0, 0, 0), none, NO_FLAGS, Some("tt"), None, AUTO).interlaced);
        assert!(!decide(c(0, 0, 0), none, NO_FLAGS, Some("progressive"), None, AUTO).interlaced);
    }

    /// The per-frame flags of `cycles` five-frame cycles, `film` of them
    /// with 3:2 pulldown at places 2 (top) and 4 (bottom).
    fn flags(cycles: usize, film: usize) -> String {
        (0..cycles)
            .map(|i| if i < film { "nntnb" } else { "nnnnn" })
            .collect::<String>()
            .chars()
            .map(|f| {
                format!(
                    "[Parsed_metadata_1 @ 0x1] lavfi.idet.repeated.current_frame={}\n",
                    match f {
                        't' => "top",
                        'b' => "bottom",
                        _ => "neither",
                    }
                )
            })
            .collect()
    }

    #[test]
    fn cadence_of_repeated_fields() {
        let r = parse_repeats(&flags(24, 24));
        assert_eq!((r.frames(), r.top, r.bottom, r.on_cadence), (120, 24, 24, 48));
        assert_eq!((r.film_share(), r.cadence_share()), (1.0, 1.0));
        let r = parse_repeats(&flags(24, 6));
        assert_eq!(r.film_share(), 0.25);
        // Repeats scattered over every place of the cycle are not pulldown.
        let scattered: String = (0..120)
            .map(|i| {
                let f = if i % 7 == 0 { "top" } else { "neither" };
                format!("lavfi.idet.repeated.current_frame={f}\n")
            })
            .collect();
        let r = parse_repeats(&scattered);
        assert!(r.cadence_share() < 0.5, "{r:?}");
        assert_eq!(parse_repeats("nothing"), RepeatCounts::default());
    }

    #[test]
    fn telecine_verdicts() {
        // Hard telecine: idet calls most frames TFF, the cadence says film.
        let film = parse_repeats(&flags(60, 50));
        let v = decide(c(290, 0, 10), film, NO_FLAGS, Some("bt"), NTSC, AUTO);
        assert_eq!((v.content, v.treatment), (Content::HardTelecine, Treatment::Ivtc));
        assert_eq!(v.decimation_cycle(), Some(5));
        assert_eq!(
            v.filter().unwrap(),
            "fieldmatch=order=tff:combmatch=full,bwdif=mode=send_frame:parity=tff:deint=interlaced,decimate=cycle=5"
        );
        assert!(!v.interlaced);
        // Film's exact rate back from NTSC, also where the source's rate was
        // read from rounded timestamps; anything else as it comes.
        assert_eq!(v.output_fps(Some(30000.0 / 1001.0)), Some(FILM_FPS));
        assert_eq!(v.output_fps(Some(2997.0 / 100.0)), Some(FILM_FPS));
        assert_eq!(v.output_fps(Some(30.0)), Some(24.0));
        // The same pattern at 25 fps is no 3:2 pulldown.
        assert_ne!(decide(c(290, 0, 10), film, NO_FLAGS, Some("bt"), Some(25.0), AUTO).treatment, Treatment::Ivtc);
        // Film whose repeated fields idet finds in few of its cycles (film
        // coded with H.264) but in every sample is film.
        let weak: String = (0..60)
            .map(|i| if i % 4 == 0 { "nntnb" } else { "nnnnn" })
            .flat_map(|cycle| cycle.chars())
            .map(|f| {
                let f = match f {
                    't' => "top",
                    'b' => "bottom",
                    _ => "neither",
                };
                format!("lavfi.idet.repeated.current_frame={f}\n")
            })
            .collect();
        let weak = parse_repeats(&weak);
        assert!(weak.film_share() < FILM_SHARE_IVTC, "{weak:?}");
        let v = decide(c(290, 0, 10), weak, NO_FLAGS, Some("tt"), NTSC, AUTO);
        assert_eq!((v.content, v.treatment), (Content::HardTelecine, Treatment::Ivtc));
        // Hybrids, their video a stretch of samples without a repeat: inverse
        // telecine while film dominates, else bwdif.
        let samples = |film: usize, video: usize| {
            let mut r = RepeatCounts::default();
            (0..film).for_each(|_| r.add(&parse_repeats(&flags(60, 50))));
            (0..video).for_each(|_| r.add(&parse_repeats(&flags(60, 0))));
            r
        };
        let v = decide(c(290, 0, 10), samples(3, 2), NO_FLAGS, Some("tt"), NTSC, AUTO);
        assert_eq!((v.content, v.treatment), (Content::Hybrid, Treatment::Ivtc));
        let v = decide(c(290, 0, 10), samples(1, 3), NO_FLAGS, Some("tt"), NTSC, AUTO);
        assert_eq!((v.content, v.treatment), (Content::Hybrid, Treatment::Deinterlace));
        assert!(v.reason.contains("video dominates"), "{}", v.reason);
        // Interlaced video repeats nothing.
        let v = decide(c(300, 0, 0), parse_repeats(&flags(60, 0)), NO_FLAGS, Some("tt"), NTSC, AUTO);
        assert_eq!((v.content, v.treatment), (Content::Interlaced, Treatment::Deinterlace));
    }

    /// ffprobe's lines for soft pulldown: film frames at 50 and 33 ms in turn,
    /// every other one flagged.
    fn soft_frames(n: usize) -> String {
        (0..n)
            .map(|i| {
                let t = (i / 2) as f64 * 0.0834 + if i % 2 == 1 { 0.050 } else { 0.0 };
                format!("{t:.6},{}\n", 1 - i % 2)
            })
            .collect()
    }

    #[test]
    fn soft_telecine_keeps_its_frames_at_film_timestamps() {
        let f = parse_pulldown(&soft_frames(120));
        assert_eq!((f.frames, f.repeat_flagged), (120, 60));
        assert!(f.film_rate(), "{f:?}");
        let v = decide(c(0, 0, 120), RepeatCounts::default(), f, Some("progressive"), Some(29.97), AUTO);
        assert_eq!((v.content, v.treatment), (Content::SoftTelecine, Treatment::FilmTimestamps));
        assert_eq!(v.filter().as_deref(), Some("settb=1001/24000,setpts=N+STARTPTS,fps=24000/1001"));
        assert_eq!((v.decimation_cycle(), v.field_order.as_deref()), (None, None));
        // The whole stream decides too: 542 frames at film's rate last
        // 22.6 s; over 22.1 s, a stretch of video the samples missed.
        let whole = film_rate_throughout(v.clone(), 542, 542.0 / FILM_FPS + 0.05);
        assert_eq!(whole.treatment, Treatment::FilmTimestamps);
        let hybrid = film_rate_throughout(v.clone(), 542, 22.09);
        assert_eq!((hybrid.treatment, hybrid.filter()), (Treatment::None, None));
        assert!(hybrid.reason.contains("not film's rate throughout"), "{}", hybrid.reason);
        // Flags, but not film's rate throughout: timestamps are kept.
        let mixed = PulldownFlags { fps: Some(27.0), ..f };
        let v = decide(c(0, 0, 120), RepeatCounts::default(), mixed, Some("progressive"), Some(29.97), AUTO);
        assert_eq!((v.content, v.filter()), (Content::SoftTelecine, None));
        // ... and where idet saw the video stretches combed, the pictures
        // the stream marks interlaced are deinterlaced, one frame for one.
        let v = decide(c(30, 0, 110), RepeatCounts::default(), mixed, Some("tb"), Some(29.97), AUTO);
        let marked = "bwdif=mode=send_frame:parity=auto:deint=interlaced";
        assert_eq!((v.content, v.filter().as_deref()), (Content::SoftTelecine, Some(marked)));
        assert_eq!(v.decimation_cycle(), None);
        let combed = InterlaceVerdict { counts: c(30, 0, 110), ..v.clone() };
        let combed =
            film_rate_throughout(InterlaceVerdict { treatment: Treatment::FilmTimestamps, ..combed }, 542, 22.09);
        assert_eq!(combed.filter().as_deref(), Some(marked), "{}", combed.reason);
        // ... but where those pictures are flagged progressive, nothing
        // would change them: they are left, and it is said.
        let unmarked = FlagAgreement { agree: 0, disagree: 30, combed_unmarked: 30, unmarked: 140 };
        let coded = PulldownFlags { pictures: unmarked, ..mixed };
        let v = decide(c(30, 0, 110), RepeatCounts::default(), coded, Some("tb"), Some(29.97), AUTO);
        assert_eq!((v.filter(), v.leaves_combing()), (None, true), "{}", v.reason);
        // One sample at another rate keeps every timestamp as it is.
        let mut all = f;
        all.add(&PulldownFlags { fps: Some(29.97), ..f });
        all.add(&f);
        assert!(!all.film_rate(), "{all:?}");
        // Forced none: not even the timestamps.
        let v = decide(c(0, 0, 120), RepeatCounts::default(), f, None, None, FieldMode::None);
        assert_eq!(v.filter(), None);
        assert_eq!(parse_pulldown("nothing"), PulldownFlags::default());
    }

    #[test]
    fn forced_treatments() {
        let film = parse_repeats(&flags(60, 50));
        let v = decide(c(290, 0, 10), film, NO_FLAGS, Some("tt"), NTSC, FieldMode::None);
        assert_eq!((v.content, v.treatment, v.filter()), (Content::HardTelecine, Treatment::None, None));
        assert!(v.reason.starts_with("none forced"), "{}", v.reason);
        let v = decide(c(290, 0, 10), film, NO_FLAGS, Some("tt"), NTSC, FieldMode::Deinterlace);
        assert!(v.interlaced);
        let v =
            decide(c(0, 0, 100), RepeatCounts::default(), NO_FLAGS, Some("progressive"), Some(29.97), FieldMode::Ivtc);
        assert_eq!(v.treatment, Treatment::Ivtc);
        assert!(v.filter().unwrap().starts_with("fieldmatch=order=auto"), "{:?}", v.filter());
        // A hybrid's average rate: forced as asked.
        let v =
            decide(c(0, 0, 100), RepeatCounts::default(), NO_FLAGS, Some("progressive"), Some(26.3), FieldMode::Ivtc);
        assert_eq!(v.treatment, Treatment::Ivtc);
        // Not at an NTSC video rate (a PAL rip): no pulldown to undo.
        let v =
            decide(c(0, 0, 100), RepeatCounts::default(), NO_FLAGS, Some("progressive"), Some(25.0), FieldMode::Ivtc);
        assert_eq!((v.treatment, v.filter()), (Treatment::None, None));
        assert!(v.reason.contains("at 25.000 fps, where no 3:2 pulldown can be"), "{}", v.reason);
    }
}
