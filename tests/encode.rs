//! End-to-end encodes of generated clips with the real ffmpeg, checked by
//! probing the results with ffprobe and mkvmerge.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn tag<'a>(s: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    s["tags"].as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str())
}

#[test]
fn rich_source_keeps_tracks_tags_subtitles_attachments_and_chapters() {
    let src = rich_clip();
    let before = fingerprint(&src);
    let t = tempfile::tempdir().unwrap();
    let out_dir = t.path().join("out");
    let o = run(drapto(t.path()).arg("encode").arg("--json").arg("-i").arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    assert_eq!(fingerprint(&src), before, "input must not change");
    // Both audio tracks were encoded by the video's own ffmpeg (one read of
    // the source), and reported as such.
    let audio_stages: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "stage_complete" && e["stage"]["kind"] == "audio")
        .collect();
    assert_eq!(audio_stages.len(), 2);
    assert!(audio_stages.iter().all(|e| e["detail"].as_str().unwrap().ends_with("encoded beside the video")));

    let out = out_dir.join("rich.mkv");
    let p = ffprobe(&out);
    let v = streams(&p, "video");
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["codec_name"], "av1");
    assert_eq!(v[0]["pix_fmt"], "yuv420p10le");

    let a = streams(&p, "audio");
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|s| s["codec_name"] == "opus"));
    assert_eq!(a[0]["channels"], 2);
    assert_eq!(a[1]["channels"], 6);
    assert_eq!(tag(a[0], "language"), Some("eng"));
    assert_eq!(tag(a[0], "title"), Some("Stereo Mix"));
    assert_eq!(tag(a[1], "language"), Some("fre"));
    assert_eq!(tag(a[1], "title"), Some("Surround 5.1"));
    assert_eq!(a[0]["disposition"]["default"], 1);
    assert_eq!(a[1]["disposition"]["default"], 0);

    let s = streams(&p, "subtitle");
    assert_eq!(s.len(), 2);
    assert_eq!(s[0]["codec_name"], "subrip");
    assert_eq!(s[1]["codec_name"], "ass");
    assert_eq!(tag(s[1], "language"), Some("ger"));
    assert_eq!(tag(s[1], "title"), Some("Styled"));
    assert_eq!(s[1]["disposition"]["forced"], 1);
    assert_eq!(s[0]["disposition"]["forced"], 0);

    let chapters = p["chapters"].as_array().unwrap();
    assert_eq!(chapters.len(), 2);
    assert_eq!(tag(&chapters[1], "title"), Some("Ending"));
    assert_eq!(tag(&p["format"], "title"), Some("Rich Test Film"));
    let dur: f64 = p["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((dur - 3.0).abs() < 1.0, "duration {dur}");

    // mkvmerge reads it as well, and sees the same things.
    let m = mkvmerge_j(&out);
    let tracks = m["tracks"].as_array().unwrap();
    let kinds: Vec<&str> = tracks.iter().map(|t| t["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["video", "audio", "audio", "subtitles", "subtitles"]);
    assert_eq!(tracks[0]["codec"], "AV1");
    assert_eq!(tracks[1]["properties"]["language"], "eng");
    assert_eq!(tracks[2]["properties"]["language"], "fre");
    assert_eq!(tracks[4]["properties"]["forced_track"], true);
    let att = m["attachments"].as_array().unwrap();
    assert_eq!(att.len(), 1);
    assert_eq!(att[0]["file_name"], "TestSans.ttf");
    assert_eq!(att[0]["content_type"], "application/x-truetype-font");
    assert_eq!(m["chapters"][0]["num_entries"], 2);

    // Opus bitrates follow the channel table (128k stereo, 256k 5.1): the
    // measured stream sizes land near them.
    let bits = |track: usize| -> f64 {
        let o = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                &format!("a:{track}"),
                "-show_entries",
                "packet=size",
                "-of",
                "csv=p=0",
            ])
            .arg(&out)
            .output()
            .unwrap();
        let bytes: f64 = String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.trim().parse::<f64>().ok()).sum();
        bytes * 8.0 / dur / 1000.0
    };
    let (stereo, surround) = (bits(0), bits(1));
    assert!((60.0..200.0).contains(&stereo), "stereo {stereo} kbit/s");
    assert!((150.0..350.0).contains(&surround), "5.1 {surround} kbit/s");
    assert!(surround > stereo * 1.4);

    // Nothing is left behind in the work folder or output folder.
    let mut leftovers: Vec<_> = std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    leftovers.sort();
    assert_eq!(leftovers, ["rich.mkv", "rich.mkv.report.json"].map(std::ffi::OsString::from));
}

