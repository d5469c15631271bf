//! Small value types used by settings: `"auto"`-or-value, byte sizes with
//! units, the chunked-encoding switch, and the compiled file pattern.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A setting that is either `"auto"` (drapto decides) or an explicit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Auto<T> {
    #[default]
    Auto,
    Value(T),
}

impl<T> Auto<T> {
    /// The explicit value, if one was given.
    pub fn value(&self) -> Option<&T> {
        match self {
            Auto::Auto => None,
            Auto::Value(v) => Some(v),
        }
    }
}

impl<T: Serialize> Serialize for Auto<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Auto::Auto => s.serialize_str("auto"),
            Auto::Value(v) => v.serialize(s),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Auto<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Text first, so that "auto" is never taken for a path.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<T> {
            Text(String),
            Value(T),
        }
        match Raw::<T>::deserialize(d) {
            Ok(Raw::Text(t)) if t.eq_ignore_ascii_case("auto") => Ok(Auto::Auto),
            Ok(Raw::Text(t)) => {
                let text: de::value::StrDeserializer<'_, D::Error> =
                    de::IntoDeserializer::into_deserializer(t.as_str());
                T::deserialize(text).map(Auto::Value).map_err(|_| {
                    de::Error::custom(format!("expected \"auto\" or a value of the setting's type, found \"{t}\""))
                })
            }
            Ok(Raw::Value(v)) => Ok(Auto::Value(v)),
            Err(_) => Err(de::Error::custom("expected \"auto\" or a value of the setting's type")),
        }
    }
}

/// How interlaced and telecined sources are treated (`processing.interlace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldMode {
    /// Decided per file from idet and the pulldown cadence.
    #[default]
    Auto,
    /// Inverse telecine (field matching, decimation to 4/5 of the frames).
    Ivtc,
    /// bwdif, one frame out per frame in.
    Deinterlace,
    /// The frames as they are.
    None,
}

impl FieldMode {
    pub fn name(self) -> &'static str {
        match self {
            FieldMode::Auto => "auto",
            FieldMode::Ivtc => "ivtc",
            FieldMode::Deinterlace => "deinterlace",
            FieldMode::None => "none",
        }
    }
}

/// What happens to a rip whose mux plan leaves out something the user
/// would lose (`processing.on_loss`): a second video track, tags of such a
/// track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossPolicy {
    /// The file fails at analysis, before anything is encoded.
    #[default]
    Fail,
    /// A warning, and the output goes without it.
    Warn,
}

/// Whether the chunked (VMAF-targeted) path is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChunkedMode {
    /// Chunked when ffmpeg has libvmaf, else standard with a warning.
    #[default]
    Auto,
    /// Always chunked (an error if ffmpeg lacks libvmaf).
    On,
    /// Always the standard path.
    Off,
}

impl Serialize for ChunkedMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ChunkedMode::Auto => s.serialize_str("auto"),
            ChunkedMode::On => s.serialize_bool(true),
            ChunkedMode::Off => s.serialize_bool(false),
        }
    }
}

