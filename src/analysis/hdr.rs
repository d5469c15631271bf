//! HDR: the transfer/primaries/matrix verdict and the HDR10 static metadata
//! (mastering display, content light level).

use crate::tools::ffprobe::{SideData, Stream};
use serde::Serialize;

/// Kind of dynamic range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HdrKind {
    Sdr,
    /// SMPTE ST 2084 (HDR10, Dolby Vision base layers).
    Pq,
    /// ARIB STD-B67.
    Hlg,
    /// BT.2020 primaries or matrix with an SDR transfer (wide colour gamut).
    Bt2020,
}

impl HdrKind {
    pub fn is_hdr(self) -> bool {
        !matches!(self, HdrKind::Sdr)
    }

    pub fn name(self) -> &'static str {
        match self {
            HdrKind::Sdr => "SDR",
            HdrKind::Pq => "HDR (PQ / SMPTE 2084)",
            HdrKind::Hlg => "HDR (HLG / ARIB STD-B67)",
            HdrKind::Bt2020 => "wide gamut (BT.2020, SDR transfer)",
        }
    }
}

/// Colour description of the video stream, as ffmpeg names the values.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Colour {
    pub primaries: Option<String>,
    pub transfer: Option<String>,
    pub matrix: Option<String>,
    pub range: Option<String>,
    pub chroma_location: Option<String>,
}

/// SMPTE ST 2086 mastering display, chromaticities as 0..1, luminance in nits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MasteringDisplay {
    pub red: (f64, f64),
    pub green: (f64, f64),
    pub blue: (f64, f64),
    pub white_point: (f64, f64),
    pub max_luminance: f64,
    pub min_luminance: f64,
}

impl MasteringDisplay {
    /// From a "Mastering display metadata" side-data record.
    pub fn from_side_data(sd: &SideData) -> Option<MasteringDisplay> {
        let xy = |x: &str, y: &str| Some((sd.number(x)?, sd.number(y)?));
        Some(MasteringDisplay {
            red: xy("red_x", "red_y")?,
            green: xy("green_x", "green_y")?,
            blue: xy("blue_x", "blue_y")?,
            white_point: xy("white_point_x", "white_point_y")?,
            max_luminance: sd.number("max_luminance")?,
            min_luminance: sd.number("min_luminance")?,
        })
    }

    /// Whether `other` says the same within what the formats keep
    /// (chromaticities in 0.00002 steps, luminance in 0.0001 nits for the
    /// minimum; SVT-AV1 stores the minimum in 1/16384 nits).
    pub fn close_to(&self, other: &MasteringDisplay) -> bool {
        let xy = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() <= 0.0005 && (a.1 - b.1).abs() <= 0.0005;
        xy(self.red, other.red)
            && xy(self.green, other.green)
            && xy(self.blue, other.blue)
            && xy(self.white_point, other.white_point)
            && (self.max_luminance - other.max_luminance).abs() <= (self.max_luminance * 0.01).max(0.5)
            && (self.min_luminance - other.min_luminance).abs() <= (self.min_luminance * 0.05).max(0.0001)
    }

    /// SVT-AV1's `mastering-display` parameter: `G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)`.
    pub fn svt_param(&self) -> String {
        let p = |(x, y): (f64, f64)| format!("({x:.4},{y:.4})");
        format!(
            "G{}B{}R{}WP{}L({:.4},{:.4})",
            p(self.green),
            p(self.blue),
            p(self.red),
            p(self.white_point),
            self.max_luminance,
            self.min_luminance
        )
    }
}

/// MaxCLL / MaxFALL in nits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContentLight {
    pub max_cll: u32,
    pub max_fall: u32,
}

impl ContentLight {
    pub fn from_side_data(sd: &SideData) -> Option<ContentLight> {
        Some(ContentLight { max_cll: sd.number("max_content")? as u32, max_fall: sd.number("max_average")? as u32 })
    }
}

/// Everything about the stream's dynamic range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HdrInfo {
    pub kind: HdrKind,
    pub colour: Colour,
    pub mastering_display: Option<MasteringDisplay>,
    pub content_light: Option<ContentLight>,
    /// SMPTE ST 2094-40 dynamic metadata (HDR10+) on the first frame, and
    /// its processing windows (1: the whole picture).
    pub hdr10_plus: Option<Hdr10Plus>,
    /// Part of `colour` is the container's alone (its Colour element): the
    /// decoded frames do not carry it, and are given it before the encoder.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub colour_from_container: bool,
}

/// What the first frame's HDR10+ metadata says.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Hdr10Plus {
    pub windows: u32,
}

/// The verdict from the stream's colour fields.
pub fn kind_of(colour: &Colour) -> HdrKind {
    match colour.transfer.as_deref() {
        Some("smpte2084") => HdrKind::Pq,
        Some("arib-std-b67") => HdrKind::Hlg,
        _ if colour.primaries.as_deref() == Some("bt2020")
            || colour.matrix.as_deref().is_some_and(|m| m.starts_with("bt2020")) =>
        {
            HdrKind::Bt2020
        }
        _ => HdrKind::Sdr,
    }
}

