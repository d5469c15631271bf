//! Shared helpers for the integration tests: which ffmpeg to use, generated
//! fixture clips (cached under target/test-fixtures), running the drapto
//! binary, and probing results with ffprobe and mkvmerge.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The ffmpeg used to make fixtures and given to drapto: `DRAPTO_FFMPEG`,
/// else `.tools/bin/ffmpeg` (scripts/setup.sh), else `ffmpeg` on PATH.
pub fn ffmpeg() -> PathBuf {
    if let Ok(p) = std::env::var("DRAPTO_FFMPEG") {
        return PathBuf::from(p);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/ffmpeg");
    if local.exists() { local } else { PathBuf::from("ffmpeg") }
}

/// True when the ffmpeg in use has libvmaf.
pub fn has_libvmaf() -> bool {
    let out = Command::new(ffmpeg()).args(["-hide_banner", "-filters"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains("libvmaf")
}

pub fn fixtures_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-fixtures");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A name in the fixtures folder that no other test, in this process or
/// another, is using: where a fixture is written before it is renamed into
/// place (two tests making the same fixture at once must not share one).
pub fn scratch_path(name: &str, ext: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    fixtures_dir().join(format!(".{name}.{}.{n}.tmp.{ext}", std::process::id()))
}

/// The encode paths a picture test runs on: the standard path, and the
/// chunked path (segments of `chunk` seconds) where this ffmpeg has libvmaf.
pub fn both_paths(chunk: &'static str) -> Vec<Vec<&'static str>> {
    let mut paths = vec![vec!["--no-chunked"]];
    if has_libvmaf() {
        paths.push(vec!["--chunked", "--chunk-size", chunk]);
    }
    paths
}

/// An executable script at `path` (a wrapper standing in for a tool).
pub fn script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A fixture made by running ffmpeg with `args` (output appended), cached by
/// name. Generated under a temporary name, then renamed, so parallel tests
/// never see a half-written file.
pub fn fixture(name: &str, args: &[&str]) -> PathBuf {
    let path = fixtures_dir().join(name);
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = scratch_path(&name.replace('/', "_"), "mkv");
    let out = Command::new(ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(&tmp)
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success(), "fixture {name}: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// Runs mkvmerge with `args` (output appended first) to make a fixture,
/// cached by name like the others.
pub fn mkvmerge_fixture<S: AsRef<std::ffi::OsStr>>(name: &str, args: &[S]) -> PathBuf {
    let path = fixtures_dir().join(name);
    if path.exists() {
        return path;
    }
    let tmp = scratch_path(name, "mkv");
    let out = Command::new("mkvmerge").arg("-q").arg("-o").arg(&tmp).args(args).output().unwrap();
    assert!(out.status.code().unwrap_or(2) <= 1, "mkvmerge {name}: {}", String::from_utf8_lossy(&out.stdout));
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// A fixture file made by `make` under a name of its own, then renamed
/// into place: tests running at once never see half of it.
pub fn made_once(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let path = fixtures_dir().join(name);
    if !path.exists() {
        let tmp = scratch_path(name, "tmp");
        make(&tmp);
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// A clip of real footage fetched by scripts/fetch-footage.sh (run by
/// scripts/setup.sh) into .tools/footage/.
pub fn footage(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/footage").join(name);
    assert!(p.exists(), "real footage {} is missing: run scripts/setup.sh (or scripts/fetch-footage.sh)", p.display());
    p
}

/// Writes a small text file into the fixtures folder (subtitles, metadata).
pub fn text_file(name: &str, content: &str) -> PathBuf {
    let p = fixtures_dir().join(name);
    if !p.exists() {
        let tmp = scratch_path(name, "tmp");
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
    }
    p
}

/// A short plain clip: `secs` seconds of moving picture plus one stereo track.
pub fn simple_clip(name: &str, size: &str, secs: u32) -> PathBuf {
    let v = format!("testsrc2=size={size}:rate=25:duration={secs}");
    let a = format!("sine=frequency=440:sample_rate=48000:duration={secs}");
    // Cached by name and shape: tests that ask for one name in two shapes
    // get each their own (the first made was everyone's).
    fixture(
        &format!("{size}-{secs}s/{name}"),
        &[
            "-f",
            "lavfi",
            "-i",
            &v,
            "-f",
            "lavfi",
            "-i",
            &a,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-ac",
            "2",
        ],
    )
}

/// The rich fixture of the foundation issue: two audio tracks of different
/// channel counts, SRT + ASS subtitles, a font attachment, chapters, tags.
pub fn rich_clip() -> PathBuf {
    let srt =
        text_file("rich.srt", "1\n00:00:00,500 --> 00:00:01,500\nHello.\n\n2\n00:00:02,000 --> 00:00:02,800\nBye.\n");
    let ass = text_file(
        "rich.ass",
        "[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\nStyle: Default,Test Sans,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\nDialogue: 0,0:00:00.50,0:00:01.50,Default,,0,0,0,,Styled\n",
    );
    let meta = text_file(
        "rich.ffmeta",
        ";FFMETADATA1\ntitle=Rich Test Film\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1500\ntitle=Opening\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=1500\nEND=3000\ntitle=Ending\n",
    );
    let font = fixtures_dir().join("TestSans.ttf");
    if !font.exists() {
        std::fs::write(&font, (0..2048u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>()).unwrap();
    }
    fixture(
        "rich.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:sample_rate=48000:duration=3",
            "-i",
            srt.to_str().unwrap(),
            "-i",
            ass.to_str().unwrap(),
            "-i",
            meta.to_str().unwrap(),
            "-attach",
            font.to_str().unwrap(),
            "-metadata:s:t:0",
            "mimetype=application/x-truetype-font",
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-map",
            "2:a",
            "-map",
            "3:s",
            "-map",
            "4:s",
            "-map_metadata",
            "5",
            "-map_chapters",
            "5",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a:0",
            "flac",
            "-ac:a:0",
            "2",
            "-c:a:1",
            "ac3",
            "-b:a:1",
            "384k",
            "-ac:a:1",
            "6",
            "-c:s",
            "copy",
            "-metadata:s:a:0",
            "language=eng",
            "-metadata:s:a:0",
            "title=Stereo Mix",
            "-metadata:s:a:1",
            "language=fre",
            "-metadata:s:a:1",
            "title=Surround 5.1",
            "-metadata:s:s:0",
            "language=eng",
            "-metadata:s:s:1",
            "language=ger",
            "-metadata:s:s:1",
            "title=Styled",
            "-disposition:a:0",
            "default",
            "-disposition:a:1",
            "0",
            "-disposition:s:0",
            "0",
            "-disposition:s:1",
            "forced",
        ],
    )
}

/// A drapto command with the test ffmpeg, a private temp folder and no
/// user configuration.
pub fn drapto(temp: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drapto"));
    c.env("DRAPTO_FFMPEG", ffmpeg())
        .env("DRAPTO_TEMP_DIR", temp.join("work"))
        .env("DRAPTO_PRESET", "13")
        .env("DRAPTO_ENABLE_CHUNKED_ENCODING", "false")
        // Generated clips often encode bigger than their sources: the
        // output guard has tests of its own (tests/library.rs).
        .env("DRAPTO_MAX_OUTPUT_RATIO", "0")
        .env("XDG_CONFIG_HOME", temp.join("config"))
        .env("NO_COLOR", "1")
        .env_remove("DRAPTO_LOG");
    c
}

/// Runs `drapto encode --json --preset 12 -i SRC -o TEMP/out EXTRA…` with
/// [`drapto`]'s settings; its output, as [`run`] gives it.
pub fn encode_json(temp: &Path, src: &Path, extra: &[&str]) -> Output {
    run(drapto(temp)
        .args(["encode", "--json", "--preset", "12", "-i"])
        .arg(src)
        .arg("-o")
        .arg(temp.join("out"))
        .args(extra))
}

/// Runs and returns output, printing it when the test fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run drapto");
    eprintln!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `--json` event lines of a run.
pub fn events(o: &Output) -> Vec<Value> {
    stdout(o).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

/// ffprobe's JSON for a file (streams, format, chapters).
pub fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams", "-show_chapters"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// mkvmerge's JSON identification of a file.
pub fn mkvmerge_j(path: &Path) -> Value {
    let out = Command::new("mkvmerge").arg("-J").arg(path).output().unwrap();
    assert!(out.status.code().unwrap_or(9) <= 1, "mkvmerge -J {}", path.display());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Streams of one type from ffprobe JSON.
pub fn streams<'a>(probe: &'a Value, kind: &str) -> Vec<&'a Value> {
    probe["streams"].as_array().unwrap().iter().filter(|s| s["codec_type"] == kind).collect()
}

/// Where each packet of stream `select` (`"v:0"`, `"a:1"`) of `path` ends
/// (pts + duration), seconds, in file order.
pub fn packet_ends(path: &Path, select: &str) -> Vec<f64> {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", select, "-show_entries", "packet=pts_time,duration_time"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split(',').map(|v| v.trim().parse::<f64>().ok());
            Some(it.next()?? + it.next().flatten().unwrap_or(0.0))
        })
        .collect()
}

/// Number of video packets, with or without a time (ffprobe -count_packets).
pub fn packet_count(path: &Path) -> usize {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().trim_end_matches(',').parse().unwrap()
}

/// Number of decoded video frames (ffprobe -count_frames).
/// The lowest per-frame PSNR (all planes) of `out` against `src`, frames
/// paired by number: far under the encode's usual 27–50 dB, `out` does not
/// show `src`'s pictures (a segment encoded from the wrong frames).
pub fn lowest_psnr(out: &Path, src: &Path) -> f64 {
    let o = Command::new(ffmpeg())
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(out)
        .arg("-i")
        .arg(src)
        .args(["-lavfi", "[0:v]format=yuv420p[a];[1:v]format=yuv420p[b];[a][b]psnr", "-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    let min = text.rsplit(" min:").next().and_then(|s| s.split_whitespace().next()?.parse().ok());
    min.unwrap_or_else(|| panic!("no PSNR of {} against {}: {text}", out.display(), src.display()))
}

pub fn frame_count(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "default=nw=1:nk=1",
        ])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no frame count in {text:?}"))
}

/// A file's bytes and modification time, to prove it was not touched.
pub fn fingerprint(path: &Path) -> (Vec<u8>, std::time::SystemTime) {
    (std::fs::read(path).unwrap(), std::fs::metadata(path).unwrap().modified().unwrap())
}

/// The packet times (seconds, ascending) of `path`'s stream `select`
/// (ffprobe's `-select_streams`: "v:0", "s:0").
pub fn packet_times(path: &Path, select: &str) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", select, "-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    let mut v: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}
