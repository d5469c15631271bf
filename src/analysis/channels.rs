//! Where each channel of a source audio track goes in the layouts Opus
//! keeps (5.1 or 7.1, or 3.0 and quad as they are), as an explicit `pan`
//! filter: ffmpeg's own conversion guesses a layout for a track that names
//! none (a 3-channel PCM track's centre went to the LFE) and rematrixes
//! layouts it does not expect (a 7.1(wide) track's wide pair into the
//! fronts, its sides silent), all without a word.

/// ffmpeg's layouts by name, each as its channels in order (`ffmpeg
/// -layouts`); the layouts Opus keeps as they are pass through without a
/// map (see [`super::audio::layout_for`]).
const LAYOUTS: &[(&str, &str)] = &[
    ("mono", "FC"),
    ("stereo", "FL+FR"),
    ("2.1", "FL+FR+LFE"),
    ("3.0", "FL+FR+FC"),
    ("3.0(back)", "FL+FR+BC"),
    ("4.0", "FL+FR+FC+BC"),
    ("quad", "FL+FR+BL+BR"),
    ("quad(side)", "FL+FR+SL+SR"),
    ("3.1", "FL+FR+FC+LFE"),
    ("5.0", "FL+FR+FC+BL+BR"),
    ("5.0(side)", "FL+FR+FC+SL+SR"),
    ("4.1", "FL+FR+FC+LFE+BC"),
    ("5.1", "FL+FR+FC+LFE+BL+BR"),
    ("5.1(side)", "FL+FR+FC+LFE+SL+SR"),
    ("6.0", "FL+FR+FC+BC+SL+SR"),
    ("6.0(front)", "FL+FR+FLC+FRC+SL+SR"),
    ("3.1.2", "FL+FR+FC+LFE+TFL+TFR"),
    ("hexagonal", "FL+FR+FC+BL+BR+BC"),
    ("6.1", "FL+FR+FC+LFE+BC+SL+SR"),
    ("6.1(back)", "FL+FR+FC+LFE+BL+BR+BC"),
    ("6.1(front)", "FL+FR+LFE+FLC+FRC+SL+SR"),
    ("7.0", "FL+FR+FC+BL+BR+SL+SR"),
    ("7.0(front)", "FL+FR+FC+FLC+FRC+SL+SR"),
    ("7.1", "FL+FR+FC+LFE+BL+BR+SL+SR"),
    ("7.1(wide)", "FL+FR+FC+LFE+BL+BR+FLC+FRC"),
    ("7.1(wide-side)", "FL+FR+FC+LFE+FLC+FRC+SL+SR"),
    ("5.1.2", "FL+FR+FC+LFE+SL+SR+TFL+TFR"),
    ("5.1.2(back)", "FL+FR+FC+LFE+BL+BR+TFL+TFR"),
    ("octagonal", "FL+FR+FC+BL+BR+BC+SL+SR"),
    ("cube", "FL+FR+BL+BR+TFL+TFR+TBL+TBR"),
    ("5.1.4", "FL+FR+FC+LFE+SL+SR+TFL+TFR+TBL+TBR"),
    ("7.1.2", "FL+FR+FC+LFE+BL+BR+SL+SR+TFL+TFR"),
    ("7.1.4", "FL+FR+FC+LFE+BL+BR+SL+SR+TFL+TFR+TBL+TBR"),
    ("7.2.3", "FL+FR+FC+LFE+BL+BR+SL+SR+TFL+TFR+TBC+LFE2"),
    ("9.1.4", "FL+FR+FC+LFE+BL+BR+FLC+FRC+SL+SR+TFL+TFR+TBL+TBR"),
    ("9.1.6", "FL+FR+FC+LFE+BL+BR+FLC+FRC+SL+SR+TFL+TFR+TBL+TBR+TSL+TSR"),
    ("hexadecagonal", "FL+FR+FC+BL+BR+BC+SL+SR+TFL+TFC+TFR+TBL+TBC+TBR+WL+WR"),
];

/// The layout a track of `channels` that names none is taken to be: the
/// WAV order Matroska's PCM follows (no Blu-ray or DVD PCM of 3 or 7
/// channels has an LFE). `None` past 8.
pub fn assumed(channels: u32) -> Option<&'static str> {
    ["mono", "stereo", "3.0", "quad", "5.0", "5.1", "7.0", "7.1"].get(channels.checked_sub(1)? as usize).copied()
}

