//! fibrechannel: `/sys/class/fc_host/<host>` attributes (`node_fibrechannel_info`)
//! and `statistics/*` counters (hexadecimal in sysfs).

use std::path::Path;

use vigie_common::{MetricSet, MetricType};

use super::{
    class_entries, no_args, read_attr, BuildCtx, CollectError, Collector, ScrapeCtx, Spec,
};

pub fn spec() -> Spec {
    Spec {
        name: "fibrechannel",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(FibreChannel)),
    }
}

struct FibreChannel;

/// Attribute file → info label; every one must be readable, as in Go.
const INFO: &[(&str, &str)] = &[
    ("dev_loss_tmo", "dev_loss_tmo"),
    ("fabric_name", "fabric_name"),
    ("port_id", "port_id"),
    ("port_name", "port_name"),
    ("port_state", "port_state"),
    ("port_type", "port_type"),
    ("speed", "speed"),
    ("supported_classes", "supported_classes"),
    ("supported_speeds", "supported_speeds"),
    ("symbolic_name", "symbolic_name"),
];

/// `statistics/<file>` → metric suffix and help.
const STATS: &[(&str, &str, &str)] = &[
    (
        "dumped_frames",
        "dumped_frames_total",
        "Number of dumped frames",
    ),
    (
        "error_frames",
        "error_frames_total",
        "Number of errors in frames",
    ),
    (
        "invalid_crc_count",
        "invalid_crc_total",
        "Invalid Cyclic Redundancy Check count",
    ),
    ("rx_frames", "rx_frames_total", "Number of frames received"),
    (
        "rx_words",
        "rx_words_total",
        "Number of words received by host port",
    ),
    (
        "tx_frames",
        "tx_frames_total",
        "Number of frames transmitted by host port",
    ),
    (
        "tx_words",
        "tx_words_total",
        "Number of words transmitted by host port",
    ),
    (
        "seconds_since_last_reset",
        "seconds_since_last_reset_total",
        "Number of seconds since last host port reset",
    ),
    (
        "invalid_tx_word_count",
        "invalid_tx_words_total",
        "Number of invalid words transmitted by host port",
    ),
    (
        "link_failure_count",
        "link_failure_total",
        "Number of times the host port link has failed",
    ),
    (
        "loss_of_sync_count",
        "loss_of_sync_total",
        "Number of failures on either bit or transmission word boundaries",
    ),
    (
        "loss_of_signal_count",
        "loss_of_signal_total",
        "Number of times signal has been lost",
    ),
    (
        "nos_count",
        "nos_total",
        "Number Not_Operational Primitive Sequence received by host port",
    ),
    (
        "fcp_packet_aborts",
        "fcp_packet_aborts_total",
        "Number of aborted packets",
    ),
];

/// A statistics counter: missing counts as 0 (as in Go); all ones means
/// "not supported by the driver" and is not reported.
fn stat(dir: &Path, file: &str) -> Result<Option<f64>, CollectError> {
    let path = dir.join(file);
    let raw = match read_attr(&path) {
        Ok(r) => r,
        Err(e) if e.is_not_found() => return Ok(Some(0.0)),
        Err(e) => return Err(e),
    };
    let hex = raw.trim_start_matches("0x");
    let v = u64::from_str_radix(hex, 16)
        .map_err(|_| CollectError::parse(&path, 1, format!("not a hex counter: {raw:?}")))?;
    Ok((v != u64::MAX).then_some(v as f64))
}

impl Collector for FibreChannel {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let base = ctx.roots.sys("class/fc_host");
        let hosts = class_entries(&base)?;
        for h in hosts {
            let host = h.to_string_lossy().into_owned();
            let dir = base.join(&h);
            // node_name is not a label but its absence fails the host in Go.
            read_attr(&dir.join("node_name"))?;
            let mut labels = vec![("fc_host".to_owned(), host.clone())];
            for (file, label) in INFO {
                let v = read_attr(&dir.join(file))?;
                let v = match *file {
                    "fabric_name" | "port_id" | "port_name" => {
                        v.strip_prefix("0x").unwrap_or(&v).to_owned()
                    }
                    _ => v,
                };
                labels.push(((*label).to_owned(), v));
            }
            out.family(
                "node_fibrechannel_info",
                "Non-numeric data from /sys/class/fc_host/<host>, value is always 1.",
                MetricType::Gauge,
            )
            .add_owned(labels, 1.0);
            let sdir = dir.join("statistics");
            for (file, suffix, help) in STATS {
                if let Some(v) = stat(&sdir, file)? {
                    out.counter(
                        &format!("node_fibrechannel_{suffix}"),
                        help,
                        &[("fc_host", &host)],
                        v,
                    );
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
    fn hex_counters() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), "0x13\n").unwrap();
        std::fs::write(d.path().join("b"), "0xffffffffffffffff\n").unwrap();
        std::fs::write(d.path().join("c"), "zz\n").unwrap();
        assert_eq!(stat(d.path(), "a").unwrap(), Some(19.0));
        assert_eq!(stat(d.path(), "b").unwrap(), None);
        assert_eq!(stat(d.path(), "missing").unwrap(), Some(0.0));
        assert!(stat(d.path(), "c").is_err());
    }
}
