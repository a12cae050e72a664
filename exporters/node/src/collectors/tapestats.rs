//! tapestats: SCSI tape statistics, `/sys/class/scsi_tape/st<N>/stats/*`.

use std::path::Path;

use clap::Arg;
use regex::Regex;
use vigie_common::MetricSet;

use super::{class_entries, read_attr, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "tapestats",
        default_enabled: true,
        args,
        build: |ctx: &BuildCtx| {
            let ignored = ctx
                .regex("collector.tapestats.ignored-devices")?
                .unwrap_or_else(never);
            Ok(Box::new(TapeStats { ignored }))
        },
    }
}

/// A regex that matches only the empty string (Go's default `^$`).
fn never() -> Regex {
    Regex::new("^$").unwrap_or_else(|_| unreachable!("constant regex"))
}

fn args() -> Vec<Arg> {
    vec![Arg::new("collector.tapestats.ignored-devices")
        .long("collector.tapestats.ignored-devices")
        .default_value("^$")
        .value_name("REGEX")
        .help("Regexp of devices to ignore for tapestats.")]
}

struct TapeStats {
    ignored: Regex,
}

/// `stats/<file>` → (metric, help, is counter, scale).
const STATS: &[(&str, &str, &str, bool, f64)] = &[
    ("in_flight", "node_tape_io_now", "The number of I/Os currently outstanding to this device.", false, 1.0),
    ("io_ns", "node_tape_io_time_seconds_total", "The amount of time spent waiting for all I/O to complete (including read and write). This includes tape movement commands such as seeking between file or set marks and implicit tape movement such as when rewind on close tape devices are used.", true, 1e-9),
    ("other_cnt", "node_tape_io_others_total", "The number of I/Os issued to the tape drive other than read or write commands. The time taken to complete these commands uses the following calculation io_time_seconds_total-read_time_seconds_total-write_time_seconds_total", true, 1.0),
    ("read_byte_cnt", "node_tape_read_bytes_total", "The number of bytes read from the tape drive.", true, 1.0),
    ("read_cnt", "node_tape_reads_completed_total", "The number of read requests issued to the tape drive.", true, 1.0),
    ("read_ns", "node_tape_read_time_seconds_total", "The amount of time spent waiting for read requests to complete.", true, 1e-9),
    ("resid_cnt", "node_tape_residual_total", "The number of times during a read or write we found the residual amount to be non-zero. This should mean that a program is issuing a read larger thean the block size on tape. For write not all data made it to tape.", true, 1.0),
    ("write_byte_cnt", "node_tape_written_bytes_total", "The number of bytes written to the tape drive.", true, 1.0),
    ("write_cnt", "node_tape_writes_completed_total", "The number of write requests issued to the tape drive.", true, 1.0),
    ("write_ns", "node_tape_write_time_seconds_total", "The amount of time spent waiting for write requests to complete.", true, 1e-9),
];

/// `st0`, `st12`: the rewinding device of each drive (not `nst0`, `st0a`).
fn is_drive(name: &str) -> bool {
    name.strip_prefix("st")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn read_u64(path: &Path) -> Result<u64, CollectError> {
    let s = read_attr(path)?;
    s.parse()
        .map_err(|_| CollectError::parse(path, 1, format!("not a counter: {s:?}")))
}

impl Collector for TapeStats {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let base = ctx.roots.sys("class/scsi_tape");
        let devs = class_entries(&base)?
            .into_iter()
            .filter_map(|n| n.into_string().ok())
            .filter(|n| is_drive(n));
        for dev in devs {
            if self.ignored.is_match(&dev) {
                continue;
            }
            let dir = base.join(&dev).join("stats");
            let mut values = Vec::with_capacity(STATS.len());
            for (file, ..) in STATS {
                values.push(read_u64(&dir.join(file))?);
            }
            for ((_, name, help, counter, scale), v) in STATS.iter().zip(values) {
                let v = v as f64 * scale;
                if *counter {
                    out.counter(name, help, &[("device", &dev)], v);
                } else {
                    out.gauge(name, help, &[("device", &dev)], v);
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
    fn drive_names() {
        assert!(is_drive("st0"));
        assert!(is_drive("st12"));
        assert!(!is_drive("nst0"));
        assert!(!is_drive("st0a"));
        assert!(!is_drive("st"));
    }
}