/// The channels of `layout` (a name, or channels joined by `+`, bare or as
/// ffprobe 5 writes a layout it has no name for: `8 channels (FL+FR+…)`),
/// when they are `channels` many.
pub fn names(layout: &str, channels: u32) -> Option<Vec<String>> {
    let layout = match layout.split_once(" channels (") {
        Some((_, rest)) => rest.strip_suffix(')').unwrap_or(rest),
        None => layout,
    };
    let spelled = LAYOUTS.iter().find(|(n, _)| *n == layout).map_or(layout, |(_, c)| c);
    let names: Vec<String> = spelled.split('+').map(str::to_string).collect();
    (names.len() == channels as usize && names.iter().all(|n| !n.is_empty())).then_some(names)
}

/// A source channel's place, or places, in 7.1: (speaker, gain).
fn place(name: &str, has_sides: bool) -> Vec<(&'static str, f64)> {
    const HALF: f64 = std::f64::consts::FRAC_1_SQRT_2;
    match name {
        "FL" | "TFL" | "BFL" => vec![("FL", 1.0)],
        "FR" | "TFR" | "BFR" => vec![("FR", 1.0)],
        "FC" | "TFC" | "TC" | "BFC" => vec![("FC", 1.0)],
        "LFE" | "LFE2" => vec![("LFE", 1.0)],
        "BL" | "TBL" => vec![("BL", 1.0)],
        "BR" | "TBR" => vec![("BR", 1.0)],
        "SL" | "TSL" | "SDL" => vec![("SL", 1.0)],
        "SR" | "TSR" | "SDR" => vec![("SR", 1.0)],
        "BC" | "TBC" => vec![("BL", HALF), ("BR", HALF)],
        // Wide and centre-front pairs: the sides where the track has none
        // (as DTS decoders place wide speakers), else the fronts.
        "FLC" | "WL" if !has_sides => vec![("SL", 1.0)],
        "FRC" | "WR" if !has_sides => vec![("SR", 1.0)],
        "FLC" | "WL" => vec![("FL", 1.0)],
        "FRC" | "WR" => vec![("FR", 1.0)],
        _ => vec![],
    }
}

/// How a track's channels are mapped: the filter, the layout it
/// gives, and what was mixed or left out, for the warning.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    /// The `pan` (or `channelmap`) filter.
    pub filter: String,
    pub layout: &'static str,
    pub channels: u32,
    /// "TFL into FL", "U8 left out"…
    pub notes: Vec<String>,
}

/// The map of a track whose channels are `names` (more than 8 are read
/// past their names as unknown) onto 5.1 or 7.1, or onto `keep` (3.0,
/// quad) when they are that layout's channels.
pub fn map(names: &[String], keep: Option<&'static str>) -> Map {
    let has_sides = names.iter().any(|n| matches!(n.as_str(), "SL" | "SR" | "SDL" | "SDR" | "TSL" | "TSR"));
    let placed: Vec<Vec<(&str, f64)>> = names.iter().map(|n| place(n, has_sides)).collect();
    let uses = |s: &[&str]| placed.iter().flatten().any(|(p, _)| s.contains(p));
    let seven = names.len() > 6 || (uses(&["SL", "SR"]) && uses(&["BL", "BR"]));
    let (layout, speakers): (&'static str, &[&str]) = match keep {
        Some("3.0") => ("3.0", &["FL", "FR", "FC"]),
        Some("quad") => ("quad", &["FL", "FR", "BL", "BR"]),
        _ if seven => ("7.1", &["FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR"]),
        _ => ("5.1", &["FL", "FR", "FC", "LFE", "BL", "BR"]),
    };
    // 5.1 has its surround pair at the back.
    let to = |p: &'static str| match (layout, p) {
        ("5.1", "SL") => "BL",
        ("5.1", "SR") => "BR",
        _ => p,
    };
    let mut notes = Vec::new();
    let mut inputs: Vec<Vec<String>> = vec![Vec::new(); speakers.len()];
    for (c, (name, places)) in names.iter().zip(&placed).enumerate() {
        if places.is_empty() {
            notes.push(format!("{name} left out (no place for it)"));
        }
        for (p, gain) in places {
            let speaker = to(p);
            let Some(slot) = speakers.iter().position(|s| *s == speaker) else { continue };
            if speaker != name || !inputs[slot].is_empty() || *gain != 1.0 {
                notes.push(format!("{name} into {speaker}"));
            }
            // A channel split over two speakers, or added to one that has
            // its own: at -3 dB.
            let g = if *gain != 1.0 || !inputs[slot].is_empty() { std::f64::consts::FRAC_1_SQRT_2 } else { 1.0 };
            inputs[slot].push(if g == 1.0 { format!("c{c}") } else { format!("{g:.3}*c{c}") });
        }
    }
    notes.dedup();
    Map { filter: filter(layout, speakers, &inputs), layout, channels: speakers.len() as u32, notes }
}

