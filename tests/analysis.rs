//! Analysis on generated clips (letterbox, pillarbox, credits, IMAX, dark
//! scenes, HDR10, HLG, interlaced DVD, progressive) and the Dolby Vision
//! samples, and what `encode` does with each.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn analyze(src: &Path) -> Value {
    let t = tempfile::tempdir().unwrap();
    let o = run(drapto(t.path()).args(["analyze", "--json"]).arg(src));
    assert!(o.status.success());
    serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap()
}

fn encode(src: &Path, t: &Path) -> PathBuf {
    let out_dir = t.join("out");
    let o = run(drapto(t).arg("encode").arg("-i").arg(src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    out_dir.join(src.file_name().unwrap())
}

fn crop_of(a: &Value) -> Option<(u64, u64, u64, u64)> {
    let c = &a["analysis"]["crop"]["crop"];
    (!c.is_null()).then(|| {
        (
            c["width"].as_u64().unwrap(),
            c["height"].as_u64().unwrap(),
            c["x"].as_u64().unwrap(),
            c["y"].as_u64().unwrap(),
        )
    })
}

fn video(p: &Value) -> &Value {
    streams(p, "video")[0]
}

const X264: [&str; 6] = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "16"];

fn clip(name: &str, filter: &str) -> PathBuf {
    let mut args = vec!["-f", "lavfi", "-i", filter];
    args.extend(X264);
    fixture(name, &args)
}

#[test]
fn letterboxed_239_in_1080p_is_cropped() {
    let src = clip("letterbox.mkv", "testsrc2=size=1920x804:rate=5:duration=12,pad=1920:1080:0:138:black");
    let a = analyze(&src);
    let (w, h, x, y) = crop_of(&a).expect("a crop");
    assert_eq!((w, x), (1920, 0));
    assert!((800..=808).contains(&h) && (136..=140).contains(&y), "{h} at {y}");
    assert_eq!(a["plan"]["video"]["filters"][0], format!("crop={w}:{h}:{x}:{y}"));

    let t = tempfile::tempdir().unwrap();
    let p = ffprobe(&encode(&src, t.path()));
    assert_eq!((video(&p)["width"].as_u64(), video(&p)["height"].as_u64()), (Some(w), Some(h)));
}

#[test]
fn a_picture_the_container_crops_is_measured_as_decoded() {
    // 138 px bars, 40 of each cropped by the container (Matroska PixelCrop),
    // which ffmpeg applies and ffprobe does not report: bars were measured
    // on the uncropped size, and a crop planned on it was clamped to nothing.
    let src = clip("letterbox-small.mkv", "testsrc2=size=640x268:rate=5:duration=12,pad=640:360:0:46:black");
    let crop = ["--cropping".as_ref(), "0:0,20,0,20".as_ref(), src.as_os_str()];
    let cropped = mkvmerge_fixture::<&std::ffi::OsStr>("letterbox-pixelcrop.mkv", &crop);
    let a = analyze(&cropped);
    assert_eq!(
        (a["analysis"]["video"]["width"].as_u64(), a["analysis"]["video"]["height"].as_u64()),
        (Some(640), Some(320))
    );
    // Its display size (16:9) is the cropped picture's: 640x320 shown 16:9.
    assert_eq!(a["analysis"]["video"]["sample_aspect_ratio"], "8:9");
    let (w, h, x, y) = crop_of(&a).expect("a crop");
    assert_eq!((w, x), (640, 0));
    assert!((264..=272).contains(&h) && (24..=28).contains(&y), "{h} at {y}");
    let t = tempfile::tempdir().unwrap();
    let p = ffprobe(&encode(&cropped, t.path()));
    assert_eq!((video(&p)["width"].as_u64(), video(&p)["height"].as_u64()), (Some(w), Some(h)));
}

#[test]
fn pillarboxed_4_3_in_1080p_is_cropped() {
    let src = clip("pillarbox.mkv", "testsrc2=size=1440x1080:rate=5:duration=12,pad=1920:1080:240:0:black");
    let (w, h, x, y) = crop_of(&analyze(&src)).expect("a crop");
    assert!((1436..=1444).contains(&w) && (238..=242).contains(&x), "{w} at {x}");
    assert_eq!((h, y), (1080, 0));
}

#[test]
fn full_frame_content_is_not_cropped() {
    let src = clip("fullframe.mkv", "testsrc2=size=1280x720:rate=5:duration=10");
    let a = analyze(&src);
    assert_eq!(crop_of(&a), None);
    assert!(a["analysis"]["crop"]["reason"].as_str().unwrap().contains("no black bars"));
}

#[test]
fn end_credits_are_skipped() {
    // 5 min 30 s of letterboxed film, then 30 s of credits: white text
    // spanning the full height on black. Sampling the credits would make the
    // least aggressive crop the full frame; they must be left out.
    let src = fixture(
        "credits.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x268:rate=1:duration=300,pad=640:360:0:46:black",
            "-f",
            "lavfi",
            "-i",
            "color=black:size=640x360:rate=1:duration=30,drawbox=x=300:y=0:w=40:h=360:color=white:t=fill",
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1[v]",
            "-map",
            "[v]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "1",
        ],
    );
    let a = analyze(&src);
    let times: Vec<f64> =
        a["analysis"]["crop"]["sample_times"].as_array().unwrap().iter().map(|t| t.as_f64().unwrap()).collect();
    assert!(times.iter().all(|t| *t < 300.0), "{times:?}");
    let (w, h, _, y) = crop_of(&a).expect("letterbox crop");
    assert_eq!(w, 640);
    assert!((266..=270).contains(&h) && (44..=48).contains(&y), "{h} at {y}");

    // Full-frame content with black credits and text: no crop.
    let src = fixture(
        "credits_fullframe.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=1:duration=300",
            "-f",
            "lavfi",
            "-i",
            "color=black:size=640x360:rate=1:duration=30,drawbox=x=280:y=150:w=80:h=40:color=white:t=fill",
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1[v]",
            "-map",
            "[v]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "1",
        ],
    );
    assert_eq!(crop_of(&analyze(&src)), None);
}

