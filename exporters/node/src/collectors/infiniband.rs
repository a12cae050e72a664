//! infiniband: `/sys/class/infiniband/<device>` info and per-port state,
//! rate and counters.

use std::path::Path;

use vigie_common::{MetricSet, MetricType};

use super::{no_args, read_attr, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "infiniband",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(InfiniBand)),
    }
}

struct InfiniBand;

/// `ports/<n>/counters/<file>` → metric, help, multiplier (the data
/// counters count 32-bit words).
const COUNTERS: &[(&str, &str, &str, f64)] = &[
    ("excessive_buffer_overrun_errors", "excessive_buffer_overrun_errors_total", "Number of times that OverrunErrors consecutive flow control update periods occurred, each having at least one overrun error.", 1.0),
    ("link_downed", "link_downed_total", "Number of times the link failed to recover from an error state and went down", 1.0),
    ("link_error_recovery", "link_error_recovery_total", "Number of times the link successfully recovered from an error state", 1.0),
    ("local_link_integrity_errors", "local_link_integrity_errors_total", "Number of times that the count of local physical errors exceeded the threshold specified by LocalPhyErrors.", 1.0),
    ("port_rcv_constraint_errors", "port_constraint_errors_received_total", "Number of packets received on the switch physical port that are discarded", 1.0),
    ("port_xmit_constraint_errors", "port_constraint_errors_transmitted_total", "Number of packets not transmitted from the switch physical port", 1.0),
    ("port_rcv_data", "port_data_received_bytes_total", "Number of data octets received on all links", 4.0),
    ("port_xmit_data", "port_data_transmitted_bytes_total", "Number of data octets transmitted on all links", 4.0),
    ("port_xmit_discards", "port_discards_transmitted_total", "Number of outbound packets discarded by the port because the port is down or congested", 1.0),
    ("port_rcv_errors", "port_errors_received_total", "Number of packets containing an error that were received on this port", 1.0),
    ("port_rcv_packets", "port_packets_received_total", "Number of packets received on all VLs by this port (including errors)", 1.0),
    ("port_xmit_packets", "port_packets_transmitted_total", "Number of packets transmitted on all VLs from this port (including errors)", 1.0),
    ("port_rcv_remote_physical_errors", "port_receive_remote_physical_errors_total", "Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port.", 1.0),
    ("port_rcv_switch_relay_errors", "port_receive_switch_relay_errors_total", "Number of packets that could not be forwarded by the switch.", 1.0),
    ("port_xmit_wait", "port_transmit_wait_total", "Number of ticks during which the port had data to transmit but no data was sent during the entire tick", 1.0),
    ("symbol_error", "symbol_error_total", "Number of minor link errors detected on one or more physical lanes.", 1.0),
    ("VL15_dropped", "vl15_dropped_total", "Number of incoming VL15 packets dropped due to resource limitations.", 1.0),
];

fn sorted_entries(dir: &Path) -> Result<Vec<String>, CollectError> {
    let rd = std::fs::read_dir(dir).map_err(|e| CollectError::io(dir, e))?;
    let mut v: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect();
    v.sort();
    Ok(v)
}

/// `4: ACTIVE` → 4.
fn state_id(path: &Path) -> Result<f64, CollectError> {
    let s = read_attr(path)?;
    s.split(':')
        .next()
        .and_then(|n| n.trim().parse::<u32>().ok())
        .map(f64::from)
        .ok_or_else(|| CollectError::parse(path, 1, format!("bad state {s:?}")))
}

/// `40 Gb/sec (4X QDR)` → bytes per second.
fn rate(path: &Path) -> Result<f64, CollectError> {
    let s = read_attr(path)?;
    let bad = || CollectError::parse(path, 1, format!("bad rate {s:?}"));
    let mut it = s.split_whitespace();
    let n: f64 = it.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    match it.next() {
        Some("Gb/sec") => Ok(n * 1e9 / 8.0),
        Some("Mb/sec") => Ok(n * 1e6 / 8.0),
        _ => Err(bad()),
    }
}

/// A counter; absent or "N/A (no PMA)" ones are not reported.
fn counter(path: &Path) -> Option<u64> {
    read_attr(path).ok()?.parse().ok()
}

impl Collector for InfiniBand {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let base = ctx.roots.sys("class/infiniband");
        let devices = match sorted_entries(&base) {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return Err(CollectError::NoData),
            Err(e) => return Err(e),
        };
        for dev in devices {
            let dir = base.join(&dev);
            let board = read_attr(&dir.join("board_id"))?;
            let fw = read_attr(&dir.join("fw_ver"))?;
            let hca = match read_attr(&dir.join("hca_type")) {
                Ok(h) => h,
                Err(e) if e.is_not_found() => String::new(),
                Err(e) => return Err(e),
            };
            out.family(
                "node_infiniband_info",
                "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
                MetricType::Gauge,
            )
            .add(
                &[
                    ("board_id", &board),
                    ("device", &dev),
                    ("firmware_version", &fw),
                    ("hca_type", &hca),
                ],
                1.0,
            );
            let ports_dir = dir.join("ports");
            for port in sorted_entries(&ports_dir)? {
                let pdir = ports_dir.join(&port);
                let labels = [("device", dev.as_str()), ("port", port.as_str())];
                let state = state_id(&pdir.join("state"))?;
                let phys = state_id(&pdir.join("phys_state"))?;
                let rate = rate(&pdir.join("rate"))?;
                out.gauge("node_infiniband_state_id", "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)", &labels, state);
                out.gauge("node_infiniband_physical_state_id", "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)", &labels, phys);
                out.gauge(
                    "node_infiniband_rate_bytes_per_second",
                    "Maximum signal transfer rate",
                    &labels,
                    rate,
                );
                let cdir = pdir.join("counters");
                for (file, name, help, mul) in COUNTERS {
                    if let Some(v) = counter(&cdir.join(file)) {
                        out.counter(
                            &format!("node_infiniband_{name}"),
                            help,
                            &labels,
                            v as f64 * mul,
                        );
                    }
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
    fn states_and_rates() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        std::fs::write(&p, "4: ACTIVE\n").unwrap();
        assert_eq!(state_id(&p).unwrap(), 4.0);
        std::fs::write(&p, "garbage").unwrap();
        assert!(state_id(&p).is_err());
        std::fs::write(&p, "100 Gb/sec (4X EDR)\n").unwrap();
        assert_eq!(rate(&p).unwrap(), 1.25e10);
        std::fs::write(&p, "fast\n").unwrap();
        assert!(rate(&p).is_err());
        std::fs::write(&p, "N/A (no PMA)\n").unwrap();
        assert_eq!(counter(&p), None);
    }
}
