//! Moves ASS/SSA subtitles into a cropped picture.
//!
//! An ASS script is drawn on its own canvas (`PlayResX`×`PlayResY`), which
//! players stretch over the video's picture. Authored for the full frame of
//! a letterboxed film, it was stretched over the cropped picture instead:
//! its text came out smaller (by the crop's share of the height) and its
//! typeset signs (`\pos`) away from what they label. The canvas is given
//! the cropped picture's share of it, and every absolute position in the
//! events (`\pos`, `\move`, `\org`, `\clip`/`\iclip`, rectangles and
//! drawings, and the rows a `Scroll up`/`Scroll down` effect scrolls
//! between) is moved by the crop's offset, in the script's units. A line
//! placed in a black bar comes to the picture's edge, aligned to hang into
//! the picture (see [`move_text`]). Text, styles, timing and the rest of
//! the script are untouched; lines placed by their margins keep them, now
//! from the picture's edges.

use crate::analysis::crop::Rect;

/// `script` (a `.ass` file as mkvextract writes it) moved into `crop` of a
/// `width`×`height` video. A position that is no number (a karaoke
/// template's `$x`) is left as it is.
pub fn recrop(script: &str, width: u32, height: u32, crop: Rect) -> Result<String, String> {
    let (play_x, play_y) = play_res(script);
    let (sx, sy) = (play_x / f64::from(width.max(1)), play_y / f64::from(height.max(1)));
    let shift = (f64::from(crop.x) * sx, f64::from(crop.y) * sy);
    // (Whole numbers: libass reads the canvas as such.)
    let share = |v: f64, part: u32, whole: u32| (v * f64::from(part) / f64::from(whole.max(1))).round().max(1.0);
    let canvas = (share(play_x, crop.width, width), share(play_y, crop.height, height));
    let stated = |key: &str| script.lines().any(|l| l.trim_start_matches('\u{feff}').starts_with(key));
    let aligned = style_alignments(script);
    let mut out = String::with_capacity(script.len());
    let (mut section, mut text_field, mut style_field, mut effect_field) = (String::new(), 9usize, 3usize, 8usize);
    for line in script.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        // (mkvextract writes a byte-order mark before the first section.)
        let header = body.trim_start_matches('\u{feff}').strip_prefix('[');
        if let Some(name) = header {
            section = format!("[{}", name.to_ascii_lowercase());
        }
        let layout = |key: &str, v: &str| -> Option<String> {
            let v: f64 = v.trim().parse().ok()?;
            let (part, whole) = if key.ends_with('X') { (crop.width, width) } else { (crop.height, height) };
            Some(format!("{key}: {}", number(share(v, part, whole))))
        };
        let kept = match (section.as_str(), body.split_once(':')) {
            ("[script info]", Some((key @ ("PlayResX" | "PlayResY"), _))) => {
                format!("{key}: {}", number(if key == "PlayResX" { canvas.0 } else { canvas.1 }))
            }
            ("[script info]", Some((key @ ("LayoutResX" | "LayoutResY"), v))) => {
                layout(key, v).unwrap_or_else(|| body.to_string())
            }
            ("[events]", Some(("Format", fields))) => {
                let at = |name: &str| fields.split(',').position(|f| f.trim().eq_ignore_ascii_case(name));
                (text_field, style_field) = (at("text").unwrap_or(9), at("style").unwrap_or(3));
                effect_field = at("effect").unwrap_or(8);
                body.to_string()
            }
            // (Not a comment: a karaoke template's are no positions yet.)
            ("[events]", Some(("Dialogue", rest))) => {
                let mut fields: Vec<&str> = rest.splitn(text_field + 1, ',').collect();
                let Some(text) = fields.pop() else { return Err(format!("an event without text: {body}")) };
                // (As libass finds a style: its name less a leading `*`, in
                // any case, else `Default`.)
                let style = fields.get(style_field).map(|s| s.trim().trim_start_matches('*').to_lowercase());
                let alignment =
                    (style.and_then(|s| aligned.get(&s))).or_else(|| aligned.get("default")).copied().unwrap_or(2);
                let frame = Frame { shift, size: (play_x, play_y), canvas, alignment };
                let effect = fields.get(effect_field).and_then(|e| scroll_moved(e, shift.1, canvas.1));
                if let (Some(e), Some(field)) = (&effect, fields.get_mut(effect_field)) {
                    *field = e;
                }
                format!("Dialogue:{},{}", fields.join(","), move_text(text, &frame))
            }
            _ => body.to_string(),
        };
        out.push_str(&kept);
        out.push_str(ending);
        // A canvas the script left to the player's defaults is stated: the
        // player would derive it again from the new one, and wrongly.
        if section == "[script info]" && header.is_some() {
            for (key, v) in [("PlayResX", canvas.0), ("PlayResY", canvas.1)] {
                if !stated(key) {
                    out.push_str(&format!("{key}: {}{ending}", number(v)));
                }
            }
        }
    }
    Ok(out)
}

