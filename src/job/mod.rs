//! Jobs: the per-input work folder under `temp_dir`, where every intermediate
//! file lives until the output is validated, and the state files in it.

pub mod lock;
pub mod record;
pub mod space;
pub mod state;
mod workdir;

pub use workdir::{JobInfo, WorkDir};