#[test]
fn changing_aspect_ratio_takes_the_least_aggressive_crop() {
    // 2.39:1 scenes with a 1.90:1 "IMAX" section between them.
    let src = fixture(
        "imax.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1920x804:rate=5:duration=8,pad=1920:1080:0:138:black",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1920x1010:rate=5:duration=8,pad=1920:1080:0:34:black",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1920x804:rate=5:duration=8,pad=1920:1080:0:138:black",
            "-filter_complex",
            "[0:v][1:v][2:v]concat=n=3:v=1[v]",
            "-map",
            "[v]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "16",
        ],
    );
    let a = analyze(&src);
    let (w, h, _, y) = crop_of(&a).expect("a crop");
    assert_eq!(w, 1920);
    assert!((1008..=1014).contains(&h) && (32..=36).contains(&y), "{h} at {y}: must keep the IMAX section whole");
    assert!(a["analysis"]["crop"]["votes"].as_array().unwrap().len() >= 2);
}

#[test]
fn dark_scenes_do_not_make_a_bogus_crop() {
    // Letterboxed film whose middle is a near-black night scene.
    let src = fixture(
        "dark.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x536:rate=5:duration=6,pad=1280:720:0:92:black",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x536:rate=5:duration=8,lutyuv=y=16+(val-16)/40:u=128:v=128,pad=1280:720:0:92:black",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x536:rate=5:duration=6,pad=1280:720:0:92:black",
            "-filter_complex",
            "[0:v][1:v][2:v]concat=n=3:v=1[v]",
            "-map",
            "[v]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "16",
        ],
    );
    let a = analyze(&src);
    let (w, h, _, y) = crop_of(&a).expect("letterbox crop");
    assert_eq!(w, 1280);
    assert!((534..=540).contains(&h) && (90..=94).contains(&y), "{h} at {y}");
}