#[test]
fn batch_goes_on_after_broken_files_and_reports_failure() {
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(simple_clip("small.mkv", "320x240", 2), input.join("b good.mkv")).unwrap();
    std::fs::write(input.join("a empty.mkv"), b"").unwrap();
    std::fs::write(input.join("c text.mkv"), b"this is not a video file at all\n").unwrap();
    std::fs::write(input.join("notes.txt"), b"ignored").unwrap();
    let out_dir = t.path().join("out");

    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&input).arg("-o").arg(&out_dir));
    assert_eq!(o.status.code(), Some(1), "a failed file makes the exit code 1");
    assert!(out_dir.join("b good.mkv").exists());
    assert!(!out_dir.join("a empty.mkv").exists());
    assert!(!out_dir.join("c text.mkv").exists());
    assert_eq!(std::fs::read(input.join("a empty.mkv")).unwrap().len(), 0);

    let ev = events(&o);
    let failed: Vec<_> = ev.iter().filter(|e| e["event"] == "file_failed").collect();
    assert_eq!(failed.len(), 2);
    let empty_err = failed[0]["error"].as_str().unwrap();
    assert!(empty_err.contains("a empty.mkv") && empty_err.contains("empty"), "{empty_err}");
    let text_err = failed[1]["error"].as_str().unwrap();
    assert!(text_err.contains("c text.mkv") && text_err.contains("not a readable media file"), "{text_err}");
    let done = ev.iter().find(|e| e["event"] == "batch_complete").unwrap();
    assert_eq!(done["summary"]["files"].as_array().unwrap().len(), 1);
    assert_eq!(done["summary"]["failed"].as_array().unwrap().len(), 2);
}

