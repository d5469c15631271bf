//! The human view: the design's console layout (banners, ✓ ⚠ ✗ lines,
//! per-file and batch summaries) with live progress bars on a terminal and
//! plain lines elsewhere (pipes, `NO_COLOR`, CI).

use crate::analysis::Analysis;
use crate::events::{Check, Event, EventSink, Stage};
use crate::plan::EncodePlan;
use crate::report::{format_bytes, format_duration};
use crate::summary::{BatchSummary, FileSummary};
use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// How much the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors and the final summary.
    Quiet,
    Normal,
    /// Also validation details and every warning's context.
    Verbose,
}

/// Prints events for a person.
pub struct Terminal {
    verbosity: Verbosity,
    /// Live bars (a terminal) or plain lines.
    live: bool,
    /// Where the run log and failure reports go, named after a failure.
    run_log: Option<super::log::SharedLog>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Everything drawn live (the stage bar and one line per active segment).
    multi: Option<MultiProgress>,
    bar: Option<ProgressBar>,
    /// One line per segment being worked on (chunked path, live mode).
    segments: BTreeMap<usize, ProgressBar>,
    /// Segments finished and in all, for the current file's chunked video.
    segment_count: Option<(usize, usize)>,
    /// The video stage under way is the chunked path's.
    chunked: bool,
    /// Its segments' own encodes have begun (the survey is over).
    encoding: bool,
    /// Last plain-mode progress decile printed.
    last_decile: Option<(Stage, u64)>,
}

const RULE: &str = "----------------------------------------";
const DOUBLE: &str = "========================================";

impl Terminal {
    /// `live` picks progress bars; pass `console::Term::stdout().is_term()`.
    pub fn new(verbosity: Verbosity, live: bool) -> Terminal {
        Terminal { verbosity, live, run_log: None, state: Mutex::new(State::default()) }
    }

    /// The view, naming the `run_log`'s file (where one is written) in a
    /// summary with failures.
    pub fn with_run_log(self, run_log: Option<super::log::SharedLog>) -> Terminal {
        Terminal { run_log, ..self }
    }

    /// Prints a line; a stdout that went away (`| head`, a closed
    /// terminal) loses the view, not the encode.
    fn print(&self, state: &State, text: &str) {
        let line = || {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}").and_then(|()| out.flush());
        };
        match &state.multi {
            Some(multi) => multi.suspend(line),
            None => line(),
        }
    }

    fn ok(&self, s: &State, msg: &str) {
        if self.verbosity >= Verbosity::Normal {
            self.print(s, &format!("{} {msg}", style("✓").green()));
        }
    }

    fn warn(&self, s: &State, msg: &str) {
        if self.verbosity >= Verbosity::Normal {
            self.print(s, &format!("{} {}", style("⚠").yellow(), super::for_people(msg)));
        }
    }

    /// A failure: on stdout with the rest, but on stderr under `-q` (whose
    /// stdout may be thrown away: `drapto encode -q … >/dev/null` must
    /// still say which rip failed).
    fn error(&self, s: &State, msg: &str) {
        // (One line, whatever names it holds.)
        let line = format!("{} {}", style("✗").red(), super::for_people(msg));
        if self.verbosity == Verbosity::Quiet {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        } else {
            self.print(s, &line);
        }
    }

    fn banner(title: &str) -> String {
        format!("{DOUBLE}\n{:^40}\n{DOUBLE}", title)
    }

    fn file_block(f: &FileSummary) -> String {
        let truncated = f
            .truncated
            .map(|t| format!("\nTruncated rip: encoded the {:.1} s it holds of {:.1} s", t.ends_at, t.promised))
            .unwrap_or_default();
        format!(
            "File: {}\nInput size:  {}\nOutput size: {}\nReduction:   {:.2}%{truncated}",
            name(&f.input),
            format_bytes(f.input_bytes),
            format_bytes(f.output_bytes),
            f.reduction_percent
        )
    }

    /// Clears every live line.
    fn clear(state: &mut State) {
        for (_, b) in std::mem::take(&mut state.segments) {
            b.finish_and_clear();
        }
        if let Some(b) = state.bar.take() {
            b.finish_and_clear();
        }
        if let Some(m) = state.multi.take() {
            let _ = m.clear();
        }
    }

    fn start_bar(&self, state: &mut State, label: &str) {
        Self::clear(state);
        if !self.live || self.verbosity < Verbosity::Normal {
            return;
        }
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(Forgiving(console::Term::stdout())), 20);
        let multi = MultiProgress::with_draw_target(target);
        let bar = multi.add(ProgressBar::new(1000));
        bar.set_style(
            ProgressStyle::with_template("  {prefix:<9} [{bar:30.cyan/blue}] {percent:>3}% {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        state.bar = Some(bar);
        state.multi = Some(multi);
    }

    /// The live line of `segment`: what it is doing now.
    fn segment_line(&self, state: &mut State, segment: usize, text: String) {
        let Some(multi) = &state.multi else { return };
        let line = state.segments.entry(segment).or_insert_with(|| {
            let l = multi.add(ProgressBar::new_spinner());
            l.set_style(ProgressStyle::with_template("    {spinner} {msg}").expect("valid template"));
            l.enable_steady_tick(Duration::from_millis(250));
            l
        });
        line.set_message(format!("segment {:>3}: {text}", segment + 1));
    }
}