/// A `Scroll up;y1;y2;delay…` or `Scroll down;…` effect with the rows it
/// scrolls between moved up by `dy` and kept on a canvas `height` high
/// (whole numbers, as VSFilter reads them); `None` for any other effect,
/// and for a scroll over the whole height (`0;0`, as libass reads it).
fn scroll_moved(effect: &str, dy: f64, height: f64) -> Option<String> {
    let (name, rest) = effect.split_once(';')?;
    if !name.trim().eq_ignore_ascii_case("scroll up") && !name.trim().eq_ignore_ascii_case("scroll down") {
        return None;
    }
    let mut values: Vec<String> = rest.split(';').map(str::to_string).collect();
    let rows: Vec<f64> = values.iter().take(2).map(|v| v.trim().parse().ok()).collect::<Option<_>>()?;
    if rows.len() < 2 || rows.iter().all(|r| *r == 0.0) {
        return None;
    }
    // Each row kept to the picture; a band that lay in a bar comes into
    // the picture whole, as a line there does (row by row, one in the top
    // bar became 0;0, the whole height, and one in the bottom bar empty).
    let (lo, hi) = (rows[0].min(rows[1]) - dy, rows[0].max(rows[1]) - dy);
    let band = (hi - lo).min(height);
    let (lo, hi) = if hi <= 0.0 {
        (0.0, band)
    } else if lo >= height {
        (height - band, height)
    } else {
        (lo.max(0.0), hi.min(height))
    };
    let (lo, hi) = (lo.round(), hi.round().max(1.0));
    let (first, second) = if rows[0] <= rows[1] { (lo, hi) } else { (hi, lo) };
    values[0] = number(first);
    values[1] = number(second);
    Some(format!("{name};{}", values.join(";")))
}

/// The script's canvas, as libass reads it: 384×288 when it names none,
/// the other side from a 4:3 shape when it names one (1280 wide: 1024).
fn play_res(script: &str) -> (f64, f64) {
    let value = |key: &str| {
        script.lines().find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix(':')?.trim().parse::<f64>().ok())
    };
    match (value("PlayResX"), value("PlayResY")) {
        (Some(x), Some(y)) if x > 0.0 && y > 0.0 => (x, y),
        (Some(x), _) if x > 0.0 => (x, if x == 1280.0 { 1024.0 } else { x * 3.0 / 4.0 }),
        (_, Some(y)) if y > 0.0 => (if y == 1024.0 { 1280.0 } else { y * 4.0 / 3.0 }, y),
        _ => (384.0, 288.0),
    }
}

/// Where an event's script is drawn: the crop's `shift`, the script's
/// frame (`size`) and the cropped picture (`canvas`), in script units, and
/// the alignment of the event's style (numpad: 2 is bottom centre).
struct Frame {
    shift: (f64, f64),
    size: (f64, f64),
    canvas: (f64, f64),
    alignment: u32,
}

/// An event's text with the absolute positions of its override blocks
/// moved by the crop's shift (script units). A line placed in a black bar
/// (its `\pos`, or both ends of its `\move`, inside the frame but outside
/// the cropped picture) comes to the picture's edge, as PGS lines do, with
/// its clip and origin, and is aligned to hang into the picture from that
/// edge: moved by the crop alone, it lay outside the picture and was not
/// drawn. Points outside the frame (a scroll's ends, a line parked off
/// screen) and drawings (a box masking a bar) move by the crop alone.
fn move_text(text: &str, f: &Frame) -> String {
    let tight = tight_tags(text);
    let text = tight.as_str();
    let blocks = || {
        let mut rest = text;
        std::iter::from_fn(move || {
            let open = rest.find('{')?;
            let close = rest[open..].find('}')?;
            let block = &rest[open + 1..open + close];
            rest = &rest[open + close + 1..];
            Some(block)
        })
    };
    let drawing =
        blocks().any(|b| b.split('\\').any(|t| t.starts_with('p') && t[1..].parse::<u32>().is_ok_and(|n| n > 0)));
    let into = match blocks().find_map(placed) {
        Some(p) if !drawing => into_picture(&p, f),
        _ => (0.0, 0.0),
    };
    let moved = (f.shift.0 - into.0, f.shift.1 - into.1);
    let mut out = String::with_capacity(text.len() + 6);
    // (The first alignment in a line is the one that holds.)
    let alignment = blocks().find_map(alignment_tag).unwrap_or(f.alignment);
    let hung = hung_inward(alignment, into);
    let mut clip_moved = moved;
    if hung != alignment {
        out.push_str(&format!("{{\\an{hung}}}"));
        let anchor = blocks().find_map(placed).map(|p| p[0]);
        if let (Some(anchor), Some(clip)) = (anchor, blocks().find_map(clip_box)) {
            let turn = turned_text_shift(alignment, hung, anchor, clip, f.size);
            clip_moved = (moved.0 - turn.0, moved.1 - turn.1);
        }
    }
    out.push_str(&map_blocks(text, |b| move_block(b, moved, clip_moved)));
    out
}

