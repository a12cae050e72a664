//! Self metrics: `<exporter>_build_info` and the Go process collector's
//! `process_*` families, read from /proc/self.

use crate::expo::{MetricSet, MetricType};

/// Version information compiled into the binary.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    /// Exporter name used as metric prefix, e.g. `node_exporter`.
    pub exporter: &'static str,
    pub version: &'static str,
    pub revision: &'static str,
    pub branch: &'static str,
    pub rustc_version: &'static str,
}

impl BuildInfo {
    /// Build info for `exporter` with the version of the calling crate.
    pub const fn new(exporter: &'static str, version: &'static str) -> Self {
        BuildInfo {
            exporter,
            version,
            revision: env!("VIGIE_REVISION"),
            branch: env!("VIGIE_BRANCH"),
            rustc_version: env!("VIGIE_RUSTC_VERSION"),
        }
    }

    /// The `--version` text, in the Go exporters' layout.
    pub fn version_text(&self, binary: &str) -> String {
        format!(
            "{binary}, version {} (branch: {}, revision: {})\n  build user:       vigie\n  rustc version:    {}\n  platform:         {}/{}\n",
            self.version,
            self.branch,
            self.revision,
            self.rustc_version,
            std::env::consts::OS,
            std::env::consts::ARCH,
        )
    }

    pub fn write(&self, out: &mut MetricSet) {
        let name = format!("{}_build_info", self.exporter);
        let help = format!(
            "A metric with a constant '1' value labeled by version, revision, branch, and rustc_version from which {} was built.",
            self.exporter
        );
        out.family(&name, &help, MetricType::Gauge).add(
            &[
                ("version", self.version),
                ("revision", self.revision),
                ("branch", self.branch),
                ("rustc_version", self.rustc_version),
                ("goos", std::env::consts::OS),
                ("goarch", go_arch()),
            ],
            1.0,
        );
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// Writes the `process_*` families for this process. Missing files are skipped.
pub fn write_process_metrics(out: &mut MetricSet) {
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    if let Some(st) = stat.as_deref().and_then(parse_stat) {
        let ticks = crate::sys::clock_ticks() as f64;
        out.counter(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            &[],
            (st.utime + st.stime) as f64 / ticks,
        );
        out.gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            &[],
            (st.rss_pages * crate::sys::page_size()) as f64,
        );
        out.gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            &[],
            st.vsize as f64,
        );
        if let Some(btime) = boot_time() {
            out.gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                &[],
                btime as f64 + st.starttime as f64 / ticks,
            );
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        // One of the entries is the directory handle itself.
        let n = entries.count().saturating_sub(1);
        out.gauge(
            "process_open_fds",
            "Number of open file descriptors.",
            &[],
            n as f64,
        );
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        if let Some(v) = limit_value(&limits, "Max open files") {
            out.gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                &[],
                v,
            );
        }
        if let Some(v) = limit_value(&limits, "Max address space") {
            out.gauge(
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                &[],
                v,
            );
        }
    }
}

struct Stat {
    utime: u64,
    stime: u64,
    starttime: u64,
    vsize: u64,
    rss_pages: u64,
}

fn parse_stat(s: &str) -> Option<Stat> {
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the name start at field 3 (state); utime is field 14.
    let get = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        utime: get(14)?,
        stime: get(15)?,
        starttime: get(22)?,
        vsize: get(23)?,
        rss_pages: get(24)?,
    })
}

fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn limit_value(limits: &str, name: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    let soft = line[name.len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        // The Go collector reports RLIM_INFINITY as the largest uint64.
        Some(u64::MAX as f64)
    } else {
        soft.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_name() {
        let s = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 500 1000000 250 18446744073709551615";
        let st = parse_stat(s).unwrap();
        assert_eq!(
            (st.utime, st.stime, st.starttime, st.vsize, st.rss_pages),
            (7, 3, 500, 1000000, 250)
        );
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn self_metrics_present() {
        let mut set = MetricSet::new();
        write_process_metrics(&mut set);
        for name in [
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
            "process_resident_memory_bytes",
            "process_start_time_seconds",
            "process_virtual_memory_bytes",
            "process_virtual_memory_max_bytes",
        ] {
            assert!(set.get(name).is_some(), "{name} missing");
        }
    }
}