fn name(p: &Path) -> String {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string());
    super::for_people(&name)
}

/// A progress line's figures after the percentage. Segments and frames are
/// the video's; audio has a speed; the mux only its share done.
fn progress_message(
    stage: Stage,
    segments: Option<(usize, usize)>,
    fps: f64,
    speed: f64,
    eta_seconds: Option<f64>,
    projected_bytes: Option<u64>,
) -> String {
    let eta = eta_seconds.map(format_duration).unwrap_or_else(|| "--".into());
    let size = projected_bytes.map(format_bytes).unwrap_or_else(|| "--".into());
    match stage {
        Stage::Video => {
            let done = segments.map(|(d, t)| format!("{d}/{t} segments, ")).unwrap_or_default();
            format!("{done}{fps:.1} fps, {speed:.2}x, ETA {eta}, ~{size}")
        }
        Stage::Audio(_) => format!("{speed:.2}x, ETA {eta}, ~{size}"),
        _ => String::new(),
    }
}

/// The chunked path's progress before its first segment encode (the slope
/// allocation's survey: nothing encoded, no speed to show).
fn survey_message(eta_seconds: Option<f64>) -> String {
    format!("surveying the segments, ETA {}", eta_seconds.map(format_duration).unwrap_or_else(|| "--".into()))
}

impl EventSink for Terminal {
    fn emit(&self, event: &Event) {
        let mut state = self.state.lock().expect("terminal lock");
        let normal = self.verbosity >= Verbosity::Normal;
        match event {
            Event::BatchStarted { .. } => {}
            Event::FileStarted { index, total, input, .. } => {
                state.segment_count = None;
                if normal {
                    let of = if *total > 1 { format!(" ({index}/{total})") } else { String::new() };
                    self.print(&state, &format!("\n{}\n", Self::banner(&format!("Processing {}{of}", name(input)))));
                }
            }
            Event::AnalysisComplete { analysis, plan, .. } => self.on_analysis(&state, analysis, plan),
            Event::StageStarted { stage, detail, .. } => self.on_stage_started(&mut state, *stage, detail),
            Event::Progress { .. } => self.on_progress(&mut state, event),
            Event::StageComplete { stage, seconds, detail, .. } => {
                Self::clear(&mut state);
                self.ok(&state, format!("{} done in {} {detail}", stage.label(), format_duration(*seconds)).trim_end());
            }
            Event::SegmentStep { segment, step, .. } => self.on_segment_step(&mut state, *segment, step),
            Event::SegmentProbe { segment, tier, crf, score, .. } => {
                if self.verbosity >= Verbosity::Verbose {
                    let text = format!("    segment {} tier {tier}: CRF {crf} → VMAF {score:.2}", segment + 1);
                    self.print(&state, &text);
                }
            }
            Event::SegmentComplete { .. } => self.on_segment_complete(&mut state, event),
            Event::ValidationComplete { passed, checks, .. } => self.on_validation(&state, *passed, checks),
            Event::FileComplete { summary } => {
                if normal {
                    self.print(&state, &file_complete(summary));
                }
            }
            Event::FileSkipped { input, reason, busy, .. } if normal => {
                let what = if *busy { "Not encoded now" } else { "Skipped" };
                let reason = super::for_people(reason);
                self.print(&state, &format!("{} {what} {}: {reason}", style("⚠").yellow(), name(input)));
            }
            Event::FileSkipped { .. } => {}
            Event::FileFailed { error, .. } => {
                Self::clear(&mut state);
                self.error(&state, error);
            }
            Event::FileInterrupted { input, reason } => {
                Self::clear(&mut state);
                self.warn(&state, &format!("{} interrupted: {reason}", name(input)));
            }
            Event::Warning { message, .. } => self.warn(&state, message),
            Event::Queue { waiting, settling } if normal => {
                let next = waiting.first().map(|p| format!("; next: {}", name(p))).unwrap_or_default();
                self.print(&state, &format!("  queue: {} waiting, {} settling{next}", waiting.len(), settling.len()));
            }
            Event::Queue { .. } => {}
            Event::BatchComplete { summary } => {
                let log = self.run_log.as_ref().map(|l| super::log::lock(l).path().to_path_buf());
                self.print(&state, &final_summary(summary, log.as_deref()));
            }
        }
    }
}

