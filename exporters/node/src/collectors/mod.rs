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
mod arp;
mod bcache;
mod bonding;
mod btrfs;
mod cgroup;
mod conntrack;
mod cpu;
mod cpufreq;
mod diskstats;
mod dmi;
mod edac;
mod entropy;
mod fibrechannel;
mod filefd;
mod filesystem;
mod hwmon;
mod infiniband;
mod ipvs;
mod loadavg;
mod mdadm;
mod meminfo;
mod netclass;
mod netdev;
mod netfilter;
mod netstat;
mod nfs;
mod nfsd;
mod nvme;
mod os;
mod powersupplyclass;
mod pressure;
mod processes;
mod rapl;
mod schedstat;
mod selinux;
mod sockstat;
mod softnet;
mod stat;
mod systemd;
mod tapestats;
mod textfile;
mod thermal_zone;
mod time;
mod timex;
mod udp_queues;
mod uname;
mod vmstat;
mod xfs;
mod zfs;
// --- end of collector modules ---

/// All collectors Vigie knows, in name order.
pub fn registry() -> Vec<Spec> {
    let mut specs = vec![
        // --- collector specs (sorted) ---
        arp::spec(),
        bcache::spec(),
        bonding::spec(),
        btrfs::spec(),
        cgroup::spec(),
        conntrack::spec(),
        cpu::spec(),
        cpufreq::spec(),
        diskstats::spec(),
        dmi::spec(),
        edac::spec(),
        entropy::spec(),
        fibrechannel::spec(),
        filefd::spec(),
        filesystem::spec(),
        hwmon::spec(),
        infiniband::spec(),
        ipvs::spec(),
        loadavg::spec(),
        mdadm::spec(),
        meminfo::spec(),
        netclass::spec(),
        netdev::spec(),
        netfilter::spec(),
        netstat::spec(),
        nfs::spec(),
        nfsd::spec(),
        nvme::spec(),
        os::spec(),
        powersupplyclass::spec(),
        pressure::spec(),
        processes::spec(),
        rapl::spec(),
        schedstat::spec(),
        selinux::spec(),
        sockstat::spec(),
        softnet::spec(),
        stat::spec(),
        systemd::spec(),
        tapestats::spec(),
        textfile::spec(),
        thermal_zone::spec(),
        time::spec(),
        timex::spec(),
        udp_queues::spec(),
        uname::spec(),
        vmstat::spec(),
        xfs::spec(),
        zfs::spec(),
        // --- end of collector specs ---
    ];
    specs.sort_by_key(|s| s.name);
    specs
}

/// The /proc and /sys text parsers, for the fuzz tests (tests/fuzz.rs):
/// each entry runs one parser on arbitrary text and drops the result.
#[doc(hidden)]
pub mod fuzzing {
    /// Runs one parser on a text.
    pub type Parser = fn(&str);

