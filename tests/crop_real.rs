//! Crop detection on real footage (see scripts/fetch-footage.sh): dark
//! picture at the edges is never cropped, real bars always are.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn analyze(src: &Path) -> Value {
    let t = tempfile::tempdir().unwrap();
    let o = run(drapto(t.path()).args(["analyze", "--json"]).arg(src));
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap()
}

fn crop(a: &Value) -> Option<(u64, u64, u64, u64)> {
    let c = &a["analysis"]["crop"]["crop"];
    (!c.is_null()).then(|| {
        let n = |k: &str| c[k].as_u64().unwrap();
        (n("width"), n("height"), n("x"), n("y"))
    })
}

/// `name` made from real footage `from`, cut with `input_args`, filtered
/// with `vf`, in H.264 as a rip would be.
fn real(name: &str, from: &str, input_args: &[&str], vf: &str) -> PathBuf {
    let src = footage(from);
    let mut args: Vec<&str> = input_args.to_vec();
    args.extend(["-i", src.to_str().unwrap(), "-map", "0:v:0", "-vf", vf]);
    args.extend(["-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p"]);
    fixture(name, &args)
}

fn assert_no_crop(src: &Path) {
    let a = analyze(src);
    let c = &a["analysis"]["crop"];
    assert_eq!(crop(&a), None, "{}: dark picture must not be cropped: {c}", src.display());
    assert_eq!(a["plan"]["video"]["filters"].as_array().unwrap().len(), 0);
}

#[test]
fn dark_edges_of_real_footage_are_not_cropped() {
    // Megamind's candle-lit restaurant: the left side is dark room for 4 s.
    let left = real("real_dark_left.mkv", "Megamind.avi", &["-t", "4.2"], "null");
    assert_no_crop(&left);
    let a = analyze(&left);
    let bars = a["analysis"]["crop"]["bars"].as_array().unwrap();
    assert!(!bars.is_empty(), "cropdetect proposes bars here; they must be refused with evidence");
    for b in bars {
        assert_eq!(b["accepted"], false, "{b}");
        assert!(b["reason"].as_str().unwrap().starts_with("refused"), "{b}");
        assert!(b["max_spread"].as_f64().unwrap() > 4.0, "{b}");
    }
    // ...and the right side for its last 3 s.
    assert_no_crop(&real("real_dark_right.mkv", "Megamind.avi", &["-ss", "8.4"], "null"));
    // A strong vignette over the whole trailer.
    assert_no_crop(&real("real_vignette.mkv", "Megamind.avi", &[], "vignette=angle=PI/3"));
    // A night version of a street: a third of the picture fades to near black.
    assert_no_crop(&real(
        "real_dark_side.mkv",
        "bikes.mp4",
        &[],
        "lutyuv=y=16+(val-16)*0.5,geq=lum='16+(lum(X,Y)-16)*min(1,0.05+X/(W*0.35))':cb='cb(X,Y)':cr='cr(X,Y)'",
    ));
    assert_no_crop(&real("real_night.mkv", "bigbuckbunny.mp4", &[], "lutyuv=y=16+(val-16)*0.3,vignette=angle=PI/3.5"));
}

#[test]
fn real_bars_are_cropped() {
    // A camera clip letterboxed on the source (22 and 24 px of 144).
    let a = analyze(&footage("demo.mkv"));
    let (w, h, x, y) = crop(&a).expect("the letterbox is cropped");
    assert_eq!((w, x), (176, 0));
    assert!((94..=102).contains(&h) && (18..=26).contains(&y), "{h} at {y}");
    for b in a["analysis"]["crop"]["bars"].as_array().unwrap() {
        assert_eq!(b["accepted"], true, "{b}");
    }
    // 2.35:1 footage letterboxed into 16:9, and a 4:3-ish film pillarboxed.
    let lb = real("real_letterbox.mkv", "bikes.mp4", &[], "pad=640:360:0:44:black");
    let (w, h, x, y) = crop(&analyze(&lb)).expect("letterbox crop");
    assert_eq!((w, x), (640, 0));
    assert!((268..=276).contains(&h) && (40..=48).contains(&y), "{h} at {y}");
    let pb = real("real_pillarbox.mkv", "Megamind.avi", &[], "pad=960:528:120:0:black");
    let (w, h, x, y) = crop(&analyze(&pb)).expect("pillarbox crop");
    assert_eq!((h, y), (528, 0));
    assert!((712..=728).contains(&w) && (112..=128).contains(&x), "{w} at {x}");
    // Letterboxed and dark at the edges inside the picture: only the bars go.
    let both = real("real_letterbox_dark.mkv", "Megamind.avi", &["-t", "4.2"], "pad=720:640:0:56:black");
    let (w, h, x, y) = crop(&analyze(&both)).expect("letterbox crop");
    assert_eq!((w, x), (720, 0), "the dark room's side is picture");
    assert!((520..=536).contains(&h) && (48..=64).contains(&y), "{h} at {y}");
}

/// The pixels `crop` (w, h, x, y) removes from the top and the bottom of a
/// picture `height` rows high.
fn top_bottom(crop: (u64, u64, u64, u64), height: u64) -> (u64, u64) {
    (crop.3, height - crop.1 - crop.3)
}

#[test]
fn bars_next_to_dark_picture_are_cropped_to_the_bar() {
    // A vignetted film letterboxed by 56 px bars: cropdetect's candidates run
    // 24 and 18 px into the dark picture. The bottom bar used to be cropped
    // with 18 rows of picture, and the top bar kept whole.
    let vignette =
        real("real_vignette_letterbox.mkv", "Megamind.avi", &[], "vignette=angle=PI/3,pad=720:640:0:56:black");
    let c = crop(&analyze(&vignette)).expect("letterbox crop");
    let (top, bottom) = top_bottom(c, 640);
    assert_eq!((c.0, c.2), (720, 0));
    assert!((44..=56).contains(&top) && (44..=56).contains(&bottom), "{top} and {bottom} px of 56 px bars cropped");
    // A lone 60 px bar under the vignette: only the bar goes.
    let lone = real("real_vignette_bottom.mkv", "Megamind.avi", &[], "vignette=angle=PI/3,pad=720:588:0:0:black");
    let c = crop(&analyze(&lone)).expect("bottom bar cropped");
    let (top, bottom) = top_bottom(c, 588);
    assert!(top == 0 && (48..=60).contains(&bottom), "{top} and {bottom} px cropped of a 60 px bottom bar");
    // A night scene letterboxed by 60 px bars, its sky as dark as the bar
    // for 92 rows: the top bar used to be kept whole.
    let night = real(
        "real_night_letterbox.mkv",
        "bigbuckbunny.mp4",
        &["-t", "20"],
        "lutyuv=y=16+(val-16)*0.3,vignette=angle=PI/3.5,pad=iw:ih+120:0:60:black",
    );
    let c = crop(&analyze(&night)).expect("letterbox crop");
    let (top, bottom) = top_bottom(c, 840);
    assert!((48..=60).contains(&top) && (48..=60).contains(&bottom), "{top} and {bottom} px of 60 px bars cropped");
}

#[test]
fn the_same_file_gets_the_same_decision() {
    let src = real("real_full.mkv", "Megamind.avi", &[], "null");
    let a = analyze(&src);
    let b = analyze(&src);
    assert_eq!(a["analysis"]["crop"], b["analysis"]["crop"]);
    assert_eq!(crop(&a), None);
}
