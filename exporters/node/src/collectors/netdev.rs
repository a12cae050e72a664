//! netdev: interface counters. Like node_exporter 1.5.0 the default source
//! is rtnetlink (one RTM_GETLINK dump, `IFLA_STATS64`);
//! `--no-collector.netdev.netlink` reads `/proc/net/dev` instead.
// System calls (libc) without a safe std equivalent; each block says why it is sound.
#![allow(unsafe_code)]

use std::collections::BTreeMap;

use vigie_common::MetricSet;

use super::{bool_args, str_arg, BuildCtx, CollectError, Collector, DeviceFilter, ScrapeCtx, Spec};

const INCLUDE: &str = "collector.netdev.device-include";
const EXCLUDE: &str = "collector.netdev.device-exclude";
const OLD_INCLUDE: &str = "collector.netdev.device-whitelist";
const OLD_EXCLUDE: &str = "collector.netdev.device-blacklist";

pub fn spec() -> Spec {
    Spec {
        name: "netdev",
        default_enabled: true,
        args: || {
            let mut v = vec![
                str_arg(
                    INCLUDE,
                    None,
                    "Regexp of net devices to include (mutually exclusive to device-exclude).",
                ),
                str_arg(
                    OLD_INCLUDE,
                    None,
                    "DEPRECATED: Use collector.netdev.device-include",
                )
                .hide(true),
                // Debian's default (upstream: unset).
                str_arg(
                    EXCLUDE,
                    Some("^lo$"),
                    "Regexp of net devices to exclude (mutually exclusive to device-include).",
                ),
                str_arg(
                    OLD_EXCLUDE,
                    None,
                    "DEPRECATED: Use collector.netdev.device-exclude",
                )
                .hide(true),
            ];
            v.extend(bool_args(
                "collector.netdev.address-info",
                "Collect address-info for every device",
            ));
            v.extend(bool_args(
                "collector.netdev.enable-detailed-metrics",
                "Use (incompatible) metric names that provide more detailed stats on Linux",
            ));
            v.extend(bool_args(
                "collector.netdev.netlink",
                "Use netlink to gather stats instead of /proc/net/dev.",
            ));
            v
        },
        build: |ctx: &BuildCtx| {
            let inc = if ctx.given(INCLUDE) || !ctx.given(OLD_INCLUDE) {
                INCLUDE
            } else {
                OLD_INCLUDE
            };
            let exc = if ctx.given(EXCLUDE) || !ctx.given(OLD_EXCLUDE) {
                EXCLUDE
            } else {
                OLD_EXCLUDE
            };
            Ok(Box::new(NetDev {
                filter: DeviceFilter::from_flags(ctx, inc, exc)?,
                netlink: ctx.bool_or("collector.netdev.netlink", true),
                address_info: ctx.bool_or("collector.netdev.address-info", false),
                detailed: ctx.bool_or("collector.netdev.enable-detailed-metrics", false),
            }))
        },
    }
}

struct NetDev {
    filter: DeviceFilter,
    netlink: bool,
    address_info: bool,
    detailed: bool,
}

type Stats = BTreeMap<String, Vec<(&'static str, u64)>>;

const PROC_RX: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "frame",
    "compressed",
    "multicast",
];
const PROC_TX: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "colls",
    "carrier",
    "compressed",
];

/// `/proc/net/dev`: two header lines, then `name: 16 counters`.
pub fn parse_proc(text: &str) -> Result<Stats, usize> {
    let mut out = Stats::new();
    for (i, line) in text.lines().enumerate().skip(2) {
        let Some((name, rest)) = line.rsplit_once(':') else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(i + 1);
        };
        let v: Vec<u64> = rest
            .split_ascii_whitespace()
            .map(|x| x.parse::<u64>().map_err(|_| i + 1))
            .collect::<Result<_, _>>()?;
        if v.len() < 16 {
            return Err(i + 1);
        }
        let mut stats = Vec::with_capacity(16);
        for (k, val) in PROC_RX.iter().zip(&v[..8]) {
            stats.push((rx_name(k), *val));
        }
        for (k, val) in PROC_TX.iter().zip(&v[8..16]) {
            stats.push((tx_name(k), *val));
        }
        out.insert(name.trim().to_owned(), stats);
    }
    Ok(out)
}

fn rx_name(k: &str) -> &'static str {
    match k {
        "bytes" => "receive_bytes",
        "packets" => "receive_packets",
        "errs" => "receive_errs",
        "drop" => "receive_drop",
        "fifo" => "receive_fifo",
        "frame" => "receive_frame",
        "compressed" => "receive_compressed",
        "multicast" => "receive_multicast",
        _ => "receive_nohandler",
    }
}

