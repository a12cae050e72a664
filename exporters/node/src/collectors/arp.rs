//! arp: `/proc/net/arp`, entries per device.

use std::collections::BTreeMap;

use vigie_common::MetricSet;

use super::{str_arg, BuildCtx, CollectError, Collector, DeviceFilter, ScrapeCtx, Spec};

const INCLUDE: &str = "collector.arp.device-include";
const EXCLUDE: &str = "collector.arp.device-exclude";

pub fn spec() -> Spec {
    Spec {
        name: "arp",
        default_enabled: true,
        args: || {
            vec![
                str_arg(
                    INCLUDE,
                    None,
                    "Regexp of arp devices to include (mutually exclusive to device-exclude).",
                ),
                str_arg(
                    EXCLUDE,
                    None,
                    "Regexp of arp devices to exclude (mutually exclusive to device-include).",
                ),
            ]
        },
        build: |ctx: &BuildCtx| {
            Ok(Box::new(Arp {
                filter: DeviceFilter::from_flags(ctx, INCLUDE, EXCLUDE)?,
            }))
        },
    }
}

struct Arp {
    filter: DeviceFilter,
}

/// Entries per device (the 6th column), header skipped.
pub fn parse(text: &str) -> Result<BTreeMap<String, u64>, usize> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() < 6 {
            return Err(i + 1);
        }
        *out.entry(f[5].to_owned()).or_insert(0) += 1;
    }
    Ok(out)
}

impl Collector for Arp {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let path = ctx.roots.proc("net/arp");
        let entries = parse(&ctx.read(&path)?)
            .map_err(|l| CollectError::parse(&path, l, "expected 6 columns"))?;
        for (dev, n) in entries {
            if self.filter.ignored(&dev) {
                continue;
            }
            out.gauge(
                "node_arp_entries",
                "ARP entries by device",
                &[("device", &dev)],
                n as f64,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        let t = "IP address       HW type     Flags       HW address            Mask     Device\n10.0.0.1 0x1 0x2 00:00:00:00:00:01 * eth0\n10.0.0.2 0x1 0x2 00:00:00:00:00:02 * eth0\n";
        assert_eq!(super::parse(t).unwrap().get("eth0"), Some(&2));
        assert!(super::parse("h\n1 2 3\n").is_err());
    }
}