/// What the encode changes in `a`'s picture, in words (none: nothing).
fn picture_changes(a: &Analysis) -> Vec<String> {
    use crate::analysis::interlace::Treatment;
    let mut said = Vec::new();
    if let Some(c) = a.crop.crop {
        said.push(format!("black bars cropped ({}x{} kept)", c.width, c.height));
    }
    match a.interlace.treatment {
        Treatment::None => {}
        Treatment::Deinterlace => said.push("deinterlaced (bwdif)".into()),
        Treatment::DeinterlaceMarked => said.push("the video stretches' pictures deinterlaced (bwdif)".into()),
        Treatment::Ivtc => said.push("inverse telecine to the film's 23.976 frames (four of each five)".into()),
        Treatment::FilmTimestamps => said.push("soft telecine played at the film's rate".into()),
    }
    said
}

impl Terminal {
    /// What analysis found, and the plan.
    fn on_analysis(&self, state: &State, a: &Analysis, plan: &EncodePlan) {
        let (v, subtitles) = (&a.video, a.mux.count(crate::tools::mkvtoolnix::TrackKind::Subtitles));
        let found = format!("{}x{} {} ({}), {}", v.width, v.height, a.resolution.name(), v.codec, a.hdr.kind.name());
        self.ok(state, &format!("Input analysis complete: {found}"));
        let tracks = format!("{} audio track(s), {subtitles} subtitle(s)", a.audio.len());
        self.ok(state, &format!("Detected {tracks}; {}", a.mux.describe_rest()));
        if self.verbosity >= Verbosity::Normal {
            let audio: Vec<String> =
                plan.audio.iter().map(|t| format!("Opus {}ch {}k", t.channels, t.bitrate_kbps)).collect();
            let preset = plan.video.encoder.preset;
            let quality = match &plan.chunked {
                Some(c) => format!("VMAF target {} (a CRF for each segment)", c.target),
                None => format!("CRF {}", plan.video.crf),
            };
            self.print(state, &format!("  Plan: SVT-AV1 preset {preset} {quality}, {}", audio.join(", ")));
            // What changes the picture, where anything does: the output was
            // 320x160, or 4/5 of the frames, and nothing said so.
            let picture = picture_changes(a);
            if !picture.is_empty() {
                self.print(state, &format!("  Picture: {}", picture.join(", ")));
            }
        }
    }

    /// A progress update: the bar moved, or (without a live terminal) a
    /// line at each tenth.
    fn on_stage_started(&self, state: &mut State, stage: Stage, detail: &str) {
        if !self.live && self.verbosity >= Verbosity::Normal {
            self.print(state, format!("  {} {detail}", stage.label()).trim_end());
        }
        state.last_decile = None;
        if stage == Stage::Video {
            state.chunked = detail.starts_with("chunked");
            state.encoding = false;
        }
        self.start_bar(state, &stage.label());
    }

    fn on_segment_step(&self, state: &mut State, segment: usize, step: &crate::events::SegmentStep) {
        // The survey is over once a segment's own encode starts.
        if matches!(step, crate::events::SegmentStep::Encoding { .. }) && !state.encoding {
            state.encoding = true;
            if let Some(bar) = state.bar.as_ref().filter(|_| state.segment_count.is_none_or(|(d, _)| d == 0)) {
                bar.set_message("encoding the segments");
            }
        }
        if self.live && self.verbosity >= Verbosity::Normal {
            self.segment_line(state, segment, step.describe());
        } else if self.verbosity >= Verbosity::Verbose {
            self.print(state, &format!("    segment {}: {}", segment + 1, step.describe()));
        }
    }