fn hdr10_uhd() -> PathBuf {
    hdr10_clip(
        "hdr10_uhd.mkv",
        "testsrc2=size=3840x1600:rate=5:duration=2,format=yuv420p10le,pad=3840:2160:0:280:black",
        "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50):max-cll=1000,400",
    )
}

/// A small HDR10 clip whose static metadata is as x265's `params` set it.
fn hdr10_small(name: &str, params: &str) -> PathBuf {
    hdr10_clip(name, "testsrc2=size=320x180:rate=10:duration=2,format=yuv420p10le", params)
}

/// An HDR10 clip of the lavfi `source`, its static metadata as x265's
/// `params` set it.
fn hdr10_clip(name: &str, source: &str, params: &str) -> PathBuf {
    let x265 = format!(
        "log-level=error:hdr10=1:repeat-headers=1:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:{params}"
    );
    let mut args = vec!["-f", "lavfi", "-i", source, "-c:v", "libx265", "-preset", "ultrafast"];
    args.extend(["-pix_fmt", "yuv420p10le", "-x265-params", &x265]);
    args.extend(["-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc"]);
    args.extend(["-color_range", "tv"]);
    fixture(name, &args)
}

#[test]
fn hdr10_with_a_zero_content_light_or_no_primaries_is_encoded_and_kept() {
    // Many UHD discs give MaxFALL 0 (or both 0, "not known"); some masters
    // only the luminance. ffprobe shows neither from the output's
    // container, and such a rip's right encode failed on every run.
    let unknown = hdr10_small(
        "hdr10_cll_00.mkv",
        "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50):max-cll=0,0",
    );
    let a = analyze(&unknown);
    assert!(a["analysis"]["hdr"]["content_light"].is_null(), "0,0 is no content light: {}", a["analysis"]["hdr"]);
    // The container says 1000 and 0 where the pictures say nothing
    // (ffprobe shows neither): read from the container, and carried.
    let in_container = mkvmerge_fixture(
        "hdr10_cll_in_container.mkv",
        &["--max-content-light", "0:1000", "--max-frame-light", "0:0", unknown.to_str().unwrap()],
    );
    let a = analyze(&in_container);
    assert_eq!(a["analysis"]["hdr"]["content_light"]["max_cll"], 1000, "{}", a["analysis"]["hdr"]);
    let t = tempfile::tempdir().unwrap();
    let o = run(drapto(t.path())
        .env("DRAPTO_MAX_OUTPUT_RATIO", "0")
        .arg("encode")
        .arg("-i")
        .arg(&in_container)
        .arg("-o")
        .arg(t.path().join("out")));
    assert!(o.status.success(), "{}", stdout(&o));
    let j = mkvmerge_j(&t.path().join("out").join(in_container.file_name().unwrap()));
    assert_eq!(j["tracks"][0]["properties"]["max_content_light"].as_u64(), Some(1000), "{j}");
    let src =
        hdr10_small("hdr10_cll_1000_0.mkv", "master-display=G(0,0)B(0,0)R(0,0)WP(0,0)L(10000000,50):max-cll=1000,0");
    let a = analyze(&src);
    assert_eq!(a["analysis"]["hdr"]["content_light"]["max_fall"], 0);
    let t = tempfile::tempdir().unwrap();
    let out = encode(&src, t.path());
    let j = mkvmerge_j(&out);
    let v = &j["tracks"][0]["properties"];
    assert_eq!((v["max_content_light"].as_u64(), v["max_luminance"].as_f64()), (Some(1000), Some(1000.0)), "{v}");
    assert!(v["chromaticity_coordinates"].is_null(), "luminance alone, no gamut of zeros: {v}");
}