#[test]
fn output_folder_equal_to_input_folder_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("films");
    std::fs::create_dir(&dir).unwrap();
    let f = dir.join("film.mkv");
    std::fs::copy(simple_clip("small.mkv", "320x240", 2), &f).unwrap();
    let before = fingerprint(&f);
    // Refused once, before any rip (not rip by rip: 500 failures for a
    // library), as a command line that cannot work: exit 2.
    for input in [&dir, &f] {
        let o = run(drapto(t.path()).arg("encode").arg("-i").arg(input).arg("-o").arg(&dir));
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("the output folder is the input's folder"), "{}", stderr(&o));
        assert!(!stdout(&o).contains("Processing"), "no rip is started");
    }
    // A missing -o is such a command line too.
    let o = run(drapto(t.path()).arg("encode").arg("-i").arg(&dir));
    assert_eq!(o.status.code(), Some(2));
    // So is an output named like a file: -o names a folder.
    let o = run(drapto(t.path()).arg("encode").arg("-i").arg(&f).arg("-o").arg(t.path().join("film-av1.mkv")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("-o names the output folder"), "{}", stderr(&o));
    assert!(!t.path().join("film-av1.mkv").exists());
    assert_eq!(fingerprint(&f), before);
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn another_disc_as_long_under_the_same_name_is_told_by_the_rip_s_title() {
    // Two episodes of a series run to the second: the disc's title (as the
    // rip had it, not as the user may have edited the output's) tells them.
    let t = tempfile::tempdir().unwrap();
    let rip = t.path().join("title_t00.mkv");
    let titled = |clip: &Path, title: &str| {
        std::fs::copy(clip, &rip).unwrap();
        let o = std::process::Command::new("mkvpropedit")
            .arg(&rip)
            .args(["--edit", "info", "--set", &format!("title={title}")])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    };
    let encode =
        || run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&rip).arg("-o").arg(t.path().join("out")));
    titled(&simple_clip("small.mkv", "320x240", 2), "SERIES_S1_D1");
    assert!(encode().status.success());
    let out = t.path().join("out/title_t00.mkv");
    // The user retitles the output; the same disc ripped again (another
    // size, as long, the same title): encoded again, the edit no matter.
    let o = std::process::Command::new("mkvpropedit")
        .arg(&out)
        .args(["--edit", "info", "--set", "title=Episode 1"])
        .output();
    assert!(o.unwrap().status.success());
    titled(&simple_clip("small_ripped_again.mkv", "240x180", 2), "SERIES_S1_D1");
    let o = encode();
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(streams(&ffprobe(&out), "video")[0]["width"], 240);
    // The next disc, as long, another title: the first's encode is kept.
    titled(&simple_clip("small_other.mkv", "160x120", 2), "SERIES_S1_D2");
    let o = encode();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let failed = events(&o).into_iter().find(|e| e["event"] == "file_failed").expect("failed");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("titled \"SERIES_S1_D1\"; this rip is titled \"SERIES_S1_D2\""), "{error}");
    assert_eq!(streams(&ffprobe(&out), "video")[0]["width"], 240);
    // An output of a drapto whose record kept no title: told by its own.
    let tags = t.path().join("tags.xml");
    let o = std::process::Command::new("mkvextract").arg(&out).arg("tags").arg(&tags).output().unwrap();
    assert!(o.status.success());
    let xml = std::fs::read_to_string(&tags).unwrap().replace(r#","title":"SERIES_S1_D1""#, "");
    assert!(xml.contains("DRAPTO_SOURCE") && !xml.contains(r#""title""#), "{xml}");
    std::fs::write(&tags, xml).unwrap();
    let edit = |args: &[&str]| {
        let o = std::process::Command::new("mkvpropedit").arg(&out).args(args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    };
    edit(&["--tags", &format!("global:{}", tags.display())]);
    edit(&["--edit", "info", "--set", "title=SERIES_S1_D1"]);
    let o = encode();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let failed = events(&o).into_iter().find(|e| e["event"] == "file_failed").expect("failed");
    assert!(failed["error"].as_str().unwrap().contains("titled \"SERIES_S1_D1\""), "{failed}");
    assert_eq!(streams(&ffprobe(&out), "video")[0]["width"], 240);
}

#[test]
fn an_existing_output_is_skipped_when_valid_replaced_when_drapto_made_it_else_kept() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("small.mkv");
    std::fs::copy(simple_clip("small.mkv", "320x240", 2), &src).unwrap();
    let out_dir = t.path().join("out");
    let o = run(drapto(t.path()).arg("encode").arg("-i").arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    let out = out_dir.join("small.mkv");
    let first = fingerprint(&out);

    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    let ev = events(&o);
    let skipped = ev.iter().find(|e| e["event"] == "file_skipped").expect("skipped");
    assert!(skipped["reason"].as_str().unwrap().starts_with("already encoded from this rip"), "{skipped}");
    assert!(
        !ev.iter().any(|e| e["event"] == "stage_started"),
        "known from the output's record: no analysis, no child beyond two ffprobes of the output"
    );
    assert_eq!(fingerprint(&out), first, "a valid output is left alone");

    // Other settings: the record does not match, so the rip is analysed and
    // the output validated against it (and kept: it is a valid encode).
    let o = run(drapto(t.path()).args(["encode", "--json", "--preset", "12", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    let ev = events(&o);
    assert!(ev.iter().any(|e| e["event"] == "stage_started" && e["stage"]["kind"] == "analysis"));
    let skipped = ev.iter().find(|e| e["event"] == "file_skipped").expect("skipped");
    assert!(skipped["reason"].as_str().unwrap().starts_with("valid output already exists"), "{skipped}");

    // The user edits the output's headers (a title, a track's name and
    // language), then a run with other settings again: the edits are kept.
    let m = std::process::Command::new("mkvpropedit")
        .arg(&out)
        .args(["--edit", "info", "--set", "title=Curated", "--edit", "track:a1"])
        .args(["--set", "name=Director's mix", "--set", "language=fr"])
        .args(["--edit", "track:v1", "--set", "display-width=400", "--set", "display-height=240"])
        .output()
        .unwrap();
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    let edited = fingerprint(&out);
    let o = run(drapto(t.path()).args(["encode", "--json", "--preset", "11", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    let ev = events(&o);
    let warned =
        |text: &str| ev.iter().any(|e| e["event"] == "warning" && e["message"].as_str().unwrap().contains(text));
    assert!(warned("differs from the rip only in its title, track names"), "{ev:?}");
    assert!(ev.iter().any(|e| e["event"] == "file_skipped"), "not encoded again");
    assert_eq!(fingerprint(&out), edited, "the edited output is left alone");
    // The rip's own segment UID edited in place (its size kept): the output
    // is drapto's as it made it, no remux of the user's.
    let m = std::process::Command::new("mkvpropedit")
        .arg(&src)
        .args(["--edit", "info", "--set", "segment-uid=0x00112233445566778899aabbccddeeff"])
        .output()
        .unwrap();
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    let o = run(drapto(t.path()).args(["encode", "--preset", "10", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(!stdout(&o).contains("remuxed since"), "{}", stdout(&o));

    // Another rip of the same name, the first still there (two discs'
    // title_t00.mkv into one folder): the first one's encode is kept.
    let rerip = t.path().join("rerip").join("small.mkv");
    std::fs::create_dir_all(rerip.parent().unwrap()).unwrap();
    std::fs::copy(simple_clip("small_other.mkv", "160x120", 2), &rerip).unwrap();
    let before = fingerprint(&out);
    let o = run(drapto(t.path()).args(["encode", "-i"]).arg(&rerip).arg("-o").arg(&out_dir));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("drapto's encode of another rip"), "{}", stdout(&o));
    assert_eq!(fingerprint(&out), before);

    // The rip ripped again (another size, as long, the old one gone):
    // encoded again.
    std::fs::remove_file(&src).unwrap();
    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&rerip).arg("-o").arg(&out_dir));
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = events(&o);
    assert!(ev.iter().any(|e| e["event"] == "warning" && e["message"].as_str().unwrap().contains("another rip")));
    assert!(ev.iter().any(|e| e["event"] == "file_complete"));
    assert_eq!(streams(&ffprobe(&out), "video")[0]["width"], 160);

    // Another film of that name, the first one's rip deleted once encoded
    // (its encode the only copy of it now): the encode is kept, the rip
    // refused, said why, in the dry run too.
    let away = t.path().join("away.mkv");
    std::fs::rename(&rerip, &away).unwrap();
    let film = t.path().join("disc2").join("small.mkv");
    std::fs::create_dir_all(film.parent().unwrap()).unwrap();
    std::fs::copy(simple_clip("small_film.mkv", "160x120", 4), &film).unwrap();
    let before = fingerprint(&out);
    let o = run(drapto(t.path()).args(["encode", "--dry-run", "-i"]).arg(&film).arg("-o").arg(&out_dir));
    assert!(stdout(&o).contains("drapto's encode of another film"), "{}", stdout(&o));
    let o = run(drapto(t.path()).args(["encode", "-i"]).arg(&film).arg("-o").arg(&out_dir));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("drapto's encode of another film"), "{}", stdout(&o));
    assert!(stdout(&o).contains("2.0 s long; this rip is 4.0 s"), "{}", stdout(&o));
    assert_eq!(fingerprint(&out), before, "the other film's encode is left alone");
    std::fs::rename(&away, &rerip).unwrap();

    // drapto's output remuxed by the user (its audio taken out with
    // mkvmerge, which keeps drapto's record of the rip), looked at with
    // other settings: the user's file now, kept; the rip fails, said why.
    let remuxed = t.path().join("remuxed.mkv");
    let m =
        std::process::Command::new("mkvmerge").arg("-o").arg(&remuxed).arg("--no-audio").arg(&out).output().unwrap();
    assert!(m.status.code().unwrap_or(9) <= 1);
    std::fs::copy(&remuxed, &out).unwrap();
    let before = fingerprint(&out);
    let o = run(drapto(t.path()).args(["encode", "--preset", "12", "-i"]).arg(&rerip).arg("-o").arg(&out_dir));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("remuxed since"), "{}", stdout(&o));
    assert_eq!(fingerprint(&out), before);

    // drapto's own output, no longer valid (its audio gone, its segment
    // kept: as drapto would have made it), looked at with other settings
    // (so validated in full): encoded again.
    std::fs::remove_file(&out).unwrap();
    let o = run(drapto(t.path()).args(["encode", "-i"]).arg(&rerip).arg("-o").arg(&out_dir));
    assert!(o.status.success(), "{}", stderr(&o));
    let uid = mkvmerge_j(&out)["container"]["properties"]["segment_uid"].as_str().unwrap().to_string();
    let cut = t.path().join("cut.mkv");
    let m = std::process::Command::new("mkvmerge")
        .arg("-o")
        .arg(&cut)
        .args(["--segment-uid", &format!("0x{uid}"), "--no-audio"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(m.status.code().unwrap_or(9) <= 1);
    std::fs::rename(&cut, &out).unwrap();
    let o =
        run(drapto(t.path()).args(["encode", "--json", "--preset", "12", "-i"]).arg(&rerip).arg("-o").arg(&out_dir));
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = events(&o);
    assert!(ev.iter().any(|e| e["event"] == "warning" && e["message"].as_str().unwrap().contains("not valid")));
    assert_eq!(streams(&ffprobe(&out), "audio").len(), 1);

    // A file drapto did not make (no record: cut short, its tags lost with
    // its end, as a user's or another tool's file has none) is never
    // replaced: the rip fails, the file is untouched.
    let bytes = std::fs::read(&out).unwrap();
    std::fs::write(&out, &bytes[..bytes.len() / 3]).unwrap();
    let before = fingerprint(&out);
    let o = run(drapto(t.path()).args(["encode", "-i"]).arg(&rerip).arg("-o").arg(&out_dir));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("drapto did not make it"), "{}", stdout(&o));
    assert_eq!(fingerprint(&out), before);
}

/// Each channel's RMS level (dB) of audio track `track` of `path`.
fn channel_levels(path: &Path, track: usize) -> Vec<f64> {
    let o = Command::new(ffmpeg())
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(path)
        .args(["-map", &format!("0:a:{track}"), "-af", "astats=measure_perchannel=RMS_level:measure_overall=none"])
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    let levels = text.lines().filter(|l| l.contains("RMS level")).filter_map(|l| l.split_whitespace().last());
    levels.map(|v| v.parse().unwrap_or(f64::NEG_INFINITY)).collect()
}

#[test]
fn odd_channel_counts_and_24_bit_pcm_keep_every_channel_in_its_place() {
    let t = tempfile::tempdir().unwrap();
    // A 100 Hz tone at a level of its own in every channel (6 dB apart):
    // 3, 5 and 7 channels of 24-bit PCM (made as 2.1, 5.0(side) and 6.1,
    // stored with no layout, as Matroska stores PCM).
    let src = fixture(
        "odd_audio_levels.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=25:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=f=100:sample_rate=48000:duration=1",
            "-filter_complex",
            "[1:a]asplit=3[x][y][z];[x]pan=2.1|c0=0.05*c0|c1=0.1*c0|c2=0.2*c0[a3];\
             [y]pan=5.0(side)|c0=0.05*c0|c1=0.1*c0|c2=0.2*c0|c3=0.4*c0|c4=0.8*c0[a5];\
             [z]pan=6.1|c0=0.02*c0|c1=0.04*c0|c2=0.08*c0|c3=0.16*c0|c4=0.32*c0|c5=0.64*c0|c6=0.9*c0[a7]",
            "-map",
            "0:v",
            "-map",
            "[a3]",
            "-map",
            "[a5]",
            "-map",
            "[a7]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "pcm_s24le",
        ],
    );
    let out_dir = t.path().join("out");
    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    let warnings: Vec<String> = events(&o)
        .iter()
        .filter(|e| e["event"] == "warning")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    let out = out_dir.join("odd_audio_levels.mkv");
    let p = ffprobe(&out);
    let layouts: Vec<&str> = streams(&p, "audio").iter().map(|s| s["channel_layout"].as_str().unwrap()).collect();
    assert_eq!(layouts, ["3.0", "5.1", "7.1"], "Opus keeps 5 and 7 channels only in a larger layout");
    // Matroska's PCM names no layout: its channels are taken in WAV order
    // (3.0, 5.0, 7.0: no disc's PCM of 3 or 7 channels has an LFE), each
    // where it was, the added LFE silent. Levels relative to the first
    // channel.
    let silent = f64::NEG_INFINITY;
    let db = |g: f64| 20.0 * g.log10();
    let expected: [Vec<f64>; 3] = [
        vec![db(0.05), db(0.1), db(0.2)],
        vec![db(0.05), db(0.1), db(0.2), silent, db(0.4), db(0.8)],
        vec![db(0.02), db(0.04), db(0.08), silent, db(0.16), db(0.32), db(0.64), db(0.9)],
    ];
    for (track, want) in expected.iter().enumerate() {
        let got = channel_levels(&out, track);
        assert_eq!(got.len(), want.len(), "track {track}: {got:?}");
        for (c, (g, w)) in got.iter().zip(want).enumerate() {
            let ok = if w.is_infinite() { *g < -60.0 } else { (g - got[0] - (w - want[0])).abs() < 1.5 };
            assert!(ok, "track {track} channel {c}: {got:?}, wanted (relative) {want:?}");
        }
    }
}

#[test]
fn audio_delay_is_kept() {
    let t = tempfile::tempdir().unwrap();
    let src = fixture(
        "delayed_audio.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=25:duration=3",
            "-itsoffset",
            "0.5",
            "-f",
            "lavfi",
            "-i",
            "sine=f=300:sample_rate=48000:duration=2.5",
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "flac",
        ],
    );
    let start = |p: &Path| -> f64 {
        let j = ffprobe(p);
        let a = streams(&j, "audio")[0]["start_time"].as_str().unwrap().parse::<f64>().unwrap();
        let v = streams(&j, "video")[0]["start_time"].as_str().unwrap().parse::<f64>().unwrap();
        a - v
    };
    let src_delay = start(&src);
    assert!((src_delay - 0.5).abs() < 0.05, "fixture delay {src_delay}");
    let out_dir = t.path().join("out");
    assert!(run(drapto(t.path()).arg("encode").arg("-i").arg(&src).arg("-o").arg(&out_dir)).status.success());
    let out_delay = start(&out_dir.join("delayed_audio.mkv"));
    assert!((out_delay - src_delay).abs() < 0.03, "delay {src_delay} became {out_delay}");
}

/// A folder without a rip says so, and `--dry-run`, which it points at,
/// says why each file is skipped (before, it failed the same way).
#[test]
fn a_folder_without_rips_points_at_a_dry_run_that_explains() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("library");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a rip").unwrap();
    let o = run(drapto(t.path()).args(["encode", "-i"]).arg(&dir).arg("-o").arg(t.path().join("out")));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--dry-run says why"), "{}", stderr(&o));
    let o = run(drapto(t.path()).args(["encode", "--dry-run", "-i"]).arg(&dir).arg("-o").arg(t.path().join("out")));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("notes.txt"), "{}", stdout(&o));
}

/// A 7.1(wide) track (DTS-HD MA with wide speakers decodes to it) and a
/// 3-channel PCM track (Matroska's PCM names no layout): every channel
/// keeps a speaker of its own. ffmpeg's own conversion mixed the wide pair
/// into the fronts, and took the 3 channels for 2.1 (the centre in the LFE).
#[test]
fn layouts_opus_lacks_keep_every_channel_in_its_own_speaker() {
    // Channel n at amplitude (n + 1) / 10: each output channel says which
    // source channel it carries by its level.
    let tone = |n: usize| (0..n).map(|c| format!("0.{}*sin(2*PI*440*t)", c + 1)).collect::<Vec<_>>().join("|");
    let wide = format!("aevalsrc={}:c=7.1(wide):s=48000:d=2", tone(8));
    let three = format!("aevalsrc={}:c=3.0:s=48000:d=2", tone(3));
    let src = fixture(
        "odd_layouts.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=2",
            "-f",
            "lavfi",
            "-i",
            &wide,
            "-f",
            "lavfi",
            "-i",
            &three,
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-map",
            "2:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a:0",
            "flac",
            "-c:a:1",
            "pcm_s16le",
        ],
    );
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = t.path().join("out/odd_layouts.mkv");
    let level = |a: f64| 20.0 * (a / 2f64.sqrt()).log10();
    let near =
        |got: &[f64], want: &[f64]| got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1.0);
    // 7.1(wide) FL FR FC LFE BL BR FLC FRC → 7.1 FL FR FC LFE BL BR SL SR.
    let want: Vec<f64> = (1..=8).map(|n| level(n as f64 / 10.0)).collect();
    let got = channel_levels(&out, 0);
    assert!(near(&got, &want), "7.1(wide): {got:?}, want {want:?}");
    // 3 channels of PCM: 3.0 as they are.
    let want: Vec<f64> = (1..=3).map(|n| level(n as f64 / 10.0)).collect();
    let got = channel_levels(&out, 1);
    assert!(near(&got, &want), "3-channel PCM: {got:?}, want {want:?}");
}

/// A DVD's AC-3 that opens with half a second of 2.0 before its 5.1
/// feature (a logo, silence): ffprobe describes the track by its first
/// frames, and it came out a stereo downmix, the LFE lost, without a word.
#[test]
fn an_ac3_track_opening_in_stereo_keeps_its_later_5_1() {
    let t = tempfile::tempdir().unwrap();
    let src = made_once("ac3_stereo_then_5_1.mkv", |tmp| {
        let dir = tempfile::tempdir().unwrap();
        let ff = |args: &[&str]| {
            let o =
                Command::new(ffmpeg()).args(["-hide_banner", "-loglevel", "error", "-y"]).args(args).output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        };
        let (intro, feature, video) =
            (dir.path().join("intro.ac3"), dir.path().join("feature.ac3"), dir.path().join("v.mkv"));
        ff(&["-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo:d=0.5", "-c:a", "ac3", intro.to_str().unwrap()]);
        // A tone in every channel; the LFE's own at 80 Hz.
        let tones = "aevalsrc='0.3*sin(2*PI*300*t)|0.3*sin(2*PI*500*t)|0.3*sin(2*PI*700*t)|0.3*sin(2*PI*80*t)|\
                     0.3*sin(2*PI*1100*t)|0.3*sin(2*PI*1300*t)':s=48000:d=3.5:c=5.1(side)";
        ff(&["-f", "lavfi", "-i", tones, "-c:a", "ac3", "-b:a", "448k", feature.to_str().unwrap()]);
        ff(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=160x120:r=24:d=4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            video.to_str().unwrap(),
        ]);
        let mut both = std::fs::read(&intro).unwrap();
        both.extend(std::fs::read(&feature).unwrap());
        let joined = dir.path().join("joined.ac3");
        std::fs::write(&joined, both).unwrap();
        let o = Command::new("mkvmerge").arg("-q").arg("-o").arg(tmp).arg(&video).arg(&joined).output().unwrap();
        assert!(o.status.code().unwrap_or(9) <= 1, "{}", String::from_utf8_lossy(&o.stdout));
    });
    let first = streams(&ffprobe(&src), "audio")[0]["channels"].clone();
    assert_eq!(first, 2, "the fixture's track opens in stereo");
    let out_dir = t.path().join("out");
    let o = run(drapto(t.path())
        .args(["encode", "--json", "--no-chunked", "--preset", "12", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(&out_dir));
    assert!(o.status.success(), "{}", stdout(&o));
    let warned = events(&o)
        .iter()
        .any(|e| e["event"] == "warning" && e["message"].as_str().unwrap().contains("opens as 2-channel"));
    assert!(warned, "{}", stdout(&o));
    let out = out_dir.join("ac3_stereo_then_5_1.mkv");
    let audio = streams(&ffprobe(&out), "audio")[0].clone();
    assert_eq!(audio["channels"], 6, "{audio}");
    let levels = channel_levels(&out, 0);
    assert!(levels[3] > -30.0, "the LFE is there: {levels:?}");
}

#[test]
fn an_rgb_rip_is_encoded_in_yuv_with_its_colours() {
    // An RGB capture (FFV1 in gbrp: ffprobe's matrix "gbr"), one flat colour.
    let src = fixture(
        "rgb_flat.mkv",
        &["-f", "lavfi", "-i", "color=c=0xC04020:s=160x120:r=25:d=1,format=gbrp", "-c:v", "ffv1"],
    );
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stdout(&o));
    let out = t.path().join("out/rgb_flat.mkv");
    let v = ffprobe(&out);
    let v = streams(&v, "video")[0];
    assert_eq!((v["color_space"].as_str(), v["color_range"].as_str()), (Some("smpte170m"), Some("tv")));
    // Back to RGB as a player would, by the output's own tags.
    let rgb = Command::new(ffmpeg())
        .args(["-v", "error", "-i"])
        .arg(&out)
        .args(["-frames:v", "1", "-vf", "scale=1:1:flags=area,format=rgb24", "-f", "rawvideo", "-"])
        .output()
        .unwrap()
        .stdout;
    let near = |a: u8, b: u8| (i16::from(a) - i16::from(b)).abs() <= 3;
    assert!(near(rgb[0], 0xC0) && near(rgb[1], 0x40) && near(rgb[2], 0x20), "{rgb:?}");
}

#[test]
fn a_picture_turned_for_display_is_encoded_upright_on_both_paths() {
    // A phone's portrait video: 320x180 pictures its display matrix turns
    // a quarter, shown 180x320.
    let base = fixture("turn_base.mkv", &["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=3", "-c:v", "libx264"]);
    let src = made_once("turned.mkv", |tmp| {
        let o = Command::new(ffmpeg())
            .args(["-v", "error", "-y", "-display_rotation", "90", "-i"])
            .arg(&base)
            .args(["-c", "copy", "-f", "matroska"])
            .arg(tmp)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    });
    for args in both_paths("1") {
        let t = tempfile::tempdir().unwrap();
        let o = encode_json(t.path(), &src, &args);
        assert!(o.status.success(), "{args:?}: {}", stdout(&o));
        let out = t.path().join("out/turned.mkv");
        let p = ffprobe(&out);
        let v = streams(&p, "video")[0];
        assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(180), Some(320)), "{args:?}");
        // The same picture as the rip shows (not squeezed into 320x180).
        let o = Command::new(ffmpeg())
            .args(["-hide_banner", "-nostats", "-i"])
            .arg(&src)
            .arg("-i")
            .arg(&out)
            .args(["-lavfi", "[0][1]psnr", "-f", "null", "-"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stderr);
        let psnr: f64 = text.split("average:").nth(1).and_then(|s| s.split_whitespace().next()?.parse().ok()).unwrap();
        assert!(psnr > 30.0, "{args:?}: PSNR {psnr} against the rip as shown");
    }
}

/// A DVD-like title whose first second is 176 pictures wide and whose
/// feature is 352 wide (one MPEG-2 stream, each part made by `vf` after
/// its size, and `telecine` at 23.976 fps when asked), shown 4:3
/// throughout, in Matroska by mkvmerge (its track says the feature's size)
/// or by ffmpeg's copy (its track says the opening's).
fn size_changing_title(name: &str, telecine: bool, by_ffmpeg: bool) -> std::path::PathBuf {
    made_once(name, |tmp| {
        let part = |size: &str, seconds: &str, tag: &str| {
            let out = scratch_path(tag, "m2v");
            let (rate, pulldown) = if telecine { ("24000/1001", ",telecine,setfield=tff") } else { ("25", "") };
            let o = Command::new(ffmpeg())
                .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
                .arg(format!("testsrc2=size={size}:rate={rate}:duration={seconds}{pulldown},setdar=4/3"))
                .args(["-c:v", "mpeg2video", "-q:v", "3", "-g", "15", "-flags", "+ilme+ildct", "-f", "mpeg2video"])
                .arg(&out)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            std::fs::read(&out).unwrap()
        };
        let mut stream = part("176x240", "1", "opening");
        stream.extend(part("352x240", "3", "feature"));
        let m2v = scratch_path("title", "m2v");
        std::fs::write(&m2v, stream).unwrap();
        let o = if by_ffmpeg {
            let rate = if telecine { "30000/1001" } else { "25" };
            Command::new(ffmpeg())
                .args(["-v", "error", "-y", "-fflags", "+genpts", "-r", rate, "-i"])
                .arg(&m2v)
                .args(["-c", "copy", "-f", "matroska"])
                .arg(tmp)
                .output()
                .unwrap()
        } else {
            let mut c = Command::new("mkvmerge");
            if telecine {
                c.args(["--default-duration", "0:30000/1001p"]);
            }
            c.arg("-q").arg("-o").arg(tmp).arg(&m2v).output().unwrap()
        };
        let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.code().unwrap_or(2) <= 1, "{said}");
    })
}