/// `text` with each override block (`{…}`) rewritten by `f`; the rest as
/// it is.
fn map_blocks(text: &str, f: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len() + 6);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        out.push_str(&rest[..=open]);
        out.push_str(&f(&rest[open + 1..open + close]));
        out.push('}');
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// `text` with the space some scripts put between a placing tag and its
/// parenthesis (`\\pos (160,200)`) taken out: libass reads such a tag, and
/// left unmoved it drew its sign a bar's height off.
fn tight_tags(text: &str) -> String {
    // (Within override blocks alone: a line's text is its own.)
    map_blocks(text, tight_block)
}

/// One override block's placing tags with no space before their parenthesis.
fn tight_block(block: &str) -> String {
    let mut out = block.to_string();
    for tag in ["\\pos", "\\move", "\\org", "\\iclip", "\\clip"] {
        let mut from = 0;
        while let Some(at) = out[from..].find(tag).map(|a| a + from) {
            let after = at + tag.len();
            let spaces = out[after..].len() - out[after..].trim_start_matches([' ', '\t']).len();
            if spaces > 0 && out[after + spaces..].starts_with('(') {
                out.replace_range(after..after + spaces, "");
            }
            from = after;
        }
    }
    out
}

/// A drawing's commands and numbers, one a token, as libass reads them:
/// with or without spaces between (`m20 100 l300 100`: "m20" read as one
/// word moved every later point by the other axis's shift).
fn drawing_tokens(d: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut number = String::new();
    let flush = |n: &mut String, out: &mut Vec<String>| {
        if !n.is_empty() {
            out.push(std::mem::take(n));
        }
    };
    for c in d.chars() {
        if c.is_ascii_digit() || c == '.' || (c == '-' && number.is_empty()) {
            number.push(c);
        } else {
            flush(&mut number, &mut out);
            if c.is_ascii_alphabetic() {
                out.push(c.to_string());
            } else if c == '-' {
                number.push(c);
            }
        }
    }
    flush(&mut number, &mut out);
    out
}

/// The points that place an event (`\pos`: one, `\move`: two), from the
/// first override block that holds them.
fn placed(block: &str) -> Option<Vec<(f64, f64)>> {
    for (tag, n) in [("\\pos(", 2), ("\\move(", 4)] {
        let Some(at) = block.find(tag) else { continue };
        let inside = &block[at + tag.len()..at + block[at..].find(')')?];
        let v: Vec<f64> = inside.split(',').take(n).map(|a| a.trim().parse().ok()).collect::<Option<_>>()?;
        return (v.len() == n).then(|| v.chunks(2).map(|p| (p[0], p[1])).collect());
    }
    None
}

/// How much further than the crop's shift `points` move to come inside
/// the picture, on each axis where all of them lie in a bar (inside the
/// frame, outside the picture, on one side).
fn into_picture(points: &[(f64, f64)], f: &Frame) -> (f64, f64) {
    let axis = |v: &dyn Fn(&(f64, f64)) -> f64, s: f64, size: f64, c: f64| {
        let deltas: Vec<f64> = points
            .iter()
            .map(|p| (v(p), v(p) - s))
            .map(|(o, n)| if (0.0..=size).contains(&o) { n.clamp(0.0, c) - n } else { 0.0 })
            .collect();
        let same_side = deltas.iter().all(|d| *d > 0.0) || deltas.iter().all(|d| *d < 0.0);
        let widest = deltas.iter().copied().fold(0.0, |a: f64, d| if d.abs() > a.abs() { d } else { a });
        if same_side { widest } else { 0.0 }
    };
    (axis(&|p| p.0, f.shift.0, f.size.0, f.canvas.0), axis(&|p| p.1, f.shift.1, f.size.1, f.canvas.1))
}

