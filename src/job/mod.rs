//! Jobs: the per-input work folder under `temp_dir`, where every intermediate
//! file lives until the output is validated, and the state files in it;
//! and the library's tracking files, kept across jobs ([`tracking`]).

pub mod lock;
pub mod record;
pub mod space;
pub mod state;
pub mod tracking;
mod workdir;

pub use workdir::{JobInfo, WorkDir};
