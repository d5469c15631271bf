//! The XML that MKVToolNix reads and writes for chapters and tags, as a
//! plain tree of elements: parsed from `mkvextract`, compared, and written
//! back for `mkvmerge --tags`.

use std::fmt::Write;

/// One element: its name, its attributes, its text (leaf elements), its
/// children in order. The attributes matter: binary values (a chapter's
/// `ChapterSegmentUID`, `ChapterProcessPrivate`, a tag's `Binary`) are
/// written as `format="hex"`, and without it mkvmerge reads the digits as
/// base64.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub text: Option<String>,
    pub children: Vec<Element>,
}

impl Element {
    /// A leaf element holding `text`.
    pub fn leaf(name: &str, text: &str) -> Element {
        Element { name: name.into(), attributes: vec![], text: Some(text.into()), children: vec![] }
    }

    /// An element with `children`.
    pub fn node(name: &str, children: Vec<Element>) -> Element {
        Element { name: name.into(), attributes: vec![], text: None, children }
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).and_then(|c| c.text.as_deref())
    }

    /// The document as MKVToolNix reads it.
    pub fn to_document(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let indent = "  ".repeat(depth);
        let attributes: String = self.attributes.iter().map(|(k, v)| format!(" {k}=\"{}\"", escape(v))).collect();
        match (&self.text, self.children.is_empty()) {
            (Some(t), true) => {
                let _ = writeln!(out, "{indent}<{0}{attributes}>{1}</{0}>", self.name, escape(t));
            }
            (None, true) => {
                let _ = writeln!(out, "{indent}<{}{attributes} />", self.name);
            }
            _ => {
                let _ = writeln!(out, "{indent}<{}{attributes}>", self.name);
                for c in &self.children {
                    c.write(out, depth + 1);
                }
                let _ = writeln!(out, "{indent}</{}>", self.name);
            }
        }
    }
}

/// Parses a document into its root element (whitespace between elements
/// and comments dropped).
///
/// A control character in a value (mkvextract writes `&#01;`, which XML
/// 1.0 forbids) is read as itself, and written back the same way. So is a
/// carriage return, which mkvextract writes as it is and an XML reader
/// would turn into a line feed.
pub fn parse(text: &str) -> Result<Element, String> {
    let text = hide_control_references(&keep_carriage_returns(text.trim_start_matches('\u{feff}')));
    let doc = roxmltree::Document::parse(&text).map_err(|e| e.to_string())?;
    Ok(convert(doc.root_element()))
}

/// `text` with each carriage return inside the root element written as a
/// reference, which an XML reader keeps (outside it only whitespace may
/// stand, and there it means nothing).
fn keep_carriage_returns(text: &str) -> String {
    let root = text.match_indices('<').map(|(i, _)| i).find(|&i| !text[i + 1..].starts_with(['?', '!']));
    let end = text.rfind('>');
    match (root, end) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{}{}", &text[..a], text[a..b].replace('\r', "&#13;"), &text[b..])
        }
        _ => text.to_string(),
    }
}

/// Where a control character's reference is parked while the strict
/// parser reads the document: in Unicode's private use plane 15.
const PARKED: u32 = 0xF_0000;

/// `text` with each character reference to a control character that XML
/// forbids (`&#1;`…`&#31;` but tab, line feed and carriage return, decimal
/// or hex) replaced by its parked stand-in.
fn hide_control_references(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("&#") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        let end = tail.find(';').filter(|e| *e <= 8);
        let code = end.and_then(|e| {
            let digits = &tail[..e];
            match digits.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => digits.parse::<u32>().ok(),
            }
        });
        match (code, end) {
            (Some(c @ 1..=31), Some(e)) if !matches!(c, 9 | 10 | 13) => {
                out.push(char::from_u32(PARKED + c).expect("a private use character"));
                rest = &tail[e + 1..];
            }
            _ => {
                out.push_str("&#");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `s` with parked control characters back as themselves.
fn unpark(s: &str) -> String {
    s.chars()
        .map(|c| match u32::from(c).checked_sub(PARKED) {
            Some(n @ 1..=31) => char::from_u32(n).unwrap_or(c),
            _ => c,
        })
        .collect()
}

fn convert(node: roxmltree::Node) -> Element {
    let children: Vec<Element> = node.children().filter(|c| c.is_element()).map(convert).collect();
    let text = if children.is_empty() { Some(unpark(node.text().unwrap_or(""))) } else { None };
    let attributes = node.attributes().map(|a| (a.name().to_string(), a.value().to_string())).collect();
    Element { name: node.tag_name().name().to_string(), attributes, text, children }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // As mkvextract writes them (see `parse`); a carriage return
            // too, which mkvmerge would read as a line feed.
            c if u32::from(c) < 32 && !matches!(c, '\t' | '\n') => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carriage_return_is_kept_both_ways() {
        let e = parse("<?xml version=\"1.0\"?>\r\n<!-- x\r\n -->\r\n<Tags><Tag><Simple><Name>NOTE</Name><String>one\r\ntwo\rthree</String></Simple></Tag></Tags>\r\n").unwrap();
        let value = e.child("Tag").unwrap().child("Simple").unwrap().child_text("String");
        assert_eq!(value, Some("one\r\ntwo\rthree"));
        let written = e.to_document();
        assert!(written.contains("one&#13;\ntwo&#13;three"), "{written}");
        assert_eq!(parse(&written).unwrap(), e);
    }

    #[test]
    fn a_document_round_trips() {
        let doc = "\u{feff}<?xml version=\"1.0\"?>\n<!-- <!DOCTYPE Tags SYSTEM \"matroskatags.dtd\"> -->\n<Tags>\n  <Tag>\n    <Targets />\n    <Simple>\n      <Name>TITLE</Name>\n      <String>Fish &amp; Chips &lt;3</String>\n    </Simple>\n  </Tag>\n</Tags>\n";
        let e = parse(doc).unwrap();
        assert_eq!(e.name, "Tags");
        let tag = e.child("Tag").unwrap();
        assert_eq!(tag.child("Targets").unwrap().text.as_deref(), Some(""));
        assert_eq!(tag.child("Simple").unwrap().child_text("String"), Some("Fish & Chips <3"));
        assert_eq!(parse(&e.to_document()).unwrap(), e);
    }

    #[test]
    fn binary_values_keep_their_format() {
        let doc = "<Chapters><EditionEntry><ChapterAtom><ChapterSegmentUID format=\"hex\">a0a1</ChapterSegmentUID>\
                   </ChapterAtom></EditionEntry></Chapters>";
        let e = parse(doc).unwrap();
        let written = e.to_document();
        assert!(written.contains("<ChapterSegmentUID format=\"hex\">a0a1</ChapterSegmentUID>"), "{written}");
        assert_eq!(parse(&written).unwrap(), e);
    }

    #[test]
    fn a_control_character_in_a_value_is_read_and_written_back() {
        let doc = "<Tags><Tag><Simple><Name>NOTE</Name><String>line&#01;two &#x1F;&#10;&amp;#1;</String></Simple></Tag></Tags>";
        let e = parse(doc).unwrap();
        let value = e.child("Tag").unwrap().child("Simple").unwrap().child_text("String").unwrap().to_string();
        assert_eq!(value, "line\u{1}two \u{1f}\n&#1;");
        let written = e.to_document();
        assert!(written.contains("line&#1;two &#31;"), "{written}");
        assert_eq!(parse(&written).unwrap(), e);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse("<?xml version=\"1.0\"?>\r\n<!-- x\r\n -->\r\n<Tags><Tag>").is_err());
    }
}