/// A block's first alignment (`\an`, or SSA's `\a` as numpad).
fn alignment_tag(block: &str) -> Option<u32> {
    block.split('\\').find_map(|t| {
        if let Some(n) = t.strip_prefix("an") {
            return n.trim().parse().ok().filter(|n| (1..=9).contains(n));
        }
        t.strip_prefix('a').and_then(|n| n.trim().parse().ok()).and_then(legacy_alignment)
    })
}

/// SSA's alignment (1–3 bottom, +4 top, +8 middle) as numpad.
fn legacy_alignment(a: u32) -> Option<u32> {
    let column = a & 3;
    let row = if a & 4 != 0 {
        6
    } else if a & 8 != 0 {
        3
    } else {
        0
    };
    (column != 0).then_some(column + row)
}

/// Alignment `a` turned to hang its line into the picture from the edge a
/// move of `into` brought it to: raised to the bottom edge (`into.1` < 0),
/// a line hangs above it; lowered to the top edge, below; moved to the
/// right edge, to its left; to the left edge, to its right.
fn hung_inward(a: u32, into: (f64, f64)) -> u32 {
    let (mut column, mut row) = ((a - 1) % 3, (a - 1) / 3);
    if into.1 < 0.0 {
        row = 0;
    } else if into.1 > 0.0 {
        row = 2;
    }
    if into.0 < 0.0 {
        column = 2;
    } else if into.0 > 0.0 {
        column = 0;
    }
    row * 3 + column + 1
}

/// How far a line's text goes when its alignment turns from `from` to
/// `to` about the same `anchor`, for its clip to go along (a clip left
/// where the text was cut all of it): a line hung below its anchor and
/// turned to hang above it goes up by its height. The text's size is not
/// known here; on each turned axis it is read from the `clip` (the corners
/// of its bounding box) as the box that holds the text, centred where the
/// clip is: a clip drawn around its line keeps its margins. A clip that
/// is not drawn around the line (wider than [`TIGHT_CLIP`] of the `frame`,
/// the anchor farther from it than its own size, or on the side away from
/// the text) tells nothing of it and stays with the crop's
/// move: read as the text's box, a clip over the whole frame was moved off
/// the picture, and took the line with it.
fn turned_text_shift(
    from: u32,
    to: u32,
    anchor: (f64, f64),
    clip: ((f64, f64), (f64, f64)),
    frame: (f64, f64),
) -> (f64, f64) {
    // Where the text starts from its anchor, in text sizes: 0 after it
    // (left or top anchor), −½ centred, −1 before it (right or bottom).
    let starts = |a: u32| {
        let (column, row) = ((a - 1) % 3, (a - 1) / 3);
        (-0.5 * column as f64, -0.5 * (2 - row) as f64)
    };
    let (s0, s1) = (starts(from), starts(to));
    let axis = |s0: f64, s1: f64, p: f64, lo: f64, hi: f64, whole: f64| {
        // (A clip drawn around the glyphs starts a little past an anchor at
        // the line's edge: the anchor may lie a box's height outside it.)
        let extent = hi - lo;
        if s0 == s1 || extent > TIGHT_CLIP * whole || p < lo - extent || p > hi + extent {
            return 0.0;
        }
        // The text's centre at the clip's: p + (s0 + ½) size.
        let centre = (lo + hi) / 2.0;
        let size = if s0 == -0.5 { hi - lo } else { (centre - p) / (s0 + 0.5) };
        if size > 0.0 { (s1 - s0) * size } else { 0.0 }
    };
    let ((x0, y0), (x1, y1)) = clip;
    (axis(s0.0, s1.0, anchor.0, x0, x1, frame.0), axis(s0.1, s1.1, anchor.1, y0, y1, frame.1))
}

/// The largest share of the frame a clip drawn around one line takes, on
/// the axis its line turns on (see [`turned_text_shift`]).
const TIGHT_CLIP: f64 = 0.25;

