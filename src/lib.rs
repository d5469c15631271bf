//! drapto turns MKV rips of DVDs, Blu-rays and UHD Blu-rays into small,
//! high-quality MKVs: video SVT-AV1 (10-bit), audio Opus, everything else
//! (subtitles, chapters, attachments, tags) carried over.
//!
//! Data flows one way:
//!
//! ```text
//! tools::ffprobe ─► analysis ─► plan ─► encode (video, audio) ─► mux ─► validate ─► report
//! ```
//!
//! * [`config`] — layered settings (defaults < TOML < `DRAPTO_*` < flags).
//! * [`tools`] — finding ffmpeg/ffprobe/mediainfo, their capabilities, typed
//!   wrappers and the child-process runner.
//! * [`analysis`] — one [`analysis::Analysis`] per input.
//! * [`plan`] — the decisions for one file ([`plan::EncodePlan`]).
//! * [`encode`], [`mux`], [`validate`] — carrying the plan out ([`step`]:
//!   running each of their ffmpegs).
//! * [`pipeline`] — one file end to end, and the batch loop ([`breaker`]:
//!   its circuit breaker).
//! * [`events`] and [`report`] — what happened, for people and programs.
//! * [`job`] — the per-input work folder.
//! * [`discover`] — finding the rips; [`sidecars`] — the files beside them.
//! * [`commands`] — one module per CLI command; `main.rs` only dispatches.

pub mod analysis;
pub mod breaker;
pub mod cancel;
pub mod cli;
pub mod commands;
pub mod config;
pub mod discover;
pub mod encode;
pub mod error;
pub mod events;
pub mod guard;
pub mod hash;
pub mod job;
pub mod matroska;
pub mod mux;
pub mod origin;
pub mod pipeline;
pub mod plan;
pub mod platform;
pub mod report;
pub mod sidecars;
pub mod step;
pub mod summary;
pub mod tools;
pub mod units;
pub mod validate;
pub mod watch;

pub use error::{Error, Result};
