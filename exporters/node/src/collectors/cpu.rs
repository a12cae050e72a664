//! cpu: per-CPU times from `/proc/stat` (`node_cpu_seconds_total`,
//! `node_cpu_guest_seconds_total`), thermal throttle counters and, with
//! `--collector.cpu.info`, `/proc/cpuinfo`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use regex::Regex;
use vigie_common::MetricSet;

use super::{bool_args, read_sysfs, str_arg, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

/// USER_HZ as procfs assumes it.
const USER_HZ: f64 = 100.0;

pub fn spec() -> Spec {
    Spec {
        name: "cpu",
        default_enabled: true,
        args: || {
            let mut v: Vec<clap::Arg> = Vec::new();
            v.extend(bool_args(
                "collector.cpu.guest",
                "Enables metric node_cpu_guest_seconds_total",
            ));
            v.extend(bool_args("collector.cpu.info", "Enables metric cpu_info"));
            v.push(str_arg("collector.cpu.info.flags-include", None, "Filter the `flags` field in cpuInfo with a value that must be a regular expression"));
            v.push(str_arg(
                "collector.cpu.info.bugs-include",
                None,
                "Filter the `bugs` field in cpuInfo with a value that must be a regular expression",
            ));
            v
        },
        build: |ctx: &BuildCtx| {
            Ok(Box::new(Cpu {
                guest: ctx.bool_or("collector.cpu.guest", true),
                info: ctx.bool_or("collector.cpu.info", false),
                flags: ctx.regex("collector.cpu.info.flags-include")?,
                bugs: ctx.regex("collector.cpu.info.bugs-include")?,
                last: Mutex::new(BTreeMap::new()),
            }))
        },
    }
}

struct Cpu {
    guest: bool,
    info: bool,
    flags: Option<Regex>,
    bugs: Option<Regex>,
    /// Last reported times per CPU: counters never go backwards (the
    /// kernel's idle/iowait can, on NO_HZ systems).
    last: Mutex<BTreeMap<u32, [f64; 10]>>,
}

/// `user nice system idle iowait irq softirq steal guest guest_nice`.
pub const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// Per-CPU tick counts (in seconds) by CPU number.
pub fn parse_stat(text: &str) -> BTreeMap<u32, [f64; 10]> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(n) = f.next().and_then(|k| k.strip_prefix("cpu")) else {
            continue;
        };
        let Ok(n) = n.parse::<u32>() else {
            continue;
        };
        let mut v = [0.0f64; 10];
        let mut ok = true;
        for slot in v.iter_mut() {
            match f.next() {
                Some(x) => match x.parse::<u64>() {
                    Ok(t) => *slot = t as f64 / USER_HZ,
                    Err(_) => ok = false,
                },
                None => break,
            }
        }
        if ok {
            out.insert(n, v);
        }
    }
    out
}

impl Cpu {
    /// Keeps counters monotonic: a value lower than the last one reported
    /// is replaced by it.
    fn monotonic(&self, now: BTreeMap<u32, [f64; 10]>) -> BTreeMap<u32, [f64; 10]> {
        let Ok(mut last) = self.last.lock() else {
            return now;
        };
        let mut out = BTreeMap::new();
        for (cpu, mut v) in now {
            if let Some(prev) = last.get(&cpu) {
                for (x, p) in v.iter_mut().zip(prev) {
                    if *x < *p {
                        tracing::debug!(
                            cpu,
                            "CPU counter jumped backwards, keeping the last value"
                        );
                        *x = *p;
                    }
                }
            }
            last.insert(cpu, v);
            out.insert(cpu, v);
        }
        out
    }