#[test]
fn hdr10_uhd_is_cropped_and_keeps_its_metadata() {
    let src = hdr10_uhd();
    let a = analyze(&src);
    let an = &a["analysis"];
    assert_eq!(an["resolution"], "UHD");
    assert_eq!(an["hdr"]["kind"], "pq");
    assert_eq!(an["hdr"]["content_light"]["max_cll"], 1000);
    assert_eq!(an["hdr"]["mastering_display"]["max_luminance"], 1000.0);
    assert!(an["crop"]["black_level"].as_f64().unwrap() <= 20.0, "limited-range black is 16 on the 8-bit scale");
    let (w, h, _, y) = crop_of(&a).expect("a crop");
    assert_eq!(w, 3840);
    assert!((1596..=1604).contains(&h) && (278..=282).contains(&y), "{h} at {y}");
    assert_eq!(a["plan"]["video"]["crf"], 29);

    let t = tempfile::tempdir().unwrap();
    let out = encode(&src, t.path());
    let p = ffprobe(&out);
    let v = video(&p);
    assert_eq!(v["height"].as_u64(), Some(h));
    assert_eq!(v["color_transfer"], "smpte2084");
    assert_eq!(v["color_primaries"], "bt2020");
    assert_eq!(v["color_space"], "bt2020nc");
    // HDR10 static metadata, read back from the decoded first frame.
    let frames = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
            "-show_frames",
            "-show_entries",
            "frame=side_data_list",
            "-of",
            "json",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let f: Value = serde_json::from_slice(&frames.stdout).unwrap();
    let sd = f["frames"][0]["side_data_list"].as_array().expect("frame side data");
    let md = sd.iter().find(|s| s["side_data_type"] == "Mastering display metadata").expect("mastering display");
    let ratio = |v: &Value| -> f64 {
        let t = v.as_str().unwrap();
        let (n, d) = t.split_once('/').unwrap();
        n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap()
    };
    assert_eq!(ratio(&md["max_luminance"]), 1000.0);
    assert!((ratio(&md["min_luminance"]) - 0.005).abs() < 1e-4);
    assert!((ratio(&md["red_x"]) - 0.68).abs() < 1e-3);
    let cl = sd.iter().find(|s| s["side_data_type"] == "Content light level metadata").expect("content light");
    assert_eq!((cl["max_content"].as_u64(), cl["max_average"].as_u64()), (Some(1000), Some(400)));
    let mi = std::process::Command::new("mediainfo").arg(&out).output().unwrap();
    let mi = String::from_utf8_lossy(&mi.stdout);
    assert!(mi.contains("SMPTE ST 2086") && mi.contains("1000 cd/m2"), "{mi}");
}

#[test]
fn hlg_is_recognised_and_kept() {
    let src = fixture(
        "hlg.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=5:duration=2,format=yuv420p10le,setparams=color_primaries=bt2020:color_trc=arib-std-b67:colorspace=bt2020nc:range=tv",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-color_primaries",
            "bt2020",
            "-color_trc",
            "arib-std-b67",
            "-colorspace",
            "bt2020nc",
        ],
    );
    let a = analyze(&src);
    assert_eq!(a["analysis"]["hdr"]["kind"], "hlg");
    let t = tempfile::tempdir().unwrap();
    let p = ffprobe(&encode(&src, t.path()));
    assert_eq!(video(&p)["color_transfer"], "arib-std-b67");
}

#[test]
fn interlaced_anamorphic_dvd_is_deinterlaced_and_keeps_its_aspect() {
    let src = fixture(
        "dvd_480i.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=720x480:rate=60000/1001:duration=3,interlace=scan=tff",
            "-c:v",
            "mpeg2video",
            "-flags",
            "+ilme+ildct",
            "-b:v",
            "6M",
            "-aspect",
            "16:9",
        ],
    );
    let a = analyze(&src);
    assert_eq!(a["analysis"]["interlace"]["interlaced"], true, "{}", a["analysis"]["interlace"]);
    assert_eq!(a["plan"]["video"]["filters"][0], "bwdif=mode=send_frame:parity=auto:deint=all");
    let t = tempfile::tempdir().unwrap();
    let out = encode(&src, t.path());
    let p = ffprobe(&out);
    assert_eq!(video(&p)["display_aspect_ratio"], "16:9");
    assert_eq!(frame_count(&out), frame_count(&src), "one frame out per frame in");
}

