//! `drapto doctor`: every tool, its version, path and capabilities, and for
//! anything missing, how to get it.

use super::Session;
use crate::encode::chunked::remote::{Cluster, HostCheck, Verdict, WorkerInfo};
use crate::error::Result;
use crate::tools::{FfmpegCaps, Tools, ffmpeg_fix};
use console::style;
use std::path::Path;

/// Prints the report; exit code 0 when everything an encode needs is there
/// (and, with `hosts`, when every host can take segments).
pub fn run(hosts: Option<&Path>, session: &Session) -> Result<i32> {
    let tools = Tools::discover(&session.tool_paths(), &session.cancel);
    // A stop while the tools were asked is a stop, not a missing tool.
    session.cancel.check()?;
    let hosts_ok = match hosts {
        Some(file) => check_hosts(file, &tools, session)?,
        None => true,
    };
    let code = local_report(&tools, session)?;
    Ok(if hosts_ok { code } else { 1 })
}

/// One line per host: reachable, drapto and ffmpeg present and capable,
/// versions equal to this machine's. True when every host is ready.
fn check_hosts(file: &Path, tools: &Tools, session: &Session) -> Result<bool> {
    let mut settings = session.loaded.settings.distributed.clone();
    settings.hosts = Some(file.to_path_buf());
    let cluster = Cluster::from_settings(&settings, tools.ffmpeg.as_ref().ok().map(|(l, _)| l.path.as_path()))?;
    let local = WorkerInfo::of(tools);
    let checks = cluster.check(&session.loaded.settings.temp_dir(), &session.cancel);
    let rows: Vec<(&HostCheck, Verdict)> =
        checks.iter().map(|c| (c, c.verdict(&local, settings.allow_version_mismatch))).collect();
    let ready = |v: &Verdict| matches!(v, Verdict::Ready | Verdict::Allowed(_));
    let problem = |v: &Verdict| match v {
        Verdict::Ready | Verdict::Allowed(_) => None,
        Verdict::LeftOut(why) => Some(why.clone()),
        Verdict::Refused(m) => Some(format!("{m}: refused (distributed.allow_version_mismatch)")),
    };
    let all = rows.iter().all(|(_, v)| ready(v));
    if session.json {
        let j: Vec<_> = rows
            .iter()
            .map(|(c, v)| {
                serde_json::json!({
                    "host": c.host.login, "slots": c.host.slots, "ready": ready(v),
                    "info": c.info.as_ref().ok(), "problem": problem(v),
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "hosts": j }));
        return Ok(all);
    }
    println!("hosts ({}):", file.display());
    for (c, v) in &rows {
        let what =
            c.info.as_ref().map(|i| format!("drapto {}, SVT-AV1 {}", i.drapto, i.svtav1.as_deref().unwrap_or("-")));
        match v {
            Verdict::Ready => println!(
                "  {} {} ({} slot(s)): {}",
                style("✓").green(),
                c.host.login,
                c.host.slots,
                what.unwrap_or_default()
            ),
            Verdict::Allowed(m) => println!("  {} {}: {m} (allowed)", style("⚠").yellow(), c.host.login),
            Verdict::LeftOut(_) | Verdict::Refused(_) => {
                println!("  {} {}: {}", style("✗").red(), c.host.login, problem(v).unwrap_or_default())
            }
        }
    }
    println!();
    Ok(all)
}

fn local_report(tools: &Tools, session: &Session) -> Result<i32> {
    let ready = tools.ready();
    if session.json {
        // Each tool: `found` and where, or `found: false` and why.
        let tool = |r: std::result::Result<&crate::tools::Located, &crate::error::ToolError>| match r {
            Ok(l) => {
                let mut v = serde_json::to_value(l).unwrap_or_default();
                v["found"] = true.into();
                v
            }
            Err(e) => serde_json::json!({"found": false, "error": e.to_string()}),
        };
        let mut ffmpeg = tool(tools.ffmpeg.as_ref().map(|(l, _)| l));
        if let Ok((_, caps)) = &tools.ffmpeg {
            ffmpeg["caps"] = serde_json::to_value(caps).unwrap_or_default();
        }
        let j = serde_json::json!({
            "ffmpeg": ffmpeg,
            "ffprobe": tool(tools.ffprobe.as_ref()),
            "mediainfo": tool(tools.mediainfo.as_ref()),
            "mkvmerge": tool(tools.mkvmerge.as_ref()),
            "mkvextract": tool(tools.mkvextract.as_ref()),
            "mkvpropedit": tool(tools.mkvpropedit.as_ref()),
            "ready": ready.is_ok(),
            "problem": ready.as_ref().err().map(|e| format!("{}: {}", e.tool, e.problem)),
            "fix": ready.as_ref().err().map(|e| e.fix.clone()),
        });
        println!("{j}");
        return Ok(if ready.is_ok() { 0 } else { 4 });
    }
    let (ok, bad) = (style("✓").green(), style("✗").red());
    match &tools.ffmpeg {
        Ok((l, caps)) => {
            println!("{ok} ffmpeg      {}\n    {} (from {})", l.version, l.path.display(), l.found_via);
            print_ffmpeg_caps(caps);
        }
        Err(e) => println!("{bad} ffmpeg      {}: {}\n    fix: {}", e.tool, e.problem, e.fix),
    }
    print_other_tools(tools);
    match ready {
        Ok(()) => {
            println!("\n{ok} ready to encode");
            Ok(0)
        }
        Err(e) => {
            println!("\n{bad} cannot encode: {e}");
            // As `encode` exits on it: a required tool is missing.
            Ok(4)
        }
    }
}

/// What ffmpeg can do that drapto needs, line by line.
fn print_ffmpeg_caps(caps: &FfmpegCaps) {
    let (ok, bad, warn) = (style("✓").green(), style("✗").red(), style("⚠").yellow());
    let line = |have: bool, what: &str, why: &str| {
        if have {
            println!("    {ok} {what}");
        } else {
            println!("    {bad} {what}: missing — {why}");
        }
    };
    let svt_why = match &caps.svtav1_error {
        Some(e) => format!("listed, but cannot encode here ({e}); required for every encode"),
        None => "required for every encode".into(),
    };
    line(caps.svtav1.is_some(), &format!("libsvtav1 (SVT-AV1 {})", caps.svtav1.as_deref().unwrap_or("-")), &svt_why);
    line(caps.libopus, "libopus", "required for audio");
    if caps.libvmaf {
        println!("    {ok} libvmaf (chunked encoding with VMAF targeting available)");
    } else {
        let what = match &caps.libvmaf_error {
            Some(e) => format!("cannot score as drapto asks ({e})"),
            None => "missing".into(),
        };
        println!("    {warn} libvmaf: {what} — chunked encoding unavailable; {}", ffmpeg_fix());
    }
    if caps.svtav1.is_some() {
        if caps.svtav1_dolbyvision {
            println!("    {ok} libsvtav1 dolbyvision option (Dolby Vision RPUs carried into AV1)");
        } else {
            println!("    {warn} libsvtav1 has no dolbyvision option: Dolby Vision sources keep only HDR10");
        }
    }
    println!("    filters: {}", caps.filters.iter().cloned().collect::<Vec<_>>().join(", "));
    println!(
        "    hardware decoders: {}",
        if caps.hwaccels.is_empty() { "none".into() } else { caps.hwaccels.join(", ") }
    );
}

/// The other tools: where each was found, or what is wrong and the fix.
fn print_other_tools(tools: &Tools) {
    let (ok, bad, warn) = (style("✓").green(), style("✗").red(), style("⚠").yellow());
    for (name, t, required) in [
        ("ffprobe", &tools.ffprobe, true),
        ("mediainfo", &tools.mediainfo, false),
        ("mkvmerge", &tools.mkvmerge, true),
        ("mkvextract", &tools.mkvextract, true),
        ("mkvpropedit", &tools.mkvpropedit, true),
    ] {
        match t {
            Ok(l) => println!("{ok} {name:<11} {}\n    {} (from {})", l.version, l.path.display(), l.found_via),
            Err(e) => println!(
                "{} {name:<11} {}{}\n    fix: {}",
                if required { &bad } else { &warn },
                e.problem,
                if required { "" } else { " (optional)" },
                e.fix
            ),
        }
    }
}
