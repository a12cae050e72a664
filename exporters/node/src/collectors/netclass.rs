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
                use_netlink: std::env::var_os("VIGIE_NETCLASS_SYSFS_ONLY").is_none(),
            }))
        },
    }
}

struct NetClass {
    ignored: Option<regex::Regex>,
    ignore_invalid_speed: bool,
    /// Read most attributes from one rtnetlink dump (live system only).
    use_netlink: bool,
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

/// The attributes one RTM_GETLINK dump gives, as sysfs would print them.
/// Only used on the live system (`--path.sysfs=/sys`): it replaces 15 of
/// the ~25 files read per interface.
#[derive(Debug, Default, Clone)]
pub struct Link {
    pub values: std::collections::HashMap<&'static str, String>,
}

const IFF_UP: u32 = 0x1;

fn hex_addr(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}

fn u32_of(p: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(p.get(..4)?.try_into().ok()?))
}

/// Parses one link message into sysfs-named values; None without a name.
pub fn link_from_msg(msg: &[u8]) -> Option<(String, Link)> {
    use super::netdev::rtnl;
    let ty = u16::from_ne_bytes(msg.get(2..4)?.try_into().ok()?);
    let index = i32::from_ne_bytes(msg.get(4..8)?.try_into().ok()?);
    let flags = u32::from_ne_bytes(msg.get(8..12)?.try_into().ok()?);
    let mut v = std::collections::HashMap::new();
    v.insert("type", ty.to_string());
    v.insert("ifindex", index.to_string());
    v.insert("iflink", index.to_string());
    v.insert("ifalias", String::new());
    v.insert("address", String::new());
    v.insert("broadcast", String::new());
    let mut name = None;
    let mut carrier = None;
    for (kind, p) in rtnl::attrs(msg) {
        match kind {
            1 => {
                v.insert("address", hex_addr(p));
            }
            2 => {
                v.insert("broadcast", hex_addr(p));
            }
            3 => {
                name = p
                    .split(|c| *c == 0)
                    .next()
                    .map(|n| String::from_utf8_lossy(n).into_owned())
            }
            4 => {
                v.insert("mtu", u32_of(p)?.to_string());
            }
            5 => {
                v.insert("iflink", u32_of(p)?.to_string());
            }
            13 => {
                v.insert("tx_queue_len", u32_of(p)?.to_string());
            }
            16 => {
                let s = match p.first()? {
                    1 => "notpresent",
                    2 => "down",
                    3 => "lowerlayerdown",
                    4 => "testing",
                    5 => "dormant",
                    6 => "up",
                    _ => "unknown",
                };
                v.insert("operstate", s.to_owned());
            }
            17 => {
                v.insert("link_mode", p.first()?.to_string());
            }
            20 => {
                let a = p.split(|c| *c == 0).next().unwrap_or(&[]);
                v.insert("ifalias", String::from_utf8_lossy(a).into_owned());
            }
            27 => {
                v.insert("netdev_group", u32_of(p)?.to_string());
            }
            33 => carrier = p.first().copied(),
            35 => {
                v.insert("carrier_changes", u32_of(p)?.to_string());
            }
            47 => {
                v.insert("carrier_up_count", u32_of(p)?.to_string());
            }
            48 => {
                v.insert("carrier_down_count", u32_of(p)?.to_string());
            }
            _ => {}
        }
    }
    // sysfs answers EINVAL for carrier on a device that is not up.
    if flags & IFF_UP != 0 {
        if let Some(c) = carrier {
            v.insert("carrier", c.to_string());
        }
    }
    Some((name?, Link { values: v }))
}

/// Files still read from sysfs in netlink mode (not in RTM_NEWLINK, or not
/// exactly as sysfs prints them: `flags` is dev->flags, netlink's differ).
const SYSFS_ONLY: [&str; 7] = [
    "addr_assign_type",
    "dev_id",
    "dormant",
    "duplex",
    "flags",
    "name_assign_type",
    "speed",
];

impl NetClass {
    fn iface(&self, ctx: &ScrapeCtx, name: &str, link: Option<&Link>, out: &mut MetricSet) {
        let dir = ctx.roots.sys("class/net").join(name);
        let l = [("device", name)];
        let attr = |dir: &std::path::Path, a: &str| -> Option<String> {
            match link {
                Some(k) if !SYSFS_ONLY.contains(&a) => k.values.get(a).cloned(),
                _ => attr(dir, a),
            }
        };
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

impl NetClass {
    /// Netlink describes this host's interfaces: only use it when sysfs is
    /// the host's (not a fixture tree or another root).
    fn netlink_ok(&self, ctx: &ScrapeCtx) -> bool {
        self.use_netlink && ctx.roots.sysfs == std::path::Path::new("/sys")
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
        // On the live system one netlink dump replaces most attribute files.
        let links: std::collections::HashMap<String, Link> = if self.netlink_ok(ctx) {
            match super::netdev::rtnl::dump_raw() {
                Ok(msgs) => msgs.iter().filter_map(|m| link_from_msg(m)).collect(),
                Err(e) => {
                    tracing::debug!(err = %e, "netlink dump failed; reading sysfs");
                    Default::default()
                }
            }
        } else {
            Default::default()
        };
        for name in names {
            if matches!(&self.ignored, Some(re) if re.is_match(&name)) {
                continue;
            }
            if !base.join(&name).is_dir() {
                continue;
            }
            self.iface(ctx, &name, links.get(&name), out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn netlink_and_sysfs_agree_on_this_machine() {
        use super::*;
        use std::sync::Arc;
        let ctx = ScrapeCtx {
            roots: Arc::new(crate::roots::FsRoots::default()),
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(5),
        };
        let mk = |nl: bool| NetClass {
            ignored: None,
            ignore_invalid_speed: false,
            use_netlink: nl,
        };
        let mut a = MetricSet::new();
        let mut b = MetricSet::new();
        // Twice, so a counter moving between the two reads does not flake.
        for _ in 0..2 {
            a = MetricSet::new();
            b = MetricSet::new();
            mk(false).update(&ctx, &mut a).unwrap();
            mk(true).update(&ctx, &mut b).unwrap();
            if a.encode_text() == b.encode_text() {
                break;
            }
        }
        assert_eq!(a.encode_text(), b.encode_text());
    }

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
