//! The collector registry and the trait every collector implements.
//!
//! One file per collector, named after node_exporter's. To add one: write
//! `src/collectors/<name>.rs` with a `pub fn spec() -> Spec`, add
//! `mod <name>;` and `<name>::spec(),` below (keep both lists sorted).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::{Arg, ArgMatches};
use vigie_common::MetricSet;

use crate::roots::FsRoots;

// --- collector modules (sorted) ---
mod bonding;
mod dmi;
mod edac;
mod fibrechannel;
mod infiniband;
mod ipvs;
mod loadavg;
mod mdadm;
mod netfilter;
mod nvme;
mod powersupplyclass;
mod processes;
mod rapl;
mod tapestats;
mod thermal_zone;
// --- end of collector modules ---

/// All collectors Vigie knows, in name order.
pub fn registry() -> Vec<Spec> {
    let mut specs = vec![
        // --- collector specs (sorted) ---
        bonding::spec(),
        dmi::spec(),
        edac::spec(),
        fibrechannel::spec(),
        infiniband::spec(),
        ipvs::spec(),
        loadavg::spec(),
        mdadm::spec(),
        netfilter::spec(),
        nvme::spec(),
        powersupplyclass::spec(),
        processes::spec(),
        rapl::spec(),
        tapestats::spec(),
        thermal_zone::spec(),
        // --- end of collector specs ---
    ];
    specs.sort_by_key(|s| s.name);
    specs
}

/// What a collector gets at scrape time.
#[derive(Debug, Clone)]
pub struct ScrapeCtx {
    pub roots: Arc<FsRoots>,
    /// When the scrape must be answered; long-running collectors check it.
    pub deadline: Instant,
}

impl ScrapeCtx {
    /// Reads a whole file (bounded to [`MAX_FILE_BYTES`]) as UTF-8 (lossy).
    pub fn read(&self, path: &Path) -> Result<String, CollectError> {
        read_file(path)
    }
}

/// Largest /proc or /sys file read; bigger ones are cut (and reported).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a file with a size bound, naming the path in the error.
pub fn read_file(path: &Path) -> Result<String, CollectError> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| CollectError::io(path, e))?;
    let mut buf = Vec::new();
    f.take(MAX_FILE_BYTES)
        .read_to_end(&mut buf)
        .map_err(|e| CollectError::io(path, e))?;
    Ok(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Reads a one-line sysfs attribute, trimmed.
pub fn read_attr(path: &Path) -> Result<String, CollectError> {
    Ok(read_file(path)?.trim().to_owned())
}

/// Why a collector produced nothing or only part of its output.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// Nothing to report on this machine (logged at debug, success 0).
    #[error("no data")]
    NoData,
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {msg}")]
    Parse {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("{0}")]
    Other(String),
}

impl CollectError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            tracing::debug!(path = %path.display(), "not found");
        }
        CollectError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub fn parse(path: &Path, line: usize, msg: impl Into<String>) -> Self {
        CollectError::Parse {
            path: path.to_owned(),
            line,
            msg: msg.into(),
        }
    }

    /// True for "file or directory missing": such collectors report NoData.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CollectError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// A collector: reads its files and writes its families into `out`.
/// Called from a blocking thread; may be called concurrently with itself
/// only if two scrapes overlap (use interior mutability for state).
pub trait Collector: Send + Sync {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError>;
}

/// What the registry knows about a collector.
pub struct Spec {
    /// `--collector.<name>`, label `collector="<name>"`.
    pub name: &'static str,
    pub default_enabled: bool,
    /// Its option flags (`--collector.<name>.<option>`), with Go's defaults.
    pub args: fn() -> Vec<Arg>,
    /// Builds it from the parsed flags (compile regexes here, not per scrape).
    pub build: fn(&BuildCtx) -> Result<Box<dyn Collector>, String>,
}

/// What `build` gets.
pub struct BuildCtx<'a> {
    pub roots: Arc<FsRoots>,
    pub matches: &'a ArgMatches,
}

impl BuildCtx<'_> {
    /// A string flag's value (its default when not given).
    pub fn string(&self, id: &str) -> Option<String> {
        self.matches
            .try_get_one::<String>(id)
            .ok()
            .flatten()
            .cloned()
    }

    /// A boolean flag.
    pub fn flag(&self, id: &str) -> bool {
        self.matches
            .try_get_one::<bool>(id)
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false)
    }

    /// A regex flag compiled once; an empty value means "not set".
    pub fn regex(&self, id: &str) -> Result<Option<regex::Regex>, String> {
        match self.string(id) {
            Some(s) if !s.is_empty() => regex::Regex::new(&s)
                .map(Some)
                .map_err(|e| format!("--{id}: invalid regular expression: {e}")),
            _ => Ok(None),
        }
    }
}

/// No option flags.
pub fn no_args() -> Vec<Arg> {
    Vec::new()
}
