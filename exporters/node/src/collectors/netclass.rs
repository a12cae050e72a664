//! netclass: `/sys/class/net/<iface>/` attributes.

use vigie_common::MetricSet;

use super::{bool_args, str_arg, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

const IGNORED: &str = "collector.netclass.ignored-devices";

pub fn spec() -> Spec {
    Spec {
        name: "netclass",
        default_enabled: true,
        args: || {
            let mut v = vec![str_arg(
                IGNORED,
                Some("^$"),
                "Regexp of net devices to ignore for netclass collector.",
            )];
            v.extend(bool_args("collector.netclass.ignore-invalid-speed", "Ignore devices where the speed is invalid. This will be the default behavior in 2.x."));
            v.extend(bool_args("collector.netclass.netlink", "Use netlink to gather stats instead of /proc/net/dev (accepted; Vigie reads sysfs)."));
            v.extend(bool_args(
                "collector.netclass_rtnl.with-stats",
                "Expose the statistics when using netlink (accepted; Vigie reads sysfs).",
            ));
            v
        },
        build: |ctx: &BuildCtx| {
            Ok(Box::new(NetClass {
                ignored: ctx.regex(IGNORED)?,
                ignore_invalid_speed: ctx.bool_or("collector.netclass.ignore-invalid-speed", false),
            }))
        },
    }
}

struct NetClass {
    ignored: Option<regex::Regex>,
    ignore_invalid_speed: bool,
}

/// Numeric attributes: (file, metric suffix, counter?).
const NUMERIC: [(&str, &str, bool); 17] = [
    ("addr_assign_type", "address_assign_type", false),
    ("carrier", "carrier", false),
    ("carrier_changes", "carrier_changes_total", true),
    ("carrier_up_count", "carrier_up_changes_total", true),
    ("carrier_down_count", "carrier_down_changes_total", true),
    ("dev_id", "device_id", false),
    ("dormant", "dormant", false),
    ("flags", "flags", false),
    ("ifindex", "iface_id", false),
    ("iflink", "iface_link", false),
    ("link_mode", "iface_link_mode", false),
    ("mtu", "mtu_bytes", false),
    ("name_assign_type", "name_assign_type", false),
    ("netdev_group", "net_dev_group", false),
    ("speed", "speed_bytes", false),
    ("tx_queue_len", "transmit_queue_length", false),
    ("type", "protocol_type", false),
];

/// Go's `strconv.ParseInt(s, 0, 64)`: decimal, `0x` hex, `0` octal.
pub fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Reads an attribute; None when it is absent or unreadable (EINVAL on a
/// down link, EOPNOTSUPP...), like node_exporter.
fn attr(dir: &std::path::Path, name: &str) -> Option<String> {
    super::read_sysfs(&dir.join(name)).ok()
}

impl NetClass {
    fn iface(&self, ctx: &ScrapeCtx, name: &str, out: &mut MetricSet) {
        let dir = ctx.roots.sys("class/net").join(name);
        let l = [("device", name)];
        let s = |a: &str| attr(&dir, a).unwrap_or_default();
        let operstate = s("operstate");
        out.gauge(
            "node_network_up",
            "Value is 1 if operstate is 'up', 0 otherwise.",
            &l,
            if operstate == "up" { 1.0 } else { 0.0 },
        );
        out.gauge(
            "node_network_info",
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
            &[
                ("device", name),
                ("address", &s("address")),
                ("broadcast", &s("broadcast")),
                ("duplex", &s("duplex")),
                ("operstate", &operstate),
                ("ifalias", &s("ifalias")),
            ],
            1.0,
        );
        for (file, suffix, counter) in NUMERIC {
            // Unparsable values read as 0, as in node_exporter.
            let Some(v) = attr(&dir, file).map(|v| parse_int(&v).unwrap_or(0)) else {
                continue;
            };
            let mut v = v as f64;
            if file == "speed" {
                // Some devices return -1 if the speed is unknown.
                if v < 0.0 && self.ignore_invalid_speed {
                    continue;
                }
                v = ((v as i64).saturating_mul(1000 * 1000) / 8) as f64;
            }
            let metric = format!("node_network_{suffix}");
            let help = format!("Network device property: {suffix}");
            if counter {
                out.counter(&metric, &help, &l, v);
            } else {
                out.gauge(&metric, &help, &l, v);
            }
        }
    }
}

impl Collector for NetClass {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let base = ctx.roots.sys("class/net");
        let dir = std::fs::read_dir(&base).map_err(|e| CollectError::io(&base, e))?;
        let mut names: Vec<String> = dir
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| n != "bonding_masters")
            .collect();
        names.sort();
        for name in names {
            if matches!(&self.ignored, Some(re) if re.is_match(&name)) {
                continue;
            }
            if !base.join(&name).is_dir() {
                continue;
            }
            self.iface(ctx, &name, out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_go_ints() {
        use super::parse_int;
        assert_eq!(parse_int("0x1003"), Some(4099));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("0"), Some(0));
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("x"), None);
        assert_eq!(parse_int(""), None);
    }
}