impl<'de> Deserialize<'de> for ChunkedMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ChunkedMode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false or \"auto\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ChunkedMode, E> {
                Ok(if v { ChunkedMode::On } else { ChunkedMode::Off })
            }
            // (`DRAPTO_ENABLE_CHUNKED_ENCODING=1` arrives as a number.)
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ChunkedMode, E> {
                match v {
                    1 => Ok(ChunkedMode::On),
                    0 => Ok(ChunkedMode::Off),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ChunkedMode, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(-1))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ChunkedMode, E> {
                match v.to_ascii_lowercase().as_str() {
                    "auto" => Ok(ChunkedMode::Auto),
                    "true" | "on" | "yes" | "1" => Ok(ChunkedMode::On),
                    "false" | "off" | "no" | "0" => Ok(ChunkedMode::Off),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A number of bytes, written as an integer or with a unit ("8GiB", "512 MB").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses "8GiB", "512 MB", "100M", "1024".
    pub fn parse(text: &str) -> Option<ByteSize> {
        let t = text.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let num: f64 = num.parse().ok()?;
        let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" => 1e3,
            "kib" => 1024.0,
            "m" | "mb" => 1e6,
            "mib" => 1024.0 * 1024.0,
            "g" | "gb" => 1e9,
            "gib" => 1024.0 * 1024.0 * 1024.0,
            "t" | "tb" => 1e12,
            "tib" => 1024f64.powi(4),
            _ => return None,
        };
        (num >= 0.0).then(|| ByteSize((num * mult).round() as u64))
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of bytes or a size such as \"8GiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// The compiled `input.file_pattern` (case-insensitive).
pub fn file_pattern(glob: &str) -> std::result::Result<globset::GlobMatcher, String> {
    globset::GlobBuilder::new(glob)
        .case_insensitive(true)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("\"{glob}\" is not a valid pattern: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_with_units() {
        assert_eq!(ByteSize::parse("1024"), Some(ByteSize(1024)));
        assert_eq!(ByteSize::parse("8GiB"), Some(ByteSize(8 << 30)));
        assert_eq!(ByteSize::parse("512 MB"), Some(ByteSize(512_000_000)));
        assert_eq!(ByteSize::parse("1.5k"), Some(ByteSize(1500)));
        assert_eq!(ByteSize::parse("ten"), None);
        assert_eq!(ByteSize::parse("5 parsecs"), None);
    }

    #[test]
    fn auto_accepts_auto_or_value() {
        #[derive(Deserialize)]
        struct T {
            a: Auto<u32>,
        }
        let t: T = toml::from_str("a = \"auto\"").unwrap();
        assert_eq!(t.a, Auto::Auto);
        let t: T = toml::from_str("a = 3").unwrap();
        assert_eq!(t.a, Auto::Value(3));
        assert!(toml::from_str::<T>("a = \"lots\"").is_err());
        #[derive(Deserialize)]
        struct P {
            p: Auto<std::path::PathBuf>,
        }
        assert_eq!(toml::from_str::<P>("p = \"auto\"").unwrap().p, Auto::Auto);
        assert_eq!(toml::from_str::<P>("p = \"/x\"").unwrap().p, Auto::Value("/x".into()));
    }

    #[test]
    fn chunked_mode_accepts_bools_and_auto() {
        #[derive(Deserialize)]
        struct T {
            m: ChunkedMode,
        }
        assert_eq!(toml::from_str::<T>("m = true").unwrap().m, ChunkedMode::On);
        assert_eq!(toml::from_str::<T>("m = false").unwrap().m, ChunkedMode::Off);
        assert_eq!(toml::from_str::<T>("m = \"auto\"").unwrap().m, ChunkedMode::Auto);
        assert!(toml::from_str::<T>("m = \"maybe\"").is_err());
    }
}

/// How libvmaf's frame scores are pooled into one (`encoding.vmaf_pool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmafPool {
    /// As libvmaf pools: a low frame weighs more than a high one.
    #[default]
    HarmonicMean,
    Mean,
    Min,
}

/// How the chunked path chooses segments' CRFs (`encoding.chunked_allocation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Allocation {
    /// Together, at an equal rate–quality slope (see
    /// `encode::chunked::allocate`): the film's mean reaches the target with
    /// the fewest bytes, each segment within the band.
    #[default]
    Slope,
    /// Each segment on its own to the target (the design's three tiers).
    Target,
}

/// An ntfy message's priority (`notify.ntfy_priority`): 1–5 or its name,
/// as ntfy takes it (a number in TOML, or a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum NtfyPriority {
    Min = 1,
    Low = 2,
    #[default]
    Default = 3,
    High = 4,
    Max = 5,
}

impl NtfyPriority {
    /// The name ntfy takes in its `Priority` header.
    pub fn name(self) -> &'static str {
        match self {
            NtfyPriority::Min => "min",
            NtfyPriority::Low => "low",
            NtfyPriority::Default => "default",
            NtfyPriority::High => "high",
            NtfyPriority::Max => "max",
        }
    }

    fn parse(s: &str) -> Option<NtfyPriority> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "1" | "min" => NtfyPriority::Min,
            "2" | "low" => NtfyPriority::Low,
            "3" | "default" => NtfyPriority::Default,
            "4" | "high" => NtfyPriority::High,
            "5" | "max" | "urgent" => NtfyPriority::Max,
            _ => return None,
        })
    }
}

impl Serialize for NtfyPriority {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for NtfyPriority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NtfyPriority;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("1–5 or min, low, default, high, max")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NtfyPriority, E> {
                NtfyPriority::parse(v)
                    .ok_or_else(|| E::custom(format!("\"{v}\" is not 1–5 or min, low, default, high, max")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NtfyPriority, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NtfyPriority, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}