/// The bounding box of a block's first `\clip` (a rectangle, or a vector
/// clip's points), in script units. (An `\iclip` is a hole: its box says
/// nothing of where the text is.)
fn clip_box(block: &str) -> Option<((f64, f64), (f64, f64))> {
    let at = block.find("\\clip(").map(|a| a + 6)?;
    let inside = &block[at..at + block[at..].find(')')?];
    let args: Vec<&str> = inside.split(',').map(str::trim).collect();
    let (k, numbers): (f64, Vec<f64>) = match args[..] {
        [_, _, _, _] => (1.0, args.iter().map(|a| a.parse().ok()).collect::<Option<_>>()?),
        [s, d] => (
            2f64.powi(s.parse::<i32>().ok()?.max(1) - 1),
            drawing_tokens(d).iter().filter_map(|w| w.parse().ok()).collect(),
        ),
        [d] => (1.0, drawing_tokens(d).iter().filter_map(|w| w.parse().ok()).collect()),
        _ => return None,
    };
    let (xs, ys): (Vec<f64>, Vec<f64>) = numbers.chunks_exact(2).map(|p| (p[0] / k, p[1] / k)).unzip();
    let span = |v: &[f64]| {
        v.iter().fold(None, |m: Option<(f64, f64)>, &x| Some(m.map_or((x, x), |(a, b)| (a.min(x), b.max(x)))))
    };
    let ((x0, x1), (y0, y1)) = (span(&xs)?, span(&ys)?);
    Some(((x0, y0), (x1, y1)))
}

/// The alignment of each style (numpad), by its name in lower case less a
/// leading `*`: the `Alignment` field of `[V4+ Styles]`, or of SSA's
/// `[V4 Styles]` (its own numbering).
fn style_alignments(script: &str) -> std::collections::HashMap<String, u32> {
    let mut out = std::collections::HashMap::new();
    let (mut section, mut fields): (String, Vec<String>) = (String::new(), Vec::new());
    for line in script.lines() {
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.starts_with('[') {
            section = line.to_ascii_lowercase();
            continue;
        }
        let legacy = section == "[v4 styles]";
        if !legacy && section != "[v4+ styles]" {
            continue;
        }
        if let Some(f) = line.strip_prefix("Format:") {
            fields = f.split(',').map(|f| f.trim().to_ascii_lowercase()).collect();
        } else if let Some(v) = line.strip_prefix("Style:") {
            let values: Vec<&str> = v.split(',').map(str::trim).collect();
            let get = |name: &str| fields.iter().position(|f| f == name).and_then(|i| values.get(i).copied());
            let alignment = get("alignment").and_then(|a| a.parse::<u32>().ok());
            let alignment = if legacy { alignment.and_then(legacy_alignment) } else { alignment };
            if let (Some(name), Some(a)) = (get("name"), alignment.filter(|a| (1..=9).contains(a))) {
                out.insert(name.trim_start_matches('*').to_lowercase(), a);
            }
        }
    }
    out
}

