//! snmp.yml: the two formats snmp_exporter's generator writes.
//!
//! - 0.21 and older ("flat"): the top level maps module names to modules,
//!   each with its own `version`, walk parameters and `auth`.
//! - 0.23 and newer ("split"): a top-level `auths:` map (with `version`
//!   inside each auth) and a `modules:` map; `auth=` picks one per scrape.
//!
//! Files are parsed strictly (unknown keys are errors with file:line:col and
//! the key path) and then compiled into [`Config`] (see `module.rs`), so no
//! parsing or regex compilation happens at scrape time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigie_common::config::{parse_yaml, read_config_text, ConfigError};

use crate::module::{compile, Config};

/// A duration in Go's `time.ParseDuration` syntax (`5s`, `1.5s`, `500ms`,
/// `1m30s`), as snmp_exporter's `timeout` field takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("time: invalid duration {s:?}");
        let mut rest = s.trim();
        if rest == "0" {
            return Ok(GoDuration(Duration::ZERO));
        }
        if rest.starts_with('-') {
            return Err(format!("negative duration {s:?}"));
        }
        rest = rest.strip_prefix('+').unwrap_or(rest);
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total = 0f64;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| format!("time: missing unit in duration {s:?}"))?;
            if num_len == 0 {
                return Err(bad());
            }
            let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let scale = match &rest[..unit_len] {
                "ns" => 1e-9,
                "us" | "µs" | "μs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                u => return Err(format!("time: unknown unit {u:?} in duration {s:?}")),
            };
            rest = &rest[unit_len..];
            total += n * scale;
        }
        if !total.is_finite() || total > 1e9 {
            return Err(format!("duration out of range: {s:?}"));
        }
        Ok(GoDuration(Duration::from_secs_f64(total)))
    }
}

impl std::fmt::Display for GoDuration {
    /// Go's `Duration.String()` for the common cases (`5s`, `1m30s`, `500ms`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        if ms < 1000 {
            return write!(f, "{ms}ms");
        }
        let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
        let s = (ms % 60_000) as f64 / 1000.0;
        if h > 0 {
            write!(f, "{h}h{m}m")?;
        } else if m > 0 {
            write!(f, "{m}m")?;
        }
        write!(f, "{s}s")
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        GoDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for GoDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A secret: read as a string, written back as `<secret>` on /config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Secret(String::deserialize(d)?))
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

/// SNMP credentials: a module's `auth:` (0.21) or an entry of `auths:` (0.23+).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priv_protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priv_password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_name: Option<String>,
    /// Only in the 0.23+ format (in 0.21 the version belongs to the module).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// Walk parameters, inline in a module (both formats) or under `walk_params:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WalkParamsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_repetitions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_unconnected_udp_socket: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_nonincreasing_oids: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthFile>,
}

/// One module as written in snmp.yml.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub walk: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub get: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_repetitions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_unconnected_udp_socket: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_nonincreasing_oids: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walk_params: Option<WalkParamsFile>,
    /// 0.22+ dynamic filters, as the generator copies them from generator.yml.
    #[serde(default, skip_serializing_if = "FiltersFile::is_empty")]
    pub filters: FiltersFile,
}

/// A module's `filters:`: in snmp.yml a list of dynamic filters. The
/// generator.yml layout (`static:` / `dynamic:`) is refused with an
/// explanation, since Go refuses it too and static filters only exist there.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct FiltersFile(pub Vec<DynamicFilterFile>);

