//! Jobs: the per-input work folder under `temp_dir`, where every intermediate
//! file lives until the output is validated.

mod workdir;

pub use workdir::WorkDir;