    fn on_progress(&self, state: &mut State, event: &Event) {
        let Event::Progress { stage, percent, fps, speed, eta_seconds, projected_bytes, .. } = event else {
            return;
        };
        let surveying = *stage == Stage::Video
            && state.chunked
            && !state.encoding
            && *fps == 0.0
            && state.segment_count.is_none_or(|(d, _)| d == 0);
        let msg = if surveying {
            survey_message(*eta_seconds)
        } else {
            progress_message(*stage, state.segment_count, *fps, *speed, *eta_seconds, *projected_bytes)
        };
        if let Some(bar) = &state.bar {
            bar.set_position((*percent * 10.0) as u64);
            bar.set_message(msg);
        } else if self.verbosity >= Verbosity::Normal && !self.live {
            let decile = (*percent / 10.0).floor() as u64;
            if decile > 0 && state.last_decile.is_none_or(|(s, d)| s != *stage || d < decile) {
                state.last_decile = Some((*stage, decile));
                self.print(state, format!("  {} {:>3.0}% {msg}", stage.label(), percent).trim_end());
            }
        }
    }

    /// A finished segment: counted, its live line cleared, its figures shown.
    fn on_segment_complete(&self, state: &mut State, event: &Event) {
        let Event::SegmentComplete {
            segment,
            total,
            done,
            crf,
            tier,
            predicted_vmaf,
            prediction,
            measured_vmaf,
            bytes,
            host,
            reused,
            ..
        } = event
        else {
            return;
        };
        // Counted by the encoder: a resumed run's earlier segments too.
        state.segment_count = Some((*done, *total));
        if *reused {
            // Told once, by the "resuming" warning.
            return;
        }
        if let Some(line) = state.segments.remove(segment) {
            line.finish_and_clear();
            if let Some(m) = &state.multi {
                m.remove(&line);
            }
        }
        if self.verbosity >= Verbosity::Normal {
            let measured = measured_vmaf.map_or("n/a".into(), |m| format!("{m:.2}"));
            let on = host.as_ref().map(|h| format!("  on {h}")).unwrap_or_default();
            let vmaf = format!("VMAF predicted {predicted_vmaf:.2}{}, measured {measured}", prediction.suffix());
            let n = segment + 1;
            let text =
                format!("  segment {n:>3}/{total}: CRF {crf:>5.2} tier {tier}  {vmaf}  {}{on}", format_bytes(*bytes));
            self.print(state, &text);
        }
    }

    /// Validation's verdict: failed checks always, every check when verbose.
    fn on_validation(&self, state: &State, passed: bool, checks: &[Check]) {
        if passed {
            self.ok(state, &format!("Output validated ({} checks)", checks.len()));
        } else {
            for c in checks.iter().filter(|c| !c.passed) {
                self.error(state, &format!("check {} failed: {}", c.name, c.detail));
            }
        }
        if self.verbosity >= Verbosity::Verbose {
            for c in checks {
                let verdict = if c.passed { "ok" } else { "FAILED" };
                self.print(state, &format!("    {verdict} {}: {}", c.name, c.detail));
            }
        }
    }
}

/// The block shown when a file is finished.
fn file_complete(s: &FileSummary) -> String {
    format!(
        "\n{RULE}\n{}\n{RULE}\nEncoding time: {}{}\nSpeed: {}{:.2}x realtime\nFinished encode at {}\n{RULE}",
        Terminal::file_block(s),
        format_duration(s.encode_seconds),
        super::earlier_runs(s),
        s.fps.map(|f| format!("{f:.1} fps, ")).unwrap_or_default(),
        s.speed,
        shown_time(&s.finished_at)
    )
}

/// An RFC 3339 time as people read it, with its offset from UTC (a log's
/// lines are in UTC: without it, the two read hours apart):
/// `2026-12-07 23:30:20 +09:00`.
fn shown_time(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => t.format("%Y-%m-%d %H:%M:%S %:z").to_string(),
        Err(_) => rfc3339.to_string(),
    }
}

