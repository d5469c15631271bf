//! What a collector curated comes through: a rip made with mkvmerge the way
//! MakeMKV and MKVToolNix users make them (IETF languages, names, every
//! flag, audio delays, two chapter editions with nested, bilingual
//! chapters, global and per-track tags, a segment title, a font and a cover
//! image) is encoded on both paths, and the output's structure, read with
//! mkvmerge and mkvextract here, is the source's but for the codecs. A rip
//! whose output would lose something fails before any encode.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const CHAPTERS: &str = r#"<?xml version="1.0"?>
<Chapters>
  <EditionEntry>
    <EditionFlagDefault>1</EditionFlagDefault>
    <EditionUID>1001</EditionUID>
    <ChapterAtom>
      <ChapterUID>2001</ChapterUID>
      <ChapterTimeStart>00:00:00.000000000</ChapterTimeStart>
      <ChapterTimeEnd>00:00:02.000000000</ChapterTimeEnd>
      <ChapterDisplay><ChapterString>Opening</ChapterString><ChapterLanguage>eng</ChapterLanguage><ChapLanguageIETF>en-US</ChapLanguageIETF></ChapterDisplay>
      <ChapterDisplay><ChapterString>Ouverture</ChapterString><ChapterLanguage>fre</ChapterLanguage><ChapLanguageIETF>fr-CA</ChapLanguageIETF></ChapterDisplay>
      <ChapterAtom>
        <ChapterUID>2002</ChapterUID>
        <ChapterTimeStart>00:00:01.000000000</ChapterTimeStart>
        <ChapterDisplay><ChapterString>Titles</ChapterString><ChapterLanguage>eng</ChapterLanguage></ChapterDisplay>
      </ChapterAtom>
    </ChapterAtom>
    <ChapterAtom>
      <ChapterUID>2003</ChapterUID>
      <ChapterTimeStart>00:00:02.000000000</ChapterTimeStart>
      <ChapterDisplay><ChapterString>Heist</ChapterString><ChapterLanguage>eng</ChapterLanguage></ChapterDisplay>
    </ChapterAtom>
  </EditionEntry>
  <EditionEntry>
    <EditionUID>1002</EditionUID>
    <EditionFlagHidden>0</EditionFlagHidden>
    <ChapterAtom>
      <ChapterUID>3001</ChapterUID>
      <ChapterTimeStart>00:00:00.500000000</ChapterTimeStart>
      <ChapterDisplay><ChapterString>Director's commentary</ChapterString><ChapterLanguage>eng</ChapterLanguage></ChapterDisplay>
    </ChapterAtom>
  </EditionEntry>
</Chapters>
"#;

const GLOBAL_TAGS: &str = r#"<?xml version="1.0"?>
<Tags>
  <Tag><Targets><TargetTypeValue>50</TargetTypeValue></Targets>
    <Simple><Name>TITLE</Name><String>Heat</String></Simple>
    <Simple><Name>DATE_RELEASED</Name><String>1995</String></Simple>
    <Simple><Name>DIRECTOR</Name><String>Michael Mann</String>
      <Simple><Name>SORT_WITH</Name><String>Mann, Michael</String></Simple></Simple>
  </Tag>
  <Tag><Targets><TargetTypeValue>30</TargetTypeValue><ChapterUID>2003</ChapterUID></Targets>
    <Simple><Name>TITLE</Name><String>The heist</String></Simple>
  </Tag>
</Tags>
"#;

fn track_tags(name: &str, value: &str) -> PathBuf {
    text_file(
        &format!("carry-{}.xml", name.to_lowercase()),
        &format!(
            "<?xml version=\"1.0\"?>\n<Tags><Tag><Targets /><Simple><Name>{name}</Name><String>{value}</String></Simple></Tag></Tags>\n"
        ),
    )
}

/// The raw media: 3 s of picture, two audio tracks, two extra pieces.
fn media() -> (PathBuf, PathBuf, PathBuf, PathBuf, PathBuf) {
    let av = fixture(
        "carry-av.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=24:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:sample_rate=48000:duration=3",
            "-map",
            "0",
            "-map",
            "1",
            "-map",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a:0",
            "aac",
            "-ac:a:0",
            "2",
            "-c:a:1",
            "flac",
            "-ac:a:1",
            "6",
        ],
    );
    let cover = made_once("carry-cover.jpg", |tmp| {
        let o = Command::new(ffmpeg())
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "mandelbrot=size=200x300"])
            .args(["-frames:v", "1", "-f", "image2"])
            .arg(tmp)
            .output()
            .unwrap();
        assert!(o.status.success());
    });
    let font = made_once("carry-font.ttf", |tmp| {
        std::fs::write(tmp, (0..4096u32).map(|i| (i * 13 % 251) as u8).collect::<Vec<u8>>()).unwrap()
    });
    let srt =
        text_file("carry.srt", "1\n00:00:00,500 --> 00:00:01,500\nHola.\n\n2\n00:00:02,000 --> 00:00:02,800\nAdiós.\n");
    let ass = text_file(
        "carry.ass",
        "[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\nStyle: Default,Carry Sans,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\nDialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,A sign\n",
    );
    (av, cover, font, srt, ass)
}

/// The curated rip.
fn curated_rip() -> PathBuf {
    let (av, cover, font, srt, ass) = media();
    let chapters = text_file("carry-chapters.xml", CHAPTERS);
    let tags = text_file("carry-global-tags.xml", GLOBAL_TAGS);
    let mixed = track_tags("MIXED_BY", "Someone");
    let comment = track_tags("COMMENT", "Signs and songs");
    let o = |s: &str| std::ffi::OsString::from(s);
    let p = |p: &Path| p.as_os_str().to_owned();
    let args: Vec<std::ffi::OsString> = vec![
        o("--title"),
        o("Heat (1995)"),
        o("--chapters"),
        p(&chapters),
        o("--global-tags"),
        p(&tags),
        // The film, then its two audio tracks: Latin-American Spanish
        // commentary, and the original Canadian French 5.1, 300 ms late.
        o("--language"),
        o("0:en-US"),
        o("--track-name"),
        o("0:Main feature"),
        o("--tags"),
        {
            let mut t = o("0:");
            t.push(&mixed);
            t
        },
        o("--language"),
        o("1:es-419"),
        o("--track-name"),
        o("1:Comentario"),
        o("--commentary-flag"),
        o("1:1"),
        o("--default-track-flag"),
        o("1:0"),
        o("--language"),
        o("2:fr-CA"),
        o("--track-name"),
        o("2:Français 5.1"),
        o("--original-flag"),
        o("2:1"),
        o("--visual-impaired-flag"),
        o("2:0"),
        o("--sync"),
        o("2:300"),
        p(&av),
        o("--language"),
        o("0:es-ES"),
        o("--forced-display-flag"),
        o("0:1"),
        o("--hearing-impaired-flag"),
        o("0:1"),
        o("--default-track-flag"),
        o("0:0"),
        p(&srt),
        o("--language"),
        o("0:en-GB"),
        o("--track-name"),
        o("0:Signs"),
        o("--text-descriptions-flag"),
        o("0:1"),
        o("--track-enabled-flag"),
        o("0:0"),
        o("--tags"),
        {
            let mut t = o("0:");
            t.push(&comment);
            t
        },
        p(&ass),
        o("--attachment-description"),
        o("Front cover"),
        o("--attachment-mime-type"),
        o("image/jpeg"),
        o("--attachment-name"),
        o("cover.jpg"),
        o("--attach-file"),
        p(&cover),
        o("--attachment-mime-type"),
        o("font/ttf"),
        o("--attachment-name"),
        o("CarrySans.ttf"),
        o("--attach-file"),
        p(&font),
    ];
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    mkvmerge_fixture("carry-curated.mkv", &refs)
}

/// mkvextract's XML of `what` ("chapters", "tags").
fn extract(path: &Path, what: &str) -> String {
    let o = Command::new("mkvextract").arg(path).arg(what).arg("-").output().unwrap();
    assert!(o.status.success(), "mkvextract {what}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The tags as (target, name, value) lines, track UIDs as track numbers,
/// without mkvmerge's statistics and the encoder tags re-encoding replaces.
fn tag_lines(path: &Path, j: &Value) -> Vec<String> {
    let xml = extract(path, "tags");
    let doc = roxmltree::Document::parse(xml.trim_start_matches('\u{feff}')).unwrap();
    let uids: Vec<String> =
        j["tracks"].as_array().unwrap().iter().map(|t| t["properties"]["uid"].to_string()).collect();
    let mut lines = Vec::new();
    for tag in doc.descendants().filter(|n| n.has_tag_name("Tag")) {
        let targets = tag.children().find(|n| n.has_tag_name("Targets")).unwrap();
        let target: Vec<String> = targets
            .children()
            .filter(|n| n.is_element())
            .map(|n| {
                let v = n.text().unwrap_or("").trim();
                match n.tag_name().name() {
                    "TrackUID" => format!("track {}", uids.iter().position(|u| u == v).unwrap() + 1),
                    name => format!("{name} {v}"),
                }
            })
            .collect();
        for simple in tag.descendants().filter(|n| n.has_tag_name("Simple")) {
            let text = |n: &str| simple.children().find(|c| c.has_tag_name(n)).and_then(|c| c.text()).unwrap_or("");
            let name = text("Name");
            let stats = ["BPS", "DURATION", "NUMBER_OF_FRAMES", "NUMBER_OF_BYTES", "ENCODER"];
            if stats.contains(&name) || name.starts_with("_STATISTICS_") || name == "DRAPTO_SOURCE" {
                continue;
            }
            lines.push(format!("{} {name}={} ({})", target.join(","), text("String"), text("TagLanguageIETF")));
        }
    }
    lines.sort();
    lines
}

/// Per track: type and everything a collector sets.
fn track_lines(j: &Value) -> Vec<String> {
    const KEYS: &[&str] = &[
        "language",
        "language_ietf",
        "track_name",
        "default_track",
        "forced_track",
        "enabled_track",
        "flag_original",
        "flag_commentary",
        "flag_hearing_impaired",
        "flag_visual_impaired",
        "flag_text_descriptions",
    ];
    j["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let props: Vec<String> = KEYS.iter().map(|k| format!("{k}={}", t["properties"][*k])).collect();
            format!("{} {}", t["type"], props.join(" "))
        })
        .collect()
}

fn attachment_lines(j: &Value) -> Vec<String> {
    j["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{} {} {} {}", a["file_name"], a["content_type"], a["description"], a["size"]))
        .collect()
}

