//! ipvs: IPVS totals (`/proc/net/ip_vs_stats`) and backends
//! (`/proc/net/ip_vs`), labelled by `--collector.ipvs.backend-labels`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use clap::Arg;
use vigie_common::MetricSet;

use super::{BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

const ALL_LABELS: &[&str] = &[
    "local_address",
    "local_port",
    "remote_address",
    "remote_port",
    "proto",
    "local_mark",
];

pub fn spec() -> Spec {
    Spec {
        name: "ipvs",
        default_enabled: true,
        args,
        build: |ctx: &BuildCtx| {
            let raw = ctx
                .string("collector.ipvs.backend-labels")
                .unwrap_or_default();
            let mut labels = Vec::new();
            let mut unknown = Vec::new();
            for l in raw.split(',').map(str::trim).filter(|l| !l.is_empty()) {
                match ALL_LABELS.iter().position(|k| *k == l) {
                    Some(i) => labels.push(i),
                    None => unknown.push(l.to_owned()),
                }
            }
            if !unknown.is_empty() {
                return Err(format!(
                    "unknown IPVS backend labels: {:?}",
                    unknown.join(", ")
                ));
            }
            Ok(Box::new(Ipvs { labels }))
        },
    }
}

fn args() -> Vec<Arg> {
    vec![Arg::new("collector.ipvs.backend-labels")
        .long("collector.ipvs.backend-labels")
        .default_value("local_address,local_port,remote_address,remote_port,proto,local_mark")
        .value_name("LABELS")
        .help("Comma separated list for IPVS backend stats labels.")]
}

struct Ipvs {
    /// Indexes into [`ALL_LABELS`], in flag order.
    labels: Vec<usize>,
}

/// One backend: the six label values and its three gauges.
#[derive(Debug, PartialEq)]
struct Backend {
    keys: [String; 6],
    active: f64,
    inactive: f64,
    weight: f64,
}

/// `C0A80016:0CEA` or `[2620:0000:...:0001]:0050` → (address, port).
fn addr_port(s: &str) -> Option<(String, String)> {
    let (addr, port) = s.rsplit_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?.to_string();
    if let Some(v6) = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
        let ip: Ipv6Addr = v6.parse().ok()?;
        return Some((ip.to_string(), port));
    }
    let n = u32::from_str_radix(addr, 16).ok()?;
    Some((Ipv4Addr::from(n).to_string(), port))
}

fn parse_backends(path: &Path, text: &str) -> Result<Vec<Backend>, CollectError> {
    let mut out = Vec::new();
    // (local address, local port, proto, mark) of the current service.
    let mut service: Option<(String, String, String, String)> = None;
    for (i, line) in text.lines().enumerate().skip(3) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = || CollectError::parse(path, i + 1, format!("unexpected line: {line:?}"));
        match f.first().copied() {
            None => continue,
            Some("TCP") | Some("UDP") | Some("SCTP") => {
                let (a, p) = f.get(1).and_then(|s| addr_port(s)).ok_or_else(bad)?;
                service = Some((a, p, f[0].to_owned(), String::new()));
            }
            Some("FWM") => {
                let mark = f.get(1).ok_or_else(bad)?;
                service = Some((
                    String::new(),
                    "0".to_owned(),
                    "FWM".to_owned(),
                    (*mark).to_owned(),
                ));
            }
            Some("->") => {
                let (la, lp, proto, mark) = service.clone().ok_or_else(bad)?;
                if f.len() < 6 {
                    return Err(bad());
                }
                let (ra, rp) = addr_port(f[1]).ok_or_else(bad)?;
                let num = |s: &str| s.parse::<u64>().map(|v| v as f64).map_err(|_| bad());
                out.push(Backend {
                    keys: [la, lp, ra, rp, proto, mark],
                    weight: num(f[3])?,
                    active: num(f[4])?,
                    inactive: num(f[5])?,
                });
            }
            Some(_) => return Err(bad()),
        }
    }
    Ok(out)
}