#[test]
fn a_title_whose_pictures_change_size_is_encoded_at_the_size_most_of_it_has() {
    // (Its Matroska track says the feature's size, or the opening's; hard
    // telecine on top: inverse telecine must not lose frames at the change.)
    let titles = [
        (size_changing_title("size_changes.mkv", false, false), None),
        (size_changing_title("size_changes_ffmpeg.mkv", false, true), None),
        (size_changing_title("size_changes_telecine.mkv", true, false), Some(96)),
    ];
    for (src, frames) in titles {
        for args in both_paths("1") {
            let t = tempfile::tempdir().unwrap();
            let o = encode_json(t.path(), &src, &args);
            let name = src.file_name().unwrap().to_string_lossy().into_owned();
            assert!(o.status.success(), "{name} {args:?}: {}", stdout(&o));
            let warned = events(&o).iter().any(|e| {
                e["event"] == "warning" && e["message"].as_str().unwrap_or("").contains("the picture changes size")
            });
            assert!(warned, "{name} {args:?}: said");
            let out = t.path().join("out").join(&name);
            let p = ffprobe(&out);
            let v = streams(&p, "video")[0];
            assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(352), Some(240)), "{name} {args:?}");
            assert_eq!(v["display_aspect_ratio"], "4:3", "{name} {args:?}");
            if let Some(n) = frames {
                assert_eq!(frame_count(&out), n, "{name} {args:?}: every film frame");
            }
        }
    }
}