fn start_ms(j: &Value, track: usize) -> f64 {
    j["tracks"][track]["properties"]["minimum_timestamp"].as_f64().unwrap() / 1e6
}

fn paths() -> Vec<Vec<&'static str>> {
    let mut p = vec![vec!["--no-chunked"]];
    if has_libvmaf() {
        p.push(vec!["--chunked", "--chunk-size", "2"]);
    }
    p
}

#[test]
fn a_curated_rip_comes_out_with_nothing_changed_but_the_codecs() {
    let src = curated_rip();
    let before = fingerprint(&src);
    let sj = mkvmerge_j(&src);
    // ffmpeg shows the cover as a second video stream; it is an attachment.
    assert_eq!(streams(&ffprobe(&src), "video").len(), 2, "the fixture has cover art");
    for args in paths() {
        let t = tempfile::tempdir().unwrap();
        let o = encode_json(t.path(), &src, &args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert_eq!(fingerprint(&src), before, "the input must not change");
        let out = t.path().join("out/carry-curated.mkv");
        let oj = mkvmerge_j(&out);

        // drapto's own comparison found nothing, area by area.
        let ev = events(&o);
        let v = ev.iter().find(|e| e["event"] == "validation_complete").unwrap();
        for area in ["container", "tracks", "attachments", "chapters", "tags"] {
            let c = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == area).unwrap();
            assert_eq!(c["passed"], true, "{args:?} {area}: {}", c["detail"]);
        }

        // And the same, read independently here.
        assert_eq!(oj["container"]["properties"]["title"], "Heat (1995)");
        // Its identity too: ordered chapters in other files name it by it.
        let uid = |j: &Value| j["container"]["properties"]["segment_uid"].clone();
        assert!(uid(&sj).is_string() && uid(&oj) == uid(&sj), "{args:?}: segment UID {} became {}", uid(&sj), uid(&oj));
        assert_eq!(track_lines(&oj), track_lines(&sj), "{args:?}");
        let codecs: Vec<&str> = oj["tracks"].as_array().unwrap().iter().map(|t| t["codec"].as_str().unwrap()).collect();
        assert_eq!(codecs, ["AV1", "Opus", "Opus", "SubRip/SRT", "SubStationAlpha"]);
        assert_eq!(attachment_lines(&oj), attachment_lines(&sj));
        assert_eq!(extract(&out, "chapters"), extract(&src, "chapters"), "{args:?}: chapters");
        assert_eq!(tag_lines(&out, &oj), tag_lines(&src, &sj), "{args:?}: tags");
        // The French track keeps its 300 ms delay against the film.
        let delay = |j: &Value| start_ms(j, 2) - start_ms(j, 0);
        assert!((delay(&oj) - delay(&sj)).abs() < 40.0, "delay {} became {}", delay(&sj), delay(&oj));
        // The film, not the cover, is what was encoded.
        let probe = ffprobe(&out);
        let video = streams(&probe, "video");
        assert_eq!(video.iter().filter(|s| s["codec_name"] == "av1").count(), 1);
        assert_eq!(video[0]["width"], 320);
    }
}

/// A rip with a second video track (say a picture-in-picture commentary):
/// drapto encodes one video track only.
fn two_video_rip() -> PathBuf {
    let (av, ..) = media();
    let pip = fixture(
        "carry-pip.mkv",
        &["-f", "lavfi", "-i", "testsrc=size=160x120:rate=24:duration=3", "-c:v", "libx264", "-preset", "ultrafast"],
    );
    let args: Vec<&std::ffi::OsStr> = vec![av.as_os_str(), "--track-name".as_ref(), "0:PiP".as_ref(), pip.as_os_str()];
    let base = mkvmerge_fixture("carry-two-video-base.mkv", &args);
    // Chapters that name the second video track: one with the first audio
    // track too, one with it alone.
    let uid = |track: usize| mkvmerge_j(&base)["tracks"][track]["properties"]["uid"].to_string();
    let atom = |n: u32, start: &str, tracks: &[String]| {
        let numbers: String = tracks.iter().map(|t| format!("<ChapterTrackNumber>{t}</ChapterTrackNumber>")).collect();
        format!(
            "<ChapterAtom><ChapterUID>{n}</ChapterUID><ChapterTimeStart>{start}</ChapterTimeStart>\
             <ChapterDisplay><ChapterString>Part {n}</ChapterString><ChapterLanguage>eng</ChapterLanguage></ChapterDisplay>\
             <ChapterTrack>{numbers}</ChapterTrack></ChapterAtom>"
        )
    };
    let chapters = text_file(
        "carry-two-video-chapters.xml",
        &format!(
            "<?xml version=\"1.0\"?>\n<Chapters><EditionEntry><EditionUID>7001</EditionUID>{}{}</EditionEntry></Chapters>\n",
            atom(1, "00:00:00.000000000", &[uid(1), uid(3)]),
            atom(2, "00:00:01.000000000", &[uid(3)])
        ),
    );
    let args: Vec<&std::ffi::OsStr> = vec!["--chapters".as_ref(), chapters.as_os_str(), base.as_os_str()];
    mkvmerge_fixture("carry-two-video.mkv", &args)
}