/// Reads the stream's colour fields and any HDR10 metadata in the stream's
/// side data or `frame_side_data` (the first frame's, read by the caller).
pub fn analyze(stream: &Stream, frame_side_data: &[SideData]) -> HdrInfo {
    let unknown =
        |v: &Option<String>| v.clone().filter(|s| !matches!(s.as_str(), "unknown" | "unspecified" | "reserved"));
    let colour = Colour {
        primaries: unknown(&stream.color_primaries),
        transfer: unknown(&stream.color_transfer),
        matrix: unknown(&stream.color_space),
        range: unknown(&stream.color_range),
        chroma_location: unknown(&stream.chroma_location),
    };
    let find = |kind: &str| {
        stream
            .side_data_list
            .iter()
            .chain(frame_side_data)
            .filter(|s| s.side_data_type.to_ascii_lowercase().contains(kind))
            .collect::<Vec<_>>()
    };
    let mastering_display = find("mastering display").into_iter().find_map(MasteringDisplay::from_side_data);
    // MaxCLL and MaxFALL both 0 say "not known" (CTA-861.3): nothing to
    // give the encoder, nothing to check.
    let content_light = find("content light")
        .into_iter()
        .find_map(ContentLight::from_side_data)
        .filter(|c| (c.max_cll, c.max_fall) != (0, 0));
    let hdr10_plus =
        find("2094-40").first().map(|s| Hdr10Plus { windows: s.number("num_windows").unwrap_or(1.0) as u32 });
    HdrInfo {
        kind: kind_of(&colour),
        colour,
        mastering_display,
        content_light,
        hdr10_plus,
        colour_from_container: false,
    }
}

impl Colour {
    /// This (the stream's) colour, with what it leaves unsaid taken from
    /// `container`'s; none of it where the container's matrix is not the
    /// stream's (it describes another picture).
    pub fn filled_from(&self, container: Colour) -> Colour {
        if let (Some(s), Some(c)) = (&self.matrix, &container.matrix)
            && s != c
        {
            return self.clone();
        }
        let pick = |s: &Option<String>, c: Option<String>| s.clone().or(c);
        Colour {
            primaries: pick(&self.primaries, container.primaries),
            transfer: pick(&self.transfer, container.transfer),
            matrix: pick(&self.matrix, container.matrix),
            range: pick(&self.range, container.range),
            chroma_location: self.chroma_location.clone(),
        }
    }
}

/// The colour description the container's Colour element gives the video
/// track (`mkvmerge -J`'s properties), in ffmpeg's names, for what the
/// stream leaves unsaid: a rip whose primaries and transfer are stated in
/// the container alone (mkvmerge's `--colour-primaries`) lost them, on
/// both paths, and a player guessed.
pub fn colour_from_container(structure: &crate::matroska::structure::Structure) -> Colour {
    use crate::tools::mkvtoolnix::TrackKind;
    let Some(video) = structure.id.tracks.iter().find(|t| t.kind == TrackKind::Video) else {
        return Colour::default();
    };
    let code = |k: &str| video.properties.get(k).and_then(serde_json::Value::as_u64);
    let primaries = code("color_primaries").and_then(|c| match c {
        1 => Some("bt709"),
        4 => Some("bt470m"),
        5 => Some("bt470bg"),
        6 => Some("smpte170m"),
        7 => Some("smpte240m"),
        8 => Some("film"),
        9 => Some("bt2020"),
        10 => Some("smpte428"),
        11 => Some("smpte431"),
        12 => Some("smpte432"),
        22 => Some("jedec-p22"),
        _ => None,
    });
    let transfer = code("color_transfer_characteristics").and_then(|c| match c {
        1 => Some("bt709"),
        4 => Some("gamma22"),
        5 => Some("gamma28"),
        6 => Some("smpte170m"),
        7 => Some("smpte240m"),
        8 => Some("linear"),
        11 => Some("iec61966-2-4"),
        13 => Some("iec61966-2-1"),
        14 => Some("bt2020-10"),
        15 => Some("bt2020-12"),
        16 => Some("smpte2084"),
        18 => Some("arib-std-b67"),
        _ => None,
    });
    let matrix = code("color_matrix_coefficients").and_then(|c| match c {
        0 => Some("gbr"),
        1 => Some("bt709"),
        4 => Some("fcc"),
        5 => Some("bt470bg"),
        6 => Some("smpte170m"),
        7 => Some("smpte240m"),
        8 => Some("ycgco"),
        9 => Some("bt2020nc"),
        10 => Some("bt2020c"),
        _ => None,
    });
    // (Matroska's range: 1 broadcast, 2 full.)
    let range = code("color_range").and_then(|c| match c {
        1 => Some("tv"),
        2 => Some("pc"),
        _ => None,
    });
    let name = |v: Option<&str>| v.map(str::to_string);
    Colour {
        primaries: name(primaries),
        transfer: name(transfer),
        matrix: name(matrix),
        range: name(range),
        chroma_location: None,
    }
}