#[test]
fn a_4_2_2_interlaced_picture_is_deinterlaced_before_its_chroma_is_halved() {
    // A capture's 4:2:2 interlaced video (25i, letterboxed): its fields are
    // told apart before the chroma goes to 4:2:0, on both paths (the chunked
    // path's first scale did that conversion first: colour blended across
    // fields, 10 dB down).
    let src = fixture(
        "interlaced_422.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=352x216:rate=50:duration=3,pad=352:288:0:36:black,tinterlace=interleave_top,setfield=tff,format=yuv422p",
            "-c:v",
            "mpeg2video",
            "-q:v",
            "2",
            "-flags",
            "+ilme+ildct",
        ],
    );
    for args in both_paths("1") {
        let t = tempfile::tempdir().unwrap();
        let o = encode_json(t.path(), &src, &[&args[..], &["--interlace", "deinterlace"]].concat());
        assert!(o.status.success(), "{args:?}: {}", stdout(&o));
        let reference = "bwdif=mode=send_frame:parity=tff:deint=all,crop=352:216:0:36,format=yuv420p10le";
        let o = Command::new(ffmpeg())
            .args(["-hide_banner", "-nostats", "-i"])
            .arg(t.path().join("out/interlaced_422.mkv"))
            .arg("-i")
            .arg(&src)
            .args(["-filter_complex", &format!("[1:v]{reference}[r];[0:v][r]psnr"), "-f", "null", "-"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stderr);
        let plane = |p: &str| -> f64 {
            text.split(&format!(" {p}:")).nth(1).and_then(|s| s.split_whitespace().next()?.parse().ok()).unwrap()
        };
        assert!(plane("u") > 37.0 && plane("v") > 37.0, "{args:?}: chroma PSNR u {} v {}", plane("u"), plane("v"));
    }
}