impl FiltersFile {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The generator.yml layout, named in the error.
const GENERATOR_FILTERS: &str = "`filters` in snmp.yml is a list of dynamic filters \
     (- oid: ..., targets: [...], values: [...]); `static:`/`dynamic:` is the generator.yml \
     layout: the generator turns static filters into `get:` entries and copies the `dynamic:` \
     list here";

impl<'de> Deserialize<'de> for FiltersFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FiltersFile;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of dynamic filters")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                let list = Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(FiltersFile(list))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                _map: A,
            ) -> Result<Self::Value, A::Error> {
                Err(serde::de::Error::custom(GENERATOR_FILTERS))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(FiltersFile::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// One dynamic filter: walk `oid`, keep the indices whose value matches one
/// of `values` (regexes, unanchored, as Go's `MatchString`), then GET only
/// those instances of `targets` instead of walking them.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicFilterFile {
    pub oid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricFile {
    pub name: String,
    pub oid: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub help: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lookups: Vec<LookupFile>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub regex_extracts: BTreeMap<String, Vec<RegexExtractFile>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub enum_values: BTreeMap<i64, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datetime_pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_hint: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IndexFile {
    pub labelname: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implied: Option<bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub enum_values: BTreeMap<i64, String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LookupFile {
    #[serde(default)]
    pub labels: Vec<String>,
    pub labelname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub oid: String,
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegexExtractFile {
    #[serde(default)]
    pub value: String,
    pub regex: String,
}

/// The 0.23+ file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SplitFile {
    #[serde(default)]
    pub auths: BTreeMap<String, AuthFile>,
    #[serde(default)]
    pub modules: BTreeMap<String, ModuleFile>,
}

/// Which of the two layouts a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// 0.21: modules at the top level, auth inside each module.
    Flat,
    /// 0.23+: `auths:` and `modules:`.
    Split,
}

/// True when a top-level key is `auths` or `modules`, i.e. the 0.23+ layout.
/// (A 0.21 file whose module is literally named `modules` is not supported.)
pub fn detect_format(text: &str) -> Format {
    for line in text.lines() {
        let first = line.chars().next();
        if matches!(first, Some(c) if c.is_whitespace() || c == '#' || c == '-') || line.is_empty()
        {
            continue;
        }
        let key = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(['"', '\'']);
        if key == "auths" || key == "modules" {
            return Format::Split;
        }
    }
    Format::Flat
}

/// Parses a file's text, then validates and compiles it.
pub fn parse_config(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let (format, split) = match detect_format(text) {
        Format::Split => (Format::Split, parse_yaml::<SplitFile>(path, text)?),
        Format::Flat => {
            // An empty file is an empty config, as in Go.
            let modules: Option<BTreeMap<String, ModuleFile>> = parse_yaml(path, text)?;
            (
                Format::Flat,
                SplitFile {
                    auths: BTreeMap::new(),
                    modules: modules.unwrap_or_default(),
                },
            )
        }
    };
    let mut cfg = compile(format, split).map_err(|e| ConfigError::invalid(path, e))?;
    fill_defaults(format, &mut cfg.raw);
    Ok(cfg)
}

/// Writes the defaults into the parsed file, so `/config` shows what is in
/// force, as snmp_exporter's page does.
fn fill_defaults(format: Format, raw: &mut SplitFile) {
    let auth_defaults = |a: &mut AuthFile| {
        a.community.get_or_insert_with(|| Secret("public".into()));
        a.security_level
            .get_or_insert_with(|| "noAuthNoPriv".into());
        a.auth_protocol.get_or_insert_with(|| "MD5".into());
        a.priv_protocol.get_or_insert_with(|| "DES".into());
    };
    for a in raw.auths.values_mut() {
        auth_defaults(a);
        a.version.get_or_insert(2);
    }
    for m in raw.modules.values_mut() {
        if m.walk_params.is_none() {
            if format == Format::Flat {
                m.version.get_or_insert(2);
                auth_defaults(m.auth.get_or_insert_with(AuthFile::default));
            }
            m.max_repetitions.get_or_insert(25);
            m.retries.get_or_insert(3);
            m.timeout.get_or_insert(GoDuration(Duration::from_secs(5)));
        }
    }
}

/// Reads, parses and compiles `path`.
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    let text = read_config_text(path)?;
    parse_config(path, &text)
}

/// The files that `--config.file` values (paths or glob patterns) name, in
/// order: each pattern's matches sorted, as snmp_exporter 0.23+ reads them.
pub fn expand_config_paths(patterns: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigError> {
    let mut files = Vec::new();
    for p in patterns {
        let text = p.to_string_lossy();
        let matched = crate::glob::glob(&text).map_err(|e| ConfigError::invalid(p, e))?;
        if matched.is_empty() {
            tracing::warn!(pattern = %text, "No config file matches the pattern");
        }
        files.extend(matched);
    }
    if files.is_empty() {
        let names: Vec<String> = patterns.iter().map(|p| p.display().to_string()).collect();
        let shown = PathBuf::from(names.join(", "));
        return Err(ConfigError::invalid(&shown, "no config file matches"));
    }
    Ok(files)
}

/// Loads every file `patterns` name and merges their modules and auths.
/// A module or auth defined in two files is an error naming both (Go's
/// strict YAML decoder also refuses it, naming only the line); all files
/// must use the same layout.
pub fn load_configs(patterns: &[PathBuf]) -> Result<Config, ConfigError> {
    let mut merged = Merged::default();
    for file in expand_config_paths(patterns)? {
        let cfg = load_config(&file)?;
        merged.add(file, cfg)?;
    }
    Ok(merged.cfg)
}

/// Configs merged so far, with the file each name came from.
#[derive(Default)]
struct Merged {
    cfg: Config,
    module_files: BTreeMap<String, PathBuf>,
    auth_files: BTreeMap<String, PathBuf>,
    layout_file: Option<PathBuf>,
}

impl Merged {
    fn add(&mut self, file: PathBuf, cfg: Config) -> Result<(), ConfigError> {
        // An empty file has no layout of its own and fits with any.
        if !cfg.modules.is_empty() || !cfg.auths.is_empty() {
            self.check_layout(&file, cfg.format)?;
        } else if self.cfg.format.is_none() {
            self.cfg.format = cfg.format;
        }
        check_unique(&file, "module", cfg.raw.modules.keys(), &self.module_files)?;
        check_unique(&file, "auth", cfg.raw.auths.keys(), &self.auth_files)?;
        for name in cfg.raw.modules.keys() {
            self.module_files.insert(name.clone(), file.clone());
        }
        for name in cfg.raw.auths.keys() {
            self.auth_files.insert(name.clone(), file.clone());
        }
        self.cfg.modules.extend(cfg.modules);
        self.cfg.auths.extend(cfg.auths);
        self.cfg.raw.modules.extend(cfg.raw.modules);
        self.cfg.raw.auths.extend(cfg.raw.auths);
        Ok(())
    }

    fn check_layout(&mut self, file: &Path, format: Option<Format>) -> Result<(), ConfigError> {
        let Some(first) = &self.layout_file else {
            self.layout_file = Some(file.to_owned());
            self.cfg.format = format;
            return Ok(());
        };
        if self.cfg.format == format {
            return Ok(());
        }
        Err(ConfigError::invalid(
            file,
            format!(
                "uses the {} layout but {} uses the {} one; all config files must use the same layout",
                layout_name(format),
                first.display(),
                layout_name(self.cfg.format)
            ),
        ))
    }
}

fn layout_name(f: Option<Format>) -> &'static str {
    match f {
        Some(Format::Split) => "0.23+ (auths:/modules:)",
        _ => "0.21 (flat)",
    }
}

fn check_unique<'a>(
    file: &Path,
    what: &str,
    names: impl Iterator<Item = &'a String>,
    seen: &BTreeMap<String, PathBuf>,
) -> Result<(), ConfigError> {
    for name in names {
        if let Some(first) = seen.get(name) {
            return Err(ConfigError::invalid(
                file,
                format!("{what} {name:?} is already defined in {}", first.display()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (s, ms) in [
            ("5s", 5000),
            ("1.5s", 1500),
            ("500ms", 500),
            ("1m30s", 90_000),
            ("0", 0),
        ] {
            assert_eq!(GoDuration::parse(s).unwrap().0.as_millis(), ms, "{s}");
        }
        for s in ["", "5", "5x", "-1s", "s", "1e400s"] {
            assert!(GoDuration::parse(s).is_err(), "{s}");
        }
        assert_eq!(GoDuration(Duration::from_secs(5)).to_string(), "5s");
        assert_eq!(
            GoDuration(Duration::from_millis(90_500)).to_string(),
            "1m30.5s"
        );
    }

    #[test]
    fn formats_are_detected() {
        assert_eq!(detect_format("if_mib:\n  walk: []\n"), Format::Flat);
        assert_eq!(
            detect_format("# c\nauths:\n  a: {}\nmodules: {}\n"),
            Format::Split
        );
        assert_eq!(detect_format("modules:\n  x: {}\n"), Format::Split);
    }
}
