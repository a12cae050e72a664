//! Config files: bounded, strict YAML loading with errors that say where.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::de::DeserializeOwned;

/// Largest config file accepted. The upstream snmp.yml is about 1.4 MB;
/// generated files for many MIBs reach tens of MB.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024 * 1024;
/// Deepest nesting of mappings/sequences accepted before deserialising.
pub const MAX_NESTING: usize = 64;
/// Most alias references (`*name`) accepted in one document.
pub const MAX_ALIASES: usize = 1000;

/// Why a config file could not be loaded. The message names the file, and
/// for syntax or schema errors the line, column and key path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: file is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path}: not valid UTF-8 at line {line}, column {column}")]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}:{location}{key}{message}")]
    Schema {
        path: PathBuf,
        location: Location,
        key: KeyPath,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// `line:column: ` when known.
#[derive(Debug, Clone, Default)]
pub struct Location(pub Option<(usize, usize)>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((l, c)) => write!(f, "{l}:{c}: "),
            None => f.write_str(" "),
        }
    }
}

/// `at key a.b.c: ` when known.
#[derive(Debug, Clone, Default)]
pub struct KeyPath(pub String);

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() || self.0 == "." {
            Ok(())
        } else {
            write!(f, "at key {}: ", self.0)
        }
    }
}

impl ConfigError {
    /// An error found after parsing, by a validation pass.
    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// Reads and parses a YAML file into `T`, rejecting oversized, non-UTF-8,
/// too deeply nested or alias-bombed documents before deserialising.
pub fn load_yaml_file<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = read_config_text(path)?;
    parse_yaml(path, &text)
}

/// Reads a config file as UTF-8 text within [`MAX_CONFIG_BYTES`].
pub fn read_config_text(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let io_err = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if meta.is_dir() {
        return Err(ConfigError::Io {
            path: path.to_owned(),
            source: std::io::Error::other("is a directory"),
        });
    }
    let mut bytes = Vec::new();
    // Read at most one byte more than the limit: the size in metadata can lie (/proc, pipes).
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
            size: meta.len().max(bytes.len() as u64),
            limit: MAX_CONFIG_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let (line, column) = line_col(valid);
        ConfigError::NotUtf8 {
            path: path.to_owned(),
            line,
            column,
        }
    })
}

fn line_col(prefix: &[u8]) -> (usize, usize) {
    let line = prefix.iter().filter(|b| **b == b'\n').count() + 1;
    let column = prefix.len()
        - prefix
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, column)
}

/// Parses YAML text (already read from `path`) into `T`.
pub fn parse_yaml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    check_shape(path, text)?;
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let key = err.path().to_string();
        let inner = err.into_inner();
        let location = inner.location().map(|l| (l.line(), l.column()));
        let mut message = inner.to_string();
        // serde_norway appends " at line L column C"; we print the location up front.
        if let Some(pos) = message.find(" at line ") {
            message.truncate(pos);
        }
        ConfigError::Schema {
            path: path.to_owned(),
            location: Location(location),
            key: KeyPath(key),
            message,
        }
    })
}

/// Scans the YAML event stream to bound nesting and alias use before
/// deserialising, so hostile files fail fast with a clear message.
fn check_shape(path: &Path, text: &str) -> Result<(), ConfigError> {
    let mut depth = 0usize;
    let mut aliases = 0usize;
    for (lineno, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            continue;
        }
        // Flow collections nest on one line: count brackets outside quotes.
        let mut in_single = false;
        let mut in_double = false;
        let mut prev = ' ';
        for (col, c) in line.chars().enumerate() {
            match c {
                '\'' if !in_double => in_single = !in_single,
                '"' if !in_single && prev != '\\' => in_double = !in_double,
                '#' if !in_single && !in_double && (prev == ' ' || col == 0) => break,
                '[' | '{' if !in_single && !in_double => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(ConfigError::Syntax {
                            path: path.to_owned(),
                            line: lineno + 1,
                            column: col + 1,
                            message: format!("nesting deeper than {MAX_NESTING} levels"),
                        });
                    }
                }
                ']' | '}' if !in_single && !in_double => depth = depth.saturating_sub(1),
                '*' if !in_single
                    && !in_double
                    && (prev == ' ' || prev == '[' || prev == ',' || col == 0) =>
                {
                    aliases += 1;
                    if aliases > MAX_ALIASES {
                        return Err(ConfigError::Syntax {
                            path: path.to_owned(),
                            line: lineno + 1,
                            column: col + 1,
                            message: format!("more than {MAX_ALIASES} aliases"),
                        });
                    }
                }
                _ => {}
            }
            prev = c;
        }
        // Block nesting shows as indentation; allow generous indents per level.
        let indent = line.len() - trimmed.len();
        if !trimmed.is_empty() && indent > MAX_NESTING * 8 {
            return Err(ConfigError::Syntax {
                path: path.to_owned(),
                line: lineno + 1,
                column: indent + 1,
                message: "indentation too deep".to_owned(),
            });
        }
    }
    Ok(())
}

