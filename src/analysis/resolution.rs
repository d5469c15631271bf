//! Resolution classes: they pick the standard path's CRF and the VMAF model.

use serde::Serialize;

/// SD, HD or UHD, as the design defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ResolutionClass {
    Sd,
    Hd,
    Uhd,
}

impl ResolutionClass {
    /// UHD when wider than 1920 or taller than 1080; HD when wider than 1280
    /// or taller than 720; else SD.
    pub fn of(width: u32, height: u32) -> ResolutionClass {
        if width > 1920 || height > 1080 {
            ResolutionClass::Uhd
        } else if width > 1280 || height > 720 {
            ResolutionClass::Hd
        } else {
            ResolutionClass::Sd
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ResolutionClass::Sd => "SD",
            ResolutionClass::Hd => "HD",
            ResolutionClass::Uhd => "UHD",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ResolutionClass::{self, *};

    #[test]
    fn class_boundaries() {
        assert_eq!(ResolutionClass::of(720, 480), Sd);
        assert_eq!(ResolutionClass::of(1280, 720), Sd);
        assert_eq!(ResolutionClass::of(1281, 720), Hd);
        assert_eq!(ResolutionClass::of(1280, 721), Hd);
        assert_eq!(ResolutionClass::of(1920, 1080), Hd);
        assert_eq!(ResolutionClass::of(1921, 1080), Uhd);
        assert_eq!(ResolutionClass::of(1920, 1081), Uhd);
        assert_eq!(ResolutionClass::of(3840, 2160), Uhd);
    }
}