    /// `(name, parser)` pairs.
    pub fn parsers() -> Vec<(&'static str, Parser)> {
        vec![
            ("arp", |t| {
                let _ = super::arp::parse(t);
            }),
            ("conntrack", |t| {
                let _ = super::conntrack::parse_stat(t);
            }),
            ("cpu", |t| {
                let _ = super::cpu::parse_stat(t);
            }),
            ("diskstats", |t| {
                let _ = super::diskstats::parse(t);
            }),
            ("filefd", |t| {
                let _ = super::filefd::parse(t);
            }),
            ("filesystem", |t| {
                let _ = super::filesystem::parse_mounts(t);
            }),
            ("meminfo", |t| {
                let _ = super::meminfo::parse(t);
            }),
            ("netclass", |t| {
                let _ = super::netclass::parse_int(t);
            }),
            ("netdev", |t| {
                let _ = super::netdev::parse_proc(t);
            }),
            ("netdev_netlink", |t| {
                super::netdev::fuzz_netlink(t.as_bytes())
            }),
            ("netstat", |t| {
                let _ = super::netstat::parse_pairs(t);
            }),
            ("netstat6", |t| {
                let _ = super::netstat::parse_snmp6(t);
            }),
            ("os", |t| {
                let _ = super::os::parse(t);
            }),
            ("os_version", |t| {
                let _ = super::os::version_number(t);
            }),
            ("pressure", |t| {
                let _ = super::pressure::parse(t);
            }),
            ("schedstat", |t| {
                let _ = super::schedstat::parse(t);
            }),
            ("sockstat", |t| {
                let _ = super::sockstat::parse(t);
            }),
            ("softnet", |t| {
                let _ = super::softnet::parse(t);
            }),
            ("stat", |t| {
                let _ = super::stat::parse(t);
            }),
            ("textfile", |t| {
                let _ = super::textfile::parse(t);
            }),
            ("udp_queues", |t| {
                let _ = super::udp_queues::parse(t);
            }),
        ]
    }
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
///
/// /proc and /sys files report no useful size, so this reads straight into
/// a growing buffer with plain `read(2)` calls (no `statx`, no small probe
/// reads): one open, usually two reads, one close.
pub fn read_file(path: &Path) -> Result<String, CollectError> {
    let buf = read_bytes(path, 16 * 1024)?;
    Ok(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The raw bytes of a file, bounded by [`MAX_FILE_BYTES`]; `hint` is the
/// first buffer size.
pub fn read_bytes(path: &Path, hint: usize) -> Result<Vec<u8>, CollectError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| CollectError::io(path, e))?;
    let mut buf: Vec<u8> = vec![0; hint.max(64)];
    let mut len = 0;
    loop {
        if len == buf.len() {
            if buf.len() as u64 >= MAX_FILE_BYTES {
                tracing::warn!(path = %path.display(), "file cut at the size bound");
                break;
            }
            let grow = buf.len().min(MAX_FILE_BYTES as usize - buf.len());
            buf.resize(buf.len() + grow, 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CollectError::io(path, e)),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// Reads a sysfs attribute, trimmed, with one `read(2)`: sysfs answers a
/// whole attribute (at most a page) in one call, so a short read is the end
/// and the EOF read is skipped. Longer content falls back to a loop.
pub fn read_sysfs(path: &Path) -> Result<String, CollectError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| CollectError::io(path, e))?;
    let mut buf = [0u8; 4096];
    let n = loop {
        match f.read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CollectError::io(path, e)),
        }
    };
    if n == buf.len() {
        drop(f);
        return read_attr(path);
    }
    Ok(String::from_utf8_lossy(&buf[..n]).trim().to_owned())
}

/// The sorted entry names of a sysfs class directory (`class/hwmon`, ...):
/// a missing directory means the hardware is absent (NoData).
pub fn class_entries(base: &Path) -> Result<Vec<std::ffi::OsString>, CollectError> {
    let rd = std::fs::read_dir(base).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            CollectError::NoData
        } else {
            CollectError::io(base, e)
        }
    })?;
    let mut names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
    names.sort();
    Ok(names)
}

/// `mc12` → `12`, `csrow3` → `3`; `None` for other names.
pub fn number_suffix<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let n = name.strip_prefix(prefix)?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

/// Entries of `dir` named `<prefix><digits>`, sorted, with their number;
/// none when `dir` cannot be read.
pub fn numbered_entries(dir: &Path, prefix: &str) -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = number_suffix(name.to_str()?, prefix)?.to_owned();
            Some((n, e.path()))
        })
        .collect();
    v.sort();
    v
}

