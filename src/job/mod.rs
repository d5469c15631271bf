//! Jobs: the per-input work folder under `temp_dir`, where every intermediate
//! file lives until the output is validated, and the state files in it.

pub mod state;
mod workdir;

pub use workdir::WorkDir;
