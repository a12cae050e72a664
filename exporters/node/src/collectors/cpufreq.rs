//! cpufreq: `/sys/devices/system/cpu/cpu*/cpufreq/` frequencies.

use vigie_common::MetricSet;

use super::{no_args, read_sysfs, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "cpufreq",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Cpufreq)),
    }
}

struct Cpufreq;

/// (file, metric, help); values are kHz in sysfs, Hz in the metric.
const FILES: [(&str, &str, &str); 6] = [
    (
        "cpuinfo_cur_freq",
        "node_cpu_frequency_hertz",
        "Current cpu thread frequency in hertz.",
    ),
    (
        "cpuinfo_max_freq",
        "node_cpu_frequency_max_hertz",
        "Maximum cpu thread frequency in hertz.",
    ),
    (
        "cpuinfo_min_freq",
        "node_cpu_frequency_min_hertz",
        "Minimum cpu thread frequency in hertz.",
    ),
    (
        "scaling_cur_freq",
        "node_cpu_scaling_frequency_hertz",
        "Current scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_max_freq",
        "node_cpu_scaling_frequency_max_hertz",
        "Maximum scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_min_freq",
        "node_cpu_scaling_frequency_min_hertz",
        "Minimum scaled CPU thread frequency in hertz.",
    ),
];

impl Collector for Cpufreq {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let base = ctx.roots.sys("devices/system/cpu");
        let dir = std::fs::read_dir(&base).map_err(|e| CollectError::io(&base, e))?;
        let mut cpus: Vec<u32> = dir
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok())
            .collect();
        cpus.sort_unstable();
        // All or nothing: a malformed value fails the collector, as in node_exporter.
        let mut values: Vec<(&str, &str, String, f64)> = Vec::new();
        for cpu in cpus {
            let d = base.join(format!("cpu{cpu}/cpufreq"));
            if !d.is_dir() {
                continue;
            }
            let c = cpu.to_string();
            for (file, name, help) in FILES {
                let Ok(v) = read_sysfs(&d.join(file)) else {
                    continue;
                };
                let khz = v
                    .parse::<u64>()
                    .map_err(|e| CollectError::parse(&d.join(file), 1, e.to_string()))?;
                values.push((name, help, c.clone(), khz as f64 * 1000.0));
            }
        }
        for (name, help, cpu, v) in values {
            out.gauge(name, help, &[("cpu", &cpu)], v);
        }
        Ok(())
    }
}