fn tx_name(k: &str) -> &'static str {
    match k {
        "bytes" => "transmit_bytes",
        "packets" => "transmit_packets",
        "errs" => "transmit_errs",
        "drop" => "transmit_drop",
        "fifo" => "transmit_fifo",
        "colls" => "transmit_colls",
        "carrier" => "transmit_carrier",
        _ => "transmit_compressed",
    }
}

/// `rtnl_link_stats64` index -> metric suffix (the fields node_exporter
/// 1.5.0 exports from netlink).
const STATS64: [(usize, &str); 17] = [
    (0, "receive_packets"),
    (1, "transmit_packets"),
    (2, "receive_bytes"),
    (3, "transmit_bytes"),
    (4, "receive_errs"),
    (5, "transmit_errs"),
    (6, "receive_drop"),
    (7, "transmit_drop"),
    (8, "receive_multicast"),
    (9, "transmit_colls"),
    (13, "receive_frame"),
    (14, "receive_fifo"),
    (17, "transmit_carrier"),
    (18, "transmit_fifo"),
    (21, "receive_compressed"),
    (22, "transmit_compressed"),
    (23, "receive_nohandler"),
];

/// Every `rtnl_link_stats64` field up to rx_nohandler, in struct order, as
/// `--collector.netdev.enable-detailed-metrics` names them.
const STATS64_DETAILED: [&str; 24] = [
    "receive_packets",
    "transmit_packets",
    "receive_bytes",
    "transmit_bytes",
    "receive_errors",
    "transmit_errors",
    "receive_dropped",
    "transmit_dropped",
    "multicast",
    "collisions",
    "receive_length_errors",
    "receive_over_errors",
    "receive_crc_errors",
    "receive_frame_errors",
    "receive_fifo_errors",
    "receive_missed_errors",
    "transmit_aborted_errors",
    "transmit_carrier_errors",
    "transmit_fifo_errors",
    "transmit_heartbeat_errors",
    "transmit_window_errors",
    "receive_compressed",
    "transmit_compressed",
    "receive_nohandler",
];

/// Turns one link's `IFLA_STATS64` payload into named counters (the
/// default names; `detailed_names` gives the detailed ones).
pub fn stats64(payload: &[u8]) -> Vec<(&'static str, u64)> {
    let field = |i: usize| -> Option<u64> {
        let b = payload.get(i * 8..i * 8 + 8)?;
        Some(u64::from_ne_bytes(b.try_into().ok()?))
    };
    STATS64
        .iter()
        .filter_map(|(i, name)| field(*i).map(|v| (*name, v)))
        .collect()
}

/// The detailed counters of one link's `IFLA_STATS64` payload.
pub fn stats64_detailed(payload: &[u8]) -> Vec<(&'static str, u64)> {
    payload
        .chunks_exact(8)
        .zip(STATS64_DETAILED)
        .filter_map(|(b, name)| Some((name, u64::from_ne_bytes(b.try_into().ok()?))))
        .collect()
}

/// /proc/net/dev has no finer fields: with detailed names node_exporter
/// only spells errs and drop out.
fn proc_detailed_name(k: &'static str) -> &'static str {
    match k {
        "receive_errs" => "receive_errors",
        "receive_drop" => "receive_dropped",
        "transmit_errs" => "transmit_errors",
        "transmit_drop" => "transmit_dropped",
        other => other,
    }
}

/// node_exporter's scope of an interface address.
pub fn address_scope(ip: std::net::IpAddr) -> &'static str {
    use std::net::IpAddr;
    let link_local = match ip {
        IpAddr::V4(a) => a.is_loopback() || a.is_link_local(),
        IpAddr::V6(a) => a.is_loopback() || (a.segments()[0] & 0xffc0) == 0xfe80,
    };
    let global_unicast = match ip {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    };
    if link_local {
        "link-local"
    } else if global_unicast {
        "global"
    } else {
        ""
    }
}

impl Collector for NetDev {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let stats = if self.netlink {
            rtnl::dump_links(self.detailed)
                .map_err(|e| CollectError::Other(format!("netlink RTM_GETLINK: {e}")))?
        } else {
            let path = ctx.roots.proc("net/dev");
            parse_proc(&ctx.read(&path)?)
                .map_err(|l| CollectError::parse(&path, l, "expected name: 16 counters"))?
        };
        for (dev, counters) in stats {
            if self.filter.ignored(&dev) {
                continue;
            }
            for (k, v) in counters {
                let k = if self.detailed && !self.netlink {
                    proc_detailed_name(k)
                } else {
                    k
                };
                out.counter(
                    &format!("node_network_{k}_total"),
                    &format!("Network device statistic {k}."),
                    &[("device", &dev)],
                    v as f64,
                );
            }
        }
        if self.address_info {
            put_address_info(out)?;
        }
        Ok(())
    }
}