/// Reads a one-line sysfs attribute, trimmed.
pub fn read_attr(path: &Path) -> Result<String, CollectError> {
    let b = read_bytes(path, 256)?;
    Ok(String::from_utf8_lossy(&b).trim().to_owned())
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

    /// A kingpin boolean (see [`bool_args`]) with its default.
    pub fn bool_or(&self, id: &str, default: bool) -> bool {
        if self.flag(id) {
            return true;
        }
        if self.flag(&format!("no-{id}")) {
            return false;
        }
        default
    }

    /// True when the flag was given on the command line (not its default).
    pub fn given(&self, id: &str) -> bool {
        matches!(
            self.matches
                .try_contains_id(id)
                .ok()
                .and_then(|present| present.then(|| self.matches.value_source(id)).flatten()),
            Some(clap::parser::ValueSource::CommandLine)
        )
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

/// A string option `--<id>` with Go's default (None: no default).
pub fn str_arg(id: &'static str, default: Option<&'static str>, help: &'static str) -> Arg {
    let a = Arg::new(id)
        .long(id)
        .value_name("VALUE")
        .help(help)
        .action(clap::ArgAction::Set);
    match default {
        Some(d) => a.default_value(d),
        None => a,
    }
}

/// A kingpin-style boolean option: `--<id>` and `--no-<id>` (the last wins).
pub fn bool_args(id: &'static str, help: &'static str) -> [Arg; 2] {
    let no: &'static str = Box::leak(format!("no-{id}").into_boxed_str());
    [
        Arg::new(id)
            .long(id)
            .help(help)
            .action(clap::ArgAction::SetTrue)
            .overrides_with(no),
        Arg::new(no)
            .long(no)
            .action(clap::ArgAction::SetTrue)
            .overrides_with(id)
            .hide(true),
    ]
}

/// An include/exclude pair of device regexes (node_exporter's deviceFilter):
/// a device is kept when it matches the include (if set) and not the
/// exclude (if set). Both set is a start-up error.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    include: Option<regex::Regex>,
    exclude: Option<regex::Regex>,
}

impl DeviceFilter {
    pub fn new(include: Option<regex::Regex>, exclude: Option<regex::Regex>) -> Self {
        DeviceFilter { include, exclude }
    }

    /// From two flag ids; `alias_*` are deprecated names used when the main
    /// flag was not given.
    pub fn from_flags(ctx: &BuildCtx, include: &str, exclude: &str) -> Result<Self, String> {
        let inc = ctx.regex(include)?;
        let exc = ctx.regex(exclude)?;
        if inc.is_some() && exc.is_some() && ctx.given(include) && ctx.given(exclude) {
            return Err(format!(
                "--{include} and --{exclude} are mutually exclusive"
            ));
        }
        // An explicit include overrides a default exclude.
        let exc = if inc.is_some() && !ctx.given(exclude) {
            None
        } else {
            exc
        };
        Ok(DeviceFilter::new(inc, exc))
    }

    /// True when the device is filtered out.
    pub fn ignored(&self, name: &str) -> bool {
        if let Some(re) = &self.include {
            if !re.is_match(name) {
                return true;
            }
        }
        matches!(&self.exclude, Some(re) if re.is_match(name))
    }
}

/// A field-name regexp whose answers are remembered: /proc field names
/// repeat every scrape, so each is matched once, not once per scrape.
/// `None` (an empty flag) matches everything, like an empty Go regexp.
#[derive(Debug, Default)]
pub struct FieldFilter {
    re: Option<regex::Regex>,
    memo: std::sync::Mutex<std::collections::HashMap<String, bool>>,
}

impl FieldFilter {
    /// Most names remembered (a bound against odd files with ever-new names).
    const MAX_MEMO: usize = 8192;

    pub fn new(re: Option<regex::Regex>) -> Self {
        FieldFilter {
            re,
            memo: Default::default(),
        }
    }

    pub fn matches(&self, key: &str) -> bool {
        let Some(re) = &self.re else {
            return true;
        };
        let Ok(mut memo) = self.memo.lock() else {
            return re.is_match(key);
        };
        if let Some(v) = memo.get(key) {
            return *v;
        }
        let v = re.is_match(key);
        if memo.len() < Self::MAX_MEMO {
            memo.insert(key.to_owned(), v);
        }
        v
    }
}

/// No option flags.
pub fn no_args() -> Vec<Arg> {
    Vec::new()
}