#[test]
fn a_rip_that_would_lose_a_track_fails_before_any_encode_unless_told_to_go_on() {
    let src = two_video_rip();
    let t = tempfile::tempdir().unwrap();
    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(t.path().join("out")));
    assert_eq!(o.status.code(), Some(1));
    let ev = events(&o);
    assert!(!ev.iter().any(|e| e["event"] == "stage_started" && e["stage"]["kind"] != "analysis"), "nothing encoded");
    let failed = ev.iter().find(|e| e["event"] == "file_failed").unwrap();
    let msg = failed["error"].as_str().unwrap();
    assert!(msg.contains("would lose video track 2 (AVC/H.264/MPEG-4p10)") && msg.contains("--on-loss warn"), "{msg}");
    assert!(!t.path().join("out/carry-two-video.mkv").exists());

    // `analyze` shows the plan, and what it leaves out.
    let a = run(drapto(t.path()).args(["analyze", "--json", "--on-loss", "warn"]).arg(&src));
    let line: Value = serde_json::from_str(stdout(&a).lines().next().unwrap()).unwrap();
    let plan = &line["analysis"]["mux"];
    assert_eq!(plan["left_out"][0]["what"], "video track 2 (AVC/H.264/MPEG-4p10)");
    assert_eq!(plan["left_out"][0]["loss"], true);
    assert_eq!(plan["tracks"].as_array().unwrap().len(), 3);

    let o = encode_json(t.path(), &src, &["--on-loss", "warn"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let w: Vec<String> = events(&o)
        .iter()
        .filter(|e| e["event"] == "warning")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(w.iter().any(|w| w.contains("left out of the output: video track 2")), "{w:?}");
    let out = t.path().join("out/carry-two-video.mkv");
    let oj = mkvmerge_j(&out);
    let kinds: Vec<&str> = oj["tracks"].as_array().unwrap().iter().map(|t| t["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["video", "audio", "audio"]);
    // The first chapter no longer names the track left out, only the first
    // audio track (by its new UID); the second, which names the track left
    // out alone, keeps naming it (without it, it would be every track's).
    let chapters = extract(&out, "chapters");
    let audio = oj["tracks"][1]["properties"]["uid"].to_string();
    let pip = mkvmerge_j(&src)["tracks"][3]["properties"]["uid"].to_string();
    assert_eq!(chapters.matches("<ChapterTrack>").count(), 2, "{chapters}");
    assert_eq!(chapters.matches("<ChapterTrackNumber>").count(), 2, "{chapters}");
    assert!(chapters.contains(&format!("<ChapterTrackNumber>{audio}</ChapterTrackNumber>")), "{chapters}");
    assert!(chapters.contains(&format!("<ChapterTrackNumber>{pip}</ChapterTrackNumber>")), "{chapters}");
}

/// A rip whose chapters and tags hold what the curated one does not: an
/// ordered edition whose chapters name another file's segment, a DVD
/// chapter command and a track (binary values, written `format="hex"`), a
/// binary tag, a tag naming an audio track and a subtitle track at once,
/// and a subtitle track compressed with zlib (mkvmerge's default for text
/// is none).
fn binary_rip() -> PathBuf {
    let (av, _, _, srt, _) = media();
    let base = mkvmerge_fixture(
        "carry-binary-base.mkv",
        &[av.as_os_str(), "--compression".as_ref(), "0:zlib".as_ref(), srt.as_os_str()],
    );
    let uid = |track: usize| mkvmerge_j(&base)["tracks"][track]["properties"]["uid"].to_string();
    let chapters = text_file(
        "carry-binary-chapters.xml",
        &format!(
            r#"<?xml version="1.0"?>
<Chapters>
  <EditionEntry>
    <EditionUID>4001</EditionUID>
    <EditionFlagOrdered>1</EditionFlagOrdered>
    <ChapterAtom>
      <ChapterUID>5001</ChapterUID>
      <ChapterTimeStart>00:00:00.000000000</ChapterTimeStart>
      <ChapterTimeEnd>00:00:02.000000000</ChapterTimeEnd>
      <ChapterSegmentUID format="hex">b0b1b2b3b4b5b6b7b8b9babbbcbdbebf</ChapterSegmentUID>
      <ChapterDisplay><ChapterString>Intro from another file</ChapterString><ChapterLanguage>eng</ChapterLanguage></ChapterDisplay>
      <ChapterTrack><ChapterTrackNumber>{audio}</ChapterTrackNumber></ChapterTrack>
    </ChapterAtom>
    <ChapterAtom>
      <ChapterUID>5002</ChapterUID>
      <ChapterTimeStart>00:00:02.000000000</ChapterTimeStart>
      <ChapterTimeEnd>00:00:03.000000000</ChapterTimeEnd>
      <ChapterDisplay><ChapterString>Menu command</ChapterString><ChapterLanguage>eng</ChapterLanguage></ChapterDisplay>
      <ChapterProcess>
        <ChapterProcessCodecID>1</ChapterProcessCodecID>
        <ChapterProcessPrivate format="hex">00</ChapterProcessPrivate>
        <ChapterProcessCommand>
          <ChapterProcessTime>1</ChapterProcessTime>
          <ChapterProcessData format="hex">3002000000000000</ChapterProcessData>
        </ChapterProcessCommand>
      </ChapterProcess>
    </ChapterAtom>
  </EditionEntry>
</Chapters>
"#,
            audio = uid(1)
        ),
    );
    let tags = text_file(
        "carry-binary-tags.xml",
        &format!(
            r#"<?xml version="1.0"?>
<Tags>
  <Tag><Targets><TargetTypeValue>50</TargetTypeValue></Targets>
    <Simple><Name>THUMB</Name><Binary format="hex">0102030405</Binary></Simple>
  </Tag>
  <Tag><Targets><TargetTypeValue>50</TargetTypeValue><TrackUID>{audio}</TrackUID><TrackUID>{subtitles}</TrackUID></Targets>
    <Simple><Name>LANGUAGE_NOTE</Name><String>Spoken and written in Spanish</String></Simple>
  </Tag>
</Tags>
"#,
            audio = uid(1),
            subtitles = uid(3)
        ),
    );
    let o = |s: &str| std::ffi::OsString::from(s);
    let args: Vec<std::ffi::OsString> = vec![
        o("--chapters"),
        chapters.into_os_string(),
        o("--global-tags"),
        tags.into_os_string(),
        o("--compression"),
        o("3:zlib"),
        base.into_os_string(),
    ];
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    mkvmerge_fixture("carry-binary.mkv", &refs)
}

#[test]
fn binary_chapters_track_references_shared_tags_and_compression_come_through() {
    let src = binary_rip();
    let sj = mkvmerge_j(&src);
    assert_eq!(sj["tracks"][3]["properties"]["content_encoding_algorithms"], "0", "the fixture's subtitles are zlib");
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = t.path().join("out/carry-binary.mkv");
    let oj = mkvmerge_j(&out);
    // The chapters are the source's, their track reference now naming the
    // re-encoded audio track's new UID (byte for byte otherwise: binary
    // values too).
    let uid = |j: &Value| j["tracks"][1]["properties"]["uid"].to_string();
    assert_ne!(uid(&oj), uid(&sj));
    assert_eq!(extract(&out, "chapters"), extract(&src, "chapters").replace(&uid(&sj), &uid(&oj)));
    // The binary tag, and the tag naming two tracks on each of them.
    let tags = tag_lines(&out, &oj);
    assert!(extract(&out, "tags").contains("<Binary format=\"hex\">0102030405</Binary>"), "{tags:?}");
    for track in ["track 2", "track 4"] {
        let line = format!("{track} LANGUAGE_NOTE=Spoken and written in Spanish");
        assert!(tags.iter().any(|l| l.starts_with(&line)), "{line}: {tags:?}");
    }
    assert_eq!(oj["tracks"][3]["properties"]["content_encoding_algorithms"], "0", "subtitles compressed as they were");
}

/// An ASS script's head for a 320×240 canvas, up to its events.
const SCRIPT_HEAD: &str = "[Script Info]\nScriptType: v4.00+\nPlayResX: 320\nPlayResY: 240\n\n[V4+ Styles]\n\
     Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
     Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, \
     MarginR, MarginV, Encoding\nStyle: Default,DejaVu Sans,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,\
     100,100,0,0,1,1,0,2,10,10,10,1\n\n[Events]\n\
     Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n";

/// A sign placed over the picture's top, and a line placed by its margins.
const SIGN_LINES: &str = "Dialogue: 0,0:00:00.50,0:00:02.00,Default,,0,0,0,,{\\pos(160,60)}SIGN\n\
     Dialogue: 0,0:00:01.00,0:00:02.50,Default,,0,0,0,,Spoken line\n";

/// A Blu-ray PGS subtitle stream (`.sup`): a white bar shown from 0.5 to
/// 1.5 s and from 2.0 to 2.8 s, each display set (composition, window,
/// palette, run-length object, end) cleared by an empty composition.
fn pgs_sup() -> Vec<u8> {
    let line = [0x00, 0xC0, 100, 0x01, 0x00, 0x00];
    let rle: Vec<u8> = line.iter().copied().cycle().take(line.len() * 20).collect();
    pgs_sup_drawn((100, 20, 110, 200), &rle)
}

/// [`pgs_sup`]'s line drawn on a picture of the whole 320×240 frame, the
/// rest of it transparent (as some authoring tools and conversions make
/// them).
fn pgs_sup_full_frame() -> Vec<u8> {
    let clear = [0x00, 0x41, 0x40, 0x00, 0x00];
    let lit = [0x00, 0x40, 110, 0x00, 0xC0, 100, 0x01, 0x00, 0x40, 110, 0x00, 0x00];
    let rows = (0..240).map(|y| if (200..220).contains(&y) { lit.as_slice() } else { clear.as_slice() });
    pgs_sup_drawn((320, 240, 0, 0), &rows.flatten().copied().collect::<Vec<u8>>())
}

/// A `.sup` as [`pgs_sup`] says, its picture (w, h, x, y) drawn by `rle`
/// (colour 1 white, colour 0 transparent).
fn pgs_sup_drawn((w, h, x, y): (u16, u16, u16, u16), rle: &[u8]) -> Vec<u8> {
    fn segment(ms: u32, kind: u8, data: &[u8]) -> Vec<u8> {
        let mut s = b"PG".to_vec();
        s.extend((ms * 90).to_be_bytes());
        s.extend(0u32.to_be_bytes());
        s.push(kind);
        s.extend((data.len() as u16).to_be_bytes());
        s.extend(data);
        s
    }
    let be = |v: u16| v.to_be_bytes();
    let composition = |number: u16, state: u8, objects: u8| {
        let mut d = [be(320), be(240)].concat();
        d.push(0x10);
        d.extend(be(number));
        d.extend([state, 0, 0, objects]);
        if objects > 0 {
            d.extend([be(0).as_slice(), &[0, 0], &be(x), &be(y)].concat());
        }
        d
    };
    let window = [&[1u8, 0][..], &be(x), &be(y), &be(w), &be(h)].concat();
    let mut out = Vec::new();
    for (n, (on, off)) in [(500, 1500), (2000, 2800)].into_iter().enumerate() {
        let n = n as u16 * 2;
        let palette = [0u8, 0, 0, 16, 128, 128, 0, 1, 235, 128, 128, 255];
        let mut object = [&be(0)[..], &[0, 0xC0], &(4 + rle.len() as u32).to_be_bytes()[1..], &be(w), &be(h)].concat();
        object.extend(rle);
        out.extend(segment(on, 0x16, &composition(n, 0x80, 1)));
        out.extend(segment(on, 0x17, &window));
        out.extend(segment(on, 0x14, &palette));
        out.extend(segment(on, 0x15, &object));
        out.extend(segment(on, 0x80, &[]));
        out.extend(segment(off, 0x16, &composition(n + 1, 0, 0)));
        out.extend(segment(off, 0x17, &window));
        out.extend(segment(off, 0x80, &[]));
    }
    out
}

/// A rip with image subtitles as discs carry them: PGS stored as MakeMKV
/// stores it (uncompressed) and as mkvmerge does by default (zlib), and a
/// DVD's VobSub (made from the PGS by ffmpeg's dvdsub encoder, with its
/// palette in the track's private data), uncompressed and zlib.
fn image_subtitles_rip() -> PathBuf {
    let (av, ..) = media();
    let sup = made_once("carry.sup", |tmp| std::fs::write(tmp, pgs_sup()).unwrap());
    let vobsub = made_once("carry-vobsub.mks", |tmp| {
        let o = Command::new(ffmpeg())
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(&sup)
            .args(["-c:s", "dvdsub", "-s", "720x480", "-bsf:s", "setts=duration=800", "-f", "matroska"])
            .arg(tmp)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    });
    let o = |s: &str| std::ffi::OsString::from(s);
    let args: Vec<std::ffi::OsString> = vec![
        av.into_os_string(),
        o("--language"),
        o("0:en"),
        o("--track-name"),
        o("0:English SDH"),
        o("--compression"),
        o("0:none"),
        sup.clone().into_os_string(),
        o("--language"),
        o("0:fr"),
        o("--forced-display-flag"),
        o("0:1"),
        o("--compression"),
        o("0:zlib"),
        sup.into_os_string(),
        o("--compression"),
        o("0:none"),
        vobsub.clone().into_os_string(),
        o("--compression"),
        o("0:zlib"),
        vobsub.into_os_string(),
    ];
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    mkvmerge_fixture("carry-image-subtitles.mkv", &refs)
}

/// Each packet of ffprobe stream `stream`: time, duration, size and the
/// MD5 of its bytes.
fn packets(path: &Path, stream: usize) -> Vec<String> {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", &stream.to_string(), "-show_packets", "-show_data_hash", "md5"])
        .args(["-show_entries", "packet=pts,duration,size,data_hash", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()
}

#[test]
fn image_subtitles_come_through_byte_for_byte() {
    let src = image_subtitles_rip();
    let sj = mkvmerge_j(&src);
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = t.path().join("out/carry-image-subtitles.mkv");
    let oj = mkvmerge_j(&out);
    let codecs: Vec<&str> = oj["tracks"].as_array().unwrap().iter().map(|t| t["codec"].as_str().unwrap()).collect();
    assert_eq!(codecs, ["AV1", "Opus", "Opus", "HDMV PGS", "HDMV PGS", "VobSub", "VobSub"]);
    assert_eq!(track_lines(&oj), track_lines(&sj));
    for track in 3..7 {
        let (s, o) = (&sj["tracks"][track]["properties"], &oj["tracks"][track]["properties"]);
        for key in ["content_encoding_algorithms", "codec_private_data"] {
            assert_eq!(o[key], s[key], "track {track} {key}");
        }
        let before = packets(&src, track);
        assert_eq!(before.len(), if track < 5 { 4 } else { 2 }, "track {track}: {before:?}");
        assert_eq!(packets(&out, track), before, "track {track}");
    }
    // The PGS stream extracts to the very file it was made from.
    let sup = t.path().join("out.sup");
    let x = Command::new("mkvextract").arg(&out).arg("tracks").arg(format!("3:{}", sup.display())).output().unwrap();
    assert!(x.status.success());
    assert_eq!(std::fs::read(&sup).unwrap(), pgs_sup());
}

/// A letterboxed rip (320×160 picture, 40 px bars) whose PGS and VobSub
/// subtitles are drawn in the bottom bar (rows 200–220, see [`pgs_sup`]).
fn letterboxed_subtitles_rip() -> PathBuf {
    let video = fixture(
        "carry-letterbox.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x160:rate=24:duration=3,pad=320:240:0:40:black",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let sup = made_once("carry.sup", |tmp| std::fs::write(tmp, pgs_sup()).unwrap());
    let vobsub = made_once("carry-vobsub-320.mks", |tmp| {
        let o = Command::new(ffmpeg())
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(&sup)
            .args(["-c:s", "dvdsub", "-s", "320x240", "-bsf:s", "setts=duration=800", "-f", "matroska"])
            .arg(tmp)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    });
    let o = |s: &str| std::ffi::OsString::from(s);
    let args: Vec<std::ffi::OsString> =
        vec![video.into_os_string(), o("--language"), o("0:en"), sup.into_os_string(), vobsub.into_os_string()];
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    mkvmerge_fixture("carry-letterbox-subtitles-2.mkv", &refs)
}

/// The rows in which subtitle stream `stream` of `path`, shown at 1 s over
/// a black `width`×`height` picture, has bright pixels.
fn subtitle_rows(path: &Path, stream: usize, width: u32, height: u32) -> Vec<u32> {
    let o = Command::new(ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg(format!("color=black:size={width}x{height}:rate=24:duration=3"))
        .arg("-i")
        .arg(path)
        .args(["-filter_complex", &format!("[0:v][1:{stream}]overlay=eof_action=pass,format=gray,trim=start_frame=24")])
        .args(["-frames:v", "1", "-f", "rawvideo", "-"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = o.stdout.chunks(width as usize);
    rows.enumerate().filter(|(_, r)| r.iter().any(|&v| v > 128)).map(|(y, _)| y as u32).collect()
}

/// A PGS composition's canvas width and height, and its first picture's
/// position.
type Composition = (u16, u16, Option<(u16, u16)>);

/// Each PGS composition in `sup`.
fn compositions(sup: &[u8]) -> Vec<Composition> {
    let mut out = Vec::new();
    let mut at = 0;
    let u16_at = |i: usize| u16::from_be_bytes([sup[i], sup[i + 1]]);
    while at + 13 <= sup.len() {
        let (kind, size, d) = (sup[at + 10], usize::from(u16_at(at + 11)), at + 13);
        if kind == 0x16 {
            let picture = (sup[d + 10] > 0).then(|| (u16_at(d + 15), u16_at(d + 17)));
            out.push((u16_at(d), u16_at(d + 2), picture));
        }
        at = d + size;
    }
    out
}

#[test]
fn bitmap_subtitles_move_into_the_cropped_picture() {
    let src = letterboxed_subtitles_rip();
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = t.path().join("out/carry-letterbox-subtitles-2.mkv");
    let (sj, oj) = (mkvmerge_j(&src), mkvmerge_j(&out));
    assert_eq!(oj["tracks"][0]["properties"]["pixel_dimensions"], "320x160", "the bars are cropped");
    // Drawn in the bottom bar of the full frame, the subtitles were outside
    // the cropped picture (or squashed into it by players): they now sit
    // at the picture's bottom edge, on a canvas of the picture's size, at
    // the same times.
    let sup = t.path().join("out.sup");
    let x = Command::new("mkvextract").arg(&out).arg("tracks").arg(format!("1:{}", sup.display())).output().unwrap();
    assert!(x.status.success());
    let shown = compositions(&std::fs::read(&sup).unwrap());
    assert_eq!(compositions(&pgs_sup())[0], (320, 240, Some((110, 200))));
    assert_eq!(shown.len(), 4);
    assert!(shown.iter().all(|c| (c.0, c.1) == (320, 160)), "{shown:?}");
    assert_eq!(shown[0].2, Some((110, 140)));
    assert_eq!(subtitle_rows(&src, 1, 320, 240), (200..220).collect::<Vec<_>>());
    assert_eq!(subtitle_rows(&out, 1, 320, 160), (140..160).collect::<Vec<_>>());
    // The VobSub alike: its canvas in its private data, the display area
    // of each subpicture (x 110–209, y 200–219 in 12 bits each) moved to
    // y 140–159.
    let sub = |p: &Path| {
        let idx = t.path().join("vobsub.idx");
        let x = Command::new("mkvextract").arg(p).arg("tracks").arg(format!("2:{}", idx.display())).output().unwrap();
        assert!(x.status.success());
        std::fs::read(idx.with_extension("sub")).unwrap()
    };
    let areas = |d: &[u8], area: &[u8]| d.windows(7).filter(|w| w[0] == 5 && w[1..] == *area).count();
    let (bar, edge) = ([0x06, 0xe0, 0xd1, 0x0c, 0x80, 0xdb], [0x06, 0xe0, 0xd1, 0x08, 0xc0, 0x9f]);
    let (before, after) = (sub(&src), sub(&out));
    assert_eq!((areas(&before, &bar), areas(&before, &edge)), (2, 0));
    assert_eq!((areas(&after, &bar), areas(&after, &edge)), (0, 2));
    assert_eq!(before.len(), after.len());
    let private = oj["tracks"][2]["properties"]["codec_private_data"].as_str().unwrap().to_string();
    let text: Vec<u8> =
        (0..private.len()).step_by(2).map(|i| u8::from_str_radix(&private[i..i + 2], 16).unwrap()).collect();
    assert!(String::from_utf8_lossy(&text).contains("size: 320x160"), "{}", String::from_utf8_lossy(&text));
    assert_eq!(track_lines(&oj)[1..], track_lines(&sj)[1..]);
    // At the same times (a VobSub's durations are its subpictures' own, as
    // mkvmerge reads them from a .idx/.sub).
    let times =
        |p: &Path, s, n| packets(p, s).into_iter().map(move |l| l.split(',').take(n).collect::<Vec<_>>().join(","));
    for (s, n) in [(1, 2), (2, 1)] {
        assert_eq!(times(&out, s, n).collect::<Vec<_>>(), times(&src, s, n).collect::<Vec<_>>(), "stream {s}");
    }
}

/// A letterboxed rip whose audio starts 200 ms before its video, with an
/// ASS script moved into the cropped picture (its times from a file, where
/// mkvmerge takes no `--sync`: its lines came out 200 ms early against the
/// film, and the output failed validation), and a script without a line
/// (mkvmerge refused its empty timestamps file: the mux failed, every run).
#[test]
fn moved_scripts_keep_their_place_on_a_shifted_timeline_and_empty_ones_come_through() {
    let (av, ..) = media();
    let video = letterboxed_subtitles_rip();
    let header = SCRIPT_HEAD;
    let script = text_file(
        "carry-shifted.ass",
        &format!("{header}Dialogue: 0,0:00:00.50,0:00:02.00,Default,,0,0,0,,{{\\pos(160,60)}}SIGN\n"),
    );
    let empty =
        text_file("carry-empty.ass", &format!("{header}Comment: 0,0:00:00.00,0:00:01.00,Default,,0,0,0,,a note\n"));
    let shifted = made_once("carry-shifted-ass.mkv", |tmp| {
        let o = Command::new(ffmpeg())
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(&video)
            .args(["-itsoffset", "-0.2", "-i"])
            .arg(&av)
            .arg("-i")
            .arg(&script)
            .args(["-map", "0:v", "-map", "1:a:0", "-map", "2", "-c", "copy"])
            .args(["-avoid_negative_ts", "disabled", "-f", "matroska"])
            .arg(tmp)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    });
    let args: Vec<std::ffi::OsString> = vec!["--no-subtitles".into(), video.into_os_string(), empty.into_os_string()];
    let blank = mkvmerge_fixture("carry-empty-ass.mkv", &args);
    for (src, name) in [(shifted, "carry-shifted-ass.mkv"), (blank, "carry-empty-ass.mkv")] {
        let t = tempfile::tempdir().unwrap();
        let o = encode_json(t.path(), &src, &["--no-chunked"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let (sj, oj) = (mkvmerge_j(&src), mkvmerge_j(&t.path().join("out").join(name)));
        assert_eq!(oj["tracks"][0]["properties"]["pixel_dimensions"], "320x160", "the bars are cropped");
        // Every track where mkvmerge puts the source's (a timeline moved
        // 200 ms later for the one that starts before zero).
        let starts = |j: &Value| {
            let tracks = j["tracks"].as_array().unwrap();
            tracks.iter().map(|t| t["properties"]["minimum_timestamp"].as_f64().map(|ns| ns / 1e6)).collect::<Vec<_>>()
        };
        let shift = if name.contains("shifted") { 200.0 } else { 0.0 };
        let expected: Vec<Option<f64>> = starts(&sj).into_iter().map(|s| s.map(|s| s + shift)).collect();
        let got = starts(&oj);
        let near = |a: &Option<f64>, b: &Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= 1.0,
            (a, b) => a == b,
        };
        assert!(
            got.len() == expected.len() && got.iter().zip(&expected).all(|(a, b)| near(a, b)),
            "{name}: {got:?} against {expected:?}"
        );
    }
}

/// A letterboxed rip whose PGS track cannot be read through (a window
/// count one too high, which players pass over): the track is copied as
/// drawn, said so, and the rip encodes. It failed after the whole encode,
/// on every run.
#[test]
fn a_pgs_track_that_cannot_be_moved_is_copied_as_drawn() {
    let video = letterboxed_subtitles_rip();
    let mut sup = pgs_sup();
    // The first window definition says two windows and holds one.
    let wds = (0..sup.len()).find(|&i| sup[i..].starts_with(b"PG") && sup[i + 10] == 0x17).unwrap();
    sup[wds + 13] = 2;
    let sup_file = made_once("carry-bad-window.sup", |tmp| std::fs::write(tmp, &sup).unwrap());
    let args: Vec<std::ffi::OsString> =
        vec!["--no-subtitles".into(), video.into_os_string(), sup_file.into_os_string()];
    let src = mkvmerge_fixture("carry-bad-window.mkv", &args);
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let warned = events(&o).iter().any(|e| {
        e["event"] == "warning" && e["message"].as_str().unwrap().contains("is copied as drawn for the uncropped frame")
    });
    assert!(warned, "{:?}", events(&o));
    let out = t.path().join("out/carry-bad-window.mkv");
    let x = t.path().join("out.sup");
    let e = Command::new("mkvextract").arg(&out).arg("tracks").arg(format!("1:{}", x.display())).output().unwrap();
    assert!(e.status.success());
    assert_eq!(std::fs::read(&x).unwrap(), sup, "as drawn");
}

/// A letterboxed rip whose PGS line is drawn on a picture of the whole
/// frame, larger than the cropped picture: the picture is cut to its line
/// and moved into the cropped picture like any other. The whole track was
/// copied as drawn for the uncropped frame.
#[test]
fn a_full_frame_pgs_picture_is_cut_to_its_line_and_moved() {
    let video = letterboxed_subtitles_rip();
    let sup_file = made_once("carry-full-frame.sup", |tmp| std::fs::write(tmp, pgs_sup_full_frame()).unwrap());
    let args: Vec<std::ffi::OsString> =
        vec!["--no-subtitles".into(), video.into_os_string(), sup_file.into_os_string()];
    let src = mkvmerge_fixture("carry-full-frame.mkv", &args);
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let warned = events(&o).iter().any(|e| e["event"] == "warning");
    assert!(!warned, "{:?}", events(&o));
    let out = t.path().join("out/carry-full-frame.mkv");
    assert_eq!(subtitle_rows(&src, 1, 320, 240), (200..220).collect::<Vec<_>>());
    assert_eq!(subtitle_rows(&out, 1, 320, 160), (140..160).collect::<Vec<_>>());
    let x = t.path().join("out.sup");
    let e = Command::new("mkvextract").arg(&out).arg("tracks").arg(format!("1:{}", x.display())).output().unwrap();
    assert!(e.status.success());
    let shown = compositions(&std::fs::read(&x).unwrap());
    assert_eq!(shown[0], (320, 160, Some((110, 140))), "{shown:?}");
}

/// A letterboxed rip whose tracks all start 80 ms in (as ffmpeg's concat
/// and remuxes write them): the PGS moved into the cropped picture keeps
/// its times. It was made 80 ms late (the audio's move), and the output
/// failed validation after the whole encode, on every run.
#[test]
fn moved_subtitles_keep_their_times_when_every_track_starts_late() {
    let (av, ..) = media();
    let video = letterboxed_subtitles_rip();
    let sup = made_once("carry.sup", |tmp| std::fs::write(tmp, pgs_sup()).unwrap());
    let o = |s: &str| std::ffi::OsString::from(s);
    let args: Vec<std::ffi::OsString> = vec![
        o("--sync"),
        o("0:80"),
        o("--no-subtitles"),
        video.into_os_string(),
        o("--sync"),
        o("1:80"),
        o("--no-video"),
        o("--audio-tracks"),
        o("1"),
        av.into_os_string(),
        sup.into_os_string(),
    ];
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let src = mkvmerge_fixture("carry-late-start-subtitles.mkv", &refs);
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = t.path().join("out/carry-late-start-subtitles.mkv");
    assert_eq!(mkvmerge_j(&out)["tracks"][0]["properties"]["pixel_dimensions"], "320x160", "the bars are cropped");
    let times =
        |p: &Path| packets(p, 2).into_iter().map(|l| l.split(',').next().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(times(&src).len(), 4);
    assert_eq!(times(&out), times(&src));
}

/// MPEG-2 video as a US DVD has it: 3 s at 29.97 fps whose pictures carry
/// EIA-608 closed captions (ATSC A/53 user data): "HELLO CAPTIONS" loaded
/// and shown by the first pictures, erased at 2 s, padding in between.
fn captioned_mpeg2() -> PathBuf {
    captioned_mpeg2_from("carry-captions.m2v", 3, 0)
}

/// As [`captioned_mpeg2`], `seconds` long, its first `from` pictures
/// without any caption data (a studio logo authored without line 21).
fn captioned_mpeg2_from(name: &str, seconds: u32, from: usize) -> PathBuf {
    captioned_mpeg2_fields(name, seconds, from, [Some(b"HELLO CAPTIONS "), None])
}

/// As [`captioned_mpeg2_from`], with the text of each field of the
/// pictures' line 21 (CC1, CC3): padding where `None`.
fn captioned_mpeg2_fields(name: &str, seconds: u32, from: usize, texts: [Option<&[u8]>; 2]) -> PathBuf {
    made_once(name, |tmp| {
        let plain = scratch_path("carry-captions-plain", "m2v");
        let o = Command::new(ffmpeg())
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size=720x480:rate=30000/1001:duration={seconds}"))
            .args(["-c:v", "mpeg2video", "-b:v", "4M", "-g", "15", "-bf", "0", "-f", "mpeg2video"])
            .arg(&plain)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let data = std::fs::read(&plain).unwrap();
        std::fs::remove_file(&plain).unwrap();
        let parity = |c: u8| if (c & 0x7f).count_ones().is_multiple_of(2) { c | 0x80 } else { c & 0x7f };
        // Erase, load, the text two characters a picture, show; erase at 2 s.
        // (Field 2's control codes are channel 1's: 0x15 for 0x14.)
        let pairs = |text: &[u8], control: u8| {
            let mut pairs = vec![(control, 0x2c), (control, 0x20)];
            pairs.extend(text.chunks(2).map(|c| (c[0], *c.get(1).unwrap_or(&0))));
            pairs.push((control, 0x2f));
            pairs
        };
        let fields = [texts[0].map(|t| pairs(t, 0x14)), texts[1].map(|t| pairs(t, 0x15))];
        let find =
            |from: usize, code: u8| (from..data.len().saturating_sub(3)).find(|&i| data[i..i + 4] == [0, 0, 1, code]);
        let (mut out, mut at, mut picture) = (Vec::new(), 0, 0usize);
        while let Some(header) = find(at, 0x00) {
            let slice = find(header, 0x01).unwrap();
            out.extend(&data[at..slice]);
            picture += 1;
            let Some(n) = (picture - 1).checked_sub(from) else {
                at = slice;
                continue;
            };
            let pair = |field: usize, control: u8| match &fields[field] {
                Some(p) if n < p.len() => (parity(p[n].0), parity(p[n].1)),
                Some(_) if n == 60 || n == 61 => (parity(control), parity(0x2c)),
                _ => (0x80, 0x80),
            };
            let ((a, b), (c, d)) = (pair(0, 0x14), pair(1, 0x15));
            out.extend([0, 0, 1, 0xb2]);
            out.extend(b"GA94");
            out.extend([0x03, 0x42, 0xff, 0xfc, a, b, 0xfd, c, d, 0xff]);
            at = slice;
        }
        out.extend(&data[at..]);
        std::fs::write(tmp, out).unwrap();
    })
}

/// The closed captions ffmpeg reads from the pictures of `path`'s video,
/// or from its subtitle track `track` (SubRip cues: start, end, text).
fn caption_cues(path: &Path, track: Option<usize>) -> Vec<(String, String, String)> {
    let mut c = Command::new(ffmpeg());
    c.args(["-hide_banner", "-loglevel", "error", "-copyts"]);
    match track {
        None => c
            .args(["-f", "lavfi", "-i"])
            .arg(format!("movie=filename={}[out0+subcc]", path.display()))
            .args(["-map", "0:1"]),
        Some(t) => c.arg("-i").arg(path).args(["-map", &format!("0:{t}")]),
    };
    let o = c.args(["-c:s", "srt", "-f", "srt", "-"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.split("\n\n")
        .filter_map(|cue| {
            let mut lines = cue.lines().skip(1);
            let (start, end) = lines.next()?.split_once(" --> ")?;
            Some((start.into(), end.into(), lines.collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

#[test]
fn closed_captions_in_the_video_come_out_as_a_subtitle_track() {
    // A DVD rip whose only English text is its line-21 captions, in the
    // MPEG-2 pictures; its video starts 1.5 s in. The AV1 encode dropped
    // them without a word.
    let video = captioned_mpeg2();
    let (av, ..) = media();
    let o = |s: &str| std::ffi::OsString::from(s);
    let args: Vec<std::ffi::OsString> = vec![
        o("--default-duration"),
        o("0:30000/1001p"),
        o("--language"),
        o("0:en"),
        o("--sync"),
        o("0:1500"),
        video.into_os_string(),
        o("--no-video"),
        o("--audio-tracks"),
        o("1"),
        av.into_os_string(),
    ];
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let src = mkvmerge_fixture("carry-captions.mkv", &refs);
    let before = caption_cues(&src, None);
    assert!(before.iter().any(|c| c.2.contains("HELLO CAPTIONS")), "{before:?}");
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = t.path().join("out/carry-captions.mkv");
    let oj = mkvmerge_j(&out);
    let captions = &oj["tracks"][2];
    assert_eq!(captions["codec"], "SubRip/SRT");
    let p = &captions["properties"];
    assert_eq!(
        (&p["track_name"], &p["flag_hearing_impaired"], &p["language"]),
        (&"Closed Captions".into(), &true.into(), &"eng".into())
    );
    assert_eq!(caption_cues(&out, Some(2)), before, "the same captions at the same times");
}

/// Captions that start after the first pictures (a logo without line 21
/// data before the feature) are found all the same. Only the first 60
/// pictures were looked at: they were dropped without a word.
#[test]
fn closed_captions_that_start_after_a_logo_are_kept() {
    let video = captioned_mpeg2_from("carry-captions-late.m2v", 6, 90);
    let args = ["--default-duration", "0:30000/1001p", "--language", "0:en"];
    let mut refs: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    refs.push(video.as_os_str());
    let src = mkvmerge_fixture("carry-captions-late.mkv", &refs);
    let before = caption_cues(&src, None);
    assert!(before.iter().any(|c| c.2.contains("HELLO CAPTIONS")), "{before:?}");
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = t.path().join("out/carry-captions-late.mkv");
    let oj = mkvmerge_j(&out);
    assert_eq!(oj["tracks"][1]["codec"], "SubRip/SRT", "{oj}");
    assert_eq!(caption_cues(&out, Some(1)), before, "the same captions at the same times");
}

/// A rip whose audio starts 300 ms before its video, written by ffmpeg
/// told not to avoid negative timestamps, with subtitles and chapters.
/// mkvmerge reads such a file 300 ms later throughout (nothing in Matroska
/// starts before zero), chapters too; drapto's output must be what
/// mkvmerge makes of it, with the re-encoded tracks in step.
/// An ASS script drawn for the letterboxed frame (its canvas the frame's,
/// a sign placed over the picture's top): after the crop, its canvas is
/// the picture's and the sign sits where it did over the picture. Before,
/// players stretched the frame's canvas over the cropped picture: the text
/// came out two thirds its size and the sign 13 rows off what it labels.
#[test]
fn an_ass_script_moves_into_the_cropped_picture() {
    let video = letterboxed_subtitles_rip();
    let script = text_file("carry-letterbox.ass", &format!("{SCRIPT_HEAD}{SIGN_LINES}"));
    let args: Vec<std::ffi::OsString> =
        vec!["--no-subtitles".into(), video.into_os_string(), "--language".into(), "0:en".into(), script.into()];
    let src = mkvmerge_fixture("carry-letterbox-ass.mkv", &args);
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = t.path().join("out/carry-letterbox-ass.mkv");
    let oj = mkvmerge_j(&out);
    assert_eq!(oj["tracks"][0]["properties"]["pixel_dimensions"], "320x160", "the bars are cropped");
    let ass = t.path().join("out.ass");
    let x = Command::new("mkvextract").arg(&out).arg("tracks").arg(format!("1:{}", ass.display())).output().unwrap();
    assert!(x.status.success());
    let text = std::fs::read_to_string(&ass).unwrap();
    assert!(text.contains("PlayResY: 160") && text.contains("PlayResX: 320"), "{text}");
    assert!(text.contains("{\\pos(160,20)}SIGN"), "{text}");
    assert!(text.contains(",,Spoken line"), "{text}");
    assert_eq!(track_lines(&oj)[1..], track_lines(&mkvmerge_j(&src))[1..]);
    let times = |p: &Path| packets(p, 1).into_iter().map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","));
    assert_eq!(times(&out).collect::<Vec<_>>(), times(&src).collect::<Vec<_>>(), "the same events at the same times");
}

/// A letterboxed rip without audio whose tracks all start 87 ms in: its
/// ASS script moved into the cropped picture keeps its milliseconds (a
/// script holds hundredths: every line came out 7 ms early, and the output
/// failed validation after the whole encode), and a subtitle track clamped
/// to the film's end, whose first line comes too late for mkvmerge to tell
/// its start, keeps its times (it took the moved script's move, none, and
/// came out 87 ms early).
#[test]
fn moved_and_clamped_subtitles_keep_their_milliseconds() {
    let video = fixture(
        "carry-letterbox-12s.mkv",
        &["-f", "lavfi", "-i", "testsrc2=size=320x160:rate=24:duration=12,pad=320:240:0:40:black"],
    );
    let script = text_file("carry-late.ass", &format!("{SCRIPT_HEAD}{SIGN_LINES}"));
    let srt = text_file(
        "carry-late-endless.srt",
        "1\n00:00:10,000 --> 00:00:11,000\nLate\n\n2\n00:00:11,500 --> 01:00:00,000\nEndless\n\n",
    );
    let args: Vec<std::ffi::OsString> = ["--sync", "0:87"]
        .into_iter()
        .map(Into::into)
        .chain([video.into_os_string()])
        .chain(["--sync".into(), "0:87".into(), script.into_os_string()])
        .chain(["--sync".into(), "0:87".into(), srt.into_os_string()])
        .collect();
    let src = mkvmerge_fixture("carry-late-ms.mkv", &args);
    assert!(mkvmerge_j(&src)["tracks"][2]["properties"]["minimum_timestamp"].is_null(), "a start mkvmerge cannot tell");
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = t.path().join("out/carry-late-ms.mkv");
    assert_eq!(mkvmerge_j(&out)["tracks"][0]["properties"]["pixel_dimensions"], "320x160", "the bars are cropped");
    let times =
        |p: &Path, s| packets(p, s).into_iter().map(|l| l.split(',').next().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(times(&src, 1), ["587", "1087"]);
    assert_eq!(times(&out, 1), times(&src, 1), "the script's lines");
    assert_eq!(times(&out, 2), times(&src, 2), "the clamped track's lines");
}

/// A rip with captions on both fields of line 21 (English on CC1, a
/// second language on CC3, as US broadcasts carry them): a track for each.
/// CC3 was lost without a word.
#[test]
fn closed_captions_on_both_fields_come_out_as_two_tracks() {
    let video = captioned_mpeg2_fields("carry-captions-cc3.m2v", 3, 0, [Some(b"ENGLISH "), Some(b"ESPANOL ")]);
    let args = ["--default-duration", "0:30000/1001p", "--language", "0:en"];
    let mut refs: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    refs.push(video.as_os_str());
    let src = mkvmerge_fixture("carry-captions-cc3.mkv", &refs);
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = t.path().join("out/carry-captions-cc3.mkv");
    let oj = mkvmerge_j(&out);
    let names: Vec<&Value> = oj["tracks"].as_array().unwrap().iter().map(|t| &t["properties"]["track_name"]).collect();
    assert_eq!(names[1..], [&Value::from("Closed Captions"), &Value::from("Closed Captions (CC3)")]);
    let text = |track| caption_cues(&out, Some(track)).into_iter().map(|c| c.2).collect::<Vec<_>>().join(" ");
    assert!(text(1).contains("ENGLISH") && !text(1).contains("ESPANOL"), "{}", text(1));
    assert!(text(2).contains("ESPANOL"), "{}", text(2));
    // Rerun with other settings: the output is checked against the rip,
    // by the captions its mux found, and kept (it was found invalid and
    // encoded again).
    let o = run(drapto(t.path())
        .args(["encode", "--json", "--preset", "11", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("out")));
    assert!(o.status.success(), "{}", stderr(&o));
    let skipped = events(&o).into_iter().find(|e| e["event"] == "file_skipped");
    assert!(
        skipped.is_some_and(|s| s["reason"].as_str().unwrap().starts_with("valid output already exists")),
        "{}",
        stdout(&o)
    );
}

/// A DVD whose pictures carry line-21 data of padding alone: no captions
/// track (an empty one, flagged for the hearing impaired, was added).
#[test]
fn caption_padding_alone_makes_no_captions_track() {
    let video = captioned_mpeg2_fields("carry-captions-padding.m2v", 2, 0, [None, None]);
    let args = ["--default-duration", "0:30000/1001p", "--language", "0:en"];
    let mut refs: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    refs.push(video.as_os_str());
    let src = mkvmerge_fixture("carry-captions-padding.mkv", &refs);
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let analysed = events(&o).into_iter().find(|e| e["event"] == "analysis_complete").unwrap();
    let planned = analysed["analysis"]["mux"]["tracks"].as_array().unwrap().len();
    assert_eq!(planned, 2, "the analysis found caption data: {analysed}");
    let said =
        events(&o).into_iter().any(|e| e["event"] == "warning" && e["message"].to_string().contains("holds no text"));
    assert!(said, "the track the analysis planned is said to be gone: {}", stdout(&o));
    let oj = mkvmerge_j(&t.path().join("out/carry-captions-padding.mkv"));
    assert_eq!(oj["tracks"].as_array().unwrap().len(), 1, "{oj}");
}

fn negative_start_rip() -> PathBuf {
    let (av, _, _, srt, _) = media();
    let chapters = text_file("carry-negative-chapters.xml", CHAPTERS);
    made_once("carry-negative.mkv", |tmp| {
        let o = Command::new(ffmpeg())
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(&av)
            .args(["-itsoffset", "-0.3", "-i"])
            .arg(&av)
            .arg("-i")
            .arg(&srt)
            .args(["-map", "0:v", "-map", "1:a:0", "-map", "2", "-c:v", "copy", "-c:a", "copy", "-c:s", "srt"])
            .args(["-avoid_negative_ts", "disabled", "-f", "matroska"])
            .arg(tmp)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = Command::new("mkvpropedit").arg(tmp).arg("--chapters").arg(&chapters).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    })
}

#[test]
fn a_rip_with_negative_timestamps_comes_out_as_mkvmerge_reads_it() {
    let src = negative_start_rip();
    let starts = |j: &Value| -> Vec<f64> { (0..3).map(|t| start_ms(j, t)).collect() };
    let sj = mkvmerge_j(&src);
    let before = starts(&sj);
    assert!((before[1] - (before[0] - 300.0)).abs() < 1.0, "the fixture's audio starts first: {before:?}");
    // What mkvmerge itself makes of it.
    let t = tempfile::tempdir().unwrap();
    let remux = t.path().join("remux.mkv");
    let o = Command::new("mkvmerge").arg("-q").arg("-o").arg(&remux).arg(&src).output().unwrap();
    assert!(o.status.code().unwrap_or(2) <= 1);
    let expected = starts(&mkvmerge_j(&remux));
    for args in paths() {
        let t = tempfile::tempdir().unwrap();
        let o = encode_json(t.path(), &src, &args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let out = t.path().join("out/carry-negative.mkv");
        let got = starts(&mkvmerge_j(&out));
        for (track, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!((g - e).abs() <= 10.0, "{args:?}: track {track} starts at {g} ms, mkvmerge's remux at {e}");
        }
        // mkvmerge's remux gives the chapters new UIDs; drapto keeps them.
        let lines = |p: &Path, what: &str| -> Vec<String> {
            extract(p, "chapters").lines().filter(|l| l.contains(what)).map(str::to_string).collect()
        };
        assert_eq!(
            lines(&out, "<ChapterTime"),
            lines(&remux, "<ChapterTime"),
            "{args:?}: chapters moved with the rest"
        );
        assert_eq!(lines(&out, "UID>"), lines(&src, "UID>"), "{args:?}");
    }
}

/// An ordered edition in a rip whose timeline mkvmerge moves (its audio
/// starts before zero): the chapter that plays another file (an opening
/// kept in `NCOP.mkv`) keeps that file's times; this file's chapter moves
/// with it. Both moved: the player skipped the opening's first 0.3 s.
#[test]
fn an_ordered_chapter_playing_another_file_keeps_that_files_times() {
    let chapters = text_file(
        "carry-ordered-chapters.xml",
        "<?xml version=\"1.0\"?>\n<Chapters><EditionEntry><EditionFlagOrdered>1</EditionFlagOrdered>\
         <ChapterAtom><ChapterUID>81</ChapterUID><ChapterTimeStart>00:00:00.000000000</ChapterTimeStart>\
         <ChapterTimeEnd>00:00:01.000000000</ChapterTimeEnd>\
         <ChapterSegmentUID format=\"hex\">aabbccddeeff00112233445566778899</ChapterSegmentUID>\
         <ChapterDisplay><ChapterString>Opening (NCOP.mkv)</ChapterString></ChapterDisplay></ChapterAtom>\
         <ChapterAtom><ChapterUID>82</ChapterUID><ChapterTimeStart>00:00:00.000000000</ChapterTimeStart>\
         <ChapterTimeEnd>00:00:01.500000000</ChapterTimeEnd>\
         <ChapterDisplay><ChapterString>Episode</ChapterString></ChapterDisplay></ChapterAtom>\
         </EditionEntry></Chapters>\n",
    );
    let base = negative_start_rip();
    let src = made_once("carry-ordered.mkv", |tmp| {
        std::fs::copy(&base, tmp).unwrap();
        let o = Command::new("mkvpropedit").arg(tmp).arg("--chapters").arg(&chapters).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    });
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let times = |p: &Path| -> Vec<String> {
        extract(p, "chapters").lines().filter(|l| l.contains("<ChapterTime")).map(|l| l.trim().to_string()).collect()
    };
    let said = events(&o).into_iter().any(|e| {
        e["event"] == "warning"
            && e["message"].to_string().contains("plays with 1 other file(s)")
            && e["message"].to_string().contains("aabbccddeeff00112233445566778899")
    });
    assert!(said, "the file it plays with is said: {}", stdout(&o));
    let out = times(&t.path().join("out/carry-ordered.mkv"));
    assert_eq!(out[..2], times(&src)[..2], "the other file's times");
    assert_eq!(
        out[2..],
        [
            "<ChapterTimeStart>00:00:00.300000000</ChapterTimeStart>",
            "<ChapterTimeEnd>00:00:01.800000000</ChapterTimeEnd>"
        ],
        "this file's chapter moves with its timeline"
    );
}

/// A rip whose track names have spaces at their ends (mkvmerge's
/// `--track-name` trims them; mkvpropedit writes what it is given).
fn spaced_names_rip() -> PathBuf {
    made_once("carry-spaced-names.mkv", |tmp| {
        let clip = simple_clip("carry-spaced-src.mkv", "160x120", 1);
        let o = Command::new("mkvmerge").arg("-q").arg("-o").arg(tmp).arg(&clip).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        let o = Command::new("mkvpropedit")
            .arg(tmp)
            .args(["--edit", "track:1", "--set", "name= Film "])
            .args(["--edit", "track:2", "--set", "name=  Stereo\t"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    })
}

#[test]
fn track_names_with_spaces_at_their_ends_come_through_as_they_are() {
    let src = spaced_names_rip();
    let names = |j: &Value| -> Vec<Value> {
        j["tracks"].as_array().unwrap().iter().map(|t| t["properties"]["track_name"].clone()).collect()
    };
    assert_eq!(names(&mkvmerge_j(&src)), [" Film ", "  Stereo\t"]);
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(names(&mkvmerge_j(&t.path().join("out/carry-spaced-names.mkv"))), names(&mkvmerge_j(&src)));
}

#[test]
fn a_carriage_return_in_a_tag_comes_through() {
    let clip = simple_clip("carry-cr-src.mkv", "160x120", 1);
    let src = made_once("carry-cr.mkv", |tmp| {
        let o = Command::new(ffmpeg())
            .args(["-v", "error", "-i"])
            .arg(&clip)
            .args(["-c", "copy", "-metadata:s:a:0", "NOTE=first\rsecond", "-f", "matroska"])
            .arg(tmp)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    });
    assert!(extract(&src, "tags").contains("first\rsecond"), "the fixture holds a carriage return");
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let tags = extract(&t.path().join("out/carry-cr.mkv"), "tags");
    assert!(tags.contains("first\rsecond"), "{tags:?}");
}

/// Subtitle tracks with what mkvmerge does not copy (a default duration)
/// or ffmpeg does not keep when it clamps a track running past the film
/// (a codec name): a copied SRT with both, and an SRT whose last line ends
/// at 5 minutes, with a codec name.
fn subtitle_headers_rip() -> PathBuf {
    let (av, _, _, srt, _) = media();
    let late = text_file(
        "carry-late.srt",
        "1\n00:00:00,500 --> 00:00:01,500\nEarly.\n\n2\n00:00:02,000 --> 00:05:00,000\nLate.\n",
    );
    let base =
        mkvmerge_fixture("carry-subtitle-headers-base.mkv", &[av.as_os_str(), srt.as_os_str(), late.as_os_str()]);
    made_once("carry-subtitle-headers.mkv", |tmp| {
        std::fs::copy(&base, tmp).unwrap();
        let o = Command::new("mkvpropedit")
            .arg(tmp)
            .args(["--edit", "track:s1", "--set", "default-duration=40000000", "--set", "codec-name=SubRip"])
            .args(["--edit", "track:s2", "--set", "codec-name=SubRip (late)"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    })
}

#[test]
fn subtitle_headers_mkvmerge_or_ffmpeg_would_drop_come_through() {
    let src = subtitle_headers_rip();
    let sj = mkvmerge_j(&src);
    let prop = |j: &Value, track: usize, key: &str| j["tracks"][track]["properties"][key].clone();
    assert_eq!(prop(&sj, 3, "default_duration"), 40000000, "the fixture's copied subtitles have a default duration");
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stdout(&o));
    let oj = mkvmerge_j(&t.path().join("out/carry-subtitle-headers.mkv"));
    for (track, key) in [(3, "default_duration"), (3, "codec_name"), (4, "codec_name")] {
        assert_eq!(prop(&oj, track, key), prop(&sj, track, key), "track {track} {key}");
    }
}

/// A tag for every track (`TrackUID` 0, as the Matroska specification has
/// it), which mkvmerge drops: it comes out on each track.
#[test]
fn a_tag_for_every_track_comes_out_on_each() {
    let (av, _, _, srt, _) = media();
    let tags = text_file(
        "carry-all-tracks-tags.xml",
        "<?xml version=\"1.0\"?>\n<Tags><Tag><Targets><TargetTypeValue>50</TargetTypeValue><TrackUID>0</TrackUID></Targets>\
         <Simple><Name>COMMENT</Name><String>Restored from the 35 mm print</String></Simple></Tag></Tags>\n",
    );
    let o = |s: &std::path::Path| s.as_os_str().to_owned();
    let args = vec![o(&av), o(&srt)];
    let base = mkvmerge_fixture("carry-all-tracks-base.mkv", &args);
    let src = made_once("carry-all-tracks.mkv", |tmp| {
        std::fs::copy(&base, tmp).unwrap();
        let m =
            Command::new("mkvpropedit").arg(tmp).arg("--tags").arg(format!("all:{}", tags.display())).output().unwrap();
        assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    });
    assert!(extract(&src, "tags").contains("<TrackUID>0</TrackUID>"), "the fixture's tag is for every track");
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stdout(&o));
    let out = t.path().join("out/carry-all-tracks.mkv");
    let oj = mkvmerge_j(&out);
    let lines = tag_lines(&out, &oj);
    for track in 1..=4 {
        let line = format!("track {track} COMMENT=Restored from the 35 mm print");
        assert!(lines.iter().any(|l| l.starts_with(&line)), "{line}: {lines:?}");
    }
}

/// An earlier encode encoded again (a smaller copy of a finished film):
/// its output holds one record, of its own rip, and a rerun skips it. The
/// old record was carried as a global tag beside the new one, read instead
/// of it, and every rerun refused the rip as "drapto's encode of another rip".
#[test]
fn a_drapto_output_encoded_again_holds_one_record_and_a_rerun_skips_it() {
    let src = simple_clip("carry-again.mkv", "320x240", 2);
    let first = tempfile::tempdir().unwrap();
    assert!(encode_json(first.path(), &src, &["--no-chunked"]).status.success());
    let again = tempfile::tempdir().unwrap();
    let rip = again.path().join("film.mkv");
    std::fs::copy(first.path().join("out/carry-again.mkv"), &rip).unwrap();
    for run in ["first", "rerun"] {
        let o = encode_json(again.path(), &rip, &["--no-chunked"]);
        assert!(o.status.success(), "{run}: {}", stderr(&o));
        let ev = events(&o);
        let skipped = ev.iter().any(|e| e["event"] == "file_skipped");
        assert_eq!(skipped, run == "rerun", "{run}: {ev:?}");
    }
    let tags = extract(&again.path().join("out/film.mkv"), "tags");
    let records: Vec<&str> = tags.split("<Name>DRAPTO_SOURCE</Name>").skip(1).collect();
    assert_eq!(records.len(), 1, "{tags}");
    assert!(records[0].contains(&*rip.to_string_lossy()), "{tags}");
}

/// A linked part's segment info beyond its UIDs: its family, its chapter
/// translation and the linked files' names come through (they were lost
/// without a word: `mkvmerge -J` does not show them).
#[test]
fn a_segments_family_translations_and_linked_file_names_come_through() {
    let info = text_file(
        "carry-segment-info.xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Info>\
         <SegmentUID format=\"hex\">00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff</SegmentUID>\
         <PreviousSegmentUID format=\"hex\">11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11</PreviousSegmentUID>\
         <SegmentFamily format=\"hex\">fa fa fa fa fa fa fa fa fa fa fa fa fa fa fa fa</SegmentFamily>\
         <SegmentFilename>part2.mkv</SegmentFilename><PreviousSegmentFilename>part1.mkv</PreviousSegmentFilename>\
         <ChapterTranslate><ChapterTranslateEditionUID>1001</ChapterTranslateEditionUID>\
         <ChapterTranslateCodec>1</ChapterTranslateCodec><ChapterTranslateID format=\"hex\">01 02</ChapterTranslateID>\
         </ChapterTranslate></Info>\n",
    );
    let clip = simple_clip("carry-segment-info.mkv", "320x240", 2);
    let args: Vec<std::ffi::OsString> = vec!["--segmentinfo".into(), info.into(), clip.into()];
    let src = mkvmerge_fixture("carry-segment-info.mkv", &args);
    let segment_info = |p: &Path| -> Vec<String> {
        let o = Command::new("mkvinfo").args(["--ui-language", "en_US"]).arg(p).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let keys = ["Segment UID", "Family UID", "Chapter translate", "Previous segment UID", "filename"];
        text.lines().filter(|l| keys.iter().any(|k| l.contains(k))).map(|l| l.trim().to_string()).collect()
    };
    let before = segment_info(&src);
    assert_eq!(before.len(), 9, "the fixture's segment info: {before:?}");
    // (One mux for both paths.)
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(segment_info(&t.path().join("out/carry-segment-info.mkv")), before);
}

/// A part linked to the parts before and after it, its Info holding
/// nothing else: its segment UID and both links come through.
#[test]
fn a_linked_parts_uid_and_links_come_through() {
    let clip = simple_clip("carry-linked.mkv", "320x240", 2);
    let uid = |b: &str| format!("0x{}", b.repeat(16));
    let args: Vec<std::ffi::OsString> = vec![
        "--segment-uid".into(),
        uid("ab").into(),
        "--link-to-previous".into(),
        uid("01").into(),
        "--link-to-next".into(),
        uid("02").into(),
        clip.into(),
    ];
    let src = mkvmerge_fixture("carry-linked.mkv", &args);
    let ids = |j: &Value| {
        let p = &j["container"]["properties"];
        ["segment_uid", "previous_segment_uid", "next_segment_uid"].map(|k| p[k].as_str().unwrap_or("").to_string())
    };
    assert_eq!(ids(&mkvmerge_j(&src)), ["ab".repeat(16), "01".repeat(16), "02".repeat(16)]);
    let t = tempfile::tempdir().unwrap();
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ids(&mkvmerge_j(&t.path().join("out/carry-linked.mkv"))), ids(&mkvmerge_j(&src)));
}