/// The five hexadecimal totals of `ip_vs_stats`' third line.
fn parse_stats(path: &Path, text: &str) -> Result<[f64; 5], CollectError> {
    let line = text.lines().nth(2).unwrap_or("");
    let mut v = [0.0; 5];
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 5 {
        return Err(CollectError::parse(path, 3, "expected five totals"));
    }
    for (slot, s) in v.iter_mut().zip(&f) {
        *slot = u64::from_str_radix(s, 16)
            .map_err(|_| CollectError::parse(path, 3, format!("not hexadecimal: {s:?}")))?
            as f64;
    }
    Ok(v)
}

impl Collector for Ipvs {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let spath = ctx.roots.proc("net/ip_vs_stats");
        let stats = match ctx.read(&spath) {
            Ok(t) => parse_stats(&spath, &t)?,
            Err(e) if e.is_not_found() => return Err(CollectError::NoData),
            Err(e) => return Err(e),
        };
        for (v, name, help) in [
            (
                stats[0],
                "node_ipvs_connections_total",
                "The total number of connections made.",
            ),
            (
                stats[1],
                "node_ipvs_incoming_packets_total",
                "The total number of incoming packets.",
            ),
            (
                stats[2],
                "node_ipvs_outgoing_packets_total",
                "The total number of outgoing packets.",
            ),
            (
                stats[3],
                "node_ipvs_incoming_bytes_total",
                "The total amount of incoming data.",
            ),
            (
                stats[4],
                "node_ipvs_outgoing_bytes_total",
                "The total amount of outgoing data.",
            ),
        ] {
            out.counter(name, help, &[], v);
        }
        let bpath = ctx.roots.proc("net/ip_vs");
        let backends = parse_backends(&bpath, &ctx.read(&bpath)?)?;
        // Backends that share the selected label values are summed.
        let mut sums: BTreeMap<Vec<String>, [f64; 3]> = BTreeMap::new();
        for b in &backends {
            let key: Vec<String> = self.labels.iter().map(|i| b.keys[*i].clone()).collect();
            let s = sums.entry(key).or_insert([0.0; 3]);
            s[0] += b.active;
            s[1] += b.inactive;
            s[2] += b.weight;
        }
        for (key, s) in sums {
            let labels: Vec<(String, String)> = self
                .labels
                .iter()
                .map(|i| ALL_LABELS[*i].to_owned())
                .zip(key)
                .collect();
            for (v, name, help) in [
                (
                    s[0],
                    "node_ipvs_backend_connections_active",
                    "The current active connections by local and remote address.",
                ),
                (
                    s[1],
                    "node_ipvs_backend_connections_inactive",
                    "The current inactive connections by local and remote address.",
                ),
                (
                    s[2],
                    "node_ipvs_backend_weight",
                    "The current backend weight by local and remote address.",
                ),
            ] {
                out.family(name, help, vigie_common::MetricType::Gauge)
                    .add_owned(labels.clone(), v);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            addr_port("C0A80016:0CEA"),
            Some(("192.168.0.22".into(), "3306".into()))
        );
        assert_eq!(
            addr_port("[2620:0000:0000:0000:0000:0000:0000:0001]:0050"),
            Some(("2620::1".into(), "80".into()))
        );
        assert_eq!(addr_port("zz:0CEA"), None);
        assert_eq!(addr_port(""), None);
    }

    #[test]
    fn odd_input() {
        let p = Path::new("ip_vs");
        assert!(parse_backends(p, "a\nb\nc\n  -> C0A80016:0CEA Route 1 2 3\n").is_err());
        assert!(parse_backends(
            p,
            "a\nb\nc\nTCP C0A80016:0CEA wlc\n  -> C0A80016:0CEA Route x 2 3\n"
        )
        .is_err());
        assert!(parse_stats(p, "x\n").is_err());
        assert!(parse_stats(p, "a\nb\n 1 2 3 4 zz\n").is_err());
    }
}