    fn throttles(&self, ctx: &ScrapeCtx, out: &mut MetricSet) {
        let base = ctx.roots.sys("devices/system/cpu");
        let Ok(dir) = std::fs::read_dir(&base) else {
            return;
        };
        let mut cpus: Vec<u32> = dir
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok())
            .collect();
        cpus.sort_unstable();
        let mut cores: BTreeMap<(String, String), f64> = BTreeMap::new();
        let mut packages: BTreeMap<String, f64> = BTreeMap::new();
        for cpu in cpus {
            let d = base.join(format!("cpu{cpu}"));
            let (Ok(pkg), Ok(core)) = (
                read_sysfs(&d.join("topology/physical_package_id")),
                read_sysfs(&d.join("topology/core_id")),
            ) else {
                continue;
            };
            if let Ok(v) = read_sysfs(&d.join("thermal_throttle/core_throttle_count")) {
                if let Ok(v) = v.parse::<u64>() {
                    cores.entry((pkg.clone(), core)).or_insert(v as f64);
                }
            }
            if let Ok(v) = read_sysfs(&d.join("thermal_throttle/package_throttle_count")) {
                if let Ok(v) = v.parse::<u64>() {
                    packages.entry(pkg).or_insert(v as f64);
                }
            }
        }
        for ((pkg, core), v) in cores {
            out.counter(
                "node_cpu_core_throttles_total",
                "Number of times this CPU core has been throttled.",
                &[("core", &core), ("package", &pkg)],
                v,
            );
        }
        for (pkg, v) in packages {
            out.counter(
                "node_cpu_package_throttles_total",
                "Number of times this CPU package has been throttled.",
                &[("package", &pkg)],
                v,
            );
        }
    }

    fn cpuinfo(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let path = ctx.roots.proc("cpuinfo");
        let text = ctx.read(&path)?;
        for block in text.split("\n\n") {
            let mut kv: BTreeMap<&str, &str> = BTreeMap::new();
            for line in block.lines() {
                if let Some((k, v)) = line.split_once(':') {
                    kv.insert(k.trim(), v.trim());
                }
            }
            let Some(cpu) = kv.get("processor") else {
                continue;
            };
            let g = |k: &str| kv.get(k).copied().unwrap_or("");
            out.gauge(
                "node_cpu_info",
                "CPU information from /proc/cpuinfo.",
                &[
                    ("package", g("physical id")),
                    ("core", g("core id")),
                    ("cpu", cpu),
                    ("vendor", g("vendor_id")),
                    ("family", g("cpu family")),
                    ("model", g("model")),
                    ("model_name", g("model name")),
                    ("microcode", g("microcode")),
                    ("stepping", g("stepping")),
                    ("cachesize", g("cache size")),
                ],
                1.0,
            );
            for (field, re, name, help) in [
                ("flags", &self.flags, "node_cpu_flag_info", "The `flags` field of CPU information from /proc/cpuinfo taken from the first core."),
                ("bugs", &self.bugs, "node_cpu_bug_info", "The `bugs` field of CPU information from /proc/cpuinfo taken from the first core."),
            ] {
                let Some(re) = re else { continue };
                if *cpu != "0" {
                    continue;
                }
                for f in g(field).split_ascii_whitespace() {
                    if re.is_match(f) {
                        out.gauge(name, help, &[(field.trim_end_matches('s'), f)], 1.0);
                    }
                }
            }
        }
        Ok(())
    }
}

impl Collector for Cpu {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        if self.info {
            self.cpuinfo(ctx, out)?;
        }
        self.throttles(ctx, out);
        let path = ctx.roots.proc("stat");
        let stats = self.monotonic(parse_stat(&ctx.read(&path)?));
        for (cpu, v) in &stats {
            let c = cpu.to_string();
            for (i, mode) in MODES.iter().enumerate() {
                out.counter(
                    "node_cpu_seconds_total",
                    "Seconds the CPUs spent in each mode.",
                    &[("cpu", &c), ("mode", mode)],
                    v[i],
                );
            }
            if self.guest {
                let help = "Seconds the CPUs spent in guests (VMs) for each mode.";
                out.counter(
                    "node_cpu_guest_seconds_total",
                    help,
                    &[("cpu", &c), ("mode", "user")],
                    v[8],
                );
                out.counter(
                    "node_cpu_guest_seconds_total",
                    help,
                    &[("cpu", &c), ("mode", "nice")],
                    v[9],
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_stays_monotonic() {
        let s = parse_stat("cpu  1 2 3\ncpu0 100 0 50 1000 1 0 0 0 0 0\ncpu1 1 x\ncpuz 1\n");
        assert_eq!(s.len(), 1);
        assert_eq!(s[&0][0], 1.0);
        let c = Cpu {
            guest: true,
            info: false,
            flags: None,
            bugs: None,
            last: Mutex::new(BTreeMap::new()),
        };
        c.monotonic(s);
        let back = parse_stat("cpu0 100 0 50 900 1 0 0 0 0 0\n");
        assert_eq!(c.monotonic(back)[&0][3], 10.0);
    }
}