/// `node_network_address_info`: every address of every interface, as
/// node_exporter lists them (the device filters do not apply to it).
fn put_address_info(out: &mut MetricSet) -> Result<(), CollectError> {
    let addrs = ifaddrs::list().map_err(|e| CollectError::Other(format!("getifaddrs: {e}")))?;
    for (dev, ip, prefix) in addrs {
        out.gauge(
            "node_network_address_info",
            "node network address by device",
            &[
                ("address", &ip.to_string()),
                ("device", &dev),
                ("netmask", &prefix.to_string()),
                ("scope", address_scope(ip)),
            ],
            1.0,
        );
    }
    Ok(())
}

/// The interfaces' IP addresses from getifaddrs(3).
mod ifaddrs {
    use std::ffi::CStr;
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    /// `(interface, address, prefix length)` for each IPv4/IPv6 address.
    pub fn list() -> io::Result<Vec<(String, IpAddr, u32)>> {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: getifaddrs fills `head` with a list we free below.
        if unsafe { libc::getifaddrs(&mut head) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut out = Vec::new();
        let mut cur = head;
        while !cur.is_null() {
            // SAFETY: `cur` is a node of the list getifaddrs returned, alive
            // until freeifaddrs; its pointers are null or valid.
            let ifa = unsafe { &*cur };
            cur = ifa.ifa_next;
            // SAFETY: as above; sockaddr types are read per sa_family.
            let entry = unsafe { (ip_of(ifa.ifa_addr), ip_of(ifa.ifa_netmask)) };
            let (Some(ip), Some(mask)) = entry else {
                continue;
            };
            if ifa.ifa_name.is_null() {
                continue;
            }
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
                .to_string_lossy()
                .into_owned();
            let prefix = match mask {
                IpAddr::V4(m) => u32::from(m).count_ones(),
                IpAddr::V6(m) => u128::from(m).count_ones(),
            };
            out.push((name, ip, prefix));
        }
        // SAFETY: `head` came from getifaddrs and is freed once.
        unsafe { libc::freeifaddrs(head) };
        Ok(out)
    }

    /// # Safety
    /// `sa` is null or points to a sockaddr whose family tells its size.
    unsafe fn ip_of(sa: *const libc::sockaddr) -> Option<IpAddr> {
        if sa.is_null() {
            return None;
        }
        match i32::from(unsafe { (*sa).sa_family }) {
            libc::AF_INET => {
                let a = unsafe { &*(sa as *const libc::sockaddr_in) };
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))))
            }
            libc::AF_INET6 => {
                let a = unsafe { &*(sa as *const libc::sockaddr_in6) };
                Some(IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

/// Feeds arbitrary bytes to the netlink reply parser (fuzz tests).
pub fn fuzz_netlink(b: &[u8]) {
    let mut msgs = Vec::new();
    let _ = rtnl::parse_messages(b, &mut msgs);
    let mut s = Stats::new();
    for m in &msgs {
        let _ = rtnl::attrs(m);
    }
    let _ = rtnl::attrs(b);
    s.clear();
}

/// A minimal rtnetlink client: one RTM_GETLINK dump per scrape.
pub(super) mod rtnl {
    use std::io;

    use super::Stats;

    /// One RTM_NEWLINK message: the ifinfomsg header and its attributes.
    pub type LinkMsg = Vec<u8>;

    const RTM_NEWLINK: u16 = 16;
    const RTM_GETLINK: u16 = 18;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const IFLA_IFNAME: u16 = 3;
    const IFLA_STATS64: u16 = 23;
    const HDR: usize = 16;
    const IFINFO: usize = 16;

    struct Fd(i32);
    impl Drop for Fd {
        fn drop(&mut self) {
            // SAFETY: we own the descriptor.
            unsafe { libc::close(self.0) };
        }
    }

    fn align(n: usize) -> usize {
        (n + 3) & !3
    }

    /// Counters per interface from one dump, with the detailed names or
    /// the default ones.
    pub fn dump_links(detailed: bool) -> io::Result<Stats> {
        let mut out = Stats::new();
        for m in dump_raw()? {
            link(&m, detailed, &mut out);
        }
        Ok(out)
    }

    /// The `(type, payload)` attributes after the ifinfomsg header.
    pub fn attrs(msg: &[u8]) -> Vec<(u16, &[u8])> {
        let mut out = Vec::new();
        let mut a = msg.get(IFINFO..).unwrap_or(&[]);
        while a.len() >= 4 {
            let len = u16::from_ne_bytes([a[0], a[1]]) as usize;
            let kind = u16::from_ne_bytes([a[2], a[3]]) & 0x3fff;
            if len < 4 || len > a.len() {
                break;
            }
            out.push((kind, &a[4..len]));
            a = &a[align(len).min(a.len())..];
        }
        out
    }

    /// Every link's message from one RTM_GETLINK dump.
    pub fn dump_raw() -> io::Result<Vec<LinkMsg>> {
        // SAFETY: plain socket calls on a descriptor we own.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = Fd(fd);
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        unsafe {
            libc::setsockopt(
                fd.0,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
        }
        let mut req = [0u8; HDR + IFINFO];
        req[0..4].copy_from_slice(&((HDR + IFINFO) as u32).to_ne_bytes());
        req[4..6].copy_from_slice(&RTM_GETLINK.to_ne_bytes());
        req[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
        req[8..12].copy_from_slice(&1u32.to_ne_bytes());
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        let n = unsafe {
            libc::sendto(
                fd.0,
                req.as_ptr() as *const libc::c_void,
                req.len(),
                0,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut out: Vec<LinkMsg> = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        // Bounded: a dump ends with NLMSG_DONE; 10k datagrams is far beyond any host.
        for _ in 0..10_000 {
            let n =
                unsafe { libc::recv(fd.0, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if parse_messages(&buf[..n as usize], &mut out)? {
                return Ok(out);
            }
        }
        Err(io::Error::other("netlink dump did not end"))
    }

    /// Parses one datagram; true when the dump is complete.
    pub fn parse_messages(mut b: &[u8], out: &mut Vec<LinkMsg>) -> io::Result<bool> {
        while b.len() >= HDR {
            let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
            let kind = u16::from_ne_bytes([b[4], b[5]]);
            if len < HDR || len > b.len() {
                return Err(io::Error::other("truncated netlink message"));
            }
            match kind {
                NLMSG_DONE => return Ok(true),
                NLMSG_ERROR => return Err(io::Error::other("netlink error reply")),
                RTM_NEWLINK if len >= HDR + IFINFO => out.push(b[HDR..len].to_vec()),
                _ => {}
            }
            b = &b[align(len).min(b.len())..];
        }
        Ok(false)
    }

    fn link(msg: &[u8], detailed: bool, out: &mut Stats) {
        let mut name = None;
        let mut stats = None;
        for (kind, payload) in attrs(msg) {
            match kind {
                IFLA_IFNAME => {
                    let s = payload.split(|c| *c == 0).next().unwrap_or(&[]);
                    name = Some(String::from_utf8_lossy(s).into_owned());
                }
                IFLA_STATS64 if detailed => stats = Some(super::stats64_detailed(payload)),
                IFLA_STATS64 => stats = Some(super::stats64(payload)),
                _ => {}
            }
        }
        if let (Some(n), Some(s)) = (name, stats) {
            out.insert(n, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_dev() {
        let t = "Inter-|   Receive\n face |bytes\n    lo:  252701     519    0    0    0     0          0         0   252701     519    0    0    0     0       0          0\n";
        let s = parse_proc(t).unwrap();
        assert_eq!(s["lo"][0], ("receive_bytes", 252701));
        assert!(parse_proc("a\nb\neth0: 1 2 3\n").is_err());
        assert!(parse_proc("a\nb\nno colon here\n").is_err());
    }

    #[test]
    fn netlink_garbage_is_an_error_not_a_panic() {
        let mut s = Vec::new();
        assert!(rtnl::parse_messages(&[0xff; 40], &mut s).is_err());
        assert!(!rtnl::parse_messages(&[1, 2, 3], &mut s).unwrap());
        assert!(rtnl::attrs(&[0xff; 40]).is_empty());
        assert_eq!(stats64(&[0u8; 12]).len(), 1);
        assert_eq!(stats64_detailed(&[0u8; 12]).len(), 1);
        assert_eq!(stats64_detailed(&[0u8; 8 * 30]).len(), 24);
    }

    #[test]
    fn scopes_as_node_exporter() {
        for (ip, want) in [
            ("127.0.0.1", "link-local"),
            ("::1", "link-local"),
            ("fe80::1", "link-local"),
            ("169.254.1.1", "link-local"),
            ("192.0.2.2", "global"),
            ("10.0.0.1", "global"),
            ("fd00::2", "global"),
            ("0.0.0.0", ""),
        ] {
            assert_eq!(address_scope(ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[test]
    fn address_info_lists_loopback() {
        let a = ifaddrs::list().unwrap();
        assert!(
            a.iter()
                .any(|(d, ip, p)| d == "lo" && ip.is_loopback() && *p == 8),
            "{a:?}"
        );
    }

    #[test]
    fn netlink_dump_lists_lo() {
        let s = rtnl::dump_links(false).unwrap();
        assert!(s.contains_key("lo"), "{s:?}");
    }
}
