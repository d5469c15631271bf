//! The chunked path's last step on a film-length count of segments: more
//! segment files than this process may open at once are still appended
//! into one video, every frame at its time. (This process's limit on open
//! files is lowered, which every mkvmerge it starts inherits: this file
//! holds this one test for that reason.)

mod common;

use common::*;
use drapto::cancel::Cancel;
use drapto::encode::chunked::assemble::{APPEND_AT_ONCE, join};
use drapto::tools::mkvtoolnix::Mkvtoolnix;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::path::PathBuf;

/// Open files this test allows itself (and its mkvmerge runs): half of
/// macOS's usual 256, more than a group of [`APPEND_AT_ONCE`] needs.
const OPEN_FILES: u64 = 128;
/// Segments of the film: more than twice a group, so that groups of a
/// full and a partial size are made; more than [`OPEN_FILES`].
const SEGMENTS: usize = 2 * APPEND_AT_ONCE + 37;
const FRAMES_EACH: usize = 3;

#[test]
fn more_segments_than_open_files_are_appended_in_groups_every_frame_at_its_time() {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, OPEN_FILES.min(hard), hard).unwrap();
    let t = tempfile::tempdir().unwrap();
    let segment = fixture(
        "assemble_segment.mkv",
        &["-f", "lavfi", "-i", "testsrc2=s=64x36:r=24", "-frames:v", "3", "-c:v", "libsvtav1", "-preset", "12"],
    );
    let parts: Vec<PathBuf> = (0..SEGMENTS)
        .map(|i| {
            let p = t.path().join(format!("segment-{i:04}.mkv"));
            std::fs::copy(&segment, &p).unwrap();
            p
        })
        .collect();
    // Frames at 23.976 fps, by number (as inverse telecine gives them); in
    // whole milliseconds each is within half of one of its time.
    let frames = SEGMENTS * FRAMES_EACH;
    let times = t.path().join("times.txt");
    let lines: String = (0..frames).map(|i| format!("{:.6}\n", i as f64 * 1001.0 / 24.0)).collect();
    std::fs::write(&times, format!("# timestamp format v2\n{lines}")).unwrap();
    let mkv =
        Mkvtoolnix { mkvmerge: "mkvmerge".into(), mkvextract: "mkvextract".into(), mkvpropedit: "mkvpropedit".into() };
    let cancel = Cancel::new();

    // All at once is more than mkvmerge may open here: the limit holds.
    let all = t.path().join("all-at-once.mkv");
    let e = join(&mkv, &parts, &times, &all, usize::MAX, &cancel).unwrap_err();
    assert!(format!("{e:?}").contains("could not be opened"), "{e:?}");

    let out = t.path().join("video.mkv");
    join(&mkv, &parts, &times, &out, APPEND_AT_ONCE, &cancel).unwrap();
    assert_eq!(frame_count(&out), frames as u64);
    let pts = packet_times(&out, "v:0");
    assert_eq!(pts.len(), frames);
    for (i, t) in pts.iter().enumerate() {
        let film = i as f64 * 1001.0 / 24000.0;
        assert!((t - film).abs() <= 0.00051, "frame {i} at {t} s, its film time {film} s");
    }
    // The groups are gone; the segments are all there.
    let mut left: Vec<String> =
        std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.retain(|n| !n.starts_with("segment-"));
    left.sort();
    assert_eq!(left, ["times.txt", "video.mkv"], "{left:?}");
    assert!(parts.iter().all(|p| p.exists()));
}