/// The design's "Final Encoding Summary"; a line for a watch stopped with
/// nothing done since its last summary (it printed a second, empty one).
pub fn final_summary(b: &BatchSummary, run_log: Option<&std::path::Path>) -> String {
    if b.stopped && b.is_empty() {
        return "\nStopped: nothing was done since the last summary".into();
    }
    let mut out = format!("\n{}\n", Terminal::banner("Final Encoding Summary"));
    for f in &b.files {
        out.push_str(&format!("\n{}\nEncode time: {}\n", Terminal::file_block(f), format_duration(f.encode_seconds)));
    }
    for (s, why) in &b.skipped {
        out.push_str(&format!("\nSkipped: {} ({})\n", name(s), super::for_people(why)));
    }
    for (_, e) in &b.failed {
        out.push_str(&format!("\nFailed: {}\n", super::for_people(e)));
    }
    for f in &b.interrupted {
        out.push_str(&format!("\nInterrupted: {} (run the same command again to resume)\n", name(f)));
    }
    for f in &b.not_started {
        out.push_str(&format!("\nNot started: {}\n", name(f)));
    }
    for (f, why) in &b.not_encoded {
        out.push_str(&format!("\nNot encoded now: {} ({})\n", name(f), super::for_people(why)));
    }
    out.push_str(&format!(
        "\n{RULE}\nTotal files processed: {}\nTotal input size:  {}\nTotal output size: {}\nTotal reduction:   {:.2}%\nTotal execution time: {}",
        b.files.len(),
        format_bytes(b.total_input_bytes),
        format_bytes(b.total_output_bytes),
        b.reduction_percent,
        format_duration(b.total_seconds)
    ));
    if !b.failed.is_empty() || !b.skipped.is_empty() {
        out.push_str(&format!("\nSkipped: {}  Failed: {}", b.skipped.len(), b.failed.len()));
    }
    // (A log that could not be written is not pointed at.)
    if let Some(log) = run_log.filter(|_| !b.failed.is_empty()) {
        out.push_str(&format!(
            "\nDetails of the failures (commands, their errors): the run log {}, and a report of each beside it",
            log.display()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_stopped_with_nothing_new_says_a_line() {
        let stopped = BatchSummary { stopped: true, ..Default::default() };
        assert_eq!(final_summary(&stopped, None), "\nStopped: nothing was done since the last summary");
        let left = BatchSummary { not_started: vec!["/lib/b.mkv".into()], ..stopped };
        assert!(final_summary(&left, None).contains("Final Encoding Summary"));
        assert!(final_summary(&BatchSummary::default(), None).contains("Final Encoding Summary"));
    }

    #[test]
    fn progress_lines_show_what_each_stage_has() {
        let video = progress_message(Stage::Video, Some((2, 6)), 6.5, 0.27, Some(74.0), Some(10 << 20));
        assert_eq!(video, "2/6 segments, 6.5 fps, 0.27x, ETA 00h 01m 14s, ~10.0 MiB");
        assert_eq!(progress_message(Stage::Video, None, 6.5, 0.27, None, None), "6.5 fps, 0.27x, ETA --, ~--");
        let audio = progress_message(Stage::Audio(0), Some((6, 6)), 0.0, 39.8, Some(0.0), Some(60_000));
        assert_eq!(audio, "39.80x, ETA 00h 00m 00s, ~58.6 KiB");
        assert_eq!(progress_message(Stage::Mux, Some((6, 6)), 0.0, 0.0, None, None), "");
        assert_eq!(survey_message(Some(74.0)), "surveying the segments, ETA 00h 01m 14s");
    }
}

/// The terminal the live lines are drawn on, its failed writes dropped (a
/// terminal closed or hung up under the run): indicatif unwraps some of
/// them (`MultiProgress::suspend`), and the panic, in a lock's destructor,
/// aborted drapto mid-encode, its stop unsaid and its lock left.
#[derive(Debug)]
struct Forgiving(console::Term);

impl indicatif::TermLike for Forgiving {
    fn width(&self) -> u16 {
        self.0.size().1
    }

    fn height(&self) -> u16 {
        self.0.size().0
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        let _ = self.0.move_cursor_up(n);
        Ok(())
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        let _ = self.0.move_cursor_down(n);
        Ok(())
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        let _ = self.0.move_cursor_right(n);
        Ok(())
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        let _ = self.0.move_cursor_left(n);
        Ok(())
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        let _ = self.0.write_line(s);
        Ok(())
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        let _ = self.0.write_str(s);
        Ok(())
    }

    fn clear_line(&self) -> std::io::Result<()> {
        let _ = self.0.clear_line();
        Ok(())
    }

    fn flush(&self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}