/// The filter that gives each speaker its inputs. A mere reordering is a
/// `channelmap`: `pan` hands one to libswresample, which then also
/// rematrixes between the two layouts' names (7.1(wide) to 7.1 mixed the
/// wide pair into the fronts whatever the map said).
fn filter(layout: &str, speakers: &[&str], inputs: &[Vec<String>]) -> String {
    let single: Option<Vec<&str>> =
        inputs.iter().map(|i| (i.len() == 1).then(|| i[0].strip_prefix('c')).flatten()).collect();
    if let Some(order) = single {
        return format!("channelmap=map={}:channel_layout={layout}", order.join("|"));
    }
    let terms: Vec<String> = (speakers.iter().zip(inputs))
        .map(|(s, i)| format!("{s}={}", if i.is_empty() { "0*c0".to_string() } else { i.join("+") }))
        .collect();
    format!("pan={layout}|{}", terms.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_of(layout: &str, channels: u32) -> Map {
        map(&names(layout, channels).unwrap(), None)
    }

    #[test]
    fn every_channel_finds_its_speaker() {
        // A layout Opus lacks goes up to 5.1, each channel in its place.
        let m = map_of("2.1", 3);
        assert_eq!(m.filter, "pan=5.1|FL=c0|FR=c1|FC=0*c0|LFE=c2|BL=0*c0|BR=0*c0");
        assert!(m.notes.is_empty());
        // A back centre is played by both back speakers.
        let m = map_of("6.1", 7);
        assert_eq!(m.filter, "pan=7.1|FL=c0|FR=c1|FC=c2|LFE=c3|BL=0.707*c4|BR=0.707*c4|SL=c5|SR=c6");
        // 6.0's sides keep their own speakers.
        assert_eq!(map_of("6.0", 6).layout, "7.1");
        // 7.1(wide): the wide pair takes the empty sides.
        let m = map_of("7.1(wide)", 8);
        assert_eq!(m.filter, "channelmap=map=0|1|2|3|4|5|6|7:channel_layout=7.1");
        assert_eq!(m.notes, ["FLC into SL", "FRC into SR"]);
        // Heights fold into the speakers below them, said.
        let m = map_of("5.1.2", 8);
        assert_eq!(m.filter, "pan=7.1|FL=c0+0.707*c6|FR=c1+0.707*c7|FC=c2|LFE=c3|BL=0*c0|BR=0*c0|SL=c4|SR=c5");
        assert_eq!(m.notes, ["TFL into FL", "TFR into FR"]);
    }

    #[test]
    fn layouts_are_read_by_name_and_channel_by_channel() {
        assert_eq!(names("5.1.2", 8).unwrap()[6], "TFL");
        let spelled = names("8 channels (FL+FR+FC+LFE+SL+SR+TFL+TFR)", 8).unwrap();
        assert_eq!(spelled, names("5.1.2", 8).unwrap());
        assert_eq!(names("FL+FR+LFE", 3).unwrap(), ["FL", "FR", "LFE"]);
        assert!(names("5.1", 8).is_none(), "a name for another count is not taken");
    }

    #[test]
    fn a_track_that_names_no_layout_is_taken_as_wav_orders_it() {
        assert_eq!(assumed(3), Some("3.0"));
        assert_eq!(assumed(7), Some("7.0"));
        assert_eq!(assumed(9), None);
        let m = map(&names("3.0", 3).unwrap(), Some("3.0"));
        assert_eq!(m.filter, "channelmap=map=0|1|2:channel_layout=3.0");
        let m = map_of("7.0", 7);
        assert_eq!(m.filter, "pan=7.1|FL=c0|FR=c1|FC=c2|LFE=0*c0|BL=c3|BR=c4|SL=c5|SR=c6");
    }

    #[test]
    fn channels_without_a_name_are_left_out_and_said() {
        let mut n: Vec<String> = names("7.1", 8).unwrap();
        n.extend(["U8".to_string(), "U9".to_string()]);
        let m = map(&n, None);
        assert_eq!(m.layout, "7.1");
        assert_eq!(m.notes, ["U8 left out (no place for it)", "U9 left out (no place for it)"]);
    }
}