/// One override block's tags, their positions moved by `shift`, clips by
/// `clip_shift` (a tag whose positions are no numbers kept as it is).
fn move_block(block: &str, shift: (f64, f64), clip_shift: (f64, f64)) -> String {
    let mut out = String::with_capacity(block.len());
    let mut rest = block;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let tag = ["\\pos(", "\\move(", "\\org(", "\\iclip(", "\\clip("].into_iter().find(|t| rest.starts_with(t));
        let (Some(tag), Some(end)) = (tag, rest.find(')')) else {
            out.push('\\');
            rest = &rest[1..];
            continue;
        };
        let inside = &rest[tag.len()..end];
        let args: Vec<&str> = inside.split(',').map(str::trim).collect();
        let moved = match (tag, args.len()) {
            ("\\move(", 4 | 6) | ("\\pos(" | "\\org(", 2) => points(&args, shift, false),
            ("\\clip(" | "\\iclip(", 4) => points(&args, clip_shift, true),
            ("\\clip(" | "\\iclip(", 1 | 2) => drawing(&args, clip_shift),
            _ => None,
        };
        out.push_str(tag);
        out.push_str(&moved.unwrap_or_else(|| inside.to_string()));
        out.push(')');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `x, y` pairs moved (a `\move`'s times, after its four, kept); whole
/// numbers for a clip's rectangle, which libass reads as such. `None`
/// where one is no number.
fn points(args: &[&str], shift: (f64, f64), whole: bool) -> Option<String> {
    let mut out = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        if i >= 4 {
            out.push(a.to_string());
            continue;
        }
        let v = a.parse::<f64>().ok()? - if i % 2 == 0 { shift.0 } else { shift.1 };
        out.push(number(if whole { v.round() } else { v }));
    }
    Some(out.join(","))
}

/// A vector clip (`[scale,] m x y l x y …`), its points moved: at scale
/// `s` its coordinates are 2^(s−1) times the script's. `None` where its
/// scale is no number.
fn drawing(args: &[&str], shift: (f64, f64)) -> Option<String> {
    let (scale, commands) = match args {
        [s, d] => (s.parse::<i32>().ok()?, *d),
        [d] => (1, *d),
        _ => return None,
    };
    let k = 2f64.powi(scale.max(1) - 1);
    let mut coordinate = 0usize;
    let moved: Vec<String> = drawing_tokens(commands)
        .into_iter()
        .map(|w| match w.parse::<f64>() {
            Ok(v) => {
                let axis = coordinate % 2;
                coordinate += 1;
                number(v - k * if axis == 0 { shift.0 } else { shift.1 })
            }
            Err(_) => w,
        })
        .collect();
    let moved = moved.join(" ");
    Some(if args.len() == 2 { format!("{scale},{moved}") } else { moved })
}

/// `v` as a script writes it: whole where it is, else to two decimals.
fn number(v: f64) -> String {
    let r = (v * 100.0).round() / 100.0;
    if r.fract() == 0.0 { format!("{}", r as i64) } else { format!("{r}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "\u{feff}[Script Info]\r\nScriptType: v4.00+\r\nPlayResX: 1920\r\nPlayResY: 1080\r\n\r\n\
        [V4+ Styles]\r\nFormat: Name, Fontname, Fontsize, MarginV\r\nStyle: Default,Arial,60,40\r\n\r\n\
        [Events]\r\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\r\n\
        Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\pos(960,300)\\fs40}A sign, with a comma\r\n\
        Dialogue: 0,0:00:03.00,0:00:04.00,Default,,0,0,0,,{\\move(100,200,300,400,0,500)\\org(5,150)}Moving\r\n\
        Dialogue: 0,0:00:05.00,0:00:06.00,Default,,0,0,0,,{\\clip(0,140,1920,940)}{\\iclip(2,m 0 280 l 10 300)}Clipped\r\n\
        Dialogue: 0,0:00:07.00,0:00:08.00,Default,,0,0,0,,Plain dialogue\\Nsecond line\r\n";

    #[test]
    fn positions_move_with_the_crop_and_the_canvas_shrinks_to_the_picture() {
        // A 2.40:1 film in a 1080p frame: 140 rows of bar above and below.
        let crop = Rect { width: 1920, height: 800, x: 0, y: 140 };
        let out = recrop(SCRIPT, 1920, 1080, crop).unwrap();
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(lines[2..4], ["PlayResX: 1920", "PlayResY: 800"]);
        assert!(out.contains("{\\pos(960,160)\\fs40}A sign, with a comma\r\n"), "{out}");
        assert!(out.contains("{\\move(100,60,300,260,0,500)\\org(5,10)}Moving"), "{out}");
        assert!(out.contains("{\\clip(0,0,1920,800)}{\\iclip(2,m 0 0 l 10 20)}Clipped"), "{out}");
        assert!(out.contains(",,Plain dialogue\\Nsecond line\r\n"), "{out}");
        assert!(out.contains("Style: Default,Arial,60,40\r\n"), "styles untouched");
        // Nothing to move: the script as it was.
        assert_eq!(recrop(SCRIPT, 1920, 1080, Rect::full(1920, 1080)).unwrap(), SCRIPT);
    }

    #[test]
    fn a_line_placed_in_a_bar_comes_to_the_pictures_edge() {
        let script = "[Script Info]\nPlayResX: 320\nPlayResY: 240\n\n[Events]\n\
                      Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n\
                      Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\pos(160,225)}In the bottom bar\n\
                      Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\move(160,5,160,100)}From the top bar\n\
                      Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\an8\\pos(160,215)\\clip(0,212,320,240)}Hung\n\
                      Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\move(160,270,160,-40)}Scroll\n\
                      Dialogue: 0,0:00:01.00,0:00:09.00,Default,,0,0,0,Scroll up;40;220;20,Credits\n\
                      Dialogue: 0,0:00:01.00,0:00:09.00,Default,,0,0,0,Scroll down;0;0;20;8,Whole\n\
                      Dialogue: 0,0:00:01.00,0:00:09.00,Default,,0,0,0,Scroll up;2;20;20,Top bar\n\
                      Dialogue: 0,0:00:01.00,0:00:09.00,Default,,0,0,0,Scroll up;235;215;20,Bottom bar\n";
        let out = recrop(script, 320, 240, Rect { width: 320, height: 180, x: 0, y: 30 }).unwrap();
        assert!(out.contains("{\\pos(160,180)}In the bottom bar"), "{out}");
        // Into the picture from the bar: moved by the crop alone.
        assert!(out.contains("{\\move(160,-25,160,70)}From the top bar"), "{out}");
        // Hung below the edge it came to: hung above it, its clip along.
        // Its clip (3 rows above the anchor, 25 below) read as the text's
        // box, 22 high, centred on the clip: the text goes up 22, the clip
        // with it.
        assert!(out.contains("{\\an2}{\\an8\\pos(160,180)\\clip(0,155,320,183)}Hung"), "{out}");
        // A scroll from below the frame to above it: as it was, less the crop.
        assert!(out.contains("{\\move(160,240,160,-70)}Scroll"), "{out}");
        // A scroll's rows move with the picture and stay in it; a scroll
        // over the whole height stays one.
        assert!(out.contains(",0,0,0,Scroll up;10;180;20,Credits\n"), "{out}");
        assert!(out.contains(",0,0,0,Scroll down;0;0;20;8,Whole\n"), "{out}");
        // A band in a bar comes into the picture whole.
        assert!(out.contains(",0,0,0,Scroll up;0;18;20,Top bar\n"), "{out}");
        assert!(out.contains(",0,0,0,Scroll up;180;160;20,Bottom bar\n"), "{out}");
    }

    #[test]
    fn tags_written_loosely_move_as_libass_reads_them() {
        let script = "[Script Info]\nPlayResX: 320\nPlayResY: 240\n\n[Events]\n\
                      Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n\
                      Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\pos (160,100)\\org\t(5,50)}Spaced \\pos (1,2)\n\
                      Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\clip(m20 100 l300 100 300 130 -5 130)}Tight\n";
        let out = recrop(script, 320, 240, Rect { width: 320, height: 180, x: 0, y: 30 }).unwrap();
        assert!(out.contains("{\\pos(160,70)\\org(5,20)}Spaced \\pos (1,2)\n"), "the line's text is its own: {out}");
        assert!(out.contains("{\\clip(m 20 70 l 300 70 300 100 -5 100)}Tight"), "{out}");
        assert_eq!(drawing_tokens("m20 100l-3.5-4"), ["m", "20", "100", "l", "-3.5", "-4"]);
    }

    #[test]
    fn a_turned_lines_clip_goes_where_its_text_goes() {
        // Hung right of its anchor in the left bar, turned to hang left of
        // it: the clip (2 before the anchor, 42 after: a text 40 wide with
        // a margin of 2) goes left by 40.
        let frame = (320.0, 240.0);
        assert_eq!(turned_text_shift(4, 6, (10.0, 100.0), ((8.0, 90.0), (52.0, 110.0)), frame), (-40.0, 0.0));
        // Centred on its anchor, turned to hang above it: half the clip's height.
        assert_eq!(turned_text_shift(5, 2, (160.0, 220.0), ((0.0, 210.0), (320.0, 230.0)), frame), (0.0, -10.0));
        // A clip not around the line (beside its anchor, or over the whole
        // frame) tells nothing of it: it moves with the crop alone.
        assert_eq!(turned_text_shift(8, 2, (160.0, 220.0), ((0.0, 200.0), (320.0, 210.0)), frame), (0.0, 0.0));
        assert_eq!(turned_text_shift(8, 2, (160.0, 215.0), ((0.0, 0.0), (320.0, 240.0)), frame), (0.0, 0.0));
        // Drawn around the glyphs, a little below a top anchor: the text's
        // box read from it all the same.
        assert_eq!(turned_text_shift(8, 2, (160.0, 215.0), ((0.0, 218.0), (320.0, 238.0)), frame), (0.0, -26.0));
        // A vector clip's box, in script units at its scale.
        assert_eq!(clip_box("\\an8\\clip(2,m 0 424 l 640 424 640 480 0 480)"), Some(((0.0, 212.0), (320.0, 240.0))));
        assert_eq!(clip_box("\\iclip(1,2,3,4)"), None);
        assert_eq!(clip_box("\\pos(1,2)"), None);
        let script = "[Script Info]\nPlayResX: 320\nPlayResY: 240\n\n[Events]\n\
                      Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n\
                      Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\an8\\pos(160,215)\\clip(2,m 0 424 l 640 424 640 480 0 480)}Hung\n";
        let out = recrop(script, 320, 240, Rect { width: 320, height: 180, x: 0, y: 30 }).unwrap();
        assert!(out.contains("{\\an2}{\\an8\\pos(160,180)\\clip(2,m 0 310 l 640 310 640 366 0 366)}Hung"), "{out}");
    }

    #[test]
    fn a_line_in_a_bar_hangs_into_the_picture_by_its_styles_alignment() {
        let script = "[Script Info]\nPlayResX: 320\nPlayResY: 240\n\n[V4+ Styles]\n\
                      Format: Name, Fontname, Fontsize, Alignment\nStyle: Top,Arial,20,8\nStyle: *Default,Arial,20,2\n\n\
                      [Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n\
                      Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\pos(160,10)}Bottom-aligned in the top bar\n\
                      Dialogue: 0,0:00:01.00,0:00:02.00,Top,,0,0,0,,{\\pos(160,225)}Top-aligned in the bottom bar\n\
                      Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\a6\\pos(160,225)}SSA top\n\
                      Dialogue: 0,0:00:01.00,0:00:02.00,Top,,0,0,0,,{\\pos(0,230)\\p1}m 0 0 l 320 0 320 10 0 10{\\p0}\n";
        let out = recrop(script, 320, 240, Rect { width: 320, height: 180, x: 0, y: 30 }).unwrap();
        assert!(out.contains(",{\\an8}{\\pos(160,0)}Bottom-aligned in the top bar"), "{out}");
        assert!(out.contains(",{\\an2}{\\pos(160,180)}Top-aligned in the bottom bar"), "{out}");
        assert!(out.contains(",{\\an2}{\\a6\\pos(160,180)}SSA top"), "{out}");
        // A style named in another case, or none of the script's: as
        // libass reads them.
        let script = script
            .replace(",Default,", ",default,")
            .replace("Style: *Default,Arial,20,2", "Style: *Default,Arial,20,8");
        let out2 = recrop(&script, 320, 240, Rect { width: 320, height: 180, x: 0, y: 30 }).unwrap();
        assert!(out2.contains(",{\\an2}{\\a6\\pos(160,180)}SSA top"), "{out2}");
        let nameless = script.replace("default,,0,0,0,,{\\pos(160,10)}", "Nope,,0,0,0,,{\\pos(160,225)}");
        let out3 = recrop(&nameless, 320, 240, Rect { width: 320, height: 180, x: 0, y: 30 }).unwrap();
        assert!(out3.contains(",{\\an2}{\\pos(160,180)}Bottom-aligned in the top bar"), "{out3}");
        // A drawing masking a bar: moved by the crop alone.
        assert!(out.contains(",{\\pos(0,200)\\p1}m 0 0"), "{out}");
    }

    #[test]
    fn a_script_of_another_canvas_moves_in_its_own_units() {
        // Authored at 640 wide for a 1920x1080 video, without PlayResY.
        let script = "[Script Info]\nPlayResX: 640\n[Events]\nFormat: Layer, Start, End, Style, Text\n\
                      Dialogue: 0,0:00:01.00,0:00:02.00,Default,{\\pos(320,100)\\clip(0,100.4,640,300)}x\n\
                      Comment: 0,0:00:01.00,0:00:02.00,Default,{\\pos($x,$y)}template\n\
                      Dialogue: 0,0:00:01.00,0:00:02.00,Default,{\\pos($x,$y)}x\n";
        let out = recrop(script, 1920, 1080, Rect { width: 1920, height: 800, x: 0, y: 140 }).unwrap();
        // 640 wide reads as 640x480: 140 rows are 62.22 of its units; its
        // canvas (then 640x356, whole) is stated, so that the player does
        // not derive it again from the width; a clip's rectangle in whole
        // numbers; a template's positions, no numbers, as they are.
        assert!(out.contains("{\\pos(320,37.78)\\clip(0,38,640,238)}x"), "{out}");
        assert!(out.starts_with("[Script Info]\nPlayResY: 356\nPlayResX: 640\n"), "{out}");
        assert!(out.contains("Comment: 0,0:00:01.00,0:00:02.00,Default,{\\pos($x,$y)}template\n"), "{out}");
        assert!(out.contains(",Default,{\\pos($x,$y)}x\n"), "{out}");
        // None at all: 384x288, stated.
        let out = recrop("[Script Info]\nTitle: t\n", 1920, 1080, Rect { width: 1920, height: 800, x: 0, y: 140 });
        assert_eq!(out.unwrap(), "[Script Info]\nPlayResX: 384\nPlayResY: 213\nTitle: t\n");
    }
}
