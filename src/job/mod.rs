//! Jobs: the per-input work folder under `temp_dir`, where every intermediate
//! file lives until the output is validated, and the state files in it.

pub mod lock;
pub mod record;
pub mod space;
pub mod state;
mod workdir;

pub use workdir::{JobInfo, WorkDir};

/// 64-bit FNV-1a: a stable, dependency-free hash for folder and lock names
/// and state fingerprints (stable across Rust versions, unlike std's).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
