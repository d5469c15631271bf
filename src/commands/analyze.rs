//! `drapto analyze <file|folder> [--json]`: what drapto sees and would do.

use super::{Session, find_work};
use crate::analysis::{self, Analysis};
use crate::cli::AnalyzeArgs;
use crate::error::Result;
use crate::plan::{self, EncodePlan};
use crate::report::{format_bytes, format_duration};
use crate::tools::Tools;
use std::path::Path;

/// Analyses every input; returns the exit code (1 when any input failed).
pub fn run(args: &AnalyzeArgs, session: &Session) -> Result<i32> {
    let settings = &session.loaded.settings;
    for line in super::ignored_env(session) {
        eprintln!("drapto: warning: {line}");
    }
    let work = find_work(&args.input, Path::new(""), settings, false)?;
    let tools = Tools::discover(&session.tool_paths(), &session.cancel);
    // A stop while the tools were asked is a stop, not a missing tool.
    session.cancel.check()?;
    let ffprobe = tools.require_ffprobe()?;
    let mkvtoolnix = tools.require_mkvtoolnix()?;
    // Crop, interlacing and captions are ffmpeg's to see: without it the
    // analysis would say "none" of each, which is not what encode does.
    let (ffmpeg, caps) = tools.ffmpeg.as_ref().map_err(Clone::clone)?;
    let caps = caps.clone();
    let probes = analysis::Probes {
        ffprobe,
        ffmpeg: Some(ffmpeg.path.as_path()),
        mediainfo: tools.mediainfo_path(),
        mkvtoolnix: &mkvtoolnix,
    };
    let options = analysis::AnalysisOptions::of(settings);
    let mut failed = false;
    for found in &work.found {
        let input = &found.input;
        // An analysis error names the file; a plan error names the tool.
        let result = match analysis::analyze(input, probes, &options, &session.cancel) {
            Ok(a) => plan::plan(&a, settings, &caps, &plan::chunked_available(&caps))
                .map(|p| (a, p))
                .map_err(|e| format!("{}: {e}", input.display())),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok((a, p)) if session.json => {
                println!("{}", serde_json::json!({ "input": input, "analysis": a, "plan": p }));
            }
            Ok((a, p)) => print_text(input, &a, &p),
            Err(e) => {
                failed = true;
                if session.json {
                    println!("{}", serde_json::json!({ "input": input, "error": e }));
                } else {
                    eprintln!("✗ {e}");
                }
            }
        }
    }
    for (path, why) in &work.skipped {
        if session.json {
            println!("{}", serde_json::json!({ "input": path, "skipped": why.to_string() }));
        } else {
            println!("skipped {}: {why}", path.display());
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// The human-readable report of one input.
fn print_text(input: &Path, a: &Analysis, p: &EncodePlan) {
    println!("{}", input.display());
    println!("  size:        {}", format_bytes(a.size_bytes));
    println!("  duration:    {}", format_duration(a.duration));
    print_video(a, p);
    print_audio_and_mux(a);
    print_dolby_vision(a, p);
    println!("  interlacing: {} — {}", a.interlace.describe(), a.interlace.reason);
    if let Some(sar) = a.video.sample_aspect_ratio.as_deref().filter(|s| *s != "1:1") {
        println!("  anamorphic:  SAR {sar} (kept)");
    }
    print_crop(a);
    println!("  filters:     {}", p.video.filter_chain().unwrap_or_else(|| "none".into()));
    println!("  path:        {}", p.path.describe());
    println!("  svt params:  {}", p.video.encoder.svt_params);
    for w in p.warnings.iter().chain(&a.warnings) {
        println!("  ⚠ {w}");
    }
}

/// The video stream, its class and CRF, and its dynamic range.
fn print_video(a: &Analysis, p: &EncodePlan) {
    let v = &a.video;
    let fps = v.frame_rate.map(|f| format!(" @ {f:.3} fps")).unwrap_or_default();
    println!("  video:       {} {}x{}{fps} {}", v.codec, v.width, v.height, v.pix_fmt.as_deref().unwrap_or(""));
    let preset = p.video.encoder.preset;
    match &p.chunked {
        Some(c) => println!(
            "  class:       {} → preset {preset}, VMAF target {} (a CRF for each segment, from CRF {})",
            a.resolution.name(),
            c.target,
            p.video.crf
        ),
        None => println!("  class:       {} → preset {preset}, CRF {}", a.resolution.name(), p.video.crf),
    }
    let plus = a
        .hdr
        .hdr10_plus
        .map_or(String::new(), |h| format!(" + HDR10+ ({} processing window(s)) → carried frame by frame", h.windows));
    println!("  dynamic range: {}{plus}", a.hdr.kind.name());
    if let Some(md) = &a.hdr.mastering_display {
        println!("  mastering:   {}", md.svt_param());
    }
    if let Some(cl) = &a.hdr.content_light {
        println!("  light level: MaxCLL {} MaxFALL {}", cl.max_cll, cl.max_fall);
    }
}

/// Each audio track's Opus plan, then the mux plan: what is carried, what
/// is left out.
fn print_audio_and_mux(a: &Analysis) {
    for t in &a.audio {
        println!(
            "  audio {}:     {} {} ch{} → Opus {} ch {}k{}",
            t.index + 1,
            t.codec,
            t.source_channels,
            t.source_layout.as_deref().map(|l| format!(" ({l})")).unwrap_or_default(),
            t.channels,
            t.bitrate_kbps,
            // (Its warning is among the file's, below: it was said twice.)
            t.language.as_deref().map(|l| format!(" [{l}]")).unwrap_or_default()
        );
    }
    println!("  title:       {}", a.mux.title.as_deref().map_or("(none)".into(), |t| format!("{t:?}")));
    for (i, t) in a.mux.describe_tracks().iter().enumerate() {
        println!("  {:<13}{t}", if i == 0 { "mux:" } else { "" });
    }
    println!("               {}", a.mux.describe_rest());
    for l in &a.mux.left_out {
        println!("  left out:    {}", l.describe());
    }
}

/// Dolby Vision, and whether the encode keeps it.
fn print_dolby_vision(a: &Analysis, p: &EncodePlan) {
    let Some(dv) = &a.dolby_vision else {
        println!("  dolby vision: no");
        return;
    };
    let kept = if p.video.encoder.dolby_vision {
        " → kept as AV1 Dolby Vision (profile 10)"
    } else {
        " → HDR10 base layer only"
    };
    println!(
        "  dolby vision: profile {} level {} (seen by {}){kept}",
        dv.profile_name(),
        dv.level.map_or("?".into(), |l| l.to_string()),
        dv.detected_by.join(" + "),
    );
}

/// The crop verdict, how it was reached, and each bar's fate.
fn print_crop(a: &Analysis) {
    let crop = &a.crop;
    match &crop.crop {
        Some(c) => println!("  crop:        {}x{} at {},{} — {}", c.width, c.height, c.x, c.y, crop.reason),
        None => println!("  crop:        none — {}", crop.reason),
    }
    if !crop.sample_times.is_empty() {
        println!(
            "               threshold {} (8-bit scale){}, {} samples, {} too dark",
            crop.threshold,
            crop.black_level.map(|b| format!(", black level {b:.1}")).unwrap_or_default(),
            crop.sample_times.len(),
            crop.dark_samples
        );
    }
    for b in &crop.bars {
        let fate = match b.cropped {
            0 => "kept".to_string(),
            n if n == b.pixels => "cropped".to_string(),
            n => format!("{n} px cropped"),
        };
        println!("               {} bar {} px: {} — {}", b.side.name(), b.pixels, fate, b.reason);
    }
}