/// The current config of an exporter: swapped whole on a successful reload,
/// kept on a failed one. Readers get a cheap `Arc` snapshot.
pub struct ConfigCell<T> {
    current: RwLock<Arc<T>>,
}

impl<T> ConfigCell<T> {
    pub fn new(value: T) -> Self {
        ConfigCell {
            current: RwLock::new(Arc::new(value)),
        }
    }

    /// A snapshot of the current config.
    pub fn get(&self) -> Arc<T> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the config.
    pub fn set(&self, value: T) {
        let value = Arc::new(value);
        match self.current.write() {
            Ok(mut guard) => *guard = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

/// A Prometheus-style duration (`5s`, `1m30s`, `250ms`, `1h`, `2d`, `1w`, `1y`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PromDuration(pub std::time::Duration);

impl PromDuration {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "0" {
            return Ok(PromDuration(std::time::Duration::ZERO));
        }
        if s.is_empty() {
            return Err("empty duration".to_owned());
        }
        let mut total_ms: u128 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("not a valid duration string: {s:?}"));
            }
            let n: u128 = rest[..digits]
                .parse()
                .map_err(|_| format!("not a valid duration string: {s:?}"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let ms: u128 = match unit {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "w" => 604_800_000,
                "y" => 31_536_000_000,
                _ => {
                    return Err(format!(
                        "not a valid duration string: {s:?} (unknown unit {unit:?})"
                    ))
                }
            };
            total_ms = total_ms
                .checked_add(
                    n.checked_mul(ms)
                        .ok_or_else(|| format!("duration out of range: {s:?}"))?,
                )
                .ok_or_else(|| format!("duration out of range: {s:?}"))?;
        }
        let ms = u64::try_from(total_ms).map_err(|_| format!("duration out of range: {s:?}"))?;
        Ok(PromDuration(std::time::Duration::from_millis(ms)))
    }
}

impl fmt::Display for PromDuration {
    /// Formats as Prometheus does (`1m30s`, `5s`, `250ms`, `0s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        let units: [(u128, &str); 7] = [
            (31_536_000_000, "y"),
            (604_800_000, "w"),
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1000, "s"),
            (1, "ms"),
        ];
        for (size, name) in units {
            if ms >= size {
                write!(f, "{}{}", ms / size, name)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl<'de> serde::Deserialize<'de> for PromDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PromDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for PromDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        modules: std::collections::BTreeMap<String, Module>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Module {
        prober: String,
        #[serde(default)]
        timeout: Option<PromDuration>,
    }

    fn p() -> PathBuf {
        PathBuf::from("test.yml")
    }

    #[test]
    fn unknown_key_names_file_line_and_path() {
        let text = "modules:\n  http_2xx:\n    prober: http\n    timeot: 5s\n";
        let err = parse_yaml::<Doc>(&p(), text).unwrap_err().to_string();
        assert!(err.starts_with("test.yml:4:"), "{err}");
        assert!(err.contains("modules.http_2xx"), "{err}");
        assert!(err.contains("timeot"), "{err}");
    }

    #[test]
    fn bad_duration_is_reported() {
        let text = "modules:\n  a:\n    prober: http\n    timeout: 5x\n";
        let err = parse_yaml::<Doc>(&p(), text).unwrap_err().to_string();
        assert!(err.contains("unknown unit"), "{err}");
    }

    #[test]
    fn deep_nesting_is_rejected_fast() {
        let text = format!("modules: {}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse_yaml::<Doc>(&p(), &text).unwrap_err().to_string();
        assert!(err.contains("nesting deeper"), "{err}");
    }

    #[test]
    fn alias_bomb_is_rejected() {
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let mut prev = "a".to_string();
        for i in 0..9 {
            let name = format!("b{i}");
            text.push_str(&format!(
                "{name}: &{name} [{}]\n",
                vec![format!("*{prev}"); 9].join(",")
            ));
            prev = name;
        }
        let start = std::time::Instant::now();
        let res = parse_yaml::<serde_norway::Value>(&p(), &text);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        assert!(res.is_err());
    }

    #[test]
    fn non_utf8_names_position() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.yml");
        std::fs::write(&f, b"modules:\n  a\xff: 1\n").unwrap();
        let err = load_yaml_file::<Doc>(&f).unwrap_err().to_string();
        assert!(err.contains("not valid UTF-8 at line 2, column 4"), "{err}");
    }

    #[test]
    fn durations() {
        for (s, ms) in [
            ("5s", 5000),
            ("1m30s", 90_000),
            ("250ms", 250),
            ("0", 0),
            ("1h", 3_600_000),
        ] {
            assert_eq!(PromDuration::parse(s).unwrap().0.as_millis(), ms);
        }
        assert_eq!(PromDuration::parse("90s").unwrap().to_string(), "1m30s");
        assert!(PromDuration::parse("5").is_err());
        assert!(PromDuration::parse("s").is_err());
        assert!(PromDuration::parse("99999999999999999999y").is_err());
    }
}
