//! `drapto analyze <file|folder> [--json]`: what drapto sees and would do.

use super::{Session, find_work};
use crate::analysis;
use crate::cli::AnalyzeArgs;
use crate::error::Result;
use crate::plan;
use crate::report::{format_bytes, format_duration};
use crate::tools::Tools;

/// Analyses every input; returns the exit code (1 when any input failed).
pub fn run(args: &AnalyzeArgs, session: &Session) -> Result<i32> {
    let settings = &session.loaded.settings;
    let work = find_work(&args.input, std::path::Path::new(""), settings)?;
    let inputs: Vec<std::path::PathBuf> = work.found.iter().map(|f| f.input.clone()).collect();
    let tools = Tools::discover(settings, &session.loaded.origins, &session.cancel);
    let ffprobe = tools.require_ffprobe()?;
    let mkvtoolnix = tools.require_mkvtoolnix()?;
    let caps = tools.ffmpeg.as_ref().map(|(_, c)| c.clone()).unwrap_or_default();
    let mut failed = false;
    for input in &inputs {
        let probes = analysis::Probes {
            ffprobe,
            ffmpeg: tools.ffmpeg.as_ref().ok().map(|(l, _)| l.path.as_path()),
            mediainfo: tools.mediainfo_path(),
            mkvtoolnix: &mkvtoolnix,
        };
        match analysis::analyze(input, probes, settings, &session.cancel) {
            Ok(a) => {
                let chunked = plan::chunked_available(&caps);
                let p = match plan::plan(&a, settings, &caps, &chunked) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("✗ {}: {e}", input.display());
                        failed = true;
                        continue;
                    }
                };
                if session.json {
                    let line = serde_json::json!({ "input": input, "analysis": a, "plan": p });
                    println!("{line}");
                } else {
                    println!("{}", input.display());
                    println!("  size:        {}", format_bytes(a.size_bytes));
                    println!("  duration:    {}", format_duration(a.duration));
                    println!(
                        "  video:       {} {}x{}{} {}",
                        a.video.codec,
                        a.video.width,
                        a.video.height,
                        a.video.frame_rate.map(|f| format!(" @ {f:.3} fps")).unwrap_or_default(),
                        a.video.pix_fmt.as_deref().unwrap_or("")
                    );
                    println!("  class:       {} → CRF {}", a.resolution.name(), p.video.crf);
                    println!(
                        "  dynamic range: {}{}",
                        a.hdr.kind.name(),
                        a.hdr.hdr10_plus.map_or(String::new(), |h| format!(
                            " + HDR10+ ({} processing window(s)) → carried frame by frame",
                            h.windows
                        ))
                    );
                    if let Some(md) = &a.hdr.mastering_display {
                        println!("  mastering:   {}", md.svt_param());
                    }
                    if let Some(cl) = &a.hdr.content_light {
                        println!("  light level: MaxCLL {} MaxFALL {}", cl.max_cll, cl.max_fall);
                    }
                    for t in &a.audio {
                        println!(
                            "  audio {}:     {} {} ch{} → Opus {} ch {}k{}{}",
                            t.index + 1,
                            t.codec,
                            t.source_channels,
                            t.source_layout.as_deref().map(|l| format!(" ({l})")).unwrap_or_default(),
                            t.channels,
                            t.bitrate_kbps,
                            t.language.as_deref().map(|l| format!(" [{l}]")).unwrap_or_default(),
                            t.warning.as_deref().map(|w| format!(" ⚠ {w}")).unwrap_or_default()
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
                    match &a.dolby_vision {
                        Some(dv) => println!(
                            "  dolby vision: profile {} level {} (seen by {}){}",
                            dv.profile_name(),
                            dv.level.map_or("?".into(), |l| l.to_string()),
                            dv.detected_by.join(" + "),
                            if p.video.encoder.dolby_vision {
                                " → kept as AV1 Dolby Vision (profile 10)"
                            } else {
                                " → HDR10 base layer only"
                            }
                        ),
                        None => println!("  dolby vision: no"),
                    }
                    println!("  interlacing: {} — {}", a.interlace.describe(), a.interlace.reason);
                    if let Some(sar) = &a.video.sample_aspect_ratio {
                        if sar != "1:1" {
                            println!("  anamorphic:  SAR {sar} (kept)");
                        }
                    }
                    match &a.crop.crop {
                        Some(c) => {
                            println!("  crop:        {}x{} at {},{} — {}", c.width, c.height, c.x, c.y, a.crop.reason)
                        }
                        None => println!("  crop:        none — {}", a.crop.reason),
                    }
                    if !a.crop.sample_times.is_empty() {
                        println!(
                            "               threshold {} (8-bit scale){}, {} samples, {} too dark",
                            a.crop.threshold,
                            a.crop.black_level.map(|b| format!(", black level {b:.1}")).unwrap_or_default(),
                            a.crop.sample_times.len(),
                            a.crop.dark_samples
                        );
                    }
                    for b in &a.crop.bars {
                        println!(
                            "               {} bar {} px: {} — {}",
                            b.side.name(),
                            b.pixels,
                            if b.accepted { "cropped" } else { "kept" },
                            b.reason
                        );
                    }
                    println!("  filters:     {}", p.video.filter_chain().unwrap_or_else(|| "none".into()));
                    println!("  path:        {}", p.path.describe());
                    println!("  svt params:  {}", p.video.encoder.svt_params);
                    for w in &p.warnings {
                        println!("  ⚠ {w}");
                    }
                    for w in &a.warnings {
                        println!("  ⚠ {w}");
                    }
                }
            }
            Err(e) => {
                failed = true;
                if session.json {
                    println!("{}", serde_json::json!({ "input": input, "error": e.to_string() }));
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
