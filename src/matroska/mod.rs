//! A Matroska file's structure as MKVToolNix reads it, and drapto's rules
//! for carrying it from a rip to its encode.
//!
//! - [`structure`]: title, tracks and their properties, attachments,
//!   chapters and tags of one file.
//! - [`info`]: the segment info `mkvmerge -J` does not show (family,
//!   chapter translations, linked files' names), read from the file.
//! - [`rules`]: what is carried from a source track to its re-encoded
//!   replacement, and every difference drapto makes on purpose.
//! - [`xml`]: MKVToolNix's chapter and tag XML as a plain tree.

pub mod info;
pub mod rules;
pub mod structure;
pub mod xml;