/// The HDR10 mastering display and content light of the video track of
/// the file whose `structure` MKVToolNix read, as its Colour element has
/// them (a value the element leaves out is 0). ffprobe shows neither a
/// content light with a zero in it (MaxFALL 0, as many UHD discs have) nor
/// a mastering display without chromaticities.
pub fn from_container(
    structure: &crate::matroska::structure::Structure,
) -> (Option<MasteringDisplay>, Option<ContentLight>) {
    use crate::tools::mkvtoolnix::TrackKind;
    let Some(video) = structure.id.tracks.iter().find(|t| t.kind == TrackKind::Video) else {
        return (None, None);
    };
    let p = &video.properties;
    let num = |k: &str| p.get(k).and_then(serde_json::Value::as_f64);
    let coords = |k: &str| -> Vec<f64> {
        let text = p.get(k).and_then(serde_json::Value::as_str).unwrap_or_default();
        text.split(',').filter_map(|c| c.trim().parse().ok()).collect()
    };
    let light = (num("max_content_light").is_some() || num("max_frame_light").is_some()).then(|| ContentLight {
        max_cll: num("max_content_light").unwrap_or(0.0) as u32,
        max_fall: num("max_frame_light").unwrap_or(0.0) as u32,
    });
    let (rgb, white) = (coords("chromaticity_coordinates"), coords("white_color_coordinates"));
    let at = |v: &[f64], i: usize| (v.get(i).copied().unwrap_or(0.0), v.get(i + 1).copied().unwrap_or(0.0));
    let display = (num("max_luminance").is_some() || !rgb.is_empty()).then(|| MasteringDisplay {
        red: at(&rgb, 0),
        green: at(&rgb, 2),
        blue: at(&rgb, 4),
        white_point: at(&white, 0),
        max_luminance: num("max_luminance").unwrap_or(0.0),
        min_luminance: num("min_luminance").unwrap_or(0.0),
    });
    (display, light)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_fills_what_the_stream_leaves_unsaid_unless_it_describes_another_picture() {
        let c = |p: Option<&str>, t: Option<&str>, m: Option<&str>| Colour {
            primaries: p.map(String::from),
            transfer: t.map(String::from),
            matrix: m.map(String::from),
            range: None,
            chroma_location: None,
        };
        let stream = c(None, None, Some("bt709"));
        let filled = stream.filled_from(c(Some("bt709"), Some("bt709"), Some("bt709")));
        assert_eq!(filled, c(Some("bt709"), Some("bt709"), Some("bt709")));
        // A BT.2020/PQ container over a BT.709 stream: none of it.
        assert_eq!(stream.filled_from(c(Some("bt2020"), Some("smpte2084"), Some("bt2020nc"))), stream);
        // The stream's own values stand.
        let own = c(Some("bt470bg"), None, None);
        assert_eq!(own.filled_from(c(Some("bt709"), Some("bt709"), None)), c(Some("bt470bg"), Some("bt709"), None));
    }

    fn colour(p: &str, t: &str, m: &str) -> Colour {
        Colour { primaries: Some(p.into()), transfer: Some(t.into()), matrix: Some(m.into()), ..Colour::default() }
    }

    #[test]
    fn kinds() {
        assert_eq!(kind_of(&colour("bt2020", "smpte2084", "bt2020nc")), HdrKind::Pq);
        assert_eq!(kind_of(&colour("bt2020", "arib-std-b67", "bt2020nc")), HdrKind::Hlg);
        assert_eq!(kind_of(&colour("bt2020", "bt709", "bt2020nc")), HdrKind::Bt2020);
        assert_eq!(kind_of(&colour("bt709", "bt709", "bt709")), HdrKind::Sdr);
        assert_eq!(kind_of(&Colour::default()), HdrKind::Sdr);
    }

    #[test]
    fn mastering_display_from_side_data_and_to_svt() {
        let sd: SideData = serde_json::from_str(
            r#"{"side_data_type":"Mastering display metadata","red_x":"34000/50000","red_y":"16000/50000",
            "green_x":"13250/50000","green_y":"34500/50000","blue_x":"7500/50000","blue_y":"3000/50000",
            "white_point_x":"15635/50000","white_point_y":"16450/50000","min_luminance":"50/10000",
            "max_luminance":"10000000/10000"}"#,
        )
        .unwrap();
        let md = MasteringDisplay::from_side_data(&sd).unwrap();
        assert_eq!(md.max_luminance, 1000.0);
        assert_eq!(md.min_luminance, 0.005);
        assert_eq!(
            md.svt_param(),
            "G(0.2650,0.6900)B(0.1500,0.0600)R(0.6800,0.3200)WP(0.3127,0.3290)L(1000.0000,0.0050)"
        );
        let cl: SideData = serde_json::from_str(
            r#"{"side_data_type":"Content light level metadata","max_content":1000,"max_average":400}"#,
        )
        .unwrap();
        assert_eq!(ContentLight::from_side_data(&cl), Some(ContentLight { max_cll: 1000, max_fall: 400 }));
    }
}