#[test]
fn progressive_source_is_never_filtered() {
    let src = simple_clip("small.mkv", "320x240", 2);
    let a = analyze(&src);
    assert_eq!(a["analysis"]["interlace"]["interlaced"], false);
    assert_eq!(a["plan"]["video"]["filters"].as_array().unwrap().len(), 0);
}

fn dv_sample(name: &str) -> PathBuf {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    assert!(shared.exists(), "{} missing", shared.display());
    shared
}

#[test]
fn dolby_vision_profile_8_is_kept_as_profile_10() {
    for (name, level) in [("dv_p8_hdr10_720p.mkv", 2), ("dv_p81_144p.mkv", 1)] {
        let src = dv_sample(name);
        let a = analyze(&src);
        let dv = &a["analysis"]["dolby_vision"];
        assert_eq!(dv["profile"], 8, "{name}");
        assert_eq!(dv["level"], level, "{name}");
        assert_eq!(dv["compatibility_id"], 1, "{name}");
        assert_eq!(a["plan"]["path"], "dolby_vision");
        assert_eq!(a["plan"]["video"]["dolby_vision"], true);
        assert_eq!(crop_of(&a), None, "Dolby Vision is never cropped");

        let t = tempfile::tempdir().unwrap();
        let out = encode(&src, t.path());
        let p = ffprobe(&out);
        let v = video(&p);
        let rec = v["side_data_list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["side_data_type"] == "DOVI configuration record")
            .expect("DOVI record");
        assert_eq!(rec["dv_profile"], 10, "{name}");
        assert_eq!(rec["dv_bl_signal_compatibility_id"], 1, "{name}");
        assert_eq!(v["color_transfer"], "smpte2084");
        let mi = std::process::Command::new("mediainfo").arg(&out).output().unwrap();
        let mi = String::from_utf8_lossy(&mi.stdout);
        assert!(mi.contains("Dolby Vision") && mi.contains("dav1.10"), "{mi}");
    }
}

#[test]
fn a_clean_first_sample_settles_a_film_flagged_progressive() {
    // Real footage (Big Buck Bunny, the Megamind trailer, bikes, looped to
    // 62 s at 640x360, 24 fps: no pulldown possible), flagged progressive:
    // idet's three combing samples would count ~180 frames; the first
    // settles the verdict, so only its ~60 are counted. (Synthetic sources
    // do not do: testsrc2's sharp motion fools idet into "combed", still
    // bars leave it undecided.)
    let (bbb, mm, bikes) = (footage("bigbuckbunny.mp4"), footage("Megamind.avi"), footage("bikes.mp4"));
    let v = "scale=640:360:force_original_aspect_ratio=decrease,pad=640:360:-1:-1,setsar=1,fps=24,format=yuv420p";
    let graph = format!(
        "[0:v]{v}[a];[1:v]{v}[b];[2:v]{v}[c];[a][b][c]concat=n=3:v=1,loop=loop=3:size=700,trim=duration=62,setpts=PTS-STARTPTS[v]"
    );
    let mut args = vec!["-i", bbb.to_str().unwrap(), "-i", mm.to_str().unwrap(), "-i", bikes.to_str().unwrap()];
    args.extend(["-filter_complex", &graph, "-map", "[v]"]);
    args.extend(X264);
    let src = fixture("real_progressive_62s.mkv", &args);
    assert_eq!(video(&ffprobe(&src))["field_order"], "progressive");
    let a = analyze(&src);
    let i = &a["analysis"]["interlace"];
    assert_eq!(i["interlaced"], false, "{i}");
    let c = &i["counts"];
    let counted: u64 = ["tff", "bff", "progressive", "undetermined"].iter().map(|k| c[*k].as_u64().unwrap()).sum();
    assert!((55..=65).contains(&counted), "one sample of 60 frames judged, not three: {i}");
}