/// The dry run says `fail`, as the run does at once, for a rip that is
/// none at a glance: an empty file, an MP4 or a text named `.mkv` (it said
/// `encode`, exit 0).
#[test]
fn a_dry_run_fails_what_is_no_rip_at_a_glance() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("library");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("empty.mkv"), b"").unwrap();
    std::fs::write(dir.join("text.mkv"), b"not a rip at all").unwrap();
    std::fs::copy(simple_clip("dry-fine.mkv", "320x240", 1), dir.join("fine.mkv")).unwrap();
    // A sidecar of a rip that fails is not copied (it was said to be).
    std::fs::write(dir.join("empty.en.srt"), b"1\n00:00:00,000 --> 00:00:01,000\nHi\n").unwrap();
    let o = run(drapto(t.path())
        .args(["encode", "--json", "--dry-run", "--copy-sidecars", "-i"])
        .arg(&dir)
        .arg("-o")
        .arg(t.path().join("out")));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let said: Vec<(String, String)> = events(&o)
        .iter()
        .map(|l| (l["action"].as_str().unwrap().into(), l["reason"].as_str().unwrap_or("").into()))
        .collect();
    assert!(said.contains(&("fail".into(), "is empty (0 bytes)".into())), "{said:?}");
    assert!(said.contains(&("fail".into(), "is not a Matroska file (it does not begin as one)".into())), "{said:?}");
    assert!(said.contains(&("encode".into(), String::new())), "{said:?}");
    assert!(!said.iter().any(|(a, _)| a == "copy"), "{said:?}");
}

