//! Encoding: carries out an [`crate::plan::EncodePlan`] with ffmpeg.
//!
//! `video` encodes the picture in one go (standard path), `chunked` in
//! VMAF-targeted segments, `audio` each audio track; `hold` and
//! `hdr10plus` put back what the encoders drop (a held last frame's
//! duration, HDR10+ metadata). Each ffmpeg runs through [`crate::step`].

pub mod audio;
pub mod chunked;
pub mod hdr10plus;
pub mod hold;
pub mod video;
