//! diskstats: `/proc/diskstats` plus udev properties for `node_disk_info`.

use std::collections::HashMap;

use vigie_common::MetricSet;

use super::{str_arg, BuildCtx, CollectError, Collector, DeviceFilter, ScrapeCtx, Spec};

const EXCLUDE: &str = "collector.diskstats.device-exclude";
const INCLUDE: &str = "collector.diskstats.device-include";
const OLD_EXCLUDE: &str = "collector.diskstats.ignored-devices";
const DEFAULT_EXCLUDE: &str = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
const SECTOR: f64 = 512.0;

pub fn spec() -> Spec {
    Spec {
        name: "diskstats",
        default_enabled: true,
        args: || {
            vec![
                str_arg(EXCLUDE, Some(DEFAULT_EXCLUDE), "Regexp of diskstats devices to exclude (mutually exclusive to device-include)."),
                str_arg(OLD_EXCLUDE, None, "DEPRECATED: Use collector.diskstats.device-exclude").hide(true),
                str_arg(INCLUDE, None, "Regexp of diskstats devices to include (mutually exclusive to device-exclude)."),
            ]
        },
        build: |ctx: &BuildCtx| {
            let filter = if ctx.given(OLD_EXCLUDE) && !ctx.given(EXCLUDE) {
                tracing::warn!("--collector.diskstats.ignored-devices is DEPRECATED and will be removed in 2.0.0, use --collector.diskstats.device-exclude");
                DeviceFilter::new(ctx.regex(INCLUDE)?, ctx.regex(OLD_EXCLUDE)?)
            } else {
                DeviceFilter::from_flags(ctx, INCLUDE, EXCLUDE)?
            };
            Ok(Box::new(Diskstats { filter }))
        },
    }
}

struct Diskstats {
    filter: DeviceFilter,
}

/// `(metric, help, counter?, scale)` for the stat columns after the name.
const COLUMNS: [(&str, &str, bool, f64); 17] = [
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        true,
        1.0,
    ),
    (
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        true,
        1.0,
    ),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        true,
        SECTOR,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        true,
        0.001,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        true,
        1.0,
    ),
    (
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        true,
        1.0,
    ),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        true,
        SECTOR,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        true,
        0.001,
    ),
    (
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        false,
        1.0,
    ),
    (
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        true,
        0.001,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        true,
        0.001,
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        true,
        1.0,
    ),
    (
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        true,
        1.0,
    ),
    (
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        true,
        1.0,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        true,
        0.001,
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        true,
        1.0,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        true,
        0.001,
    ),
];

/// One /proc/diskstats line: major, minor, name, and 4 to 17 counters.
#[derive(Debug, PartialEq)]
pub struct Disk {
    pub major: String,
    pub minor: String,
    pub name: String,
    pub stats: Vec<u64>,
}

pub fn parse(text: &str) -> Result<Vec<Disk>, usize> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() < 14 {
            // node_exporter skips lines it cannot read as a device.
            tracing::debug!(line = i + 1, "short diskstats line skipped");
            continue;
        }
        let stats = f[3..]
            .iter()
            .take(COLUMNS.len())
            .map(|v| v.parse::<u64>().map_err(|_| i + 1))
            .collect::<Result<Vec<u64>, usize>>()?;
        out.push(Disk {
            major: f[0].to_owned(),
            minor: f[1].to_owned(),
            name: f[2].to_owned(),
            stats,
        });
    }
    Ok(out)
}

/// `E:KEY=value` lines of a udev database file.
fn udev_props(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("E:")?.split_once('='))
        .collect()
}

impl Collector for Diskstats {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let path = ctx.roots.proc("diskstats");
        let disks = parse(&ctx.read(&path)?)
            .map_err(|l| CollectError::parse(&path, l, "expected at least 14 numeric columns"))?;
        for d in disks {
            if self.filter.ignored(&d.name) {
                continue;
            }
            let udev_path = ctx
                .roots
                .udev_data
                .join(format!("b{}:{}", d.major, d.minor));
            let udev_text = std::fs::read_to_string(&udev_path).unwrap_or_default();
            let props = udev_props(&udev_text);
            let p = |k: &str| props.get(k).copied().unwrap_or("");
            let serial = if p("ID_SERIAL_SHORT").is_empty() {
                p("ID_SERIAL")
            } else {
                p("ID_SERIAL_SHORT")
            };
            out.gauge(
                "node_disk_info",
                "Info of /sys/block/<block_device>.",
                &[
                    ("device", &d.name),
                    ("major", &d.major),
                    ("minor", &d.minor),
                    ("path", p("ID_PATH")),
                    ("wwn", p("ID_WWN")),
                    ("model", p("ID_MODEL")),
                    ("serial", serial),
                    ("revision", p("ID_REVISION")),
                ],
                1.0,
            );
            for (v, (name, help, counter, scale)) in d.stats.iter().zip(COLUMNS) {
                let v = if scale == 1.0 {
                    *v as f64
                } else {
                    *v as f64 * scale
                };
                if counter {
                    out.counter(name, help, &[("device", &d.name)], v);
                } else {
                    out.gauge(name, help, &[("device", &d.name)], v);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_and_long_lines() {
        let d = parse(" 254 0 vda 1 2 3 4 5 6 7 8 9 10 11\n 1 0 x 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19\n").unwrap();
        assert_eq!(d[0].stats.len(), 11);
        assert_eq!(d[1].stats.len(), 17);
        assert!(parse("1 0 x 1 2\n").unwrap().is_empty());
        assert!(parse("1 0 x 1 2 3 4 5 6 7 8 9 10 y\n").is_err());
        let u = udev_props("S:disk/by-id/x\nE:ID_MODEL=QEMU\nE:ID_PATH=pci-0\nbroken\n");
        assert_eq!(u.get("ID_MODEL"), Some(&"QEMU"));
    }
}