#[test]
fn settings_the_chunked_path_cannot_follow_are_said_at_the_start() {
    if !has_libvmaf() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    // No rip: the run stops at the file, after what is said at the start.
    let input = text_file("not-a-rip-for-warnings.mkv", "not a rip");
    let o = run(drapto(t.path())
        .env("DRAPTO_ENABLE_CHUNKED_ENCODING", "true")
        .env("DRAPTO_PARALLEL_JOBS", "32")
        // (Fewer than 32 cores' worth on any machine up to 320 cores.)
        .env("DRAPTO_MAX_CPU", "10")
        .args(["encode", "--crf", "20", "-i"])
        .arg(&input)
        .arg("-o")
        .arg(t.path().join("out")));
    let said = stdout(&o);
    assert!(said.contains("the CRFs given (encoding.crf.sd (flag --crf)"), "{said}");
    let capped = "processing.parallel_jobs is 32 (environment variable DRAPTO_PARALLEL_JOBS) but the CPU share is";
    assert!(said.contains(capped), "{said}");
}

/// Colour the container alone states (mkvmerge's Colour element over a
/// stream that says nothing of its primaries and transfer) reaches the
/// output on both paths: the frames carried none, and it was lost.
#[test]
fn colour_stated_by_the_container_alone_is_kept() {
    let src = made_once("colour_in_container.mkv", |tmp| {
        let es = fixture(
            "colour_in_container_stream.mkv",
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=s=320x240:r=25:d=2",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-colorspace",
                "bt709",
            ],
        );
        let o = Command::new("mkvmerge")
            .arg("-q")
            .arg("-o")
            .arg(tmp)
            .args(["--colour-primaries", "0:1", "--colour-transfer-characteristics", "0:1", "--colour-range", "0:1"])
            .arg(&es)
            .output()
            .unwrap();
        assert!(o.status.code().unwrap_or(9) <= 1, "{}", String::from_utf8_lossy(&o.stdout));
    });
    let said = streams(&ffprobe(&src), "video")[0]["color_primaries"].clone();
    assert!(said.is_null() || said == "unknown", "the stream says nothing: {said}");
    for args in both_paths("1") {
        let t = tempfile::tempdir().unwrap();
        let o = encode_json(t.path(), &src, &args);
        assert!(o.status.success(), "{args:?}: {}", stdout(&o));
        let p = ffprobe(&t.path().join("out/colour_in_container.mkv"));
        let v = streams(&p, "video")[0];
        assert_eq!(
            (v["color_primaries"].as_str(), v["color_transfer"].as_str()),
            (Some("bt709"), Some("bt709")),
            "{args:?}: {v}"
        );
    }
}
